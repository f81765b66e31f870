"""Cost distance: checked against scipy's graph Dijkstra, scikit-image's MCP_Geometric and hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import dijkstra

from leopardgeo.core.errors import ConfigError, DataError, NoPathError, ResistanceError
from leopardgeo.core.grid import Grid
from leopardgeo.kernels.costdist import (
    NEIGHBOUR_OFFSETS,
    SearchBound,
    allocation_crossings,
    allocation_exits,
    cost_distance,
    cost_distance_many,
    crossing_floors,
    pack_bound,
    path_to_linestring,
    prepare_search,
    single_source_cost,
    single_source_window,
    trace_path,
)
from leopardgeo.testing import TEST_CRS

RTOL = 1e-9
# Offsets written out independently of the module (order does not matter for the graph).
AXIAL = [(-1, 0), (1, 0), (0, -1), (0, 1)]
DIAGONAL = [(-1, -1), (-1, 1), (1, -1), (1, 1)]
KNIGHT = [(a * dr, b * dc) for dr, dc in ((1, 2), (2, 1)) for a in (-1, 1) for b in (-1, 1)]
MOVES = {4: AXIAL, 8: AXIAL + DIAGONAL, 16: AXIAL + DIAGONAL + KNIGHT}


def knight_crossed(dr: int, dc: int) -> list[tuple[int, int]]:
    """The two cells a knight's move crosses (by geometry of the segment between cell centres)."""
    if abs(dc) == 2:
        return [(0, dc // 2), (dr, dc // 2)]
    return [(dr // 2, 0), (dr // 2, dc)]


def grid_graph(res: np.ndarray, cell: float, connectivity: int) -> sp.csr_matrix:
    """Explicit directed graph: edge u->v weighted len(u, v) * (r_u + r_v) / 2; NaN cells have no edges."""
    nr, nc = res.shape
    rows, cols, weights = [], [], []
    for r in range(nr):
        for c in range(nc):
            if math.isnan(res[r, c]):
                continue
            for dr, dc in MOVES[connectivity]:
                vr, vc = r + dr, c + dc
                if not (0 <= vr < nr and 0 <= vc < nc) or math.isnan(res[vr, vc]):
                    continue
                if abs(dr) + abs(dc) == 3 and any(math.isnan(res[r + a, c + b]) for a, b in knight_crossed(dr, dc)):
                    continue
                length = cell * math.hypot(dr, dc)
                rows.append(r * nc + c)
                cols.append(vr * nc + vc)
                weights.append(length * (float(res[r, c]) + float(res[vr, vc])) / 2)
    return sp.csr_matrix((weights, (rows, cols)), shape=(nr * nc, nr * nc))


def scipy_cost(graph: sp.csr_matrix, res: np.ndarray, src: np.ndarray, labels) -> np.ndarray:
    """Minimum over the (non-NaN) cells of ``labels`` of scipy's Dijkstra distance."""
    idx = np.flatnonzero(np.isin(src, labels) & ~np.isnan(res))
    return dijkstra(graph, directed=True, indices=idx, min_only=True).reshape(res.shape)


@st.composite
def landscapes(draw):
    """Random resistance (with NaN holes) and a labelled source raster, each label on >= 1 valid cell."""
    nr = draw(st.integers(1, 15))
    nc = draw(st.integers(1, 15))
    seed = draw(st.integers(0, 2**32 - 1))
    nan_frac = draw(st.sampled_from([0.0, 0.1, 0.3]))
    n_labels = draw(st.integers(1, 4))
    rng = np.random.default_rng(seed)
    res = rng.uniform(0.5, 50.0, (nr, nc))
    if rng.random() < 0.5:
        res = res.astype("float32")
    res[rng.random((nr, nc)) < nan_frac] = np.nan
    src = np.zeros((nr, nc), dtype=np.int32)
    for lab in range(1, n_labels + 1):
        for _ in range(rng.integers(1, 4)):
            src[rng.integers(nr), rng.integers(nc)] = lab
    for lab in np.unique(src[src > 0]):  # drop labels wholly on no data (tested separately)
        if np.isnan(res[src == lab]).all():
            src[src == lab] = 0
    assume((src > 0).any())
    return res, src, float(draw(st.sampled_from([1.0, 30.0, 250.0])))


@pytest.mark.parametrize("connectivity", [4, 8, 16])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=landscapes())
def test_cost_and_allocation_equal_scipy_dijkstra(connectivity, case):
    res, src, cell = case
    out = cost_distance(res, src, cell_size_m=cell, connectivity=connectivity)
    nodata = np.isnan(res)
    graph = grid_graph(res, cell, connectivity)
    expected = scipy_cost(graph, res, src, np.unique(src[src > 0]))

    assert np.isnan(out.cost[nodata]).all()
    assert (out.allocation[nodata] == 0).all()
    ok = ~nodata
    np.testing.assert_array_equal(np.isinf(out.cost[ok]), np.isinf(expected[ok]))
    fin = ok & np.isfinite(expected)
    np.testing.assert_allclose(out.cost[fin], expected[fin], rtol=RTOL, atol=0)
    assert (out.cost[(src > 0) & ok] == 0).all()

    # Allocation: 0 where unreachable; elsewhere a label whose own cost equals the minimum (ties allowed).
    assert (out.allocation[ok & ~fin] == 0).all()
    per_label = {lab: scipy_cost(graph, res, src, [lab]) for lab in np.unique(src[src > 0])}
    for r, c in zip(*np.nonzero(fin), strict=True):
        lab = out.allocation[r, c]
        assert lab in per_label
        assert math.isclose(per_label[lab][r, c], expected[r, c], rel_tol=RTOL, abs_tol=1e-12)
    # Back-links: -1 exactly on sources and unreached cells.
    np.testing.assert_array_equal(out.backlink == -1, ~fin | ((src > 0) & ok))


@settings(max_examples=60, deadline=None)
@given(
    shape=st.tuples(st.integers(2, 15), st.integers(2, 15)),
    seed=st.integers(0, 2**32 - 1),
    cell=st.sampled_from([1.0, 100.0]),
)
def test_equals_skimage_mcp_geometric_8_neighbours(shape, seed, cell):
    # MCP_Geometric: start cells cost 0 and a step costs |offset| * sampling * (c_u + c_v) / 2 with
    # |offset| = sqrt(2) for diagonals -- the same convention as ours.
    skgraph = pytest.importorskip("skimage.graph")
    rng = np.random.default_rng(seed)
    res = rng.uniform(1.0, 100.0, shape)
    n_starts = int(rng.integers(1, 4))
    starts = list({(int(rng.integers(shape[0])), int(rng.integers(shape[1]))) for _ in range(n_starts)})
    src = np.zeros(shape, dtype=np.int32)
    for i, (r, c) in enumerate(starts, start=1):
        src[r, c] = i
    mcp = skgraph.MCP_Geometric(res, fully_connected=True, sampling=(cell, cell))
    expected, _ = mcp.find_costs(starts)
    out = cost_distance(res, src, cell_size_m=cell, connectivity=8)
    np.testing.assert_allclose(out.cost, expected, rtol=RTOL, atol=0)


# ----------------------------------------------------------------------------- hand-worked values
@pytest.mark.parametrize("connectivity", [4, 8, 16])
@pytest.mark.parametrize(("n", "r", "cell"), [(1, 1.0, 100.0), (7, 3.0, 30.0), (12, 0.25, 250.0)])
def test_straight_corridor_costs_n_cells_times_cell_times_r(connectivity, n, r, cell):
    res = np.full((3, n + 1), np.nan)
    res[1] = r  # a corridor one cell wide
    src = np.zeros(res.shape, dtype=int)
    src[1, 0] = 1
    out = cost_distance(res, src, cell_size_m=cell, connectivity=connectivity)
    assert out.cost[1, n] == pytest.approx(n * cell * r, rel=1e-12)
    # In open uniform terrain the straight line is still the cheapest.
    open_ = cost_distance(np.full((5, n + 1), r), np.pad(src, 1)[:5, 1:-1], cell_size_m=cell, connectivity=connectivity)
    assert open_.cost[2, n] == pytest.approx(n * cell * r, rel=1e-12)


def test_diagonal_and_knight_steps():
    r, cell = 4.0, 100.0
    res = np.full((4, 4), r)
    src = np.zeros((4, 4), dtype=int)
    src[0, 0] = 1
    c8 = cost_distance(res, src, cell_size_m=cell, connectivity=8).cost
    assert c8[1, 1] == pytest.approx(cell * math.sqrt(2) * r, rel=1e-12)
    assert c8[3, 3] == pytest.approx(3 * cell * math.sqrt(2) * r, rel=1e-12)
    assert c8[1, 2] == pytest.approx(cell * (1 + math.sqrt(2)) * r, rel=1e-12)
    c16 = cost_distance(res, src, cell_size_m=cell, connectivity=16).cost
    assert c16[1, 2] == pytest.approx(cell * math.sqrt(5) * r, rel=1e-12)
    # Mean of the two end cells: from resistance 1 into resistance 3 costs cell * 2.
    two = np.array([[1.0, 3.0]])
    assert cost_distance(two, np.array([[1, 0]]), cell_size_m=cell).cost[0, 1] == pytest.approx(200.0)


def test_knight_move_does_not_jump_a_one_cell_barrier():
    res = np.ones((5, 5))
    res[:, 2] = np.nan
    src = np.zeros((5, 5), dtype=int)
    src[:, 0] = 1
    out = cost_distance(res, src, cell_size_m=10, connectivity=16)
    assert np.isinf(out.cost[:, 3:]).all()
    assert (out.allocation[:, 3:] == 0).all()
    assert (out.backlink[:, 3:] == -1).all()


# ----------------------------------------------------------------------------- cutoff
@pytest.mark.parametrize("connectivity", [4, 8, 16])
@settings(max_examples=40, deadline=None)
@given(case=landscapes(), q=st.floats(0.05, 0.95))
def test_max_cost_keeps_uncut_values_below_cutoff(connectivity, case, q):
    res, src, cell = case
    full = cost_distance(res, src, cell_size_m=cell, connectivity=connectivity)
    finite = full.cost[np.isfinite(full.cost) & (full.cost > 0)]
    assume(finite.size > 0)
    cutoff = float(np.quantile(finite, q))
    cut = cost_distance(res, src, cell_size_m=cell, connectivity=connectivity, max_cost=cutoff)
    fin = np.isfinite(cut.cost)
    assert (cut.cost[fin] <= cutoff).all()
    np.testing.assert_array_equal(cut.cost[fin], full.cost[fin])
    # Everything the full search found within the cutoff is found, the rest is inf with allocation 0.
    np.testing.assert_array_equal(fin, np.isfinite(full.cost) & (full.cost <= cutoff))
    beyond = np.isinf(cut.cost)
    assert (cut.allocation[beyond] == 0).all()
    assert (cut.backlink[beyond] == -1).all()


# ----------------------------------------------------------------------------- back-links
def step_cost(res, a, b, cell):
    (r0, c0), (r1, c1) = a, b
    return cell * math.hypot(r1 - r0, c1 - c0) * (float(res[r0, c0]) + float(res[r1, c1])) / 2


@pytest.mark.parametrize("connectivity", [4, 8, 16])
@settings(max_examples=40, deadline=None)
@given(case=landscapes())
def test_trace_path_recomputes_accumulated_cost(connectivity, case):
    res, src, cell = case
    out = cost_distance(res, src, cell_size_m=cell, connectivity=connectivity)
    moves = {tuple(m) for m in MOVES[connectivity]}
    for r, c in zip(*np.nonzero(np.isfinite(out.cost)), strict=True):
        path = trace_path(out.backlink, (r, c), connectivity=connectivity, allocation=out.allocation)
        assert tuple(path[-1]) == (r, c)
        r0, c0 = path[0]
        assert src[r0, c0] == out.allocation[r, c]
        assert out.cost[r0, c0] == 0
        steps = np.diff(path, axis=0)
        assert all(tuple(s) in moves for s in steps.tolist())
        total = sum(step_cost(res, path[i], path[i + 1], cell) for i in range(len(path) - 1))
        assert math.isclose(total, out.cost[r, c], rel_tol=RTOL, abs_tol=1e-12)
        assert not np.isnan(res[path[:, 0], path[:, 1]]).any()


def test_trace_path_unreachable_and_bad_input():
    res = np.ones((3, 3))
    res[:, 1] = np.nan
    src = np.zeros((3, 3), dtype=int)
    src[0, 0] = 1
    out = cost_distance(res, src, cell_size_m=10)
    with pytest.raises(NoPathError, match=r"\(1, 2\)"):
        trace_path(out.backlink, (1, 2), connectivity=8, allocation=out.allocation)
    assert trace_path(out.backlink, (0, 0), connectivity=8).tolist() == [[0, 0]]
    with pytest.raises(DataError, match="inside the raster"):
        trace_path(out.backlink, (3, 0), connectivity=8)
    with pytest.raises(DataError, match=r"-1\.\.3 for connectivity 4"):
        trace_path(np.full((2, 2), 5, dtype=np.int8), (0, 0), connectivity=4)
    loop = np.array([[1, 3]], dtype=np.int8)  # east <-> west forever
    with pytest.raises(DataError, match="cycle"):
        trace_path(loop, (0, 0), connectivity=4)
    with pytest.raises(DataError, match=r"leaving it at \(-1, 0\)"):
        trace_path(np.zeros((1, 1), dtype=np.int8), (0, 0), connectivity=4)  # link 0 is one row up
    strip = cost_distance(np.ones((1, 40)), np.eye(1, 40, dtype=int), cell_size_m=1, connectivity=4)
    assert trace_path(strip.backlink, (0, 39), connectivity=4).tolist() == [[0, c] for c in range(40)]


def test_backlink_offsets_table():
    assert NEIGHBOUR_OFFSETS.shape == (16, 2)
    assert {tuple(o) for o in NEIGHBOUR_OFFSETS[:4].tolist()} == set(AXIAL)
    assert {tuple(o) for o in NEIGHBOUR_OFFSETS[4:8].tolist()} == set(DIAGONAL)
    assert {tuple(o) for o in NEIGHBOUR_OFFSETS[8:].tolist()} == set(KNIGHT)


def test_path_to_linestring_uses_cell_centres():
    grid = Grid.from_bounds((500_000, 4_799_000, 500_500, 4_799_400), cell_size_m=100, crs=TEST_CRS)
    res = np.ones(grid.shape)
    src = np.zeros(grid.shape, dtype=int)
    src[0, 0] = 1
    out = cost_distance(res, src, cell_size_m=grid.cell_size_m)
    cells = trace_path(out.backlink, (3, 4), connectivity=8)
    line = path_to_linestring(cells, grid)
    x, y = grid.xy(cells[:, 0], cells[:, 1])
    np.testing.assert_allclose(np.asarray(line.coords), np.column_stack([x, y]))
    assert line.coords[0] == (500_050.0, 4_799_350.0)
    assert line.length == pytest.approx(100 * (3 * math.sqrt(2) + 1))
    with pytest.raises(DataError, match="n >= 2"):
        path_to_linestring(cells[:1], grid)
    with pytest.raises(DataError, match="inside the grid"):
        path_to_linestring(np.array([[0, 0], [9, 9]]), grid)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("bad", [0.0, -1.0, np.inf, -np.inf])
def test_bad_resistance_raises_with_count(bad):
    res = np.ones((4, 4))
    res[1, 2] = bad
    res[3, 3] = bad
    src = np.zeros((4, 4), dtype=int)
    src[0, 0] = 1
    with pytest.raises(ResistanceError, match="found 2 cells"):
        cost_distance(res, src, cell_size_m=10)


@pytest.mark.parametrize("connectivity", [6, 0, 9, True, "8"])
def test_bad_connectivity_lists_valid_values(connectivity):
    with pytest.raises(ConfigError, match="4, 8, 16"):
        cost_distance(np.ones((2, 2)), np.eye(2, dtype=int), cell_size_m=10, connectivity=connectivity)


def test_source_wholly_on_nodata_names_the_label():
    res = np.ones((4, 4))
    res[3, :] = np.nan
    src = np.zeros((4, 4), dtype=int)
    src[0, 0] = 1
    src[3, 1:3] = 7
    with pytest.raises(NoPathError, match=r"label\(s\) 7"):
        cost_distance(res, src, cell_size_m=10)
    with pytest.raises(NoPathError, match=r"label\(s\) 7"):
        cost_distance_many(res, src, cell_size_m=10)
    # Partly on no data is fine: the valid cells are the source.
    src[2, 1] = 7
    out = cost_distance(res, src, cell_size_m=10)
    assert out.cost[2, 1] == 0 and out.allocation[2, 1] == 7 and np.isnan(out.cost[3, 1])


def test_other_input_errors():
    src = np.zeros((3, 3), dtype=int)
    src[1, 1] = 1
    with pytest.raises(DataError, match="shape"):
        cost_distance(np.ones((3, 4)), src, cell_size_m=10)
    with pytest.raises(DataError, match="at least one source"):
        cost_distance(np.ones((3, 3)), np.zeros((3, 3), dtype=int), cell_size_m=10)
    with pytest.raises(DataError, match="integer"):
        cost_distance(np.ones((3, 3)), src.astype(float), cell_size_m=10)
    with pytest.raises(DataError, match="labels from 0"):
        cost_distance(np.ones((3, 3)), -src, cell_size_m=10)
    with pytest.raises(DataError, match="every cell is no data"):
        cost_distance(np.full((3, 3), np.nan), src, cell_size_m=10)
    for bad in (0, -5, np.inf, np.nan):
        with pytest.raises(ConfigError, match="cell_size_m"):
            cost_distance(np.ones((3, 3)), src, cell_size_m=bad)
        with pytest.raises(ConfigError, match="max_cost"):
            cost_distance(np.ones((3, 3)), src, cell_size_m=10, max_cost=bad)
    with pytest.raises(DataError, match=r"\[5\] missing"):
        cost_distance_many(np.ones((3, 3)), src, [1, 5], cell_size_m=10)
    with pytest.raises(ConfigError, match="workers"):
        cost_distance_many(np.ones((3, 3)), src, cell_size_m=10, workers=0)


# ----------------------------------------------------------------------------- many
@pytest.mark.parametrize("workers", [None, 1, 3])
def test_cost_distance_many_equals_single_label_runs(workers):
    rng = np.random.default_rng(42)
    res = rng.uniform(1, 20, (30, 40))
    res[rng.random(res.shape) < 0.15] = np.nan
    src = np.zeros(res.shape, dtype=np.int32)
    src[2:5, 3:6] = 1
    src[20:22, 30:35] = 4
    src[15, 15] = 9
    res[src > 0] = 1.0
    many = cost_distance_many(res, src, cell_size_m=50, connectivity=16, workers=workers)
    assert list(many) == [1, 4, 9]
    for lab, cost in many.items():
        single = cost_distance(res, np.where(src == lab, lab, 0), cell_size_m=50, connectivity=16)
        np.testing.assert_array_equal(cost, single.cost)
    # A chosen subset, in the order asked, with a cutoff.
    sub = cost_distance_many(res, src, [9, 1], cell_size_m=50, max_cost=500.0, workers=workers)
    assert list(sub) == [9, 1]
    single = cost_distance(res, np.where(src == 9, 9, 0), cell_size_m=50, max_cost=500.0)
    np.testing.assert_array_equal(sub[9], single.cost)
    # The multi-source cost is the minimum of the per-label costs.
    joint = cost_distance(res, src, cell_size_m=50, connectivity=16).cost
    np.testing.assert_allclose(joint, np.fmin.reduce([many[1], many[4], many[9]]), rtol=1e-12)


# ----------------------------------------------------------------------------- one label, in a box, pruned
@pytest.mark.parametrize("connectivity", [4, 8, 16])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=landscapes(), q=st.sampled_from([0.2, 0.6, 1.5]))
def test_single_source_window_equals_scipy_and_pruning_keeps_the_closed_set_exact(connectivity, case, q):
    res, src, cell = case
    labels = np.unique(src[src > 0])
    lab = int(labels[0])
    graph = grid_graph(res, cell, connectivity)
    d = scipy_cost(graph, res, src, [lab])
    top = float(np.max(d[np.isfinite(d)]))
    cut = max(q * top, cell)
    prep = prepare_search(res, src, cell_size_m=cell, connectivity=connectivity)
    work = np.full(res.shape, np.inf)

    def full(found):
        cost, (r0, c0), box, _ = found
        assert box == (r0, r0 + cost.shape[0], c0, c0 + cost.shape[1])
        out = np.full(res.shape, np.inf)
        out[r0 : box[1], c0 : box[3]] = cost
        return out

    found = single_source_window(prep, lab, cell_size_m=cell, max_cost=cut, work=work, within=[0.0, cut / 2, 2 * cut])
    plain = full(found)
    assert np.isinf(work).all()  # the work raster is left as it was found
    for t, got in zip([0.0, cut / 2, 2 * cut], found[3], strict=True):  # unpruned: every cell reached is expanded
        rr, cc = np.nonzero(plain <= t)
        assert got == (rr.min(), rr.max() + 1, cc.min(), cc.max() + 1)
    # scipy: the same cells within the cutoff (away from it by rounding), the same costs
    inside = d <= cut * (1 - 1e-9)
    assert np.isfinite(plain[inside]).all() and np.isinf(plain[d > cut * (1 + 1e-9)]).all()
    np.testing.assert_allclose(plain[inside], d[inside], rtol=RTOL, atol=0)
    # bit for bit the full-grid search (NaN there on no data, inf here)
    whole = single_source_cost(prep, lab, cell_size_m=cell, max_cost=cut)
    np.testing.assert_array_equal(plain, np.where(np.isnan(whole), np.inf, whole))

    # pruned with g = the cost distance to the other labels (or to a far cell): exact on the closed set d + g <= r
    others = labels[1:] if labels.size > 1 else []
    g = scipy_cost(graph, res, src, others) if len(others) else np.zeros(res.shape)
    total = (d + g)[np.isfinite(d + g)]
    r = float(np.quantile(total, 0.5)) if total.size else 0.0
    keep = (d + g <= r * (1 - 1e-9)) & (d <= cut * (1 - 1e-9))
    h2 = np.where(np.isfinite(g), g - r, np.inf)[1:, :]  # a rectangle without row 0: row 0 then only by h1
    bounds = [
        SearchBound(0.9 * g, r),  # h1 a lower bound of g
        SearchBound(None, -np.inf, g - r),  # h2 = g - r over the grid
        SearchBound(np.where(np.arange(res.shape[0])[:, None] == 0, g, np.inf), r, h2, origin=(1, 0)),
    ]
    for bound in bounds:
        pruned = full(single_source_window(prep, lab, cell_size_m=cell, max_cost=cut, bound=bound, work=work))
        assert np.isinf(work).all()
        np.testing.assert_array_equal(pruned[keep], plain[keep])
        assert (pruned >= plain).all()  # elsewhere never below the least cost (inf where not reached)

    # the same test made in place over parts (rectangles of the grid, each with its box and reach) as over the raster
    # of their least g - reach: the same search, bit for bit (costs, box, within-boxes)
    nr, nc = res.shape
    half = nr // 2
    flipped = np.ascontiguousarray(g[::-1, ::-1])
    parts = [
        (g[:half], (0, 0), (0, half, 0, nc), r),
        (g, (0, 0), (0, nr, 0, nc), r / 2),
        (flipped[1:], (1, 0), (1, nr, 1, nc), r),  # a box narrower than its rectangle
        (g, (0, 0), (nr, nr, 0, nc), 0.0),  # an empty box: never tested
    ]
    env = np.full(res.shape, np.inf)
    for part, (o_r, o_c), (b0, b1, b2, b3), reach in parts:
        sub = part[b0 - o_r : b1 - o_r, b2 - o_c : b3 - o_c] - reach
        env[b0:b1, b2:b3] = np.fmin(env[b0:b1, b2:b3], np.where(np.isnan(sub), np.inf, sub))
    kw = {"cell_size_m": cell, "max_cost": cut, "work": work, "within": [cut / 3, cut]}
    in_place = single_source_window(prep, lab, bound=SearchBound(None, -np.inf, parts=parts), **kw)
    as_raster = single_source_window(prep, lab, bound=SearchBound(None, -np.inf, env), **kw)
    assert in_place[0].tobytes() == as_raster[0].tobytes() and in_place[1:] == as_raster[1:]


@pytest.mark.parametrize("connectivity", [4, 8, 16])
@pytest.mark.parametrize("queue", [("buckets", 1.0), ("buckets", 4.0), ("heap", 1.0)])
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), spread=st.sampled_from([0.05, 0.5, 3.0]))
def test_within_boxes_are_numpys_for_many_thresholds(connectivity, queue, seed, spread):
    # an unpruned search expands every cell it reaches within the cutoff, so the box of the cells expanded within a
    # cost is numpy's box of the cells within it; many thresholds between the costs, so that cells of one bucket
    # fall on both sides of one (the search takes a threshold's box from all cells expanded until one lies beyond)
    rng = np.random.default_rng(seed)
    res = rng.uniform(1.0, 1.0 + spread, (13, 11))
    src = np.zeros(res.shape, dtype=int)
    src[rng.integers(13), rng.integers(11)] = 1
    prep = prepare_search(res, src, cell_size_m=1.0, connectivity=connectivity)
    d = single_source_cost(prep, 1, cell_size_m=1.0)
    costs = np.unique(d[np.isfinite(d)])
    within = list((costs[:-1] + costs[1:]) / 2)[:: max(1, costs.size // 40)]
    cut = float(costs[-1]) + 1.0
    with forced_queue(*queue):  # the bucket queue (and buckets 4 times wider: more cells in one), or the heap
        boxes = single_source_window(prep, 1, cell_size_m=1.0, max_cost=cut, within=within)[3]
    for t, got in zip(within, boxes, strict=True):
        rows, cols = np.nonzero(d <= t)
        assert got == (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1), t


@pytest.mark.parametrize("connectivity", [4, 8, 16])
@pytest.mark.parametrize("by_allocation", [False, True])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=landscapes(), slope=st.sampled_from([1.0, 1.1, 2.0]), intercept=st.sampled_from([0.0, 5.0, 200.0]))
def test_single_source_window_partners_lower_the_cutoff_once_reached(connectivity, by_allocation, case, slope, intercept):
    # partners: each within cost drops to slope * u + intercept once the search learns that its label is at most u
    # away: on reaching it at cost d (u = d) or, with the bound's allocation, on taking a cell of its allocation
    # (u = d + the cost distance from all labels there, scipy's, with scipy's allocation); the cutoff follows the
    # largest; every cell whose least cost is within the final cutoff keeps it (scipy)
    res, src, cell = case
    labels = np.unique(src[src > 0])
    assume(labels.size >= 2)
    lab, others = int(labels[0]), [int(v) for v in labels[1:]]
    graph = grid_graph(res, cell, connectivity)
    d = scipy_cost(graph, res, src, [lab])
    prep = prepare_search(res, src, cell_size_m=cell, connectivity=connectivity)
    to = {q: float(np.min(np.where(src == q, d, np.inf))) for q in others}  # least cost to each partner label
    assume(all(np.isfinite(v) for v in to.values()))
    top = float(np.max(d[np.isfinite(d)]))
    start = [2.0 * top + cell] * len(others)  # above every least cost: as a graph's upper bound would be
    bound = None
    if by_allocation:  # r1 = inf and no rest: the bound prunes nothing, only its allocation acts
        idx = np.flatnonzero((src > 0) & ~np.isnan(res))
        h1, _, origin = dijkstra(graph, directed=True, indices=idx, min_only=True, return_predecessors=True)
        alloc = np.where(origin >= 0, src.reshape(-1)[np.maximum(origin, 0)], 0).reshape(res.shape)
        bound = SearchBound(h1.reshape(res.shape), math.inf, allocation=alloc)
    work = np.full(res.shape, np.inf)
    reached: list[float] = []
    cost, (r0, c0), box, boxes = single_source_window(
        prep, lab, cell_size_m=cell, max_cost=max(start), work=work, within=start, partners=others,
        tighten=(slope, intercept), reached=reached, bound=bound,
    )  # fmt: skip
    assert np.isinf(work).all()
    got = np.full(res.shape, np.inf)
    got[r0 : box[1], c0 : box[3]] = cost
    step = cell * float(np.nanmin(res))  # the bucket queue's width: cells of one bucket are taken in any order
    for q, at in zip(others, reached, strict=True):  # reached no lower than the least cost, within one bucket of it
        assert to[q] * (1 - 1e-12) <= at < to[q] * (1 + 1e-9) + step
    final = [min(s, slope * at + intercept) for s, at in zip(start, reached, strict=True)]
    cut = max(final)
    inside = d <= cut * (1 - 1e-9)
    np.testing.assert_allclose(got[inside], d[inside], rtol=RTOL, atol=0)
    assert (got >= d * (1 - RTOL)).all()  # elsewhere never below the least cost
    for t, b in zip(final, boxes, strict=True):  # each box holds the cells within its final cost
        rr, cc = np.nonzero(d <= t * (1 - 1e-9))
        if rr.size:
            assert b is not None and b[0] <= rr.min() and b[1] > rr.max() and b[2] <= cc.min() and b[3] > cc.max()
    # a search told nothing about partners runs to max_cost as before
    plain = single_source_window(prep, lab, cell_size_m=cell, max_cost=max(start), within=start)
    assert np.isfinite(plain[0]).sum() >= np.isfinite(cost).sum()


def test_partners_allocation_lowers_the_reach_on_entering_it():
    # a 5 x 21 strip of resistance 1, 4 neighbours, cell 1: source 1 at (2, 0), partner 2 at (2, 20), 20 apart.  From
    # all sources, cell (r, c) costs |r - 2| + min(c, 20 - c), allocated to 2 for c > 10.  The search from 1 takes
    # (2, 11) at cost 11, allocated to 2 at 9 more: the partner is at most 20 away, so the reach (20) and r1 (20) come
    # down then.  Every later cell off the middle row fails d + h1 <= 20 (it costs 20 + 2 |r - 2|), so the outer rows
    # get no cost east of column 10.  Without the allocation the search learns 20 only on reaching (2, 20): by then
    # it has expanded every cell of cost <= 19, so the outer rows have their costs (13..20) at columns 11..18.
    res = np.ones((5, 21))
    src = np.zeros((5, 21), dtype=np.int32)
    src[2, 0], src[2, 20] = 1, 2
    everyone = cost_distance(res, src, cell_size_m=1.0, connectivity=4)
    prep = prepare_search(res, src, cell_size_m=1.0, connectivity=4)
    got = {}
    for alloc in (None, everyone.allocation):
        reached: list[float] = []
        cost, _, box, _ = single_source_window(
            prep, 1, cell_size_m=1.0, max_cost=1000.0, within=[1000.0], partners=[2], rest=[True], reached=reached,
            bound=SearchBound(everyone.cost, 1000.0, allocation=alloc),
        )  # fmt: skip
        assert reached == [20.0]
        full = np.full(res.shape, np.inf)
        full[box[0] : box[1], box[2] : box[3]] = cost
        np.testing.assert_array_equal(full[2], np.arange(21.0))  # the least-cost path, exact
        got[alloc is not None] = full
    assert np.isinf(got[True][[0, 4], 11:]).all()
    np.testing.assert_array_equal(got[False][[0, 4], 11:19], np.tile(np.arange(13.0, 21.0), (2, 1)))


def scipy_everyone(graph, res, src):
    """scipy's cost distance from all labelled cells and its allocation (the label each cost comes from)."""
    idx = np.flatnonzero((src > 0) & ~np.isnan(res))
    cost, _, origin = dijkstra(graph, directed=True, indices=idx, min_only=True, return_predecessors=True)
    alloc = np.where(origin >= 0, src.reshape(-1)[np.maximum(origin, 0)], 0).reshape(res.shape)
    return cost.reshape(res.shape), alloc


def scipy_between(graph, res, src, labels) -> dict[tuple[int, int], float]:
    """scipy's least cost between the cells of each pair of labels."""
    out = {}
    for a in labels:
        d = scipy_cost(graph, res, src, [a])
        for b in labels:
            out[a, b] = float(np.min(np.where(src == b, d, np.inf)))
    return out


@pytest.mark.parametrize("connectivity", [4, 8, 16])
@settings(max_examples=40, deadline=None)
@given(case=landscapes())
def test_allocation_exits_are_numpys_and_bound_the_distances(connectivity, case):
    # per label and per pair of labels, the least cost[y] + step(y, z) + cost[z] over neighbours in different
    # allocations (numpy, every direction); the bottleneck crossing from each label to each other (from the spanning
    # tree) is Floyd-Warshall's min-max, no less than the larger of the two labels' least crossings, and no more than
    # the least cost between them (scipy)
    res, src, cell = case
    one = cost_distance(res, src, cell_size_m=cell, connectivity=connectivity)
    got = allocation_exits(one.cost, one.allocation, src, res, cell_size_m=cell, connectivity=connectivity)
    nr, nc = res.shape
    want = np.full(int(src.max()) + 1, np.inf)
    want_pairs = np.full((want.size, want.size), np.inf)
    for dr, dc in MOVES[connectivity]:
        for r in range(nr):
            for c in range(nc):
                vr, vc = r + dr, c + dc
                if not (0 <= vr < nr and 0 <= vc < nc):
                    continue
                a, b = one.allocation[r, c], one.allocation[vr, vc]
                if a <= 0 or b <= 0 or a == b:
                    continue
                if abs(dr) + abs(dc) == 3 and any(math.isnan(res[r + x, c + y]) for x, y in knight_crossed(dr, dc)):
                    continue
                step = cell * math.hypot(dr, dc) * 0.5 * (float(res[r, c]) + float(res[vr, vc]))
                w = one.cost[r, c] + step + one.cost[vr, vc]
                want[a], want[b] = min(want[a], w), min(want[b], w)
                want_pairs[a, b] = want_pairs[b, a] = min(want_pairs[a, b], w)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(got, want_pairs.min(axis=1), rtol=1e-12)
    crossings = allocation_crossings(one.cost, one.allocation, src, res, cell_size_m=cell, connectivity=connectivity)
    np.testing.assert_allclose(crossings, want_pairs, rtol=1e-12)
    # the bottleneck (min over chains of regions of their largest crossing): Floyd-Warshall on min-max, no tree
    minimax = want_pairs.copy()
    for k in range(minimax.shape[0]):
        minimax = np.minimum(minimax, np.maximum(minimax[:, k : k + 1], minimax[k : k + 1, :]))
    labels = [int(v) for v in np.unique(src[src > 0])]
    floors = crossing_floors(crossings, labels)
    between = scipy_between(grid_graph(res, cell, connectivity), res, src, labels)
    for row, t in zip(floors, labels, strict=True):
        assert row[t] == 0.0
        for a in labels:
            if a != t:
                np.testing.assert_allclose(row[a], minimax[a, t], rtol=1e-12)
                assert max(got[a], got[t]) <= row[a] <= between[a, t] * (1 + 1e-9)


def _floyd_minimax(w: np.ndarray) -> np.ndarray:
    """The least, over paths, of the largest weight on the path (Floyd-Warshall on min-max): no tree, no sort."""
    m = np.minimum(w, w.T)
    np.fill_diagonal(m, 0.0)
    for k in range(m.shape[0]):
        m = np.minimum(m, np.maximum(m[:, k : k + 1], m[k : k + 1, :]))
    return m


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 9),
    data=st.data(),
)
def test_crossing_floors_are_the_minimax_crossings(n, data):
    # any graph of touching regions: missing crossings (inf), ties, zero costs, labels repeated or out of range
    cells = data.draw(st.lists(st.sampled_from([np.inf, np.inf, 0.0, 1.0, 2.5, 2.5, 7.0, 40.0]), min_size=n * n, max_size=n * n))
    w = np.array(cells, dtype=float).reshape(n, n)
    w = np.minimum(w, w.T)
    labels = data.draw(st.lists(st.integers(-1, n), min_size=1, max_size=6))
    got = crossing_floors(w, labels)
    want = _floyd_minimax(w)
    assert got.shape == (len(labels), n)
    for row, t in zip(got, labels, strict=True):
        if 0 <= t < n:
            np.testing.assert_array_equal(row, want[t])
        else:
            assert np.isinf(row).all()


