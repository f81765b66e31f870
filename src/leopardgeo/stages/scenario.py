"""Scenario edits: roads, fences, crossing structures, development, restoration and fire, applied to the grid.

A scenario (:class:`leopardgeo.config.scenario.ScenarioConfig`) is a list of edits.  This module turns each
edit's geometry into cells of the analysis grid and changes suitability and resistance:

* **polygons** first: development raises resistance to at least ``resistance`` and multiplies suitability by
  ``habitat_factor``; restoration lowers resistance to at most ``resistance`` and raises suitability to at
  least ``habitat``; fire multiplies suitability by a factor that recovers linearly from ``habitat_factor``
  to 1 over ``years`` (evaluated ``age_years`` after the fire);
* then **lines** (roads, railways, fences) with the scenario's **gaps** cut out of them: a gap (a point or a
  line: an underpass, an overpass, a gap in a fence) removes ``width_m`` of each line it crosses, measured
  along the line, before the line is buffered to its own width and burned in (``all_touched``).  So the
  cells a gap reopens keep exactly the values they had before the line, and an opening narrower than a
  cell reopens nothing;
* an impassable line is burned at least one cell either side of its centre line (two cells across), so no
  diagonal move slips between its cells; a line with ``remove_habitat`` holds no habitat (suitability 0);
* the **border fence** (:func:`leopardgeo.stages.fence.fence_resistance`) closes every national border of
  the country raster except at its own gaps (the edit's points).

The functions take arrays on a :class:`~leopardgeo.core.grid.Grid` and GeoDataFrames already in the grid's
CRS (:func:`edit_frame` reads a file or the inline lon / lat), so they can be tested on hand-built grids.
No data (NaN) stays no data: an edit never makes water or cells outside the study area passable.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import geopandas as gpd
import shapely
from pyproj import Transformer
from rasterio.features import rasterize

from leopardgeo.config.scenario import EditConfig, EditKind, LineMode, PolygonEffect, ScenarioConfig
from leopardgeo.core.errors import DataError
from leopardgeo.core.grid import Grid

__all__ = [
    "DEFAULT_DEVELOPMENT_RESISTANCE",
    "DEFAULT_FENCE_GAP_M",
    "ScenarioEdits",
    "apply_habitat_edits",
    "apply_resistance_edits",
    "edit_frame",
    "edit_frames",
    "edits_layer",
    "fire_factor",
]

logger = logging.getLogger(__name__)

#: Resistance a development polygon raises its cells to when ``resistance = 0`` (the class-table value of
#: built-up land in the demo's land-cover table).
DEFAULT_DEVELOPMENT_RESISTANCE = 100.0
#: Width of a border-fence opening when ``width_m = 0``, metres (the ``[crossborder] gap_width_m`` default).
DEFAULT_FENCE_GAP_M = 1000.0


def _label(edit: EditConfig, i: int) -> str:
    return edit.name or f"{edit.kind.value}_{i + 1}"


def edit_frame(edit: EditConfig, grid: Grid, *, base_dir: str | Path = ".", index: int = 0) -> gpd.GeoDataFrame:
    """The edit's geometry in the grid's CRS: its file (any CRS) or its inline lon / lat ``coords``.

    Inline coordinates make one line (``line``), one point per pair (``gap``, ``border_fence``) or one ring
    (``polygon``).  A border fence without coordinates has no gaps (an empty frame).

    Raises
    ------
    DataError
        If the file's geometry types do not fit the edit (points for a polygon edit, polygons for a line),
        or the geometry does not reach the grid.

    Examples
    --------
    >>> from leopardgeo.config.scenario import EditConfig
    >>> g = Grid.from_bounds((495_000, 4_800_000, 505_000, 4_810_000), cell_size_m=1000, crs="EPSG:32652")
    >>> e = EditConfig(kind="gap", coords=[[129.0, 43.4]], width_m=100)
    >>> edit_frame(e, g).geom_type.tolist()
    ['Point']
    """
    name = _label(edit, index)
    if edit.source is not None:
        from leopardgeo.io import read_vector

        path = Path(edit.path) if Path(edit.path).is_absolute() else Path(base_dir) / edit.path
        gdf = read_vector(path, edit.layer, what=f"scenario edit {name!r}")
        gdf = gdf.to_crs(grid.crs)
    else:
        tr = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True)
        xy = [tr.transform(lon, lat) for lon, lat in edit.coords]
        if not xy:
            geoms = []
        elif edit.kind is EditKind.LINE:
            geoms = [shapely.LineString(xy)]
        elif edit.kind is EditKind.POLYGON:
            geoms = [shapely.Polygon(xy)]
        else:
            geoms = [shapely.Point(p) for p in xy]
        gdf = gpd.GeoDataFrame({"edit": [name] * len(geoms)}, geometry=geoms, crs=grid.crs)
    gdf = gdf[~(gdf.geometry.is_empty | gdf.geometry.isna())]
    types = set(gdf.geom_type.str.removeprefix("Multi"))
    allowed = {
        EditKind.LINE: {"LineString"},
        EditKind.POLYGON: {"Polygon"},
        EditKind.GAP: {"Point", "LineString"},
        EditKind.BORDER_FENCE: {"Point"},
    }[edit.kind]
    if types - allowed:
        msg = (
            f"scenario edit {name!r} ({edit.kind.value}): expected {' or '.join(sorted(allowed))} geometries, found "
            f"{', '.join(sorted(types))}. Give a layer of the right type (e.g. polygons for development or restoration)."
        )
        raise DataError(msg)
    if len(gdf) and not gdf.geometry.intersects(shapely.box(*grid.bounds)).any():
        b = gdf.total_bounds
        msg = (
            f"scenario edit {name!r}: expected it within the study area {tuple(round(v) for v in grid.bounds)}, "
            f"found it at {tuple(round(float(v)) for v in b)} ({grid.crs}). Check its coordinates (lon, lat order) or CRS."
        )
        raise DataError(msg)
    return gdf.assign(edit=name)[["edit", "geometry"]]


def edit_frames(scenario: ScenarioConfig, grid: Grid, *, base_dir: str | Path = ".") -> list[tuple[EditConfig, gpd.GeoDataFrame]]:
    """Each edit of ``scenario`` with its geometry on the grid (:func:`edit_frame`)."""
    return [(e, edit_frame(e, grid, base_dir=base_dir, index=i)) for i, e in enumerate(scenario.edits)]


def fire_factor(edit: EditConfig) -> float:
    r"""Suitability multiplier of a fire ``age_years`` after it: ``habitat_factor`` recovering linearly to 1.

    .. math:: f = h + (1 - h) \min(1, a / Y)

    Examples
    --------
    >>> import dataclasses
    >>> from leopardgeo.config.scenario import EditConfig
    >>> e = EditConfig(kind="polygon", effect="fire", coords=[[0, 0], [1, 0], [1, 1]], habitat_factor=0.2, years=10)
    >>> fire_factor(e), round(fire_factor(dataclasses.replace(e, age_years=5)), 6)
    (0.2, 0.6)
    """
    h = edit.habitat_factor
    return h + (1.0 - h) * min(1.0, edit.age_years / edit.years)


def _burn(geoms: Sequence[shapely.Geometry], grid: Grid, *, all_touched: bool) -> np.ndarray:
    geoms = [g for g in geoms if g is not None and not g.is_empty]
    if not geoms:
        return np.zeros(grid.shape, bool)
    return rasterize(
        ((g, 1) for g in geoms), out_shape=grid.shape, transform=grid.transform, fill=0, all_touched=all_touched, dtype="uint8"
    ).astype(bool)


def _line_half_width(edit: EditConfig, grid: Grid) -> float:
    half = edit.width_m / 2
    if edit.mode is LineMode.IMPASSABLE:
        half = max(half, grid.cell_size_m)  # two cells across: no diagonal (or knight's) move slips through
    return half


def _gap_cut(gaps: Sequence[tuple[EditConfig, gpd.GeoDataFrame]], grid: Grid) -> shapely.Geometry | None:
    """Union of every gap's opening: each gap geometry buffered by half its width (at least half a cell)."""
    parts = []
    for e, gdf in gaps:
        w = e.width_m if e.width_m > 0 else grid.cell_size_m
        parts.extend(shapely.buffer(gdf.geometry.to_numpy(), w / 2))
    return shapely.union_all(parts) if parts else None


