"""One executor for every task-parallel part: local threads by default, Dask when asked.

Everything in leopardgeo that runs independent tasks side by side (ensemble
draws, territory replicates, population-simulation runs, pairwise circuit
solves in batches, per-patch searches) goes through :func:`get_executor`, so
one setting decides how many cores a run uses and where:

* nothing set: a pool of local threads, as many as :func:`available_cores`
  (the compiled kernels release the GIL, so threads run in parallel);
* ``workers = N``: a :class:`distributed.LocalCluster` of ``N`` worker
  processes on this machine, started here and closed with the executor;
* ``scheduler = "tcp://host:8786"``: joins a running Dask cluster (SLURM via
  dask-jobqueue, Kubernetes via dask-kubernetes, ``dask scheduler`` by hand);
  the cluster is left running when the executor closes.

Results never depend on the choice: :meth:`Executor.map` returns results in
the order of its items, and a seeded map hands task ``i`` the ``i``-th child
of ``numpy.random.SeedSequence(seed).spawn(n)`` -- the same stream whatever
the executor, the number of workers or the order tasks finish in.

Cores are shared out, never oversubscribed: :func:`available_cores` honours
the CPU affinity mask and cgroup v1 / v2 CPU quotas (containers, CI runners,
``taskset``, ``systemd-run -p CPUQuota=``), and inside a task it returns only
that task's share, so kernels that start their own threads (numba ``prange``,
BLAS, a thread pool) use ``cores // concurrent tasks`` each.  Dask workers
get the same budget through ``LEOPARDGEO_CORES`` and the BLAS variables in
their environment; numba's threads follow it in every task
(``numba.set_num_threads``, which numba keeps per thread).

Dask and numpy are imported only when used, so ``import leopardgeo`` and
``leopardgeo --help`` stay fast.

Examples
--------
>>> from leopardgeo.core.executor import ExecutorConfig, get_executor
>>> with get_executor(ExecutorConfig(threads=2)) as ex:
...     ex.map(pow, [(2, 3), (3, 2)], star=True)
[8, 9]
>>> def draw(item, seed_seq):
...     import numpy as np
...     return round(float(np.random.default_rng(seed_seq).random()), 6) + item
>>> with get_executor() as ex:
...     a = ex.map(draw, [0, 10, 20], seed=42)
>>> with get_executor(ExecutorConfig(threads=1)) as ex:
...     a == ex.map(draw, [0, 10, 20], seed=42)
True
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import math
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from leopardgeo.core.errors import ConfigError, LeopardGeoError

__all__ = [
    "DaskExecutor",
    "Executor",
    "ExecutorConfig",
    "ExecutorError",
    "Shared",
    "ThreadExecutor",
    "available_cores",
    "core_budget",
    "current_executor",
    "get_executor",
    "native_thread_limit",
    "task_cores",
    "use_executor",
    "WorkerLostError",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long joining a running scheduler may take before it counts as unreachable.
CONNECT_TIMEOUT = "20s"

#: Environment variable that caps :func:`available_cores` (set for Dask workers; a user may set it too).
CORES_ENV = "LEOPARDGEO_CORES"

# The executor set by use_executor() in this thread (None: local threads).
_CURRENT: contextvars.ContextVar[Executor | None] = contextvars.ContextVar("leopardgeo_executor", default=None)

# The core budget of the task running in this thread (None outside a task).
_TASK_CORES: contextvars.ContextVar[int | None] = contextvars.ContextVar("leopardgeo_task_cores", default=None)


class ExecutorError(LeopardGeoError):
    """The Dask cluster could not be started or reached, or Dask is not installed."""


class WorkerLostError(ExecutorError):
    """A Dask worker died (killed, out of memory, its machine gone) while it held a task or shared data."""


def _worker_lost(exc: BaseException, label: str) -> WorkerLostError | None:
    """The :class:`WorkerLostError` for a Dask exception that means a worker was lost, else None.

    Dask raises ``KilledWorker`` when a task's workers died ``distributed.scheduler.allowed-failures``
    times, ``CancelledError`` / ``FutureCancelledError`` when a future (e.g. scattered data on a lost
    worker) is gone, and ``CommClosedError`` when the connection to a worker or the scheduler closed.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from distributed.scheduler import KilledWorker
    >>> e = _worker_lost(KilledWorker("draw-1", SimpleNamespace(address="tcp://127.0.0.1:1"), 3), "draw")
    >>> type(e).__name__, "memory_limit_gb" in str(e)
    ('WorkerLostError', True)
    >>> _worker_lost(ValueError("x"), "draw") is None
    True
    """
    import concurrent.futures

    kinds: tuple[type[BaseException], ...] = (concurrent.futures.CancelledError,)  # Dask's FutureCancelledError too
    try:
        from distributed.comm.core import CommClosedError
        from distributed.scheduler import KilledWorker

        kinds = (*kinds, KilledWorker, CommClosedError)
    except ImportError:  # pragma: no cover - dask is a dependency
        pass
    if not isinstance(exc, kinds):
        return None
    try:
        what = str(exc)
    except Exception:  # a Dask exception whose str() fails must not hide the translation
        what = "no details"
    msg = (
        f"{label}: expected every Dask worker to stay up until its tasks finished, found a worker lost mid-run "
        f"({type(exc).__name__}: {what}). A worker dies when it is killed, runs out of memory (the nanny kills it "
        "past its memory limit) or its machine goes away. Rerun the same command: work already saved is kept "
        "(an ensemble resumes from its finished draws). If workers keep dying, give them more memory "
        "([executor] memory_limit_gb), fewer threads each ([executor] threads) or use local threads."
    )
    return WorkerLostError(msg)


# ---------------------------------------------------------------------- cores
def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _own_cgroup_dirs(root: Path, proc_cgroup: Path, controller: str | None) -> list[Path]:
    """Folders of this process's cgroup and its ancestors under ``root`` (innermost first), plus ``root``."""
    text = _read(proc_cgroup) or ""
    rel = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        names = parts[1].split(",") if parts[1] else []
        if (controller is None and parts[0] == "0" and not parts[1]) or (controller is not None and controller in names):
            rel = parts[2]
            break
    dirs: list[Path] = []
    if rel and rel != "/":
        p = Path(rel.lstrip("/"))
        while p != Path("."):
            dirs.append(root / p)
            p = p.parent
    dirs.append(root)
    return dirs


