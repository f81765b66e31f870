"""Tests of leopardgeo.kernels.circuit against independent references.

References used here never come from the module's own earlier output:

* hand-solved networks (series, parallel, uniform strip, one diagonal branch);
* a dense reference built from scratch in this file (full cell Laplacian from
  Circuitscape's conductance formulas, patches contracted by summing rows and
  columns, effective resistances and voltages from ``numpy.linalg.solve`` with
  the prescribed grounds, current maps from Circuitscape's definition);
* Kirchhoff's current law recomputed from the returned voltage rasters;
* a SuperLU factorisation of the (large) grounded Laplacian for the AMG path;
* ``landschaft``'s Circuitscape port when it is installed.

The dense reference contracts every patch, so sections 1-7 check the
all-patches-shorted convention (``focal_shorting="all"``, bound into
``circuit_flow`` below); section 8 checks Circuitscape's pairwise convention
(only the pair's two patches short-circuited, the default) against the same
dense reference built for each pair, and the direct solvers against each other.
"""

from __future__ import annotations

import functools
import itertools
import math
import re

import numpy as np
import pytest
import scipy.sparse.linalg as spla
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from leopardgeo.core.errors import ConfigError, DataError, MemoryLimitError, NoPathError, ResistanceError
from leopardgeo.kernels import circuit
from leopardgeo.kernels.circuit import build_network, estimate_memory_bytes

#: Sections 1-7: every patch short-circuited in every solve (the dense reference's convention).
circuit_flow = functools.partial(circuit.circuit_flow, focal_shorting="all")

SQRT2 = math.sqrt(2.0)
EPS32 = 2.0**-24  # unit roundoff of float32 (the result rasters)
AXIAL = [(-1, 0), (0, 1), (1, 0), (0, -1)]
DIAGONAL = [(-1, 1), (1, 1), (1, -1), (-1, -1)]

HYPO = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def offsets(connectivity: int) -> list[tuple[int, int]]:
    return AXIAL + (DIAGONAL if connectivity == 8 else [])


def edge_conductance(ru, rv, diagonal: bool, avg: bool):
    """Circuitscape: (c_u + c_v)/2, or 1/((r_u + r_v)/2) with avg_resistances; diagonals divided by sqrt(2)."""
    g = 1.0 / ((ru + rv) / 2.0) if avg else (1.0 / ru + 1.0 / rv) / 2.0
    return g / SQRT2 if diagonal else g


# --------------------------------------------------------------------------- dense reference
class Dense:
    """Contracted conductance Laplacian built cell by cell; node k < P is patch ``ids[k]``, then the plain cells."""

    def __init__(self, res: np.ndarray, focal: np.ndarray, connectivity: int, avg: bool) -> None:
        nr, nc = res.shape
        valid = ~np.isnan(res)
        cells = np.argwhere(valid)
        index = np.full(res.shape, -1)
        index[valid] = np.arange(len(cells))
        n = len(cells)
        full = np.zeros((n, n))
        for k, (i, j) in enumerate(cells):
            for di, dj in offsets(connectivity):
                ii, jj = i + di, j + dj
                if 0 <= ii < nr and 0 <= jj < nc and valid[ii, jj]:
                    g = edge_conductance(res[i, j], res[ii, jj], di != 0 and dj != 0, avg)
                    full[k, k] += g
                    full[k, index[ii, jj]] -= g
        self.ids = sorted({int(v) for v in focal[valid & (focal > 0)]})
        patch_node = {pid: k for k, pid in enumerate(self.ids)}
        n_nodes = len(self.ids)
        col = []
        for i, j in cells:
            if focal[i, j] > 0:
                col.append(patch_node[int(focal[i, j])])
            else:
                col.append(n_nodes)
                n_nodes += 1
        contract = np.zeros((n, n_nodes))
        contract[np.arange(n), col] = 1.0
        self.L = contract.T @ full @ contract
        self.n = n_nodes
        self.cell_node = np.full(res.shape, -1)
        self.cell_node[valid] = col
        self.patch_node = patch_node
        # connected components of the contracted graph (union-find)
        parent = list(range(n_nodes))

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for u, v in zip(*np.nonzero(self.L), strict=True):
            if u != v:
                parent[find(int(u))] = find(int(v))
        self.comp = np.array([find(k) for k in range(n_nodes)])
        n_patches = {c: int(np.sum(self.comp[: len(self.ids)] == c)) for c in set(self.comp.tolist())}
        self.in_circuit = np.array([n_patches[c] >= 2 for c in self.comp])

    def comp_of(self, pid: int) -> int:
        return int(self.comp[self.patch_node[pid]])

    def connected(self, a: int, b: int) -> bool:
        return self.comp_of(a) == self.comp_of(b)

    def members(self, pid: int) -> list[int]:
        """Patch ids in the component of ``pid`` (itself included)."""
        return [q for q in self.ids if self.connected(pid, q)]

    def solve(self, fixed: list[int], inject: dict[int, float], comp: int) -> tuple[np.ndarray, np.ndarray]:
        """Voltages (0 V at the ``fixed`` patch nodes and outside ``comp``) and the currents injected at every node."""
        fixed_nodes = {self.patch_node[p] for p in fixed}
        free = [k for k in range(self.n) if self.comp[k] == comp and k not in fixed_nodes]
        b = np.zeros(len(free))
        pos = {k: i for i, k in enumerate(free)}
        for pid, amps in inject.items():
            b[pos[self.patch_node[pid]]] += amps
        v = np.zeros(self.n)
        v[free] = np.linalg.solve(self.L[np.ix_(free, free)], b)
        return v, self.L @ v

    def current_map(self, v: np.ndarray, injected: np.ndarray) -> np.ndarray:
        """Half the sum of |branch currents| at each node plus half the |injection|, painted on the node's cells."""
        off = -self.L.copy()
        np.fill_diagonal(off, 0.0)
        branch = (off * np.abs(v[:, None] - v[None, :])).sum(axis=1)
        density = 0.5 * (branch + np.abs(injected))
        return self.paint(density)

    def paint(self, per_node: np.ndarray) -> np.ndarray:
        out = np.full(self.cell_node.shape, np.nan)
        ok = self.cell_node >= 0
        out[ok] = per_node[self.cell_node[ok]]
        out[ok] = np.where(self.in_circuit[self.cell_node[ok]], out[ok], np.nan)
        return out

    def pairwise(self, a: int, b: int) -> tuple[float, np.ndarray, np.ndarray]:
        """(R_ab, voltages with b grounded, current map) for 1 A from a to b."""
        v, inj = self.solve([b], {a: 1.0}, self.comp_of(a))
        return float(v[self.patch_node[a]]), v, self.current_map(v, inj)

    def one_to_all(self, p: int) -> tuple[float, np.ndarray]:
        others = [q for q in self.members(p) if q != p]
        v, inj = self.solve(others, {p: 1.0}, self.comp_of(p))
        return float(v[self.patch_node[p]]), self.current_map(v, inj)

    def all_to_one(self, p: int) -> tuple[float, np.ndarray]:
        others = [q for q in self.members(p) if q != p]
        v, inj = self.solve([p], dict.fromkeys(others, 1.0), self.comp_of(p))
        return float(np.mean([v[self.patch_node[q]] for q in others])), self.current_map(v, inj)


# --------------------------------------------------------------------------- raster-level Kirchhoff helpers
def branch_sums(res, volts, focal, connectivity, avg):
    """Per cell, from a voltage raster: signed sum of the currents leaving it, sum of their |.|, a float32 rounding bound.

    Branches inside one patch are skipped (a short circuit carries no resistor).
    """
    nr, nc = res.shape
    signed = np.zeros(res.shape)
    absolute = np.zeros(res.shape)
    bound = np.zeros(res.shape)
    largest = 0.0
    for di, dj in offsets(connectivity):
        # u = cells [r0:r1, c0:c1], v = the same cells shifted by (di, dj)
        r0, r1 = max(0, -di), nr - max(0, di)
        c0, c1 = max(0, -dj), nc - max(0, dj)
        u = (slice(r0, r1), slice(c0, c1))
        v = (slice(r0 + di, r1 + di), slice(c0 + dj, c1 + dj))
        ok = np.isfinite(volts[u]) & np.isfinite(volts[v]) & ~((focal[u] > 0) & (focal[u] == focal[v]))
        g = edge_conductance(res[u], res[v], di != 0 and dj != 0, avg)
        cur = np.where(ok, g * (np.nan_to_num(volts[u]) - np.nan_to_num(volts[v])), 0.0)
        signed[u] += cur
        absolute[u] += np.abs(cur)
        bound[u] += np.where(ok, g * (np.abs(np.nan_to_num(volts[u])) + np.abs(np.nan_to_num(volts[v]))), 0.0)
        largest = max(largest, float(np.abs(cur).max(initial=0.0)))
    return signed, absolute, bound * EPS32, largest


