r"""Reintroduction site evaluation: capacity, connection to the source population, pressure, score, rank stability.

The question of a reintroduction programme -- is a candidate site big enough,
good enough and connected enough, and how does it rank against the
alternatives? -- answered on the outputs of the earlier stages (suitability,
resistance, patches, the link graph, corridors, territories).

Candidates
    The run's ``sites`` layer, a user's polygons (any CRS, any attribute
    names), or ``auto``: habitat patches that neither hold nor touch the source
    and hold at least ``min_females`` female territories
    (:func:`prepare_sites`, :func:`auto_candidates`).

Per site (:func:`evaluate_sites`)
    * ``habitat_area_ha``, ``mean_quality``: the site's habitat cells (patch
      cells, or suitability >= the patch threshold) and their mean suitability.
    * ``capacity_*``: territories packed inside the site with
      :func:`leopardgeo.stages.territories.pack_territories` (females, males, adults;
      replicate 0 and the min / max over replicates).
    * ``cwd_to_source``: least-cost distance (cost-weighted metres) from the
      source population (by default the protected area named like "Land of the
      Leopard"), ``euclid_to_source_m``: edge-to-edge distance.
    * ``eff_resistance``: effective resistance (ohms) between the site and the
      source, each short-circuited, over the resistance raster
      (:func:`leopardgeo.kernels.circuit.circuit_flow`, a 2-node circuit; McRae et al.
      2008), solved in a window around both (an upper bound on the
      whole-landscape value: removing conductors can only raise it).
    * ``n_corridors``, ``best_corridor_score``: the run's links whose least-cost
      path or corridor passes through the site, and the best corridor score
      among them (0--100, :mod:`leopardgeo.stages.score`).
    * ``dPC_gain_pct``, ``dEC_gain_ha``: Graphab's add-patch idea (Foltête et
      al. 2012, *Environ. Model. Softw.* 38:316): the site becomes a node of its
      own (area = its habitat area; patch areas lose the cells the site takes
      from them) with a link of least cost to every patch it reaches; PC and EC
      (:func:`leopardgeo.stages.metrics.connectivity_metrics`, same kernel as the
      ``[metrics]`` stage) are compared with and without the site node.
    * ``cropland_frac``, ``urban_frac`` (land-cover classes of ``[habitat]``),
      ``road_density_km_per_km2`` (when a roads layer is given),
      ``protected_frac``.
    * ``dist_to_territory_m``: distance to the nearest existing territory in
      the source -- one with at least half its area there -- (or to the source
      itself when no territories are given).

Score (:func:`score_sites`)
    Each criterion is min-max normalised over the candidates to 0..1 (1 =
    best; *benefit* criteria rise with the value, *cost* criteria fall), a
    weighted mean gives ``score`` = 100 · Σ w·n / Σ w, ``rank`` 1 = best
    (ties: the earlier site).  A criterion on which every site is equal gives
    every site 1; a site missing a value gets 0 on that criterion; a criterion
    no site has is left out of the sum.

Rank stability (:func:`rank_stability`)
    Monte Carlo: every weight is multiplied by an independent
    :math:`U(1 - s, 1 + s)` factor, the scores recomputed, and for each site
    the share of draws in which it ranks first and its mean rank are reported.

Examples
--------
>>> t = pd.DataFrame({"site_id": [1, 2], "name": ["A", "B"], "capacity_females": [10.0, 4.0],
...                   "cwd_to_source": [50_000.0, 20_000.0]})
>>> s = score_sites(t, {"capacity_females": 3.0, "cwd_to_source": 1.0})
>>> s[["name", "n_capacity_females", "n_cwd_to_source", "score", "rank"]].to_dict("records")
[{'name': 'A', 'n_capacity_females': 1.0, 'n_cwd_to_source': 0.0, 'score': 75.0, 'rank': 1},
 {'name': 'B', 'n_capacity_females': 0.0, 'n_cwd_to_source': 1.0, 'score': 25.0, 'rank': 2}]
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

import geopandas as gpd

from leopardgeo.config import MAX_DRAWS, MAX_REPLICATES, MAX_SIMULATION_RUNS, VectorInput, _f, _normalise, _positive
from leopardgeo.core.errors import ConfigError, NoPathError
from leopardgeo.io import OutputWriter, json_records, read_raster, read_vector
from leopardgeo.stages.base import RunConfigLike, Section, Stage
from leopardgeo.stages.corridors import CorridorResult
from leopardgeo.stages.inputs import Inputs, protected_raster
from leopardgeo.stages.site_candidates import (  # the candidates and the source, re-exported
    DEFAULT_SOURCE,
    SourceRegion,
    find_source,
    prepare_sites,
    site_masks,
)
from leopardgeo.stages.site_criteria import (  # the criteria of each site, re-exported
    add_patch_gain,
    auto_candidates,
    effective_resistance,
    evaluate_sites,
    site_capacity,
    weakest_section,
)
from leopardgeo.stages.site_scoring import (  # the score and the rank stability, re-exported
    BENEFIT,
    COST,
    CRITERIA,
    DEFAULT_WEIGHTS,
    rank_stability,
    score_sites,
)
from leopardgeo.stages.site_simulation import (  # the population simulation of the sites, re-exported
    plot_simulations,
    simulate,
    simulate_sites,
    simulation_columns,
    simulation_report,
    simulation_table,
)
from leopardgeo.stages.territories import territory_quality

__all__ = [
    "BENEFIT",
    "COST",
    "CRITERIA",
    "DEFAULT_SOURCE",
    "DEFAULT_WEIGHTS",
    "SiteResult",
    "SourceRegion",
    "add_patch_gain",
    "auto_candidates",
    "effective_resistance",
    "evaluate_sites",
    "find_source",
    "prepare_sites",
    "rank_stability",
    "plot_simulations",
    "score_sites",
    "simulate",
    "simulate_sites",
    "simulation_columns",
    "simulation_report",
    "simulation_table",
    "site_capacity",
    "site_masks",
    "weakest_section",
]

logger = logging.getLogger(__name__)



# --------------------------------------------------------------------------- result
@dataclass
class SiteResult:
    """Output of the sites stage.

    Attributes
    ----------
    table
        Ranked sites (GeoDataFrame in the grid CRS): every criterion, the
        normalised criteria ``n_*``, ``score``, ``rank``, ``first_share``,
        ``mean_rank`` and, when simulated, ``persistence_25y``,
        ``persistence_50y``, ``dispersers_to_source``, ``dispersers_from_source``.
    stability
        Output of :func:`rank_stability`.
    source
        The source population used.
    weights
        Weights used (criteria with a value and weight > 0).
    simulation
        Per simulated site name: the simulation's summary (``to_dict``).
    simulation_results
        Per simulated site name: the :class:`leopardgeo.stages.simulate.SimulationResult`.
    """

    table: gpd.GeoDataFrame
    stability: pd.DataFrame
    source: SourceRegion
    weights: dict[str, float]
    simulation: dict[str, Any] = field(default_factory=dict)
    simulation_results: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """``sites.json``: the source, the weights, every site's row (no geometry) and the rank stability."""
        rows = pd.DataFrame(self.table.drop(columns="geometry"))
        return {
            "source": self.source.name,
            "source_kind": self.source.kind,
            "weights": self.weights,
            "directions": {c: CRITERIA[c][0] for c in self.weights if c in CRITERIA},
            "sites": json_records(rows),
            "rank_stability": json_records(self.stability),
        }