def test_crossing_floors_keep_a_crossing_of_cost_zero():
    # regions 1 and 2 touch at cost 0, 2 and 3 at 5, 1 and 3 at 9: from 1, region 2 is 0 away and 3 is 5
    inf = np.inf
    w = np.array([[inf, inf, inf, inf], [inf, inf, 0.0, 9.0], [inf, 0.0, inf, 5.0], [inf, 9.0, 5.0, inf]])
    assert crossing_floors(w, [1, 3]).tolist() == [[inf, 0.0, 0.0, 5.0], [inf, 5.0, 5.0, 0.0]]


def test_allocation_exits_of_two_labels_on_a_wide_grid():
    # one region edge on a 30 x 70 grid (blocks of cells tested at once: the ones it crosses must be looked at): two
    # sources at the ends of the middle row, resistance 1, cell 100: leaving either region costs 69 x 100
    res = np.ones((30, 70))
    src = np.zeros((30, 70), dtype=np.int32)
    src[15, 0], src[15, 69] = 1, 2
    one = cost_distance(res, src, cell_size_m=100.0, connectivity=8)
    got = allocation_exits(one.cost, one.allocation, src, res, cell_size_m=100.0, connectivity=8)
    np.testing.assert_allclose(got, [np.inf, 6900.0, 6900.0], rtol=1e-12)