def raster_current_map(res, volts, focal, injected, connectivity, avg):
    """Circuitscape current map from a cell voltage raster; ``injected`` = {patch id: amperes}."""
    _, absolute, _, _ = branch_sums(res, volts, focal, connectivity, avg)
    out = 0.5 * absolute
    for pid in np.unique(focal[focal > 0]):
        cells = (focal == pid) & np.isfinite(volts)
        out[cells] = 0.5 * (absolute[cells].sum() + abs(injected.get(int(pid), 0.0)))
    out[~np.isfinite(volts)] = np.nan
    return out


def assert_map_close(ours, ref, rtol=1e-7):
    """Same NaN pattern; finite values equal within ``rtol`` (float32 output) plus a hair of the largest value."""
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    scale = float(np.nanmax(np.abs(ref), initial=0.0))
    np.testing.assert_allclose(np.asarray(ours, np.float64), ref, rtol=rtol, atol=1e-9 * max(scale, 1.0))


def table_dict(result) -> dict[tuple[int, int], float]:
    t = result.resistances
    return {(int(a), int(b)): float(r) for a, b, r in zip(t.patch_a, t.patch_b, t.eff_resistance, strict=True)}


# --------------------------------------------------------------------------- random grids
@st.composite
def grids(draw, min_patches=2, max_patches=4):
    """(resistance, focal): 6-14 x 6-14, log-uniform 1..1000 ohm, NaN holes (and walls), 2-4 rectangular patches, any ids."""
    nr = draw(st.integers(6, 14))
    nc = draw(st.integers(6, 14))
    seed = draw(st.integers(0, 2**32 - 1))
    holes = draw(st.sampled_from([0.0, 0.1, 0.25, 0.4]))
    n_patches = draw(st.integers(min_patches, max_patches))
    ids = draw(st.lists(st.integers(1, 40), min_size=n_patches, max_size=n_patches, unique=True))
    rng = np.random.default_rng(seed)
    res = 10.0 ** rng.uniform(0.0, 3.0, (nr, nc))
    res[rng.random((nr, nc)) < holes] = np.nan
    if draw(st.booleans()):  # a no-data wall: often two components, each with its own ground
        res[:, draw(st.integers(2, nc - 3))] = np.nan
    focal = np.zeros((nr, nc), dtype=np.int32)
    for pid in ids:
        r0 = draw(st.integers(0, nr - 1))
        c0 = draw(st.integers(0, nc - 1))
        h = draw(st.integers(1, 3))
        w = draw(st.integers(1, 3))
        focal[r0 : r0 + h, c0 : c0 + w] = pid
    present = np.unique(focal[focal > 0])
    assume(len(present) >= min_patches)
    for pid in present:  # every patch keeps at least one cell with data
        cells = np.argwhere(focal == pid)
        if np.isnan(res[tuple(cells.T)]).all():
            res[tuple(cells[0])] = 10.0 ** rng.uniform(0.0, 3.0)
    return res, focal


# --------------------------------------------------------------------------- 1. hand-solved networks
@pytest.mark.parametrize("avg", [False, True])
def test_series_strip(avg):
    r = np.array([[2.0, 5.0, 1.0, 40.0, 3.0, 7.0]])
    focal = np.array([[1, 0, 0, 0, 0, 2]])
    if avg:
        expected = sum((r[0, i] + r[0, i + 1]) / 2 for i in range(5))
    else:
        expected = sum(1.0 / ((1 / r[0, i] + 1 / r[0, i + 1]) / 2) for i in range(5))
    out = circuit_flow(r, focal, connectivity=4, avg_resistances=avg)
    assert table_dict(out) == {(1, 2): pytest.approx(expected, rel=1e-12)}
    # 1 A passes through every cell of a series chain; each end patch: half its branch + half the injection
    np.testing.assert_allclose(out.cum_current, np.ones((1, 6)), rtol=1e-6)
    assert out.cum_current.dtype == np.float32


@pytest.mark.parametrize("connectivity", [4, 8])
def test_parallel_rows(connectivity):
    top = np.array([3.0, 1.0, 8.0, 2.0, 5.0])
    bottom = np.array([10.0, 20.0, 4.0, 6.0, 1.0])
    r = np.full((3, 5), np.nan)
    r[0], r[2] = top, bottom
    focal = np.zeros((3, 5), dtype=np.int32)
    focal[:, 0], focal[:, 4] = 1, 2  # the patch cells on the NaN middle row are not in the circuit

    def series(row):
        return sum(2.0 / (1 / row[i] + 1 / row[i + 1]) for i in range(4))

    r_top, r_bot = series(top), series(bottom)
    expected = 1.0 / (1.0 / r_top + 1.0 / r_bot)
    out = circuit_flow(r, focal, connectivity=connectivity)
    assert out.resistances.eff_resistance.iloc[0] == pytest.approx(expected, rel=1e-12)
    cur = out.cum_current
    np.testing.assert_allclose(cur[0, 1:4], expected / r_top, rtol=1e-6)  # current divides as the conductances
    np.testing.assert_allclose(cur[2, 1:4], expected / r_bot, rtol=1e-6)
    np.testing.assert_allclose(cur[[0, 2]][:, [0, 4]], 1.0, rtol=1e-6)
    assert np.isnan(cur[1]).all()


@pytest.mark.parametrize(("rows", "cols", "r"), [(1, 5, 2.0), (3, 7, 4.0), (5, 4, 0.5)])
def test_uniform_strip_closed_form(rows, cols, r):
    res = np.full((rows, cols), r)
    focal = np.zeros((rows, cols), dtype=np.int32)
    focal[:, 0], focal[:, -1] = 1, 2
    out = circuit_flow(res, focal, connectivity=4)
    assert out.resistances.eff_resistance.iloc[0] == pytest.approx((cols - 1) * r / rows, rel=1e-12)
    # each row carries 1/W: an interior cell has two branches of 1/W each -> 1/W; a patch shows (1 + 1)/2 = 1
    np.testing.assert_allclose(out.cum_current[:, 1:-1], 1.0 / rows, rtol=1e-6)
    np.testing.assert_allclose(out.cum_current[:, [0, -1]], 1.0, rtol=1e-6)


@pytest.mark.parametrize("avg", [False, True])
def test_single_diagonal_branch(avg):
    res = np.array([[3.0, np.nan], [np.nan, 5.0]])
    focal = np.array([[1, 0], [0, 2]])
    expected = SQRT2 * (3.0 + 5.0) / 2 if avg else SQRT2 * 2.0 / (1 / 3 + 1 / 5)
    out = circuit_flow(res, focal, connectivity=8, avg_resistances=avg)
    assert out.resistances.eff_resistance.iloc[0] == pytest.approx(expected, rel=1e-12)
    four = circuit_flow(res, focal, connectivity=4, avg_resistances=avg)  # no axial path
    assert four.resistances.eff_resistance.iloc[0] == math.inf
    assert np.isnan(four.cum_current).all()


# --------------------------------------------------------------------------- 2. dense reference on random grids
@pytest.mark.parametrize(("connectivity", "avg"), list(itertools.product([4, 8], [False, True])))
@HYPO
@given(grid=grids())
def test_pairwise_matches_dense_reference(connectivity, avg, grid):
    res, focal = grid
    ref = Dense(res, focal, connectivity, avg)
    out = circuit_flow(res, focal, connectivity=connectivity, avg_resistances=avg, voltage_maps=True)
    got = table_dict(out)
    assert list(got) == list(itertools.combinations(ref.ids, 2))
    cum = ref.paint(np.zeros(ref.n))
    for a, b in got:
        if not ref.connected(a, b):
            assert got[a, b] == math.inf
            assert (a, b) not in out.voltages
            continue
        r_ab, v, cmap = ref.pairwise(a, b)
        assert got[a, b] == pytest.approx(r_ab, rel=1e-8)
        cum = cum + np.nan_to_num(cmap) * np.isfinite(cum)
        # voltages relative to the sink agree with the dense solve (float32 raster)
        vm = out.voltages[a, b].astype(np.float64)
        vb = vm[(focal == b) & np.isfinite(vm)][0]
        vref = ref.paint(v)
        live = np.isfinite(vref) & (ref.comp[np.maximum(ref.cell_node, 0)] == ref.comp_of(a))
        tol = 4 * EPS32 * np.nanmax(np.abs(vm)) + 1e-9 * r_ab
        np.testing.assert_allclose((vm - vb)[live], vref[live], rtol=0, atol=tol)
    assert_map_close(out.cum_current, cum)


