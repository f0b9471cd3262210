"""Keep the memory a step frees inside the process, so the next step does not fault it back in.

Every step allocates its activations and frees them after backward: about 50 MB at the defaults.
glibc hands the top of its heap back to the kernel once more than `M_TRIM_THRESHOLD` bytes are free
there, and its dynamic thresholds never settle above a step's buffers. So every step re-faulted
those pages: about 13,000 minor page faults a step, 15-40 ms of a ~110 ms step spent in the kernel
zeroing pages. With the thresholds fixed (blocks up to 32 MB come from the heap, and up to 64 MB of
free heap is kept), that drops to a few dozen, and peak RSS does not grow. bench/wall.py measures
it beside the glibc defaults; figures are in bench/RESULTS.md.

It is process-wide and only ever raises how much freed memory is kept, by at most 64 MB.
Set IMAGINATION_KEEP_FREED_MEMORY=0 to leave glibc's defaults alone. It does nothing where
`mallopt` does not exist (macOS, musl).
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
MMAP_THRESHOLD = 32 << 20  # glibc's own ceiling for its dynamic threshold on 64-bit
TRIM_THRESHOLD = 64 << 20  # setting either threshold turns off glibc's dynamic adjustment, so set both

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Set glibc's thresholds once per process; True when they are set (now or before)."""
    global _applied
    if _applied is None:
        _applied = False
        if os.environ.get("IMAGINATION_KEEP_FREED_MEMORY", "1") != "0":
            libc = ctypes.CDLL(None)
            mallopt = getattr(libc, "mallopt", None)
            if mallopt is not None and hasattr(libc, "gnu_get_libc_version"):
                _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
                    mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
