"""Memory estimates made before any large allocation, and bounds on absurd counts.

A run whose arrays cannot fit should be refused in a second with a message
saying how much it needs, how much there is and what to change -- not end in a
numpy ``MemoryError`` traceback after minutes of work.  The estimates here are
deliberately simple: bytes per grid cell for each stage that runs (the arrays
it keeps alive at its peak, rounded up), bytes per cell of each input's source
window, and a count of items for combinatorial work (pairs, draws,
replicates).  They are approximate upper-level estimates, not measurements;
their purpose is to catch inputs that are wrong by orders of magnitude (a
1 m grid over 100 km, a VRT declaring 10^12 cells).

Available memory is what :func:`psutil.virtual_memory` reports, lowered to
the limit of the process's cgroup (containers, CI runners, ``systemd-run -p
MemoryMax=``) when one is set.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from leopardgeo.core.errors import ConfigError, MemoryLimitError

__all__ = [
    "RUN_BYTES_PER_CELL",
    "available_bytes",
    "check_count",
    "check_memory",
    "estimate_run_bytes",
    "fmt_bytes",
    "heap_environ",
    "keep_freed_heap",
    "one_malloc_arena",
    "small_pages",
]

#: Approximate peak bytes per grid cell of each stage (arrays alive at its
#: peak: float32 rasters 4 B, float64 cost distances 8 B, labels 4 B, masks
#: 1 B, work queues and sparse matrices), rounded up.  ``inputs`` is per input
#: raster layer; the others count once when the stage runs.  Approximate.
RUN_BYTES_PER_CELL: dict[str, float] = {
    "inputs": 5.0,  # each input raster: float32 on the grid + a validity mask
    "base": 40.0,  # suitability, resistance, patch labels, masks and their temporaries
    "territories": 60.0,  # quality, cost search, claims per sex, per-replicate rasters
    "links": 40.0,  # cost distance (float64), allocation, back-links, search heap
    "corridors": 32.0,  # the mosaic (value, link index), whole-grid searches, their bound laid out (8); windowed: their windows
    "circuit": 260.0,  # Laplacian (9 entries per row), AMG hierarchy, current and voltage
    "pinch_points": 24.0,
    "barriers": 32.0,
    "metrics": 0.0,
    "crossborder": 24.0,
    "sites": 48.0,
    "omniscape": 41.0,  # three float64 maps + no-data mask, float64 resistance and source (tasks: see stages/omniscape.py)
}

#: When neither psutil nor /proc answers (never on Linux), assume this much.
_FALLBACK_BYTES = 1 << 62


def _hugepage_switch() -> object | None:
    """The switch of numpy's transparent huge pages for large arrays (Linux), or None where numpy has none."""
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.26
        from numpy.core import multiarray  # type: ignore[no-redef]
    return getattr(multiarray, "_set_madvise_hugepage", None)


_PAGES_LOCK = threading.Lock()
_pages_depth = 0
_pages_before = True


@contextmanager
def small_pages() -> Iterator[None]:
    """Arrays allocated inside get the kernel's base pages (4 kB), not transparent huge pages.

    On Linux numpy asks for transparent huge pages (2 MB) for every array of
    4 MB or more (``madvise(MADV_HUGEPAGE)``).  A huge page needs a free
    2 MB block, and on a virtual machine whose guest reports free memory to
    its host (virtio-balloon free page reporting, in blocks of exactly that
    size) such blocks are the ones the host has taken back: their first
    touch faults through to the host.  Measured on the benchmark machine
    (2 cores, 24 GB): writing a new 389 MB array took 1.0 s with huge pages
    after a quiet spell (0.04 s right after another process had freed
    memory) and 0.15-0.21 s with base pages either way; the demo circuit
    stage's unit solves ran 30-50 % faster with their blocks on base pages
    (``benchmarks/bench_circuit_demo.py``, docs/performance.md).  On other
    machines base pages cost more page faults (a few tenths of a second per
    GB at most).  Nesting and threads are
    safe: numpy's setting is restored when the outermost block ends.  It is
    a speed setting only: no value changes.

    Examples
    --------
    >>> import numpy as np
    >>> with small_pages():
    ...     x = np.zeros((1000, 1000))
    >>> float(x.sum())
    0.0
    """
    global _pages_depth, _pages_before
    switch = _hugepage_switch()
    if switch is None:  # pragma: no cover - not numpy's Linux build
        yield
        return
    with _PAGES_LOCK:
        if _pages_depth == 0:
            _pages_before = bool(switch(False))
        _pages_depth += 1
    try:
        yield
    finally:
        with _PAGES_LOCK:
            _pages_depth -= 1
            if _pages_depth == 0:
                switch(_pages_before)


#: glibc's ``mallopt`` parameters (malloc.h): the trim and mmap thresholds, and the number of arenas.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

