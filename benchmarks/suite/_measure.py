"""Clocks and memory gauges for the benchmark suite.

Times are medians of repetitions after warm-up; a callable's result is waited for (JAX
dispatches asynchronously) and dropped before the next repetition, so that each repetition
allocates what the last one freed, as a user's loop would. Memory is the process's resident
size from ``/proc/self/status``; its high-water mark is reset before a measured step, so a
peak belongs to that step alone.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any


def wait(result: Any) -> None:
    """Block until every JAX array in ``result`` is computed (torch work is synchronous)."""
    import jax

    jax.block_until_ready([x for x in jax.tree.leaves(result) if isinstance(x, jax.Array)])


def once(fn: Callable[[], Any]) -> float:
    """Seconds of one call of ``fn``, its result waited for."""
    t0 = time.perf_counter()
    result = fn()
    wait(result)
    seconds = time.perf_counter() - t0
    del result
    return seconds


def median_time(
    fn: Callable[[], Any], reps: int, warmup: int = 1, setup: Callable[[], Any] | None = None
) -> float:
    """Median seconds of ``fn`` over ``reps`` calls after ``warmup`` calls; ``setup`` runs
    before each call, outside the clock."""
    times = []
    for i in range(warmup + reps):
        if setup is not None:
            setup()
        seconds = once(fn)
        if i >= warmup:
            times.append(seconds)
    return statistics.median(times)


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of returning it to the OS
    (``mallopt``: no trimming, no ``mmap`` below 32 MiB, one arena for all threads), so that
    a steady-state repetition reuses what the last one freed, for every library in the
    process. Without it a repetition that frees and reallocates a 1.2 GB result page-faults
    all of it again. With an arena per thread, memory that one of XLA's threads freed is not
    reused by another's allocation: W2 random_structured masks + weights took 76-443 ms a
    repetition (page faults, erratic), and 66-75 ms with one arena (a 62 ms memcpy). Call
    it before any thread starts: a thread keeps the arena it has. Returns False where there
    is no glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
        ok = (
            libc.mallopt(m_trim_threshold, 2**31 - 1)
            and libc.mallopt(m_mmap_threshold, 2**25)
            and libc.mallopt(m_arena_max, 1)
        )
    except (OSError, AttributeError):
        return False
    return bool(ok)


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def rss() -> int:
    """Resident bytes of this process now."""
    gc.collect()
    return _status("VmRSS")


def reset_peak() -> None:
    """Start a new high-water mark of the resident size (Linux: ``clear_refs`` 5)."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak() -> int:
    """Highest resident bytes since :func:`reset_peak`."""
    return _status("VmHWM")


def memcpy_time(nbytes: int, reps: int) -> float:
    """Median seconds to copy ``nbytes`` between two buffers allocated and touched in advance:
    one read and one write of every byte, the floor for any pass that rewrites weights. The
    faster of NumPy's copy (one thread) and torch's (all threads), when torch is here."""
    import numpy as np

    src = np.ones(nbytes, np.uint8)
    dst = np.zeros(nbytes, np.uint8)
    best = median_time(lambda: np.copyto(dst, src), reps)
    try:
        import torch
    except ImportError:
        return best
    tsrc, tdst = torch.from_numpy(src), torch.from_numpy(dst)
    return min(best, median_time(lambda: tdst.copy_(tsrc), reps))


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import jax

    info: dict[str, Any] = {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
