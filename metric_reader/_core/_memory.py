"""Keep freed memory for the next poll instead of giving it back to the kernel each time.

A scrape of a 10 MB page allocates the page and its pieces, frees them, and allocates
them again one interval later. glibc gives freed memory back to the kernel once more
than twice its largest recent block is free at the top of the heap (and always for
blocks over 32 MB), which a poll of a page of 10 MB or more does every time: each poll
faults the same memory in again, and a third of the service's CPU time was kernel time
spent on those faults. With these limits raised the memory a poll needed stays
mapped for the next one. The peak resident size does not change, only how fast it is
given back; a sidecar's memory limit has to fit that peak anyway (as with Go's runtime,
which also keeps freed heap for reuse).

glibc also gives each thread that allocates an arena of its own (up to eight per core),
whose pages stay resident: the service's threads (plugin calls, reading the configuration
again, anyio's workers) allocate little, and under the GIL, so one arena serves them all, as
``MALLOC_ARENA_MAX=1`` would (about 5 MB less for one rule, issue 27's 30 MB).
"""

from __future__ import annotations

import ctypes
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 64 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds and keep to one arena (before the first
    thread that allocates; ``MALLOC_ARENA_MAX`` when set wins); ``False`` where the C
    library is not glibc (musl, macOS), which is left as it is."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if "MALLOC_ARENA_MAX" not in os.environ:
        mallopt(_M_ARENA_MAX, 1)
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
