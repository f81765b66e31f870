"""The executor: cores from affinity and cgroups, ordered and seeded maps, shared arrays, a real LocalCluster.

The distributed tests start one ``LocalCluster`` of 2 worker processes for the module (a few seconds) and
join it a second time through its scheduler address, so both ``workers = N`` and ``scheduler = ADDR`` run
for real.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

from leopardgeo.config import config_hash, dump_config
from leopardgeo.core import executor as ex_mod
from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.core.executor import (
    DaskExecutor,
    ExecutorConfig,
    ExecutorError,
    ThreadExecutor,
    available_cores,
    get_executor,
    task_cores,
)
from leopardgeo.runner.registry import RunConfig, load_config_string


# ---------------------------------------------------------------- task functions (module level: picklable)
def _slow_square(x: int) -> int:
    time.sleep(0.02 * (5 - x))  # later items finish first
    return x * x


def _draw(item: int, seed_seq: np.random.SeedSequence) -> tuple[int, float]:
    return item, float(np.random.default_rng(seed_seq).normal())


def _fail_on_three(x: int) -> int:
    if x == 3:
        msg = f"bad item {x}"
        raise DataError(msg)
    return x


def _sum_shared(handle, offset: int) -> float:
    return float(handle.get().sum()) + offset


def _where_and_cores(_item: int) -> tuple[int, int, int]:
    import numba

    time.sleep(0.2)  # keep both workers busy, so both take a task
    return os.getpid(), available_cores(), numba.get_num_threads()


def _cores_in_task(_item: int) -> int:
    return available_cores()


def _expected_draws(seed: int, n: int) -> list[tuple[int, float]]:
    """The definition: task i uses child i of SeedSequence(seed).spawn(n)."""
    children = np.random.SeedSequence(seed).spawn(n)
    return [(i, float(np.random.default_rng(children[i]).normal())) for i in range(n)]


# ---------------------------------------------------------------- cores
def _write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_of_own_group_and_ancestors(tmp_path):
    root = tmp_path / "cg"
    _write(root / "cpu.max", "max 100000\n")
    _write(root / "ci" / "cpu.max", "300000 100000\n")  # 3 CPUs for the parent
    _write(root / "ci" / "job" / "cpu.max", "150000 100000\n")  # 1.5 CPUs for ours
    proc = tmp_path / "proc_cgroup"
    _write(proc, "0::/ci/job\n")
    assert ex_mod._cgroup_cpus(root, proc) == pytest.approx(1.5)
    _write(root / "ci" / "job" / "cpu.max", "max 100000\n")
    assert ex_mod._cgroup_cpus(root, proc) == pytest.approx(3.0)


def test_cgroup_v1_cfs_quota(tmp_path):
    root = tmp_path / "cg"
    _write(root / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1\n")
    _write(root / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    _write(root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us", "200000\n")
    _write(root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_period_us", "100000\n")
    proc = tmp_path / "proc_cgroup"
    _write(proc, "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n")
    assert ex_mod._cgroup_cpus(root, proc) == pytest.approx(2.0)
    _write(proc, "5:cpu,cpuacct:/\n")
    assert ex_mod._cgroup_cpus(root, proc) is None  # -1: no quota


def test_no_cgroup_files_means_no_limit(tmp_path):
    assert ex_mod._cgroup_cpus(tmp_path / "none", tmp_path / "none_either") is None


def test_available_cores_honours_affinity_quota_and_env(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3, 4, 5, 6, 7}, raising=False)
    monkeypatch.setattr(ex_mod, "_cgroup_cpus", lambda: 2.5)
    monkeypatch.delenv(ex_mod.CORES_ENV, raising=False)
    assert available_cores() == 3  # a fractional quota rounds up
    monkeypatch.setattr(ex_mod, "_cgroup_cpus", lambda: None)
    assert available_cores() == 8
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {3}, raising=False)
    assert available_cores() == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setenv(ex_mod.CORES_ENV, "2")
    assert available_cores() == 2
    monkeypatch.setenv(ex_mod.CORES_ENV, "two")
    with pytest.raises(ConfigError, match="LEOPARDGEO_CORES: expected an integer >= 1"):
        available_cores()


def test_tasks_get_their_share_of_the_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(8)), raising=False)
    monkeypatch.setattr(ex_mod, "_cgroup_cpus", lambda: None)
    monkeypatch.delenv(ex_mod.CORES_ENV, raising=False)
    with ThreadExecutor(4) as ex:
        assert ex.map(_cores_in_task, range(8)) == [2] * 8
    with ThreadExecutor(1) as ex:
        assert ex.map(_cores_in_task, range(3)) == [8] * 3
    assert available_cores() == 8  # back to the whole machine outside the tasks
    assert task_cores(3, cores=8) == 2


def test_no_os_cpu_count_left_in_the_package():
    import pathlib

    import leopardgeo

    src = pathlib.Path(leopardgeo.__file__).parent
    offenders = [str(p.relative_to(src)) for p in src.rglob("*.py") if "os.cpu_count(" in p.read_text()]
    assert offenders == ["core/executor.py"]  # only the fallback where affinity is unknown


# ---------------------------------------------------------------- threads
def test_thread_map_is_ordered_and_seeded_like_the_definition():
    with get_executor(threads=3) as ex:
        assert ex.map(_slow_square, range(5)) == [0, 1, 4, 9, 16]
        assert ex.map(_draw, range(6), seed=7) == _expected_draws(7, 6)
    with get_executor(threads=1) as ex:
        assert ex.map(_draw, range(6), seed=7) == _expected_draws(7, 6)
        assert ex.map(_draw, range(6), seed=np.random.SeedSequence(7)) == _expected_draws(7, 6)
        assert ex.map(_slow_square, []) == []


def test_thread_map_raises_the_task_error_and_reports_progress():
    seen = []
    with get_executor(threads=2) as ex:
        with pytest.raises(DataError, match="bad item 3"):
            ex.map(_fail_on_three, range(6))
        assert ex.map(pow, [(2, 5), (3, 3)], star=True, progress=lambda d, n: seen.append((d, n))) == [32, 27]
    assert sorted(seen) == [(1, 2), (2, 2)]


def test_thread_share_is_the_array_itself():
    a = np.arange(10.0)
    with get_executor(threads=2) as ex:
        h = ex.share(a)
        assert h.get() is a
        assert ex.map(_sum_shared, [(h, 0), (h, 1)], star=True) == [45.0, 46.0]


# ---------------------------------------------------------------- config
def test_executor_config_section_and_errors():
    cfg = load_config_string("[executor]\nworkers = 2\nthreads = 1\n")
    assert cfg.executor == ExecutorConfig(workers=2, threads=1)
    assert cfg.executor.kind == "local_cluster"
    assert "[executor]" in dump_config(cfg)
    assert "[executor]" not in dump_config(RunConfig())
    assert config_hash(cfg) == config_hash(cfg.replace(executor=ExecutorConfig()))  # results do not depend on it
    with pytest.raises(ConfigError, match=r"expected one of them .* Remove one"):
        load_config_string("[executor]\nworkers = 2\nscheduler = 'tcp://h:8786'\n")
    with pytest.raises(ConfigError, match=r"\[executor\] threads: expected an integer >= 1, found 0"):
        ExecutorConfig(threads=0)
    with pytest.raises(ConfigError, match="unknown key 'cores'"):
        load_config_string("[executor]\ncores = 2\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        get_executor(cores=2)


def test_unreachable_scheduler_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(ex_mod, "CONNECT_TIMEOUT", "2s")
    with pytest.raises(ExecutorError, match=r"expected to reach the scheduler at 'tcp://127.0.0.1:9'"):
        get_executor(scheduler="tcp://127.0.0.1:9")


# ---------------------------------------------------------------- a real LocalCluster
# the `cluster` fixture (one LocalCluster of 2 worker processes for the session) is in conftest.py
try:
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import the tests
except ImportError:  # pragma: no cover
    pass


def test_local_cluster_has_two_processes_with_their_share_of_cores(cluster):
    assert isinstance(cluster, DaskExecutor)
    assert cluster.slots == 2
    out = cluster.map(_where_and_cores, range(4))
    pids = {pid for pid, _, _ in out}
    assert len(pids) == 2 and os.getpid() not in pids
    share = max(1, available_cores() // 2)
    assert {cores for _, cores, _ in out} == {share}
    assert {numba for _, _, numba in out} == {share}


def _malloc_env(_item):
    return tuple(os.environ.get(name) for name in ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"))


def test_local_cluster_workers_keep_freed_arrays_for_reuse(cluster):
    # one glibc arena in each worker (its task thread's full-grid arrays come from the main heap and are reused),
    # and the mmap and trim thresholds of keep_freed_heap (not Dask's early trim), unless the user set their own
    out = cluster.map(_malloc_env, range(2))
    user = cluster.malloc_env_before
    mmap, trim = user["MALLOC_MMAP_THRESHOLD_"] or "33554432", user["MALLOC_TRIM_THRESHOLD_"] or "67108864"
    assert set(out) == {("1", mmap, trim)}
    # the workers' settings stay theirs: Dask's nannies put them in this process's environment to spawn them, and
    # the executor takes them back out (processes this one starts later get the user's own)
    assert {name: os.environ.get(name) for name in user} == user


def _worker_bookkeeping(_item):
    import dask

    get = dask.config.get
    return (
        bool(get("distributed.worker.profile.enabled")),
        get("distributed.admin.tick.interval"),
        get("distributed.admin.system-monitor.interval"),
        get("distributed.worker.memory.monitor-interval"),
    )


def test_local_cluster_workers_keep_little_bookkeeping_beside_the_tasks(cluster):
    # no sampling profiler (each task's stack every 10 ms), the loop's health every 1 s (not 20 ms), psutil's
    # readings every 5 s (not 0.5 s); the memory monitor that pauses and restarts workers keeps Dask's own interval
    import dask

    want = (False, "1s", "5s", dask.config.get("distributed.worker.memory.monitor-interval"))
    assert cluster.map(_worker_bookkeeping, range(2)) == [want, want]


def test_local_cluster_results_equal_threads_and_definition(cluster):
    expected = _expected_draws(2026, 9)
    assert cluster.map(_draw, range(9), seed=2026) == expected
    with get_executor(threads=2) as ex:
        assert ex.map(_draw, range(9), seed=2026) == expected
    assert cluster.map(_slow_square, range(5), label="squares") == [0, 1, 4, 9, 16]


def test_local_cluster_share_errors_and_progress(cluster):
    a = np.arange(1_000_000, dtype=np.float64)
    h = cluster.share(a)
    assert "key=" in repr(h)
    seen = []
    got = cluster.map(_sum_shared, [(h, i) for i in range(4)], star=True, progress=lambda d, n: seen.append(d))
    assert got == [float(a.sum()) + i for i in range(4)]
    assert seen == [1, 2, 3, 4]
    arrived = {}  # on_result gets each result as it arrives; the list returned is in item order all the same
    got = cluster.map(_slow_square, [3, 0, 2, 1], on_result=lambda i, r: arrived.__setitem__(i, r))
    assert got == [9, 0, 4, 1] and arrived == {0: 9, 1: 0, 2: 4, 3: 1}
    with pytest.raises(DataError, match="bad item 3"):
        cluster.map(_fail_on_three, range(5))


def test_join_a_running_scheduler(cluster):
    address = cluster.client.scheduler.address
    with get_executor(scheduler=address) as joined:
        assert joined.map(_draw, range(4), seed=1) == _expected_draws(1, 4)
    # leaving the joined cluster does not stop it
    assert cluster.map(_slow_square, [2]) == [4]


def test_stages_on_the_cluster_equal_one_thread(cluster):
    """Territory replicates and simulation runs give the same tables on the cluster as on one thread."""
    import math

    from scipy import ndimage

    from leopardgeo.core.executor import use_executor
    from leopardgeo.core.grid import Grid
    from leopardgeo.stages.simulate import SimulationParams, simulate_population
    from leopardgeo.stages.territories import pack_territories

    g = Grid.from_bounds((500_000, 4_800_000, 503_000, 4_803_000), cell_size_m=100.0, crs="EPSG:32652")
    q = np.clip(ndimage.gaussian_filter(np.random.default_rng(5).random(g.shape), 2) * 2, 0, 1)
    kw = {"min_area_ha": 5, "max_area_ha": 120, "female_need_ha": 15, "min_quality": 0.3, "max_cost_m": math.inf}
    serial = pack_territories(q, np.ones(g.shape), g, seed=3, replicates=4, workers=1, **kw)
    p = SimulationParams(density_limit=False, n_runs=6, years=8, seed=4)
    sim_serial = simulate_population(None, p, workers=1)
    with use_executor(cluster):
        spread = pack_territories(q, np.ones(g.shape), g, seed=3, replicates=4, **kw)
        sim_spread = simulate_population(None, p)
    assert spread.replicates.equals(serial.replicates)
    assert spread.replicate_territories.equals(serial.replicate_territories)
    np.testing.assert_array_equal(spread.female, serial.female)
    for name in ("adults", "total", "adult_females"):
        np.testing.assert_array_equal(getattr(sim_spread, name), getattr(sim_serial, name))


def test_pinch_point_windows_on_the_cluster_equal_one_thread(cluster, least_cost_links):
    """The pinch points' corridor windows as the cluster's tasks: the same table and map as on one thread."""
    from leopardgeo.core.executor import ThreadExecutor, use_executor
    from leopardgeo.core.grid import Grid
    from leopardgeo.stages.corridors import least_cost_corridors
    from leopardgeo.stages.pinchpoints import pinch_points

    g = Grid.from_bounds((0, 0, 3000.0, 2000.0), cell_size_m=100.0, crs="EPSG:32652")
    res = 10.0 ** np.random.default_rng(9).uniform(0.0, 1.0, g.shape)
    lab = np.zeros(g.shape, dtype=np.int32)
    lab[1:4, 1:4], lab[15:19, 25:29], lab[2:5, 24:28] = 1, 2, 3
    G = least_cost_links(res, lab, [(1, 2), (1, 3), (2, 3)], cell_size_m=100.0)
    cor = least_cost_corridors(res, lab, G, g, width_cwd=1e9)
    with use_executor(ThreadExecutor(1)):
        serial = pinch_points(res, lab, cor, g)
    with use_executor(cluster):
        spread = pinch_points(res, lab, cor, g)
    assert len(serial.table) == 3
    np.testing.assert_array_equal(spread.current, serial.current)
    assert spread.table.drop(columns="geometry").equals(serial.table.drop(columns="geometry"))


def test_native_thread_limit_is_reference_counted_the_least_wins_and_the_last_out_restores():
    from threadpoolctl import threadpool_info

    from leopardgeo.core.executor import native_thread_limit

    def blas() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    if not blas():
        pytest.skip("no BLAS thread pool loaded")
    before = [p["num_threads"] for p in threadpool_info()]
    outer, inner = native_thread_limit(2), native_thread_limit(1, user_api="blas")
    outer.__enter__()
    assert max(blas()) <= 2
    inner.__enter__()
    assert max(blas()) == 1
    outer.__exit__(None, None, None)  # the first in leaves first (threads end in any order): the other still holds
    assert max(blas()) == 1
    inner.__exit__(None, None, None)
    assert [p["num_threads"] for p in threadpool_info()] == before
