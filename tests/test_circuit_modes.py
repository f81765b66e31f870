"""Circuitscape's advanced mode, short-circuit regions, shared nodes and source strengths.

References are independent of the package: a dense conductance matrix built cell by cell here from
Circuitscape's published rules (``construct_graph`` of Circuitscape.jl: mean conductance, ÷ √2 on
diagonals), solved with ``numpy.linalg.solve``; node currents as Circuitscape computes them
(``max(inflow, outflow)``, the current to ground an outflow); and hand-worked strips.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import connected_components

from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.kernels.circuit import advanced_flow, circuit_flow

SQ2 = math.sqrt(2.0)


# ----------------------------------------------------------------------------- dense reference
def _nodes(res: np.ndarray, regions: np.ndarray | None) -> tuple[np.ndarray, int]:
    """Node of each valid cell, cells of one region merged (-1 on no data)."""
    node = np.full(res.shape, -1, dtype=np.int64)
    of_region: dict[int, int] = {}
    n = 0
    for r in range(res.shape[0]):
        for c in range(res.shape[1]):
            if np.isnan(res[r, c]):
                continue
            k = 0 if regions is None else int(regions[r, c])
            if k > 0 and k in of_region:
                node[r, c] = of_region[k]
                continue
            node[r, c] = n
            if k > 0:
                of_region[k] = n
            n += 1
    return node, n


def _dense_conductance(res: np.ndarray, node: np.ndarray, n: int, k: int, avg: bool) -> np.ndarray:
    """Symmetric branch-conductance matrix (zero diagonal) between the nodes."""
    g = np.zeros((n, n))
    steps = [(0, 1, 1.0), (1, 0, 1.0)] + ([(1, 1, SQ2), (1, -1, SQ2)] if k == 8 else [])
    nr, nc = res.shape
    for r in range(nr):
        for c in range(nc):
            for dr, dc, w in steps:
                rr, cc = r + dr, c + dc
                if not (0 <= rr < nr and 0 <= cc < nc):
                    continue
                a, b = node[r, c], node[rr, cc]
                if a < 0 or b < 0 or a == b:
                    continue
                ra, rb = res[r, c], res[rr, cc]
                gab = 1.0 / (w * (ra + rb) / 2.0) if avg else (1.0 / ra + 1.0 / rb) / (2.0 * w)
                g[a, b] += gab
                g[b, a] += gab
    return g


def _dense_advanced(res, src, gnd_cond, regions=None, k=8, avg=False):
    """Circuitscape's advanced solve on a dense matrix: voltages and max(inflow, outflow) per cell."""
    node, n = _nodes(res, regions)
    g = _dense_conductance(res, node, n, k, avg)
    s = np.zeros(n)
    gf = np.zeros(n)
    direct = np.zeros(n, bool)
    for (r, c), a in np.ndenumerate(node):
        if a < 0:
            continue
        s[a] += src[r, c]
        if np.isinf(gnd_cond[r, c]):
            direct[a] = True
        else:
            gf[a] += gnd_cond[r, c]
    _, lab = connected_components(g > 0, directed=False)
    v = np.full(n, np.nan)
    for comp in np.unique(lab):
        m = lab == comp
        if s[m].sum() == 0 or (gf[m].sum() <= 0 and not direct[m].any()):
            continue
        free = np.flatnonzero(m & ~direct)
        lap = np.diag(g.sum(axis=1)) - g
        a_mat = lap[np.ix_(free, free)] + np.diag(gf[free])
        v[m] = 0.0
        v[free] = np.linalg.solve(a_mat, s[free])
    cur = np.full(n, np.nan)
    for a in range(n):
        if np.isnan(v[a]):
            continue
        flows = g[a] * (v - v[a])  # > 0: into a
        flows = np.nan_to_num(flows)
        inflow = flows[flows > 0].sum()
        outflow = -flows[flows < 0].sum()
        fg = gf[a] * v[a]  # Circuitscape: current to ground is an outflow, from ground an inflow
        inflow, outflow = (inflow - fg, outflow) if fg < 0 else (inflow, outflow + fg)
        cur[a] = max(inflow, outflow)
    vmap = np.where(node >= 0, v[np.maximum(node, 0)], np.nan)
    cmap = np.where(node >= 0, cur[np.maximum(node, 0)], np.nan)
    return vmap, cmap