def _cgroup_cpus(root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """CPUs allowed by the tightest cgroup CPU quota on this process's path (v2 ``cpu.max``, v1 CFS), or None."""
    limits: list[float] = []
    # cgroup v2: "<quota> <period>" or "max <period>", in each folder from ours up to the root
    for d in _own_cgroup_dirs(root, proc_cgroup, None):
        raw = _read(d / "cpu.max")
        if raw:
            quota, _, period = raw.partition(" ")
            if quota.isdigit() and period.isdigit() and int(period) > 0:
                limits.append(int(quota) / int(period))
    # cgroup v1: cpu.cfs_quota_us (-1 = none) / cpu.cfs_period_us, under "cpu" or "cpu,cpuacct"
    for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        base = root / mount
        if not base.is_dir():
            continue
        for d in _own_cgroup_dirs(base, proc_cgroup, "cpu"):
            quota, period = _read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us")
            if quota and period and quota.isdigit() and period.isdigit() and int(period) > 0:
                limits.append(int(quota) / int(period))
        break
    return min(limits) if limits else None


def _machine_cores() -> int:
    """Cores this process may run on: the affinity mask, lowered to the cgroup quota (rounded up)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - macOS, Windows
        n = os.cpu_count() or 1
    quota = _cgroup_cpus()
    if quota is not None and quota > 0:
        n = min(n, max(1, math.ceil(quota)))
    env = os.environ.get(CORES_ENV, "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            msg = f"{CORES_ENV}: expected an integer >= 1 (cores leopardgeo may use), found {env!r}. Unset it or fix it."
            raise ConfigError(msg)
        n = min(n, int(env))
    return max(1, n)


def available_cores() -> int:
    """Cores the calling code may keep busy: use this instead of ``os.cpu_count()``.

    Outside an executor task: the CPUs in this process's affinity mask
    (``taskset``, ``numactl``, SLURM's binding), lowered to the cgroup v2
    ``cpu.max`` or v1 CFS quota (containers, CI runners) and to
    ``$LEOPARDGEO_CORES`` when set.  Inside a task of :meth:`Executor.map`:
    that task's share of them, so nested thread pools and numba ``prange``
    loops do not oversubscribe the machine.

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> available_cores() >= 1
    True
    """
    budget = _TASK_CORES.get()
    if budget is not None and budget <= 1:
        return 1  # whatever the machine has: spares the cgroup files, read each time otherwise (ensemble draws)
    n = _machine_cores()
    return max(1, min(n, budget)) if budget is not None else n


def task_cores(concurrent: int, cores: int | None = None) -> int:
    """Cores each of ``concurrent`` simultaneous tasks may use (at least 1).

    Examples
    --------
    >>> task_cores(2, cores=8), task_cores(3, cores=2)
    (4, 1)
    """
    total = available_cores() if cores is None else cores
    return max(1, total // max(1, concurrent))


@contextlib.contextmanager
def core_budget(n: int) -> Iterator[None]:
    """Run the block with :func:`available_cores` capped at ``n``, numba's threads too (this thread only).

    Work whose floating-point results could depend on the number of threads (parallel sums) runs under
    ``core_budget(1)`` when results must be identical on every executor.

    Examples
    --------
    >>> with core_budget(1):
    ...     available_cores()
    1
    """
    token = _TASK_CORES.set(n)
    numba_before = _numba_threads(n)
    try:
        yield
    finally:
        if numba_before is not None:
            _numba_threads(numba_before)
        _TASK_CORES.reset(token)


def _numba_threads(n: int) -> int | None:
    """Set numba's thread count for this thread (numba keeps it per thread); the old value, None without numba."""
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency
        return None
    try:
        before = int(numba.get_num_threads())
        numba.set_num_threads(max(1, min(n, int(numba.config.NUMBA_NUM_THREADS))))
    except Exception:  # pragma: no cover - a threading layer that cannot start
        return None
    return before


# ---------------------------------------------------------------------- config
@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutorConfig:
    """Where a run's parallel tasks execute (``[executor]``; the CLI's ``--workers`` / ``--scheduler`` / ``--threads``).

    Results do not depend on any of these settings.

    Examples
    --------
    >>> ExecutorConfig().kind, ExecutorConfig(workers=2).kind, ExecutorConfig(scheduler="tcp://h:8786").kind
    ('threads', 'local_cluster', 'scheduler')
    >>> ExecutorConfig(workers=0)
    Traceback (most recent call last):
    ...
    leopardgeo.core.errors.ConfigError: [executor] workers: expected an integer >= 1, found 0. ...
    """

    workers: int | None = field(
        default=None,
        metadata={"doc": "worker processes of a local Dask cluster (LocalCluster); default: no cluster, local threads"},
    )
    scheduler: str | None = field(
        default=None,
        metadata={"doc": "address of a running Dask scheduler to join, e.g. 'tcp://10.0.0.5:8786' (not with workers)"},
    )
    threads: int | None = field(
        default=None,
        metadata={"doc": "threads: of the local pool, or per worker process; default: the available cores (shared out)"},
    )
    memory_limit_gb: float | None = field(
        default=None,
        metadata={"doc": "memory limit of each local worker process, GB; default: available memory / workers"},
    )

    def __post_init__(self) -> None:
        for name in ("workers", "threads"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                msg = f"[executor] {name}: expected an integer >= 1, found {value!r}. Leave it out for the default."
                raise ConfigError(msg)
        if self.scheduler is not None and (not isinstance(self.scheduler, str) or not self.scheduler.strip()):
            msg = f"[executor] scheduler: expected an address such as 'tcp://host:8786', found {self.scheduler!r}."
            raise ConfigError(msg)
        if self.scheduler is not None and self.workers is not None:
            msg = (
                f"[executor] workers = {self.workers} and scheduler = {self.scheduler!r}: expected one of them "
                "(workers starts a local cluster, scheduler joins a running one). Remove one."
            )
            raise ConfigError(msg)
        m = self.memory_limit_gb
        if m is not None and (isinstance(m, bool) or not isinstance(m, int | float) or not m > 0 or m == float("inf")):
            msg = f"[executor] memory_limit_gb: expected a finite number > 0, found {m!r}."
            raise ConfigError(msg)

    @property
    def kind(self) -> str:
        """``"threads"``, ``"local_cluster"`` or ``"scheduler"``."""
        if self.scheduler is not None:
            return "scheduler"
        return "local_cluster" if self.workers is not None else "threads"


# ---------------------------------------------------------------------- shared arrays
# The shared objects a Dask task was given (key -> object), set while the task runs.
_TASK_SHARED: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("leopardgeo_shared", default=None)


class Shared(Generic[T]):
    """A handle to a large object sent to the workers once; :meth:`get` returns it inside a task.

    Made by :meth:`Executor.share`.  Pass the handle (small) in task items
    instead of the object (large).  For local threads it holds the object
    itself; for Dask it holds the key of data scattered to every worker.
    """

    __slots__ = ("_key", "_value")

    def __init__(self, value: Any = None, key: str | None = None) -> None:
        self._value = value
        self._key = key

    def __reduce__(self) -> Any:
        # on Dask only the key travels; a thread handle is never pickled by the executor
        return (Shared, (None if self._key else self._value, self._key))

    def get(self) -> T:
        """The shared object (on a Dask worker: the worker's copy, delivered with the task's dependencies)."""
        if self._key is None:
            return self._value
        values = _TASK_SHARED.get()
        if values is None or self._key not in values:
            msg = (
                f"shared object {self._key!r}: expected inside a task of the executor that shared it, found it "
                "asked for elsewhere (or after Executor.release). Call get() in the task function."
            )
            raise ExecutorError(msg)
        return values[self._key]

    def __repr__(self) -> str:
        return f"Shared(key={self._key!r})" if self._key else f"Shared({type(self._value).__name__})"


# ---------------------------------------------------------------------- executors
def _seeds(seed: Any, n: int) -> list[Any]:
    import numpy as np

    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return ss.spawn(n)


def _run_task(fn: Callable[..., Any], item: Any, seed_seq: Any, star: bool, seeded: bool, cores: int) -> Any:
    """One task: ``fn(item)`` / ``fn(*item)``, plus its SeedSequence when seeded, within its core budget."""
    args = tuple(item) if star else (item,)
    if seeded:
        args = (*args, seed_seq)
    with core_budget(cores):
        return fn(*args)


class Executor:
    """Runs independent tasks; results in item order.  Use as a context manager."""

    kind = "abstract"

    @property
    def slots(self) -> int:
        """Tasks that run at the same time."""
        raise NotImplementedError

    def map(
        self,
        fn: Callable[..., T],
        items: Iterable[Any],
        *,
        seed: Any = None,
        label: str | None = None,
        star: bool = False,
        progress: Callable[[int, int], None] | None = None,
        on_result: Callable[[int, Any], None] | None = None,
    ) -> list[T]:
        """``[fn(item) for item in items]``, run in parallel, in the order of ``items``.

        Parameters
        ----------
        fn
            A function of one item (``star=True``: of the item's elements).
            For Dask it must be importable by the workers (a module-level
            function, or a :func:`functools.partial` of one).
        items
            The tasks' inputs.  Large arrays go in through :meth:`share`.
        seed
            When given (an int or a :class:`numpy.random.SeedSequence`), task
            ``i`` gets ``SeedSequence(seed).spawn(len(items))[i]`` as a last
            argument, whatever the executor.
        label
            Name of the tasks in logs and the Dask dashboard.
        star
            Unpack each item into positional arguments.
        progress
            Called as ``progress(done, total)`` after each task finishes (in
            the calling thread), for a progress bar.
        on_result
            Called as ``on_result(i, result)`` as soon as task ``i`` finishes
            (in the calling thread, in the order tasks finish), e.g. to save
            each result without waiting for the slowest task of the map.

        Returns
        -------
        list
            One result per item, in item order.  The first exception a task
            raises is raised here.

        Raises
        ------
        WorkerLostError
            On Dask, when a worker died while it ran a task or held data the
            tasks need.
        """
        raise NotImplementedError

    def share(self, obj: T) -> Shared[T]:
        """Send a large object (an array, a grid) to the workers once; put the handle in task items."""
        raise NotImplementedError

    def task_memory_bytes(self) -> int:
        """Memory one task may use when every slot is busy (for up-front checks, :mod:`leopardgeo.core.memory`)."""
        from leopardgeo.core.memory import available_bytes

        return int(available_bytes() // max(1, self.slots))

    def release(self, handle: Shared[Any]) -> None:
        """Forget a shared object (a no-op for local threads)."""

    def close(self) -> None:
        """Release the pool or the cluster this executor started."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ThreadExecutor(Executor):
    """Local threads (the default).  ``threads=1`` runs the tasks one after another in the calling thread.

    While tasks run side by side, BLAS is held to one thread per task and
    :func:`available_cores` returns each task's share of the cores.
    """

    kind = "threads"

    def __init__(self, threads: int | None = None) -> None:
        self.threads = available_cores() if threads is None else max(1, int(threads))

    @property
    def slots(self) -> int:
        """Threads that run tasks."""
        return self.threads

    def map(
        self,
        fn: Callable[..., T],
        items: Iterable[Any],
        *,
        seed: Any = None,
        label: str | None = None,
        star: bool = False,
        progress: Callable[[int, int], None] | None = None,
        on_result: Callable[[int, Any], None] | None = None,
    ) -> list[T]:
        """See :meth:`Executor.map`."""
        items = list(items)
        n = len(items)
        seeds = _seeds(seed, n) if seed is not None else [None] * n
        seeded = seed is not None
        workers = min(self.threads, n)
        log.debug("%s: %d tasks on %d thread(s)", label or getattr(fn, "__name__", "tasks"), n, max(workers, 1))
        if workers <= 1:
            cores = available_cores()
            out = []
            for i, (item, ss) in enumerate(zip(items, seeds, strict=True)):
                out.append(_run_task(fn, item, ss, star, seeded, cores))
                if on_result is not None:
                    on_result(i, out[-1])
                if progress is not None:
                    progress(i + 1, n)
            return out
        from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

        cores = task_cores(workers)
        results: list[Any] = [None] * n
        pool_ = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=label or "leopardgeo")
        with native_thread_limit(cores), pool_ as pool:
            futures = {
                pool.submit(_run_task, fn, item, ss, star, seeded, cores): i
                for i, (item, ss) in enumerate(zip(items, seeds, strict=True))
            }
            done_count = 0
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for f in done:
                    exc = f.exception()
                    if exc is not None:
                        for p in pending:
                            p.cancel()
                        raise exc
                    results[futures[f]] = f.result()
                    if on_result is not None:
                        on_result(futures[f], results[futures[f]])
                    done_count += 1
                    if progress is not None:
                        progress(done_count, n)
        return results

    def share(self, obj: T) -> Shared[T]:
        """The object itself behind a handle (threads share memory)."""
        return Shared(obj)

    def __repr__(self) -> str:
        return f"ThreadExecutor(threads={self.threads})"


_NATIVE_LOCK = threading.Lock()
_NATIVE_HOLDERS: dict[int, tuple[int, str | None]] = {}  # id of a holder -> (threads, user_api)
_NATIVE_ORIGINAL: list[Any] = [None]  # the first holder's limiter: it restores the limits found before it


def _apply_native_limits() -> None:
    """Set the native pools to the least limit held (under ``_NATIVE_LOCK``), or restore them when none is."""
    if not _NATIVE_HOLDERS:
        if _NATIVE_ORIGINAL[0] is not None:
            _NATIVE_ORIGINAL[0].restore_original_limits()
            _NATIVE_ORIGINAL[0] = None
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return
    blas = min(n for n, _ in _NATIVE_HOLDERS.values())
    every = [n for n, api in _NATIVE_HOLDERS.values() if api is None]
    limits = {"blas": blas} if not every else {"blas": blas, "openmp": min(every)}
    limiter = threadpool_limits(limits=limits)
    if _NATIVE_ORIGINAL[0] is None:
        _NATIVE_ORIGINAL[0] = limiter  # created before any limit: its originals are the process's own


@contextlib.contextmanager
def native_thread_limit(n: int, *, user_api: str | None = None) -> Iterator[None]:
    """Hold native thread pools to at most ``n`` threads while the block runs, process-wide (threadpoolctl).

    ``user_api="blas"``: BLAS only; None: BLAS and OpenMP.  One reference-counted mechanism for every
    caller: the first holder in records the limits it found, each holder's limit applies while it holds
    (the least of those held wins, so a nested or concurrent holder can only lower it), and the last
    holder out restores what the first found.  The executor holds BLAS to each task's share while tasks
    run side by side; a pairwise circuit solve holds BLAS to one thread.

    Examples
    --------
    >>> from threadpoolctl import threadpool_info
    >>> before = [p["num_threads"] for p in threadpool_info()]
    >>> with native_thread_limit(2), native_thread_limit(1, user_api="blas"):
    ...     all(p["num_threads"] <= 1 for p in threadpool_info() if p["user_api"] == "blas")
    True
    >>> [p["num_threads"] for p in threadpool_info()] == before
    True
    """
    key = object()
    with _NATIVE_LOCK:
        _NATIVE_HOLDERS[id(key)] = (max(1, int(n)), user_api)
        _apply_native_limits()
    try:
        yield
    finally:
        with _NATIVE_LOCK:
            del _NATIVE_HOLDERS[id(key)]
            _apply_native_limits()


def _worker_env(cores_per_task: int) -> dict[str, str]:
    """Environment of a local worker process: its core budget for leopardgeo and BLAS / OpenMP.

    Not ``NUMBA_NUM_THREADS``: numba refuses a change of it once its threads
    run, and Dask applies ``env`` after the worker has started; numba is held
    to the budget by ``numba.set_num_threads`` in each task instead.
    """
    n = str(max(1, cores_per_task))
    return {
        CORES_ENV: n,
        "OMP_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
    }


@contextlib.contextmanager
def _restored_env(values: dict[str, str | None]) -> Iterator[None]:
    """Put each ``os.environ[name]`` back to its value in ``values`` (None: unset) on leaving.

    Dask's nannies set their pre-spawn environment in this process's ``os.environ`` before spawning a worker and
    leave it there; the workers' MALLOC_ settings are for them, not for the processes the user starts later.
    """
    try:
        yield
    finally:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class DaskExecutor(Executor):
    """Tasks on a Dask cluster: a ``LocalCluster`` of worker processes started here, or a running scheduler.

    Parameters
    ----------
    config
        ``workers`` (start a local cluster) or ``scheduler`` (join one);
        ``threads`` per worker (default: the available cores shared out, so
        ``workers x threads`` does not exceed them).
    """

    kind = "dask"

    def __init__(self, config: ExecutorConfig) -> None:
        try:
            import distributed
        except ImportError as exc:  # pragma: no cover - dask is a dependency
            msg = (
                f"[executor] {config.kind}: expected dask.distributed to be installed, found it missing. "
                "Install it (pip install 'dask[distributed]') or leave workers / scheduler unset for local threads."
            )
            raise ExecutorError(msg) from exc
        self.config = config
        if not log.isEnabledFor(logging.DEBUG):  # Dask's connection chatter only with -vv
            logging.getLogger("distributed").setLevel(logging.WARNING)
        self._cluster: Any = None
        self._shared: dict[str, Any] = {}
        try:
            if config.scheduler is not None:
                self.client = distributed.Client(config.scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
            else:
                assert config.workers is not None
                cores = available_cores()
                threads = config.threads or max(1, cores // config.workers)
                mem: Any = "auto"
                if config.memory_limit_gb is not None:
                    mem = int(config.memory_limit_gb * 1e9)
                import dask

                from leopardgeo.core.memory import heap_environ

                # no heartbeat deadline: a worker busy in one long compiled call, or starved on a loaded machine, is
                # not restarted (a restart loses the data share() scattered to it).
                # Not Dask's MALLOC_TRIM_THRESHOLD_ in the workers: it returns freed memory to the system early, which
                # also turns off glibc's dynamic mmap threshold, so every full-grid array a task allocates is a fresh
                # mmap and its pages are faulted in and zeroed again: 40-70 % more CPU per ensemble draw than the same
                # draw in this process (docs/performance.md). Instead the mmap and trim thresholds of
                # core.memory.keep_freed_heap, as the command line sets them in its own process (2-3 % less CPU per
                # draw than glibc's moving threshold); a value the user set in the environment is passed on.
                # MALLOC_ARENA_MAX=1: a worker runs its tasks in a thread of its own, whose glibc arena keeps
                # full-grid arrays in heaps of at most 64 MB and unmaps them when freed; with one arena they come from
                # the main heap and are reused (2-4 % less time per ensemble draw on a 2-worker LocalCluster, half the
                # page faults: docs/performance.md). Less bookkeeping beside the tasks, on the same cores (the
                # dashboard's pages; docs/performance.md): no statistical profiler in the workers (it sampled the
                # running task's stack every 10 ms: 15-20 ms of a worker's CPU per ensemble draw of ~0.6 s), the event
                # loops' health check every second, not every 20 ms (a loop blocked for more than its 3 s limit is
                # still reported), and the system monitor's psutil readings every 5 s, without disk counters, not
                # every 0.5 s.  The memory monitors that pause, spill and restart workers keep Dask's interval.
                settings = {
                    "distributed.scheduler.worker-ttl": None,
                    **{f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in heap_environ().items()},
                    "distributed.nanny.pre-spawn-environ.MALLOC_ARENA_MAX": 1,
                    "distributed.worker.profile.enabled": False,
                    "distributed.admin.tick.interval": "1s",
                    "distributed.admin.system-monitor.interval": "5s",
                    "distributed.admin.system-monitor.disk": False,
                }
                before = {k: os.environ.get(k) for k in ("MALLOC_ARENA_MAX", *heap_environ())}
                with dask.config.set(settings), _restored_env(before):
                    self._cluster = distributed.LocalCluster(
                        n_workers=config.workers,
                        threads_per_worker=threads,
                        processes=True,
                        memory_limit=mem,
                        dashboard_address=":0",  # a free port: several runs may share a machine
                        env=_worker_env(max(1, cores // (config.workers * threads))),
                        silence_logs=logging.ERROR,
                    )
                self.client = distributed.Client(self._cluster, set_as_default=False)
                self.client.wait_for_workers(config.workers, timeout=CONNECT_TIMEOUT)  # so share() reaches them all
        except (OSError, TimeoutError) as exc:
            self.close()
            where = f"the scheduler at {config.scheduler!r}" if config.scheduler else f"{config.workers} local workers"
            msg = (
                f"[executor] expected to reach {where}, found: {exc}. Check the address and that the scheduler is "
                "running (`dask scheduler`), or leave workers / scheduler unset for local threads."
            )
            raise ExecutorError(msg) from exc

    @property
    def slots(self) -> int:
        """Worker threads of the cluster (tasks that run at the same time)."""
        info = self.client.nthreads()
        return max(1, sum(info.values()))

    def task_memory_bytes(self) -> int:
        """The smallest worker's memory limit over its threads (workers without a limit: this machine's memory)."""
        from leopardgeo.core.memory import available_bytes

        per = []
        for w in self.client.scheduler_info().get("workers", {}).values():
            limit = int(w.get("memory_limit") or 0) or available_bytes()
            per.append(limit // max(1, int(w.get("nthreads", 1))))
        return min(per) if per else available_bytes()

    def _cores_per_task(self) -> int:
        if self._cluster is not None:
            cores = available_cores()
            return max(1, cores // self.slots)
        return 0  # a remote cluster: each worker's own environment decides

    def map(
        self,
        fn: Callable[..., T],
        items: Iterable[Any],
        *,
        seed: Any = None,
        label: str | None = None,
        star: bool = False,
        progress: Callable[[int, int], None] | None = None,
        on_result: Callable[[int, Any], None] | None = None,
    ) -> list[T]:
        """See :meth:`Executor.map`."""
        from distributed import as_completed

        items = list(items)
        n = len(items)
        if n == 0:
            return []
        seeds = _seeds(seed, n) if seed is not None else [None] * n
        name = label or getattr(fn, "__name__", "task")
        token = uuid.uuid4().hex[:8]
        cores = self._cores_per_task()
        # every shared object is a dependency of every task: Dask moves each to a worker once and keeps it there
        shared = dict(self._shared)
        futures = [
            self.client.submit(
                _run_remote, fn, item, ss, star, seed is not None, cores, shared, key=f"{name}-{token}-{i}", pure=False
            )
            for i, (item, ss) in enumerate(zip(items, seeds, strict=True))
        ]
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            if progress is None and on_result is None:
                return self.client.gather(futures)
            out: list[Any] = [None] * n
            for done, f in enumerate(as_completed(futures, loop=self.client.loop), start=1):
                i = index[f.key]
                out[i] = f.result()  # each result fetched once (not again by a gather at the end)
                if on_result is not None:
                    on_result(i, out[i])
                if progress is not None:
                    progress(done, n)
            return out
        except Exception as exc:
            lost = _worker_lost(exc, name)
            if lost is None:
                raise
            raise lost from exc
        finally:
            for f in futures:
                f.release()

    def share(self, obj: T) -> Shared[T]:
        """Scatter ``obj`` to every worker once (kept until the executor closes)."""
        # in a list of one, so a tuple or dict goes as one object, not one per element
        (future,) = self.client.scatter([obj], broadcast=True, hash=False)
        self._shared[future.key] = future
        return Shared(key=future.key)

    def release(self, handle: Shared[Any]) -> None:
        """Let the cluster forget a shared object (tasks after this cannot get() it)."""
        future = self._shared.pop(handle._key, None) if handle._key else None
        if future is not None:
            future.release()

    def close(self) -> None:
        """Close the client, and the local cluster when this executor started it."""
        self._shared.clear()
        client = getattr(self, "client", None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()
            self._cluster = None

    def __repr__(self) -> str:
        where = self.config.scheduler or f"LocalCluster(workers={self.config.workers})"
        return f"DaskExecutor({where})"


def _run_remote(
    fn: Callable[..., Any], item: Any, seed_seq: Any, star: bool, seeded: bool, cores: int, shared: dict[str, Any]
) -> Any:
    """A task on a Dask worker, with the shared objects (Dask resolved their futures); the budget given, else the worker's."""
    token = _TASK_SHARED.set(shared)
    try:
        return _run_task(fn, item, seed_seq, star, seeded, cores or available_cores())
    finally:
        _TASK_SHARED.reset(token)


def get_executor(config: ExecutorConfig | None = None, **overrides: Any) -> Executor:
    """The executor ``config`` asks for: local threads by default, a Dask cluster with workers / scheduler.

    Parameters
    ----------
    config
        ``[executor]`` of the run config; ``None``: the defaults.
    **overrides
        Fields replaced in ``config`` (``workers=2``); ``None`` values are
        ignored, so CLI options can be passed as they come.

    Returns
    -------
    Executor
        Use it as a context manager; closing it stops a cluster it started.

    Raises
    ------
    ConfigError
        On invalid settings.
    ExecutorError
        When the cluster cannot be started or reached.

    Examples
    --------
    >>> with get_executor(threads=3) as ex:
    ...     ex.slots, ex.map(str.upper, ["a", "b"])
    (3, ['A', 'B'])
    """
    cfg = config if config is not None else ExecutorConfig()
    changes = {k: v for k, v in overrides.items() if v is not None}
    if changes:
        try:
            cfg = dataclasses.replace(cfg, **changes)
        except TypeError as exc:
            valid = ", ".join(f.name for f in dataclasses.fields(ExecutorConfig))
            msg = f"[executor] unknown setting in {sorted(changes)}; valid: {valid}."
            raise ConfigError(msg) from exc
    if cfg.kind == "threads":
        return ThreadExecutor(cfg.threads)
    return DaskExecutor(cfg)


@contextlib.contextmanager
def use_executor(executor: Executor) -> Iterator[Executor]:
    """Make ``executor`` the one :func:`current_executor` returns in this block (the run sets it once).

    Examples
    --------
    >>> with get_executor(threads=2) as ex, use_executor(ex):
    ...     current_executor(None) is ex
    True
    >>> isinstance(current_executor(None), ThreadExecutor)
    True
    """
    token = _CURRENT.set(executor)
    try:
        yield executor
    finally:
        _CURRENT.reset(token)


def current_executor(threads: int | None = None) -> Executor:
    """The executor a stage runs its tasks on.

    Parameters
    ----------
    threads
        A stage's own thread setting (``[territories] workers``, a
        ``workers=`` argument): when given, local threads of that number;
        when None, the executor of the run (:func:`use_executor`), else
        local threads on :func:`available_cores` (inside a task: its share).

    Examples
    --------
    >>> current_executor(3).slots
    3
    """
    if threads is not None:
        import numbers

        if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
            msg = f"workers: expected a positive whole number of threads or None, found {threads!r}."
            raise ConfigError(msg)
        return ThreadExecutor(int(threads))
    ex = _CURRENT.get()
    return ex if ex is not None else ThreadExecutor()