@pytest.mark.parametrize(("connectivity", "avg"), [(4, False), (8, True)])
@HYPO
@given(grid=grids())
def test_laplacian_matches_dense_reference(connectivity, avg, grid):
    res, focal = grid
    ref = Dense(res, focal, connectivity, avg)
    net = build_network(res, focal, connectivity=connectivity, avg_resistances=avg)
    # the circuit = cells of components holding two or more patches
    np.testing.assert_array_equal(net.node >= 0, np.isfinite(ref.paint(np.zeros(ref.n))))
    # map the module's unknowns to the reference's nodes through the cells, then compare the grounded Laplacian
    mine = np.full(net.n_total, -1)
    mine[net.node[net.node >= 0]] = ref.cell_node[net.node >= 0]
    assert (mine >= 0).all()
    grounds = set(mine[net.n_solve :].tolist())
    assert len(grounds) == len({ref.comp_of(p) for p in ref.ids if ref.in_circuit[ref.patch_node[p]]})
    perm = mine[: net.n_solve]
    np.testing.assert_allclose(net.laplacian.toarray(), ref.L[np.ix_(perm, perm)], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("mode", ["one_to_all", "all_to_one"])
@HYPO
@given(grid=grids(), connectivity=st.sampled_from([4, 8]), avg=st.booleans())
def test_one_to_all_and_all_to_one_match_dense_reference(mode, grid, connectivity, avg):
    res, focal = grid
    ref = Dense(res, focal, connectivity, avg)
    out = circuit_flow(res, focal, mode=mode, connectivity=connectivity, avg_resistances=avg)
    table = out.resistances
    assert table.patch.tolist() == ref.ids
    cum = ref.paint(np.zeros(ref.n))
    for pid, voltage in zip(table.patch, table.voltage, strict=True):
        if not ref.in_circuit[ref.patch_node[int(pid)]]:
            assert math.isnan(voltage)
            continue
        v_ref, cmap = ref.one_to_all(int(pid)) if mode == "one_to_all" else ref.all_to_one(int(pid))
        assert voltage == pytest.approx(v_ref, rel=1e-8)
        cum = cum + np.nan_to_num(cmap) * np.isfinite(cum)
    assert_map_close(out.cum_current, cum)


def test_two_patches_all_modes_agree_with_resistance():
    """With two patches every mode drives the same 1 A: one_to_all's source voltage = all_to_one's mean voltage = R."""
    rng = np.random.default_rng(3)
    res = 10.0 ** rng.uniform(0, 3, (8, 9))
    focal = np.zeros(res.shape, dtype=np.int32)
    focal[1:3, 1:3], focal[5:7, 6:8] = 4, 9
    r = circuit_flow(res, focal).resistances.eff_resistance.iloc[0]
    one = circuit_flow(res, focal, mode="one_to_all").resistances
    allo = circuit_flow(res, focal, mode="all_to_one").resistances
    np.testing.assert_allclose(one.voltage, [r, r], rtol=1e-10)
    np.testing.assert_allclose(allo.voltage, [r, r], rtol=1e-10)


# --------------------------------------------------------------------------- 3. symmetry and the metric
@HYPO
@given(grid=grids(min_patches=3, max_patches=4), connectivity=st.sampled_from([4, 8]), avg=st.booleans())
def test_symmetry_and_triangle_inequality(grid, connectivity, avg):
    res, focal = grid
    ids = [int(v) for v in np.unique(focal[focal > 0])]
    kw = {"connectivity": connectivity, "avg_resistances": avg}
    out = circuit_flow(res, focal, **kw)
    rab = table_dict(out)
    a, b = ids[0], ids[1]
    fwd = circuit_flow(res, focal, pairs=[(a, b)], **kw)
    rev = circuit_flow(res, focal, pairs=[(b, a)], **kw)
    assert fwd.resistances.eff_resistance.iloc[0] == rev.resistances.eff_resistance.iloc[0]
    np.testing.assert_array_equal(fwd.cum_current, rev.cum_current)
    # swapping the two labels (so the ground patch changes) leaves R and the map unchanged
    swapped = focal.copy()
    swapped[focal == a], swapped[focal == b] = b, a
    sw = circuit_flow(res, swapped, pairs=[(a, b)], **kw)
    assert sw.resistances.eff_resistance.iloc[0] == pytest.approx(fwd.resistances.eff_resistance.iloc[0], rel=1e-9)
    assert_map_close(sw.cum_current, fwd.cum_current.astype(np.float64), rtol=3e-7)

    def r_of(p, q):
        return rab[min(p, q), max(p, q)]

    for p, q, s in itertools.permutations(ids, 3):
        if math.isfinite(r_of(p, q)) and math.isfinite(r_of(q, s)):
            assert math.isfinite(r_of(p, s))
            assert r_of(p, s) <= (r_of(p, q) + r_of(q, s)) * (1 + 1e-10)
        assert r_of(p, q) > 0


# --------------------------------------------------------------------------- 4. Kirchhoff's current law
@HYPO
@given(grid=grids(), connectivity=st.sampled_from([4, 8]), avg=st.booleans())
def test_current_conservation_from_voltage_maps(grid, connectivity, avg):
    """Recompute branch currents from the voltage rasters: 0 net at plain cells and bystander patches, +1 A / -1 A at a / b.

    The voltage rasters are float32 (documented), so the tolerance is 1e-8 of the largest branch current plus a
    rigorous float32 rounding bound: sum over the node's branches of g * (|V_u| + |V_v|) * 2**-24, doubled.
    """
    res, focal = grid
    out = circuit_flow(res, focal, connectivity=connectivity, avg_resistances=avg, voltage_maps=True)
    assume(out.voltages)
    for (a, b), volts in out.voltages.items():
        v = volts.astype(np.float64)
        signed, _, bound, largest = branch_sums(res, v, focal, connectivity, avg)
        slack = 1e-8 * largest
        plain = np.isfinite(v) & (focal == 0)
        assert (np.abs(signed[plain]) <= 2 * bound[plain] + slack).all()
        for pid in np.unique(focal[(focal > 0) & np.isfinite(v)]):
            cells = (focal == pid) & np.isfinite(v)
            assert np.ptp(v[cells]) == 0  # a short-circuited patch has one voltage
            expected = 1.0 if pid == a else -1.0 if pid == b else 0.0
            assert abs(signed[cells].sum() - expected) <= 2 * bound[cells].sum() + slack


# --------------------------------------------------------------------------- 5. AMG against a direct solve
def test_amg_matches_direct_solve_on_large_grid():
    rng = np.random.default_rng(5)
    n = 450
    res = 10.0 ** rng.uniform(0.0, 3.0, (n, n))
    res[rng.random(res.shape) < 0.05] = np.nan
    focal = np.zeros(res.shape, dtype=np.int32)
    focal[10:30, 10:40], focal[400:430, 380:420], focal[20:50, 400:440] = 1, 2, 3
    res[focal > 0] = 1.0
    out = circuit_flow(res, focal, connectivity=8, solver="amg")
    assert out.solver == "amg"
    net = build_network(res, focal, connectivity=8)
    assert net.n_solve > 100_000  # geometric AMG levels are built
    # reference: SuperLU on the grounded Laplacian (scipy's spsolve runs SuperLU too, but without symmetric mode
    # its ordering fills in so badly on this 190k-unknown matrix that it takes minutes and gigabytes)
    lu = spla.splu(net.laplacian.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    nodes = {p: net.node_of(p) for p in (1, 2, 3)}

    def unit(node):
        x = np.zeros(net.n_total)
        if node < net.n_solve:
            rhs = np.zeros(net.n_solve)
            rhs[node] = 1.0
            x[: net.n_solve] = lu.solve(rhs)
        return x

    x = {p: unit(nd) for p, nd in nodes.items()}
    cum = np.zeros(res.shape)
    got = table_dict(out)
    assert set(got) == {(1, 2), (1, 3), (2, 3)}
    for a, b in got:
        v = x[a] - x[b]
        assert got[a, b] == pytest.approx(v[nodes[a]] - v[nodes[b]], rel=1e-6)
        cells = np.where(net.node >= 0, v[np.maximum(net.node, 0)], np.nan)
        cum += raster_current_map(res, cells, focal, {a: 1.0, b: -1.0}, 8, False)
    np.testing.assert_array_equal(np.isnan(out.cum_current), np.isnan(cum))
    assert np.nanmax(np.abs(out.cum_current - cum)) < 1e-5 * np.nanmax(cum)


@pytest.fixture(scope="module")
def amg_grid_solver():
    """A grounded Laplacian large enough for geometric AMG levels (> 100,000 unknowns), and its AMG solver."""
    rng = np.random.default_rng(11)
    res = 10.0 ** rng.uniform(0.0, 3.0, (340, 340))
    res[rng.random(res.shape) < 0.05] = np.nan
    focal = np.zeros(res.shape, dtype=np.int32)
    focal[10:20, 10:20], focal[300:320, 310:330] = 1, 2
    res[focal > 0] = 1.0
    net = build_network(res, focal, connectivity=8)
    from leopardgeo.kernels.circuit.assembly import solve_nodes
    from leopardgeo.kernels.circuit.solvers import LaplacianSolver

    lin = LaplacianSolver(net.laplacian, "amg", 1e-8, node_raster=solve_nodes(net))
    assert net.n_solve > 100_000 and len(lin._ml.levels) > 3
    return net, lin


def test_vcycle_is_pyamgs_cycle(amg_grid_solver):
    # the compiled V-cycle (zero start, residual gathered in the forward sweep) against pyamg's own cycle
    net, lin = amg_grid_solver
    ref = lin._ml.aspreconditioner(cycle="V")
    b = np.random.default_rng(3).standard_normal(net.n_solve)
    expected = ref @ b
    got = lin._cycle(b)
    assert np.abs(got - expected).max() <= 1e-12 * np.abs(expected).max()
    out = np.empty(net.n_solve)
    assert lin._cycle(b, out=out) is out
    np.testing.assert_array_equal(out, got)


def test_pcg_matches_scipy_cg_and_a_direct_solve(amg_grid_solver):
    net, lin = amg_grid_solver
    b = np.zeros(net.n_solve)
    b[int(net.focal_node[net.focal_node < net.n_solve][0])] = 1.0  # the patch that is not the ground
    count = [0]
    m = spla.LinearOperator(net.laplacian.shape, matvec=lin._cycle, dtype=np.float64)  # the cycle, tested above
    ref, info = spla.cg(net.laplacian, b, rtol=1e-8, atol=0.0, M=m, callback=lambda _: count.__setitem__(0, count[0] + 1))
    assert info == 0
    x = lin.solve(b)
    assert abs(lin.iterations[-1] - count[0]) <= 1
    assert np.linalg.norm(net.laplacian @ x - b) <= 1e-8 * np.linalg.norm(b)
    lu = spla.splu(net.laplacian.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    exact = lu.solve(b)
    assert np.abs(x - exact).max() <= 1e-6 * np.abs(exact).max()
    assert np.abs(x - ref).max() <= 1e-6 * np.abs(exact).max()
    assert lin.solve(np.zeros(net.n_solve)).tolist() == [0.0] * net.n_solve


# --------------------------------------------------------------------------- 6. landschaft (Circuitscape port)
@pytest.mark.parametrize(("four", "avg"), list(itertools.product([False, True], [False, True])))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_landschaft_circuitscape(seed, four, avg):
    lc = pytest.importorskip("landschaft.circuit")

    rng = np.random.default_rng(seed)
    res = 10.0 ** rng.uniform(0.0, 3.0, (10, 12))
    res[rng.random(res.shape) < 0.15] = np.nan
    focal = np.zeros(res.shape, dtype=np.int32)
    focal[1:3, 1:4], focal[7:9, 8:11] = 1, 2
    res[(focal > 0) & np.isnan(res)] = 2.0  # patches wholly on data (focal cells on NaN are treated differently)
    cs = lc.circuitscape_pairwise(res, focal, cum_map=True, four_neighbors=four, avg_resistances=avg)
    out = circuit_flow(res, focal, connectivity=4 if four else 8, avg_resistances=avg)
    assert out.resistances.eff_resistance.iloc[0] == pytest.approx(cs.resistances[1, 2], rel=1e-8)
    ours = out.cum_current.astype(np.float64)
    live = np.isfinite(ours)
    assert live.any()
    np.testing.assert_allclose(ours[live], np.asarray(cs.cum_current)[live], rtol=1e-7, atol=1e-9)


# --------------------------------------------------------------------------- 7. errors and disconnected pairs
def _three_patches():
    res = np.ones((6, 6))
    focal = np.zeros((6, 6), dtype=np.int32)
    focal[0, 0], focal[5, 5], focal[0, 5] = 1, 2, 3
    return res, focal


def test_single_patch_is_data_error():
    res, focal = _three_patches()
    focal[focal > 1] = 0
    with pytest.raises(DataError, match="at least two"):
        build_network(res, focal)
    with pytest.raises(DataError):
        circuit_flow(res, focal)


def test_patch_on_no_data_is_named():
    res, focal = _three_patches()
    res[5, 5] = np.nan
    with pytest.raises(NoPathError, match=r"patch 2\b"):
        circuit_flow(res, focal)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.inf, -np.inf])
def test_bad_resistance(bad):
    res, focal = _three_patches()
    res[2, 3] = bad
    with pytest.raises(ResistanceError, match="resistance"):
        circuit_flow(res, focal)


def test_connectivity_16_is_config_error():
    res, focal = _three_patches()
    with pytest.raises(ConfigError, match="16"):
        circuit_flow(res, focal, connectivity=16)


def test_float_labels_are_data_error():
    res, focal = _three_patches()
    with pytest.raises(DataError, match="integer"):
        circuit_flow(res, focal.astype(np.float64))


def test_unknown_pair_id_is_data_error():
    res, focal = _three_patches()
    with pytest.raises(DataError, match="9"):
        circuit_flow(res, focal, pairs=[(1, 9)])


@pytest.mark.parametrize("mode", ["pairwise", "one_to_all", "all_to_one"])
def test_memory_limit(mode):
    res, focal = _three_patches()
    with pytest.raises(MemoryLimitError) as err:
        circuit_flow(res, focal, mode=mode, max_memory_gb=1e-6)
    msg = str(err.value)
    assert "max_memory_gb" in msg
    assert re.search(r"need about [\d.]+ ?[kMG]?B", msg)
    assert "coarser cells" in msg  # what to do


def test_memory_limit_message_states_the_need():
    res, focal = _three_patches()
    with pytest.raises(MemoryLimitError) as err:
        circuit_flow(res, focal, max_memory_gb=1e-6)
    units = {"B": 1.0, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9}
    need = re.search(r"need about ([\d.]+) ?([kKMG]?B)", str(err.value))
    found = re.search(r"found ([\d.]+) ?([kKMG]?B)", str(err.value))
    assert need and found
    need_b = float(need[1]) * units[need[2]]
    found_b = float(found[1]) * units[found[2]]
    assert need_b > found_b > 0  # states a non-zero need, larger than the limit


def _memory_between(res, focal, n_stored):
    """A max_memory_gb that fits the run without stored unit solutions but not with ``n_stored`` of them."""
    net = build_network(res, focal)
    lo = estimate_memory_bytes(res.size, net.n_solve, 0)
    hi = estimate_memory_bytes(res.size, net.n_solve, n_stored)
    assert lo < hi
    return (lo + hi) / 2 / 1e9


def test_memory_fallback_pairwise_solves_each_pair():
    res, focal = _three_patches()
    res = res * np.linspace(1, 3, 36).reshape(6, 6)
    ref = Dense(res, focal, 8, False)
    out = circuit_flow(res, focal, max_memory_gb=_memory_between(res, focal, 2))
    assert len(out.iterations) == 3  # one solve per pair, nothing stored
    cum = ref.paint(np.zeros(ref.n))
    for (a, b), r in table_dict(out).items():
        r_ab, _, cmap = ref.pairwise(a, b)
        assert r == pytest.approx(r_ab, rel=1e-8)
        cum = cum + cmap
    assert_map_close(out.cum_current, cum)
    with pytest.raises(MemoryLimitError):  # one_to_all has no fallback
        circuit_flow(res, focal, mode="one_to_all", max_memory_gb=_memory_between(res, focal, 2))


def test_memory_fallback_all_to_one_solves_each_patch():
    res, focal = _three_patches()
    res = res * np.linspace(1, 3, 36).reshape(6, 6)
    ref = Dense(res, focal, 8, False)
    out = circuit_flow(res, focal, mode="all_to_one", max_memory_gb=_memory_between(res, focal, 2))
    for pid, voltage in zip(out.resistances.patch, out.resistances.voltage, strict=True):
        assert voltage == pytest.approx(ref.all_to_one(int(pid))[0], rel=1e-8)
    # module docstring: "When storing the x_k would not fit in memory, pairwise and all-to-one fall back to one
    # solve per pair / patch"
    assert len(out.iterations) == 3


def test_disconnected_components():
    """Patches 1, 2 left of a NaN wall, 3, 4 right, 5 alone on an island: cross pairs are inf and paint nothing."""
    rng = np.random.default_rng(11)
    res = 10.0 ** rng.uniform(0, 2, (8, 13))
    res[:, 6] = np.nan
    res[:, 10] = np.nan
    focal = np.zeros(res.shape, dtype=np.int32)
    focal[0, 0], focal[7, 5], focal[0, 7], focal[7, 9], focal[3, 12] = 1, 2, 3, 4, 5
    out = circuit_flow(res, focal, connectivity=8)
    got = table_dict(out)
    assert len(got) == 10
    for (a, b), r in got.items():
        assert math.isfinite(r) == ((a, b) in {(1, 2), (3, 4)})
    same = circuit_flow(res, focal, pairs=[(1, 2), (3, 4)])
    np.testing.assert_array_equal(out.cum_current, same.cum_current)
    assert np.isnan(out.cum_current[:, 6]).all()
    assert np.isnan(out.cum_current[:, 11:]).all()  # patch 5's component holds one patch: not in the circuit
    assert np.isfinite(out.cum_current[:, :6]).all()
    only_cross = circuit_flow(res, focal, pairs=[(1, 3), (2, 5)])
    assert list(only_cross.resistances.eff_resistance) == [math.inf, math.inf]
    live = np.isfinite(only_cross.cum_current)
    np.testing.assert_array_equal(live, np.isfinite(out.cum_current))
    assert (only_cross.cum_current[live] == 0).all()
    for mode in ("one_to_all", "all_to_one"):
        table = circuit_flow(res, focal, mode=mode).resistances
        assert math.isnan(table.voltage.iloc[4])
        assert np.isfinite(table.voltage.iloc[:4]).all()


@pytest.mark.parametrize("mode", ["pairwise", "one_to_all", "all_to_one"])
@pytest.mark.parametrize("bridge", [False, True])
def test_several_components_match_dense_reference(mode, bridge):
    """Three components (two grounds, one lone patch); with ``bridge`` a patch straddles a wall and joins two of them."""
    rng = np.random.default_rng(12)
    res = 10.0 ** rng.uniform(0, 3, (8, 13))
    res[:, 6] = np.nan
    res[:, 10] = np.nan
    focal = np.zeros(res.shape, dtype=np.int32)
    focal[0, 0], focal[7, 5], focal[0, 7], focal[7, 9], focal[3, 12] = 1, 2, 3, 4, 5
    if bridge:
        focal[4, 9:12] = 6
    ref = Dense(res, focal, 8, False)
    assert len({ref.comp_of(p) for p in ref.ids}) == (2 if bridge else 3)
    out = circuit_flow(res, focal, mode=mode)
    cum = ref.paint(np.zeros(ref.n))
    if mode == "pairwise":
        for (a, b), r in table_dict(out).items():
            if ref.connected(a, b):
                r_ab, _, cmap = ref.pairwise(a, b)
                assert r == pytest.approx(r_ab, rel=1e-8)
                cum = cum + cmap
            else:
                assert r == math.inf
    else:
        for pid, voltage in zip(out.resistances.patch, out.resistances.voltage, strict=True):
            if len(ref.members(int(pid))) < 2:
                assert math.isnan(voltage)
                continue
            v_ref, cmap = ref.one_to_all(int(pid)) if mode == "one_to_all" else ref.all_to_one(int(pid))
            assert voltage == pytest.approx(v_ref, rel=1e-8)
            cum = cum + cmap
    assert_map_close(out.cum_current, cum)


def test_pair_groups_only_for_every_pair_once():
    from leopardgeo.kernels.circuit.currents import _pair_groups

    # columns 0-2 and the ground 5 (one component), 3-4 without a ground (another): every pair once
    pairs = [(0, 1), (0, 2), (1, 2), (0, 5), (1, 5), (2, 5), (3, 4)]
    ia, ib = np.array(pairs).T
    cols, starts = _pair_groups(ia, ib, 5)
    groups = [sorted(cols[a:b].tolist()) for a, b in itertools.pairwise(starts)]
    assert sorted(groups) == [[0, 1, 2, 5], [3, 4]]
    assert _pair_groups(ia[:-1], ib[:-1], 5) is not None  # (3, 4) dropped: still every pair of {0, 1, 2, 5}
    for bad in ([*pairs[:-2], (5, 0)], pairs[1:], pairs[:4] + pairs[5:], [*pairs, (5, 5)]):  # twice, missing, part ground
        ia, ib = np.array(bad).T
        assert _pair_groups(ia, ib, 5) is None, bad


@pytest.mark.parametrize(("connectivity", "avg"), [(4, True), (8, False)])
def test_all_pairs_map_by_sorting_matches_dense_reference(connectivity, avg, monkeypatch):
    """Eight patches in two components: the cumulative map of all pairs from sorted differences (_clique_currents)."""
    from leopardgeo.kernels.circuit import currents

    calls: list[int] = []
    kernel = currents._clique_currents
    monkeypatch.setattr(currents, "_clique_currents", lambda *a: calls.append(1) or kernel(*a))
    rng = np.random.default_rng(21)
    res = 10.0 ** rng.uniform(0.0, 3.0, (18, 22))
    res[:, 14] = np.nan  # a wall: patches 1-5 left of it, 6-8 right
    focal = np.zeros(res.shape, dtype=np.int32)
    spots = [(1, 1), (14, 2), (7, 9), (1, 10), (15, 11), (2, 17), (14, 19), (8, 16)]
    for pid, (r, c) in enumerate(spots, start=1):
        focal[r : r + 2, c : c + 2] = pid
    ref = Dense(res, focal, connectivity, avg)
    out = circuit_flow(res, focal, connectivity=connectivity, avg_resistances=avg, workers=1)
    assert calls
    cum = ref.paint(np.zeros(ref.n))
    for (a, b), r in table_dict(out).items():
        if ref.connected(a, b):
            r_ab, _, cmap = ref.pairwise(a, b)
            assert r == pytest.approx(r_ab, rel=1e-8)
            cum = cum + cmap
        else:
            assert r == math.inf
    assert_map_close(out.cum_current, cum)


def test_float32_resistance():
    rng = np.random.default_rng(8)
    res = (10.0 ** rng.uniform(0, 3, (7, 9))).astype(np.float32)
    res[3, 2:6] = np.nan
    focal = np.zeros(res.shape, dtype=np.uint8)
    focal[0, 0], focal[6, 8], focal[0, 8] = 1, 2, 200
    for avg in (False, True):
        ref = Dense(res.astype(np.float64), focal, 8, avg)
        out = circuit_flow(res, focal, avg_resistances=avg)
        cum = ref.paint(np.zeros(ref.n))
        for (a, b), r in table_dict(out).items():
            r_ab, _, cmap = ref.pairwise(a, b)
            assert r == pytest.approx(r_ab, rel=1e-6)
            cum = cum + cmap
        assert_map_close(out.cum_current, cum, rtol=1e-6)


def test_large_uint32_patch_id_is_kept_or_refused():
    res, focal = _three_patches()
    labels = focal.astype(np.uint32)
    labels[0, 5] = 3_000_000_000
    try:
        out = circuit_flow(res, labels)
    except DataError:
        return
    table = out.resistances
    assert set(table.patch_a) | set(table.patch_b) == {1, 2, 3_000_000_000}


# --------------------------------------------------------------------------- 8. include / exclude
def _four_patch_grid():
    rng = np.random.default_rng(21)
    res = 10.0 ** rng.uniform(0, 3, (9, 10))
    res[4, 2:8] = np.nan
    focal = np.zeros(res.shape, dtype=np.int32)
    focal[0:2, 0:2], focal[7:9, 8:10], focal[0, 7:10], focal[8, 0] = 1, 2, 3, 4
    return res, focal


def test_include_pairs_solves_only_those():
    res, focal = _four_patch_grid()
    ref = Dense(res, focal, 8, False)
    out = circuit_flow(res, focal, pairs=[(1, 3)], voltage_maps=True)
    assert list(table_dict(out)) == [(1, 3)]
    assert list(out.voltages) == [(1, 3)]
    r13, _, cmap = ref.pairwise(1, 3)
    assert table_dict(out)[1, 3] == pytest.approx(r13, rel=1e-8)
    assert_map_close(out.cum_current, cmap)


@pytest.mark.parametrize("exclude", [[(1, 2)], [(2, 1)]])
def test_exclude_pairs_drops_them(exclude):
    res, focal = _four_patch_grid()
    ref = Dense(res, focal, 8, False)
    out = circuit_flow(res, focal, exclude_pairs=exclude)
    kept = [p for p in itertools.combinations([1, 2, 3, 4], 2) if p != (1, 2)]
    assert list(table_dict(out)) == kept
    cum = ref.paint(np.zeros(ref.n))
    for a, b in kept:
        r_ab, _, cmap = ref.pairwise(a, b)
        assert table_dict(out)[a, b] == pytest.approx(r_ab, rel=1e-8)
        cum = cum + cmap
    assert_map_close(out.cum_current, cum)


# --------------------------------------------------------------------------- 8. Circuitscape's pairwise convention
def _strip(cells: str) -> tuple[np.ndarray, np.ndarray]:
    """A one-row grid of 1-ohm cells from a string: digits = patch ids, '.' = plain cell, 'x' = no data."""
    res = np.array([[np.nan if ch == "x" else 1.0 for ch in cells]])
    focal = np.array([[int(ch) if ch.isdigit() else 0 for ch in cells]], dtype=np.int32)
    return res, focal


def test_pair_shorting_hand_solved_strip():
    # 1 . 3 3 3 . 2 : six 1-ohm branches in series from 1 to 2; patch 3 is three ordinary cells (6 ohm) unless
    # short-circuited, when its two inner branches vanish (4 ohm).
    res, focal = _strip("1.333.2")
    pair = table_dict(circuit.circuit_flow(res, focal, connectivity=4))
    every = table_dict(circuit.circuit_flow(res, focal, connectivity=4, focal_shorting="all"))
    assert pair[(1, 2)] == pytest.approx(6.0, rel=1e-12)
    assert every[(1, 2)] == pytest.approx(4.0, rel=1e-12)
    assert pair[(1, 3)] == pytest.approx(2.0, rel=1e-12)  # 3 is one of the pair: shorted in both conventions
    assert every[(1, 3)] == pytest.approx(2.0, rel=1e-12)


def test_pair_shorting_does_not_connect_through_another_patch():
    # patch 3 sits on both sides of a no-data cell: shorted, it joins the two halves; as ordinary cells it does not
    res, focal = _strip("13x32")
    pair = table_dict(circuit.circuit_flow(res, focal, connectivity=4))
    every = table_dict(circuit.circuit_flow(res, focal, connectivity=4, focal_shorting="all"))
    assert pair[(1, 2)] == math.inf
    assert every[(1, 2)] == pytest.approx(2.0, rel=1e-12)


@pytest.mark.parametrize(("connectivity", "avg"), [(4, True), (8, False)])
@given(grid=grids(min_patches=3, max_patches=4))
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_pair_shorting_matches_dense_reference_per_pair(connectivity, avg, grid):
    res, focal = grid
    out = circuit.circuit_flow(res, focal, connectivity=connectivity, avg_resistances=avg, current_maps=True)
    assert out.focal_shorting == "pair"
    cum = np.zeros(res.shape)
    seen = np.zeros(res.shape, dtype=bool)
    for (a, b), r in table_dict(out).items():
        ref = Dense(res, np.where((focal == a) | (focal == b), focal, 0), connectivity, avg)
        if not ref.connected(a, b):
            assert r == math.inf
            continue
        r_ab, _, cmap = ref.pairwise(a, b)
        assert r == pytest.approx(r_ab, rel=1e-8)
        assert_map_close(out.currents[(a, b)], cmap, rtol=1e-6)
        live = np.isfinite(cmap)
        cum[live] += cmap[live]
        seen |= live
    cum[~seen] = np.nan
    # Circuitscape's convention adds up one solve's float32 cumulative map per pair, then rounds the sum to float32:
    # two float32 roundings of non-negative terms (2 EPS32 of the sum, 1.2e-7), on top of the solves' ~1e-9
    assert_map_close(out.cum_current, cum, rtol=2 * EPS32 + 1e-8)


# --------------------------------------------------------------------------- 9. solvers
def _solvers_here() -> list[str]:
    out = ["amg", "superlu"]
    out += ["pardiso"] if circuit._pardiso() is not None else []
    out += ["cholmod"] if circuit._cholespy() is not None else []
    return out


@pytest.mark.parametrize("mode", ["pairwise", "one_to_all", "all_to_one"])
def test_every_solver_gives_the_same_answer(mode):
    rng = np.random.default_rng(7)
    res = 10.0 ** rng.uniform(0.0, 2.0, (24, 30))
    res[rng.random(res.shape) < 0.1] = np.nan
    focal = np.zeros(res.shape, dtype=np.int32)
    for pid, (r, c) in enumerate([(2, 2), (19, 25), (3, 24), (18, 4)], start=1):
        focal[r : r + 3, c : c + 3] = pid
    res[focal > 0] = 1.0
    ref = Dense(res, focal, 8, False)
    for name in _solvers_here():
        out = circuit_flow(res, focal, mode=mode, solver=name, tolerance=1e-12)
        assert out.solver == name
        if mode == "pairwise":
            for (a, b), r in table_dict(out).items():
                assert r == pytest.approx(ref.pairwise(a, b)[0], rel=1e-8), name
        else:
            want = {p: (ref.one_to_all(p) if mode == "one_to_all" else ref.all_to_one(p))[0] for p in (1, 2, 3, 4)}
            for p, v in zip(out.resistances.patch, out.resistances.voltage, strict=True):
                assert v == pytest.approx(want[int(p)], rel=1e-8), name


def _order_case() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    res = 10.0 ** rng.uniform(0.0, 3.0, (30, 40))
    res[rng.random(res.shape) < 0.05] = np.nan
    res[10:13, :25] = np.nan  # a gap the dissection has to cut around
    focal = np.zeros(res.shape, dtype=np.int32)
    focal[2:5, 2:5], focal[25:28, 33:37], focal[3:6, 30:34] = 1, 2, 3
    return res, focal


def test_grid_order_is_a_permutation_with_the_patches_last():
    from leopardgeo.kernels.circuit.assembly import solve_nodes
    from leopardgeo.kernels.circuit.solvers import _grid_order

    net = build_network(*_order_case())
    order = _grid_order(solve_nodes(net), net.n_solve)
    assert order is not None
    np.testing.assert_array_equal(np.sort(order), np.arange(net.n_solve))
    np.testing.assert_array_equal(np.sort(order[net.n_cell :]), np.arange(net.n_cell, net.n_solve))
    assert _grid_order(None, net.n_solve) is None


def test_upper_triangle_for_pardiso_is_scipys_triu():
    import scipy.sparse as sp

    from leopardgeo.kernels.circuit._compiled import _upper_one_based

    lap = build_network(*_order_case()).laplacian
    ia, ja, a = _upper_one_based(lap.indptr, lap.indices, lap.data)
    want = sp.triu(lap, format="csr")
    want.sort_indices()
    np.testing.assert_array_equal(ia - 1, want.indptr)
    np.testing.assert_array_equal(ja - 1, want.indices)
    np.testing.assert_array_equal(a, want.data)
    assert ia.dtype == ja.dtype == np.int32


def test_mkl_is_found_from_its_wheel_record_and_is_pypardisos_library(monkeypatch):
    """The library comes from the ``mkl`` wheel's record (not pypardiso's recursive glob of the environment)."""
    import importlib.metadata
    import os

    mod = circuit._pardiso()
    if mod is None:
        pytest.skip("pypardiso (MKL) not installed")
    from leopardgeo.kernels.circuit.solvers import _mkl_library

    searched = []
    monkeypatch.setattr(mod, "PyPardisoSolver", lambda **kw: searched.append(kw) or pytest.fail("searched"))
    monkeypatch.delenv("PYPARDISO_MKL_RT", raising=False)
    ours = _mkl_library.__wrapped__(mod)
    assert searched == []
    assert "mkl_rt" in os.path.basename(ours._name) and callable(ours.pardiso)
    monkeypatch.undo()
    theirs = mod.PyPardisoSolver(mtype=2).libmkl
    assert os.path.realpath(ours._name) == os.path.realpath(theirs._name)

    def no_record(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", no_record)  # no wheel record: pypardiso's own search
    assert os.path.realpath(_mkl_library.__wrapped__(mod)._name) == os.path.realpath(theirs._name)


@pytest.mark.parametrize("grid_order", [False, True])
def test_pardiso_block_solve_matches_a_dense_solve_without_refinement(grid_order):
    """PARDISO's settings (PARDISO_IPARM), METIS's or the grid's order: a block against numpy's dense solve."""
    if circuit._pardiso() is None:
        pytest.skip("pypardiso (MKL) not installed")
    from leopardgeo.kernels.circuit.assembly import solve_nodes
    from leopardgeo.kernels.circuit.solvers import LaplacianSolver

    net = build_network(*_order_case())
    lap = net.laplacian
    rng = np.random.default_rng(5)
    b = rng.standard_normal((lap.shape[0], 5))
    lin = LaplacianSolver(lap, "pardiso", node_raster=solve_nodes(net) if grid_order else None)
    assert int(lin._factor.get_iparm(5)) == int(grid_order)  # the user permutation given to PARDISO or not
    x = lin.solve_many(b)
    refined = int(lin._factor.get_iparm(7))  # iterative refinement steps MKL took in the last solve
    lin.close()
    want = np.linalg.solve(lap.toarray(), b)
    np.testing.assert_allclose(x, want, rtol=0, atol=1e-10 * np.abs(want).max())
    assert refined == 0


@pytest.mark.parametrize(("last", "release"), [(True, False), (False, False), (True, True), (False, True)])
def test_pardiso_unit_solves_backward_only_match_a_dense_solve(last, release):
    """``solve_units`` with the patch nodes eliminated last runs only PARDISO's backward substitution (phase 333).

    With ``release`` the factor is freed inside (before the product) and the solutions are still right.
    """
    if circuit._pardiso() is None:
        pytest.skip("pypardiso (MKL) not installed")
    from leopardgeo.kernels.circuit.assembly import solve_nodes
    from leopardgeo.kernels.circuit.solvers import LaplacianSolver

    net = build_network(*_order_case())
    lap = net.laplacian
    nodes = list(range(net.n_cell, net.n_solve))[::-1]  # the patch nodes, in any order
    lin = LaplacianSolver(lap, "pardiso", node_raster=solve_nodes(net), last=nodes if last else ())
    phases: list[int] = []
    solve = lin._factor.solve
    lin._factor.solve = lambda b, phase=33, out=None: phases.append(phase) or solve(b, phase, out)
    out = np.empty((lap.shape[0], len(nodes)))  # C order, as the maps read it
    x = lin.solve_units(nodes, out=out, release=release)
    assert (lin._factor is None) == release
    lin.close()  # idempotent
    assert x is out
    assert phases == ([333] if last else [33])
    want = np.linalg.inv(lap.toarray())[:, nodes]
    np.testing.assert_allclose(x, want, rtol=0, atol=1e-10 * np.abs(want).max())


def test_pardiso_unit_solves_fall_back_when_the_nodes_are_not_last(caplog):
    """The check of ``solve_units``: with the nodes not eliminated last, backward substitution alone is wrong."""
    if circuit._pardiso() is None:
        pytest.skip("pypardiso (MKL) not installed")
    from leopardgeo.kernels.circuit.assembly import solve_nodes
    from leopardgeo.kernels.circuit.solvers import LaplacianSolver

    net = build_network(*_order_case())
    lap = net.laplacian
    nodes = [0, net.n_cell, net.n_cell + 1]  # a cell node (eliminated early) with two patch nodes
    lin = LaplacianSolver(lap, "pardiso", node_raster=solve_nodes(net), last=nodes[1:])
    lin._last = tuple(nodes)  # as if PARDISO had been asked to eliminate them last
    with caplog.at_level("WARNING"):
        x = lin.solve_units(nodes, release=True)
    assert lin._factor is None  # freed after the full solves
    assert "solving them in full" in caplog.text
    want = np.linalg.inv(lap.toarray())[:, nodes]
    np.testing.assert_allclose(x, want, rtol=0, atol=1e-10 * np.abs(want).max())


def test_auto_factorises_many_solves_and_iterates_on_few():
    assert circuit.choose_solver(5_000, 100) == "superlu"  # small: no thread start-up
    assert circuit.choose_solver(50_000, 1) == circuit.direct_backend()
    assert circuit.choose_solver(3_000_000, 100) == "amg"  # a factor this size would not pay off (or fit)
    if circuit.direct_backend() != "superlu":
        assert circuit.choose_solver(690_002, 15) == circuit.direct_backend()
        assert circuit.choose_solver(690_002, 1) == "amg"
    assert circuit.choose_solver(10, 1, "amg") == "amg"


def test_auto_without_pardiso_factors_a_grid_with_superlu_in_the_grid_order(monkeypatch):
    import leopardgeo.kernels.circuit.solvers as solvers

    monkeypatch.setattr(solvers, "_pardiso", lambda: None)
    monkeypatch.setattr(solvers, "_cholespy", lambda: object())  # CHOLMOD installed, as with the default install
    assert circuit.direct_backend() == "cholmod"  # off a grid: CHOLMOD orders the matrix itself
    assert circuit.direct_backend(grid=True) == "superlu"
    assert circuit.choose_solver(1_426_897, 34, grid=True) == "superlu"  # the demo's circuit
    assert circuit.choose_solver(1_426_897, 34) == "cholmod"
    assert circuit.choose_solver(1_426_897, 1, grid=True) == "amg"  # one solve: the factor would not pay off
    assert circuit.choose_solver(3_000_000, 100, grid=True) == "amg"
    monkeypatch.setattr(solvers, "_cholespy", lambda: None)
    assert circuit.choose_solver(690_002, 15) == "amg"  # SuperLU in its own order only up to DIRECT_ALWAYS_NODES
    assert circuit.choose_solver(690_002, 15, grid=True) == "superlu"


def test_auto_factorises_one_solve_on_a_mid_size_grid_with_pardiso(monkeypatch):
    import leopardgeo.kernels.circuit.solvers as solvers

    monkeypatch.setattr(solvers, "_pardiso", lambda: object())  # installed (not called: only the choice is tested)
    # one solve on a pinch-point window of the demo's size: the grid-ordered factor beats AMG-CG
    assert circuit.choose_solver(485_601, 1, grid=True) == "pardiso"
    assert circuit.choose_solver(solvers.PARDISO_GRID_ALWAYS_NODES + 1, 1, grid=True) == "amg"
    assert circuit.choose_solver(485_601, 1) == "amg"  # off a grid METIS orders the factor: not worth it for one solve
    monkeypatch.setattr(solvers, "_pardiso", lambda: None)
    assert circuit.choose_solver(485_601, 1, grid=True) == "amg"  # SuperLU on one thread is slower than AMG there


def test_auto_chooses_as_off_a_raster_when_too_many_unknowns_lie_off_it(monkeypatch):
    import scipy.sparse as sp

    import leopardgeo.kernels.circuit.solvers as solvers
    from leopardgeo.kernels.circuit.solvers import LaplacianSolver

    monkeypatch.setattr(solvers, "_pardiso", lambda: None)
    n = 25_000  # above SuperLU's small-problem limit
    lap = sp.diags([np.full(n - 1, -1.0), np.full(n, 2.0), np.full(n - 1, -1.0)], [-1, 0, 1], format="csr")
    few_off = np.arange(n - 1_000, dtype=np.int32).reshape(-1, 600)  # 1,000 unknowns off the raster
    many_off = np.arange(n - 3_000, dtype=np.int32).reshape(-1, 550)  # 3,000: more than GRID_ORDER_MAX_EXTRA
    assert circuit.grid_orderable(n, few_off.size) and not circuit.grid_orderable(n, many_off.size)
    assert LaplacianSolver(lap, node_raster=few_off).method == "superlu"
    if circuit._cholespy() is not None:
        assert LaplacianSolver(lap, node_raster=many_off).method == "cholmod"  # no grid order: CHOLMOD orders it


def test_superlu_in_the_grid_order_solves_as_a_dense_solve():
    from leopardgeo.kernels.circuit.assembly import solve_nodes
    from leopardgeo.kernels.circuit.solvers import LaplacianSolver

    net = build_network(*_order_case())
    lap = net.laplacian
    lin = LaplacianSolver(lap, "superlu", node_raster=solve_nodes(net))
    assert lin._order is not None and np.array_equal(np.sort(lin._order), np.arange(net.n_solve))
    assert np.array_equal(lin._factor.perm_r, np.arange(net.n_solve))  # no pivoting away from the diagonal
    b = np.random.default_rng(3).normal(size=(net.n_solve, 3))
    want = np.linalg.solve(lap.toarray(), b)
    np.testing.assert_allclose(lin.solve_many(b), want, rtol=0, atol=1e-10 * np.abs(want).max())
    nodes = [0, net.n_cell, net.n_cell + 1]
    units = lin.solve_units(nodes)
    want_units = np.linalg.inv(lap.toarray())[:, nodes]
    np.testing.assert_allclose(units, want_units, rtol=0, atol=1e-10 * np.abs(want_units).max())
    plain = LaplacianSolver(lap, "superlu")  # no raster: SuperLU's own order
    assert plain._order is None
    np.testing.assert_allclose(plain.solve_many(b), want, rtol=0, atol=1e-10 * np.abs(want).max())


def test_direct_estimate_covers_the_factor():
    # the factor's fill grows faster than the AMG hierarchy: the estimate must say so before any solve
    n = 690_002
    assert estimate_memory_bytes(2_200_000, n, 15, "pardiso") > estimate_memory_bytes(2_200_000, n, 15, "amg")
    assert estimate_memory_bytes(2_200_000, 4 * n, 0, "pardiso") > 4 * estimate_memory_bytes(2_200_000, n, 0, "pardiso") - 1e9


@pytest.mark.parametrize("avg", [False, True])
def test_both_conventions_match_landschaft_circuitscape(avg):
    """Four regions of 12-32 cells: ``pair`` = Circuitscape's pairwise; ``all`` = the same with the regions as polygons."""
    lc = pytest.importorskip("landschaft.circuit")

    rng = np.random.default_rng(3)
    res = 10.0 ** rng.uniform(0.0, 2.0, (20, 24))
    focal = np.zeros(res.shape, dtype=np.int32)
    focal[1:4, 1:5], focal[15:19, 18:22], focal[8:12, 8:16], focal[2:5, 18:22] = 1, 2, 3, 4
    for shorting, polygons in (("pair", None), ("all", focal)):
        cs = lc.circuitscape_pairwise(res, focal, polygons=polygons, cum_map=True, avg_resistances=avg)
        ref = np.asarray(cs.resistances)
        out = circuit.circuit_flow(res, focal, focal_shorting=shorting, avg_resistances=avg)
        for (a, b), r in table_dict(out).items():
            assert r == pytest.approx(ref[a, b], rel=1e-8), (shorting, a, b)
        np.testing.assert_allclose(out.cum_current, np.asarray(cs.cum_current), rtol=1e-6, atol=1e-9)


# --------------------------------------------------------------------------- 10. max-current map
@pytest.mark.parametrize(
    ("mode", "shorting"), [("pairwise", "all"), ("pairwise", "pair"), ("one_to_all", "all"), ("all_to_one", "all")]
)
def test_max_current_is_the_largest_solve_map(mode, shorting):
    rng = np.random.default_rng(11)
    res = 10.0 ** rng.uniform(0.0, 2.0, (12, 14))
    res[rng.random(res.shape) < 0.1] = np.nan
    focal = np.zeros(res.shape, dtype=np.int32)
    focal[1:3, 1:3], focal[9:11, 10:13], focal[1:3, 10:12], focal[6:8, 5:8] = 1, 2, 3, 4
    res[focal > 0] = 2.0
    out = circuit.circuit_flow(res, focal, mode=mode, focal_shorting=shorting, current_maps=True, max_current=True)
    want = np.fmax.reduce(np.stack(list(out.currents.values())), axis=0)
    assert_map_close(out.max_current, want)
    # and against the dense reference, solve by solve (all-shorted convention)
    if shorting == "all":
        ref = Dense(res, focal, 8, False)
        if mode == "pairwise":
            maps = [ref.pairwise(a, b)[2] for a, b in itertools.combinations((1, 2, 3, 4), 2)]
        else:
            maps = [(ref.one_to_all(p) if mode == "one_to_all" else ref.all_to_one(p))[1] for p in (1, 2, 3, 4)]
        assert_map_close(out.max_current, np.fmax.reduce(np.stack(maps), axis=0), rtol=1e-6)


def test_max_current_when_unit_solutions_are_not_stored():
    res, focal = _three_patches()
    res = res * np.linspace(1, 3, 36).reshape(6, 6)
    limit = _memory_between(res, focal, 2)
    out = circuit_flow(res, focal, max_memory_gb=limit, current_maps=True, max_current=True)
    assert len(out.iterations) == 3  # solved pair by pair
    assert_map_close(out.max_current, np.fmax.reduce(np.stack(list(out.currents.values())), axis=0))


# --------------------------------------------------------------------------- 11. network (graph) mode
def test_network_mode_hand_solved():
    # a 1-ohm and a 3-ohm resistor in series (4 ohm), plus an isolated edge 7-8
    t = table_dict_from(circuit.network_resistances([1, 2, 7], [2, 3, 8], [1.0, 3.0, 5.0], focal=[1, 3, 7, 8]))
    assert t[(1, 3)] == pytest.approx(4.0, rel=1e-12)
    assert t[(7, 8)] == pytest.approx(5.0, rel=1e-12)
    assert t[(1, 7)] == math.inf


def table_dict_from(table) -> dict[tuple[int, int], float]:
    return {(int(a), int(b)): float(r) for a, b, r in zip(table.patch_a, table.patch_b, table.eff_resistance, strict=True)}


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 12), p=st.floats(0.2, 0.9))
@settings(max_examples=25, deadline=None)
def test_network_mode_matches_networkx_resistance_distance(seed, n, p):
    nx = pytest.importorskip("networkx")
    g = nx.gnp_random_graph(n, p, seed=seed % 2**31)
    rng = np.random.default_rng(seed)
    for a, b in g.edges:
        g.edges[a, b]["r"] = float(10.0 ** rng.uniform(-1, 2))
    assume(g.number_of_edges() > 0)
    u, v = zip(*g.edges, strict=True)
    nodes = sorted(set(u) | set(v))
    table = table_dict_from(circuit.network_resistances(u, v, [g.edges[e]["r"] for e in g.edges]))
    for a, b in itertools.combinations(nodes, 2):
        if nx.has_path(g, a, b):
            comp = g.subgraph(nx.node_connected_component(g, a))
            want = nx.resistance_distance(comp, a, b, weight="r", invert_weight=True)
            assert table[(a, b)] == pytest.approx(want, rel=1e-8)
        else:
            assert table[(a, b)] == math.inf