@dataclass
class ScenarioEdits:
    """Where a scenario's edits fall on the grid.

    Attributes
    ----------
    barrier
        bool raster: cells of the lines and the border fence (after the gaps).
    opened
        bool raster: cells the gaps kept open (on a line without its gaps, but not with them).
    polygons
        bool raster: cells of the polygon edits.
    cells
        Cells changed by each edit, by its label.
    """

    barrier: np.ndarray
    opened: np.ndarray
    polygons: np.ndarray
    cells: dict[str, int] = field(default_factory=dict)


def _line_masks(
    edits: Sequence[tuple[EditConfig, gpd.GeoDataFrame]], grid: Grid
) -> list[tuple[EditConfig, str, np.ndarray, np.ndarray]]:
    """(edit, label, mask with the gaps cut out, mask without them) for each line edit."""
    gaps = [(e, g) for e, g in edits if e.kind is EditKind.GAP]
    cut = _gap_cut(gaps, grid)
    out = []
    used = np.zeros(len(gaps), bool)
    for i, (e, gdf) in enumerate(edits):
        if e.kind is not EditKind.LINE:
            continue
        half = _line_half_width(e, grid)
        lines = gdf.geometry.to_numpy()
        full = shapely.buffer(lines, half, cap_style="flat") if half > 0 else lines
        mask_full = _burn(full, grid, all_touched=True)
        if cut is not None:
            for j, (_, gg) in enumerate(gaps):
                used[j] |= bool(shapely.intersects(shapely.union_all(gg.geometry.to_numpy()), shapely.union_all(full)))
            kept = shapely.difference(lines, cut)
            geoms = shapely.buffer(kept, half, cap_style="flat") if half > 0 else kept
            mask = _burn(geoms, grid, all_touched=True)
        else:
            mask = mask_full
        out.append((e, _label(e, i), mask, mask_full))
    fence = any(e.kind is EditKind.BORDER_FENCE for e, _ in edits)
    lost = [_label(e, 0) if e.name else f"gap at {tuple(round(v) for v in g.geometry.iloc[0].coords[0])}"
            for (e, g), u in zip(gaps, used, strict=True) if not u and len(g)]  # fmt: skip
    if lost and not fence:
        msg = (
            f"scenario gap(s) {lost}: expected each to cross a line edit of the same scenario, found none it crosses. "
            "A gap opens the scenario's own lines; for a crossing on a road of the baseline use "
            "[[resistance.barriers]] crossings, and for the border fence give the gaps as the fence edit's coords."
        )
        raise DataError(msg)
    return out


