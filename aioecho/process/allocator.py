"""The C allocator of a serving process: large buffers mapped on their own, and given back.

glibc's malloc maps each buffer of 128 KiB or more on its own, and unmaps
it when freed, but only until the first such buffer is freed: from then on
it raises that threshold to the size freed (up to 32 MiB), and the large
buffers a connection holds for a while (a faulted outbox, a slice of
replies) come from the heap instead, where the holes they leave stay
resident. Under ``--jitter`` or ``--fragment`` that made the server's
resident growth 1.5x what its memory budget counted (benchmarks/README.md).
Fixing the threshold where glibc starts it keeps resident memory within
what the budget counts, at no cost measured on the echo path, which reads
into one buffer per connection and answers in slices under 128 KiB.
"""

from __future__ import annotations

import ctypes
import platform

# mallopt()'s parameter for the threshold, from glibc's <malloc.h>.
M_MMAP_THRESHOLD = -3
LARGE_BUFFER = 128 * 1024  # glibc's own starting threshold


def keep_large_buffers_mapped() -> bool:
    """Fix glibc's mmap threshold at 128 KiB; whether it was (False off glibc).

    A process-wide setting, so only the command line's serving processes
    make it: an application embedding :class:`~aioecho.EchoServer` keeps
    its allocator as it has it.
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, LARGE_BUFFER))
