"""Least-cost corridors: checked against a brute-force scipy Dijkstra reference and hand-worked strips."""

from __future__ import annotations

import math
from unittest import mock

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import ndimage

import shapely
from rasterio.features import rasterize

from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.stages import corridors
from leopardgeo.stages.corridors import TABLE_COLUMNS, add_corridor_attributes, least_cost_corridors
from leopardgeo.stages.graph import build_graph
from test_costdist import grid_graph, scipy_cost
from test_graph import patches_from_mask

CELL = 100.0
D = CELL * math.sqrt(2) * 1.5  # a diagonal step between resistances 1 and 2


# ----------------------------------------------------------------------------- independent reference
def reference(res, labels, pairs, connectivity, *, width_cwd=None, width_fraction=0.1):
    """Per link (scipy Dijkstra from each patch alone, no cutoff): LCD, width and the full-grid corridor value."""
    graph = grid_graph(res, CELL, connectivity)
    ids = sorted({p for pair in pairs for p in pair})
    cwd = {p: scipy_cost(graph, res, labels, [p]) for p in ids}  # inf unreachable and on no data
    out = {}
    for a, b in pairs:
        lcd = float(np.min(cwd[a][labels == b]))
        width = width_cwd if width_cwd is not None else width_fraction * lcd
        with np.errstate(invalid="ignore"):
            value = cwd[a] + cwd[b] - lcd
        out[(a, b)] = (lcd, width, value)
    return out


def full_mask(win, shape):
    m = np.zeros(shape, bool)
    m[win.rows, win.cols] = win.mask
    return m


