"""Phase stores: the model every store shares, the local file store, and URL selection.

``aurum_otel.store`` re-exports the public names (the import path users already have).
"""
