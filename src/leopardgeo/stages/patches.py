"""Habitat patches: cores by suitability threshold and minimum area, with protected areas.

A patch is an 8-connected (or 4-connected) group of cells.  Patches are numbered
1..n from the largest to the smallest; 0 is "no patch".  Their polygons are the
exact cell outlines (``rasterio.features.shapes``), so ``area_ha`` equals cell
count × cell area.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

import geopandas as gpd
import shapely
from rasterio.features import rasterize, shapes

from leopardgeo.config import ProtectedAreaMode, _f, _normalise, _positive
from leopardgeo.core.errors import ConfigError, DataError, SmallPatchWarning
from leopardgeo.core.grid import Grid
from leopardgeo.io import RASTERS
from leopardgeo.stages.base import Context, RunConfigLike, Section, Stage
from leopardgeo.stages.inputs import Inputs

__all__ = ["country_raster", "extract_patches", "label_cores", "patch_polygons"]

logger = logging.getLogger(__name__)

_STRUCTURE = {4: ndimage.generate_binary_structure(2, 1), 8: np.ones((3, 3), bool)}


def label_cores(mask: np.ndarray, *, connectivity: int = 8, zones: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Label connected groups of ``True`` cells (1..n, 0 elsewhere).

    With ``zones`` (an integer array, e.g. a country index), groups never span
    two zones: each zone is labelled on its own.

    Examples
    --------
    >>> m = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], bool)
    >>> label_cores(m, connectivity=8)[1], label_cores(m, connectivity=4)[1]
    (1, 2)
    """
    if zones is None:
        labels, n = ndimage.label(mask, structure=_STRUCTURE[connectivity])
        return labels.astype("int32"), int(n)
    out = np.zeros(mask.shape, dtype="int32")
    n = 0
    for z in np.unique(zones[mask]):  # a handful of countries, not cells
        lab, k = ndimage.label(mask & (zones == z), structure=_STRUCTURE[connectivity])
        out[lab > 0] = lab[lab > 0] + n
        n += int(k)
    return out, n


def _rasterize_mask(geoms: np.ndarray, grid: Grid) -> np.ndarray:
    if len(geoms) == 0:
        return np.zeros(grid.shape, bool)
    return rasterize(((g, 1) for g in geoms), out_shape=grid.shape, transform=grid.transform, fill=0, dtype="uint8").astype(bool)


def country_raster(countries: gpd.GeoDataFrame | None, grid: Grid, field: str) -> tuple[np.ndarray, list[str]]:
    """Rasterize country polygons: index into the returned code list (-1 = none).

    Raises
    ------
    DataError
        If ``field`` is not a column of ``countries``.
    """
    if countries is None:
        return np.full(grid.shape, -1, dtype="int16"), []
    if field not in countries.columns:
        msg = (
            f"countries: expected a column {field!r} with country codes, found columns {list(countries.columns)}. "
            "Set [inputs] country_field."
        )
        raise DataError(msg)
    raw = countries[field]
    blank = raw.isna().to_numpy() | (raw.astype(str).str.strip() == "").to_numpy()
    if blank.any():
        rows = [int(i) for i in np.flatnonzero(blank)[:5]]
        msg = (
            f"countries: expected a country code in column {field!r} of every polygon, found {int(blank.sum())} "
            f"empty or NULL (features {rows}). Fill in the codes (e.g. ISO3 'RUS', 'CHN') or drop those polygons."
        )
        raise DataError(msg)
    codes = sorted(countries[field].astype(str).unique())
    idx = countries[field].astype(str).map({c: i for i, c in enumerate(codes)}).to_numpy()
    out = rasterize(
        zip(countries.geometry.to_numpy(), idx.tolist(), strict=True),
        out_shape=grid.shape,
        transform=grid.transform,
        fill=-1,
        dtype="int16",
    )
    return out, codes