def test_allocation_exits_refuses_another_searchs_allocation():
    res = np.ones((1, 4))
    labels = np.array([[1, 0, 0, 2]])
    one = cost_distance(res, labels, cell_size_m=10, connectivity=4)
    with pytest.raises(DataError, match="allocation: expected each labelled cell on data allocated to its own label"):
        allocation_exits(one.cost, 3 - one.allocation, labels, res, cell_size_m=10, connectivity=4)
    with pytest.raises(DataError, match="cost: expected the resistance raster's shape"):
        allocation_exits(one.cost[:, :2], one.allocation, labels, res, cell_size_m=10, connectivity=4)
    with pytest.raises(DataError, match="allocation: expected an integer raster of labels, found float64"):
        allocation_crossings(one.cost, one.allocation.astype(float), labels, res, cell_size_m=10, connectivity=4)
    with pytest.raises(ConfigError, match="connectivity"):
        allocation_exits(one.cost, one.allocation, labels, res, cell_size_m=10, connectivity=5)
    with pytest.raises(ConfigError, match="cell_size_m"):
        allocation_exits(one.cost, one.allocation, labels, res, cell_size_m=0, connectivity=4)
    for bad, found in [(np.zeros((3, 2)), r"shape \(3, 2\)"), (-np.ones((3, 3)), r"shape \(3, 3\) with negative values")]:
        with pytest.raises(DataError, match=f"crossings: expected a square matrix .*found {found}"):
            crossing_floors(bad, [1])


