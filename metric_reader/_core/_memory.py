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
"""

from __future__ import annotations

import ctypes

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 64 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds; ``False`` where the C library is not glibc
    (musl, macOS), which is left as it is."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