def patch_polygons(labels: np.ndarray, grid: Grid) -> gpd.GeoDataFrame:
    """Polygons of labelled cells, one (multi)polygon per label, exact cell outlines."""
    mask = labels > 0
    if not mask.any():
        return gpd.GeoDataFrame({"patch_id": pd.Series([], dtype="int32")}, geometry=[], crs=grid.crs)
    records = list(shapes(labels.astype("int32"), mask=mask, connectivity=4, transform=grid.transform))
    geoms = shapely.from_geojson([json.dumps(g) for g, _ in records])
    ids = np.array([int(v) for _, v in records], dtype="int32")
    frame = gpd.GeoDataFrame({"patch_id": ids}, geometry=geoms, crs=grid.crs)
    out = frame.dissolve(by="patch_id", as_index=False)
    return out.sort_values("patch_id").reset_index(drop=True)


#: A patch "holds" a protected area when at least this share of the area's cells lie in it.
PA_SHARE = 0.1


def _pa_cell_indices(pas: gpd.GeoDataFrame, grid: Grid, valid: np.ndarray) -> list[np.ndarray]:
    """Flat indices of the valid cells of each protected area (overlaps allowed).

    Each area is rasterized inside its own bounding window, so the cost grows
    with the areas' size, not with the number of areas times the grid.
    """
    out = []
    height, width = grid.shape
    inv = ~grid.transform
    for geom in pas.geometry.to_numpy():  # one windowed rasterize per area
        xmin, ymin, xmax, ymax = geom.bounds
        c0, r0 = inv * (xmin, ymax)
        c1, r1 = inv * (xmax, ymin)
        c0, r0 = max(0, int(np.floor(c0))), max(0, int(np.floor(r0)))
        c1, r1 = min(width, int(np.ceil(c1))), min(height, int(np.ceil(r1)))
        if c1 <= c0 or r1 <= r0:
            out.append(np.empty(0, dtype="int64"))
            continue
        t = grid.transform
        sub_t = type(t)(t.a, 0.0, t.c + c0 * t.a, 0.0, t.e, t.f + r0 * t.e)
        sub = rasterize([(geom, 1)], out_shape=(r1 - r0, c1 - c0), transform=sub_t, fill=0, dtype="uint8")
        rr, cc = np.nonzero(sub)
        idx = (rr + r0).astype("int64") * width + (cc + c0)
        out.append(idx[valid.ravel()[idx]])
    return out


def _labels_holding(labels: np.ndarray, pa_cells: list[np.ndarray], n_labels: int) -> list[np.ndarray]:
    """For each protected area, the labels holding at least PA_SHARE of its cells."""
    flat = labels.ravel()
    held = []
    for idx in pa_cells:
        if len(idx) == 0:
            held.append(np.empty(0, dtype="int64"))
            continue
        counts = np.bincount(flat[idx], minlength=n_labels + 1)
        counts[0] = 0
        held.append(np.nonzero(counts >= PA_SHARE * len(idx))[0])
    return held