# ---------------------------------------------------------------------- config section
def _default_site_weights() -> dict[str, float]:
    return dict(DEFAULT_WEIGHTS)


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteConfig:
    """Reintroduction site evaluation (see :mod:`leopardgeo.stages.sites`)."""

    enabled: bool = _f(True, doc="evaluate reintroduction sites in `leopardgeo run` (needs candidates: [inputs] sites or 'auto')")
    candidates: str | VectorInput = _f(
        "layer",
        doc=(
            "'layer' ([inputs] sites: the demo's southern Sikhote-Alin sites), 'auto' (habitat patches away from the "
            "source holding >= min_females female territories) or a vector {path = ..., layer = ...} in any CRS"
        ),
    )
    name_field: str | None = _f(None, doc="column of the site names; default 'name' (any case), else the first text column")
    source: str = _f(
        "Land of the Leopard",
        doc=(
            "source population: protected area(s) whose NAME contains this (case-insensitive); the largest patch if none "
            "does. Land of the Leopard NP holds the remaining wild Amur leopards (Vitkalova et al. 2018)"
        ),
    )
    min_females: int = _f(
        5,
        doc="candidates = 'auto': least number of female territories a patch must hold (modelling choice, not a published value)",
    )
    weights: dict[str, float] = _f(
        doc=(
            "weight of each criterion of the score (>= 0; renormalised over the criteria that have values). Modelling "
            "choices, no published weighting exists: capacity and quality first, connection (cwd_to_source, "
            "eff_resistance, n_corridors, best_corridor_score, dPC_gain_pct) second, human pressure (cropland_frac, "
            "urban_frac, road_density_km_per_km2; Hebblewhite et al. 2011: far from human activity) and protected_frac "
            "third; dist_to_territory_m is shown, weight 0"
        ),
        factory=_default_site_weights,
    )
    directions: dict[str, str] = _f(
        doc="override 'benefit' (higher = better) or 'cost' (lower = better) of a criterion, e.g. dist_to_territory_m",
        factory=dict,
    )
    rank_stability_draws: int = _f(1000, doc="Monte Carlo draws of perturbed weights for the rank stability")
    weight_spread: float = _f(0.5, doc="each weight is multiplied by U(1 - spread, 1 + spread) in every draw")
    seed: int = _f(0, doc="seed of the rank-stability draws, the capacity packings and the simulation")
    capacity_replicates: int = _f(5, doc="territory packings per site (capacity min / max over them)")
    circuit_margin_m: float | None = _f(
        50_000.0,
        doc=(
            "effective resistance site-source is solved in their bounding box plus this margin, metres (an upper "
            "bound on the whole-raster value; leave unset for the whole raster, slower)"
        ),
    )
    roads: VectorInput | None = _f(None, doc="road lines for road_density_km_per_km2 (none in the demo)")
    simulate: bool = _f(True, doc="run the population simulation (leopardgeo.stages.simulate) for the simulated sites")
    simulate_sites: str = _f("all", doc="'all' sites or only the 'top' ranked one")
    simulation_runs: int = _f(500, doc="simulation replicates per site")
    simulation_years: int = _f(100, doc="years simulated (persistence and genetics are reported at 25, 50 and 100 years)")
    simulation_compare_corridors: bool = _f(
        True,
        doc=(
            "also simulate every site with no corridor to the source (same seeds), so the report shows what today's "
            "corridor buys in persistence and heterozygosity retained"
        ),
    )
    simulation_corridor_resistance: str | None = _f(
        None,
        doc=(
            "a scenario's resistance raster (GeoTIFF on the run's grid, or any raster reprojected onto it) simulated "
            "as a third corridor (the 'scenario' rows)"
        ),
    )
    simulation_params: dict[str, Any] = _f(
        doc=(
            "any other parameter of leopardgeo.stages.simulate.SimulationParams, e.g. {lethal_equivalents = 6.29, "
            "catastrophes = [[0.05, 0.3, 0.0]], ev_survival_sd = 0.05} (see docs/parameters.md)"
        ),
        factory=dict,
    )
    founders_female: int = _f(
        2,
        doc=(
            "females released at year 0: the Ussuriysky translocations released 2 females and 4 males in 2023-2025 "
            "(RIA Novosti 20 Oct 2025; TASS 13 Oct 2025)"
        ),
    )
    founders_male: int = _f(4, doc="males released at year 0 (see founders_female)")
    simulation_margin_m: float = _f(
        25_000.0,
        doc=(
            "without the territories stage, the simulation packs territories in the bounding box of the site and the "
            "source plus this margin, metres (modelling choice: beyond it dispersal from either is rare)"
        ),
    )

    def __post_init__(self) -> None:
        _normalise(self, "sites")
        if isinstance(self.candidates, str) and self.candidates not in ("layer", "auto"):
            msg = (
                f"[sites] candidates: expected 'layer', 'auto' or a table {{path = ..., layer = ...}}, found "
                f"{self.candidates!r}. Write candidates = {{path = {self.candidates!r}}} for a file."
            )
            raise ConfigError(msg)
        if isinstance(self.candidates, dict):
            object.__setattr__(self, "candidates", VectorInput(**self.candidates))
        for key, table in (("weights", self.weights), ("directions", self.directions)):
            unknown = [k for k in table if k not in CRITERIA]
            if unknown:
                msg = f"[sites] {key}: unknown criterion {unknown[0]!r}; valid criteria: {', '.join(CRITERIA)}."
                raise ConfigError(msg)
        for k, v in self.weights.items():
            _positive(v, f"sites.weights.{k}", allow_zero=True)
        if not any(v > 0 for v in self.weights.values()):
            msg = "[sites] weights: expected at least one weight > 0, found none. Set e.g. capacity_females = 1."
            raise ConfigError(msg)
        for k, v in self.directions.items():
            if v not in ("benefit", "cost"):
                msg = f"[sites] directions: expected 'benefit' or 'cost' for {k!r}, found {v!r}."
                raise ConfigError(msg)
        for name, low in (("min_females", 1), ("rank_stability_draws", 1), ("capacity_replicates", 1),
                          ("simulation_runs", 1), ("simulation_years", 1), ("founders_female", 0),
                          ("founders_male", 0), ("seed", 0)):  # fmt: skip
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                msg = f"[sites] {name}: expected an integer >= {low}, found {v!r}."
                raise ConfigError(msg)
        from leopardgeo.core.memory import check_count

        for name, limit in (("rank_stability_draws", MAX_DRAWS), ("capacity_replicates", MAX_REPLICATES),
                            ("simulation_runs", MAX_SIMULATION_RUNS), ("simulation_years", 1000)):  # fmt: skip
            check_count(getattr(self, name), name=f"[sites] {name}", limit=limit,
                        fix="A count this large would run for days; the defaults are enough for stable results.")  # fmt: skip
        if not 0 <= self.weight_spread < 1:
            msg = f"[sites] weight_spread: expected a fraction in [0, 1), found {self.weight_spread!r}."
            raise ConfigError(msg)
        if self.circuit_margin_m is not None:
            _positive(self.circuit_margin_m, "sites.circuit_margin_m")
        _positive(self.simulation_margin_m, "sites.simulation_margin_m", allow_zero=True)
        if self.simulate_sites not in ("all", "top"):
            msg = f"[sites] simulate_sites: expected 'all' or 'top', found {self.simulate_sites!r}."
            raise ConfigError(msg)


