"""Reintroduction sites: the candidates and the source population.

:func:`prepare_sites` reads candidate sites from any layer (any CRS, any attribute names), :func:`site_masks`
rasterizes them, :func:`find_source` finds the source population (:class:`SourceRegion`).  Part of the sites
stage (:mod:`leopardgeo.stages.sites`, which re-exports every name here).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

import geopandas as gpd
import shapely
from affine import Affine
from rasterio.features import rasterize

from leopardgeo.core.errors import DataError
from leopardgeo.core.grid import Grid
from leopardgeo.io import to_analysis_crs

__all__ = ["DEFAULT_SOURCE", "SourceRegion", "find_source", "prepare_sites", "site_masks"]

logger = logging.getLogger(__name__)

#: Default source population: the protected area whose name contains this (case-insensitive).
DEFAULT_SOURCE = "Land of the Leopard"


# --------------------------------------------------------------------------- candidates
def _name_column(gdf: gpd.GeoDataFrame, name_field: str | None) -> str | None:
    """The column holding site names: ``name_field``, else ``name`` (any case), else the first text column."""
    cols = [c for c in gdf.columns if c != gdf.geometry.name]
    if name_field is not None:
        if name_field not in cols:
            msg = f"sites: expected a name column {name_field!r}, found columns {cols}. Set [sites] name_field to one of them."
            raise DataError(msg)
        return name_field
    for c in cols:
        if str(c).lower() == "name":
            return c
    for c in cols:
        s = gdf[c]
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            if s.map(lambda v: isinstance(v, str)).any():
                return c
    return None


def prepare_sites(sites: gpd.GeoDataFrame, grid: Grid, *, name_field: str | None = None, what: str = "sites") -> gpd.GeoDataFrame:
    """Candidate sites in the grid CRS: ``site_id`` (1..n in input order), ``name``, polygon ``geometry``.

    Parameters
    ----------
    sites
        Polygons in any CRS (reprojected to the grid's); any attribute names.
    grid
        The analysis grid.
    name_field
        Column of the site names; default ``name`` (any case), else the first
        text column, else ``"site <id>"``.  Names are kept verbatim (Cyrillic
        included); a name given to several sites gets `` #<site_id>``.
    what
        Layer name for messages.

    Raises
    ------
    DataError
        If the layer is empty, holds no polygon, or lacks ``name_field``.
    CRSError
        If the layer has no CRS.
    AlignmentError
        If a site lies wholly outside the grid.

    Examples
    --------
    >>> from leopardgeo.core.grid import Grid
    >>> g = Grid.from_bounds((0, 0, 1000, 1000), cell_size_m=100, crs="EPSG:32652")
    >>> s = gpd.GeoDataFrame({"название": ["Лазовский"]}, geometry=[shapely.box(0, 0, 500, 500)], crs=g.crs)
    >>> prepare_sites(s, g)[["site_id", "name"]].to_dict("records")
    [{'site_id': 1, 'name': 'Лазовский'}]
    """
    from leopardgeo.core.errors import AlignmentError

    if sites is None or len(sites) == 0 or sites.geometry.isna().all():
        msg = f"{what}: expected at least one site polygon, found an empty layer. Check the file and layer name."
        raise DataError(msg)
    gdf = to_analysis_crs(sites, grid.crs, what=what)
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    polys = gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    if not polys.any():
        kinds = sorted(set(gdf.geometry.geom_type))
        msg = f"{what}: expected polygons (site footprints), found {kinds}. Buffer points or lines into areas first."
        raise DataError(msg)
    gdf = gdf[polys]
    valid = shapely.is_valid(gdf.geometry.to_numpy())
    geoms = np.where(valid, gdf.geometry.to_numpy(), shapely.make_valid(gdf.geometry.to_numpy()))
    col = _name_column(gdf, name_field)
    names = [
        str(v) if col is not None and isinstance(v, str) and v.strip() else f"site {i + 1}"
        for i, v in enumerate(gdf[col] if col is not None else [None] * len(gdf))
    ]
    seen: dict[str, int] = {}
    for n in names:
        seen[n] = seen.get(n, 0) + 1
    names = [f"{n} #{i + 1}" if seen[n] > 1 else n for i, n in enumerate(names)]  # names key the outputs: unique
    out = gpd.GeoDataFrame(
        {"site_id": np.arange(1, len(gdf) + 1, dtype="int64"), "name": names}, geometry=list(geoms), crs=grid.crs
    )
    inside = out.geometry.intersects(shapely.box(*grid.bounds)).to_numpy()
    if not inside.all():
        bad = out.loc[~inside, "name"].tolist()
        msg = (
            f"{what}: expected every site inside the analysis grid {tuple(round(v) for v in grid.bounds)}, found "
            f"{bad[:5]} outside. Check the layer's CRS, or drop those sites."
        )
        raise AlignmentError(msg)
    return out


def site_masks(sites: gpd.GeoDataFrame, grid: Grid, valid: np.ndarray | None = None) -> list[np.ndarray]:
    """Boolean raster of each site: cells whose centre lies inside it (and valid).

    Raises
    ------
    DataError
        If a site covers no valid cell (smaller than a cell, or on water / no data).
    """
    out = []
    for name, geom in zip(sites["name"], sites.geometry, strict=True):
        m = rasterize([(geom, 1)], out_shape=grid.shape, transform=grid.transform, fill=0, dtype="uint8").astype(bool)
        if valid is not None:
            m &= valid
        if not m.any():
            msg = (
                f"site {name!r}: expected at least one valid cell centre inside the polygon, found none "
                f"(smaller than a {grid.cell_size_m:g} m cell, or on water / outside the study area). "
                "Enlarge the polygon or use a finer grid."
            )
            raise DataError(msg)
        out.append(m)
    return out


@dataclass(frozen=True)
class SourceRegion:
    """The source population: its name, cells, outline and the patches it lies in."""

    name: str
    mask: np.ndarray
    geometry: Any
    patch_ids: tuple[int, ...]
    kind: str  #: "protected_area" or "patch"


def find_source(
    grid: Grid,
    *,
    labels: np.ndarray,
    patches: gpd.GeoDataFrame,
    protected_areas: gpd.GeoDataFrame | None = None,
    name: str | None = DEFAULT_SOURCE,
    valid: np.ndarray | None = None,
) -> SourceRegion:
    """The source population: the protected area(s) whose name contains ``name``, else the largest patch.

    Names are matched case-insensitively in ``NAME``, ``name`` and ``ORIG_NAME``.

    Examples
    --------
    >>> from leopardgeo.core.grid import Grid
    >>> g = Grid.from_bounds((0, 0, 400, 100), cell_size_m=100, crs="EPSG:32652")
    >>> lab = np.array([[1, 1, 0, 2]], dtype="int32")
    >>> p = gpd.GeoDataFrame({"patch_id": [1, 2], "area_ha": [2.0, 1.0], "name": ["", ""]},
    ...                      geometry=[shapely.box(0, 0, 200, 100), shapely.box(300, 0, 400, 100)], crs=g.crs)
    >>> src = find_source(g, labels=lab, patches=p, protected_areas=None)
    >>> src.kind, src.patch_ids, src.mask.astype(int).tolist()
    ('patch', (1,), [[1, 1, 0, 0]])
    """
    valid = np.ones(grid.shape, bool) if valid is None else valid
    if name and protected_areas is not None and len(protected_areas):
        hit = np.zeros(len(protected_areas), bool)
        for col in ("NAME", "name", "ORIG_NAME"):
            if col in protected_areas.columns:
                hit |= protected_areas[col].astype(str).str.contains(name, case=False, regex=False).to_numpy()
        if hit.any():
            pa = protected_areas[hit]
            geom = shapely.union_all(pa.geometry.to_numpy())
            mask = rasterize([(geom, 1)], out_shape=grid.shape, transform=grid.transform, fill=0, dtype="uint8").astype(bool)
            mask &= valid
            if mask.any():
                ids = _holding_patches(labels, mask)
                label = "; ".join(dict.fromkeys(pa["NAME"].astype(str) if "NAME" in pa.columns else [name]))
                return SourceRegion(label, mask, geom, ids, "protected_area")
        logger.warning("source %r: no protected area of that name in the study area; using the largest patch", name)
    if patches is None or len(patches) == 0:
        msg = (
            f"source population: expected a protected area named like {name!r} or at least one habitat patch, "
            "found neither. Set [sites] source to a protected-area name of [inputs] protected_areas."
        )
        raise DataError(msg)
    big = patches.sort_values(["area_ha", "patch_id"], ascending=[False, True]).iloc[0]
    pid = int(big["patch_id"])
    label = str(big.get("name", "") or f"patch {pid}")
    return SourceRegion(label, labels == pid, big.geometry, (pid,), "patch")


def _holding_patches(labels: np.ndarray, mask: np.ndarray, share: float = 0.1) -> tuple[int, ...]:
    """Patches holding at least ``share`` of the cells of ``mask`` (at least the one holding most)."""
    lab = labels[mask]
    lab = lab[lab > 0]
    if lab.size == 0:
        return ()
    ids, counts = np.unique(lab, return_counts=True)
    keep = counts >= share * mask.sum()
    keep[np.argmax(counts)] = True
    return tuple(int(v) for v in ids[keep])


def _subgrid(grid: Grid, mask: np.ndarray, pad: int = 1) -> tuple[Grid, tuple[slice, slice]]:
    """The smallest window of ``grid`` holding every True cell of ``mask`` (plus ``pad`` cells)."""
    rows, cols = _window(mask, pad)
    r0, r1 = rows.start, min(grid.height, rows.stop)
    c0, c1 = cols.start, min(grid.width, cols.stop)
    t = grid.transform * Affine.translation(c0, r0)
    return Grid(grid.crs, t, (r1 - r0, c1 - c0)), (slice(r0, r1), slice(c0, c1))


def _window(mask: np.ndarray, pad: int) -> tuple[slice, slice]:
    """Row and column slices of the bounding box of ``mask``'s True cells, ``pad`` cells wider (clipped at 0)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return slice(max(0, rows[0] - pad), rows[-1] + 1 + pad), slice(max(0, cols[0] - pad), cols[-1] + 1 + pad)