#: Blocks below this size come from the heap, not from a fresh ``mmap`` of their own (glibc's largest mmap
#: threshold on 64-bit systems, 32 MB): a full-grid float64 array up to 4 M cells.
HEAP_BLOCK_BYTES = 32 * 2**20
#: Free memory at the top of the heap is given back to the system beyond this much (twice the block size, the
#: ratio glibc's own adjustment keeps).
HEAP_TRIM_BYTES = 2 * HEAP_BLOCK_BYTES


def _glibc() -> Any:
    """The C library through ctypes when it is glibc (``mallopt`` as documented in malloc.h), else None."""
    try:  # glibc answers at once (platform.libc_ver() would read the interpreter's file: ~7 ms at start-up)
        glibc = (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not a POSIX libc that knows the name
        glibc = False
    if not glibc:  # pragma: no cover - not glibc
        return None
    import ctypes  # here: the many importers of this module need not load it

    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # pragma: no cover - a glibc under another name
        return None


def _mallopt(*settings: tuple[int, int]) -> bool:
    """``mallopt(parameter, value)`` for each pair, in order; True if glibc took them all."""
    libc = _glibc()
    try:
        return libc is not None and all(bool(libc.mallopt(param, value)) for param, value in settings)
    except AttributeError:  # pragma: no cover - a glibc without the call
        return False


def one_malloc_arena() -> bool:
    """Threads started from now on allocate from the process's main heap (glibc's ``M_ARENA_MAX`` = 1).

    A thread other than the main one gets a glibc arena of its own, whose heaps hold at most 64 MB: its
    full-grid arrays (17.6 MB per float64 array at the demo's 500 m) soon spill to fresh ``mmap`` blocks,
    which are unmapped when freed and faulted in again by the next draw.  From the main heap they are
    reused.  Measured with 20 ensemble draws on 2 threads (``docs/performance.md``): about half the page
    faults and 4 % less wall time per draw.  Process-wide and for good, so only the command line calls it,
    at start (it owns its process); a script that runs many draws on threads may call it first thing.
    Threads that already run keep their arena.  A speed setting only: no value changes.

    Returns
    -------
    bool
        True where set (Linux with glibc), False elsewhere.

    Examples
    --------
    >>> isinstance(one_malloc_arena(), bool)
    True
    """
    return _mallopt((_M_ARENA_MAX, 1))


def keep_freed_heap() -> bool:
    """Arrays up to 32 MB come from the heap and are reused when freed (glibc's mmap and trim thresholds fixed).

    By default glibc serves a block of 128 kB or more with an ``mmap`` of its own, which is unmapped when freed,
    and raises that threshold to the size of each such block freed; it gives the top of the heap back to the
    system once twice the threshold lies free there.  Ensemble draws free and allocate full-grid arrays of
    several sizes (17.6 MB per float64 array at the demo's 500 m) and many cost boxes of a few MB each, so the
    threshold keeps moving and the heap keeps being trimmed: each draw faults in and zeroes fresh pages again.
    With the threshold fixed at :data:`HEAP_BLOCK_BYTES` (32 MB, glibc's largest) and the trim at
    :data:`HEAP_TRIM_BYTES` (64 MB, the same ratio), blocks below 32 MB come from the heap and are reused.
    Measured on 16-draw ensembles of the demo at 500 m, one thread each, run in pairs at the same time
    (``docs/performance.md``): 2-3 % less CPU per draw, the same peak resident memory.  Process-wide and for
    good, so only the command line calls it, at start (it owns its process); a script that runs many draws may
    call it first thing.  Worker processes of a local cluster get the same through their environment
    (:func:`heap_environ`).  A speed setting only: no value changes.

    Returns
    -------
    bool
        True where set (Linux with glibc), False elsewhere.

    Examples
    --------
    >>> isinstance(keep_freed_heap(), bool)
    True
    """
    return _mallopt((_M_MMAP_THRESHOLD, HEAP_BLOCK_BYTES), (_M_TRIM_THRESHOLD, HEAP_TRIM_BYTES))


def heap_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """What :func:`keep_freed_heap` sets, as the environment of a process about to start (glibc reads it at start).

    A value already in ``environ`` (default ``os.environ``: the user's) is kept.

    Examples
    --------
    >>> heap_environ({})
    {'MALLOC_MMAP_THRESHOLD_': '33554432', 'MALLOC_TRIM_THRESHOLD_': '67108864'}
    >>> heap_environ({"MALLOC_TRIM_THRESHOLD_": "0"})["MALLOC_TRIM_THRESHOLD_"]
    '0'
    """
    env = os.environ if environ is None else environ
    ours = {"MALLOC_MMAP_THRESHOLD_": str(HEAP_BLOCK_BYTES), "MALLOC_TRIM_THRESHOLD_": str(HEAP_TRIM_BYTES)}
    return {name: env.get(name, value) for name, value in ours.items()}


def fmt_bytes(n: float) -> str:
    """Bytes as a short human-readable string.

    Examples
    --------
    >>> fmt_bytes(3.2e9), fmt_bytes(4_000_000), fmt_bytes(12)
    ('3.2 GB', '4.0 MB', '12 bytes')
    >>> fmt_bytes(4e15)
    '4,000,000.0 GB'
    """
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n:.0f} bytes"