# ---------------------------------------------------------------------- the stage
def _sites_run(cfg: RunConfigLike) -> bool:
    """Whether the sites stage runs: enabled, with candidates (a layer given, a file, or 'auto')."""
    s = cfg.sites
    return s.enabled and (s.candidates != "layer" or cfg.inputs.sites is not None)


def site_files(cfg: RunConfigLike) -> tuple[str, ...]:
    """Files of the sites stages (the ``sites`` layer goes into the GeoPackage)."""
    if not _sites_run(cfg):
        return ()
    return ("sites.csv", "sites.json") + (("simulation.json", "simulation.png") if cfg.sites.simulate else ())


#: ``[sites]`` keys only the ranking reads (a change reruns the ranking alone, not the evaluation or the simulation).
RANKING_KEYS = ("rank_stability_draws", "weight_spread")
#: ``[sites]`` keys of the score (read by the ranking, and by the simulation for its order of sites).
SCORE_KEYS = ("weights", "directions")
#: ``[sites]`` keys only the population simulation reads.
SIMULATION_KEYS = (
    "simulate", "simulate_sites", "simulation_runs", "simulation_years", "simulation_compare_corridors",
    "simulation_corridor_resistance", "simulation_params", "founders_female", "founders_male", "simulation_margin_m",
)  # fmt: skip


