from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.sparse import coo_matrix, csgraph

import geopandas as gpd
import shapely

from leopardgeo.core.errors import DataError, SmallPatchWarning
from leopardgeo.core.grid import Grid
from leopardgeo.stages.patches import extract_patches, label_cores

CRS = "EPSG:32652"


def grid_for(shape, cell=100.0):
    return Grid.from_bounds((0, 0, shape[1] * cell, shape[0] * cell), cell_size_m=cell, crs=CRS)


def _components_by_csgraph(mask, connectivity):
    """Independent reference: connected components of the explicit cell graph (scipy.sparse.csgraph)."""
    rows, cols = mask.shape
    idx = np.arange(mask.size).reshape(mask.shape)
    offsets = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if connectivity == 8 else [])
    a, b = [], []
    for dr, dc in offsets:
        r0, r1 = max(0, -dr), rows - max(0, dr)
        c0, c1 = max(0, -dc), cols - max(0, dc)
        src = idx[r0:r1, c0:c1]
        dst = idx[r0 + dr : r1 + dr, c0 + dc : c1 + dc]
        both = mask[r0:r1, c0:c1] & mask[r0 + dr : r1 + dr, c0 + dc : c1 + dc]
        a.append(src[both])
        b.append(dst[both])
    a, b = np.concatenate(a), np.concatenate(b)
    g = coo_matrix((np.ones(len(a)), (a, b)), shape=(mask.size, mask.size))
    _, comp = csgraph.connected_components(g, directed=False)
    return len(np.unique(comp[mask.ravel()]))


@settings(max_examples=60, deadline=None)
@given(mask=arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12))), conn=st.sampled_from([4, 8]))
def test_labels_match_csgraph_components(mask, conn):
    _, n = label_cores(mask, connectivity=conn)
    assert n == _components_by_csgraph(mask, conn)


@settings(max_examples=40, deadline=None)
@given(
    suit=arrays(np.float32, st.tuples(st.integers(2, 15), st.integers(2, 15)), elements=st.floats(0, 1, width=32)),
    thr=st.floats(0.05, 0.95),
    min_cells=st.integers(0, 6),
    cell=st.sampled_from([30.0, 100.0, 500.0]),
)
def test_patch_areas_sum_to_cell_count(suit, thr, min_cells, cell):
    g = grid_for(suit.shape, cell)
    min_area = min_cells * g.cell_area_ha
    try:
        labels, p = extract_patches(suit, g, min_suitability=thr, min_area_ha=min_area)
    except DataError:
        assert not (suit >= thr).any() or min_cells > 1
        return
    # sum of area_ha equals cell count x cell area
    assert p["area_ha"].sum() == pytest.approx((labels > 0).sum() * cell * cell / 10_000)
    # polygon areas match area_ha (exact cell outlines)
    np.testing.assert_allclose(p.geometry.area / 10_000, p["area_ha"], rtol=1e-9)
    # every patch cell is habitat, every patch reaches the minimum area, ids 1..n by decreasing size
    assert (suit[labels > 0] >= thr).all()
    assert (p["area_ha"] >= min_area - 1e-9).all()
    assert list(p["patch_id"]) == list(range(1, len(p) + 1))
    assert (np.diff(p["area_ha"]) <= 0).all()


def test_hand_worked_example():
    s = np.array(
        [
            [0.9, 0.8, 0.0, 0.0, 0.0, 0.0],
            [0.7, 0.6, 0.0, 0.0, 0.9, 0.9],
            [0.0, 0.0, 0.0, 0.0, 0.9, 0.9],
            [0.6, 0.0, 0.0, 0.0, 0.9, 0.0],
        ],
        dtype="float32",
    )
    g = grid_for(s.shape, 100.0)  # 1 ha cells
    labels, p = extract_patches(s, g, min_suitability=0.5, min_area_ha=2)
    # right block: 5 cells, mean 0.9 -> patch 1; left block: 4 cells, mean (0.9+0.8+0.7+0.6)/4 = 0.75 -> patch 2;
    # the lone 0.6 cell (1 ha) is below 2 ha and dropped
    assert p[["patch_id", "n_cells", "area_ha"]].to_numpy().tolist() == [[1, 5, 5.0], [2, 4, 4.0]]
    np.testing.assert_allclose(p["mean_quality"], [0.9, 0.75], rtol=1e-6)
    assert labels[3, 0] == 0 and labels[0, 0] == 2 and labels[1, 4] == 1