def partners_case(case, connectivity: int, width: float, loose: float) -> tuple:
    """A landscape's first label and its partners (the other labels), by scipy: ``(res, src, cell, graph, labels, lab,
    others, between, d, dq, within, floors)`` -- each partner's reach ``within`` (``loose`` times its least cost with
    the width, as a graph's upper bound), and ``floors`` from scipy's least costs between labels (the tightest lower
    bounds there are).  Assumes two labels or more, each partner reachable."""
    res, src, cell = case
    labels = sorted(int(v) for v in np.unique(src[src > 0]))
    assume(len(labels) >= 2)
    lab, others = labels[0], labels[1:]
    graph = grid_graph(res, cell, connectivity)
    between = scipy_between(graph, res, src, labels)
    assume(all(np.isfinite(between[lab, q]) for q in others))
    d = scipy_cost(graph, res, src, [lab])
    dq = {q: scipy_cost(graph, res, src, [q]) for q in others}
    within = [between[lab, q] * (1 + width) * loose * (1 + 1e-9) + cell for q in others]
    floors = np.zeros((max(labels) + 1, len(others)))
    for k, q in enumerate(others):
        for a in labels:
            floors[a, k] = 0.0 if a == q else between[a, q] * (1 - 1e-9)
    return res, src, cell, graph, labels, lab, others, between, d, dq, within, floors