def _site_keys(*leave_out: tuple[str, ...]) -> tuple[str, ...]:
    """``sites.<key>`` for every ``[sites]`` key except those in ``leave_out`` (a stage's hash covers these)."""
    out = {k for group in leave_out for k in group}
    return tuple(f"sites.{f.name}" for f in dataclasses.fields(SiteConfig) if f.name not in out)


@dataclass
class SiteEvaluation:
    """The candidates and every criterion of each (the costly part of the sites stage, before any score).

    Attributes
    ----------
    candidates
        The candidate sites (:func:`prepare_sites`, :func:`auto_candidates`).
    source
        The source population.
    table
        :func:`evaluate_sites`'s table, one row per candidate.
    quality
        The territory quality surface the capacity packing used (and the simulation uses).
    timings_s
        Run times by part.
    """

    candidates: gpd.GeoDataFrame
    source: SourceRegion
    table: pd.DataFrame
    quality: np.ndarray
    timings_s: dict[str, float] = field(default_factory=dict)


def evaluate_candidates(
    cfg: RunConfigLike,
    inputs: Inputs,
    suitability: np.ndarray,
    resistance: np.ndarray,
    labels: np.ndarray,
    patches: gpd.GeoDataFrame,
    graph: nx.Graph | None = None,
    corridors: CorridorResult | None = None,
    territories: Any = None,
) -> SiteEvaluation:
    """The candidates of ``[sites] candidates`` and every criterion of each (:func:`evaluate_sites`); no score yet.

    Parameters and errors as :func:`compute_sites`, which runs this, :func:`simulate_candidates` and
    :func:`rank_candidates` in turn.
    """
    from leopardgeo.stages import sites as st

    sc = cfg.sites
    grid = inputs.grid
    t = time.perf_counter()
    src = st.find_source(
        grid, labels=labels, patches=patches, protected_areas=inputs.protected_areas, name=sc.source, valid=inputs.valid
    )
    tp = _territory_params(cfg)
    quality = territory_quality(cfg, inputs, suitability)
    if sc.candidates == "auto":
        cand = st.auto_candidates(
            quality, resistance, grid, labels=labels, patches=patches, source=src, min_females=sc.min_females,
            seed=sc.seed, **tp,
        )  # fmt: skip
    elif sc.candidates == "layer":
        if inputs.sites is None:
            msg = (
                "[sites] candidates = 'layer': expected [inputs] sites = {path = ..., layer = ...}, found none. "
                "Set it, or use candidates = 'auto'."
            )
            raise ConfigError(msg)
        cand = st.prepare_sites(inputs.sites, grid, name_field=sc.name_field)
    else:
        v = sc.candidates
        gdf = read_vector(cfg.resolve(v.path), v.layer, grid=grid, what="[sites] candidates")  # type: ignore[union-attr]
        cand = st.prepare_sites(gdf, grid, name_field=sc.name_field, what="[sites] candidates")
    roads = None
    if sc.roads is not None:
        roads = read_vector(cfg.resolve(sc.roads.path), sc.roads.layer, grid=grid, what="[sites] roads")
    terr_table = getattr(territories, "table", None)
    m = cfg.metrics
    area = m.landscape_area_ha if m.landscape_area_ha is not None else float(inputs.valid.sum()) * grid.cell_area_ha
    table = st.evaluate_sites(
        cand,
        suitability=suitability,
        resistance=resistance,
        labels=labels,
        patches=patches,
        grid=grid,
        source=src,
        valid=inputs.valid,
        graph=graph,
        corridors=corridors.table if corridors is not None else None,
        protected=protected_raster(inputs),
        landcover=inputs.rasters.get("landcover"),
        roads=roads,
        territories=terr_table,
        quality=quality,
        min_suitability=cfg.patches.min_suitability,
        cropland_classes=cfg.habitat.cropland_classes,
        urban_classes=cfg.habitat.urban_classes,
        territory=tp,
        capacity_replicates=sc.capacity_replicates,
        seed=sc.seed,
        median_distance=m.median_dispersal,
        probability=m.probability,
        landscape_area_ha=area,
        circuit_margin_m=sc.circuit_margin_m,
        connectivity=cfg.links.connectivity,
        circuit_connectivity=cfg.circuit.connectivity,
    )
    return SiteEvaluation(cand, src, table, quality, {"evaluate": time.perf_counter() - t})