# ----------------------------------------------------------------------------- advanced mode
def test_advanced_hand_worked_strip():
    # 1 A into the left cell, right cell grounded through 2 ohms, 1-ohm cells, 4 neighbours:
    # v = 2 V at the ground, +1 V per branch
    out = advanced_flow(np.ones((1, 3)), np.array([[1.0, 0, 0]]), np.array([[np.nan, np.nan, 2.0]]), connectivity=4)
    np.testing.assert_allclose(out.voltage, [[4.0, 3.0, 2.0]], rtol=1e-6)
    np.testing.assert_allclose(out.current, [[1.0, 1.0, 1.0]], rtol=1e-6)
    # the same ground as a conductance of 0.5 S
    out2 = advanced_flow(
        np.ones((1, 3)), np.array([[1.0, 0, 0]]), np.array([[0, 0, 0.5]]), ground_is_resistance=False, connectivity=4
    )
    np.testing.assert_allclose(out2.voltage, out.voltage, rtol=1e-6)
    # direct grounds: the ground cell at 0 V (an infinite ground resistance is no ground)
    out3 = advanced_flow(
        np.ones((1, 3)), np.array([[1.0, 0, 0]]), np.array([[np.nan, np.inf, 2.0]]), use_direct_grounds=True, connectivity=4
    )
    np.testing.assert_allclose(out3.voltage, [[2.0, 1.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(out3.current, [[1.0, 1.0, 1.0]], rtol=1e-6)


def test_advanced_auto_factorises_its_raster_in_the_grid_order(monkeypatch):
    import leopardgeo.kernels.circuit.solvers as solvers

    monkeypatch.setattr(solvers, "_pardiso", lambda: None)  # the default install: CHOLMOD, no PARDISO
    res = np.ones((150, 160))  # 24,000 unknowns: above SuperLU's small-problem limit
    source = np.zeros(res.shape)
    source[5, 5] = 1.0
    ground = np.full(res.shape, np.nan)
    ground[140, 150] = 0.0
    out = advanced_flow(res, source, ground, use_direct_grounds=True)
    assert out.solver == "superlu"  # a raster: SuperLU in the grid's order, as for circuit_flow
    ref = advanced_flow(res, source, ground, use_direct_grounds=True, solver="amg", tolerance=1e-12)
    np.testing.assert_allclose(out.voltage, ref.voltage, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(("k", "avg"), [(8, False), (4, False), (8, True)])
def test_advanced_matches_dense_solve(k, avg):
    rng = np.random.default_rng(7 + k + int(avg))
    res = rng.uniform(0.5, 20.0, (12, 14))
    res[rng.random(res.shape) < 0.12] = np.nan
    res[:, 7] = np.nan  # two halves: each its own component
    res[5, 7] = 1.0
    src = np.where(rng.random(res.shape) < 0.05, rng.uniform(0.5, 3.0, res.shape), 0.0)
    src[2, 2] = 1.5
    gres = np.full(res.shape, np.nan)
    gres[rng.random(res.shape) < 0.04] = 5.0
    gres[10, 12] = 0.0  # a direct ground (resistance 0)
    gres[11, 1] = 3.0
    regions = np.zeros(res.shape, np.int64)
    regions[3:5, 9:12] = 4  # a short-circuit region
    out = advanced_flow(res, src, gres, connectivity=k, avg_resistances=avg, short_circuit=regions, solver="superlu")
    both = (src > 0) & ~np.isnan(gres)
    with np.errstate(divide="ignore"):
        cond = np.where(np.isnan(gres), 0.0, 1.0 / np.nan_to_num(gres))
    cond[~np.isfinite(res)] = 0.0
    s_ref = np.where(np.isnan(res), 0.0, src)
    cond[both & np.isinf(cond)] = 0.0
    vref, cref = _dense_advanced(res, s_ref, cond, regions, k, avg)
    np.testing.assert_array_equal(np.isnan(out.voltage), np.isnan(vref))
    np.testing.assert_allclose(out.voltage, vref, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(out.current, cref, rtol=1e-5, atol=1e-9)


# Circuitscape.jl's published advanced case mgVerify5 (test/input/raster/advanced/5 and test/output_verify,
# MIT licence): conductance habitat, ground conductances (300 = the grid's no-data value), a negative source,
# a source on a ground (keepall), 8 neighbours.  Its polygon file is not reproduced here: the three
# short-circuit regions below are the groups of cells that share one voltage in the published voltage map.
MG5_HABITAT = np.array([[1, 1, 2.002, 1, 1], [1, 2, 2, 3.01, 2], [1, 2, 2, 1, 1], [1, 2, 2, 1, 1], [1, 2, 2, 1, 1]], dtype=float)
MG5_SOURCES = np.full((5, 5), np.nan)
MG5_SOURCES[0, 0], MG5_SOURCES[0, 3], MG5_SOURCES[2, 3], MG5_SOURCES[3, 2] = 1, 1, -1, 10
MG5_GROUNDS = np.array(
    [[0.002, 0.002, 0.002, 0.002, 1], [0.002, 0.002, np.nan, 0.002, 0.002], [0.002, 0.002, 10, 0.002, 0.002],
     [0.002, 0.002, 10, 0.002, 0.002], [0, 0.002, 0.002, 0.002, 1]]
)  # fmt: skip
MG5_POLYGONS = np.zeros((5, 5), np.int64)
MG5_POLYGONS[0, 1:4], MG5_POLYGONS[[0, 4], 4], MG5_POLYGONS[3:5, 2] = 1, 2, 3
MG5_VOLTMAP = np.array(
    [[0.9306246186, 0.5975851314, 0.5975851314, 0.5975851314, 0.3851536681],
     [0.6437207577, 0.574058639, 0.499705733, 0.4600892042, 0.4483820288],
     [0.5910979719, 0.5533264289, 0.3067574203, 0.3649868198, 0.4461241481],
     [0.6040787796, 0.6008171332, 0.7140261882, 0.515284598, 0.4560640628],
     [0.6241102782, 0.6539353696, 0.7140261882, 0.579020407, 0.3851536681]]
)  # fmt: skip
MG5_CURMAP = np.array(
    [[0.9999999304, 1.365662292, 1.365662292, 1.365662292, 0.7703073896],
     [0.2869038837, 0.5693393582, 0.6280271625, 0.6185628407, 0.1875802627],
     [0.075912452, 0.5700757856, 3.067574203, 1.088073842, 0.08202957653],
     [0.07291243177, 0.5223550043, 9.999999787, 0.5726456407, 0.1461638],
     [0.04473763714, 0.2051628879, 9.999999787, 0.3457039268, 0.7703073896]]
)  # fmt: skip


def test_advanced_circuitscape_published_case_mgverify5():
    out = advanced_flow(
        1.0 / MG5_HABITAT, MG5_SOURCES, MG5_GROUNDS, ground_is_resistance=False, short_circuit=MG5_POLYGONS, connectivity=8
    )
    # Circuitscape's own tolerance for these cases is 1e-6 relative; its maps are written with 10 digits
    np.testing.assert_allclose(out.voltage, MG5_VOLTMAP, rtol=1e-6)
    np.testing.assert_allclose(out.current, MG5_CURMAP, rtol=1e-6)


def test_advanced_amg_matches_direct():
    rng = np.random.default_rng(3)
    res = rng.uniform(1.0, 10.0, (40, 50))
    src = np.zeros(res.shape)
    src[5, 5] = 2.0
    gnd = np.full(res.shape, np.nan)
    gnd[30:35, 40:45] = 10.0
    a = advanced_flow(res, src, gnd, solver="superlu")
    b = advanced_flow(res, src, gnd, solver="amg", tolerance=1e-12)
    np.testing.assert_allclose(b.voltage, a.voltage, rtol=1e-6)
    np.testing.assert_allclose(b.current, a.current, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize(
    ("policy", "has_source_ground"),
    [("keepall", (True, True)), ("rmvsrc", (False, True)), ("rmvgnd", (True, False)), ("rmvall", (False, False))],
)
def test_advanced_conflict_policies(policy, has_source_ground):
    # cell 0 is both a 1 A source and a 1-ohm ground; cell 2 a 1 A source; cell 3 a 1-ohm ground
    res = np.ones((1, 4))
    src = np.array([[1.0, 0, 1.0, 0]])
    gnd = np.array([[1.0, np.nan, np.nan, 1.0]])
    s_kept, g_kept = has_source_ground
    s_ref = np.array([[1.0 if s_kept else 0.0, 0, 1.0, 0]])
    c_ref = np.array([[1.0 if g_kept else 0.0, 0, 0, 1.0]])
    vref, cref = _dense_advanced(res, s_ref, c_ref, k=4)
    out = advanced_flow(res, src, gnd, remove_src_or_gnd=policy, connectivity=4)
    np.testing.assert_allclose(out.voltage, vref, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(out.current, cref, rtol=1e-6, atol=1e-12)


def test_advanced_source_on_direct_ground_keeps_its_current():
    # keepall: a source cell that is a direct ground loses the ground (Circuitscape.jl), its current flows to cell 2
    out = advanced_flow(np.ones((1, 3)), np.array([[1.0, 0, 0]]), np.array([[0.0, np.nan, 0.0]]), connectivity=4)
    np.testing.assert_allclose(out.voltage, [[2.0, 1.0, 0.0]], atol=1e-6)


def test_advanced_component_without_ground_is_outside():
    res = np.ones((1, 5))
    res[0, 2] = np.nan
    out = advanced_flow(res, np.array([[1.0, 0, 0, 1.0, 0]]), np.array([[np.nan, 1.0, np.nan, np.nan, np.nan]]), connectivity=4)
    assert out.n_components == 1
    assert np.isnan(out.voltage[0, 3:]).all() and np.isnan(out.current[0, 2:]).all()
    np.testing.assert_allclose(out.voltage[0, :2], [2.0, 1.0], rtol=1e-6)


def test_advanced_errors():
    r = np.ones((2, 2))
    with pytest.raises(DataError, match="expected at least one source"):
        advanced_flow(r, np.zeros((2, 2)), np.ones((2, 2)))
    with pytest.raises(DataError, match="expected at least one ground"):
        advanced_flow(r, np.ones((2, 2)), np.array([[1.0, np.nan], [np.nan, np.nan]]), remove_src_or_gnd="rmvgnd")
    with pytest.raises(DataError, match="values >= 0"):
        advanced_flow(r, np.ones((2, 2)), -np.ones((2, 2)))
    with pytest.raises(DataError, match="shape"):
        advanced_flow(r, np.ones((3, 2)), np.ones((2, 2)))
    with pytest.raises(ConfigError, match="remove_src_or_gnd"):
        advanced_flow(r, np.ones((2, 2)), np.ones((2, 2)), remove_src_or_gnd="drop")


# ----------------------------------------------------------------------------- short-circuit regions, shared nodes
def test_short_circuit_region_hand_worked():
    # 1 . . . 2 in 1-ohm cells, 4 neighbours: 4 ohms; the middle three shorted: 2 ohms
    res = np.ones((1, 5))
    focal = np.array([[1, 0, 0, 0, 2]])
    assert circuit_flow(res, focal, connectivity=4).resistances.eff_resistance[0] == pytest.approx(4.0)
    reg = np.array([[0, 3, 3, 3, 0]])
    out = circuit_flow(res, focal, connectivity=4, short_circuit=reg)
    assert out.resistances.eff_resistance[0] == pytest.approx(2.0)
    np.testing.assert_allclose(out.cum_current, [[1.0] * 5], rtol=1e-6)


def test_patches_as_short_circuit_regions_equal_all_shorting():
    # docs/circuit.md: focal_shorting = "all" is Circuitscape with the patches also given as short-circuit regions
    rng = np.random.default_rng(11)
    res = rng.uniform(1.0, 8.0, (15, 15))
    focal = np.zeros(res.shape, np.int64)
    focal[1:3, 1:3], focal[12:14, 12:14], focal[7:9, 6:9], focal[1:3, 12:14] = 1, 2, 3, 4
    shorted_all = circuit_flow(res, focal, focal_shorting="all", solver="superlu")
    as_regions = circuit_flow(res, focal, focal_shorting="pair", short_circuit=focal, solver="superlu")
    np.testing.assert_allclose(as_regions.resistances.eff_resistance, shorted_all.resistances.eff_resistance, rtol=1e-7)


def test_two_focal_ids_on_one_node():
    # patches 1 and 2 lie in one short-circuit region: resistance 0 between them, the same resistance to 3
    res = np.ones((1, 7))
    focal = np.array([[1, 0, 2, 0, 0, 0, 3]])
    reg = np.array([[5, 5, 5, 0, 0, 0, 0]])
    for shorting in ("pair", "all"):
        out = circuit_flow(res, focal, connectivity=4, short_circuit=reg, focal_shorting=shorting)
        r = {(a, b): v for a, b, v in out.resistances.itertuples(index=False)}
        assert r[(1, 2)] == 0.0
        assert r[(1, 3)] == pytest.approx(4.0)
        assert r[(2, 3)] == pytest.approx(4.0)
    # only the two: nothing to solve, resistance 0
    out = circuit_flow(res, np.array([[1, 0, 2, 0, 0, 0, 0]]), connectivity=4, short_circuit=reg)
    assert out.resistances.eff_resistance.tolist() == [0.0]


def test_short_circuit_region_checks():
    with pytest.raises(DataError, match="short-circuit regions"):
        circuit_flow(np.ones((2, 3)), np.array([[1, 0, 2], [0, 0, 0]]), short_circuit=np.zeros((3, 3), np.int64))
    with pytest.raises(DataError, match="integer"):
        circuit_flow(np.ones((2, 3)), np.array([[1, 0, 2], [0, 0, 0]]), short_circuit=np.zeros((2, 3)))


# ----------------------------------------------------------------------------- source strengths
def _strip_focal():
    res = np.ones((1, 7))
    focal = np.array([[1, 0, 2, 0, 0, 0, 3]])
    return res, focal


def test_one_to_all_strength_scales_the_solve():
    res, focal = _strip_focal()
    unit = circuit_flow(res, focal, mode="one_to_all", connectivity=4, current_maps=True)
    two = circuit_flow(res, focal, mode="one_to_all", connectivity=4, current_maps=True, source_strengths={2: 2.0})
    np.testing.assert_allclose(two.currents[2], 2.0 * unit.currents[2], rtol=1e-6)
    np.testing.assert_allclose(two.currents[1], unit.currents[1], rtol=1e-6)
    np.testing.assert_allclose(two.resistances.voltage, unit.resistances.voltage, rtol=1e-9)  # per ampere


def test_all_to_one_strengths_match_dense_solve():
    # all_to_one grounded at patch 3: patch 1 injects 2 A, patch 2 injects 0.5 A; the patches are shorted regions
    res, focal = _strip_focal()
    out = circuit_flow(res, focal, mode="all_to_one", connectivity=4, current_maps=True, source_strengths={1: 2.0, 2: 0.5})
    src = np.where(focal == 1, 2.0, np.where(focal == 2, 0.5, 0.0))
    gnd = np.where(focal == 3, np.inf, 0.0)
    _, cref = _dense_advanced(res, src, gnd, regions=focal, k=4)
    np.testing.assert_allclose(out.currents[3], cref, rtol=1e-6)


def test_source_strength_checks():
    res, focal = _strip_focal()
    with pytest.raises(ConfigError, match="pairwise"):
        circuit_flow(res, focal, source_strengths={1: 2.0})
    with pytest.raises(ConfigError, match="> 0"):
        circuit_flow(res, focal, mode="one_to_all", source_strengths={1: -1.0})
    with pytest.raises(DataError, match="patch ids"):
        circuit_flow(res, focal, mode="one_to_all", source_strengths={9: 1.0})


def test_source_strength_that_is_no_number_is_refused():
    res, focal = _strip_focal()
    with pytest.raises(ConfigError, match="source strength of patch 1: expected a finite number of amperes > 0, found 'a'"):
        circuit_flow(res, focal, mode="one_to_all", source_strengths={1: "a"})


@pytest.mark.parametrize(
    ("pairs", "found"),
    [([(1, 2, 3)], "pairs of two patch ids.*found \\(1, 2, 3\\)"), ([1, 2], "pairs of two patch ids.*found 1"),
     ([(1.5, 2)], "whole-number patch ids, found 1.5"), ([("1", "2")], "whole-number patch ids, found '1'"),
     ([(True, 2)], "whole-number patch ids, found True"),
     ([(2, 2)], "two different patches in a pair, found \\(2, 2\\)")],
)  # fmt: skip
def test_pairs_that_are_no_pairs_of_ids_are_refused(pairs, found):
    # a 1.5 was truncated to patch 1, a self-pair dropped without a word, a flat list a bare TypeError
    res, focal = _strip_focal()
    for key in ("pairs", "exclude_pairs"):
        with pytest.raises(DataError, match=f"{key}: expected {found}"):
            circuit_flow(res, focal, focal_shorting="all", **{key: pairs})
    from leopardgeo.runner.registry import CircuitConfig

    with pytest.raises(ConfigError, match=f"\\[circuit\\] include_pairs: expected {found}"):
        CircuitConfig(include_pairs=pairs)


def test_whole_float_ids_and_arrays_of_pairs_are_read_as_ids():
    res, focal = _strip_focal()
    ref = circuit_flow(res, focal, pairs=[(1, 2)], focal_shorting="all").resistances
    for pairs in ([(1.0, 2)], np.array([[2, 1]]), [(np.int16(2), np.int64(1))]):
        got = circuit_flow(res, focal, pairs=pairs, focal_shorting="all").resistances
        assert got.values.tolist() == ref.values.tolist()


def test_rasters_of_the_wrong_kind_are_refused():
    res, focal = _strip_focal()
    with pytest.raises(DataError, match="resistance: expected a 2-D raster .* found 3 dimensions"):
        circuit_flow(res[None], focal[None])
    with pytest.raises(DataError, match=r"patch ids >= 0 .* \(smallest -3\)"):
        circuit_flow(res, -focal)
    with pytest.raises(ConfigError, match="max_memory_gb: expected a number of GB > 0"):
        circuit_flow(res, focal, max_memory_gb=-1)


# ----------------------------------------------------------------------------- leopardgeo run
def test_run_config_asks_for_per_solve_and_max_current_maps():
    import dataclasses

    from leopardgeo.runner.pipeline import compute_circuit, output_files
    from leopardgeo.runner.registry import demo_config

    cfg = demo_config()
    circ = dataclasses.replace(cfg.circuit, current_maps=True, max_current_map=True, pairs="all")
    cfg = dataclasses.replace(cfg, circuit=circ)
    assert {"current_solves.tif", "max_current.tif"} <= set(output_files(cfg))
    res = np.ones((6, 9))
    labels = np.zeros(res.shape, np.int32)
    labels[2:4, 0], labels[2:4, 8], labels[0, 4] = 1, 2, 3
    out = compute_circuit(cfg, res, labels)
    assert set(out.currents) == {(1, 2), (1, 3), (2, 3)}
    stack = np.stack(list(out.currents.values()))
    np.testing.assert_allclose(out.max_current, stack.max(axis=0), rtol=1e-6)
    np.testing.assert_allclose(out.cum_current, stack.sum(axis=0), rtol=1e-5)


# ----------------------------------------------------------------------------- invariants
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    shape=st.tuples(st.integers(2, 9), st.integers(2, 9)),
    k=st.sampled_from([4, 8]),
    scale=st.floats(0.1, 10.0),
)
def test_advanced_kirchhoff_and_linearity(seed, shape, k, scale):
    """All source current leaves through the grounds (g v summed); scaling the sources scales v and the currents."""
    rng = np.random.default_rng(seed)
    res = rng.uniform(0.5, 5.0, shape)
    res[rng.random(shape) < 0.15] = np.nan
    src = np.where(rng.random(shape) < 0.3, rng.uniform(0.1, 2.0, shape), 0.0)
    gres = np.where(rng.random(shape) < 0.3, rng.uniform(0.5, 4.0, shape), np.nan)
    on_data = ~np.isnan(res)
    assume(((src > 0) & np.isnan(gres) & on_data).any() and (~np.isnan(gres) & on_data).any())
    out = advanced_flow(res, src, gres, connectivity=k, remove_src_or_gnd="rmvsrc", solver="superlu")
    solved = ~np.isnan(out.voltage)
    g = np.where(np.isnan(gres), 0.0, 1.0 / np.nan_to_num(gres, nan=1.0))
    kept_src = np.where(~np.isnan(gres), 0.0, src)  # rmvsrc: a source on a ground is dropped
    assert np.nansum(g[solved] * out.voltage[solved]) == pytest.approx(kept_src[solved].sum(), rel=1e-5, abs=1e-9)
    twice = advanced_flow(res, scale * src, gres, connectivity=k, remove_src_or_gnd="rmvsrc", solver="superlu")
    np.testing.assert_allclose(twice.voltage, scale * out.voltage, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(twice.current, scale * out.current, rtol=1e-5, atol=1e-9)


def test_advanced_nothing_to_solve():
    # a source and a ground in different components: nothing is solved, every cell is outside the circuit
    res = np.array([[1.0, np.nan, 1.0]])
    out = advanced_flow(res, np.array([[1.0, 0, 0]]), np.array([[np.nan, np.nan, 1.0]]), connectivity=4)
    assert out.n_components == 0 and np.isnan(out.voltage).all() and np.isnan(out.current).all()