@pytest.mark.parametrize("connectivity", [4, 8, 16])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=landscapes(), width=st.sampled_from([0.0, 0.1, 0.5]), loose=st.sampled_from([1.0, 3.0]))
def test_floors_keep_every_corridor_cell_and_learned_bounds_the_distances(connectivity, case, width, loose):
    # a search pruned by the cost distance from all labels, its allocation and floors (scipy's least costs between
    # labels: the tightest lower bounds there are) still gives every cell of each partner's corridor (d + d_q <=
    # within_q) its least cost; what it learned bounds the least cost to every label from below (scipy)
    res, src, cell, graph, labels, lab, others, between, d, dq, within, floors = partners_case(case, connectivity, width, loose)
    h1, alloc = scipy_everyone(graph, res, src)
    prep = prepare_search(res, src, cell_size_m=cell, connectivity=connectivity)
    runs = []
    for rasters in (None, pack_bound(h1, alloc)):  # laid out by the search, or once for many: the same search
        learned: dict = {}
        reached: list[float] = []
        cost, (r0, c0), box, boxes = single_source_window(
            prep, lab, cell_size_m=cell, max_cost=max(within), within=within, partners=others, rest=[True] * len(others),
            bound=SearchBound(h1, max(within), allocation=alloc, rasters=rasters), floors=floors, learned=learned,
            reached=reached, tighten=(1 + width, 0.0),
        )  # fmt: skip
        runs.append((cost.tobytes(), (r0, c0), box, boxes, reached, learned["floor"], learned["at"].tobytes()))
    assert runs[0] == runs[1]
    got = np.full(res.shape, np.inf)
    got[r0 : box[1], c0 : box[3]] = cost
    final = [min(w, (1 + width) * at) for w, at in zip(within, reached, strict=True)]  # as the search lowered them
    with np.errstate(invalid="ignore"):
        corridor = np.logical_or.reduce([d + dq[q] <= w * (1 - 1e-9) for q, w in zip(others, final, strict=True)])
    np.testing.assert_allclose(got[corridor], d[corridor], rtol=RTOL, atol=0)
    assert (got[np.isfinite(d)] >= d[np.isfinite(d)] * (1 - RTOL)).all()
    for q in labels:
        assert min(learned["floor"], learned["at"][q]) <= between[lab, q] * (1 + 1e-9)
    assert learned["at"][lab] == 0.0


@settings(max_examples=300, deadline=None)
@given(
    x=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True, width=64),
        st.floats(min_value=0.0, max_value=1e-37),  # float32's subnormal range and below
        st.floats(min_value=3.0e38, max_value=1e300),  # float32's largest values and beyond
    )
)
def test_bound_layout_rounds_h1_down_to_float32_and_the_upper_bound_covers_it(x):
    # what the searches read: a float32 no higher than h1 and the largest such (the next float32 up is above h1),
    # and _above(it) no lower than h1 -- by definition, through numpy's float32 steps, not the kernel's arithmetic
    from leopardgeo.kernels._costdist_compiled import _above

    rasters = pack_bound(np.array([[x, 0.0]]), np.array([[7, -3]], dtype=np.int32))
    v = rasters.packed.view(np.float32)[0]
    assert rasters.packed[1::2].tolist() == [7, -3] and rasters.packed.view(np.float32)[2] == 0.0
    if math.isnan(x):
        assert math.isnan(v)
        return
    assert float(v) <= x
    with np.errstate(over="ignore"):  # the step above float32's largest value is inf
        assert float(np.nextafter(v, np.float32(np.inf))) > x or (math.isinf(x) and v == x)
    assert _above(float(v)) >= x


def test_floors_refuse_the_region_of_a_patch_far_from_the_partner():
    # 9 x 21 cells of resistance 1, 4 neighbours, cell 1: the search from 1 at (4, 0) toward 2 at (4, 20) (20 away,
    # reach 22); 3 at (0, 2) lies 22 from 2.  A cell x allocated to 3 lies at least 22 - h1(x) from 2, so it can be
    # in the corridor only if d(x) + 22 - h1(x) <= 22, i.e. d(x) <= h1(x): never in 3's region, where h1 = d_3 < d.
    # With that floor no cell next to 3 is expanded and 3's cell gets no cost; without it, it gets its least cost, 6.
    res = np.ones((9, 21))
    src = np.zeros((9, 21), dtype=np.int32)
    src[4, 0], src[4, 20], src[0, 2] = 1, 2, 3
    everyone = cost_distance(res, src, cell_size_m=1.0, connectivity=4)
    prep = prepare_search(res, src, cell_size_m=1.0, connectivity=4)
    floors = np.zeros((4, 1))
    floors[1, 0], floors[3, 0] = 20.0, 22.0  # the least costs between 1 and 2, and 3 and 2
    got = {}
    for fl in (None, floors):
        learned: dict = {}
        cost, _, box, _ = single_source_window(
            prep, 1, cell_size_m=1.0, max_cost=22.0, within=[22.0], partners=[2], rest=[True], floors=fl, learned=learned,
            bound=SearchBound(everyone.cost, 22.0, allocation=everyone.allocation),
        )  # fmt: skip
        full = np.full(res.shape, np.inf)
        full[box[0] : box[1], box[2] : box[3]] = cost
        np.testing.assert_array_equal(full[4], np.arange(21.0))  # the least-cost path, exact
        got[fl is not None] = (full, learned)
    assert got[False][0][0, 2] == 6.0 and got[False][1]["at"][3] == 6.0
    assert np.isinf(got[True][0][0, 2]) and np.isinf(got[True][1]["at"][3])
    assert got[True][1]["at"][2] == 20.0


