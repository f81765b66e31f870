"""A scenario against the baseline: links lost, gained or lengthened, PC / EC, each patch's dPC, capacity, sites.

The comparison works on what a run writes (:class:`RunTables`: the links and patch tables, the metrics
summary, the capacity and site tables, the patch, current and corridor rasters), so two run folders, or a
run and one of its scenarios, compare the same way.  Patches are matched by their cells: each patch of the
scenario stands for the baseline patch it overlaps most (:func:`match_patches`), so a scenario that splits,
shrinks or grows a patch still compares link by link.

Statuses of a link (by its two baseline patches): ``lost`` (in the baseline only), ``gained`` (in the
scenario only), ``lengthened`` / ``shortened`` (``cwd_ratio`` = cwd after / before above 1 + ``rtol`` or
below 1 − ``rtol``), ``unchanged``, ``merged`` (the scenario joined its two patches into one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

import geopandas as gpd

__all__ = [
    "LINK_STATUSES",
    "Comparison",
    "RunTables",
    "compare_links",
    "compare_patches",
    "compare_runs",
    "compare_sites",
    "corridor_change",
    "crossing_current",
    "match_patches",
    "reachable_capacity",
]

#: Link statuses, in the order tables list them.
LINK_STATUSES = ("lost", "gained", "lengthened", "shortened", "unchanged", "merged")


@dataclass
class RunTables:
    """What the comparison reads from one run (a folder, or a scenario in memory).

    Attributes
    ----------
    links
        One row per link: ``patch_a``, ``patch_b``, ``cwd`` (+ any attributes), LineString geometry.
    nodes
        One row per patch: ``patch_id``, ``name``, ``area_ha``, ``dPC`` (when metrics ran).
    metrics
        ``metrics.json``: ``PC``, ``EC_ha``, ``components``.
    labels
        Patch raster (0 = none).
    capacity
        Adults per patch (``patch_id``, ``adults``), or None without territories.
    sites
        The sites table (``site_id``, ``name``, ``rank``, ``score``, ``cwd_to_source``), or None.
    source
        Name of the source population (a protected area or patch name), or None.
    source_patches
        The patches the source population lies in (the sites stage's ``SourceRegion.patch_ids``); when None,
        the patches whose name holds ``source``.
    current, corridors
        Cumulative current density and corridor rasters (NaN = none), or None.
    """

    links: gpd.GeoDataFrame
    nodes: pd.DataFrame
    metrics: dict[str, Any]
    labels: np.ndarray
    capacity: pd.DataFrame | None = None
    sites: pd.DataFrame | None = None
    source: str | None = None
    current: np.ndarray | None = None
    corridors: np.ndarray | None = None
    source_patches: tuple[int, ...] | None = None


@dataclass
class Comparison:
    """A scenario compared with the baseline (:func:`compare_runs`)."""

    summary: dict[str, Any]
    links: gpd.GeoDataFrame
    patches: pd.DataFrame
    patch_map: dict[int, int]
    sites: pd.DataFrame | None = None
    current_diff: np.ndarray | None = None
    corridor_change: np.ndarray | None = None
    crossings: pd.DataFrame | None = field(default=None)


def match_patches(base_labels: np.ndarray, scen_labels: np.ndarray) -> dict[int, int]:
    """Each scenario patch → the baseline patch it overlaps most (0: it overlaps none, a new patch).

    Examples
    --------
    >>> b = np.array([[1, 1, 0, 2, 2]])
    >>> s = np.array([[1, 2, 0, 3, 3]])  # the scenario split baseline patch 1 into 1 and 2
    >>> match_patches(b, s)
    {1: 1, 2: 1, 3: 2}
    """
    b = np.asarray(base_labels).ravel().astype("int64")
    s = np.asarray(scen_labels).ravel().astype("int64")
    ids = np.unique(s[s > 0])
    if not len(ids):
        return {}
    both = (s > 0) & (b > 0)
    pairs = pd.DataFrame({"s": s[both], "b": b[both]}).value_counts().reset_index(name="n")
    pairs = pairs.sort_values(["s", "n", "b"], ascending=[True, False, True]).drop_duplicates("s")
    best = dict(zip(pairs["s"].astype(int), pairs["b"].astype(int), strict=True))
    return {int(i): best.get(int(i), 0) for i in ids}


def _key(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a <= b else (b, a)


def compare_links(
    base: gpd.GeoDataFrame,
    scen: gpd.GeoDataFrame,
    patch_map: dict[int, int] | None = None,
    *,
    base_to_scen: dict[int, int] | None = None,
    rtol: float = 1e-6,
) -> gpd.GeoDataFrame:
    """Each link of either run with its status, ``cwd_before``, ``cwd_after``, ``cwd_ratio`` (after / before).

    Statuses: :data:`LINK_STATUSES`; ``merged`` when the scenario joined the link's two patches into one
    (``cwd_after`` 0).  A baseline patch is held in the scenario by the scenario patches that overlap it most
    (``patch_map``: scenario → baseline; its parts when the scenario cut it) and by the scenario patch holding
    most of its cells (``base_to_scen``); a baseline link (a, b) compares with the cheapest scenario link
    between a patch holding a and one holding b.  A scenario link that no baseline link matches is ``gained``,
    named by the baseline patches its ends overlap most (0 for a new patch), the cheapest per pair.  Both maps
    default to the identity.  Geometry: the baseline path (the scenario's for a gained link).

    Examples
    --------
    >>> import shapely
    >>> ln = shapely.LineString([(0, 0), (1, 1)])
    >>> b = gpd.GeoDataFrame({"patch_a": [1, 2], "patch_b": [2, 3], "cwd": [10.0, 5.0]}, geometry=[ln, ln])
    >>> s = gpd.GeoDataFrame({"patch_a": [2, 1], "patch_b": [3, 3], "cwd": [8.0, 20.0]}, geometry=[ln, ln])
    >>> compare_links(b, s)[["patch_a", "patch_b", "status", "cwd_ratio"]].to_numpy().tolist()
    [[1, 2, 'lost', nan], [1, 3, 'gained', nan], [2, 3, 'lengthened', 1.6]]

    Patches 1 and 2 restored into one (scenario patch 1), which links to patch 3 (scenario patch 2):

    >>> s = gpd.GeoDataFrame({"patch_a": [1], "patch_b": [2], "cwd": [5.0]}, geometry=[ln])
    >>> compare_links(b, s, {1: 1, 2: 3}, base_to_scen={1: 1, 2: 1, 3: 2})["status"].tolist()
    ['merged', 'unchanged']

    A fence cuts patch 2 into parts 2 and 4; part 4 keeps the link to 3, part 2 the link to 1:

    >>> s = gpd.GeoDataFrame({"patch_a": [1, 4, 2], "patch_b": [2, 3, 4], "cwd": [10.0, 5.0, 30.0]}, geometry=[ln] * 3)
    >>> compare_links(b, s, {1: 1, 2: 2, 3: 3, 4: 2})["status"].tolist()
    ['unchanged', 'unchanged']
    """
    pm = patch_map or {}
    b2s = base_to_scen or {}
    holds: dict[int, set[int]] = {}
    for x, a in pm.items():
        holds.setdefault(int(a), set()).add(int(x))
    for a, x in b2s.items():
        holds.setdefault(int(a), set()).add(int(x))

    def held(a: int) -> set[int]:
        return holds.get(a) or {a}

    def cheapest(frame: gpd.GeoDataFrame) -> dict[tuple[int, int], tuple[float, Any]]:
        out: dict[tuple[int, int], tuple[float, Any]] = {}
        for a, b, c, g in zip(frame["patch_a"], frame["patch_b"], frame["cwd"], frame.geometry, strict=True):
            k = _key(int(a), int(b))
            if k not in out or float(c) < out[k][0]:
                out[k] = (float(c), g)
        return out

    before, after = cheapest(base), cheapest(scen)
    rows = []
    used: set[tuple[int, int]] = set()
    for (a, b), (c0, g0) in before.items():
        sa, sb = b2s.get(a, a), b2s.get(b, b)
        match = [k for k in after if (k[0] in held(a) and k[1] in held(b)) or (k[0] in held(b) and k[1] in held(a))]
        used.update(match)
        if sa == sb and sa != 0:
            status, c1 = "merged", 0.0
        elif match:
            c1 = min(after[k][0] for k in match)
            status = "lengthened" if c1 > c0 * (1 + rtol) else "shortened" if c1 < c0 * (1 - rtol) else "unchanged"
        else:
            status, c1 = "lost", math.nan
        ratio = c1 / c0 if status != "lost" and c0 > 0 else math.nan
        rows.append({"patch_a": a, "patch_b": b, "status": status, "cwd_before": c0, "cwd_after": c1, "cwd_ratio": ratio,
                     "geometry": g0})  # fmt: skip
    gained: dict[tuple[int, int], tuple[float, Any]] = {}
    for (x, y), (c1, g1) in after.items():
        a, b = pm.get(x, x), pm.get(y, y)
        if (x, y) in used or (a == b and a != 0):
            continue  # matched, or between two parts of one baseline patch
        k = _key(a, b)
        if k in before:
            continue  # a second route between two baseline patches already compared
        if k not in gained or c1 < gained[k][0]:
            gained[k] = (c1, g1)
    for (a, b), (c1, g1) in gained.items():
        rows.append({"patch_a": a, "patch_b": b, "status": "gained", "cwd_before": math.nan, "cwd_after": c1,
                     "cwd_ratio": math.nan, "geometry": g1})  # fmt: skip
    cols = ["patch_a", "patch_b", "status", "cwd_before", "cwd_after", "cwd_ratio"]
    if not rows:
        return gpd.GeoDataFrame({c: [] for c in cols}, geometry=[], crs=base.crs)
    out = gpd.GeoDataFrame(rows, geometry="geometry", crs=base.crs)
    return out.sort_values(["patch_a", "patch_b"], kind="stable").reset_index(drop=True)


def compare_patches(base: pd.DataFrame, scen: pd.DataFrame, patch_map: dict[int, int] | None = None) -> pd.DataFrame:
    """Each baseline patch: ``area_ha`` and ``dPC`` before and after (scenario patches summed onto their match).

    Examples
    --------
    >>> b = pd.DataFrame({"patch_id": [1, 2], "name": ["a", "b"], "area_ha": [10.0, 5.0], "dPC": [60.0, 20.0]})
    >>> s = pd.DataFrame({"patch_id": [1, 2], "area_ha": [10.0, 5.0], "dPC": [70.0, 10.0]})
    >>> compare_patches(b, s)[["patch_id", "dPC_before", "dPC_after", "dPC_change"]].to_numpy().tolist()
    [[1.0, 60.0, 70.0, 10.0], [2.0, 20.0, 10.0, -10.0]]
    """
    pm = patch_map or {}
    s = pd.DataFrame(scen).copy()
    s["base_id"] = [pm.get(int(p), int(p)) for p in s["patch_id"]]
    cols = [c for c in ("area_ha", "dPC") if c in s.columns]
    agg = s.groupby("base_id")[cols].sum() if cols else pd.DataFrame(index=pd.Index([], name="base_id"))
    out = pd.DataFrame({"patch_id": base["patch_id"].astype(int).to_numpy()})
    if "name" in base.columns:
        out["name"] = base["name"].fillna("").to_numpy()
    for c in cols:
        if c not in base.columns:
            continue
        out[f"{c}_before"] = base[c].astype(float).to_numpy()
        out[f"{c}_after"] = agg[c].reindex(out["patch_id"]).fillna(0.0).to_numpy()
        out[f"{c}_change"] = out[f"{c}_after"] - out[f"{c}_before"]
    return out


def _source_patches(nodes: pd.DataFrame, source: str | None) -> list[int]:
    if not source or "name" not in nodes.columns:
        return []
    names = nodes["name"].fillna("").astype(str)
    hit = [int(p) for p, n in zip(nodes["patch_id"], names, strict=True) if source.lower() in n.lower()]
    return hit


def reachable_capacity(
    links: pd.DataFrame,
    nodes: pd.DataFrame,
    capacity: pd.DataFrame | None,
    source: str | None,
    source_patches: Sequence[int] | None = None,
) -> tuple[float, list[int]]:
    """Adults in the patches the source population's patches reach through links, and those source patches.

    The source patches are ``source_patches``, else those whose ``name`` holds ``source`` (a protected area
    names the patches it overlaps).  ``nan`` without capacity or without a source patch.

    Examples
    --------
    >>> links = pd.DataFrame({"patch_a": [1], "patch_b": [2]})
    >>> nodes = pd.DataFrame({"patch_id": [1, 2, 3], "name": ["Land of the Leopard", "", ""]})
    >>> cap = pd.DataFrame({"patch_id": [1, 2, 3], "adults": [10.0, 5.0, 7.0]})
    >>> reachable_capacity(links, nodes, cap, "Land of the Leopard")
    (15.0, [1])
    """
    src = [int(p) for p in source_patches] if source_patches is not None else _source_patches(nodes, source)
    if capacity is None or not src:
        return math.nan, src
    g = nx.Graph()
    g.add_nodes_from(int(p) for p in nodes["patch_id"])
    g.add_edges_from((int(a), int(b)) for a, b in zip(links["patch_a"], links["patch_b"], strict=True))
    reach: set[int] = set()
    for p in src:
        if p in g:
            reach |= nx.node_connected_component(g, p)
    adults = capacity.groupby("patch_id")["adults"].sum()
    return float(sum(float(adults.get(p, 0.0)) for p in reach)), src


def compare_sites(base: pd.DataFrame | None, scen: pd.DataFrame | None) -> pd.DataFrame | None:
    """Each site's rank, score and least-cost distance to the source before and after; ``connected`` after.

    Examples
    --------
    >>> b = pd.DataFrame({"site_id": [1, 2], "name": ["a", "b"], "rank": [1, 2], "score": [60.0, 50.0],
    ...                   "cwd_to_source": [100.0, 80.0]})
    >>> s = b.assign(rank=[2, 1], score=[40.0, 50.0], cwd_to_source=[np.inf, 80.0])
    >>> compare_sites(b, s)[["site_id", "rank_before", "rank_after", "connected_after"]].to_numpy().tolist()
    [[1, 1, 2, False], [2, 2, 1, True]]
    """
    if base is None or scen is None or "site_id" not in base.columns or "site_id" not in scen.columns:
        return None
    keep = [c for c in ("rank", "score", "cwd_to_source", "eff_resistance") if c in base.columns and c in scen.columns]
    b = base[["site_id", *(["name"] if "name" in base.columns else []), *keep]]
    s = scen[["site_id", *keep]]
    out = b.merge(s, on="site_id", how="outer", suffixes=("_before", "_after"))
    if "cwd_to_source" in keep:
        out["connected_before"] = np.isfinite(out["cwd_to_source_before"].astype(float))
        out["connected_after"] = np.isfinite(out["cwd_to_source_after"].astype(float))
    return out


def crossing_current(
    masks: dict[str, np.ndarray], current_before: np.ndarray | None, current_after: np.ndarray | None
) -> pd.DataFrame:
    """Current through each crossing: the cumulative current density summed and at its highest over its cells.

    Examples
    --------
    >>> m = {"underpass": np.array([[False, True, True]])}
    >>> crossing_current(m, np.array([[1.0, 0.0, 0.0]]), np.array([[0.5, 2.0, 1.0]])).to_dict("records")
    [{'crossing': 'underpass', 'cells': 2, 'current_sum_before': 0.0, 'current_sum_after': 3.0, 'current_max_after': 2.0}]
    """
    rows = []
    for name, m in masks.items():
        row: dict[str, Any] = {"crossing": name, "cells": int(m.sum())}
        for tag, cur in (("before", current_before), ("after", current_after)):
            if cur is None:
                continue
            v = np.asarray(cur)[m]
            v = v[np.isfinite(v)]
            row[f"current_sum_{tag}"] = float(v.sum()) if v.size else 0.0
            if tag == "after":
                row["current_max_after"] = float(v.max()) if v.size else 0.0
        rows.append(row)
    return pd.DataFrame(rows)


def corridor_change(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """uint8 raster: 1 corridor lost (baseline only), 2 corridor gained (scenario only), 3 corridor in both, 0 none.

    Examples
    --------
    >>> corridor_change(np.array([[1.0, np.nan, 2.0, np.nan]]), np.array([[np.nan, 1.0, 3.0, np.nan]]))
    array([[1, 2, 3, 0]], dtype=uint8)
    """
    b = np.isfinite(before)
    a = np.isfinite(after)
    return (b & ~a) * np.uint8(1) + (a & ~b) * np.uint8(2) + (a & b) * np.uint8(3)


def _pct(x0: float, x1: float) -> float:
    return 100.0 * (x1 - x0) / x0 if x0 and math.isfinite(x0) and math.isfinite(x1) else math.nan


def compare_runs(
    base: RunTables, scen: RunTables, *, crossing_masks: dict[str, np.ndarray] | None = None, rtol: float = 1e-6
) -> Comparison:
    """The scenario against the baseline: summary, links, patches, sites, crossings, difference rasters.

    The summary holds ``PC_before`` / ``PC_after`` / ``PC_change_pct``, the same for ``EC_ha``, link counts by
    status, ``components_before`` / ``_after``, ``newly_isolated`` (baseline patches with links before and
    none after), ``patches_split``, ``most_changed_link`` (a lost link, else the one whose cost rose most,
    else the one whose cost fell most: ``patch_a``, ``patch_b``, ``status``, ``cwd_ratio``), ``patch_names``,
    ``capacity_reachable_before`` / ``_after`` (adults reachable from the source, :func:`reachable_capacity`)
    and ``sites_disconnected``.
    """
    pm = match_patches(base.labels, scen.labels)
    b2s = match_patches(scen.labels, base.labels)
    links = compare_links(base.links, scen.links, pm, base_to_scen=b2s, rtol=rtol)
    patches = compare_patches(base.nodes, scen.nodes, pm)
    summary: dict[str, Any] = {}
    for key in ("PC", "EC_ha"):
        x0, x1 = float(base.metrics.get(key, math.nan)), float(scen.metrics.get(key, math.nan))
        summary |= {f"{key}_before": x0, f"{key}_after": x1, f"{key}_change_pct": _pct(x0, x1)}
    summary |= {f"links_{s}": int((links["status"] == s).sum()) for s in LINK_STATUSES}
    summary["links_before"] = len(base.links)
    summary["links_after"] = len(scen.links)
    summary["components_before"] = base.metrics.get("components")
    summary["components_after"] = scen.metrics.get("components")
    deg0 = pd.concat([base.links["patch_a"], base.links["patch_b"]]).astype(int).value_counts()
    linked_after = {int(p) for p in links.loc[links["status"] != "lost", ["patch_a", "patch_b"]].to_numpy().ravel()}
    summary["newly_isolated"] = sorted(int(p) for p in deg0.index if int(p) not in linked_after)
    worst = links[links["status"].isin(["lengthened", "lost"])]
    if not len(worst):  # nothing got worse: the link that improved most
        worst = links[links["status"] == "shortened"].assign(cwd_ratio=lambda f: 1.0 / f["cwd_ratio"])
    if len(worst):
        w = worst.assign(r=worst["cwd_ratio"].fillna(math.inf)).sort_values(["r", "cwd_before"], ascending=[False, True]).iloc[0]
        ratio = float(w["cwd_ratio"]) if w["status"] != "shortened" else 1.0 / float(w["cwd_ratio"])
        summary["most_changed_link"] = {"patch_a": int(w["patch_a"]), "patch_b": int(w["patch_b"]), "status": str(w["status"]),
                                        "cwd_ratio": ratio}  # fmt: skip
    else:
        summary["most_changed_link"] = None
    summary["patches_before"] = len(base.nodes)
    summary["patches_after"] = len(scen.nodes)
    parts = pd.Series(pm).value_counts()
    summary["patches_split"] = sorted(int(p) for p in parts.index if int(p) != 0 and parts[p] > 1)
    names = dict(zip(base.nodes["patch_id"].astype(int), base.nodes.get("name", pd.Series([""] * len(base.nodes))), strict=True))
    named = {*summary["newly_isolated"], *summary["patches_split"]}
    if summary["most_changed_link"]:
        named |= {summary["most_changed_link"]["patch_a"], summary["most_changed_link"]["patch_b"]}
    summary["patch_names"] = {str(p): str(names.get(p) or f"patch {p}") for p in named}
    cap0, src = reachable_capacity(base.links, base.nodes, base.capacity, base.source, base.source_patches)
    cap1, _ = reachable_capacity(scen.links, scen.nodes, scen.capacity, scen.source, scen.source_patches)
    summary |= {"source": base.source, "source_patches": src,
                "capacity_reachable_before": cap0, "capacity_reachable_after": cap1}  # fmt: skip
    sites = compare_sites(base.sites, scen.sites)
    if sites is not None and "connected_after" in sites:
        summary["sites_disconnected"] = sites.loc[sites["connected_before"] & ~sites["connected_after"], "site_id"].tolist()
    cur = None
    if base.current is not None and scen.current is not None:
        cur = np.where(np.isfinite(base.current) | np.isfinite(scen.current),
                       np.nan_to_num(scen.current) - np.nan_to_num(base.current), np.nan).astype("float32")  # fmt: skip
    corr = corridor_change(base.corridors, scen.corridors) if base.corridors is not None and scen.corridors is not None else None
    crossings = crossing_current(crossing_masks, base.current, scen.current) if crossing_masks else None
    return Comparison(summary=summary, links=links, patches=patches, patch_map=pm, sites=sites,
                      current_diff=cur, corridor_change=corr, crossings=crossings)  # fmt: skip
