"""Cross-border evaluation: where least-cost paths cross national borders, and how permeable each border stretch is.

* :func:`border_crossings` — one point where each link's least-cost path
  crosses a border line, with the link, its ``cwd``, the border pair, the width
  of the link's truncated corridor along the border there (m) and the
  cumulative current density at the crossing cell.
* :func:`border_permeability` — the border cut into segments of equal length
  (default 5 km), each with the current density summed over the cells the
  segment passes through, the largest current density, and the number of
  truncated corridors crossing it.
* :func:`mark_crosses_border` — the ``crosses_border`` edge attribute (the
  path passes through more than one country).

Those live in :mod:`leopardgeo.stages.bordercross`; transboundary patches, the
cross-border corridors and the crossing routes in
:mod:`leopardgeo.stages.crossroutes`. This module holds the ``[crossborder]``
configuration, :func:`compute_crossborder` and the stage, and re-exports both.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

import geopandas as gpd
import shapely
import shapely.ops

from leopardgeo.config import FenceMode, _f, _normalise, _positive
from leopardgeo.core.errors import ConfigError
from leopardgeo.core.grid import Grid
from leopardgeo.io import RASTERS, OutputWriter, json_records
from leopardgeo.kernels.circuit import CircuitResult
from leopardgeo.stages.base import RunConfigLike, Section, Stage

# The border crossings and the cross-border routes live beside this module; their names are importable from here too.
from leopardgeo.stages.bordercross import (  # noqa: F401
    _border_edges,
    _conductance,
    _nearest_border,
    _path_cells,
    _width_along_border,
    border_crossings,
    border_current,
    border_permeability,
    crossing_table,
    mark_crosses_border,
)
from leopardgeo.stages.corridors import CorridorResult
from leopardgeo.stages.crossroutes import (  # noqa: F401
    CROSSBORDER_COLUMNS,
    ROUTE_COLUMNS,
    TRANSBOUNDARY_COLUMNS,
    CrossBorderResult,
    _nearest_segment,
    _side_names,
    crossborder_corridors,
    crossing_importance,
    crossing_routes,
    transboundary_patches,
)
from leopardgeo.stages.fence import (
    FenceScenario,
    border_cells,
    compare_fenced,
    compare_networks,
    cut_graph,
    fence_resistance,
    fill_countries,
    split_at_border,
)
from leopardgeo.stages.graph import compute_links
from leopardgeo.stages.inputs import Inputs
from leopardgeo.stages.metrics import MetricsResult, _landscape_area, compute_metrics
from leopardgeo.stages.patches import country_raster
from leopardgeo.stages.territories import TerritoryResult

__all__ = [
    "CROSSBORDER_COLUMNS",
    "ROUTE_COLUMNS",
    "TRANSBOUNDARY_COLUMNS",
    "CrossBorderResult",
    "FenceScenario",
    "border_cells",
    "border_crossings",
    "border_current",
    "border_permeability",
    "compare_fenced",
    "compare_networks",
    "crossborder_corridors",
    "crossing_importance",
    "crossing_routes",
    "crossing_table",
    "cut_graph",
    "fence_resistance",
    "fill_countries",
    "mark_crosses_border",
    "split_at_border",
    "transboundary_patches",
]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------- config section
@dataclass(frozen=True, slots=True, kw_only=True)
class CrossBorderConfig:
    """Where links cross national borders and how permeable each border stretch is."""

    enabled: bool = _f(True, doc="map border crossings and border permeability in `leopardgeo run` (needs [inputs] borders)")
    segment_m: float = _f(5000.0, doc="length of the border segments of the permeability profile, metres")
    fence: FenceMode = _f(
        FenceMode.IMPASSABLE,
        doc=(
            "border-fence scenario: none, impassable (border cells become no data except at fence_gaps) or penalty "
            "(fence_penalty added to their resistance); links and metrics are recomputed and the losses reported"
        ),
    )
    fence_penalty: float = _f(1000.0, doc="resistance added to border cells when fence = 'penalty'")
    fence_gaps: tuple[tuple[float, float], ...] = _f(
        (), doc="openings in the fence as [longitude, latitude] pairs (WGS 84), e.g. river crossings or wildlife passages"
    )
    gap_width_m: float = _f(1000.0, doc="width of each fence opening, metres (border cells within half of it stay open)")
    band_m: float = _f(
        5000.0,
        doc=(
            "current across the border inside a transboundary patch flows between its national parts farther than "
            "this from the border, metres"
        ),
    )

    def __post_init__(self) -> None:
        _normalise(self, "crossborder")
        _positive(self.band_m, "crossborder.band_m")
        _positive(self.segment_m, "crossborder.segment_m")
        _positive(self.fence_penalty, "crossborder.fence_penalty")
        _positive(self.gap_width_m, "crossborder.gap_width_m")
        gaps = tuple(tuple(float(v) for v in g) for g in self.fence_gaps)
        bad = [g for g in gaps if len(g) != 2 or not (-180 <= g[0] <= 180 and -90 <= g[1] <= 90)]
        if bad:
            msg = (
                f"[crossborder] fence_gaps: expected [longitude, latitude] pairs in degrees, found {list(bad[0])!r}. "
                "Write e.g. fence_gaps = [[130.95, 42.95]]."
            )
            raise ConfigError(msg)
        object.__setattr__(self, "fence_gaps", gaps)


# ---------------------------------------------------------------------- the stage
def compute_crossborder(
    cfg: RunConfigLike,
    inputs: Inputs,
    graph: nx.Graph,
    resistance: np.ndarray,
    labels: np.ndarray,
    patches: gpd.GeoDataFrame,
    corridors: CorridorResult | None = None,
    circuit: CircuitResult | None = None,
    metrics: MetricsResult | None = None,
    territories: TerritoryResult | None = None,
) -> CrossBorderResult:
    """Cross-border connectivity: links across borders, transboundary patches, every crossing route ranked, the fence.

    (a) links whose least-cost path crosses a border, with the crossing point; (b) patches that straddle a border
    (:func:`leopardgeo.stages.crossborder.transboundary_patches`: border length through habitat and the current across
    it); both ranked by the PC lost if closed (:func:`leopardgeo.stages.crossborder.crossing_routes`).  (c) The fence
    scenario cuts the patches at the border (:func:`leopardgeo.stages.crossborder.split_at_border`), fences the border
    on the resistance, reruns the links and the metrics with the same parameters, and compares (PC / EC,
    capacity reachable, links lost or lengthened; :func:`leopardgeo.stages.crossborder.compare_fenced`).
    """
    cb = cfg.crossborder
    mark_crosses_border(graph)
    grid = inputs.grid
    cidx, codes = country_raster(inputs.countries, grid, cfg.inputs.country_field)
    cur = circuit.cum_current if circuit is not None else None
    borders = None
    if inputs.borders is not None and not inputs.borders.empty:
        extent = shapely.box(*grid.bounds)
        borders = inputs.borders.assign(geometry=inputs.borders.geometry.intersection(extent))
        borders = borders[~borders.geometry.is_empty]
    crossings = border_crossings(graph, cidx, codes, grid, borders=borders, corridors=corridors, current=cur)
    if borders is not None:
        cor = corridors.table if corridors is not None else None
        perm = border_permeability(borders, grid, current=cur, corridors=cor, segment_m=cb.segment_m)
    else:
        perm = gpd.GeoDataFrame({"border": [], "segment": [], "length_m": []}, geometry=[], crs=grid.crs)
    tb = None
    importance: dict[int, float] = {}
    if codes:
        tb = transboundary_patches(
            labels, patches, cidx, codes, grid, resistance,
            band_m=cb.band_m, connectivity=cfg.circuit.connectivity, avg_resistances=cfg.circuit.avg_resistances,
            tolerance=cfg.circuit.tolerance, borders=borders, protected_areas=inputs.protected_areas,
            country_polygons=inputs.countries, country_field=cfg.inputs.country_field,
        )  # fmt: skip
        if len(tb):
            m = cfg.metrics
            importance = crossing_importance(
                graph, sorted(set(tb["patch_id"].astype(int))), labels, cidx, codes, grid,
                attribute=m.attribute, weight=m.distance, median_distance=m.median_dispersal,
                probability=m.probability, landscape_area=_landscape_area(cfg, inputs), min_probability=m.min_probability,
            )  # fmt: skip
    routes = crossing_routes(graph, crossings, tb, importance=importance, permeability=perm if len(perm) else None)
    if cb.fence is FenceMode.NONE or not codes:
        return CrossBorderResult(crossings, perm, transboundary=tb, routes=routes)
    # the fence is the scenario edit `border_fence` (leopardgeo.stages.scenario), here with [crossborder]'s settings
    from leopardgeo.config.scenario import EditConfig, EditKind
    from leopardgeo.stages.scenario import apply_resistance_edits, edit_frame

    fence = EditConfig(
        kind=EditKind.BORDER_FENCE, name="border fence", mode=str(cb.fence), penalty=cb.fence_penalty,
        width_m=cb.gap_width_m, coords=cb.fence_gaps,
    )  # fmt: skip
    fenced, where = apply_resistance_edits(resistance, grid, [(fence, edit_frame(fence, grid))], countries=cidx)
    mask = where.barrier
    part_labels, parts = split_at_border(
        labels, patches, cidx, grid, country_codes=codes, connectivity=cfg.patches.connectivity
    )
    attr = cfg.metrics.attribute
    if attr not in parts.columns and attr in patches.columns:  # a quality-weighted area: the part's share of it
        parts[attr] = patches.set_index("patch_id")[attr].reindex(parts["parent_id"]).to_numpy() * parts["share"]
    # parts lying wholly under the fence (slivers between the fence band and the border) cannot start a link:
    # they stay in the network as isolated nodes, so their habitat counts in PC / EC after the fence
    passable = np.bincount(part_labels.ravel(), weights=np.isfinite(fenced).ravel(), minlength=len(parts) + 1)[1:]
    blocked = parts["patch_id"].to_numpy()[passable[parts["patch_id"].to_numpy() - 1] == 0]
    run_labels = np.where(np.isin(part_labels, blocked), 0, part_labels).astype(part_labels.dtype)
    after, _ = compute_links(
        cfg, inputs, fenced, run_labels, parts[~parts["patch_id"].isin(blocked)], stage="border-fence scenario",
        isolated_hint="Expected when the fence cuts them off: see the fence_links layer and newly_isolated in fence.json.",
    )  # fmt: skip
    for row in parts[parts["patch_id"].isin(blocked)].itertuples(index=False):
        after.add_node(int(row.patch_id), **row._asdict())
    mark_crosses_border(after)
    if metrics is None:
        metrics = compute_metrics(cfg, inputs, graph)
    after_metrics = compute_metrics(cfg, inputs, after)
    capacity = None
    if territories is not None and len(territories.table) and codes and "country" in territories.table.columns:
        t = territories.table
        capacity = pd.DataFrame(
            {
                "patch_id": t["patch"].astype(int),
                "country": [codes[int(c) - 1] if int(c) > 0 else "" for c in t["country"]],
                "adults": 1.0,
            }
        )
    scenario = compare_fenced(graph, after, parts, metrics.summary, after_metrics.summary, crs=grid.crs, capacity=capacity)
    scenario.summary.update({"fence": str(cb.fence), "fence_cells": int(mask.sum()), "gaps": [list(g) for g in cb.fence_gaps]})
    return CrossBorderResult(crossings, perm, scenario, mask, transboundary=tb, routes=routes)


def crossborder_layers(xb: CrossBorderResult) -> dict[str, gpd.GeoDataFrame]:
    """GeoPackage layers of the cross-border stage: crossings, permeability, transboundary patches, routes, fence links."""
    layers = {"border_crossings": xb.crossings, "border_permeability": xb.permeability}
    if xb.transboundary is not None:
        layers["transboundary_patches"] = xb.transboundary
    if xb.routes is not None:
        layers["crossing_routes"] = xb.routes[xb.routes.geometry.notna()]
    if xb.fence is not None:
        layers["fence_links"] = xb.fence.links[xb.fence.links.geometry.notna()]
    return layers


def fence_report(xb: CrossBorderResult) -> dict[str, Any]:
    """``fence.json``: the fence scenario's summary and every link's status."""
    if xb.fence is None:
        return {}
    return {"summary": xb.fence.summary, "links": json_records(pd.DataFrame(xb.fence.links.drop(columns="geometry")))}


def _write_crossborder(writer: OutputWriter, xb: CrossBorderResult, grid: Grid) -> None:
    if xb.fence is not None and xb.fence_mask is not None:
        writer.text("fence.json", json.dumps(fence_report(xb), indent=1, ensure_ascii=False))
        writer.raster("fence.tif", xb.fence_mask.astype("uint8"), grid, nodata=None, description=RASTERS["fence.tif"])


STAGE = Stage(
    "crossborder",
    "cross-border evaluation and fence scenario",
    lambda cfg, c: {
        "crossborder": compute_crossborder(
            cfg,
            c["inputs"],
            c["graph"],
            c["resistance"],
            c["labels"],
            c["patches"],
            c.get("corridors"),
            c.get("circuit"),
            c.get("metrics"),
            c.get("territories"),
        )
    },
    config=(Section("crossborder", CrossBorderConfig, "cross-border evaluation"),),
    needs=("inputs", "resistance", "patches", "links"),
    # corridors and current at the crossings, the metrics before the fence, the adults the fence separates
    uses=("corridors", "circuit", "metrics", "territories"),
    after=("pinch_points", "barriers"),  # the graph's in-place chain
    produces=("crossborder",),
    mutates=("graph", "patches"),
    enabled=lambda cfg: cfg.crossborder.enabled,
    outputs=("fence.tif", "fence.json"),
    files=lambda cfg: ("fence.json", "fence.tif") if cfg.crossborder.fence is not FenceMode.NONE else (),
    layers=lambda cfg, c: crossborder_layers(c["crossborder"]),
    write=lambda writer, cfg, c: _write_crossborder(writer, c["crossborder"], c["inputs"].grid),
)