def test_single_source_window_errors():
    prep = prepare_search(np.ones((2, 3)), np.array([[1, 0, 2], [0, 0, 0]]), cell_size_m=10)
    with pytest.raises(DataError, match="label: expected a label present"):
        single_source_window(prep, 5, cell_size_m=10, max_cost=50)
    with pytest.raises(ConfigError, match="max_cost"):
        single_source_window(prep, 1, cell_size_m=10, max_cost=-1)
    with pytest.raises(DataError, match="work: expected"):
        single_source_window(prep, 1, cell_size_m=10, max_cost=50, work=np.full((3, 2), np.inf))
    with pytest.raises(DataError, match="bound.h1: expected"):
        single_source_window(prep, 1, cell_size_m=10, max_cost=50, bound=SearchBound(np.zeros((3, 3)), 1.0))
    with pytest.raises(DataError, match="bound.h2: expected"):
        single_source_window(prep, 1, cell_size_m=10, max_cost=50, bound=SearchBound(None, 1.0, np.zeros(3)))
    bad_parts = [((np.zeros((2, 3)), (0, 0), (0, 2, 0, 3)),), ((np.zeros((2, 3)), (0, 0), (0, 2, 0, 3), "far"),)]
    for parts in bad_parts:  # a part without its reach; a reach that is no number
        with pytest.raises(DataError, match=r"bound.parts: expected \(rectangle, \(row, col\)"):
            single_source_window(prep, 1, cell_size_m=10, max_cost=50, bound=SearchBound(None, 1.0, parts=parts))
    with pytest.raises(DataError, match="bound.parts: expected 2-D rectangles"):
        single_source_window(
            prep, 1, cell_size_m=10, max_cost=50, bound=SearchBound(None, 1.0, parts=[(np.zeros(3), (0, 0), (0, 1, 0, 3), 1.0)])
        )
    with pytest.raises(DataError, match="partners, rest: expected one per within cost"):
        single_source_window(prep, 1, cell_size_m=10, max_cost=50, within=[10.0], partners=[2, 3])
    with pytest.raises(ConfigError, match="tighten: expected"):
        single_source_window(prep, 1, cell_size_m=10, max_cost=50, within=[10.0], partners=[2], tighten=(0.5, 0.0))
    with pytest.raises(DataError, match="partners: expected the labels of other sources"):
        single_source_window(prep, 1, cell_size_m=10, max_cost=50, within=[10.0], partners=[1])
    for partners in ([2, 2], [0, 2]):
        with pytest.raises(DataError, match=r"partners: expected distinct source labels \(> 0\)"):
            single_source_window(prep, 1, cell_size_m=10, max_cost=50, within=[10.0, 20.0], partners=partners)
    h1 = np.zeros((2, 3))
    for bound, found in [
        (SearchBound(None, 1.0, allocation=np.ones((2, 3), dtype=np.int32)), "and no h1"),
        (SearchBound(h1, 1.0, allocation=np.ones((3, 2), dtype=np.int32)), "int32 of shape"),
        (SearchBound(h1, 1.0, allocation=h1), "float64 of shape"),
    ]:
        with pytest.raises(DataError, match=f"bound.allocation: expected an integer raster .*found .*{found}"):
            single_source_window(prep, 1, cell_size_m=10, max_cost=50, bound=bound, within=[10.0], partners=[2])
    alloc = np.array([[1, 1, 2], [1, 1, 2]], dtype=np.int32)
    good = SearchBound(h1, 1.0, allocation=alloc)
    for bound, floors, found in [
        (SearchBound(h1, 1.0), np.zeros((3, 1)), "no allocation and float64 of shape"),
        (good, np.zeros((3, 2)), r"float64 of shape \(3, 2\)"),
        (good, -np.ones((3, 1)), r"float64 of shape \(3, 1\)"),
    ]:
        with pytest.raises(DataError, match=f"floors: expected a bound with an allocation .*found {found}"):
            single_source_window(prep, 1, cell_size_m=10, max_cost=50, bound=bound, within=[10.0], partners=[2], floors=floors)
    other = pack_bound(h1.copy(), alloc)
    with pytest.raises(DataError, match="bound.rasters: expected pack_bound of this bound's h1 and allocation"):
        single_source_window(
            prep, 1, cell_size_m=10, max_cost=50, bound=SearchBound(h1, 1.0, allocation=alloc, rasters=other),
            within=[10.0], partners=[2],
        )  # fmt: skip
    with pytest.raises(DataError, match="bound.rasters: expected the BoundRasters of pack_bound.*found ndarray"):
        single_source_window(
            prep, 1, cell_size_m=10, max_cost=50, bound=SearchBound(h1, 1.0, allocation=alloc, rasters=other.packed),
            within=[10.0], partners=[2],
        )  # fmt: skip
    for args, found in [
        ((h1, alloc.astype(float)), "float64 of shape .* and float64 of shape"),
        ((h1, alloc[:, :2]), r"float64 of shape \(2, 3\) and int32 of shape \(2, 2\)"),
        ((alloc, alloc), "int32 of shape"),
    ]:
        with pytest.raises(DataError, match=f"pack_bound: expected a float h1 and an integer allocation .*found {found}"):
            pack_bound(*args)
    with pytest.raises(DataError, match="pack_bound: expected int32 labels, found 1 to 4294967296"):
        pack_bound(h1, alloc.astype(np.int64) << (alloc == 2) * 31)  # label 2 becomes 2**32
    with pytest.raises(DataError, match="learned: expected a bound with h1"):
        single_source_window(prep, 1, cell_size_m=10, max_cost=50, within=[10.0], partners=[2], learned={})
    with pytest.raises(DataError, match="floors, learned: expected partners with them"):
        single_source_window(prep, 1, cell_size_m=10, max_cost=50, bound=good, learned={})
    # every source cell pruned: the box of the sources, nothing reached beyond them
    cost, origin, box, _ = single_source_window(prep, 2, cell_size_m=10, max_cost=50, bound=SearchBound(None, -1.0))
    assert cost.tolist() == [[0.0]] and origin == (0, 2) and box == (0, 1, 2, 3)


# ----------------------------------------------------------------------------- priority queues
# The search uses a bucket queue (Dial) when the ratio of the largest to the smallest step cost is
# moderate and a binary heap otherwise.  Both must give the scipy costs, and the same costs bit for bit.
import contextlib  # noqa: E402
from unittest import mock  # noqa: E402

from leopardgeo.kernels import _costdist_compiled, costdist  # noqa: E402


@contextlib.contextmanager
def forced_queue(kind: str, coarsen: float = 1.0, ring: int | None = None):
    """Force the heap (``kind="heap"``) or the bucket queue, optionally with buckets ``coarsen`` times wider
    than the smallest step (exact, by label correcting) and a ring of ``ring`` buckets (too few: overflow)."""
    plan = costdist._plan_queue

    def forced(r_min, r_max, cell, k, n):
        if kind == "heap":
            return 0.0, 0
        half = costdist._UNIT_LENGTH[:k] * float(cell) * 0.5
        inv = 1.0 / (coarsen * float(half[0] * (r_min + r_min)))
        n_buckets = math.ceil(float(half.max() * (r_max + r_max)) * inv) + 2
        return inv, ring or n_buckets

    with mock.patch.object(costdist, "_plan_queue", forced):
        yield plan


