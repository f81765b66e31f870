"""Scenario runs: each ``[[scenarios]]`` entry rerun from the stages its edits touch, and compared with the run.

A scenario's edits change suitability (``habitat``) and / or resistance (``resistance``;
:attr:`leopardgeo.config.scenario.ScenarioConfig.touches`).  :func:`run_scenario` reruns exactly the
stages of the stage graph downstream of those (their ``needs`` / ``uses``) and takes every other value
from the baseline's context unchanged: a road that only adds resistance reruns links, corridors,
circuit, pinch points, barriers, metrics, cross-border and scores, but not habitat, patches or
territories.  A scenario leaves out what the comparison does not read (pinch points, the Barrier Mapper,
the cross-border stage, the sites' population simulation: :func:`scenario_config`).

:func:`write_scenarios` writes ``scenarios/<name>/`` into the run folder, with the scenario's own
``leopardgeo.gpkg`` (patches, graph nodes, links, the ``edits`` and a styled ``changes`` layer),
``metrics.json``, ``current.tif``, ``corridors.tif``, ``patches.tif``, ``resistance.tif``, the comparison
(``compare.json``, ``links_change.csv``, ``patches_change.csv``, ``sites_change.csv``, ``crossings.csv``,
``current_diff.tif``, ``corridors_change.tif``) and ``scenario.json`` (the edits, which stages were rerun
and their times).  Illustrative scenarios say so in ``scenario.json``, ``compare.json`` and the
``edits`` layer.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

import geopandas as gpd

from leopardgeo.config import FenceMode
from leopardgeo.config.scenario import EditKind, ScenarioConfig
from leopardgeo.core.errors import ConfigError
from leopardgeo.runner.stagegraph import Stage, resolve
from leopardgeo.stages.base import RunConfigLike
from leopardgeo.stages.compare import Comparison, RunTables, compare_runs
from leopardgeo.stages.scenario import ScenarioEdits, apply_habitat_edits, apply_resistance_edits, edit_frames, edits_layer

__all__ = [
    "SCENARIO_DIR",
    "ScenarioRun",
    "rerun_stages",
    "run_scenario",
    "scenario_config",
    "tables_from_context",
    "write_scenarios",
]

logger = logging.getLogger(__name__)

#: Sub-folder of a run folder holding one folder per scenario.
SCENARIO_DIR = "scenarios"


@dataclass
class ScenarioRun:
    """One scenario run: its values, which stages it reran, where its edits fell, the comparison."""

    scenario: ScenarioConfig
    context: dict[str, Any]
    rerun: list[str]
    reused: list[str]
    timings_s: dict[str, float] = field(default_factory=dict)
    edits: list[tuple[Any, gpd.GeoDataFrame]] = field(default_factory=list)
    where: ScenarioEdits | None = None
    comparison: Comparison | None = None


def scenario_config(config: RunConfigLike) -> RunConfigLike:
    """The configuration a scenario runs with: the run's, without the stages the comparison does not read.

    Pinch points, the Barrier Mapper, the cross-border stage (with its own fence scenario) and the sites'
    population simulation are left out; their baseline values stay in the scenario's context.
    """
    return config.replace(
        circuit=dataclasses.replace(config.circuit, pinch_points=False),
        barrier_mapper=dataclasses.replace(config.barrier_mapper, enabled=False),
        crossborder=dataclasses.replace(config.crossborder, enabled=False, fence=FenceMode.NONE),
        sites=dataclasses.replace(config.sites, simulate=False),
    )


def rerun_stages(order: Sequence[Stage], touched: Iterable[str]) -> list[str]:
    """Names of the stages of ``order`` that ``touched`` change: those stages and everything downstream.

    Downstream: a stage that needs, uses or runs after (the graph's in-place chain) a stage that reruns.

    Examples
    --------
    >>> a = Stage("habitat", "h", lambda c, x: {})
    >>> b = Stage("resistance", "r", lambda c, x: {}, needs=("habitat",))
    >>> c = Stage("patches", "p", lambda c, x: {}, needs=("habitat",))
    >>> d = Stage("links", "l", lambda c, x: {}, needs=("resistance", "patches"))
    >>> rerun_stages([a, b, c, d], ["resistance"])
    ['resistance', 'links']
    """
    hit = set(touched)
    out = []
    for s in order:
        if s.name in hit or any(n in hit for n in (*s.needs, *s.uses, *getattr(s, "after", ()))):
            hit.add(s.name)
            out.append(s.name)
    return out


def _countries(config: RunConfigLike, inputs: Any) -> np.ndarray | None:
    from leopardgeo.stages.patches import country_raster

    if inputs.countries is None:
        return None
    cidx, _ = country_raster(inputs.countries, inputs.grid, config.inputs.country_field)
    return cidx


def run_scenario(
    config: RunConfigLike,
    scenario: ScenarioConfig,
    base: Mapping[str, Any],
    *,
    stages: Sequence[Stage],
    step: Callable[[str], None] = lambda label: None,
) -> ScenarioRun:
    """Run ``scenario`` on top of the baseline's context ``base``, rerunning only the stages its edits touch.

    Parameters
    ----------
    config
        The run's configuration (the scenario runs with :func:`scenario_config` of it).
    scenario
        The scenario.
    base
        The baseline's context (every stage's values, as :func:`leopardgeo.runner.stagegraph.execute`
        returns them); it is not changed.
    stages
        The stage registry (:data:`leopardgeo.runner.pipeline.STAGES`).
    step
        Called with each stage's label as it starts.

    Returns
    -------
    ScenarioRun
    """
    cfg = scenario_config(config)
    order = resolve(stages, cfg)
    rerun = rerun_stages(order, scenario.touches)
    inputs = base["inputs"]
    edits = edit_frames(scenario, inputs.grid, base_dir=config.base_dir)
    by_name = {s.name: s for s in order}
    mutated = {k for n in rerun for k in by_name[n].mutates}
    ctx = {k: (copy.deepcopy(v) if k in mutated else v) for k, v in base.items()}
    run = ScenarioRun(scenario=scenario, context=ctx, rerun=rerun, reused=[s.name for s in order if s.name not in rerun],
                      edits=edits)  # fmt: skip
    for s in order:
        if s.name not in rerun:
            continue
        t = time.perf_counter()
        step(f"scenario {scenario.name}: {s.label}")
        if s.name == "habitat":
            values = {"suitability": apply_habitat_edits(base["suitability"], inputs.grid, edits)}
        elif s.name == "resistance":
            res = s.compute(cfg, ctx)["resistance"] if "habitat" in rerun else base["resistance"]
            res, run.where = apply_resistance_edits(res, inputs.grid, edits, countries=_countries(config, inputs))
            values = {"resistance": res}
        elif s.name == "patches" and scenario.fence:
            values = dict(s.compute(cfg, ctx)) if "habitat" in rerun else {"labels": base["labels"], "patches": base["patches"]}
            values = _cut_at_border(config, inputs, ctx["resistance"], values["labels"], values["patches"])
        else:
            values = dict(s.compute(cfg, ctx))
        ctx.update(values)
        run.timings_s[s.name] = time.perf_counter() - t
    if run.where is None:  # no resistance edit: still record where the edits fell
        _, run.where = apply_resistance_edits(ctx["resistance"], inputs.grid, [], countries=None)
    return run


def _cut_at_border(
    config: RunConfigLike, inputs: Any, resistance: np.ndarray, labels: np.ndarray, patches: Any
) -> dict[str, Any]:
    """Patches cut at the border, as behind a fence (:func:`leopardgeo.stages.fence.split_at_border`).

    A part's ``metrics.attribute`` is its share of the parent's; parts lying wholly under the fence (slivers
    between the fence band and the border) leave the patches, since no path can start in them.
    """
    from leopardgeo.stages.fence import split_at_border
    from leopardgeo.stages.patches import country_raster

    cidx, codes = country_raster(inputs.countries, inputs.grid, config.inputs.country_field)
    part_labels, parts = split_at_border(
        labels, patches, cidx, inputs.grid, country_codes=codes, connectivity=config.patches.connectivity
    )
    attr = config.metrics.attribute
    if attr not in parts.columns and attr in patches.columns:
        parts[attr] = patches.set_index("patch_id")[attr].reindex(parts["parent_id"]).to_numpy() * parts["share"]
    ids = parts["patch_id"].to_numpy()
    passable = np.bincount(part_labels.ravel(), weights=np.isfinite(resistance).ravel(), minlength=int(ids.max(initial=0)) + 1)
    blocked = ids[passable[ids] == 0]
    if len(blocked):
        logger.info("border fence: %d patch part(s) wholly under the fence left out", len(blocked))
        part_labels = np.where(np.isin(part_labels, blocked), 0, part_labels).astype(part_labels.dtype)
        parts = parts[~parts["patch_id"].isin(blocked)].reset_index(drop=True)
    return {"labels": part_labels, "patches": parts}


# ---------------------------------------------------------------------- tables for the comparison
def tables_from_context(
    config: RunConfigLike, ctx: Mapping[str, Any], *, capacity: Callable[..., tuple[Any, pd.DataFrame]] | None = None
) -> RunTables:
    """The comparison's view of a run (:class:`leopardgeo.stages.compare.RunTables`) from its context.

    ``capacity``: :func:`leopardgeo.runner.pipeline.territory_outputs` (the capacity table of the territories).
    """
    from leopardgeo.stages.graph import graph_layers

    graph = ctx.get("graph")
    if graph is not None:
        layers = graph_layers(graph)
        links, nodes = layers["links"], pd.DataFrame(layers["graph_nodes"].drop(columns="geometry"))
    else:
        links = gpd.GeoDataFrame({"patch_a": [], "patch_b": [], "cwd": []}, geometry=[], crs=ctx["inputs"].grid.crs)
        nodes = pd.DataFrame(ctx["patches"].drop(columns="geometry"))
    adults = None
    if ctx.get("territories") is not None and capacity is not None:
        _, cap = capacity(config, ctx["inputs"], ctx["labels"], ctx["patches"], ctx["territories"])
        adults = _patch_capacity(cap)
    sites = ctx.get("sites")
    mets = ctx.get("metrics")
    circ, corr = ctx.get("circuit"), ctx.get("corridors")
    return RunTables(
        links=links,
        nodes=nodes,
        metrics=dict(mets.summary) if mets is not None else {},
        labels=ctx["labels"],
        capacity=adults,
        sites=pd.DataFrame(sites.table.drop(columns="geometry")) if sites is not None else None,
        source=config.sites.source or None,
        current=circ.cum_current if circ is not None else None,
        corridors=corr.normalised if corr is not None else None,
        source_patches=tuple(int(p) for p in sites.source.patch_ids) if sites is not None else None,
    )


def _patch_capacity(cap: pd.DataFrame) -> pd.DataFrame:
    """``patch_id``, ``adults`` from a capacity table (``zone_type == 'patch'`` rows)."""
    rows = cap[cap["zone_type"] == "patch"]
    return pd.DataFrame({"patch_id": rows["zone"].astype(int).to_numpy(), "adults": rows["adults"].astype(float).to_numpy()})


def crossing_masks(run: ScenarioRun, grid: Any) -> dict[str, np.ndarray]:
    """Cells of each gap edit (the cells it reopened, or its footprint when it reopened none)."""
    from rasterio.features import rasterize

    out = {}
    for e, gdf in run.edits:
        if e.kind is not EditKind.GAP or not len(gdf):
            continue
        w = e.width_m if e.width_m > 0 else grid.cell_size_m
        geoms = gdf.geometry.buffer(max(w / 2, grid.cell_size_m)).to_numpy()
        foot = rasterize(((g, 1) for g in geoms), out_shape=grid.shape, transform=grid.transform, fill=0,
                         all_touched=True, dtype="uint8").astype(bool)  # fmt: skip
        opened = foot & run.where.opened if run.where is not None else foot
        out[str(gdf["edit"].iloc[0])] = opened if opened.any() else foot
    return out


# ---------------------------------------------------------------------- writing
def _json(obj: Any) -> str:
    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v

    return json.dumps(clean(obj), indent=1, ensure_ascii=False)


def scenario_summary(run: ScenarioRun) -> dict[str, Any]:
    """``scenario.json``: the scenario as given, whether it is illustrative, the stages rerun and reused, times."""
    from leopardgeo.config import _to_plain

    s = run.scenario
    return {
        "name": s.name,
        "description": s.description,
        "illustrative": s.illustrative,
        "label": "ILLUSTRATIVE scenario: made-up geometry drawn to show the method" if s.illustrative else "",
        "edits": _to_plain(s)["edits"],
        "cells_changed": run.where.cells if run.where is not None else {},
        "rerun": run.rerun,
        "reused": run.reused,
    }


def write_scenarios(
    writer: Any,
    config: RunConfigLike,
    base: Mapping[str, Any],
    *,
    stages: Sequence[Stage],
    capacity: Callable[..., tuple[Any, pd.DataFrame]] | None = None,
    scenarios: Sequence[ScenarioConfig] | None = None,
    prefix: str = SCENARIO_DIR + "/",
    step: Callable[[str], None] = lambda label: None,
) -> dict[str, float]:
    """Run every scenario of ``config`` (or ``scenarios``) on ``base`` and stage ``<prefix><name>/`` in ``writer``.

    ``stages`` is the stage registry and ``capacity`` the capacity table of the territories (the pipeline's
    :data:`~leopardgeo.runner.pipeline.STAGES` and :func:`~leopardgeo.runner.pipeline.territory_outputs`).
    Returns the run times by ``scenario.<name>.<stage>`` (for ``manifest.json``).
    """
    from leopardgeo.io import RASTERS

    todo = list(config.scenarios if scenarios is None else scenarios)
    known = {s.name for s in config.scenarios}
    bad = [s.name for s in todo if s.name not in known]
    if bad:
        msg = f"scenario(s) {bad} are not in the configuration; expected some of {sorted(known)}."
        raise ConfigError(msg)
    base_tables = tables_from_context(config, base, capacity=capacity)
    grid = base["inputs"].grid
    times: dict[str, float] = {}
    for sc in todo:
        t0 = time.perf_counter()
        run = run_scenario(config, sc, base, stages=stages, step=step)
        scen_tables = tables_from_context(config, run.context, capacity=capacity)
        masks = crossing_masks(run, grid)
        comp = compare_runs(base_tables, scen_tables, crossing_masks=masks)
        run.comparison = comp
        folder = f"{prefix}{sc.name}"
        step(f"scenario {sc.name}: writing {folder}")
        summary = scenario_summary(run) | {"source": config.sites.source or None, "source_patches": scen_tables.source_patches}
        layers: dict[str, gpd.GeoDataFrame] = {"edits": edits_layer(run.edits, grid.crs, illustrative=sc.illustrative)}
        if run.context.get("graph") is not None:
            from leopardgeo.stages.graph import graph_layers

            layers |= graph_layers(run.context["graph"])
        layers["patches"] = run.context["patches"]
        writer.text(f"{folder}/scenario.json", _json(summary))
        mets = run.context.get("metrics")
        if mets is not None:
            writer.text(f"{folder}/metrics.json", _json(mets.summary))
        if scen_tables.capacity is not None:
            writer.text(f"{folder}/capacity.csv", scen_tables.capacity.to_csv(index=False, float_format="%.6g"))
        if scen_tables.sites is not None:
            writer.text(f"{folder}/sites.csv", scen_tables.sites.to_csv(index=False, float_format="%.6g"))
        writer.raster(f"{folder}/resistance.tif", run.context["resistance"], grid, description=RASTERS["resistance.tif"])
        writer.raster(f"{folder}/patches.tif", run.context["labels"], grid, nodata=0, description=RASTERS["patches.tif"])
        if scen_tables.current is not None:
            writer.raster(f"{folder}/current.tif", scen_tables.current, grid, nodata=np.nan, description=RASTERS["current.tif"])
        if scen_tables.corridors is not None:
            writer.raster(f"{folder}/corridors.tif", scen_tables.corridors, grid, nodata=np.nan,
                          description=RASTERS["corridors.tif"])  # fmt: skip
        write_comparison(writer, folder, comp, grid, scenario=sc, layers=layers)
        times |= {f"scenario.{sc.name}.{k}": v for k, v in run.timings_s.items()}
        times[f"scenario.{sc.name}"] = time.perf_counter() - t0
        logger.info("scenario %s: reran %s in %.1f s", sc.name, ", ".join(run.rerun), times[f"scenario.{sc.name}"])
    return times


def write_comparison(
    writer: Any,
    folder: str,
    comp: Comparison,
    grid: Any,
    *,
    scenario: ScenarioConfig | Mapping[str, Any] | None = None,
    layers: Mapping[str, gpd.GeoDataFrame] | None = None,
) -> None:
    """Stage a comparison in ``writer`` under ``folder``.

    ``compare.json``, the change tables, the difference rasters, and ``leopardgeo.gpkg`` with ``layers`` and
    the styled ``changes`` layer (the links by status).
    """
    from leopardgeo.io import write_layers

    if isinstance(scenario, ScenarioConfig):
        meta = {"scenario": scenario.name, "description": scenario.description, "illustrative": scenario.illustrative}
    else:
        meta = {k: (scenario or {}).get(k) for k in ("name", "description", "illustrative")}
        meta["scenario"] = meta.pop("name")
    pre = f"{folder}/" if folder else ""
    writer.text(f"{pre}compare.json", _json(meta | comp.summary))
    writer.text(f"{pre}links_change.csv", pd.DataFrame(comp.links.drop(columns="geometry")).to_csv(index=False))
    writer.text(f"{pre}patches_change.csv", comp.patches.to_csv(index=False, float_format="%.6g"))
    if comp.sites is not None:
        writer.text(f"{pre}sites_change.csv", comp.sites.to_csv(index=False, float_format="%.6g"))
    if comp.crossings is not None and len(comp.crossings):
        writer.text(f"{pre}crossings.csv", comp.crossings.to_csv(index=False, float_format="%.6g"))
    if comp.current_diff is not None:
        writer.raster(f"{pre}current_diff.tif", comp.current_diff, grid, nodata=np.nan,
                      description="Cumulative current density, scenario minus baseline (A)")  # fmt: skip
    if comp.corridor_change is not None:
        writer.raster(f"{pre}corridors_change.tif", comp.corridor_change, grid, nodata=None,
                      description="Corridors: 1 lost (baseline only), 2 gained (scenario only), 3 in both")  # fmt: skip
    out = dict(layers or {})
    out["changes"] = comp.links.assign(scenario=meta["scenario"] or "", illustrative=bool(meta["illustrative"]))
    gpkg_meta = {"scenario": str(meta["scenario"] or ""), "illustrative": str(bool(meta["illustrative"])).lower()}
    write_layers(writer.path(f"{pre}leopardgeo.gpkg"), out, metadata=gpkg_meta)
