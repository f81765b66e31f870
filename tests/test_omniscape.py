"""Tests of leopardgeo.kernels.omniscape against independent references.

* hand-worked strips (currents added up by hand from Kirchhoff's laws);
* a dense brute force written here from Omniscape.jl's description (``docs/src/algorithm.md``,
  ``src/utils.jl``): every window's full conductance matrix built cell by cell, grounded and
  solved with ``numpy.linalg.solve``, node currents from Circuitscape's definition
  (the larger of the current flowing in and out of a node);
* symmetry: a mirror-symmetric landscape gives a mirror-symmetric current map (hypothesis);
* ``landschaft``'s C++ Omniscape (Omniscape.jl's semantics) when it is installed;
* the same maps whatever executes the bands.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import connected_components

from leopardgeo.core.errors import ConfigError, DataError, ResistanceError
from leopardgeo.kernels.omniscape import (
    block_correction,
    omniscape,
    omniscape_targets,
    solve_window,
    source_from_resistance,
)

SQRT2 = math.sqrt(2.0)
AXIAL = [(-1, 0), (0, 1), (1, 0), (0, -1)]
DIAGONAL = [(-1, 1), (1, 1), (1, -1), (-1, -1)]


# --------------------------------------------------------------------------- dense reference
def dense_window_current(res: np.ndarray, src: np.ndarray, ty: int, tx: int, connectivity: int = 8) -> np.ndarray:
    """Current map of one grounded window: full Laplacian, target component, numpy solve, max(in, out)."""
    h, w = res.shape
    cells = [(r, c) for r in range(h) for c in range(w) if not np.isnan(res[r, c])]
    if (ty, tx) not in cells:
        return np.zeros((h, w))
    idx = {rc: i for i, rc in enumerate(cells)}
    n = len(cells)
    g = np.zeros((n, n))
    offs = AXIAL + (DIAGONAL if connectivity == 8 else [])
    for (r, c), i in idx.items():
        for dr, dc in offs:
            j = idx.get((r + dr, c + dc))
            if j is None:
                continue
            cond = (1 / res[r, c] + 1 / res[r + dr, c + dc]) / 2
            g[i, j] = cond / SQRT2 if dr and dc else cond
    _, comp = connected_components(g, directed=False)
    ground = idx[(ty, tx)]
    keep = [i for i in range(n) if comp[i] == comp[ground] and i != ground]
    inj = np.array([src[cells[i]] for i in keep])
    out = np.zeros((h, w))
    if not keep or not inj.any():
        return out
    lap = np.diag(g.sum(1)) - g
    v = np.zeros(n)
    v[keep] = np.linalg.solve(lap[np.ix_(keep, keep)], inj)
    members = [*keep, ground]
    for i in members:
        flows = g[i, members] * (v[i] - v[members])
        inflow = -flows[flows < 0].sum()
        outflow = flows[flows > 0].sum()
        out[cells[i]] = max(inflow, outflow)
    return out


def dense_omniscape(res, src, radius, block_size=1, connectivity=8, flow_potential=False, source_filter=None):
    """Omniscape.jl's loop, written out: targets, clipped windows, block zeroed at (radius, radius), no correction.

    ``source_filter(s, (y, x), (y0, y1, x0, x1))``, when given, edits the window's scaled sources in place
    (conditional connectivity drops sources there, after the scaling, as Omniscape.jl does).
    """
    nr, nc = res.shape
    br = (block_size - 1) // 2
    total = np.zeros((nr, nc))
    for y in range(br, nr - br, block_size):
        for x in range(br, nc - br, block_size):
            strength = src[y - br : y + br + 1, x - br : x + br + 1].sum()
            if strength <= 0:
                continue
            y0, y1, x0, x1 = max(y - radius, 0), min(y + radius + 1, nr), max(x - radius, 0), min(x + radius + 1, nc)
            ty, tx = y - y0, x - x0
            rr, cc = np.mgrid[y0:y1, x0:x1]
            inside = (rr - y) ** 2 + (cc - x) ** 2 <= radius**2
            s = np.where(inside, src[y0:y1, x0:x1], 0.0)
            s[max(radius - br, 0) : radius + br + 1, max(radius - br, 0) : radius + br + 1] = 0.0
            if s.sum() > 0:
                s = s * strength / s.sum()
            if source_filter is not None:
                source_filter(s, (y, x), (y0, y1, x0, x1))
            s[ty, tx] = 0.0
            r = np.ones(s.shape) if flow_potential else np.where(inside, res[y0:y1, x0:x1], np.nan)
            total[y0:y1, x0:x1] += dense_window_current(r, s, ty, tx, connectivity)
    return total


def random_landscape(seed: int, shape=(14, 17), nodata=0.1):
    rng = np.random.default_rng(seed)
    r = np.exp(rng.normal(0.0, 1.0, shape))
    r[rng.random(shape) < nodata] = np.nan
    return r


# --------------------------------------------------------------------------- hand-worked
def test_strip_of_three_by_hand():
    # Three cells in a row (no data around, so no window is cut by the grid's edge), sources 1, radius 2,
    # 4 neighbours.  Target 0: 0.5 A into cells 1 and 2 -> currents 1, 1, 0.5; target 1: 0.5 A into cells
    # 0 and 2 -> 0.5, 1, 0.5; target 2 mirrors target 0 -> 0.5, 1, 1.  Sum: 2, 3, 2.
    r = np.pad(np.ones((1, 3)), 2, constant_values=np.nan)
    maps = omniscape(r, np.nan_to_num(r), radius=2, connectivity=4)
    np.testing.assert_allclose(maps.current[2:3, 2:5], [[2.0, 3.0, 2.0]], rtol=1e-12)
    # the flow potential's uniform window is the whole square (no data included): less current in the row
    assert (maps.flow_potential[2, 2:5] < [2.0, 3.0, 2.0]).all()
    assert maps.n_targets == 3
    assert np.isnan(maps.current[0]).all()


def test_current_does_not_depend_on_the_resistance_scale():
    # Currents are set by the injections; scaling every resistance scales only the voltages.
    r = random_landscape(3)
    s = np.nan_to_num(1 / r)
    a = omniscape(r, s, radius=3).current
    b = omniscape(7.5 * r, s, radius=3).current
    np.testing.assert_allclose(a, b, rtol=1e-10)


def test_window_in_series_carries_the_injection():
    # A 1 x 4 line: 2 A injected at the far end reach the ground through every cell.
    out = solve_window(np.array([[1.0, 3.0, 2.0, 5.0]]), np.array([[0.0, 0.0, 0.0, 2.0]]), 0, 0, connectivity=4)
    np.testing.assert_allclose(out, [[2.0, 2.0, 2.0, 2.0]], rtol=1e-12)


def test_targets_are_block_centres_with_positive_strength():
    s = np.zeros((7, 7))
    s[0, 0] = 1.0
    s[5, 5] = 2.0
    s[6, 6] = 5.0  # outside every whole block: rows 6 and columns 6 are left over with block_size 3
    ty, tx, strength = omniscape_targets(s, 3)
    assert ty.tolist() == [1, 4] and tx.tolist() == [1, 4]
    np.testing.assert_allclose(strength, [1.0, 2.0])


@pytest.mark.parametrize("block", [1, 3, 5])
def test_targets_match_block_sums_by_loops(block):
    """Each whole block's sum (NaN = 0) at its centre, against loops over the cells; far corners of a large
    grid keep their digits (no prefix-sum differences)."""
    rng = np.random.default_rng(block)
    s = rng.lognormal(0.0, 2.0, (23, 31))
    s[rng.random(s.shape) < 0.2] = 0.0
    s[rng.random(s.shape) < 0.05] = np.nan
    ty, tx, strength = omniscape_targets(s, block)
    want = {}
    br = (block - 1) // 2
    for y in range(br, s.shape[0] - br, block):
        for x in range(br, s.shape[1] - br, block):
            total = 0.0
            for yy in range(y - br, y + br + 1):
                for xx in range(x - br, x + br + 1):
                    total += 0.0 if np.isnan(s[yy, xx]) else s[yy, xx]
            if total > 0:
                want[(y, x)] = total
    assert list(zip(ty.tolist(), tx.tolist(), strict=True)) == sorted(want)
    np.testing.assert_allclose(strength, [want[k] for k in sorted(want)], rtol=1e-14)
    big = np.full((3000, 3000), 1e6)
    big[-3:, -3:] = 1e-3  # a weak block at the far corner of a strong grid
    assert omniscape_targets(big, 3)[2][-1] == pytest.approx(9e-3, rel=1e-12)


def test_source_from_resistance_cutoff():
    out = source_from_resistance(np.array([[1.0, 10.0, np.nan]]), r_cutoff=5.0)
    np.testing.assert_allclose(out, [[1.0, 0.0, 0.0]])


# --------------------------------------------------------------------------- dense reference
@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("seed", [0, 1])
def test_window_against_dense_solve(seed, connectivity):
    rng = np.random.default_rng(seed)
    r = random_landscape(seed, (9, 11), nodata=0.2)
    r[4, 5] = 1.0
    s = np.where(np.isnan(r), 0.0, rng.random(r.shape))
    s[4, 5] = 0.0
    np.testing.assert_allclose(
        solve_window(r, s, 4, 5, connectivity=connectivity), dense_window_current(r, s, 4, 5, connectivity), rtol=1e-9, atol=1e-12
    )


@pytest.mark.parametrize(("radius", "block_size", "connectivity"), [(3, 1, 8), (4, 1, 4), (4, 3, 8), (5, 3, 4)])
def test_omniscape_against_dense_brute_force(radius, block_size, connectivity):
    r = random_landscape(radius + block_size)
    s = source_from_resistance(r)
    maps = omniscape(r, s, radius=radius, block_size=block_size, connectivity=connectivity, correct_artifacts=False)
    ref = dense_omniscape(r, s, radius, block_size, connectivity)
    ref_fp = dense_omniscape(r, s, radius, block_size, connectivity, flow_potential=True)
    nodata = np.isnan(r)
    np.testing.assert_allclose(maps.current[~nodata], ref[~nodata], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(maps.flow_potential[~nodata], ref_fp[~nodata], rtol=1e-9, atol=1e-12)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(ref_fp > 0, ref / ref_fp, 0.0)
    np.testing.assert_allclose(maps.normalized[~nodata], norm[~nodata], rtol=1e-9, atol=1e-12)
    assert np.isnan(maps.current[nodata]).all()


@pytest.mark.parametrize("connectivity", [4, 8])
def test_banded_window_against_dense_solve(connectivity):
    # A radius-9 disc with holes: a band of ~20 over several 4-column panels, rows whose first non-zero is far
    # left of their neighbours' (the envelope is not monotone), islands cut off from the ground.
    from leopardgeo.kernels import omniscape as om

    rng = np.random.default_rng(7)
    r = random_landscape(7, (19, 19), nodata=0.25)
    r[~om._disc(19, 19, 9, 9, 9)] = np.nan
    r[9, 9] = 1.0
    s = np.where(np.isnan(r), 0.0, rng.random(r.shape))
    s[9, 9] = 0.0
    out = np.zeros(r.shape)
    buf = np.empty(om._buffer_size(19, 19))
    assert om._window_banded(r, s, 9, 9, connectivity, False, 1 << 30, out, np.ones((1, 1)), False, buf) == 1
    np.testing.assert_allclose(out, dense_window_current(r, s, 9, 9, connectivity), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("connectivity", "avg"), [(8, False), (4, False), (8, True)])
def test_eight_windows_at_once_against_dense_solve(connectivity, avg):
    # Seven uncut radius-6 windows with holes and islands cut off from the ground, solved in one batch (the
    # eighth lane empty), each against its own dense solve; the islands' cells get no current.
    from leopardgeo.kernels import _omniscape_compiled as oc

    reach = 6
    full = 2 * reach + 1
    rng = np.random.default_rng(11)
    _, n, cells, ga, gb, ca, cb, wd, kd, last = oc._disc_circuit(reach, connectivity)
    width = kd + 2 + oc._PAD
    npad = (n + 3) // 4 * 4
    lc, lr, lm = (np.empty((full * full, 8)) for _ in range(3))
    rhs = np.zeros((npad + 8, 8))
    disc = _disc(full, reach)
    windows = []
    for lane in range(7):
        r = random_landscape(100 + lane, (full, full), nodata=0.3)
        r[~disc] = np.nan
        r[reach, reach] = 1.0
        s = np.where(np.isnan(r), 0.0, rng.random(r.shape))
        s[reach, reach] = 0.0
        assert oc._lane_fill(r, s, reach, reach, connectivity, lane, cells, n, avg, lc, lr, lm, rhs)
        windows.append((r, s))
    oc._lane_fill(windows[0][0], windows[0][1], reach, reach, connectivity, 7, cells, n, avg, lc, lr, lm, rhs)
    oc._lane_clear(7, lc, lr, lm, rhs)  # a stale lane emptied
    G = np.empty((len(ga), 8))
    F = np.empty((npad, width, 8))
    oc._factor8(lc, lr, lm, ga, gb, ca, cb, wd, cells, n, kd, last, avg, G, F)
    v = rhs.copy()
    oc._solve8(F, width, n, kd, last, v)
    acc = np.empty((n + 1, 8))
    oc._currents8(ga, gb, G, n, v, rhs, acc)
    assert not acc[:, 7].any()
    out = np.zeros((full, 8 * full))
    oc._paint8(acc, n, cells, full, lm, True, 8, np.zeros(8, np.int64), np.arange(8) * full, out, np.ones((1, 1)), False)
    assert not out[:, 7 * full :].any()
    islands = 0
    for lane, (r, s) in enumerate(windows):
        got = out[:, lane * full : (lane + 1) * full]
        if avg:  # the one-window banded solve (itself checked against the dense solve above) as the reference
            ref = np.zeros(r.shape)
            buf = np.empty(oc._buffer_size(full, full))
            oc._window_banded(r, s, reach, reach, connectivity, True, 1 << 30, ref, np.ones((1, 1)), False, buf)
        else:
            ref = dense_window_current(r, s, reach, reach, connectivity)
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)
        islands += int((~np.isnan(r) & (lm[:, lane].reshape(full, full) == 0)).sum())
    assert islands > 0  # cells with data outside the ground's component, decoupled


def _disc(full: int, reach: int) -> np.ndarray:
    yy, xx = np.ogrid[:full, :full]
    return (yy - reach) ** 2 + (xx - reach) ** 2 <= reach * reach


@pytest.mark.parametrize("connectivity", [4, 8])
def test_omniscape_with_islands_against_dense_brute_force(connectivity):
    # Many uncut windows (solved eight at a time, the band's last batch partial) on a landscape with 35 % no data.
    r = random_landscape(21, (20, 23), nodata=0.35)
    s = source_from_resistance(r)
    maps = omniscape(r, s, radius=4, connectivity=connectivity, correct_artifacts=False)
    ok = ~np.isnan(r)
    np.testing.assert_allclose(maps.current[ok], dense_omniscape(r, s, 4, 1, connectivity)[ok], rtol=1e-9, atol=1e-12)
    fp = dense_omniscape(r, s, 4, 1, connectivity, flow_potential=True)
    np.testing.assert_allclose(maps.flow_potential[ok], fp[ok], rtol=1e-9, atol=1e-12)


def test_batched_and_one_by_one_windows_agree(monkeypatch):
    # The uncut windows solved eight at a time or one by one (BATCH_MAX_BYTES 0): the same maps to rounding.
    from leopardgeo.kernels import omniscape as om

    r = random_landscape(4, (30, 27), nodata=0.2)
    s = source_from_resistance(r)
    kw = {"radius": 5, "block_size": 3, "avg_resistances": True}
    a = omniscape(r, s, **kw)
    monkeypatch.setattr(om, "BATCH_MAX_BYTES", 0)
    b = omniscape(r, s, **kw)
    np.testing.assert_allclose(a.current, b.current, rtol=1e-11)
    np.testing.assert_allclose(a.flow_potential, b.flow_potential, rtol=1e-11)


def test_wide_windows_use_the_sparse_factor(monkeypatch):
    # Windows wider than MAX_BANDWIDTH go to the circuit module's sparse solver: same maps.
    from leopardgeo.kernels import omniscape as om

    r = random_landscape(5)
    s = source_from_resistance(r)
    a = omniscape(r, s, radius=4)
    monkeypatch.setattr(om, "MAX_BANDWIDTH", 2)
    b = omniscape(r, s, radius=4)
    np.testing.assert_allclose(a.current, b.current, rtol=1e-10)
    np.testing.assert_allclose(a.flow_potential, b.flow_potential, rtol=1e-10)


def test_block_correction_is_one_for_single_cells():
    np.testing.assert_allclose(block_correction(5, 0, 1), 1.0, rtol=1e-12)


# --------------------------------------------------------------------------- symmetry
@given(
    half=st.lists(st.floats(0.5, 20.0), min_size=20, max_size=20),
    radius=st.integers(2, 3),
    connectivity=st.sampled_from([4, 8]),
)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mirror_symmetric_landscape_gives_mirror_symmetric_current(half, radius, connectivity):
    # Pad with no data so no window is cut by the grid's edge (Omniscape zeroes an off-target block there).
    left = np.array(half).reshape(4, 5)
    core = np.hstack([left, left[:, ::-1]])
    r = np.pad(core, radius, constant_values=np.nan)
    maps = omniscape(r, source_from_resistance(r), radius=radius, connectivity=connectivity)
    c = maps.current
    np.testing.assert_allclose(c, c[:, ::-1], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(maps.normalized, maps.normalized[:, ::-1], rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- executors
def test_same_maps_whatever_runs_the_bands():
    r = random_landscape(11, (40, 23))
    s = source_from_resistance(r)
    serial = omniscape(r, s, radius=3, block_size=3)
    with ThreadPoolExecutor(2) as pool:
        threaded = omniscape(r, s, radius=3, block_size=3, executor=pool)
    np.testing.assert_array_equal(serial.current, threaded.current)
    np.testing.assert_array_equal(serial.normalized, threaded.normalized)


def test_same_maps_on_the_run_executor_threads_and_a_local_cluster(tmp_path):
    # Bands are Dask tasks on 2 worker processes: arrays shared once, GeoTIFF bands opened by the workers.
    pytest.importorskip("distributed")
    from leopardgeo.core.executor import ExecutorConfig, get_executor
    from leopardgeo.stages.omniscape import OmniscapeConfig, omniscape_files
    from leopardgeo.testing import synthetic_raster

    r = random_landscape(13, (40, 23))
    s = source_from_resistance(r)
    serial = omniscape(r, s, radius=3, block_size=3)
    with get_executor(threads=2) as ex:
        threaded = omniscape(r, s, radius=3, block_size=3, executor=ex)
    _, rpath = synthetic_raster(tmp_path / "r.tif", r, dtype="float64")
    cfg = OmniscapeConfig(radius_m=300.0, block_size=3, source="resistance", source_threshold=0.0)
    with get_executor(ExecutorConfig(workers=2, threads=1, memory_limit_gb=1)) as cluster:
        distributed = omniscape(r, s, radius=3, block_size=3, executor=cluster)
        from_files, _ = omniscape_files(rpath, cfg=cfg, executor=cluster)
    for other in (threaded, distributed, from_files.maps):
        np.testing.assert_array_equal(serial.current, other.current)
        np.testing.assert_array_equal(serial.normalized, other.normalized)


def test_band_reader_gives_the_same_maps():
    r = random_landscape(12, (40, 23))
    s = source_from_resistance(r)
    reads = []

    def read_band(r0, r1):
        reads.append(r1 - r0)
        return r[r0:r1], s[r0:r1]

    direct = omniscape(r, s, radius=3)
    banded = omniscape(None, None, radius=3, read_band=read_band, shape=r.shape, targets=omniscape_targets(s), mask_nodata=False)
    assert max(reads) < r.shape[0]  # no band read the whole grid
    banded = omniscape(None, None, radius=3, read_band=read_band, shape=r.shape, targets=omniscape_targets(s))
    np.testing.assert_array_equal(direct.current, banded.current)
    # the no-data mask given by the caller (as omniscape_files keeps it from its pass for the targets): no second
    # pass over the bands, the same maps
    r[3, 4] = r[30, 20] = np.nan
    s = source_from_resistance(r)
    direct = omniscape(r, s, radius=3)
    reads.clear()
    kw = {"radius": 3, "read_band": read_band, "shape": r.shape, "targets": omniscape_targets(s)}
    banded = omniscape(None, None, **kw, nodata=np.isnan(r))
    n_task_reads = len(reads)
    np.testing.assert_array_equal(direct.current, banded.current)  # NaN at the two cells in both
    assert np.isnan(banded.current[3, 4]) and np.isnan(banded.flow_potential[30, 20])
    reads.clear()
    omniscape(None, None, **kw)  # without it: one more pass over the bands for the mask
    assert len(reads) > n_task_reads
    with pytest.raises(DataError, match="no-data mask"):
        omniscape(None, None, **kw, nodata=np.isnan(r)[:-1])


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"block_size": 2}, "odd"),
        ({"radius": 0}, "radius"),
        ({"connectivity": 6}, "4 or 8"),
        ({"block_size": 5}, "window's 2 x radius \\+ 1 = 5"),  # the block would fill the 5 x 5 window: no source left
    ],
)
def test_bad_options_are_config_errors(kw, match):
    args = {"radius": 2, **kw}
    with pytest.raises(ConfigError, match=match):
        omniscape(np.ones((5, 5)), np.ones((5, 5)), **args)


def test_a_block_smaller_than_the_window_has_sources():
    # the largest block allowed (window - 2) still leaves a ring of sources: current flows
    r = np.ones((9, 9))
    maps = omniscape(r, np.ones_like(r), radius=2, block_size=3)
    assert np.nanmax(maps.current) > 0.0


@pytest.mark.parametrize("bad", [0.0, -2.0, np.inf])
def test_resistance_not_positive_and_finite_is_refused(bad):
    r = np.ones((7, 7))
    r[3, 4] = bad
    with pytest.raises(ResistanceError, match=r"found 1 cells .* at row/col \(3, 4\)"):
        omniscape(r, np.ones_like(r), radius=2)


def test_negative_sources_are_refused():
    s = np.ones((7, 7))
    s[1, 2] = -0.5
    with pytest.raises(DataError, match=r"source: expected values >= 0 .* \(1, 2\)"):
        omniscape(np.ones((7, 7)), s, radius=2)


def test_source_shape_mismatch_is_a_data_error():
    with pytest.raises(DataError, match="shape"):
        omniscape(np.ones((5, 5)), np.ones((5, 4)), radius=2)


# --------------------------------------------------------------------------- landschaft (Omniscape.jl's semantics)
@pytest.mark.parametrize(
    ("radius", "block_size", "buffer", "four"),
    [(5, 1, 0, False), (4, 3, 0, False), (4, 1, 2, True), (6, 3, 1, False), (7, 5, 0, False)],
)
def test_matches_landschaft_omniscape(radius, block_size, buffer, four):
    ls = pytest.importorskip("landschaft.circuit")
    r = random_landscape(radius * 10 + block_size, (23, 31), nodata=0.08)
    s = source_from_resistance(r)
    ours = omniscape(r, s, radius=radius, block_size=block_size, buffer=buffer, connectivity=4 if four else 8)
    ref = ls.omniscape(
        r,
        radius,
        source=s,
        block_size=block_size,
        buffer=buffer,
        four_neighbors=four,
        flow_potential=True,
        normalized_current=True,
    )
    for mine, name in [
        (ours.current, "cum_currmap"),
        (ours.flow_potential, "flow_potential"),
        (ours.normalized, "normalized_cum_currmap"),
    ]:
        theirs = ref[name].to_numpy()
        assert np.array_equal(np.isnan(mine), np.isnan(theirs))
        np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- the stage
def _stage_inputs(seed=21, shape=(30, 26)):
    from leopardgeo.core.grid import Grid
    from leopardgeo.testing import TEST_CRS

    rng = np.random.default_rng(seed)
    grid = Grid.from_bounds((0.0, 0.0, shape[1] * 100.0, shape[0] * 100.0), cell_size_m=100.0, crs=TEST_CRS)
    suit = rng.random(shape)
    res = np.exp(3 * (1 - suit))
    res[rng.random(shape) < 0.05] = np.nan
    return grid, res, suit


def test_stage_converts_metres_to_cells_and_uses_suitability_sources():
    from leopardgeo.stages.omniscape import OmniscapeConfig, compute_omniscape, omniscape_sources

    grid, res, suit = _stage_inputs()
    cfg = OmniscapeConfig(radius_m=340.0, block_size=3, source_threshold=0.4)  # 3.4 cells -> 3
    out = compute_omniscape(cfg, grid, res, suit)
    assert out.radius_cells == 3
    src = omniscape_sources(cfg, res, suit)
    assert (src[suit < 0.4] == 0).all() and (src[np.isnan(res)] == 0).all()
    ref = omniscape(res, src, radius=3, block_size=3)
    np.testing.assert_array_equal(out.maps.current, ref.current)
    assert set(out.rasters()) == {"omniscape_current.tif", "omniscape_flow_potential.tif", "omniscape_normalized.tif"}
    assert out.summary()["n_targets"] == ref.n_targets


def test_stage_reads_geotiffs_band_by_band(tmp_path):
    from leopardgeo.stages.omniscape import OmniscapeConfig, compute_omniscape, omniscape_files
    from leopardgeo.testing import synthetic_raster

    grid, res, suit = _stage_inputs(shape=(47, 20))
    _, rpath = synthetic_raster(tmp_path / "r.tif", res, dtype="float64")
    _, spath = synthetic_raster(tmp_path / "s.tif", np.where(np.isnan(res), 0.0, suit), dtype="float64")
    cfg = OmniscapeConfig(radius_m=300.0, block_size=3, source_threshold=0.3)
    from_files, fgrid = omniscape_files(rpath, cfg=cfg, source_path=spath)
    in_memory = compute_omniscape(cfg, grid, res, suit)
    assert fgrid.shape == grid.shape
    np.testing.assert_array_equal(from_files.maps.current, in_memory.maps.current)
    np.testing.assert_array_equal(from_files.maps.normalized, in_memory.maps.normalized)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"block_size": 4}, "odd"),
        ({"radius_m": -1.0}, "radius_m"),
        ({"connectivity": 6}, "4 or 8"),
        ({"source": "elevation"}, "source"),
    ],
)
def test_stage_config_errors(kw, match):
    from leopardgeo.stages.omniscape import OmniscapeConfig

    with pytest.raises(ConfigError, match=match):
        OmniscapeConfig(**kw)


def test_radius_below_one_cell_is_refused():
    from leopardgeo.stages.omniscape import OmniscapeConfig, compute_omniscape

    grid, res, suit = _stage_inputs()
    with pytest.raises(ConfigError, match="at least 1 cell"):
        compute_omniscape(OmniscapeConfig(radius_m=40.0), grid, res, suit)


# --------------------------------------------------------------------------- the command
def test_command_on_geotiffs_writes_styled_maps_all_or_nothing(tmp_path):
    import json

    from click.testing import CliRunner

    import rasterio

    from leopardgeo.cli import cli
    from leopardgeo.testing import synthetic_raster

    _, res, _ = _stage_inputs(shape=(24, 20))
    _, rpath = synthetic_raster(tmp_path / "r.tif", res, nodata=-9999.0, dtype="float64")
    out = tmp_path / "omni"
    args = ["omniscape", "--resistance", str(rpath), "--radius-m", "300", "--block-size", "3", "--out", str(out)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    names = ["omniscape_current", "omniscape_flow_potential", "omniscape_normalized"]
    assert all((out / f"{n}.tif").is_file() and (out / f"{n}.qml").is_file() for n in names)
    doc = json.loads((out / "omniscape.json").read_text())
    assert doc["radius_cells"] == 3 and doc["source"] == "resistance"
    with rasterio.open(out / "omniscape_current.tif") as ds:
        cur = ds.read(1, masked=True)
    ref = omniscape(res, source_from_resistance(res), radius=3, block_size=3)
    np.testing.assert_allclose(cur.filled(np.nan), ref.current.astype(np.float32), rtol=1e-6)
    again = CliRunner().invoke(cli, args)
    assert again.exit_code != 0 and "--overwrite" in again.output


@pytest.mark.parametrize("which", ["resistance", "source", "block"])
def test_command_refuses_bad_values_before_writing(tmp_path, which):
    from click.testing import CliRunner

    from leopardgeo.cli import cli
    from leopardgeo.testing import synthetic_raster

    _, res, _ = _stage_inputs(shape=(24, 20))
    src = np.where(np.isnan(res), 0.0, 1.0)
    if which == "resistance":
        res[20, 7] = 0.0  # a zero in the last band of rows: once a division by zero deep in a task
    elif which == "source":
        src[2, 3] = -1.0  # once zeroed by the source threshold without a word
    _, rpath = synthetic_raster(tmp_path / "r.tif", res, nodata=-9999.0, dtype="float64")
    _, spath = synthetic_raster(tmp_path / "s.tif", src, dtype="float64")
    out = tmp_path / "omni"
    block = "7" if which == "block" else "3"  # radius 3 cells: a 7 x 7 window
    args = ["omniscape", "--resistance", str(rpath), "--source", str(spath), "--radius-m", "300", "--block-size", block]
    r = CliRunner().invoke(cli, [*args, "--out", str(out)])
    expected = {"resistance": "ResistanceError", "source": "DataError", "block": "ConfigError"}[which]
    assert r.exit_code != 0 and expected in r.output, r.output
    assert "Traceback" not in r.output and not out.exists()


@pytest.mark.parametrize("which", ["two bands", "shifted", "other crs", "not a raster"])
def test_files_that_do_not_match_the_resistance_are_refused(tmp_path, which):
    import rasterio
    from rasterio.transform import from_origin

    from leopardgeo.core.errors import AlignmentError
    from leopardgeo.stages.omniscape import OmniscapeConfig, omniscape_files

    def tif(path, bands, x0=500_000.0, crs="EPSG:32652"):
        with rasterio.open(
            path, "w", driver="GTiff", width=12, height=10, count=len(bands), dtype="float64",
            transform=from_origin(x0, 4_800_000.0, 100.0, 100.0), crs=crs,
        ) as ds:  # fmt: skip
            for i, b in enumerate(bands, start=1):
                ds.write(b, i)
        return path

    ones = np.ones((10, 12))
    rpath = tif(tmp_path / "r.tif", [ones])
    spath = {
        "two bands": lambda: tif(tmp_path / "s.tif", [ones, 2 * ones]),  # band 2 once ignored without a word
        "shifted": lambda: tif(tmp_path / "s.tif", [ones], x0=500_100.0),
        "other crs": lambda: tif(tmp_path / "s.tif", [ones], crs="EPSG:32653"),  # once accepted
        "not a raster": lambda: (tmp_path / "s.tif").write_text("not a raster") and tmp_path / "s.tif",
    }[which]()
    expected = {"two bands": (DataError, "one-band raster, found 2 bands"), "shifted": (AlignmentError, "another origin"),
                "other crs": (AlignmentError, "another CRS"), "not a raster": (DataError, "cannot be read by GDAL")}  # fmt: skip
    err, match = expected[which]
    with pytest.raises(err, match=match):
        omniscape_files(rpath, cfg=OmniscapeConfig(radius_m=300.0, source_threshold=0.0), source_path=spath)


def test_a_memory_refusal_names_a_radius_larger_than_the_grid():
    from types import SimpleNamespace

    from leopardgeo.core.errors import MemoryLimitError
    from leopardgeo.stages.omniscape import check_omniscape_memory

    opts = {"radius": 500, "block_size": 9, "buffer": 0, "connectivity": 8, "avg_resistances": False,
            "flow_potential": True, "normalized": True, "correct_artifacts": True}  # fmt: skip
    tiny_tasks = SimpleNamespace(kind="threads", task_memory_bytes=lambda: 1e6)
    with pytest.raises(MemoryLimitError, match=r"a radius larger than the grid itself \(30 cells"):
        check_omniscape_memory((30, 30), opts, tiny_tasks, in_memory=False)


def test_command_source_needs_resistance(tmp_path):
    from click.testing import CliRunner

    from leopardgeo.cli import cli
    from leopardgeo.testing import synthetic_raster

    _, spath = synthetic_raster(tmp_path / "s.tif", np.ones((5, 5)))
    r = CliRunner().invoke(cli, ["omniscape", "--source", str(spath), "--out", str(tmp_path / "o")])
    assert r.exit_code != 0 and "--resistance" in r.output  # required
