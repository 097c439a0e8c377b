"""Functions of the C library, where there is one (glibc on Linux); None elsewhere."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
from collections.abc import Callable
from typing import Any


@functools.cache
def _library() -> ctypes.CDLL | None:
    """Looked up once a process: ``find_library`` may run ``ldconfig``."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    with contextlib.suppress(OSError):
        return ctypes.CDLL(name)
    return None


def libc_function(name: str) -> Callable[..., Any] | None:
    library = _library()
    function: Callable[..., Any] | None = getattr(library, name, None)
    return function