def apply_habitat_edits(suitability: np.ndarray, grid: Grid, edits: Sequence[tuple[EditConfig, gpd.GeoDataFrame]]) -> np.ndarray:
    """Suitability under the scenario: polygons (development, restoration, fire), then lines with ``remove_habitat`` (0).

    Parameters
    ----------
    suitability
        Suitability 0..1 on ``grid`` (NaN = no data, kept).
    grid
        The analysis grid.
    edits
        Each edit with its geometry in the grid's CRS (:func:`edit_frames`).

    Returns
    -------
    numpy.ndarray
        A new array; edits that touch no habitat leave it equal to ``suitability``.

    Examples
    --------
    >>> import shapely
    >>> from leopardgeo.config.scenario import EditConfig
    >>> g = Grid.from_bounds((0, 0, 500, 100), cell_size_m=100, crs="EPSG:32652")
    >>> burn = EditConfig(kind="polygon", effect="fire", coords=[[0, 0], [1, 0], [1, 1]], habitat_factor=0.5)
    >>> poly = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 200, 100)], crs=g.crs)
    >>> apply_habitat_edits(np.full(g.shape, 0.8), g, [(burn, poly)])
    array([[0.4, 0.4, 0.8, 0.8, 0.8]])
    """
    s = np.array(suitability, dtype="float64" if np.asarray(suitability).dtype == np.float64 else "float32", copy=True)
    finite = np.isfinite(s)
    for e, gdf in edits:
        if e.kind is not EditKind.POLYGON:
            continue
        m = _burn(gdf.geometry.to_numpy(), grid, all_touched=False) & finite
        if e.effect is PolygonEffect.DEVELOPMENT:
            s[m] *= e.habitat_factor
        elif e.effect is PolygonEffect.RESTORATION:
            s[m] = np.maximum(s[m], e.habitat)
        else:
            s[m] *= fire_factor(e)
    for e, _, mask, _ in _line_masks(edits, grid):
        if e.remove_habitat:
            s[mask & finite] = 0.0
    return s


