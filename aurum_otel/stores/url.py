"""Which store an ``AURUM_STATE_URL`` names: the only module that knows every backend.

The Redis and OpenFeature backends are optional extras, imported when a URL names them.
"""

from __future__ import annotations

from pathlib import Path

from aurum_otel.errors import ConfigurationError
from aurum_otel.stores.base import PhaseStore
from aurum_otel.stores.file import STATE_FILE, FileStore


def store_from_url(url: str | None, state_dir: Path) -> PhaseStore:
    """The store an ``AURUM_STATE_URL`` names (``file:///path``, ``redis://...``, ``openfeature:``).

    Raises:
        ConfigurationError: the URL is malformed, its scheme unknown, or its extra not installed.
    """
    if not url:
        return FileStore.in_dir(state_dir)
    if url.startswith("file://"):
        target = Path(url[len("file://") :])
        return FileStore(target if target.suffix == ".json" else target / STATE_FILE)
    if url.startswith(("redis://", "rediss://", "unix://")):
        try:
            from aurum_otel.stores.redis import RedisStore  # an optional extra: imported on use
        except ImportError:
            raise ConfigurationError(
                "AURUM_STATE_URL", url.split("@")[-1],
                "a redis:// URL needs the redis extra: pip install 'aurum-otel[redis]'") from None
        try:
            return RedisStore.from_url(url)
        except ConfigurationError:
            raise
        except ValueError as exc:  # a bad port, host or database number
            raise ConfigurationError(
                "AURUM_STATE_URL", url.rsplit("@", 1)[-1],
                f"a URL such as redis://host:6379/0 ({exc})") from None
    if url.startswith("openfeature:"):
        try:
            from aurum_otel.stores.openfeature import OpenFeaturePhaseSource  # an optional extra
        except ImportError:
            raise ConfigurationError(
                "AURUM_STATE_URL", url,
                "an openfeature: URL needs the openfeature extra: "
                "pip install 'aurum-otel[openfeature]'") from None
        return OpenFeaturePhaseSource.from_url(url, state_dir)
    raise ConfigurationError(
        "AURUM_STATE_URL", url.split("@")[-1],
        "file:///path/to/dir-or-file.json, redis://[:password@]host:port/db[?prefix=aurum] or "
        "openfeature:[//domain]")