def _pa_groups(pas: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Dissolve overlapping / touching protected areas into groups, names joined."""
    merged = shapely.get_parts(shapely.union_all(pas.geometry.to_numpy()))
    groups = gpd.GeoDataFrame(geometry=merged, crs=pas.crs)
    hits = gpd.sjoin(pas[["NAME", pas.geometry.name]], groups, predicate="intersects", how="inner")
    names = hits.groupby("index_right")["NAME"].agg(lambda s: "; ".join(sorted(set(map(str, s)))))
    groups["name"] = names.reindex(range(len(groups))).fillna("").to_numpy()
    return groups


def extract_patches(
    suitability: np.ndarray,
    grid: Grid,
    *,
    min_suitability: float = 0.5,
    min_area_ha: float = 5000.0,
    connectivity: int = 8,
    protected_areas: gpd.GeoDataFrame | None = None,
    protected_mode: ProtectedAreaMode | str = ProtectedAreaMode.MERGE,
    countries: gpd.GeoDataFrame | None = None,
    country_field: str = "iso3",
    split_by_country: bool = False,
) -> tuple[np.ndarray, gpd.GeoDataFrame]:
    """Habitat cores and protected areas as labelled patches with attributes.

    Parameters
    ----------
    suitability
        0..1 on ``grid``; NaN = no data (never part of a patch).
    grid
        The analysis grid.
    min_suitability
        Threshold of a core cell.
    min_area_ha
        Cores smaller than this are dropped (patches holding protected areas
        are kept whatever their size, with a :class:`SmallPatchWarning`).
    connectivity
        4 or 8.
    protected_areas
        Polygons in the grid's CRS with a ``NAME`` column, or ``None``.
    protected_mode
        ``"label"``: cores from suitability only, named after the protected
        areas they hold (no protected cell is added, no small patch kept);
        ``"merge"``: protected cells join the cores they touch;
        ``"separate"``: each group of overlapping protected areas is its own
        patch and cores are taken outside them; ``"ignore"``.
    countries
        Country polygons (grid CRS) with ``country_field``, or ``None``.
    country_field
        Column of country codes.
    split_by_country
        Cut patches at national borders, so every patch lies in one country.
        Off by default: a patch that straddles a border is one habitat block
        (one node of the graph, ``transboundary``), and cutting it would join
        its halves by a zero-length "link" that is not a movement route.
        The fence scenario of :mod:`leopardgeo.stages.crossborder` cuts patches
        at the border on purpose, to measure what a fence would cost.

    Returns
    -------
    labels : numpy.ndarray
        int32 patch id per cell, 0 = no patch.
    patches : geopandas.GeoDataFrame
        ``patch_id``, ``name`` (protected areas in it), ``kind``
        (``habitat`` / ``protected`` / ``habitat+protected``), ``n_cells``,
        ``area_ha``, ``mean_quality`` (mean suitability), ``protected_frac``,
        ``country`` (majority code), ``countries`` (every code with a cell in
        the patch, ``;``-joined), ``transboundary`` (cells in two or more
        countries), and per country ``frac_<code>`` (share of the cells) and
        ``area_ha_<code>``.

    Raises
    ------
    DataError
        If no patch is found (with the threshold and area to relax).

    Examples
    --------
    >>> from leopardgeo.core.grid import Grid
    >>> g = Grid.from_bounds((0, 0, 500, 300), cell_size_m=100, crs="EPSG:32652")
    >>> s = np.array([[.9, .9, 0, 0, .8], [.9, .9, 0, 0, 0], [0, 0, 0, 0, 0]])
    >>> labels, p = extract_patches(s, g, min_suitability=.5, min_area_ha=2)
    >>> labels
    array([[1, 1, 0, 0, 0],
           [1, 1, 0, 0, 0],
           [0, 0, 0, 0, 0]], dtype=int32)
    >>> p[["patch_id", "n_cells", "area_ha", "mean_quality"]].round(2).to_dict("records")
    [{'patch_id': 1, 'n_cells': 4, 'area_ha': 4.0, 'mean_quality': 0.9}]
    """
    mode = ProtectedAreaMode(protected_mode)
    s = np.asarray(suitability, dtype="float32")
    if s.shape != grid.shape:
        msg = f"suitability: expected the grid's shape {grid.shape}, found {s.shape}."
        raise DataError(msg)
    valid = np.isfinite(s)
    core = valid & (s >= min_suitability)
    use_pa = protected_areas is not None and len(protected_areas) > 0 and mode is not ProtectedAreaMode.IGNORE
    pa_mask = _rasterize_mask(protected_areas.geometry.to_numpy(), grid) & valid if use_pa else np.zeros(grid.shape, bool)
    cell_ha = grid.cell_area_ha
    cidx, codes = country_raster(countries, grid, country_field)
    zones = cidx if split_by_country and codes else None

    if mode is ProtectedAreaMode.SEPARATE and use_pa:
        groups = _pa_groups(protected_areas)
        pa_labels = rasterize(
            zip(groups.geometry.to_numpy(), range(1, len(groups) + 1), strict=True),
            out_shape=grid.shape,
            transform=grid.transform,
            fill=0,
            dtype="int32",
        )
        pa_labels[~valid] = 0
        core_labels, n_core = label_cores(core & (pa_labels == 0), connectivity=connectivity, zones=zones)
        if zones is not None:  # split protected-area groups at borders too
            pa_labels, _ = label_cores(
                pa_labels > 0, connectivity=connectivity, zones=zones.astype("int64") * 100_000 + pa_labels
            )
        raw = np.where(pa_labels > 0, pa_labels + n_core, core_labels)
    elif mode is ProtectedAreaMode.LABEL:
        raw, _ = label_cores(core, connectivity=connectivity, zones=zones)
    else:
        raw, _ = label_cores(core | pa_mask, connectivity=connectivity, zones=zones)
    pa_cells = _pa_cell_indices(protected_areas, grid, valid) if use_pa else []
    is_pa_label = np.zeros(int(raw.max()) + 1, bool)
    for held in _labels_holding(raw, pa_cells, int(raw.max())) if mode is not ProtectedAreaMode.LABEL else []:
        is_pa_label[held] = True

    counts = np.bincount(raw.ravel(), minlength=len(is_pa_label))
    counts[0] = 0
    area = counts * cell_ha
    keep = (area >= min_area_ha) | is_pa_label
    keep[0] = False
    small_pa = np.nonzero(is_pa_label & (area < min_area_ha) & (counts > 0))[0]
    if len(small_pa):
        warnings.warn(
            f"{len(small_pa)} patch(es) holding protected areas are smaller than min_area_ha = {min_area_ha:g} ha "
            "and are kept anyway.",
            SmallPatchWarning,
            stacklevel=2,
        )
    keep &= counts > 0
    old_ids = np.nonzero(keep)[0]
    if len(old_ids) == 0:
        msg = (
            f"no habitat patch found: no core of suitability >= {min_suitability:g} reaches "
            f"{min_area_ha:g} ha and no protected area lies on valid cells. "
            "Lower [patches] min_suitability or min_area_ha, or check the suitability map."
        )
        raise DataError(msg)
    order = old_ids[np.argsort(-counts[old_ids], kind="stable")]
    remap = np.zeros(len(counts), dtype="int32")
    remap[order] = np.arange(1, len(order) + 1, dtype="int32")
    labels = remap[raw]
    n = len(order)

    flat = labels.ravel()
    n_cells = np.bincount(flat, minlength=n + 1)[1:]
    s_sum = np.bincount(flat, weights=np.where(valid, s, 0).ravel(), minlength=n + 1)[1:]
    pa_count = np.bincount(flat, weights=pa_mask.ravel(), minlength=n + 1)[1:]
    attrs = pd.DataFrame(
        {
            "patch_id": np.arange(1, n + 1, dtype="int32"),
            "n_cells": n_cells.astype("int64"),
            "area_ha": n_cells * cell_ha,
            "mean_quality": s_sum / n_cells,
            "protected_frac": pa_count / n_cells,
        }
    )
    core_cells = np.bincount(flat, weights=core.ravel(), minlength=n + 1)[1:]
    attrs["kind"] = np.where(
        attrs["protected_frac"] == 0, "habitat", np.where(core_cells > pa_count, "habitat+protected", "protected")
    )

    if codes:
        k = len(codes) + 1
        joint = np.bincount(flat * k + (cidx.ravel() + 1), minlength=(n + 1) * k).reshape(n + 1, k)[1:]
        fr = joint / n_cells[:, None]
        for j, code in enumerate(codes, start=1):
            attrs[f"frac_{code.lower()}"] = fr[:, j]
        for j, code in enumerate(codes, start=1):
            attrs[f"area_ha_{code.lower()}"] = joint[:, j] * cell_ha
        best = fr[:, 1:].argmax(axis=1)
        attrs["country"] = np.where(fr[:, 1:].max(axis=1) > 0, np.array(codes)[best], "")
        present = joint[:, 1:] > 0
        attrs["countries"] = [";".join(c for c, p in zip(codes, row, strict=True) if p) for row in present]
        attrs["transboundary"] = present.sum(axis=1) > 1
    else:
        attrs["country"] = ""
        attrs["countries"] = ""
        attrs["transboundary"] = False

    polys = patch_polygons(labels, grid)
    out = polys.merge(attrs, on="patch_id", how="left")
    names: list[set[str]] = [set() for _ in range(n + 1)]
    if use_pa:
        for pa_name, held in zip(protected_areas["NAME"].astype(str), _labels_holding(labels, pa_cells, n), strict=True):
            for lab in held:
                names[lab].add(pa_name)
    out["name"] = ["; ".join(sorted(names[i])) for i in out["patch_id"]]
    cols = ["patch_id", "name", "kind", "country", "countries", "transboundary", "n_cells", "area_ha", "mean_quality"]
    cols += ["protected_frac"]
    cols += [c for c in out.columns if c.startswith(("frac_", "area_ha_"))]
    out = out[[*cols, "geometry"]]
    logger.info("%d patches (%d transboundary), %.0f ha in all", n, int(out["transboundary"].sum()), out["area_ha"].sum())
    return labels, out


# ---------------------------------------------------------------------- config section
@dataclass(frozen=True, slots=True, kw_only=True)
class PatchConfig:
    """Habitat cores."""

    min_suitability: float = _f(0.5, doc="suitability threshold of a core cell (0..1)")
    min_area_ha: float = _f(
        5000.0,
        doc=(
            "smallest core kept, ha: the smallest Amur leopard territory, 5,000 ha "
            "(Wikipedia 'Amur leopard', Ecology: 5,000-30,000 ha)"
        ),
    )
    protected_areas: ProtectedAreaMode = _f(
        ProtectedAreaMode.LABEL,
        doc=(
            "label (protected areas name the patches they overlap and count their capacity, but add no habitat) | "
            "merge (protected cells join the cores they touch) | separate | ignore"
        ),
    )
    connectivity: int = _f(8, doc="cell connectivity of a patch: 4 or 8")
    split_by_country: bool = _f(
        False,
        doc=(
            "cut patches at national borders (off: a patch across a border is one transboundary node; "
            "the fence scenario of [crossborder] cuts them to measure what a fence costs)"
        ),
    )

    def __post_init__(self) -> None:
        _normalise(self, "patches")
        if not 0.0 <= self.min_suitability <= 1.0:
            msg = f"[patches] min_suitability: expected a value in 0..1, found {self.min_suitability!r}."
            raise ConfigError(msg)
        _positive(self.min_area_ha, "patches.min_area_ha", allow_zero=True)
        if self.connectivity not in (4, 8):
            msg = f"[patches] connectivity: expected 4 or 8, found {self.connectivity!r}."
            raise ConfigError(msg)


# ---------------------------------------------------------------------- the stage
def compute_patches(cfg: RunConfigLike, inputs: Inputs, suitability: np.ndarray) -> tuple[np.ndarray, gpd.GeoDataFrame]:
    """Labelled patches and their polygons (see :func:`leopardgeo.stages.patches.extract_patches`)."""
    p = cfg.patches
    return extract_patches(
        suitability,
        inputs.grid,
        min_suitability=p.min_suitability,
        min_area_ha=p.min_area_ha,
        connectivity=p.connectivity,
        protected_areas=inputs.protected_areas,
        protected_mode=p.protected_areas,
        countries=inputs.countries,
        country_field=cfg.inputs.country_field,
        split_by_country=p.split_by_country,
    )


def _write(writer: Any, cfg: Any, ctx: Context) -> None:
    writer.raster("patches.tif", ctx["labels"], ctx["inputs"].grid, nodata=0, description=RASTERS["patches.tif"])


STAGE = Stage(
    "patches",
    "habitat patches",
    lambda cfg, c: dict(zip(("labels", "patches"), compute_patches(cfg, c["inputs"], c["suitability"]), strict=True)),
    config=(Section("patches", PatchConfig, "habitat patches"),),
    needs=("inputs", "habitat"),
    produces=("labels", "patches"),
    outputs=("patches.tif",),
    layers=lambda cfg, c: {"patches": c["patches"]},
    write=_write,
)