def apply_resistance_edits(
    resistance: np.ndarray,
    grid: Grid,
    edits: Sequence[tuple[EditConfig, gpd.GeoDataFrame]],
    *,
    countries: np.ndarray | None = None,
) -> tuple[np.ndarray, ScenarioEdits]:
    """Resistance under the scenario: polygons, then lines with their gaps cut out, then the border fence.

    Parameters
    ----------
    resistance
        Resistance ≥ 1 on ``grid`` (NaN = no data, kept).
    grid
        The analysis grid.
    edits
        Each edit with its geometry in the grid's CRS (:func:`edit_frames`).
    countries
        Country index raster (-1 = none), needed by a ``border_fence`` edit.

    Returns
    -------
    (numpy.ndarray, ScenarioEdits)
        The edited resistance (a copy) and where the edits fell.

    Raises
    ------
    DataError
        A gap that crosses no line of the scenario; a border fence without a country layer.

    Examples
    --------
    A road across a 1 × 5 strip, impassable, with an underpass 100 m wide at x = 250 (the middle cell):

    >>> import shapely
    >>> from leopardgeo.config.scenario import EditConfig
    >>> g = Grid.from_bounds((0, 0, 500, 300), cell_size_m=100, crs="EPSG:32652")
    >>> road = EditConfig(kind="line", coords=[[0, 0], [1, 1]], mode="penalty", penalty=9)
    >>> gap = EditConfig(kind="gap", coords=[[0, 0]], width_m=100)
    >>> line = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 150), (500, 150)])], crs=g.crs)
    >>> pt = gpd.GeoDataFrame(geometry=[shapely.Point(250, 150)], crs=g.crs)
    >>> r, where = apply_resistance_edits(np.ones(g.shape), g, [(road, line), (gap, pt)])
    >>> r[1]
    array([10., 10.,  1., 10., 10.])
    >>> int(where.opened.sum())
    1
    """
    r = np.array(resistance, dtype="float64" if np.asarray(resistance).dtype == np.float64 else "float32", copy=True)
    finite = np.isfinite(r)
    polys = np.zeros(grid.shape, bool)
    cells: dict[str, int] = {}
    for i, (e, gdf) in enumerate(edits):
        if e.kind is not EditKind.POLYGON or e.effect is PolygonEffect.FIRE:
            continue
        m = _burn(gdf.geometry.to_numpy(), grid, all_touched=False) & finite
        if e.effect is PolygonEffect.DEVELOPMENT:
            r[m] = np.maximum(r[m], e.resistance or DEFAULT_DEVELOPMENT_RESISTANCE)
        else:
            r[m] = np.minimum(r[m], e.resistance or 1.0)
        polys |= m
        cells[_label(e, i)] = int(m.sum())
    barrier = np.zeros(grid.shape, bool)
    opened = np.zeros(grid.shape, bool)
    for e, label, mask, full in _line_masks(edits, grid):
        hit = mask & finite
        if e.mode is LineMode.IMPASSABLE:
            r[hit] = np.nan
        else:
            r[hit] += e.penalty
        barrier |= hit
        opened |= full & ~mask & finite
        cells[label] = int(hit.sum())
    for i, (e, gdf) in enumerate(edits):
        if e.kind is not EditKind.BORDER_FENCE:
            continue
        if countries is None or not (np.asarray(countries) >= 0).any():
            msg = (
                f"scenario edit {_label(e, i)!r} (border_fence): expected a country layer ([inputs] countries), "
                "found none. Add the countries or drop the edit."
            )
            raise DataError(msg)
        from leopardgeo.stages.fence import fence_resistance

        gaps = [(p.x, p.y) for p in gdf.geometry]
        before = np.isfinite(r)
        r, fence = fence_resistance(
            r, countries, grid, mode=e.mode.value, penalty=e.penalty, gaps_xy=gaps,
            gap_width_m=e.width_m or DEFAULT_FENCE_GAP_M,
        )  # fmt: skip
        barrier |= fence
        opened |= before & ~fence & _fence_band(countries)
        cells[_label(e, i)] = int(fence.sum())
    for label, n in cells.items():
        logger.info("scenario edit %r: %d cells", label, n)
    return r, ScenarioEdits(barrier=barrier, opened=opened, polygons=polys, cells=cells)


def _fence_band(countries: np.ndarray) -> np.ndarray:
    from leopardgeo.stages.fence import border_cells, fill_countries

    return border_cells(fill_countries(countries))


def edits_layer(edits: Sequence[tuple[EditConfig, gpd.GeoDataFrame]], crs: object, *, illustrative: bool) -> gpd.GeoDataFrame:
    """One row per edit geometry: ``edit``, ``kind``, ``effect`` (mode or polygon effect), ``width_m``, ``illustrative``."""
    rows = []
    for e, gdf in edits:
        effect = e.effect.value if e.kind is EditKind.POLYGON else (e.mode.value if e.kind is not EditKind.GAP else "opening")
        for name, geom in zip(gdf["edit"], gdf.geometry, strict=True):
            rows.append({"edit": name, "kind": e.kind.value, "effect": effect, "width_m": e.width_m,
                         "illustrative": illustrative, "geometry": geom})  # fmt: skip
    cols = ["edit", "kind", "effect", "width_m", "illustrative"]
    if not rows:
        return gpd.GeoDataFrame({c: [] for c in cols}, geometry=[], crs=crs)
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)