def reference_width(mask, value, lcd, labels, ends):
    """Narrowest 2 x edt - cell over the cells of the (unique) least-cost path outside the end patches."""
    on_path = (value <= 1e-9 * lcd) & ~np.isin(labels, ends)
    if not on_path.any():
        return math.nan
    edt = ndimage.distance_transform_edt(np.pad(mask, 1), sampling=CELL)[1:-1, 1:-1]
    return float(np.min(2 * edt[on_path] - CELL))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    share=st.sampled_from([0.3, 0.7, 1.0]),
    cell=st.sampled_from([1.0, 30.0, 500.0]),
)
def test_narrowest_width_is_that_of_scipys_distance_transform(seed, shape, share, cell):
    # any corridor mask and any cells on it (the grid's edge counts as outside): 2 x edt - cell at the narrowest
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < share
    assume(mask.any())
    labels = np.where(rng.random(shape) < 0.2, 1, 0)  # cells of an end patch do not count
    cells = np.argwhere(mask)[rng.permutation(int(mask.sum()))[: rng.integers(1, int(mask.sum()) + 1)]]
    got = corridors._narrowest_width(mask, cells, labels, (1, 2), cell)
    on = np.zeros(shape, bool)
    on[cells[:, 0], cells[:, 1]] = True
    on &= labels != 1
    if not on.any():
        assert math.isnan(got)
        return
    edt = ndimage.distance_transform_edt(np.pad(mask, 1), sampling=cell)[1:-1, 1:-1]
    assert got == pytest.approx(float(np.min(2 * edt[on] - cell)), rel=1e-12)


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    width=st.sampled_from([0.0, 0.5, 3.0, 50.0]),
)
def test_least_sums_and_their_box_are_numpys(seed, shape, width):
    # two searches' costs with no data (NaN) and cells beyond a cutoff (inf): the least finite sum, and the box of
    # the cells within ``width`` of it, as numpy finds them cell by cell
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 20, shape).astype(float), rng.integers(0, 20, shape).astype(float) / 4
    a[rng.random(shape) < 0.2] = np.nan
    a[rng.random(shape) < 0.2] = np.inf
    b[rng.random(shape) < 0.2] = np.inf
    lcd, row, col, at_r, at_c = corridors._least_sums(a, b)
    total = a + b
    finite = np.isfinite(total)
    if not finite.any():
        assert lcd == np.inf and (at_r, at_c) == (-1, -1)
        return
    assert lcd == total[finite].min()
    assert (at_r, at_c) == np.unravel_index(int(np.argmin(np.where(finite, total, np.inf))), shape)  # the first least
    rows, cols = np.nonzero(finite & ((total - lcd) <= width))
    expected = (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1)
    assert corridors._within_box(row, col, float(lcd), width) == expected


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_links=st.integers(1, 6))
def test_corridor_values_make_numpys_mosaic_whatever_the_order(seed, n_links):
    # windows of several links, some values tied: taken in any order, the mosaic holds numpy's least value per cell
    # and the first link (in link order) giving it
    rng = np.random.default_rng(seed)
    shape = (7, 8)
    links = []
    for _ in range(n_links):
        r0, c0 = rng.integers(0, 4), rng.integers(0, 4)
        h, w = rng.integers(1, 4), rng.integers(1, 5)
        a = rng.integers(0, 6, (h, w)).astype(float)  # small integers: ties between links
        b = rng.integers(0, 6, (h, w)).astype(float)
        a[rng.random((h, w)) < 0.2] = np.nan
        links.append((r0, c0, a, b, float(rng.integers(0, 3)), float(rng.integers(0, 6))))
    want = np.full(shape, np.inf)
    want_index = np.zeros(shape, dtype=np.int32)
    for k, (r0, c0, a, b, lcd, width) in enumerate(links, start=1):  # link order, strictly lower wins
        v = (a + b) - lcd
        for i, j in zip(*np.nonzero(v <= width), strict=True):
            if v[i, j] < want[r0 + i, c0 + j]:
                want[r0 + i, c0 + j], want_index[r0 + i, c0 + j] = v[i, j], k
    best = np.full(shape, np.inf)
    index = np.zeros(shape, dtype=np.int32)
    for k in rng.permutation(n_links):
        r0, c0, a, b, lcd, width = links[k]
        res = rng.uniform(1, 100, a.shape).astype(np.float32)
        prot = rng.random(a.shape) < 0.5 if k % 2 else np.zeros((0, 0), dtype=bool)  # with and without protected areas
        measures = bool(rng.random() < 0.7)  # without: the same mask, count and mosaic, and nothing else
        inside, value32, n, res_in, n_prot = corridors._corridor_values(
            a, b, lcd, width, best, index, r0, c0, int(k) + 1, res, prot, measures
        )
        v = (a + b) - lcd
        np.testing.assert_array_equal(inside, v <= width)
        assert n == np.count_nonzero(v <= width)
        if measures:
            np.testing.assert_array_equal(value32, np.where(v <= width, v, np.nan).astype(np.float32))
            assert res_in.dtype == np.float32 and res_in.tobytes() == res[v <= width].tobytes()  # numpy's order
            assert n_prot == (np.count_nonzero(prot & (v <= width)) if prot.size else 0)
        else:
            assert value32.shape == (0, 0) and res_in.size == 0 and n_prot == 0
    np.testing.assert_array_equal(best, want)
    np.testing.assert_array_equal(index, want_index)
    # the float32 map of that mosaic, as numpy makes it (NaN outside every corridor)
    best[0, 0] = -np.inf  # never in a mosaic, but not finite either
    got = corridors._mosaic_float32(best)
    assert got.tobytes() == np.where(np.isfinite(best), best, np.nan).astype(np.float32).tobytes()


