"""Keep glibc from holding on to freed dense tensors while a part loads or re-prunes.

glibc's malloc raises its mmap threshold after the first large block is freed
(up to 32 MiB), so later dense tensors come from the heap; the pruned tensors
allocated in between pin that heap, and the freed dense bytes are never given
back. Measured on bert-base, device part at L = 4: structured rho = 0.5 peaked
HIGHER than the dense part (257 vs 226 MiB). While loading we therefore pin the
threshold low, so every large tensor gets its own mapping that ``free``
returns to the OS at once; afterwards we set it high, so the forward pass's
activations are recycled from the heap instead of being mapped and faulted in
on every call. Outside glibc this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3
_LOADING_THRESHOLD = 256 * 1024
_SERVING_THRESHOLD = 32 * 1024 * 1024  # glibc's own ceiling for the dynamic threshold on 64-bit


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - musl and others may lack it
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


@contextmanager
def lean_allocations() -> Iterator[None]:
    """Within: large allocations are mapped individually; after: freed heap pages are returned."""
    if _LIBC is None:
        yield
        return
    _LIBC.mallopt(_M_MMAP_THRESHOLD, _LOADING_THRESHOLD)
    try:
        yield
    finally:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, _SERVING_THRESHOLD)
        _LIBC.malloc_trim(0)