def _scored(cfg: RunConfigLike, evaluation: SiteEvaluation) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Mask of the unreachable sites, the reachable ones, and those scored and sorted by rank."""
    sc = cfg.sites
    table = evaluation.table
    cut = _unreachable_sites(table, evaluation.source.name)
    ranked = table[~cut].reset_index(drop=True)
    from leopardgeo.stages import sites as st

    return cut, ranked, st.score_sites(ranked, sc.weights, sc.directions)


@dataclass
class SiteSimulation:
    """The population simulation of the sites: ``simulation.json``'s content, each site's result, the run time."""

    report: dict[str, Any]
    results: dict[str, Any]
    columns: pd.DataFrame
    timings_s: dict[str, float] = field(default_factory=dict)


def simulate_candidates(
    cfg: RunConfigLike,
    evaluation: SiteEvaluation,
    inputs: Inputs,
    suitability: np.ndarray,
    resistance: np.ndarray,
    labels: np.ndarray,
    territories: Any = None,
) -> SiteSimulation:
    """The population simulation (``[sites] simulate``) of every site in rank order, or of the top one.

    Raises
    ------
    ConfigError
        A ``[sites] simulation_params`` key that is not a parameter, or one set by another ``[sites]`` key.
    """
    from leopardgeo.stages import sites as st
    from leopardgeo.stages.simulate import SimulationParams

    sc = cfg.sites
    grid = inputs.grid
    t = time.perf_counter()
    extra = dict(sc.simulation_params)
    fixed = {"years", "n_runs", "seed", "founders_female", "founders_male"} & set(extra)
    if fixed:
        msg = (
            f"[sites] simulation_params: {sorted(fixed)} are set by [sites] simulation_years, simulation_runs, seed, "
            "founders_female and founders_male; set them there."
        )
        raise ConfigError(msg)
    try:
        params = SimulationParams(
            years=sc.simulation_years,
            n_runs=sc.simulation_runs,
            seed=sc.seed,
            founders_female=sc.founders_female,
            founders_male=sc.founders_male,
            **{k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
               for k, v in extra.items()},
        )  # fmt: skip
    except TypeError as exc:
        msg = f"[sites] simulation_params: {exc}. See leopardgeo.stages.simulate.SimulationParams for the parameter names."
        raise ConfigError(msg) from None
    scen = None
    if sc.simulation_corridor_resistance:
        scen = read_raster(
            cfg.resolve(sc.simulation_corridor_resistance), grid, resampling="nearest",
            what="[sites] simulation_corridor_resistance",
        )  # fmt: skip
    cut, _, scored = _scored(cfg, evaluation)
    if cut.any():  # after the ranked sites, as in the sites table
        scored = pd.concat([scored, evaluation.table[cut]], ignore_index=True)
    chosen = scored if sc.simulate_sites == "all" else scored.iloc[:1]
    cand = evaluation.candidates
    masks = dict(zip(cand["site_id"].astype(int), st.site_masks(cand, grid, inputs.valid), strict=True))
    results = st.simulate_sites(
        chosen, masks, suitability=suitability, resistance=resistance, labels=labels, grid=grid,
        source=evaluation.source, params=params, territories=territories, quality=evaluation.quality,
        min_suitability=cfg.patches.min_suitability, territory=_territory_params(cfg), margin_m=sc.simulation_margin_m,
        seed=sc.seed, compare_corridors=sc.simulation_compare_corridors, scenario_resistance=scen,
    )  # fmt: skip
    report = st.simulation_report(results, dict(zip(scored["name"], scored["site_id"].astype(int), strict=True)))
    return SiteSimulation(report, results, st.simulation_columns(results), {"simulation": time.perf_counter() - t})


def rank_candidates(cfg: RunConfigLike, evaluation: SiteEvaluation, simulation: SiteSimulation | None = None) -> SiteResult:
    """The score, rank and rank stability of the evaluated sites, with the simulation's columns when given."""
    from leopardgeo.stages import sites as st

    sc = cfg.sites
    table = evaluation.table
    cut, ranked, scored = _scored(cfg, evaluation)
    stab = st.rank_stability(
        ranked, sc.weights, sc.directions, n=sc.rank_stability_draws, spread=sc.weight_spread, seed=sc.seed
    )
    scored = scored.merge(stab[["site_id", "first_share", "mean_rank"]], on="site_id", how="left")
    if cut.any():  # listed after the ranked sites, without score or rank
        unranked = table[cut].assign(score=np.nan, rank=np.nan, first_share=np.nan, mean_rank=np.nan)
        scored = pd.concat([scored, unranked], ignore_index=True)
    timings = dict(evaluation.timings_s)
    if simulation is not None:
        scored = scored.merge(simulation.columns, on="name", how="left")
        timings |= simulation.timings_s
    scored = gpd.GeoDataFrame(scored, geometry="geometry", crs=evaluation.candidates.crs)
    used = {c: float(w) for c, w in sc.weights.items() if w > 0 and c in table.columns and table[c].notna().any()}
    return SiteResult(
        table=scored, stability=stab, source=evaluation.source, weights=used,
        simulation=simulation.report if simulation is not None else {},
        simulation_results=simulation.results if simulation is not None else {}, timings_s=timings,
    )  # fmt: skip


