"""Reintroduction sites: the population simulation of the ranked sites.

:func:`simulate_sites` runs :func:`leopardgeo.stages.simulate.simulate_site` (or the corridor comparison) for
the chosen sites in a window around each site and the source; :func:`simulation_columns`,
:func:`simulation_table`, :func:`simulation_report` and :func:`plot_simulations` turn the results into the
sites table's columns, the report's table, ``simulation.json`` and ``simulation.png``.  Part of the sites
stage (:mod:`leopardgeo.stages.sites`, which re-exports every name here).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from leopardgeo.core.errors import DataError
from leopardgeo.core.grid import Grid
from leopardgeo.io import json_records
from leopardgeo.stages.site_candidates import SourceRegion, _subgrid
from leopardgeo.stages.territories import pack_territories

__all__ = ["plot_simulations", "simulate", "simulate_sites", "simulation_columns", "simulation_report", "simulation_table"]

logger = logging.getLogger(__name__)


def simulate(*args: Any, **kwargs: Any) -> Any:
    """The population simulation of one release site: :func:`leopardgeo.stages.simulate.simulate_site`, re-exported.

    Examples
    --------
    >>> from leopardgeo.stages.simulate import SimulationParams
    >>> p = SimulationParams(founders_female=20, founders_male=20, density_limit=False, n_runs=20, years=5)
    >>> simulate(None, None, None, params=p).adults.shape
    (20, 6)
    """
    from leopardgeo.stages.simulate import simulate_site

    return simulate_site(*args, **kwargs)


def simulate_sites(
    sites: pd.DataFrame,
    masks: Mapping[int, np.ndarray],
    *,
    suitability: np.ndarray,
    resistance: np.ndarray,
    labels: np.ndarray,
    grid: Grid,
    source: SourceRegion,
    params: Any,
    territories: Any = None,
    quality: np.ndarray | None = None,
    min_suitability: float = 0.5,
    territory: Mapping[str, Any] | None = None,
    margin_m: float = 25_000.0,
    seed: int = 0,
    workers: int | None = None,
    compare_corridors: bool = False,
    scenario_resistance: np.ndarray | None = None,
) -> dict[str, Any]:
    """Simulate the population released in each site (:func:`leopardgeo.stages.simulate.simulate_site`).

    The landscape is ``territories`` (a :class:`~leopardgeo.stages.territories.TerritoryResult`
    on ``grid``, e.g. from the territories stage) when given, restricted to
    territories within half the site's ``cwd_to_source`` plus ``margin_m`` of
    the site or the source; otherwise territories are packed with
    ``territory`` on ``quality`` (default: suitability) over the habitat
    (patch cells or suitability >= ``min_suitability``) of the bounding box
    of the site and the source plus ``margin_m``.  The source's territories
    start occupied (``params.source_fill``) and exchange dispersers with the
    site.

    Parameters
    ----------
    sites
        Rows with ``site_id`` and ``name``; each is simulated.
    masks
        ``{site_id: boolean raster of the site}``.
    params
        A :class:`leopardgeo.stages.simulate.SimulationParams`.
    compare_corridors
        Also simulate each site with no corridor to the source (and with
        ``scenario_resistance``, a scenario's resistance raster on ``grid``,
        when given); the results go to each result's ``corridor_results``
        (:func:`leopardgeo.stages.simulate.simulate_corridors`, same seeds).

    Returns
    -------
    dict
        ``{site name: SimulationResult}``; a site holding no female territory
        is left out (logged).
    """
    from dataclasses import replace as _replace

    from leopardgeo.stages.simulate import simulate_site, simulate_site_corridors

    territory = dict(territory or {})
    res = np.asarray(resistance, dtype=np.float64)
    suit = np.asarray(suitability, dtype=np.float64)
    qual = suit if quality is None else np.asarray(quality, dtype=np.float64)
    row_cwd = dict(zip(sites["site_id"].astype(int), sites["cwd_to_source"], strict=True)) if "cwd_to_source" in sites else {}
    out: dict[str, Any] = {}
    for sid, name in zip(sites["site_id"], sites["name"], strict=True):
        site = masks[int(sid)]
        within = None
        if territories is not None and getattr(territories, "grid", None) is not None and territories.grid.same_as(grid):
            terr, r_w, site_w, src_w = territories, res, site, source.mask
            scen_w = scenario_resistance
            # keep the territories within reach: every cell of a least-cost path site-source lies within half its
            # cost of one end, plus the margin
            half = 0.5 * float(row_cwd.get(int(sid), math.inf))
            within = (half if math.isfinite(half) else 0.0) + margin_m
        else:
            sub, win = _subgrid(grid, site | source.mask, math.ceil(margin_m / grid.cell_size_m))
            q = qual[win]
            s_w = np.nan_to_num(suit[win], nan=-1.0)
            habitat = ((labels[win] > 0) | (s_w >= min_suitability)) & np.isfinite(q) & np.isfinite(res[win])
            terr = pack_territories(np.where(habitat, q, np.nan), res[win], sub, habitat=habitat, seed=seed, **territory)
            r_w, site_w, src_w = res[win], site[win], source.mask[win]
            scen_w = None if scenario_resistance is None else np.asarray(scenario_resistance, dtype=np.float64)[win]
        try:
            if compare_corridors and params.density_limit:
                runs = simulate_site_corridors(
                    terr, r_w, site_w, src_w, params, scenario_resistance=scen_w, within_cost_m=within, workers=workers
                )
                today = runs.pop("today")
                out[str(name)] = _replace(today, corridor_results=runs)
            else:
                out[str(name)] = simulate_site(terr, r_w, site_w, src_w, params, within_cost_m=within, workers=workers)
        except DataError as exc:
            logger.warning("simulation of site %s skipped: %s", name, exc)
    return out


def simulation_columns(results: Mapping[str, Any]) -> pd.DataFrame:
    """Per simulated site: persistence, heterozygosity retained and dispersers, with and without the corridor.

    Persistence at 25 / 50 / 100 years (NaN beyond the horizon), mean
    dispersers, median heterozygosity retained at 50 years, and the same with
    no corridor when compared.
    """
    rows = []
    for name, r in results.items():
        n_years = r.adults.shape[1] - 1
        row = {
            "name": name,
            "persistence_25y": r.persistence_at(25) if n_years >= 25 else math.nan,
            "persistence_50y": r.persistence_at(50) if n_years >= 50 else math.nan,
            "persistence_100y": r.persistence_at(100) if n_years >= 100 else math.nan,
            "het_retained_50y": math.nan,
            "dispersers_to_source": float(np.mean(r.to_source)),
            "dispersers_from_source": float(np.mean(r.from_source)),
            "persistence_50y_no_corridor": math.nan,
            "het_retained_50y_no_corridor": math.nan,
        }
        if n_years >= 50:
            h = r.horizon(50)["heterozygosity_retained"]["median"]
            row["het_retained_50y"] = math.nan if h is None else h
            nc = getattr(r, "corridor_results", {}).get("no_corridor")
            if nc is not None:
                row["persistence_50y_no_corridor"] = nc.persistence_at(50)
                h = nc.horizon(50)["heterozygosity_retained"]["median"]
                row["het_retained_50y_no_corridor"] = math.nan if h is None else h
        rows.append(row)
    cols = ["name", "persistence_25y", "persistence_50y", "persistence_100y", "het_retained_50y", "dispersers_to_source",
            "dispersers_from_source", "persistence_50y_no_corridor", "het_retained_50y_no_corridor"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def simulation_table(results: Mapping[str, Any]) -> pd.DataFrame:
    """The report's viability table: one row per site and corridor (today, no corridor, scenario).

    Persistence, median adults and heterozygosity retained (5-95 % intervals)
    at 25, 50 and 100 years, median inbreeding, the first year the mean
    inbreeding passes the threshold, migrants per generation; from
    :meth:`leopardgeo.stages.simulate.SimulationResult.table`.
    """
    frames = [r.table().assign(site=name) for name, r in results.items()]
    if not frames:
        return pd.DataFrame(columns=["site", "corridor"])
    out = pd.concat(frames, ignore_index=True)
    return out[["site", *[c for c in out.columns if c != "site"]]]


def simulation_report(results: Mapping[str, Any], site_ids: Mapping[str, int] | None = None) -> dict[str, Any]:
    """``simulation.json``: per site the simulation's summary (``to_dict``) and the viability table.

    Per site the summary with the flat columns of :func:`simulation_columns`;
    ``table``: the rows of :func:`simulation_table`.  No timings: two runs of
    one config write the same file.
    """
    flat = simulation_columns(results).set_index("name")
    sites = {}
    for name, r in results.items():
        d = r.to_dict()
        d |= {k: (None if not math.isfinite(v) else v) for k, v in flat.loc[name].items()}
        if site_ids is not None and name in site_ids:
            d["site_id"] = int(site_ids[name])
        sites[name] = d
    return {"sites": sites, "table": json_records(simulation_table(results))}


def plot_simulations(results: Mapping[str, Any], path: Any) -> Any:
    """``simulation.png``: per simulated site, population (left) and genetics (right); written atomically.

    Left: trajectories and persistence; right: heterozygosity retained and
    inbreeding for every corridor compared.
    """
    from pathlib import Path

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from leopardgeo.stages.simulate import plot_genetics, plot_trajectories

    n = max(1, len(results))
    fig = Figure(figsize=(13, 4.6 * n), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, 2, squeeze=False)
    for (ax, ax_g), (name, r) in zip(axes, results.items(), strict=False):
        parts = [f"{r.adults.shape[0]} runs"] + [
            f"P({y} y) = {r.persistence_at(y):.2f}" for y in (25, 50, 100) if y < r.adults.shape[1]
        ]
        plot_trajectories(r, ax=ax, title=f"{name}: " + ", ".join(parts))
        plot_genetics(r, ax=ax_g, title=f"{name}: genetics by corridor (modelled)")
    if not results:
        axes[0, 0].text(0.5, 0.5, "no site simulated", ha="center", va="center")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=110, format="png")
    tmp.replace(path)
    return path