@st.composite
def corridor_cases(draw):
    nr, nc = draw(st.integers(5, 11)), draw(st.integers(5, 11))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    res = rng.uniform(1.0, 30.0, (nr, nc))
    res[rng.random((nr, nc)) < draw(st.sampled_from([0.0, 0.1]))] = np.nan
    mask = np.zeros((nr, nc), bool)
    for _ in range(draw(st.integers(3, 5))):
        r, c = rng.integers(nr), rng.integers(nc)
        mask[r : r + rng.integers(1, 3), c : c + rng.integers(1, 3)] = True
    mask &= np.isfinite(res)
    assume(mask.any())  # no-data can cover every patch cell: no patch, nothing to test
    protected = rng.random((nr, nc)) < 0.4
    width = draw(st.sampled_from([("fraction", 0.05), ("fraction", 0.5), ("fraction", 2.0), ("cwd", 300.0), ("cwd", 3000.0)]))
    return res, mask, protected, draw(st.sampled_from([4, 8, 16])), draw(st.sampled_from(["planar", "cutoff"])), width


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(case=corridor_cases())
def test_corridors_equal_brute_force_scipy_reference(case):
    res, mask, protected, conn, rule, (kind, w) = case
    g, labels, p = patches_from_mask(mask)
    assume(3 <= len(p) <= 5)
    G, _ = build_graph(res, labels, p, g, rule=rule, connectivity=conn)
    assume(G.number_of_edges() > 0)
    width = {"width_cwd": w} if kind == "cwd" else {"width_fraction": w}
    with mock.patch.object(corridors, "single_source_window", wraps=corridors.single_source_window) as spy:
        out = least_cost_corridors(res, labels, G, g, connectivity=conn, protected=protected, workers=2, **width)

    pairs = sorted(tuple(sorted(e)) for e in G.edges)
    ref = reference(res, labels, pairs, conn, **width)

    # every patch with a link is searched once, with a finite cutoff between what its links need (from scipy's
    # least-cost distances) and what the graph's cwds say they may need (a link's reach is lowered to its least-cost
    # distance plus the width once a search has reached one end from the other)
    searched = [call.args[1] for call in spy.call_args_list]
    assert sorted(searched) == sorted({q for pair in pairs for q in pair})
    for call in spy.call_args_list:
        q, cut = call.args[1], call.kwargs["max_cost"]
        said = max(G.edges[pair]["cwd"] + (w if kind == "cwd" else w * G.edges[pair]["cwd"]) for pair in pairs if q in pair)
        need = max(ref[pair][0] + ref[pair][1] for pair in pairs if q in pair)
        assert cut is not None and need * (1 - 1e-6) <= cut <= said * (1 + 1e-6)

    # the table: one row per link, LCD from scipy
    assert list(zip(out.table["patch_a"], out.table["patch_b"], strict=True)) == pairs
    assert list(out.table.columns) == [*TABLE_COLUMNS, "geometry"]
    scale = max(lcd for lcd, _, _ in ref.values())
    expected = np.full(res.shape, np.inf)
    boundary = np.zeros(res.shape, bool)  # cells whose value is (to rounding) exactly a link's width: skip
    for i, pair in enumerate(pairs):
        lcd, wd, value = ref[pair]
        row = out.table.iloc[i]
        assert row["cwd"] == pytest.approx(lcd, rel=1e-9)
        assert row["width_cwd"] == pytest.approx(wd, rel=1e-9)
        with np.errstate(invalid="ignore"):
            keep = value <= wd
            boundary |= np.abs(value - wd) <= 1e-9 * scale
        expected = np.where(keep, np.minimum(expected, value), expected)

        # the link's window is exactly its truncated corridor; values match scipy
        win = out.windows[pair]
        got = full_mask(win, res.shape)
        np.testing.assert_array_equal(got & ~boundary, keep & ~boundary)
        np.testing.assert_allclose(win.value[win.mask], value[win.rows, win.cols][win.mask], rtol=1e-6, atol=1e-6 * scale)
        assert np.isnan(win.value[~win.mask]).all()
        n = int(got.sum())
        assert row["n_cells"] == n
        assert row["area_ha"] == pytest.approx(n * g.cell_area_ha)
        assert row["mean_resistance"] == pytest.approx(np.mean(res[got]), rel=1e-9)
        assert row["protected_frac"] == pytest.approx(np.mean(protected[got]), rel=1e-9)

        # polygons: valid, exact cell outlines of the corridor
        geom = row["geometry"]
        assert geom.geom_type == "MultiPolygon" and geom.is_valid
        assert geom.area == pytest.approx(row["area_ha"] * 1e4)
        back = rasterize([(geom, 1)], out_shape=res.shape, transform=g.transform, fill=0, dtype="uint8").astype(bool)
        np.testing.assert_array_equal(back, got)

        # 0 on the least-cost path: the graph's path when its cwd is the least-cost distance
        if G.edges[pair]["cwd"] <= lcd * (1 + 1e-9):
            xy = shapely.get_coordinates(G.edges[pair]["geometry"])
            rows, cols = ((g.transform.f - xy[:, 1]) // CELL).astype(int), ((xy[:, 0] - g.transform.c) // CELL).astype(int)
            full = np.full(res.shape, np.nan, np.float32)
            full[win.rows, win.cols] = win.value
            assert np.all(np.abs(full[rows, cols]) <= 1e-9 * lcd)

        # narrowest width across the least-cost path (random resistances: the path is unique)
        ref_w = reference_width(keep, value, lcd, labels, pair)
        if math.isnan(ref_w):
            assert math.isnan(row["corridor_width_m"])
        else:
            assert row["corridor_width_m"] == pytest.approx(ref_w, rel=1e-9)

    # the mosaic is the minimum over links; link_index points at a link attaining it
    ok = ~boundary
    want = np.where(np.isfinite(expected), expected, np.nan)
    np.testing.assert_array_equal(np.isnan(out.normalised[ok]), np.isnan(want[ok]))
    fin = ok & np.isfinite(want)
    np.testing.assert_allclose(out.normalised[fin], want[fin], rtol=1e-6, atol=1e-6 * scale)
    assert out.normalised.dtype == np.float32 and out.link_index.dtype == np.int32
    assert ((out.link_index == 0) == np.isnan(out.normalised)).all()
    for r, c in zip(*np.nonzero(fin & (out.link_index > 0)), strict=True):
        _, _, value = ref[pairs[out.link_index[r, c] - 1]]
        assert value[r, c] == pytest.approx(want[r, c], rel=1e-6, abs=1e-6 * scale)


def same_corridors(x, y) -> None:
    """Bit for bit the same corridor result (maps, table, windows)."""
    assert x.normalised.tobytes() == y.normalised.tobytes()
    np.testing.assert_array_equal(x.link_index, y.link_index)
    assert x.table.drop(columns="geometry").to_csv() == y.table.drop(columns="geometry").to_csv()
    assert [None if v is None else v.wkb for v in x.table.geometry] == [None if v is None else v.wkb for v in y.table.geometry]
    assert list(x.windows) == list(y.windows)
    for k, w in x.windows.items():
        v = y.windows[k]
        assert (w.rows, w.cols) == (v.rows, v.cols)
        np.testing.assert_array_equal(w.mask, v.mask)
        assert w.value.tobytes() == v.value.tobytes()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(case=corridor_cases())
def test_pruned_searches_give_the_unpruned_corridors_bit_for_bit(case):
    # windowed searches are never pruned; whole-grid ones are, with the costs of the patches searched before and
    # with the cost distance from all patches (a lower bound of each patch's), on one thread or several
    res, mask, protected, conn, rule, (kind, w) = case
    g, labels, p = patches_from_mask(mask)
    assume(3 <= len(p) <= 5)
    G, one_pass = build_graph(res, labels, p, g, rule=rule, connectivity=conn)
    assume(G.number_of_edges() > 0)
    width = {"width_cwd": w} if kind == "cwd" else {"width_fraction": w}
    args = (res, labels, G, g)
    ref = least_cost_corridors(*args, connectivity=conn, protected=protected, workers=1, windowed=True, **width)
    bounds = [(None, None, None), (one_pass.cost, None, None), (one_pass.cost, one_pass.allocation, None)]
    if one_pass.crossings is not None:  # a planar graph's crossings: the allocation is not scanned again
        bounds.append((one_pass.cost, one_pass.allocation, one_pass.crossings))
    for workers in (1, 2):
        for low, alloc, crossings in bounds:  # with its allocation, a search learns a link's distance on entering it
            out = least_cost_corridors(
                *args, connectivity=conn, protected=protected, workers=workers, windowed=False, lower_bound=low,
                lower_bound_allocation=alloc, lower_bound_crossings=crossings, **width,
            )  # fmt: skip
            same_corridors(out, ref)
    # without the measures or outlines (ensemble draws): the same maps, masks and table, less those columns
    lean = least_cost_corridors(
        *args, connectivity=conn, protected=protected, workers=1, windowed=False, lower_bound=one_pass.cost,
        lower_bound_allocation=one_pass.allocation, polygons=False, measures=False, **width,
    )  # fmt: skip
    assert lean.normalised.tobytes() == ref.normalised.tobytes()
    np.testing.assert_array_equal(lean.link_index, ref.link_index)
    skip = ["geometry", "mean_resistance", "protected_frac"]
    assert lean.table.drop(columns=skip).to_csv() == ref.table.drop(columns=skip).to_csv()
    assert lean.table[skip[1:]].isna().all().all() and lean.table.geometry.isna().all()
    assert list(lean.windows) == list(ref.windows)
    for k, w in lean.windows.items():
        assert (w.rows, w.cols) == (ref.windows[k].rows, ref.windows[k].cols) and w.value.shape == (0, 0)
        np.testing.assert_array_equal(w.mask, ref.windows[k].mask)
    # graph cwds far above the least-cost distances (links kept off other patches, or a planar upper bound): the
    # whole-grid searches lower each link's reach once they reach its other patch; the windowed ones keep the graph's
    for _, _, d in G.edges(data=True):
        d["cwd"] *= 3.0
    ref = least_cost_corridors(*args, connectivity=conn, protected=protected, workers=1, windowed=True, **width)
    for workers in (1, 2):
        for alloc in (None, one_pass.allocation):
            out = least_cost_corridors(
                *args, connectivity=conn, protected=protected, workers=workers, windowed=False, lower_bound=one_pass.cost,
                lower_bound_allocation=alloc, **width,
            )  # fmt: skip
            same_corridors(out, ref)


def test_lower_bound_of_the_wrong_shape_is_refused():
    res, g, labels, G = one_wide_strip(8)
    with pytest.raises(DataError, match="lower_bound: expected a float raster"):
        least_cost_corridors(res, labels, G, g, windowed=False, lower_bound=np.zeros((2, 2)))
    mask = labels > 0
    _, labels2, p = patches_from_mask(mask)
    assert np.array_equal(labels2, labels)
    _, one_pass = build_graph(res, labels, p, g)
    low = one_pass.cost
    swapped = np.where(one_pass.allocation > 0, 3 - one_pass.allocation, 0)  # the two patches' allocations swapped
    wrong = [(np.zeros((2, 2), dtype=np.int32), "int32 of shape"), (swapped, "a raster that does not allocate each patch cell")]
    for alloc, found in wrong:
        with pytest.raises(DataError, match=f"lower_bound_allocation: expected .*found {found}"):
            least_cost_corridors(res, labels, G, g, windowed=False, lower_bound=low, lower_bound_allocation=alloc)
    with pytest.raises(DataError, match=r"lower_bound_crossings: expected the \(3, 3\) matrix .*found shape \(2, 2\)"):
        least_cost_corridors(
            res, labels, G, g, windowed=False, lower_bound=low, lower_bound_allocation=one_pass.allocation,
            lower_bound_crossings=np.zeros((2, 2)),
        )  # fmt: skip


# ----------------------------------------------------------------------------- hand-worked strips
def one_wide_strip(n=8):
    """Row 1 of a 3 x n grid is passable (resistance 1..n), the rest no data; patches at both ends of it."""
    res = np.full((3, n), np.nan)
    res[1] = np.arange(1, n + 1)
    mask = np.zeros((3, n), bool)
    mask[1, [0, n - 1]] = True
    g, labels, p = patches_from_mask(mask)
    G, _ = build_graph(res, labels, p, g)
    return res, g, labels, G


def three_wide_strip():
    """5 x 11 grid, no data all around rows 1..3 x cols 1..9; middle row resistance 1, outer rows 2.

    Patches: column 1 and column 9 (three cells each).  The least-cost path is the middle row, LCD = 8 x 100.
    By hand, corridor values (cwd_a + cwd_b - 800) with D = a diagonal step between resistances 1 and 2:
    middle row 0; the outer cells of the patches D - 100; outer row at columns 2 and 8: D (200 along the
    row to one side, 600 + D to the other); outer row at columns 3..7: 2 D - 200.
    """
    res = np.full((5, 11), np.nan)
    res[1:4, 1:10] = 2.0
    res[2, 1:10] = 1.0
    mask = np.zeros((5, 11), bool)
    mask[1:4, [1, 9]] = True
    g, labels, p = patches_from_mask(mask)
    G, _ = build_graph(res, labels, p, g)
    value = np.full((5, 11), np.nan)
    value[2, 1:10] = 0.0
    value[[1, 3], 1] = value[[1, 3], 9] = D - 100
    value[[1, 3], 2] = value[[1, 3], 8] = D
    value[1:4:2, 3:8] = 2 * D - 200
    return res, g, labels, G, value


def test_one_cell_wide_strip_by_hand():
    res, g, labels, G = one_wide_strip(8)
    protected = np.zeros(res.shape, bool)
    protected[1, :4] = True  # the left half of the corridor
    out = least_cost_corridors(res, labels, G, g, protected=protected)
    ((_, row),) = out.table.iterrows()
    # one row only: every cell is on the least-cost path, value 0
    assert row["cwd"] == pytest.approx(sum(100 * (k + k + 1) / 2 for k in range(1, 8)))
    assert row["corridor_width_m"] == pytest.approx(100.0)  # one cell
    assert row["n_cells"] == 8 and row["area_ha"] == pytest.approx(8.0)
    assert row["mean_resistance"] == pytest.approx(4.5)  # (1 + ... + 8) / 8
    assert row["protected_frac"] == pytest.approx(0.5)
    np.testing.assert_array_equal(out.normalised[1], np.zeros(8, np.float32))
    assert np.isnan(out.normalised[[0, 2]]).all()
    np.testing.assert_array_equal(out.link_index, np.where(np.isfinite(res), 1, 0))
    assert math.isnan(least_cost_corridors(res, labels, G, g).table.loc[0, "protected_frac"])


@pytest.mark.parametrize(
    ("width", "n_cells", "width_m", "mean_res"),
    [
        ({"width_cwd": 100.0}, 9, 100.0, 1.0),  # the middle row only
        ({"width_fraction": 0.2}, 13, 100.0, (9 + 4 * 2) / 13),  # W = 160: + the patches' outer cells (D - 100)
        ({"width_cwd": 160.0}, 13, 100.0, (9 + 4 * 2) / 13),  # the same width given in cost units
        ({"width_fraction": 0.27}, 17, 100.0, (9 + 8 * 2) / 17),  # W = 216: + the outer row at columns 2 and 8 (D)
        ({"width_cwd": 300.0}, 27, 300.0, (9 + 18 * 2) / 27),  # the whole strip: 3 cells wide
    ],
)
def test_three_cell_wide_strip_by_hand(width, n_cells, width_m, mean_res):
    res, g, labels, G, value = three_wide_strip()
    out = least_cost_corridors(res, labels, G, g, **width)
    w = width.get("width_cwd", width.get("width_fraction", 0) * 800)
    expected = np.where(value <= w, value, np.nan)
    np.testing.assert_allclose(out.normalised, expected, rtol=1e-6, atol=1e-9)
    row = out.table.iloc[0]
    assert row["cwd"] == pytest.approx(800.0) and row["width_cwd"] == pytest.approx(w)
    assert row["n_cells"] == n_cells and row["area_ha"] == pytest.approx(n_cells * 1.0)
    assert row["corridor_width_m"] == pytest.approx(width_m)
    assert row["mean_resistance"] == pytest.approx(mean_res)
    win = out.windows[(1, 2)]
    assert (win.rows, win.cols) == ((slice(2, 3) if n_cells == 9 else slice(1, 4)), slice(1, 10))


def test_graph_cwd_above_the_least_cost_distance_or_no_path_geometry():
    # a planar link may carry an upper-bound cwd and a path that is not least-cost: the corridor uses the
    # least-cost distance found by the searches and retraces the least-cost path (the middle row) for the width
    res, g, labels, G, value = three_wide_strip()
    top_row = shapely.LineString(np.column_stack(g.xy(np.ones(9, int), np.arange(1, 10))))
    G.edges[1, 2].update(cwd=850.0, geometry=top_row)
    out = least_cost_corridors(res, labels, G, g, width_cwd=300.0)
    assert out.table.loc[0, "cwd"] == pytest.approx(800.0)
    assert out.table.loc[0, "corridor_width_m"] == pytest.approx(300.0)  # measured on the middle row, not the top row
    np.testing.assert_allclose(out.normalised, value, rtol=1e-6, atol=1e-9)
    G.edges[1, 2].update(cwd=800.0)  # right cwd, but the path's cells are not on the least-cost path
    assert least_cost_corridors(res, labels, G, g, width_cwd=300.0).table.loc[0, "corridor_width_m"] == pytest.approx(300.0)
    del G.edges[1, 2]["geometry"]
    assert least_cost_corridors(res, labels, G, g, width_cwd=300.0).table.loc[0, "corridor_width_m"] == pytest.approx(300.0)


def test_touching_patches_have_no_width_and_mosaic_takes_the_cheaper_link():
    # patches 1 | 2 touch; patch 3 further right: link 1-2 has no path cell outside its patches
    res = np.ones((1, 6))
    mask = np.array([[True, True, False, False, False, True]])
    g, _, _ = patches_from_mask(mask)
    labels = np.array([[1, 2, 0, 0, 0, 3]], dtype=np.int32)  # split the first group in two patches by hand
    G = nx.Graph(crs=g.crs, connectivity=8)
    G.add_edge(1, 2, cwd=100.0)
    G.add_edge(2, 3, cwd=400.0)
    G.add_edge(1, 3, cwd=500.0)
    out = least_cost_corridors(res, labels, G, g, width_cwd=1.0)
    t = out.table.set_index(["patch_a", "patch_b"])
    assert math.isnan(t.loc[(1, 2), "corridor_width_m"])
    assert t.loc[(2, 3), "corridor_width_m"] == pytest.approx(100.0)
    assert np.all(out.normalised == 0)
    # ties: the first link in table order (1-2, 1-3, 2-3) wins
    np.testing.assert_array_equal(out.link_index, [[1, 1, 2, 2, 2, 2]])


# ----------------------------------------------------------------------------- graph attributes, edge cases
def test_add_corridor_attributes_and_non_finite_links():
    res, g, labels, G, _ = three_wide_strip()
    G.add_node(3)
    labels = labels.copy()
    labels[2, 5] = 3  # a third patch in the middle of the strip
    G.add_edge(1, 3, cwd=math.inf)  # unreachable link: no corridor
    out = least_cost_corridors(res, labels, G, g, width_cwd=100.0)
    assert list(zip(out.table["patch_a"], out.table["patch_b"], strict=True)) == [(1, 2)]
    add_corridor_attributes(G, out)
    d = G.edges[1, 2]
    assert d["corridor_width_m"] == pytest.approx(100.0) and d["corridor_area_ha"] == pytest.approx(9.0)
    assert d["corridor_mean_resistance"] == pytest.approx(1.0) and math.isnan(d["protected_frac"])
    assert all(math.isnan(G.edges[1, 3][k]) for k in ("corridor_width_m", "corridor_area_ha"))
    H = nx.Graph()
    H.add_edge(1, 3)
    with pytest.raises(DataError, match="1-2 that are not links"):
        add_corridor_attributes(H, out)


def test_graph_without_links_gives_empty_outputs():
    res, g, labels, G, _ = three_wide_strip()
    G.remove_edges_from(list(G.edges))
    out = least_cost_corridors(res, labels, G, g)
    assert np.isnan(out.normalised).all() and out.normalised.dtype == np.float32
    assert not out.link_index.any() and out.link_index.dtype == np.int32
    assert len(out.table) == 0 and list(out.table.columns) == [*TABLE_COLUMNS, "geometry"]
    assert out.table.crs == g.crs and out.windows == {}


def test_errors():
    res, g, labels, G, _ = three_wide_strip()
    with pytest.raises(DataError, match=r"resistance: expected the grid's shape \(5, 11\), found \(5, 10\)"):
        least_cost_corridors(res[:, :10], labels, G, g)
    with pytest.raises(DataError, match="patch_labels: expected the grid's shape"):
        least_cost_corridors(res, labels[:4], G, g)
    with pytest.raises(DataError, match="patch_labels: expected an integer raster"):
        least_cost_corridors(res, labels.astype(float), G, g)
    with pytest.raises(DataError, match="protected: expected a bool raster of the grid's shape"):
        least_cost_corridors(res, labels, G, g, protected=np.zeros((2, 2), bool))
    with pytest.raises(DataError, match="protected: expected a bool raster"):
        least_cost_corridors(res, labels, G, g, protected=np.full(res.shape, 2))
    for bad in (0.0, -5.0, math.nan, math.inf):
        with pytest.raises(ConfigError, match=r"\[corridors\] width_cwd: expected a positive finite number"):
            least_cost_corridors(res, labels, G, g, width_cwd=bad)
    with pytest.raises(ConfigError, match=r"\[corridors\] width_fraction: expected a positive"):
        least_cost_corridors(res, labels, G, g, width_fraction=0)
    with pytest.raises(ConfigError, match="connectivity"):
        least_cost_corridors(res, labels, G, g, connectivity=6)
    with pytest.raises(ConfigError, match="workers"):
        least_cost_corridors(res, labels, G, g, workers=0)
    H = G.copy()
    H.add_edge(1, 99, cwd=100.0)
    with pytest.raises(DataError, match="patch id.s. 99 absent from the raster"):
        least_cost_corridors(res, labels, H, g)
    H = G.copy()
    H.edges[1, 2]["cwd"] = 500.0  # below the true 800: the cutoff would cut the corridor short
    with pytest.raises(DataError, match="expected link 1-2 to have cwd >= the least-cost distance.*found cwd 500"):
        least_cost_corridors(res, labels, H, g)


def test_a_thread_keeps_one_work_raster_for_its_next_call(monkeypatch):
    # ensemble draws on one thread reuse the whole-grid work raster of the draw before: all inf when kept, taken by
    # the next call of the same shape (the same corridors), and not kept beyond the size limit
    res, g, labels, G = one_wide_strip(8)
    corridors._KEPT.work = None
    first = least_cost_corridors(res, labels, G, g, windowed=False, workers=1)
    kept = corridors._KEPT.work
    assert kept is not None and kept.shape == res.shape and np.isinf(kept).all()
    again = least_cost_corridors(res, labels, G, g, windowed=False, workers=1)
    same_corridors(again, first)
    assert corridors._KEPT.work is kept  # taken, searched in, all inf again, kept again
    monkeypatch.setattr(corridors, "_KEEP_WORK_BYTES", kept.nbytes - 1)
    corridors._KEPT.work = None
    least_cost_corridors(res, labels, G, g, windowed=False, workers=1)
    assert corridors._KEPT.work is None