def compute_sites(
    cfg: RunConfigLike,
    inputs: Inputs,
    suitability: np.ndarray,
    resistance: np.ndarray,
    labels: np.ndarray,
    patches: gpd.GeoDataFrame,
    graph: nx.Graph | None = None,
    corridors: CorridorResult | None = None,
    territories: Any = None,
) -> SiteResult:
    """Reintroduction sites: every criterion, the score, the rank stability (see :mod:`leopardgeo.stages.sites`).

    Candidates come from ``[sites] candidates``: the ``[inputs] sites`` layer,
    a vector file, or ``auto``.  ``territories`` (a
    :class:`leopardgeo.stages.territories.TerritoryResult`) gives the existing
    territories for ``dist_to_territory_m`` and the simulation's landscape;
    without it the distance runs to the source and the simulation packs its
    own territories around the site and the source.  Capacity packs with the
    parameters and the quality surface of ``[territories]``.

    The run computes the three parts as three stages (:func:`evaluate_candidates`,
    :func:`simulate_candidates`, :func:`rank_candidates`), so a change of the ranking's
    keys alone reuses the evaluation and the simulation.

    Raises
    ------
    ConfigError
        If ``candidates = 'layer'`` and ``[inputs] sites`` is not set.
    DataError
        Empty or invalid candidates, a site on no valid cell, no source.
    """
    ev = evaluate_candidates(cfg, inputs, suitability, resistance, labels, patches, graph, corridors, territories)
    sim = simulate_candidates(cfg, ev, inputs, suitability, resistance, labels, territories) if cfg.sites.simulate else None
    return rank_candidates(cfg, ev, sim)


