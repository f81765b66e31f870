"""Reading vectors onto the analysis CRS: :func:`read_vector`, :func:`read_wdpa`, :func:`require_polygons`."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import geopandas as gpd
import pyogrio
import pyproj
import shapely

from leopardgeo.core._crs import to_pyproj
from leopardgeo.core.errors import (
    AlignmentError,
    CRSError,
    DataError,
    InvalidGeometryWarning,
)
from leopardgeo.core.grid import Grid
from leopardgeo.io.paths import check_input_path

logger = logging.getLogger(__name__)



# ---------------------------------------------------------------------- vectors
def to_analysis_crs(gdf: gpd.GeoDataFrame, crs: Any, *, what: str = "layer") -> gpd.GeoDataFrame:
    """Reproject ``gdf`` to the analysis CRS (explicitly, never silently in a stage).

    Raises
    ------
    CRSError
        If ``gdf`` has no CRS.
    """
    if gdf.crs is None:
        msg = f"{what}: expected a CRS, found none. Set it with `gdf.set_crs(...)` (or fix the .prj of the shapefile)."
        raise CRSError(msg)
    target = to_pyproj(crs)
    return gdf if pyproj.CRS(gdf.crs) == target else gdf.to_crs(target)


def repair_invalid(gdf: gpd.GeoDataFrame, name: str, *, stacklevel: int = 2) -> gpd.GeoDataFrame:
    """``gdf`` with its invalid geometries (self-intersections, ...) repaired by :func:`shapely.make_valid`, with a warning.

    A self-intersecting "bowtie" polygon has an area of 0 until repaired; missing and empty geometries are left alone.

    Examples
    --------
    >>> import warnings
    >>> bowtie = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     repair_invalid(gpd.GeoDataFrame(geometry=[bowtie]), "layer").area.tolist()
    [2.0]
    """
    geoms = gdf.geometry.values
    valid = shapely.is_valid(geoms) | shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if valid.all():
        return gdf
    n_bad = int((~valid).sum())
    reason = shapely.is_valid_reason(geoms[~valid][0])
    warnings.warn(
        f"{name}: {n_bad} invalid geometr{'y' if n_bad == 1 else 'ies'} repaired with make_valid (first problem: {reason}).",
        InvalidGeometryWarning,
        stacklevel=stacklevel,
    )
    gdf = gdf.copy()
    gdf.loc[~valid, gdf.geometry.name] = shapely.make_valid(geoms[~valid])
    return gdf


def read_vector(
    path: str | Path,
    layer: str | None = None,
    *,
    grid: Grid | None = None,
    what: str | None = None,
    drop_empty: bool = True,
) -> gpd.GeoDataFrame:
    """Read any OGR vector layer, repair invalid geometries, reproject to the grid's CRS.

    Parameters
    ----------
    path
        Vector file (GeoPackage, shapefile, GeoJSON, ...).
    layer
        Layer name; the first layer when omitted.
    grid
        When given, the layer is reprojected to its CRS and features outside
        its extent are dropped.
    what
        Name of the layer for messages.
    drop_empty
        Drop features without a geometry (missing or empty), with a warning naming them; False: keep
        them, for callers that number features in file order and refuse such gaps themselves.

    Returns
    -------
    geopandas.GeoDataFrame

    Raises
    ------
    DataError
        Missing file, unknown layer, or an empty layer.
    CRSError
        The layer has no CRS.
    AlignmentError
        No feature overlaps the grid.

    Warns
    -----
    InvalidGeometryWarning
        When invalid geometries were repaired with :func:`shapely.make_valid`, or features without a
        geometry were dropped.
    """
    name = what or (f"{Path(str(path)).name}:{layer}" if layer else Path(str(path)).name)
    check_input_path(path, name)
    try:
        if layer is not None:
            names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
            if layer not in names:
                msg = f"{name}: expected a layer named {layer!r} in {str(path)!r}, found layers {names}."
                raise DataError(msg)
        gdf = pyogrio.read_dataframe(path, layer=layer)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, pyogrio.errors.FieldError) as exc:
        msg = (
            f"{name}: {str(path)!r} cannot be read by OGR: {exc}. Expected a readable vector file "
            "(GeoPackage, shapefile, GeoJSON); check that it is complete, e.g. with `ogrinfo -al -so`."
        )
        raise DataError(msg) from exc
    blank = shapely.is_missing(gdf.geometry.values) | shapely.is_empty(gdf.geometry.values)
    if len(gdf) == 0 or blank.all():
        msg = f"{name}: expected at least one feature, found an empty layer. Check the file and layer name."
        raise DataError(msg)
    if blank.any() and drop_empty:
        first = ", ".join(str(i + 1) for i in np.flatnonzero(blank)[:5])
        warnings.warn(
            f"{name}: {int(blank.sum())} of {len(gdf)} features have no geometry and were left out "
            f"(feature {first}{', ...' if blank.sum() > 5 else ''} in file order).",
            InvalidGeometryWarning,
            stacklevel=2,
        )
        gdf = gdf[~blank].copy()
    if gdf.crs is None:
        msg = (
            f"{name}: expected a CRS, found none. Set it (e.g. `ogr2ogr -a_srs EPSG:4326 out.gpkg in.shp`, "
            "or add the .prj of the shapefile)."
        )
        raise CRSError(msg)
    gdf = repair_invalid(gdf, name, stacklevel=3)
    if grid is not None:
        gdf = to_analysis_crs(gdf, grid.crs, what=name)
        inside = gdf.geometry.intersects(shapely.box(*grid.bounds))
        if not inside.any():
            b = tuple(round(v) for v in gdf.total_bounds)
            msg = (
                f"{name}: no feature overlaps the study area (layer bounds {b} vs grid bounds "
                f"{tuple(round(v) for v in grid.bounds)} in the grid's CRS). Check the layer and its CRS."
            )
            raise AlignmentError(msg)
        gdf = gdf[inside.to_numpy()].reset_index(drop=True)
    return gdf


def require_polygons(gdf: gpd.GeoDataFrame, what: str, *, fix: str = "Give a polygon layer.") -> gpd.GeoDataFrame:
    """Refuse a layer holding anything but (multi)polygons (points or lines mixed in change areas silently).

    Raises
    ------
    DataError
        Naming the geometry types found.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> pts = gpd.GeoDataFrame(geometry=[shapely.Point(0, 0)], crs="EPSG:32652")
    >>> require_polygons(pts, "countries")
    Traceback (most recent call last):
    ...
    leopardgeo.core.errors.DataError: countries: expected polygons, found 1 Point. Give a polygon layer.
    """
    types = gdf.geometry.geom_type
    bad = types[~types.isin(["Polygon", "MultiPolygon"])]
    if len(bad):
        counts = ", ".join(f"{n} {t}" for t, n in bad.value_counts().items())
        msg = f"{what}: expected polygons, found {counts}. {fix}"
        raise DataError(msg)
    return gdf


def _norm_text(values: Any) -> Any:
    """Strings stripped, inner runs of spaces collapsed and case-folded (for matching WDPA codes and statuses)."""
    return values.astype(str).str.strip().str.replace(r"\s+", " ", regex=True).str.casefold()


def read_wdpa(
    path: str | Path,
    layer: str | None = None,
    *,
    grid: Grid | None = None,
    iso3: Iterable[str] = (),
    status: Iterable[str] = ("Designated", "Inscribed", "Established"),
    include_marine: bool = False,
) -> gpd.GeoDataFrame:
    """Read protected areas in the WDPA schema (a WDPA extract works as it is).

    Point records (WDPA's point layer: sites with no boundary) and purely marine
    areas (``MARINE == "2"``) are dropped; ``iso3`` and ``status`` filter on
    ``ISO3`` (transboundary codes such as ``"RUS;CHN"`` match either) and
    ``STATUS``.  Layers without WDPA columns are accepted; a ``NAME`` column is
    then taken from ``name`` if present.

    Raises
    ------
    DataError
        When no polygon is left after filtering (naming the filters).
    """
    gdf = read_vector(path, layer, grid=grid, what="protected_areas")
    n0 = len(gdf)
    polys = gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"])
    if not polys.all():
        if not polys.any():
            require_polygons(gdf, "protected_areas", fix="Give the WDPA polygon layer (not the point layer).")
        logger.warning(
            "protected_areas: %d of %d features are not polygons (%s) and were dropped (WDPA points have no boundary)",
            int((~polys).sum()), n0, ", ".join(sorted(set(gdf.geometry.geom_type[~polys]))),
        )
    gdf = gdf[polys]
    if "NAME" not in gdf.columns:
        gdf = gdf.assign(NAME=gdf["name"] if "name" in gdf.columns else [f"protected area {i + 1}" for i in range(len(gdf))])
    removed: list[str] = []

    def keep(mask: Any, label: str, column: str) -> None:
        nonlocal gdf
        mask = mask.to_numpy(dtype=bool)
        n = int((~mask).sum())
        if n:
            seen = sorted({repr(v) for v in gdf[column].to_numpy()[~mask]})[:5]
            removed.append(f"{label} removed {n} ({column} {', '.join(seen)})")
            logger.info("protected_areas: filter %s removed %d of %d features (%s values %s)", label, n, len(gdf), column, seen)
        gdf = gdf[mask]

    if "MARINE" in gdf.columns and not include_marine:
        marine = pd.to_numeric(gdf["MARINE"], errors="coerce")
        keep(~(marine == 2), "MARINE != 2 (not purely marine)", "MARINE")
    wanted = {str(c).strip().upper() for c in iso3}
    if wanted and "ISO3" in gdf.columns:
        codes = gdf["ISO3"].astype(str).str.upper().str.split(";")
        keep(codes.map(lambda cs: bool(wanted & {c.strip() for c in cs})), f"ISO3 in {sorted(wanted)}", "ISO3")
    statuses = {str(v).strip() for v in status}
    if statuses and "STATUS" in gdf.columns:
        folded = {" ".join(v.split()).casefold() for v in statuses}
        keep(_norm_text(gdf["STATUS"]).isin(folded), f"STATUS in {sorted(statuses)}", "STATUS")
    if removed:
        logger.info("protected_areas: %d of %d features kept (%s)", len(gdf), n0, "; ".join(removed))
    if len(gdf) == 0:
        msg = (
            f"protected_areas: {n0} features read but none left after keeping polygons, non-marine, "
            f"ISO3 in {sorted(wanted) or 'any'} and STATUS in {sorted(statuses) or 'any'} "
            f"(removed by filter: {'; '.join(removed) or 'none'}). "
            "Relax [inputs] pa_iso3 / pa_status."
        )
        raise DataError(msg)
    return gdf.reset_index(drop=True)
