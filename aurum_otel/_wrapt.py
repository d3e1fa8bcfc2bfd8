"""wrapt's proxy classes, subscriptable at run time as its stubs are for the type checker."""

from __future__ import annotations

from typing import TYPE_CHECKING

import wrapt

if TYPE_CHECKING:
    FunctionWrapper = wrapt.FunctionWrapper
    ObjectProxy = wrapt.ObjectProxy
else:

    class FunctionWrapper(wrapt.FunctionWrapper):
        def __class_getitem__(cls, item: object) -> type:
            return cls

    class ObjectProxy(wrapt.ObjectProxy):
        def __class_getitem__(cls, item: object) -> type:
            return cls