def _unreachable_sites(table: pd.DataFrame, source: str) -> np.ndarray:
    """Mask of the sites that cannot reach the source population (infinite ``cwd_to_source``); they are not ranked.

    Raises
    ------
    NoPathError
        If no site can reach the source.
    """
    if "cwd_to_source" not in table.columns:
        return np.zeros(len(table), dtype=bool)
    cut = ~np.isfinite(table["cwd_to_source"].to_numpy(dtype=float))
    if cut.any():
        names = ", ".join(str(n) for n in table.loc[cut, "name"])
        hint = (
            "No-data cells (outside an input raster, water, impassable barriers) separate them from it: check that "
            "every input covers the study area (see any NodataWarning) and the barriers."
        )
        if cut.all():
            msg = f"sites: expected a site that can reach the source population {source!r}, found none ({names}). {hint}"
            raise NoPathError(msg)
        logger.warning("sites: %s cannot reach the source population %r and are not ranked. %s", names, source, hint)
    return cut


def _territory_params(cfg: RunConfigLike) -> dict[str, Any]:
    """Packing parameters of ``[territories]`` when the config has that section (else the packing defaults)."""
    t = getattr(cfg, "territories", None)
    keys = ("min_area_ha", "max_area_ha", "female_need_ha", "male_multiple", "min_quality", "max_cost_m", "connectivity")
    return {k: getattr(t, k) for k in keys if t is not None and getattr(t, k, None) is not None}


def site_layer(result: SiteResult) -> gpd.GeoDataFrame:
    """The ``sites`` GeoPackage layer: one polygon per site with every criterion, score, rank and stability."""
    return result.table


#: Keys of the simulation's summaries that hold run times: they go to ``manifest.json``, not ``simulation.json``.
TIME_KEYS = frozenset({"elapsed_s", "build_s"})


def split_times(obj: Any, prefix: str = "") -> tuple[Any, dict[str, float]]:
    """``obj`` without its run-time keys (:data:`TIME_KEYS`, at any depth), and those times by dotted key.

    Result files hold no run times, so two runs of one configuration write identical files; the times
    are kept in ``manifest.json``.

    Examples
    --------
    >>> split_times({"a": 1, "elapsed_s": 2.5, "landscape": {"build_s": 0.1, "n": 3}})
    ({'a': 1, 'landscape': {'n': 3}}, {'elapsed_s': 2.5, 'landscape.build_s': 0.1})
    """
    times: dict[str, float] = {}
    if isinstance(obj, dict):
        clean = {}
        for k, v in obj.items():
            if k in TIME_KEYS and isinstance(v, int | float):
                times[prefix + k] = float(v)
            else:
                clean[k], sub = split_times(v, f"{prefix}{k}.")
                times |= sub
        return clean, times
    if isinstance(obj, list):
        items = [split_times(v, f"{prefix}{i}.") for i, v in enumerate(obj)]
        for _, sub in items:
            times |= sub
        return [c for c, _ in items], times
    return obj, times