def test_network_mode_errors():
    with pytest.raises(DataError, match="finite resistance > 0"):
        circuit.network_resistances([1], [2], [0.0])
    with pytest.raises(DataError, match="focal node 9"):
        circuit.network_resistances([1], [2], [1.0], focal=[1, 9])
    with pytest.raises(DataError, match="one length"):
        circuit.network_resistances([1, 2], [2], [1.0])


def test_misspelt_options_and_a_tolerance_outside_0_1_are_config_errors():
    r = np.ones((8, 8))
    f = np.zeros((8, 8), dtype=int)
    f[0, 0], f[7, 7], f[0, 7] = 1, 2, 3
    for kw, said in (({"mode": "pairwize"}, "mode: expected one of"), ({"solver": "cg"}, "solver: expected one of"),
                     ({"focal_shorting": "none"}, "focal_shorting: expected one of")):  # fmt: skip
        with pytest.raises(ConfigError, match=said):
            circuit.circuit_flow(r, f, **kw)
    for tol in (0.0, 2.0, -1.0, float("nan")):  # 0 once stopped CG at x = 0: every resistance 0
        with pytest.raises(ConfigError, match="tolerance: expected a relative residual in \\(0, 1\\)"):
            circuit.circuit_flow(r, f, solver="amg", tolerance=tol)


def test_a_masked_resistance_counts_its_masked_cells_as_no_data():
    r = np.ones((6, 6))
    r[:, 3] = 65535.0
    r[5, 3] = 1.0
    f = np.zeros((6, 6), dtype=int)
    f[0, 0], f[0, 5] = 1, 2
    masked = circuit.circuit_flow(np.ma.masked_equal(r, 65535.0), f).resistances.eff_resistance.iloc[0]
    filled = circuit.circuit_flow(np.where(r == 65535.0, np.nan, r), f).resistances.eff_resistance.iloc[0]
    assert masked == pytest.approx(filled, rel=1e-9)