def _cgroup_bytes(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Memory left under the process's cgroup limit (v2 ``memory.max`` or v1 ``memory.limit_in_bytes``), or None."""
    files = (("memory.max", "memory.current"), ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"))
    for limit_name, usage_name in files:
        try:
            raw = (root / limit_name).read_text().strip()
        except OSError:
            continue
        if not raw.isdigit():  # "max": no limit
            return None
        limit = int(raw)
        if limit >= 1 << 60:  # cgroup v1 writes a huge number for "no limit"
            return None
        try:
            used = int((root / usage_name).read_text().strip())
        except (OSError, ValueError):
            used = 0
        return max(0, limit - used)
    return None


def available_bytes() -> int:
    """Memory this process can still allocate: psutil's available memory, capped by the cgroup limit.

    Examples
    --------
    >>> available_bytes() > 0
    True
    """
    have: int | None = None
    try:
        import psutil

        have = int(psutil.virtual_memory().available)
    except Exception:  # pragma: no cover - psutil missing or unsupported platform
        try:
            with open("/proc/meminfo") as fh:
                for line in fh:
                    if line.startswith("MemAvailable:"):
                        have = int(line.split()[1]) * 1024
        except OSError:
            have = None
    cg = _cgroup_bytes()
    if have is None:
        return cg if cg is not None else _FALLBACK_BYTES
    return min(have, cg) if cg is not None else have


def estimate_run_bytes(n_cells: int, *, n_inputs: int, stages: Iterable[str]) -> dict[str, int]:
    """Approximate peak bytes of a run, by part: the input layers and each stage that runs.

    Parameters
    ----------
    n_cells
        Cells of the analysis grid.
    n_inputs
        Raster layers read onto the grid.
    stages
        Names of the stages that run (keys of :data:`RUN_BYTES_PER_CELL`;
        unknown names count nothing).

    Returns
    -------
    dict
        Part -> bytes; ``"total"`` is the sum.

    Examples
    --------
    >>> est = estimate_run_bytes(1_000_000, n_inputs=3, stages=["links"])
    >>> est["inputs"], est["links"], est["total"]
    (15000000, 40000000, 95000000)
    """
    parts = {"inputs": int(n_cells * RUN_BYTES_PER_CELL["inputs"] * max(n_inputs, 1))}
    parts["base"] = int(n_cells * RUN_BYTES_PER_CELL["base"])
    for s in stages:
        if s in RUN_BYTES_PER_CELL and s not in parts:
            parts[s] = int(n_cells * RUN_BYTES_PER_CELL[s])
    parts["total"] = sum(parts.values())
    return parts


def check_memory(need_bytes: float, *, what: str, fix: str, limit_bytes: float | None = None) -> None:
    """Refuse work estimated to need more memory than is available (or than ``limit_bytes``).

    Raises
    ------
    MemoryLimitError
        Saying how much is needed, how much is available and ``fix``.

    Examples
    --------
    >>> check_memory(1e3, what="a small array", fix="nothing")
    >>> check_memory(1e30, what="the run (10^29 cells)", fix="Use coarser cells.")
    Traceback (most recent call last):
    ...
    leopardgeo.core.errors.MemoryLimitError: the run (10^29 cells): expected to need about ... Use coarser cells.
    """
    have = available_bytes() if limit_bytes is None else limit_bytes
    if need_bytes > have:
        source = "the configured limit" if limit_bytes is not None else "available memory (cgroup limit included)"
        msg = f"{what}: expected to need about {fmt_bytes(need_bytes)}, found {fmt_bytes(have)} of {source}. {fix}"
        raise MemoryLimitError(msg)


def check_count(value: int, *, name: str, limit: int, fix: str) -> None:
    """Refuse an absurd count (replicates, draws, pairs) with a clear :class:`ConfigError`.

    Raises
    ------
    ConfigError
        If ``value`` exceeds ``limit``.

    Examples
    --------
    >>> check_count(5, name="[territories] replicates", limit=10_000, fix="Use fewer.")
    >>> check_count(10**9, name="[territories] replicates", limit=10_000, fix="Use fewer.")
    Traceback (most recent call last):
    ...
    leopardgeo.core.errors.ConfigError: [territories] replicates: expected at most 10,000, found 1,000,000,000. Use fewer.
    """
    if value > limit:
        msg = f"{name}: expected at most {limit:,}, found {value:,}. {fix}"
        raise ConfigError(msg)


def parts_text(parts: Mapping[str, int]) -> str:
    """``"inputs 1.0 GB, links 2.0 GB, ..."``: the largest parts of an estimate, for messages."""
    items = sorted(((k, v) for k, v in parts.items() if k != "total" and v > 0), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {fmt_bytes(v)}" for k, v in items[:4])


def cells_text(n: float) -> str:
    """A cell count for messages (``"1.0e+12"`` beyond a billion)."""
    return f"{n:,.0f}" if n < 1e9 else f"{n:.1e}"