def write_sites(writer: OutputWriter, result: SiteResult) -> dict[str, float]:
    """``sites.csv``, ``sites.json`` and, when simulated, ``simulation.json`` and ``simulation.png``.

    The tables are :func:`write_site_tables`' and the simulation's files :func:`write_simulation`'s.
    Returns the simulation's run times (for ``manifest.json``), which ``simulation.json`` leaves out.
    """
    write_site_tables(writer, result)
    if not result.simulation:
        return {}
    return write_simulation(writer, result.simulation, result.simulation_results)


def write_site_tables(writer: OutputWriter, result: SiteResult) -> None:
    """``sites.csv`` (the ranked table without geometry) and ``sites.json`` (source, weights, sites, stability)."""
    table = pd.DataFrame(result.table.drop(columns="geometry"))
    writer.text("sites.csv", table.to_csv(index=False, float_format="%.6g"))
    writer.text("sites.json", json.dumps(result.summary(), indent=1, ensure_ascii=False))


def write_simulation(writer: OutputWriter, report: dict[str, Any], results: dict[str, Any]) -> dict[str, float]:
    """``simulation.json`` (without run times) and ``simulation.png``; returns the run times for ``manifest.json``."""
    from leopardgeo.stages.sites import plot_simulations

    simulation, times = split_times(report)
    writer.text("simulation.json", json.dumps(simulation, indent=1, ensure_ascii=False))
    plot_simulations(results, writer.path("simulation.png"))
    return {f"simulation.{k}": v for k, v in times.items()}


def _simulated(cfg: RunConfigLike) -> bool:
    return _sites_run(cfg) and cfg.sites.simulate


#: The costly part of the sites: the candidates and their criteria.  Its hash covers the ``[sites]`` keys
#: the evaluation reads, not the ranking's, the score's or the simulation's.
EVALUATION_STAGE = Stage(
    "site_evaluation",
    "reintroduction sites: candidates and criteria",
    lambda cfg, c: {
        "site_evaluation": evaluate_candidates(
            cfg, c["inputs"], c["suitability"], c["resistance"], c["labels"], c["patches"], c.get("graph"),
            c.get("corridors"), c.get("territories"),
        )
    },
    sections=(*_site_keys(RANKING_KEYS, SCORE_KEYS, SIMULATION_KEYS), "territories", "patches"),
    needs=("inputs", "habitat", "resistance", "patches"),
    uses=("links", "corridors", "scores", "territories"),  # corridors through a site and their scores, residents
    after=("circuit", "pinch_points", "barriers", "metrics", "crossborder"),  # the graph as the run leaves it
    produces=("site_evaluation",),
    enabled=_sites_run,
)

#: The population simulation of the sites (``[sites] simulate``), in the order of their score.
SIMULATION_STAGE = Stage(
    "site_simulation",
    "reintroduction sites: population simulation",
    lambda cfg, c: {
        "site_simulation": simulate_candidates(
            cfg, c["site_evaluation"], c["inputs"], c["suitability"], c["resistance"], c["labels"], c.get("territories")
        )
    },
    sections=(*_site_keys(RANKING_KEYS), "territories", "patches"),
    needs=("site_evaluation", "inputs", "habitat", "resistance", "patches"),
    uses=("territories",),
    produces=("site_simulation",),
    enabled=_simulated,
    outputs=("simulation.json", "simulation.png"),
    write=lambda writer, cfg, c: write_simulation(writer, c["site_simulation"].report, c["site_simulation"].results),
)

STAGE = Stage(
    "sites",
    "reintroduction sites",
    lambda cfg, c: {"sites": rank_candidates(cfg, c["site_evaluation"], c.get("site_simulation"))},
    config=(Section("sites", SiteConfig, "reintroduction site evaluation"),),
    sections=("sites",),
    needs=("site_evaluation",),
    uses=("site_simulation",),
    produces=("sites",),
    enabled=_sites_run,
    reads_inputs=False,  # the evaluation and the simulation read them
    outputs=("sites.csv", "sites.json"),
    layers=lambda cfg, c: {"sites": site_layer(c["sites"])},
    write=lambda writer, cfg, c: write_site_tables(writer, c["sites"]),
)