@st.composite
def landscapes_with_ratio(draw):
    """Log-uniform resistance between 10**lo and 10**hi (ratios 1 to 1e9), NaN holes and labelled sources."""
    nr = draw(st.integers(1, 12))
    nc = draw(st.integers(1, 12))
    lo, hi = draw(st.sampled_from([(0, 0), (0, 1), (0, 3), (-3, 3), (-3, 6), (2, 8)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    res = 10.0 ** rng.uniform(lo, hi, (nr, nc))
    if rng.random() < 0.5:
        res = res.astype("float32")
    res[rng.random((nr, nc)) < draw(st.sampled_from([0.0, 0.2]))] = np.nan
    src = np.zeros((nr, nc), dtype=np.int32)
    for lab in range(1, draw(st.integers(1, 3)) + 1):
        src[rng.integers(nr), rng.integers(nc)] = lab
    for lab in np.unique(src[src > 0]):
        if np.isnan(res[src == lab]).all():
            src[src == lab] = 0
    assume((src > 0).any())
    return res, src, float(draw(st.sampled_from([1.0, 30.0]))), (lo, hi)


def assert_matches_scipy(out, res, src, cell, connectivity):
    graph = grid_graph(res, cell, connectivity)
    expected = scipy_cost(graph, res, src, np.unique(src[src > 0]))
    ok = ~np.isnan(res)
    assert np.isnan(out.cost[~ok]).all()
    np.testing.assert_array_equal(np.isinf(out.cost[ok]), np.isinf(expected[ok]))
    fin = ok & np.isfinite(expected)
    np.testing.assert_allclose(out.cost[fin], expected[fin], rtol=RTOL, atol=0)
    per_label = {lab: scipy_cost(graph, res, src, [lab]) for lab in np.unique(src[src > 0])}
    for r, c in zip(*np.nonzero(fin), strict=True):
        assert math.isclose(per_label[out.allocation[r, c]][r, c], expected[r, c], rel_tol=RTOL, abs_tol=1e-12)
    assert (out.allocation[ok & ~fin] == 0).all()
    np.testing.assert_array_equal(out.backlink == -1, ~fin | ((src > 0) & ok))


@pytest.mark.parametrize("connectivity", [4, 8, 16])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=landscapes_with_ratio())
def test_queue_choice_and_costs_equal_scipy_across_resistance_ratios(connectivity, case):
    res, src, cell, _ = case
    valid = res[~np.isnan(res)]
    assume(valid.size > 0)
    ratio = float(valid.max()) / float(valid.min())
    _, n_buckets = costdist._plan_queue(float(valid.min()), float(valid.max()), cell, connectivity, res.size)
    if ratio <= 1000:
        assert n_buckets > 0  # bucket queue
    if ratio >= 1e7:
        assert n_buckets == 0  # heap fallback
    out = cost_distance(res, src, cell_size_m=cell, connectivity=connectivity)
    assert_matches_scipy(out, res, src, cell, connectivity)


@pytest.mark.parametrize("connectivity", [4, 8, 16])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=landscapes_with_ratio(), coarsen=st.sampled_from([1.0, 3.0, 50.0]))
def test_bucket_queue_and_heap_give_identical_costs(connectivity, case, coarsen):
    res, src, cell, (lo, hi) = case
    assume(hi - lo <= 3 or coarsen == 50.0)  # keep the forced rings small
    with forced_queue("heap"):
        heap = cost_distance(res, src, cell_size_m=cell, connectivity=connectivity)
    with forced_queue("bucket", coarsen=coarsen * 10.0 ** (hi - lo if hi - lo > 3 else 0)):
        bucket = cost_distance(res, src, cell_size_m=cell, connectivity=connectivity)
    np.testing.assert_array_equal(bucket.cost, heap.cost)  # the same least float sums, bit for bit
    fin = np.isfinite(heap.cost)
    np.testing.assert_array_equal(bucket.allocation[~fin], heap.allocation[~fin])
    np.testing.assert_array_equal(bucket.backlink == -1, heap.backlink == -1)
    assert_matches_scipy(bucket, res, src, cell, connectivity)


def test_bucket_ring_overflow_falls_back_to_the_heap():
    rng = np.random.default_rng(7)
    res = rng.uniform(1, 100, (20, 25))
    src = np.zeros(res.shape, dtype=np.int32)
    src[3, 4] = 1
    src[15, 20] = 2
    reference = cost_distance(res, src, cell_size_m=10.0, connectivity=16)
    with forced_queue("bucket", ring=3):  # far too few buckets for the largest step
        out = cost_distance(res, src, cell_size_m=10.0, connectivity=16)
    np.testing.assert_array_equal(out.cost, reference.cost)
    assert_matches_scipy(out, res, src, 10.0, 16)


@pytest.mark.parametrize("kind", ["bucket", "heap"])
@pytest.mark.parametrize("connectivity", [4, 8, 16])
def test_queues_grow_on_a_long_front_and_agree_with_skimage(kind, connectivity):
    # Many sources make a search front of thousands of cells: more than the initial block pool
    # (64 blocks of 256 ids) and heap (1024 entries) hold, so both grow while searching.
    rng = np.random.default_rng(11)
    res = rng.uniform(1.0, 1000.0, (300, 300))
    res[rng.random(res.shape) < 0.05] = np.nan
    src = np.zeros(res.shape, dtype=np.int32)
    src[::3, ::7] = np.arange(1, 100 * 43 + 1).reshape(100, 43)
    res[src > 0] = 1.0
    with forced_queue(kind):
        out = cost_distance(res, src, cell_size_m=25.0, connectivity=connectivity)
    if connectivity == 8:
        skgraph = pytest.importorskip("skimage.graph")
        starts = [tuple(p) for p in np.argwhere((src > 0) & ~np.isnan(res))]
        mcp = skgraph.MCP_Geometric(np.where(np.isnan(res), np.inf, res), sampling=(25.0, 25.0))
        expected, _ = mcp.find_costs(starts)
        ok = ~np.isnan(res)
        np.testing.assert_allclose(out.cost[ok], expected[ok], rtol=RTOL, atol=0)
    with forced_queue("heap" if kind == "bucket" else "bucket"):
        other = cost_distance(res, src, cell_size_m=25.0, connectivity=connectivity)
    np.testing.assert_array_equal(out.cost, other.cost)
    # Every allocation is a label whose path (followed by back-links) costs the cell's cost.
    for r, c in rng.integers(0, 300, (200, 2)):
        if np.isfinite(out.cost[r, c]):
            path = trace_path(out.backlink, (r, c), connectivity=connectivity, allocation=out.allocation)
            assert src[tuple(path[0])] == out.allocation[r, c]
            total = sum(step_cost(res, path[i], path[i + 1], 25.0) for i in range(len(path) - 1))
            assert math.isclose(total, out.cost[r, c], rel_tol=RTOL, abs_tol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int16", ">f8"])
def test_resistance_dtypes_give_the_float64_result_and_float_input_is_not_copied(dtype):
    rng = np.random.default_rng(3)
    base = rng.integers(1, 50, (30, 31)).astype(np.float32)
    base[rng.random(base.shape) < 0.1] = np.nan
    if dtype == "int16":
        base[np.isnan(base)] = 7
    src = np.zeros(base.shape, dtype=np.int32)
    src[5, 5] = 1
    res = base.astype(dtype)
    out = cost_distance(res, src, cell_size_m=30.0, connectivity=16)
    ref = cost_distance(base.astype(np.float64), src, cell_size_m=30.0, connectivity=16)
    np.testing.assert_array_equal(out.cost, ref.cost)
    inp = costdist._prepare(res, src, 30.0, 16, None)
    assert inp.res.dtype in (np.float32, np.float64) and inp.res.dtype.isnative
    if dtype in ("float32", "float64"):
        assert np.shares_memory(inp.res, res)
        assert np.shares_memory(inp.src, src)


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int8", "uint16", "int64", "uint64", ">i4"])
def test_source_label_dtypes(dtype):
    res = np.ones((6, 7))
    res[2, :] = np.nan
    labels = np.zeros(res.shape, dtype=np.int64)
    labels[0, 0] = 1
    if dtype != "bool":
        labels[5, 6] = 3
    out = cost_distance(res, labels.astype(dtype), cell_size_m=10.0, connectivity=8)
    ref = cost_distance(res, labels.astype(np.int32), cell_size_m=10.0, connectivity=8)
    np.testing.assert_array_equal(out.cost, ref.cost)
    np.testing.assert_array_equal(out.allocation, ref.allocation)
    assert out.allocation.dtype == np.int32 and out.backlink.dtype == np.int8 and out.cost.dtype == np.float64


def test_label_range_errors_and_many_labels():
    res = np.ones((4, 5))
    big = np.zeros(res.shape, dtype=np.uint64)
    big[1, 1] = 2**40
    with pytest.raises(DataError, match="labels from 0"):
        cost_distance(res, big, cell_size_m=10)
    # More distinct labels than the scan's first buffer, in runs and alone; one wholly on no data.
    res = np.ones((60, 70))
    src = np.arange(60 * 70, dtype=np.int32).reshape(60, 70) % 997
    res[0, 1] = np.nan
    src[src == 1] = 0
    src[0, 1] = 5000
    with pytest.raises(NoPathError, match=r"label\(s\) 5000"):
        cost_distance(res, src, cell_size_m=10)
    src[0, 1] = 0
    out = cost_distance(res, src, cell_size_m=10)
    assert np.array_equal(np.unique(out.allocation[src > 0]), np.unique(src[src > 0]))


@pytest.mark.parametrize("max_cost", [None, 900.0])
def test_one_label_allocation_is_filled_after_the_search(max_cost):
    # With one label the search leaves the allocation alone and fills it afterwards.
    rng = np.random.default_rng(5)
    res = rng.uniform(1, 9, (25, 30))
    res[:, 12] = np.nan
    res[3, 12] = 2.0  # a gap in the wall
    src = np.zeros(res.shape, dtype=np.int16)
    src[10, 2:4] = 5
    out = cost_distance(res, src, cell_size_m=10.0, max_cost=max_cost)
    reached = np.isfinite(out.cost)
    np.testing.assert_array_equal(out.allocation, np.where(reached, 5, 0))
    # The same search with a second, unreachable label takes the multi-label path: same costs and labels.
    res2 = np.pad(res, ((0, 0), (0, 2)), constant_values=np.nan)
    res2[0, -1] = 1.0
    src2 = np.pad(src, ((0, 0), (0, 2)))
    src2[0, -1] = 7
    two = cost_distance(res2, src2, cell_size_m=10.0, max_cost=max_cost)
    np.testing.assert_array_equal(two.cost[:, :-2], out.cost)
    np.testing.assert_array_equal(two.allocation[:, :-2], out.allocation)
    np.testing.assert_array_equal(two.backlink[:, :-2], out.backlink)


def test_a_masked_array_counts_its_masked_cells_as_no_data():
    # rasterio's read(masked=True): np.asarray would keep the hidden nodata value (65535) as a resistance
    a = np.ones((5, 5), dtype="float32")
    a[:, 2] = 65535.0
    src = np.zeros((5, 5), dtype=int)
    src[2, 0] = 1
    masked = cost_distance(np.ma.masked_equal(a, 65535.0), src, cell_size_m=10, connectivity=4).cost
    filled = cost_distance(np.where(a == 65535.0, np.nan, a), src, cell_size_m=10, connectivity=4).cost
    np.testing.assert_array_equal(masked, filled)
    assert np.isinf(masked[2, 4])  # the masked column is impassable


@pytest.mark.parametrize("cell", [0.0, -10.0, float("nan")])
def test_single_source_searches_check_the_cell_size(cell):
    from leopardgeo.kernels.costdist import prepare_search, single_source_cost, single_source_window

    inp = prepare_search(np.ones((3, 3)), np.array([[1, 0, 0], [0, 0, 0], [0, 0, 2]]), cell_size_m=10, connectivity=4)
    with pytest.raises(ConfigError, match="cell_size_m: expected a positive finite number"):
        single_source_cost(inp, 1, cell_size_m=cell)  # -10 once grew the queue until the process was killed
    with pytest.raises(ConfigError, match="cell_size_m"):
        single_source_window(inp, 1, cell_size_m=cell, max_cost=50.0)


@settings(max_examples=60, deadline=None)
@given(
    nr=st.integers(1, 12),
    nc=st.integers(1, 12),
    seed=st.integers(0, 2**31 - 1),
    dtype=st.sampled_from(["int32", "int64", "uint8", "uint16", "bool"]),
    flip=st.booleans(),
    big=st.booleans(),
)
def test_prepare_search_groups_each_labels_cells_as_a_scan_finds_them(nr, nc, seed, dtype, flip, big):
    """Each label's source cells: those of that label not on no data, ascending (counting sort, or the sort for ids
    beyond the flag arrays), whatever the label dtype and memory order."""
    rng = np.random.default_rng(seed)
    res = rng.uniform(1, 5, (nr, nc))
    res[rng.random((nr, nc)) < 0.2] = np.nan
    src = (rng.integers(1, 5, (nr, nc)) * (rng.random((nr, nc)) < 0.4)).astype(np.int64)
    if big and dtype in ("int32", "int64"):
        src[src == 4] = 2**24 + 7  # beyond the counting sort's range on a grid this small
    src = src.astype(dtype)
    if flip:
        src = src[:, ::-1]  # not C-contiguous
    on = (src > 0) & ~np.isnan(res)
    assume(on.any())
    prep = prepare_search(res, src, cell_size_m=10.0)
    flat = np.ascontiguousarray(src).reshape(-1).astype(np.int64)
    want = np.unique(flat[on.reshape(-1)])
    assert np.array_equal(prep.labels, want)
    for lab in want:
        assert np.array_equal(prep.sources(int(lab)), np.flatnonzero((flat == lab) & on.reshape(-1)))


@pytest.mark.parametrize("connectivity", [4, 8, 16])
@pytest.mark.parametrize("queue", ["bucket", "heap", "overflow", "long"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=landscapes(), width=st.sampled_from([0.0, 0.1, 0.5]), loose=st.sampled_from([1.0, 3.0]))
def test_own_region_gives_every_corridor_cell_the_same_cost_bit_for_bit(connectivity, queue, case, width, loose):
    # own_region leaves the search's own allocation region to h1 (our search from all labels) and starts from the
    # region's edge: every corridor cell (by scipy: d + d_q within the partner's reach) gets the cost, bit for bit,
    # that the search expanding the region gives it; the region's cells within half the largest reach get h1;
    # each within box holds its partner's corridor; what it learned still bounds the least costs (scipy); with the
    # bucket queue, the heap, a ring too small for a step (rerun with the heap), and seeds too far for the ring
    # ("long": a ring beyond _MAX_BUCKETS, so the heap holds them)
    res, src, cell, _, labels, lab, others, between, d, dq, within, floors = partners_case(case, connectivity, width, loose)
    everyone = cost_distance(res, src, cell_size_m=cell, connectivity=connectivity)
    h1, alloc = everyone.cost, everyone.allocation
    prep = prepare_search(res, src, cell_size_m=cell, connectivity=connectivity)
    rasters = pack_bound(h1, alloc)
    work = np.full(res.shape, np.inf)
    got, boxes_of, learned_of, reached_of = {}, {}, {}, {}
    forced = forced_queue("heap") if queue == "heap" else forced_queue("bucket", ring=2 if queue == "overflow" else None)
    most = 2 if queue == "long" else _costdist_compiled._MAX_BUCKETS  # below any ring: the seeds always go to the heap
    with forced, mock.patch.object(_costdist_compiled, "_MAX_BUCKETS", most):
        for own in (False, True):
            learned: dict = {}
            reached: list[float] = []
            cost, (r0, c0), box, boxes = single_source_window(
                prep, lab, cell_size_m=cell, max_cost=max(within), within=within, partners=others, work=work,
                rest=[True] * len(others), bound=SearchBound(h1, max(within), allocation=alloc, rasters=rasters),
                floors=floors, learned=learned, reached=reached, tighten=(1 + width, 0.0), own_region=own,
            )  # fmt: skip
            assert np.isinf(work).all()  # left as it was found
            got[own] = np.full(res.shape, np.inf)
            got[own][r0 : box[1], c0 : box[3]] = cost
            boxes_of[own], learned_of[own], reached_of[own] = boxes, learned, reached
    # within every reach as either search can lower it (to (1 + width) times an upper bound on the least cost)
    reach = [min(w, (1 + width) * between[lab, q]) * (1 - 1e-9) for q, w in zip(others, within, strict=True)]
    with np.errstate(invalid="ignore"):
        corridors = [d + dq[q] <= r for q, r in zip(others, reach, strict=True)]
    corridor = np.logical_or.reduce(corridors)
    np.testing.assert_array_equal(got[True][corridor], got[False][corridor])
    np.testing.assert_allclose(got[True][corridor], d[corridor], rtol=RTOL, atol=0)
    fin = np.isfinite(d)
    assert (got[True][fin] >= d[fin] * (1 - RTOL)).all() and np.isinf(got[True][np.isinf(d)]).all()
    region = (alloc == lab) & (2.0 * h1 <= max(reach))  # within the largest reach as lowered
    np.testing.assert_array_equal(got[True][region], h1[region])
    for cells, box in zip(corridors, boxes_of[True], strict=True):
        rows, cols = np.nonzero(cells)
        if rows.size:
            assert box is not None
            assert box[0] <= rows.min() and rows.max() < box[1] and box[2] <= cols.min() and cols.max() < box[3]
    learned = learned_of[True]
    for q in labels:
        assert min(learned["floor"], learned["at"][q]) <= between[lab, q] * (1 + 1e-9)
    assert learned["at"][lab] == 0.0
    assert all(u >= between[lab, q] * (1 - 1e-9) for q, u in zip(others, reached_of[True], strict=True))


@pytest.mark.parametrize("connectivity", [4, 8, 16])
@settings(max_examples=60, deadline=None)
@given(nr=st.integers(1, 9), nc=st.integers(1, 9), seed=st.integers(0, 2**31 - 1))
def test_allocation_regions_list_each_labels_cells_and_its_edge(connectivity, nr, nc, seed):
    # each label's cells as runs along the rows (in raster order, each as long as it goes), and its cells with a
    # neighbour of another label: against every neighbour of every cell, both ways
    from leopardgeo.kernels.costdist import _allocation_regions

    rng = np.random.default_rng(seed)
    alloc = rng.integers(-1, 4, (nr, nc)).astype(np.int32)
    run_start, runs, edge_start, edges = _allocation_regions(alloc, connectivity)
    edge = np.zeros((nr, nc), dtype=bool)
    for r in range(nr):
        for c in range(nc):
            for dr, dc in NEIGHBOUR_OFFSETS[:connectivity]:
                if 0 <= r + dr < nr and 0 <= c + dc < nc and alloc[r + dr, c + dc] != alloc[r, c]:
                    edge[r, c] = True
    flat, edge = alloc.reshape(-1), edge.reshape(-1)
    for a in range(1, int(flat.max(initial=0)) + 1):
        mine = [r * nc + c for r, c0, c1 in runs[run_start[a] : run_start[a + 1]].tolist() for c in range(c0, c1)]
        assert mine == np.flatnonzero(flat == a).tolist()  # its cells, in raster order
        row_ends = [(r, c1) for r, _, c1 in runs[run_start[a] : run_start[a + 1]].tolist()]
        assert all(c1 == nc or alloc[r, c1] != a for r, c1 in row_ends)  # runs as long as they go
        assert edges[edge_start[a] : edge_start[a + 1]].tolist() == np.flatnonzero((flat == a) & edge).tolist()


def test_own_region_needs_the_allocation_of_a_search_from_all_labels():
    res = np.ones((3, 8))
    src = np.zeros((3, 8), dtype=np.int32)
    src[1, 0], src[1, 7] = 1, 2
    prep = prepare_search(res, src, cell_size_m=1.0, connectivity=4)
    everyone = cost_distance(res, src, cell_size_m=1.0, connectivity=4)
    work = np.full(res.shape, np.inf)
    bounds = [(None, "no bound"), (SearchBound(None, 20.0), "no h1"), (SearchBound(everyone.cost, 20.0), "no allocation")]
    for bound, found in bounds:
        with pytest.raises(DataError, match=f"own_region: expected a bound with h1 and its allocation .*found {found}"):
            single_source_window(prep, 1, cell_size_m=1.0, max_cost=20.0, bound=bound, work=work, own_region=True)
    swapped = 3 - everyone.allocation  # label 1's cells allocated to 2: not the allocation of these sources
    with pytest.raises(DataError, match="own_region: expected the bound.s allocation to give each source cell its own.*1 of"):
        single_source_window(
            prep, 1, cell_size_m=1.0, max_cost=20.0, work=work, own_region=True,
            bound=SearchBound(everyone.cost, 20.0, allocation=swapped),
        )  # fmt: skip
    assert np.isinf(work).all()  # left as it was found


@pytest.mark.parametrize("max_cost", [20.0, 6.0])
def test_own_region_without_partners_by_hand(max_cost):
    # a 1 x 9 strip of resistance 1, 4 neighbours, cell 1: label 1 at column 0, label 2 at column 8.  From 1, column
    # c costs c (up to the cutoff); label 1's region is columns 0..4 (h1 = c there), and the search from its edge
    # gives columns 5..8 the same costs as a search that expands the region: by hand, and the same arrays
    res = np.ones((1, 9))
    src = np.zeros((1, 9), dtype=np.int32)
    src[0, 0], src[0, 8] = 1, 2
    everyone = cost_distance(res, src, cell_size_m=1.0, connectivity=4)
    prep = prepare_search(res, src, cell_size_m=1.0, connectivity=4)
    bound = SearchBound(everyone.cost, 20.0, allocation=everyone.allocation)
    want = [float(c) if c <= max_cost else np.inf for c in range(9)]
    for own in (False, True):
        cost, (_, c0), box, _ = single_source_window(prep, 1, cell_size_m=1.0, max_cost=max_cost, bound=bound, own_region=own)
        got = np.full(9, np.inf)
        got[c0 : box[3]] = cost[0]
        assert got.tolist() == want


def test_seeds_beyond_the_largest_ring_go_to_the_heap():
    # the ring grows to hold the seeds' buckets, up to _MAX_BUCKETS; beyond, the heap holds them, least cost first
    from leopardgeo.kernels._costdist_compiled import _N_STATE, _ST_LIVE, _ST_SIZE, _seeded_queue

    seeds, costs = np.array([7, 3]), np.array([100.0, 0.5])
    state = np.zeros(_N_STATE, dtype=np.int64)
    n_buckets, _, _, head, fill, _, _ = _seeded_queue(state, seeds, costs, 1.0, 4, np.int32)
    assert n_buckets == 102 and state[_ST_LIVE] == 2 and fill[0] == 1 and fill[100] == 1 and head.size == 102
    state = np.zeros(_N_STATE, dtype=np.int64)
    with mock.patch.object(_costdist_compiled, "_MAX_BUCKETS", 50):
        n_buckets, _, _, _, _, hkey, hnode = _seeded_queue(state, seeds, costs, 1.0, 4, np.int32)
    assert n_buckets == 0 and state[_ST_SIZE] == 2 and hkey[:2].tolist() == [0.5, 100.0] and hnode[:2].tolist() == [3, 7]
