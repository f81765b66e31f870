"""Cross-border routes: transboundary patches, cross-border corridors, crossing routes and their importance.

The ``crossborder`` stage (:mod:`leopardgeo.stages.crossborder`) calls these and
writes their tables.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd
from scipy import ndimage

import geopandas as gpd
import shapely
import shapely.ops

from leopardgeo.core.grid import Grid
from leopardgeo.stages.bordercross import _border_edges, _nearest_border, border_current
from leopardgeo.stages.fence import (
    FenceScenario,
    border_cells,
    cut_graph,
    fill_countries,
)

logger = logging.getLogger(__name__)



#: Columns of :func:`transboundary_patches`, in order (geometry last).
TRANSBOUNDARY_COLUMNS = (
    "patch_id",
    "name",
    "border",
    "country_a",
    "country_b",
    "area_ha_a",
    "area_ha_b",
    "border_length_m",
    "eff_resistance",
    "current_share",
    "peak_current",
    "border_line",
    "border_line_m",
    "protected_a",
    "protected_b",
)


def _side_names(
    protected_areas: gpd.GeoDataFrame | None, region: shapely.Geometry | None, min_area_m2: float
) -> str:
    """Protected areas with at least ``patches.PA_SHARE`` of their area (and one cell) in ``region``."""
    from leopardgeo.stages.patches import PA_SHARE

    if protected_areas is None or protected_areas.empty or region is None or region.is_empty:
        return ""
    geoms = protected_areas.geometry.to_numpy()
    inter = shapely.area(shapely.intersection(geoms, region))
    hit = (inter >= min_area_m2) & (inter >= PA_SHARE * shapely.area(geoms))
    return "; ".join(sorted(set(protected_areas["NAME"].astype(str).to_numpy()[hit])))


def transboundary_patches(
    labels: np.ndarray,
    patches: gpd.GeoDataFrame,
    countries: np.ndarray,
    country_codes: list[str],
    grid: Grid,
    resistance: np.ndarray,
    *,
    band_m: float = 5000.0,
    connectivity: int = 8,
    avg_resistances: bool = False,
    tolerance: float = 1e-8,
    borders: gpd.GeoDataFrame | None = None,
    border_field: str = "pair",
    protected_areas: gpd.GeoDataFrame | None = None,
    country_polygons: gpd.GeoDataFrame | None = None,
    country_field: str = "iso3",
) -> gpd.GeoDataFrame:
    r"""Habitat that straddles a border: one row per transboundary patch and pair of countries sharing a border in it.

    * ``border_length_m``: length of the border through the patch (grid edges between the two countries with
      both cells in the patch, × cell size; the border of :func:`fill_countries`);
    * a pairwise circuit (Circuitscape's conventions, :func:`leopardgeo.kernels.circuit.circuit_flow`) on the cells within
      3 × ``band_m`` of that border inside the patch: 1 A between the patch's cells in country a and in country b
      that lie farther than ``band_m`` from the border (all of a side's cells off the border when none lies that
      far).  Cells outside the patch conduct too; farther cells are left out, since the parts beyond ``band_m``
      are short-circuited anyway (this keeps the solve to a strip along the border, not the patch's extent).
      ``eff_resistance`` is the resistance between the two parts (ohms), ``current_share`` the share of the
      current that crosses the border inside the patch (:func:`border_current` summed over the edges in the
      patch), ``peak_current`` the largest current over one grid edge there; the point geometry is that edge's
      midpoint, the patch's main crossing;
    * ``border_line`` / ``border_line_m``: the nearest border line and its distance;
    * ``protected_a`` / ``protected_b``: protected areas (``NAME``) in the patch on each side (at least
      :data:`leopardgeo.stages.patches.PA_SHARE` of a protected area's area, and one cell, in the patch's part in that
      country; the rule that names patches).

    Examples
    --------
    A uniform 4 × 6 patch across a north-south border: the whole current crosses inside it.

    >>> from leopardgeo.testing import TEST_CRS
    >>> g = Grid.from_bounds((0, 0, 600, 400), cell_size_m=100, crs=TEST_CRS)
    >>> lab = np.ones((4, 6), dtype="int32")
    >>> p = gpd.GeoDataFrame({"patch_id": [1], "name": [""], "transboundary": [True], "countries": ["CHN;RUS"],
    ...                       "area_ha_chn": [12.0], "area_ha_rus": [12.0]}, geometry=[shapely.box(0, 0, 600, 400)],
    ...                      crs=TEST_CRS)
    >>> ctry = np.array([[0, 0, 0, 1, 1, 1]] * 4)
    >>> t = transboundary_patches(lab, p, ctry, ["CHN", "RUS"], g, np.ones((4, 6)), band_m=100)
    >>> t[["border", "border_length_m", "current_share"]].round(6).to_dict("records")
    [{'border': 'CHN-RUS', 'border_length_m': 400.0, 'current_share': 1.0}]
    """
    from leopardgeo.core.errors import LeopardGeoError
    from leopardgeo.kernels.circuit import circuit_flow

    labels = np.asarray(labels)
    cidx = fill_countries(np.asarray(countries))
    res = np.asarray(resistance, dtype=float)
    cell = grid.cell_size_m
    reach_m = 3.0 * band_m
    pad = math.ceil(reach_m / cell) + 1
    rows = []
    tb = patches[patches["transboundary"].astype(bool)] if "transboundary" in patches.columns else patches.iloc[:0]
    for prow in tb.itertuples(index=False):
        pid = int(prow.patch_id)
        rr, cc = np.nonzero(labels == pid)
        if len(rr) == 0:
            continue
        wr0, wr1 = max(rr.min() - pad, 0), min(rr.max() + pad + 1, grid.height)
        wc0, wc1 = max(cc.min() - pad, 0), min(cc.max() + pad + 1, grid.width)
        win = np.s_[wr0:wr1, wc0:wc1]
        lab_win, cty_win, res_win = labels[win], cidx[win], res[win]
        inside_win = lab_win == pid
        present = sorted({int(k) for k in np.unique(cty_win[inside_win]) if k >= 0})
        for i, ca in enumerate(present):
            for cb in present[i + 1 :]:
                edges = 0
                bmask = np.zeros(lab_win.shape, dtype=bool)  # cells on this border inside the patch
                for su, sv, _ in _border_edges(cty_win, 4):
                    pair = ((cty_win[su] == ca) & (cty_win[sv] == cb)) | ((cty_win[su] == cb) & (cty_win[sv] == ca))
                    m = pair & inside_win[su] & inside_win[sv]
                    edges += int(m.sum())
                    bmask[su] |= m
                    bmask[sv] |= m
                if edges == 0:
                    continue
                # the circuit runs on the cells within reach_m of this border inside the patch (cropped)
                strip = ndimage.distance_transform_edt(~bmask) * cell <= reach_m
                sr, sc = np.nonzero(strip)
                crop = np.s_[sr.min() : sr.max() + 1, sc.min() : sc.max() + 1]
                r0, c0 = wr0 + sr.min(), wc0 + sc.min()
                cty_w, inside = cty_win[crop], inside_win[crop]
                res_w = np.where(strip[crop], res_win[crop], np.nan)
                focal = np.zeros(cty_w.shape, dtype=np.int32)
                for k, (me, other) in enumerate(((ca, cb), (cb, ca)), start=1):
                    side = inside & (cty_w == me) & np.isfinite(res_w)
                    far = side & (ndimage.distance_transform_edt(cty_w != other) * cell > band_m)
                    if not far.any():
                        far = side & ~border_cells(np.where(np.isin(cty_w, (ca, cb)), cty_w, -1))
                    focal[far] = k
                r_eff = share = peak = math.nan
                pt = None
                if (focal == 1).any() and (focal == 2).any():
                    try:
                        out = circuit_flow(
                            res_w, focal, pairs=[(1, 2)], connectivity=connectivity, avg_resistances=avg_resistances,
                            tolerance=tolerance, voltage_maps=True, workers=1,
                        )
                    except LeopardGeoError as exc:
                        logger.info("patch %d: no circuit across the border (%s)", pid, exc)
                        out = None
                    if out is not None and len(out.resistances) and out.voltages:
                        r_eff = float(out.resistances["eff_resistance"].iloc[0])
                        volts = next(iter(out.voltages.values()))
                        cur, ua, ub = border_current(
                            res_w, volts, cty_w, ca, cb, connectivity=connectivity, avg_resistances=avg_resistances
                        )
                        total = float(cur.sum())
                        if cur.size and math.isfinite(r_eff) and abs(total) > 0:
                            # from a to b; the total is 1 A, less what flows round through a third country
                            cur = cur / total * min(abs(total), 1.0)
                            in_p = inside[ua[:, 0], ua[:, 1]] & inside[ub[:, 0], ub[:, 1]]
                            share = float(cur[in_p].sum())
                            if in_p.any():
                                j = int(np.argmax(np.where(in_p, cur, -np.inf)))
                                peak = float(cur[j])
                                xa, ya = grid.xy(np.array([ua[j, 0] + r0]), np.array([ua[j, 1] + c0]))
                                xb, yb = grid.xy(np.array([ub[j, 0] + r0]), np.array([ub[j, 1] + c0]))
                                pt = shapely.Point((xa[0] + xb[0]) / 2, (ya[0] + yb[0]) / 2)
                if pt is None:  # no circuit: a border cell in the middle of the border's cells inside the patch
                    br, bc = np.nonzero(bmask)
                    j = len(br) // 2
                    x, y = grid.xy(np.array([br[j] + wr0]), np.array([bc[j] + wc0]))
                    pt = shapely.Point(x[0], y[0])
                code_a, code_b = country_codes[ca], country_codes[cb]
                name, dist = _nearest_border(borders, border_field, pt)
                sides = []
                for code in (code_a, code_b):
                    region = None
                    if country_polygons is not None and country_field in country_polygons.columns:
                        poly = shapely.union_all(
                            country_polygons.geometry[country_polygons[country_field].astype(str) == code].to_numpy()
                        )
                        region = shapely.intersection(prow.geometry, poly)
                    sides.append(_side_names(protected_areas, region, grid.cell_size_m**2))
                rows.append(
                    {
                        "patch_id": pid,
                        "name": str(getattr(prow, "name", "") or ""),
                        "border": "-".join(sorted((code_a, code_b))),
                        "country_a": code_a,
                        "country_b": code_b,
                        "area_ha_a": float(getattr(prow, f"area_ha_{code_a.lower()}", math.nan)),
                        "area_ha_b": float(getattr(prow, f"area_ha_{code_b.lower()}", math.nan)),
                        "border_length_m": edges * cell,
                        "eff_resistance": r_eff,
                        "current_share": share,
                        "peak_current": peak,
                        "border_line": name,
                        "border_line_m": dist,
                        "protected_a": sides[0],
                        "protected_b": sides[1],
                        "geometry": pt,
                    }
                )
    if not rows:
        return gpd.GeoDataFrame({c: [] for c in TRANSBOUNDARY_COLUMNS}, geometry=[], crs=grid.crs)
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=grid.crs)


@dataclass(frozen=True)
class CrossBorderResult:
    """Outputs of the cross-border stage.

    Attributes
    ----------
    crossings
        :func:`border_crossings` points.
    permeability
        :func:`border_permeability` segments (empty without border lines).
    fence
        The fence scenario (:func:`compare_fenced`), or None when ``fence = "none"``.
    fence_mask
        bool raster of fence cells (None without a scenario).
    transboundary
        :func:`transboundary_patches` (empty when no patch straddles a border).
    routes
        :func:`crossing_routes`: every crossing route, ranked.
    """

    crossings: gpd.GeoDataFrame
    permeability: gpd.GeoDataFrame
    fence: FenceScenario | None = None
    fence_mask: np.ndarray | None = None
    transboundary: gpd.GeoDataFrame | None = None
    routes: gpd.GeoDataFrame | None = None


#: Columns of the ranked cross-border corridor table, in order.
CROSSBORDER_COLUMNS = (
    "rank",
    "from_id",
    "from_name",
    "to_id",
    "to_name",
    "countries",
    "kind",
    "score",
    "cwd",
    "corridor_width_m",
    "pinch_current",
    "dPC_link",
    "crossing_lon",
    "crossing_lat",
    "border",
    "protected_areas",
)


def crossborder_corridors(graph: nx.Graph, crossings: gpd.GeoDataFrame | None = None) -> pd.DataFrame:
    """The cross-border links ranked by ``score`` (then ``cwd``): one row per link with ``crosses_border``.

    ``crossing_lon`` / ``crossing_lat`` (WGS 84) are the link's first border crossing; ``protected_areas`` the
    protected-area names of the two patches it joins (patch attribute ``name``).  ``corridor_width_m`` is the
    link's own (the corridor's narrowest width, as in the links table; NaN where the link has none).  Seams
    (``kind = "touching"``, patches that touch) have no score and come last.

    Examples
    --------
    >>> G = nx.Graph()
    >>> G.add_node(1, name="Land of the Leopard"); G.add_node(2, name="NE China Tiger and Leopard")
    >>> G.add_edge(1, 2, cwd=500.0, countries="CHN;RUS", crosses_border=True, score=80.0)
    >>> crossborder_corridors(G)[["rank", "from_name", "to_name", "countries"]].to_dict("records")
    [{'rank': 1, 'from_name': 'Land of the Leopard', 'to_name': 'NE China Tiger and Leopard', 'countries': 'CHN;RUS'}]
    """
    from leopardgeo.stages.graph import CORRIDOR, link_kind

    first: dict[tuple[int, int], tuple[float, float, str]] = {}
    if crossings is not None and len(crossings):
        ll = crossings.to_crs("EPSG:4326") if crossings.crs is not None else crossings
        for row, pt in zip(crossings.itertuples(index=False), ll.geometry, strict=True):
            key = (int(row.patch_a), int(row.patch_b))
            first.setdefault(key, (round(pt.x, 4), round(pt.y, 4), str(row.border)))
    rows = []
    for u, v, d in graph.edges(data=True):
        if not d.get("crosses_border"):
            continue
        a, b = min(u, v), max(u, v)
        na, nb = (str(graph.nodes[n].get("name") or "") for n in (a, b))
        lon, lat, border = first.get((a, b), (math.nan, math.nan, ""))
        rows.append(
            {
                "from_id": a,
                "from_name": na,
                "to_id": b,
                "to_name": nb,
                "countries": str(d.get("countries", "")),
                "kind": link_kind(d),
                "score": float(d.get("score", math.nan)),
                "cwd": float(d.get("cwd", math.nan)),
                "corridor_width_m": float(d.get("corridor_width_m", math.nan)),
                "pinch_current": float(d.get("pinch_current", math.nan)),
                "dPC_link": float(d.get("dPC_link", math.nan)),
                "crossing_lon": lon,
                "crossing_lat": lat,
                "border": border,
                "protected_areas": "; ".join(x for x in (na, nb) if x),
            }
        )
    t = pd.DataFrame(rows, columns=[c for c in CROSSBORDER_COLUMNS if c != "rank"])
    t["seam"] = t["kind"] != CORRIDOR
    t["score_key"] = t["score"].fillna(-math.inf)
    t = t.sort_values(["seam", "score_key", "cwd"], ascending=[True, False, True], kind="stable")
    t = t.drop(columns=["score_key", "seam"])
    t.insert(0, "rank", np.arange(1, len(t) + 1))
    return t.reset_index(drop=True)


#: Columns of :func:`crossing_routes`, in order.
ROUTE_COLUMNS = (
    "rank",
    "route",
    "route_id",
    "importance_dpc",
    "country_a",
    "patch_a",
    "protected_a",
    "country_b",
    "patch_b",
    "protected_b",
    "crossing_lon",
    "crossing_lat",
    "border",
    "border_segment",
    "border_line_m",
    "cwd",
    "corridor_width_m",
    "border_length_m",
    "current",
    "current_share",
)


def crossing_importance(
    graph: nx.Graph,
    patch_ids: Sequence[int],
    labels: np.ndarray,
    countries: np.ndarray,
    country_codes: list[str],
    grid: Grid,
    *,
    attribute: str = "area_ha",
    weight: str = "cwd",
    median_distance: float = 11_000.0,
    probability: float = 0.5,
    landscape_area: float | None = None,
    min_probability: float | None = None,
) -> dict[int, float]:
    r"""Importance of each transboundary patch as a crossing: % of PC lost when it is cut at the border.

    .. math:: \mathrm{dPC_{cut}} = 100\,(PC - PC_{cut}) / PC

    with :math:`PC_{cut}` the probability of connectivity (Saura & Pascual-Hortal 2007) of :func:`cut_graph`, the
    patch's national parts with no passage between them, on the same kernel and landscape area.  It is the
    transboundary patch's counterpart of a link's ``dPC_link`` (PC lost without the link), so links and
    patches rank on one scale (:func:`crossing_routes`).

    Examples
    --------
    >>> from leopardgeo.testing import TEST_CRS
    >>> g = Grid.from_bounds((0, 0, 200, 100), cell_size_m=100, crs=TEST_CRS)
    >>> G = nx.Graph(); G.add_node(1, area_ha=2.0, area_ha_chn=1.0, area_ha_rus=1.0, countries="CHN;RUS")
    >>> crossing_importance(G, [1], np.ones((1, 2), "int32"), np.array([[0, 1]]), ["CHN", "RUS"], g)  # 4 -> 2
    {1: 50.0}
    """
    from leopardgeo.stages.metrics import connectivity_metrics

    kw = {
        "attribute": attribute,
        "weight": weight,
        "median_distance": median_distance,
        "probability": probability,
        "min_probability": min_probability,
        "links": False,  # PC alone: no link importance needed
    }
    if landscape_area is None:
        landscape_area = float(sum(float(d.get(attribute, 0.0)) for _, d in graph.nodes(data=True)))
    pc = connectivity_metrics(graph, landscape_area=landscape_area, **kw).summary["PC"]
    out = {}
    for pid in patch_ids:
        cut = cut_graph(graph, int(pid), labels, countries, country_codes, grid, attribute=attribute)
        pc_cut = connectivity_metrics(cut, landscape_area=landscape_area, **kw).summary["PC"]
        out[int(pid)] = 100.0 * (pc - pc_cut) / pc if pc > 0 else 0.0
    return out


def _nearest_segment(permeability: gpd.GeoDataFrame | None, pts: np.ndarray) -> list[float]:
    if permeability is None or permeability.empty or len(pts) == 0:
        return [math.nan] * len(pts)
    tree = shapely.STRtree(permeability.geometry.to_numpy())
    idx = tree.nearest(pts)
    return [float(permeability["segment"].iloc[int(i)]) for i in idx]


def crossing_routes(
    graph: nx.Graph,
    crossings: gpd.GeoDataFrame | None,
    transboundary: gpd.GeoDataFrame | None,
    *,
    importance: dict[int, float] | None = None,
    permeability: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Every route leopards can take across a border, ranked: where they cross, and what closing it would cost.

    Two kinds of route, one row each:

    * ``link``: a least-cost link whose path crosses a border (``crosses_border``, seams excluded), at its first
      crossing; sides a and b are the countries before and after the crossing, with the patch and its
      protected areas (patch ``name``) on each side; ``current`` is the cumulative current density at the
      crossing cell (circuit stage);
    * ``transboundary patch``: habitat straddling the border (:func:`transboundary_patches`), at its main
      crossing; ``border_length_m`` of border through habitat, ``current_share`` of the current between its
      national parts that crosses inside it.

    ``importance_dpc`` is the % of the network's probability of connectivity lost if the route were closed:
    ``dPC_link`` for a link (the link removed), :func:`crossing_importance` for a transboundary patch (cut at
    every border it straddles, with no passage).  Routes rank by it (NaN last, then by ``cwd``); the rows of a
    patch across several borders share its importance and follow each other, the border carrying most
    (``border_length_m`` × ``current_share``) first.  ``border_segment`` is the
    nearest segment of the border-permeability profile.  Point geometry: the crossing.

    Examples
    --------
    >>> G = nx.Graph(); G.add_node(1, name="A", countries="CHN"); G.add_node(2, name="B", countries="RUS")
    >>> G.add_edge(1, 2, cwd=900.0, euclid_m=500.0, crosses_border=True, dPC_link=3.0)
    >>> x = gpd.GeoDataFrame({"patch_a": [1], "patch_b": [2], "border": ["CHN-RUS"], "from_country": ["CHN"],
    ...                       "to_country": ["RUS"], "current": [0.2], "border_line_m": [40.0]},
    ...                      geometry=[shapely.Point(0, 0)], crs="EPSG:32652")
    >>> crossing_routes(G, x, None)[["rank", "route", "route_id", "importance_dpc", "patch_a", "patch_b"]].to_dict("records")
    [{'rank': 1, 'route': 'link', 'route_id': '1-2', 'importance_dpc': 3.0, 'patch_a': 'A', 'patch_b': 'B'}]
    """
    from leopardgeo.stages.graph import CORRIDOR, link_kind

    importance = importance or {}
    rows = []
    first: dict[tuple[int, int], object] = {}
    if crossings is not None and len(crossings):
        for row in crossings.itertuples(index=False):
            first.setdefault((int(row.patch_a), int(row.patch_b)), row)
    for u, v, d in graph.edges(data=True):
        if not d.get("crosses_border") or link_kind(d) != CORRIDOR:
            continue
        a, b = min(u, v), max(u, v)
        x = first.get((a, b))
        name = {n: str(graph.nodes[n].get("name") or "") for n in (a, b)}
        rows.append(
            {
                "route": "link",
                "route_id": f"{a}-{b}",
                "importance_dpc": float(d.get("dPC_link", math.nan)),
                "country_a": str(x.from_country) if x is not None else "",
                "patch_a": name[a] or f"patch {a}",
                "protected_a": name[a],
                "country_b": str(x.to_country) if x is not None else "",
                "patch_b": name[b] or f"patch {b}",
                "protected_b": name[b],
                "border": str(x.border) if x is not None else "",
                "border_line_m": float(getattr(x, "border_line_m", math.nan)) if x is not None else math.nan,
                "cwd": float(d.get("cwd", math.nan)),
                "corridor_width_m": float(d.get("corridor_width_m", math.nan)),
                "border_length_m": math.nan,
                "current": float(getattr(x, "current", math.nan)) if x is not None else math.nan,
                "current_share": math.nan,
                "geometry": x.geometry if x is not None else None,
            }
        )
    if transboundary is not None:
        for t in transboundary.itertuples(index=False):
            label = str(t.name) or f"patch {int(t.patch_id)}"
            rows.append(
                {
                    "route": "transboundary patch",
                    "route_id": str(int(t.patch_id)),
                    "importance_dpc": float(importance.get(int(t.patch_id), math.nan)),
                    "country_a": str(t.country_a),
                    "patch_a": label,
                    "protected_a": str(t.protected_a),
                    "country_b": str(t.country_b),
                    "patch_b": label,
                    "protected_b": str(t.protected_b),
                    "border": str(t.border),
                    "border_line_m": float(t.border_line_m),
                    "cwd": math.nan,
                    "corridor_width_m": math.nan,
                    "border_length_m": float(t.border_length_m),
                    "current": float(t.peak_current),
                    "current_share": float(t.current_share),
                    "geometry": t.geometry,
                }
            )
    crs = crossings.crs if crossings is not None else (transboundary.crs if transboundary is not None else None)
    cols = [c for c in ROUTE_COLUMNS if c not in ("rank", "crossing_lon", "crossing_lat", "border_segment")]
    if not rows:
        empty = {c: [] for c in ROUTE_COLUMNS}
        return gpd.GeoDataFrame(empty, geometry=[], crs=crs)
    t = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)[[*cols, "geometry"]]
    has = t.geometry.notna() & ~t.geometry.is_empty
    lon = np.full(len(t), np.nan)
    lat = np.full(len(t), np.nan)
    if has.any() and crs is not None:
        ll = t[has].to_crs("EPSG:4326").geometry
        lon[has.to_numpy()] = ll.x.round(4).to_numpy()
        lat[has.to_numpy()] = ll.y.round(4).to_numpy()
    t["crossing_lon"] = lon
    t["crossing_lat"] = lat
    seg = np.full(len(t), np.nan)
    seg[has.to_numpy()] = _nearest_segment(permeability, t.geometry[has].to_numpy())
    t["border_segment"] = seg
    t["key"] = t["importance_dpc"].fillna(-math.inf)
    t["cwd_key"] = t["cwd"].fillna(0.0)
    t["flow_key"] = (t["border_length_m"] * t["current_share"]).fillna(0.0)
    t = t.sort_values(["key", "cwd_key", "flow_key"], ascending=[False, True, False], kind="stable")
    t = t.drop(columns=["key", "cwd_key", "flow_key"])
    t.insert(0, "rank", np.arange(1, len(t) + 1))
    return gpd.GeoDataFrame(t[[*ROUTE_COLUMNS, "geometry"]].reset_index(drop=True), geometry="geometry", crs=crs)
