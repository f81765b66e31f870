r"""Connectivity metrics of habitat polygons users bring themselves (the Conefor / Makurhini workflow).

No rasters needed: every polygon of a layer is a node, its weight an area attribute or its geometry
area; links join the pairs within a threshold distance, and each link's dispersal probability comes
from the kernel of :mod:`leopardgeo.stages.metrics` (:math:`p = e^{-kd}`, :math:`p = 0.5` at the median
dispersal distance by default).  Three distances, as Conefor's node / connection files and
Makurhini's ``distance`` argument offer them:

* ``centroid``: centroid to centroid, in metres; a centroid outside its own polygon (a crescent, a
  ring, a multipart patch) is replaced by a point on the polygon's surface
  (:func:`shapely.point_on_surface`), as Makurhini and the Conefor GIS extensions do;
* ``edge``: the shortest distance between the two outlines (edge to edge), in metres;
* ``least_cost``: cost-weighted distance (cost-weighted metres) over a resistance raster, edge to
  edge, from the project's compiled cost-distance search (:func:`leopardgeo.stages.graph.build_graph`, rule
  ``cutoff``: one search per polygon, all pairs up to the threshold).

Any CRS: polygons in a geographic CRS are projected to their UTM zone
(:meth:`geopandas.GeoDataFrame.estimate_utm_crs`) for areas and distances; a projected CRS in metres
is used as it is; least-cost distances use the resistance raster's grid and CRS.
:func:`write_polygon_metrics` writes the node and link tables, with every metric, as a GeoPackage
styled for QGIS and as CSV.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

import geopandas as gpd
import shapely

from leopardgeo.core._crs import M2_PER_HA
from leopardgeo.core.errors import ConfigError, CRSError, DataError
from leopardgeo.io import GPKG_NAME, OutputWriter, json_records, read_vector
from leopardgeo.io.vector import repair_invalid
from leopardgeo.stages.metrics import MetricsResult, connectivity_metrics

__all__ = ["NODE_METRICS_FILES", "Distance", "PolygonMetrics", "polygon_metrics", "write_polygon_metrics"]

logger = logging.getLogger(__name__)

#: Files :func:`write_polygon_metrics` writes.
NODE_METRICS_FILES = (GPKG_NAME, "habitat_nodes.csv", "node_links.csv", "node_metrics.json")


class Distance(StrEnum):
    """How the distance between two habitat polygons is measured."""

    CENTROID = "centroid"
    EDGE = "edge"
    LEAST_COST = "least_cost"


@dataclass(frozen=True)
class PolygonMetrics:
    """Nodes, links and metrics of :func:`polygon_metrics`.

    Attributes
    ----------
    nodes
        One row per polygon: ``node_id``, the weight column, every node metric, the polygon.
    links
        One row per link: ``patch_a``, ``patch_b`` (node ids), the distance, ``p``, every link metric,
        and a line (centroid to centroid, the shortest line between outlines, or the least-cost path).
    metrics
        The :class:`~leopardgeo.stages.metrics.MetricsResult`.
    summary
        The global metrics plus how the nodes and links were built.
    """

    nodes: gpd.GeoDataFrame
    links: gpd.GeoDataFrame
    metrics: MetricsResult
    summary: dict[str, Any]


def _metric_crs(gdf: gpd.GeoDataFrame, crs: Any) -> gpd.GeoDataFrame:
    if gdf.crs is None:
        msg = "habitat polygons: expected a layer with a CRS, found none. Assign it in QGIS or with GeoDataFrame.set_crs."
        raise CRSError(msg)
    if crs is not None:
        gdf = gdf.to_crs(crs)  # the user's CRS: measured in as it is, so it must be in metres (checked below)
    elif gdf.crs.is_geographic:
        utm = gdf.estimate_utm_crs()
        logger.info("habitat polygons in a geographic CRS: areas and distances measured in %s", utm.name)
        return gdf.to_crs(utm)
    unit = "degrees" if gdf.crs.is_geographic else (gdf.crs.axis_info[0].unit_name if gdf.crs.axis_info else "")
    if unit not in ("metre", "meter"):
        if crs is not None:
            msg = f"crs: expected a projected CRS in metres, found {gdf.crs.name} in {unit!r}. Pass a UTM zone, or leave crs out."
        else:
            msg = (
                f"habitat polygons: expected a CRS in metres (or a geographic one), found {gdf.crs.name} in {unit!r}. "
                "Pass crs=."
            )
        raise CRSError(msg)
    return gdf


def _node_points(geoms: np.ndarray) -> np.ndarray:
    """Centroid, or a point on the surface where the centroid falls outside the polygon."""
    cent = shapely.centroid(geoms)
    outside = ~shapely.intersects(geoms, cent)
    cent[outside] = shapely.point_on_surface(geoms[outside])
    return cent


def _pairs(geoms: np.ndarray, points: np.ndarray, how: Distance, max_distance: float | None) -> tuple[np.ndarray, ...]:
    """Node index pairs (i < j), their distance and link line, for the centroid and edge rules."""
    n = len(geoms)
    if max_distance is None:
        i, j = np.triu_indices(n, 1)
    else:
        tree = shapely.STRtree(points if how is Distance.CENTROID else geoms)
        query = points if how is Distance.CENTROID else geoms
        i, j = tree.query(query, predicate="dwithin", distance=max_distance)
        keep = i < j
        i, j = i[keep], j[keep]
    if how is Distance.CENTROID:
        d = shapely.distance(points[i], points[j])
        lines = shapely.linestrings(np.stack([shapely.get_coordinates(points[i]), shapely.get_coordinates(points[j])], axis=1))
    else:
        d = shapely.distance(geoms[i], geoms[j])
        lines = shapely.shortest_line(geoms[i], geoms[j])
    if max_distance is not None:
        keep = d <= max_distance
        i, j, d, lines = i[keep], j[keep], d[keep], lines[keep]
    return i, j, d, lines


def _least_cost(
    gdf: gpd.GeoDataFrame, ids: np.ndarray, resistance: str | Path, max_distance: float | None, connectivity: int
) -> tuple[gpd.GeoDataFrame, nx.Graph]:
    from rasterio.features import rasterize

    from leopardgeo.io import grid_from_raster, read_raster
    from leopardgeo.stages.graph import build_graph

    grid = grid_from_raster(resistance)
    res = read_raster(resistance, grid, what="resistance")
    gdf = gdf.to_crs(grid.crs)
    labels = rasterize(
        ((g, int(i)) for g, i in zip(gdf.geometry, ids, strict=True)), out_shape=grid.shape, transform=grid.transform,
        fill=0, dtype="int32",
    )  # fmt: skip
    missing = sorted(set(ids.tolist()) - set(np.unique(labels).tolist()))
    if missing:
        msg = (
            f"habitat polygons {missing[:10]}: expected each to cover the centre of at least one resistance cell "
            f"({grid.cell_size_m:g} m), found none (too small, or outside the raster). Use a finer resistance raster, "
            "or drop or merge those polygons."
        )
        raise DataError(msg)
    patches = gpd.GeoDataFrame({"patch_id": ids}, geometry=gdf.geometry.to_numpy(), crs=grid.crs)
    G, _ = build_graph(res, labels, patches, grid, rule="cutoff", max_cwd=max_distance, connectivity=connectivity)
    return gdf, G


def polygon_metrics(
    polygons: str | Path | gpd.GeoDataFrame,
    *,
    layer: str | None = None,
    id_field: str | None = None,
    area_field: str | None = None,
    distance: Distance | str = Distance.CENTROID,
    resistance: str | Path | None = None,
    max_distance: float | None = None,
    median_distance: float = 11_000.0,
    probability: float = 0.5,
    min_probability: float | None = None,
    landscape_area: float | None = None,
    links: bool | None = None,
    pair_probability_floor: float | None = None,
    crs: Any = None,
    connectivity: int = 8,
) -> PolygonMetrics:
    r"""Habitat polygons to nodes and links, then every connectivity metric of :mod:`leopardgeo.stages.metrics`.

    Parameters
    ----------
    polygons
        A vector file (any OGR format) or a GeoDataFrame of (multi)polygons, any CRS.
    layer
        Layer of a multi-layer file.
    id_field
        Attribute holding unique node ids; default ``1 .. n`` in file order.
    area_field
        Attribute used as the node weight :math:`a_i` (any unit: an area, a quality-weighted area, a
        capacity); default: the geometry area in hectares (``area_ha``).
    distance
        ``"centroid"`` (default), ``"edge"`` or ``"least_cost"`` (module docstring).
    resistance
        Resistance raster (> 0; nodata = impassable), required by ``"least_cost"``.
    max_distance
        Threshold: link only the pairs at most this far apart (metres, or cost-weighted metres for
        ``"least_cost"``); default: every pair (a complete graph, as Conefor's distance files).
    median_distance, probability
        The dispersal kernel passes through (``median_distance``, ``probability``), in the unit of the
        distance.  Default 11 km, 0.5 (``[metrics]`` of the run configuration).
    min_probability
        Drop links below this probability before the max-product paths (see :mod:`leopardgeo.stages.metrics`).
    landscape_area
        :math:`A_L` of PC and IIC in the unit of the weight; default: the sum of the weights.
    links
        Link metrics (default: up to :data:`leopardgeo.stages.metrics.LINK_METRICS_MAX_LINKS` links).
    pair_probability_floor
        Optional: pairs less probable than this are not recomputed in the dPC removal deltas, for speed
        on very large graphs, with the error bound reported as ``summary["dPC_error_bound"]``
        (see :mod:`leopardgeo.stages.metrics`); default: exact.
    crs
        CRS in metres to measure areas and ``centroid`` / ``edge`` distances in; default: the layer's
        own if projected, else its UTM zone.
    connectivity
        Neighbours of the least-cost search (4, 8 or 16).

    Returns
    -------
    PolygonMetrics

    Raises
    ------
    ConfigError
        Unknown distance, ``least_cost`` without a resistance raster, a threshold <= 0.
    DataError
        No polygons, non-polygon geometries, duplicate ids, a missing or negative weight.
    CRSError
        A layer without a CRS, or in a CRS not in metres.

    Examples
    --------
    Three 1-ha squares 100 m apart in a row (centroids 200 m apart), kernel p = 0.5 at 200 m:

    >>> sq = [shapely.box(x, 0, x + 100, 100) for x in (0, 200, 400)]
    >>> gdf = gpd.GeoDataFrame(geometry=sq, crs="EPSG:32652")
    >>> r = polygon_metrics(gdf, median_distance=200.0, max_distance=250.0)
    >>> r.links[["patch_a", "patch_b", "distance_m", "p"]].to_dict("split")["data"]
    [[1, 2, 200.0, 0.5], [2, 3, 200.0, 0.5]]
    >>> round(r.summary["PC"], 4)                  # (3 + 2 (0.5 + 0.5 + 0.25)) / 9
    0.6111
    >>> round(polygon_metrics(gdf, distance="edge", median_distance=100.0).summary["PC"], 4)   # same p: d = 100 m
    0.6111
    """
    try:
        how = Distance(str(distance).replace("-", "_"))
    except ValueError:
        msg = f"distance: expected one of {[d.value for d in Distance]}, found {distance!r}."
        raise ConfigError(msg) from None
    if how is Distance.LEAST_COST and resistance is None:
        msg = "distance 'least_cost': expected a resistance raster (resistance=...), found none."
        raise ConfigError(msg)
    if how is not Distance.LEAST_COST and resistance is not None:
        msg = (
            f"resistance: used only with distance 'least_cost', found distance {how.value!r}, so it would be "
            "ignored. Ask for least-cost distances (--distance least-cost), or leave the resistance out."
        )
        raise ConfigError(msg)
    if max_distance is not None and not max_distance > 0:
        msg = f"max_distance: expected a threshold > 0 or None (every pair), found {max_distance!r}."
        raise ConfigError(msg)
    gdf = polygons if isinstance(polygons, gpd.GeoDataFrame) else read_vector(
        polygons, layer, what="habitat polygons", drop_empty=False
    )
    if len(gdf) == 0:
        msg = "habitat polygons: expected at least one polygon, found an empty layer."
        raise DataError(msg)
    gdf = repair_invalid(gdf, "habitat polygons", stacklevel=3)  # a self-intersecting polygon has area 0 until repaired
    kinds = set(gdf.geom_type.dropna().unique()) - {"Polygon", "MultiPolygon"}
    blank = shapely.is_missing(gdf.geometry.values) | shapely.is_empty(gdf.geometry.values)
    if kinds or blank.any():
        where = ", ".join(str(i + 1) for i in np.flatnonzero(blank)[:5])
        found = sorted(kinds) if kinds else f"{int(blank.sum())} feature(s) without a geometry (feature {where} in file order)"
        msg = (
            f"habitat polygons: expected (multi)polygons, found {found}; node ids follow the file's order, so "
            "none is left out silently. Buffer points or lines into polygons, or delete the empty features."
        )
        raise DataError(msg)
    gdf = _metric_crs(gdf.reset_index(drop=True), crs)
    if id_field is None:
        ids = np.arange(1, len(gdf) + 1)
    else:
        if id_field not in gdf.columns:
            msg = f"id_field: expected a column {id_field!r}, found columns {list(gdf.columns)}."
            raise DataError(msg)
        ids = gdf[id_field].to_numpy()
        if pd.Series(ids).duplicated().any() or pd.isna(ids).any():
            dup = pd.Series(ids)[pd.Series(ids).duplicated()].unique()[:5].tolist()
            msg = f"id_field {id_field!r}: expected unique, non-missing ids, found duplicates {dup} or missing values."
            raise DataError(msg)
    if area_field is None:
        weight_col = "area_ha"
        weight = gdf.geometry.area.to_numpy() / M2_PER_HA
    else:
        if area_field not in gdf.columns:
            msg = f"area_field: expected a column {area_field!r}, found columns {list(gdf.columns)}."
            raise DataError(msg)
        weight_col = area_field
        weight = pd.to_numeric(gdf[area_field], errors="coerce").to_numpy(float)
        bad = ~(weight >= 0)
        if bad.any():
            msg = (
                f"area_field {area_field!r}: expected numbers >= 0, found {gdf[area_field][bad].head(3).tolist()} "
                f"on node(s) {ids[bad][:5].tolist()}. Fix them or drop those polygons."
            )
            raise DataError(msg)
    G = nx.Graph()
    for i, node in enumerate(ids):
        G.add_node(node.item() if hasattr(node, "item") else node, **{weight_col: float(weight[i])})
    order = list(G.nodes)
    dist_col = "cwd" if how is Distance.LEAST_COST else "distance_m"
    if how is Distance.LEAST_COST:
        # areas stay measured in metres above; geometries and paths go on the resistance raster's grid
        gdf, H = _least_cost(gdf, np.arange(1, len(gdf) + 1), resistance, max_distance, connectivity)
        edges = [(order[u - 1], order[v - 1], d["cwd"], d["geometry"]) for u, v, d in H.edges(data=True)]
        geoms = gdf.geometry.to_numpy()
        points = _node_points(geoms)
    else:
        geoms = gdf.geometry.to_numpy()
        points = _node_points(geoms)
        i, j, d, lines = _pairs(geoms, points, how, max_distance)
        edges = [(order[a], order[b], float(c), g) for a, b, c, g in zip(i, j, d, lines, strict=True)]
    for u, v, dd, _ in edges:
        G.add_edge(u, v, **{dist_col: dd})
    m = connectivity_metrics(
        G, attribute=weight_col, weight=dist_col, median_distance=median_distance, probability=probability,
        landscape_area=landscape_area, min_probability=min_probability, links=links,
        pair_probability_floor=pair_probability_floor,
    )  # fmt: skip
    node_tab = m.nodes.loc[order].reset_index(names="node_id")  # file order, as the geometries
    node_tab.insert(1, weight_col, weight)
    node_tab.insert(2, "point_x", shapely.get_x(points))
    node_tab.insert(3, "point_y", shapely.get_y(points))
    extra = gdf.drop(columns=[c for c in (gdf.geometry.name, weight_col) if c in gdf.columns])
    extra = extra.drop(columns=[c for c in extra.columns if c in node_tab.columns])
    nodes_gdf = gpd.GeoDataFrame(pd.concat([node_tab, extra.reset_index(drop=True)], axis=1), geometry=geoms, crs=gdf.crs)
    line_of = {frozenset((u, v)): g for u, v, _, g in edges}
    dist_of = {frozenset((u, v)): dd for u, v, dd, _ in edges}
    lt = m.links.copy()
    pairs = [frozenset(t) for t in zip(lt["patch_a"], lt["patch_b"], strict=True)]
    lt.insert(2, dist_col, [dist_of[p] for p in pairs])
    links_gdf = gpd.GeoDataFrame(lt, geometry=[line_of[p] for p in pairs], crs=gdf.crs)
    summary = dict(m.summary) | {
        "nodes": len(nodes_gdf),
        "links": len(links_gdf),
        "distance": how.value,
        "distance_unit": "cost-weighted metres" if how is Distance.LEAST_COST else "metres",
        "max_distance": max_distance,
        "median_distance": median_distance,
        "probability": probability,
        "weight": weight_col,
        "crs": str(gdf.crs.name),
    }
    return PolygonMetrics(nodes=nodes_gdf, links=links_gdf, metrics=m, summary=summary)


def write_polygon_metrics(result: PolygonMetrics, out_dir: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write the nodes and links with every metric: a styled GeoPackage, two CSV tables and the summary.

    ``leopardgeo.gpkg`` holds the layers ``habitat_nodes`` (polygons, graduated by dPC) and ``node_links``
    (lines, graduated by dPC_link), with QGIS styles in its ``layer_styles`` table; ``habitat_nodes.csv``
    and ``node_links.csv`` the same tables without geometry; ``node_metrics.json`` the global metrics and
    how the graph was built.  All or nothing; nothing is overwritten without ``overwrite``.

    Examples
    --------
    >>> import tempfile
    >>> gdf = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 100, 100), shapely.box(200, 0, 300, 100)], crs="EPSG:32652")
    >>> out = Path(tempfile.mkdtemp())
    >>> sorted(p.name for p in write_polygon_metrics(polygon_metrics(gdf), out))
    ['habitat_nodes.csv', 'leopardgeo.gpkg', 'node_links.csv', 'node_metrics.json']
    """
    with OutputWriter(out_dir, overwrite=overwrite, names=NODE_METRICS_FILES) as out:
        out.layers({"habitat_nodes": result.nodes, "node_links": result.links})
        result.nodes.drop(columns=result.nodes.geometry.name).to_csv(out.path("habitat_nodes.csv"), index=False)
        result.links.drop(columns=result.links.geometry.name).to_csv(out.path("node_links.csv"), index=False)
        doc = json_records(pd.DataFrame([result.summary]))[0]
        out.text("node_metrics.json", json.dumps(doc, indent=2) + "\n")
    return [Path(out_dir) / n for n in NODE_METRICS_FILES]
