"""Ranking candidate crossing structures or restorations on a run, and loading a run folder's values.

:func:`rank_candidates` burns the candidates into the run's resistance (on top of a scenario's edits,
e.g. the new road the underpasses would cross), rebuilds the links and the connectivity metrics for each
set the ranking asks for, and ranks the candidates by the PC (or EC) gained per structure, per km² or per
cost (:func:`leopardgeo.stages.interventions.rank_interventions`).  Patches stay as they are during the
ranking: it measures the connectivity gained through movement, not new habitat (run a candidate as a
scenario for that).  :func:`barrier_candidates` turns the Barrier Mapper's top sites into restoration
candidates in one step: a circle of the site's detection radius restored to resistance 1.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import geopandas as gpd
from pyproj import Transformer

from leopardgeo.config.scenario import EditConfig, EditKind, ScenarioConfig
from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.runner.stagegraph import execute, resolve
from leopardgeo.stages.base import RunConfigLike
from leopardgeo.stages.interventions import rank_interventions
from leopardgeo.stages.scenario import apply_resistance_edits, edit_frames

__all__ = ["PER_UNITS", "barrier_candidates", "candidate_edits", "load_context", "rank_candidates"]

logger = logging.getLogger(__name__)

#: ``per`` values besides a cost column.
PER_UNITS = ("structure", "km2")


def load_context(folder: str | Path, *, config: RunConfigLike | None = None) -> tuple[RunConfigLike, dict[str, Any]]:
    """A run folder's configuration and every stage's values, from its cache (recomputing what is stale).

    Raises
    ------
    DataError
        If ``folder`` holds no ``run_config.toml`` (not a run folder).
    """
    from leopardgeo.io.runfolder import earlier_outputs
    from leopardgeo.runner.manifest import input_files, read_manifest
    from leopardgeo.runner.registry import STAGES, load_config

    out = Path(folder)
    if config is None:
        if not (out / "run_config.toml").is_file():
            msg = f"{str(out)!r}: expected a run folder (with run_config.toml), found none. Run `leopardgeo run --out {out}`."
            raise DataError(msg)
        config = load_config(out / "run_config.toml")
    order = resolve(STAGES, config)
    ctx, run = execute(
        order,
        config,
        input_hashes={f["path"]: f["sha256"] for f in input_files(config)},
        previous=read_manifest(out),
        folder=out,
        trusted=earlier_outputs(out),
    )
    if run.computed:
        logger.info("%s: recomputed %s (not in its cache)", out, ", ".join(run.computed))
    return config, ctx


def candidate_edits(
    candidates: gpd.GeoDataFrame, *, kind: str, name_field: str | None = None, width_m: float = 0.0, resistance: float = 1.0
) -> list[tuple[EditConfig, gpd.GeoDataFrame]]:
    """One edit per candidate feature: a ``gap`` (crossing structure) or a restoration ``polygon``.

    Raises
    ------
    DataError
        On a geometry type that does not fit ``kind`` or a missing ``name_field``.
    """
    if kind not in ("gap", "restoration"):
        msg = f"candidate kind: expected 'gap' or 'restoration', found {kind!r}."
        raise ConfigError(msg)
    if name_field is not None and name_field not in candidates.columns:
        cols = [c for c in candidates.columns if c != candidates.geometry.name]
        msg = f"candidates: expected a name column {name_field!r}, found columns {cols}. Fix --name-field."
        raise DataError(msg)
    types = set(candidates.geom_type.str.removeprefix("Multi"))
    want = {"Point", "LineString"} if kind == "gap" else {"Polygon"}
    if types - want:
        msg = f"candidates ({kind}): expected {' or '.join(sorted(want))} geometries, found {', '.join(sorted(types))}."
        raise DataError(msg)
    out = []
    for i, (_, row) in enumerate(candidates.iterrows()):
        name = str(row[name_field]) if name_field else f"candidate_{i + 1}"
        frame = gpd.GeoDataFrame({"edit": [name]}, geometry=[row.geometry], crs=candidates.crs)
        if kind == "gap":
            e = EditConfig(kind=EditKind.GAP, name=name, width_m=width_m)  # its geometry is the frame
        else:
            e = EditConfig(kind=EditKind.POLYGON, effect="restoration", name=name, resistance=resistance)
        out.append((e, frame))
    return out


def barrier_candidates(barriers: Any, grid: Any, *, n: int = 5, resistance: float = 1.0) -> gpd.GeoDataFrame:
    """The Barrier Mapper's ``n`` best sites as restoration polygons: a circle of each site's ``radius_m``.

    Columns: ``name`` (``barrier_<rank>``), ``rank``, ``score``, ``improvement_cwd``, ``radius_m``,
    ``area_km2``, ``lon``, ``lat``, ``resistance`` (the value restored to).
    """
    if int(n) < 1:
        msg = f"barrier candidates: expected n >= 1 sites, found {n}. Use n = 1 or more (e.g. --barriers 5)."
        raise ConfigError(msg)
    top = barriers.top.head(int(n))
    if not len(top):
        msg = "Barrier Mapper: expected top sites, found none (no link can improve). Widen [barrier_mapper] radii."
        raise DataError(msg)
    circles = top.geometry.buffer(top["radius_m"].astype(float).to_numpy())
    tr = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(top.geometry.x.to_numpy(), top.geometry.y.to_numpy())
    return gpd.GeoDataFrame(
        {
            "name": [f"barrier_{int(r)}" for r in top["rank"]],
            "rank": top["rank"].astype(int).to_numpy(),
            "score": top["score"].astype(float).to_numpy(),
            "improvement_cwd": top["improvement_cwd"].astype(float).to_numpy(),
            "radius_m": top["radius_m"].astype(float).to_numpy(),
            "area_km2": circles.area.to_numpy() / 1e6,
            "lon": np.round(lon, 5),
            "lat": np.round(lat, 5),
            "resistance": resistance,
        },
        geometry=circles.to_numpy(),
        crs=top.crs,
    )


def rank_candidates(
    config: RunConfigLike,
    base: Mapping[str, Any],
    candidates: Sequence[tuple[EditConfig, gpd.GeoDataFrame]],
    *,
    scenario: ScenarioConfig | None = None,
    method: str = "greedy",
    per: str = "structure",
    costs: Mapping[str, float] | None = None,
    metric: str = "PC",
) -> pd.DataFrame:
    """Rank ``candidates`` on the run ``base`` (plus ``scenario``'s edits) by ``metric`` gained per unit.

    Parameters
    ----------
    config
        The run's configuration.
    base
        The run's values (:func:`load_context`, or the context of a run).
    candidates
        Edits with their geometry (:func:`candidate_edits`).
    scenario
        Edits in place for every evaluation (e.g. the road the underpasses cross).
    method
        ``greedy`` or ``exhaustive``.
    per
        ``structure`` (1 each), ``km2`` (the candidate's area; polygons) or ``cost`` (``costs``).
    costs
        Each candidate's cost, by name (``per = "cost"``).
    metric
        ``PC`` or ``EC_ha`` of the links' connectivity metrics.

    Returns
    -------
    pandas.DataFrame
        :func:`leopardgeo.stages.interventions.rank_interventions`'s table, with ``metric``.
    """
    from leopardgeo.runner.pipeline import compute_links, compute_metrics

    if metric not in ("PC", "EC_ha"):
        msg = f"ranking metric: expected 'PC' or 'EC_ha', found {metric!r}."
        raise ConfigError(msg)
    names = [e.name for e, _ in candidates]
    if per == "structure":
        units = None
    elif per == "km2":
        units = {e.name: float(f.geometry.area.sum()) / 1e6 for e, f in candidates}
    elif per == "cost":
        if not costs or any(n not in costs for n in names):
            msg = f"ranking per cost: expected a cost for every candidate, found costs for {sorted(costs or {})}."
            raise ConfigError(msg)
        units = {n: float(costs[n]) for n in names}
    else:
        msg = f"ranking per: expected one of {[*PER_UNITS, 'cost']}, found {per!r}."
        raise ConfigError(msg)
    inputs = base["inputs"]
    grid = inputs.grid
    fixed = edit_frames(scenario, grid, base_dir=config.base_dir) if scenario is not None else []
    by_name = dict(zip(names, candidates, strict=True))

    def value(chosen: frozenset[str]) -> float:
        res, _ = apply_resistance_edits(base["resistance"], grid, [*fixed, *(by_name[n] for n in sorted(chosen))])
        graph, _ = compute_links(config, inputs, res, base["labels"], base["patches"], stage="ranking")
        v = float(compute_metrics(config, inputs, graph).summary[metric])
        logger.info("ranking: %s -> %s %.6g", sorted(chosen) or "none", metric, v)
        return v

    table = rank_interventions(names, value, method=method, units=units)
    table.insert(2, "metric", metric)
    return table


def rerun_scenarios(
    folder: str | Path,
    *,
    scenarios: Sequence[ScenarioConfig] | None = None,
    overwrite: bool = False,
    step: Any = lambda label: None,
) -> dict[str, float]:
    """Run ``scenarios`` (default: the run's own ``[[scenarios]]``) on the run in ``folder``; write ``scenarios/<name>/``.

    The run's values come from its cache (:func:`load_context`), so only the stages each scenario touches
    are computed.  Returns the run times by ``scenario.<name>[.<stage>]``.

    Raises
    ------
    ConfigError
        If there is no scenario to run.
    OutputExistsError
        If a scenario's folder exists and ``overwrite`` is false.
    """
    from leopardgeo.core.errors import OutputExistsError
    from leopardgeo.io import OutputWriter
    from leopardgeo.runner.pipeline import STAGES, territory_outputs
    from leopardgeo.runner.registry import load_config
    from leopardgeo.runner.scenarios import SCENARIO_DIR, write_scenarios

    out = Path(folder)
    if scenarios is None and (out / "run_config.toml").is_file():
        scenarios = load_config(out / "run_config.toml").scenarios
    todo = list(scenarios or ())
    if not todo:
        if not (out / "run_config.toml").is_file():
            load_context(folder)  # not a run folder: its error says so
        msg = f"{str(folder)!r}: expected [[scenarios]] to run, found none. Give a config file with [[scenarios]]."
        raise ConfigError(msg)
    names = [f"{SCENARIO_DIR}/{s.name}/compare.json" for s in todo]
    done = [n for n in names if (out / n).exists()]
    if done and not overwrite:  # before the run's values are loaded (which can take a minute)
        msg = (
            f"{str(out / done[0])!r} exists; expected a free path. Pass --overwrite (overwrite=True) or run another "
            "scenario (--only NAME)."
        )
        raise OutputExistsError(msg)
    config, ctx = load_context(folder)
    config = config.replace(scenarios=tuple(todo))
    with OutputWriter(folder, overwrite=overwrite, names=names) as writer:
        return write_scenarios(writer, config, ctx, stages=STAGES, capacity=territory_outputs, step=step)