def test_nodata_is_never_a_patch():
    s = np.full((4, 4), 0.9, dtype="float32")
    s[:, 2] = np.nan
    labels, p = extract_patches(s, grid_for(s.shape), min_area_ha=0)
    assert len(p) == 2 and (labels[:, 2] == 0).all()


def test_no_patch_is_a_clear_error():
    with pytest.raises(DataError, match="Lower \\[patches\\] min_suitability or min_area_ha"):
        extract_patches(np.full((3, 3), 0.2), grid_for((3, 3)), min_suitability=0.5)


def _pa(geoms, names):
    return gpd.GeoDataFrame({"NAME": names}, geometry=geoms, crs=CRS)


def test_protected_areas_merge_and_separate():
    s = np.zeros((4, 8), dtype="float32")
    s[:, :3] = 0.9  # habitat block, columns 0-2
    s[:, 3:] = 0.3  # poor habitat
    g = grid_for(s.shape)  # 400 m x 800 m, 1 ha cells
    pa = _pa([shapely.box(300, 0, 500, 400)], ["Park"])  # columns 3-4, touching the block
    _, p = extract_patches(s, g, min_area_ha=1, protected_areas=pa, protected_mode="merge")
    assert len(p) == 1 and p.loc[0, "name"] == "Park" and p.loc[0, "area_ha"] == 20
    assert p.loc[0, "protected_frac"] == pytest.approx(8 / 20) and p.loc[0, "kind"] == "habitat+protected"
    _, p = extract_patches(s, g, min_area_ha=1, protected_areas=pa, protected_mode="separate")
    assert sorted(p["area_ha"]) == [8, 12]
    assert p.set_index("kind").loc["protected", "name"] == "Park"
    _labels, p = extract_patches(s, g, min_area_ha=1, protected_areas=pa, protected_mode="ignore")
    assert len(p) == 1 and p.loc[0, "area_ha"] == 12 and p.loc[0, "name"] == ""


def test_small_protected_area_is_kept_with_a_warning():
    s = np.full((4, 8), 0.1, dtype="float32")
    pa = _pa([shapely.box(0, 0, 200, 200)], ["Tiny reserve"])
    with pytest.warns(SmallPatchWarning, match="smaller than min_area_ha"):
        _, p = extract_patches(s, grid_for(s.shape), min_area_ha=100, protected_areas=pa)
    assert p["name"].tolist() == ["Tiny reserve"] and p["area_ha"].tolist() == [4.0]


def test_split_by_country_and_country_fractions():
    s = np.full((4, 6), 0.9, dtype="float32")
    g = grid_for(s.shape)
    countries = gpd.GeoDataFrame(
        {"iso3": ["RUS", "CHN"]}, geometry=[shapely.box(0, 0, 200, 400), shapely.box(200, 0, 600, 400)], crs=CRS
    )
    _, p = extract_patches(s, g, min_area_ha=1, countries=countries)
    assert sorted(zip(p["country"], p["area_ha"], strict=True)) == [("CHN", 16.0), ("RUS", 8.0)]
    assert set(p.loc[p["country"] == "CHN", "frac_chn"]) == {1.0}
    _labels, p = extract_patches(s, g, min_area_ha=1, countries=countries, split_by_country=False)
    assert len(p) == 1 and p.loc[0, "country"] == "CHN"
    assert p.loc[0, "frac_rus"] == pytest.approx(8 / 24) and p.loc[0, "frac_chn"] == pytest.approx(16 / 24)
