"""The score of reintroduction sites: criteria, default weights, min-max score and rank stability.

Re-exported by :mod:`leopardgeo.stages.sites` (see its module docstring for the method).

Examples
--------
>>> t = pd.DataFrame({"site_id": [1, 2], "name": ["A", "B"], "capacity_females": [10.0, 4.0]})
>>> score_sites(t, {"capacity_females": 1.0})[["name", "score", "rank"]].to_dict("records")
[{'name': 'A', 'score': 100.0, 'rank': 1}, {'name': 'B', 'score': 0.0, 'rank': 2}]
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from leopardgeo.core.errors import ConfigError, DataError

__all__ = ["BENEFIT", "COST", "CRITERIA", "DEFAULT_WEIGHTS", "rank_stability", "score_sites"]



BENEFIT, COST = "benefit", "cost"


#: Scoring criteria: column -> (direction, description).  ``benefit``: higher is better; ``cost``: lower is better.
CRITERIA: dict[str, tuple[str, str]] = {
    "capacity_females": (BENEFIT, "female territories the site holds (replicate 0)"),
    "habitat_area_ha": (BENEFIT, "habitat area inside the site, ha"),
    "mean_quality": (BENEFIT, "mean suitability of the site's habitat, 0..1"),
    "cwd_to_source": (COST, "least-cost distance to the source population, cost-weighted metres"),
    "eff_resistance": (COST, "effective resistance between the site and the source, ohms"),
    "n_corridors": (BENEFIT, "links of the run whose path or corridor passes through the site"),
    "best_corridor_score": (BENEFIT, "best corridor score (0-100) of those links"),
    "dPC_gain_pct": (BENEFIT, "gain in PC when the site joins the network as a node, %"),
    "cropland_frac": (COST, "share of the site's cells in cropland classes"),
    "urban_frac": (COST, "share of the site's cells in urban classes"),
    "road_density_km_per_km2": (COST, "road length per site area, km/km2"),
    "protected_frac": (BENEFIT, "share of the site's cells in protected areas"),
    "dist_to_territory_m": (COST, "distance to the nearest existing leopard territory, m (closer = exchange with residents)"),
}


#: Default weights (modelling choices, not published values: no weighting of these criteria for Amur
#: leopard reintroduction was found).  Capacity and habitat quality weigh most ("big and good enough"),
#: connection second (least cost, effective resistance, corridors, dPC gain), human pressure and protection
#: third; they follow the habitat selection of Hebblewhite et al. 2011 (Biol. Conserv. 144:2403): high prey,
#: forest, far from human activity.  Distance to resident territories is shown but not weighted.
DEFAULT_WEIGHTS: dict[str, float] = {
    "capacity_females": 0.20,
    "habitat_area_ha": 0.05,
    "mean_quality": 0.10,
    "cwd_to_source": 0.10,
    "eff_resistance": 0.10,
    "n_corridors": 0.05,
    "best_corridor_score": 0.05,
    "dPC_gain_pct": 0.10,
    "cropland_frac": 0.05,
    "urban_frac": 0.05,
    "road_density_km_per_km2": 0.05,
    "protected_frac": 0.10,
    "dist_to_territory_m": 0.0,
}



# --------------------------------------------------------------------------- score
def _check_weights(weights: Mapping[str, float], directions: Mapping[str, str] | None) -> tuple[dict[str, float], dict[str, str]]:
    dirs = {c: d for c, (d, _) in CRITERIA.items()} | dict(directions or {})
    bad_dir = {c: d for c, d in dirs.items() if d not in (BENEFIT, COST)}
    if bad_dir:
        c, d = next(iter(bad_dir.items()))
        msg = f"[sites] directions: expected 'benefit' or 'cost' for {c!r}, found {d!r}."
        raise ConfigError(msg)
    w = {}
    for c, v in weights.items():
        if c not in dirs:
            msg = f"[sites] weights: unknown criterion {c!r}; expected one of {sorted(dirs)}."
            raise ConfigError(msg)
        try:
            fv = float(v)
        except (TypeError, ValueError):
            fv = math.nan
        if not (fv >= 0 and math.isfinite(fv)):
            msg = f"[sites] weights: expected a finite weight >= 0 for {c!r}, found {v!r}."
            raise ConfigError(msg)
        w[c] = fv
    if not any(v > 0 for v in w.values()):
        msg = "[sites] weights: expected at least one weight > 0, found none. Set e.g. capacity_females = 1."
        raise ConfigError(msg)
    return w, dirs


def _normalised(table: pd.DataFrame, weights: Mapping[str, float], dirs: Mapping[str, str]) -> tuple[pd.DataFrame, list[str]]:
    """Min-max normalised criteria (1 = best) and the criteria that count (weight > 0, some finite value)."""
    norm = {}
    used = []
    for c in weights:
        if c not in table.columns:
            continue
        x = pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=np.float64)
        fin = np.isfinite(x)
        if not fin.any():
            continue
        lo, hi = float(x[fin].min()), float(x[fin].max())
        if hi > lo:
            n = (x - lo) / (hi - lo) if dirs[c] == BENEFIT else (hi - x) / (hi - lo)
        else:
            n = np.ones_like(x)
        norm[c] = np.where(fin, n, 0.0)
        if weights[c] > 0:
            used.append(c)
    return pd.DataFrame(norm, index=table.index), used


def score_sites(
    table: pd.DataFrame,
    weights: Mapping[str, float] | None = None,
    directions: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Multi-criteria score 0..100 and rank of each site; the normalised criteria as ``n_<criterion>``.

    Parameters
    ----------
    table
        One row per site, criteria as columns (from :func:`evaluate_sites`).
    weights
        ``{criterion: weight >= 0}``; default :data:`DEFAULT_WEIGHTS`.
        Criteria missing from ``table`` or without any finite value are left out.
    directions
        Override ``benefit`` / ``cost`` of :data:`CRITERIA` (or give those of
        extra columns).

    Returns
    -------
    pandas.DataFrame
        ``table`` in rank order with ``n_<criterion>`` (0..1, 1 = best),
        ``score`` and ``rank`` (1 = best; ties go to the earlier row).

    Raises
    ------
    ConfigError
        Unknown criterion, a negative or non-finite weight, all weights 0,
        or a direction other than benefit / cost.
    DataError
        If no weighted criterion has a value.
    """
    w, dirs = _check_weights(DEFAULT_WEIGHTS if weights is None else weights, directions)
    norm, used = _normalised(table, w, dirs)
    if not used:
        wanted = sorted(c for c in w if w[c] > 0)
        msg = f"sites score: expected values for at least one weighted criterion, found none of {wanted}."
        raise DataError(msg)
    wv = np.array([w[c] for c in used])
    score = 100.0 * norm[used].to_numpy() @ wv / wv.sum()
    out = table.copy()
    for c in norm.columns:
        out[f"n_{c}"] = norm[c].to_numpy()
    out["score"] = np.round(score, 10)
    order = np.argsort(-out["score"].to_numpy(), kind="stable")
    rank = np.empty(len(out), dtype=np.int64)
    rank[order] = np.arange(1, len(out) + 1)
    out["rank"] = rank
    return out.iloc[order].reset_index(drop=True)


def rank_stability(
    table: pd.DataFrame,
    weights: Mapping[str, float] | None = None,
    directions: Mapping[str, str] | None = None,
    *,
    n: int = 1000,
    spread: float = 0.5,
    seed: int = 0,
) -> pd.DataFrame:
    r"""Monte Carlo rank stability: how often each site ranks first when the weights are perturbed.

    Each of ``n`` draws multiplies every weight by an independent factor
    :math:`U(1 - \text{spread}, 1 + \text{spread})` (weights 0 stay 0), then
    scores and ranks the sites as :func:`score_sites` does.

    Returns
    -------
    pandas.DataFrame
        One row per site in the input order: ``site_id`` and ``name`` (when
        present), ``first_share`` (share of draws ranked first; the shares sum
        to 1), ``mean_rank``, ``best_rank``, ``worst_rank``.

    Raises
    ------
    ConfigError
        Bad weights, ``n < 1`` or ``spread`` outside [0, 1).

    Examples
    --------
    >>> t = pd.DataFrame({"name": ["big", "small"], "capacity_females": [10, 2], "cwd_to_source": [1e4, 9e4]})
    >>> rank_stability(t, {"capacity_females": 1, "cwd_to_source": 1}, n=200)[["name", "first_share", "mean_rank"]]
        name  first_share  mean_rank
    0    big          1.0        1.0
    1  small          0.0        2.0
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        msg = f"[sites] rank_stability_draws: expected an integer >= 1, found {n!r}."
        raise ConfigError(msg)
    if not (isinstance(spread, int | float) and 0 <= spread < 1):
        msg = f"[sites] weight_spread: expected a fraction in [0, 1), found {spread!r}."
        raise ConfigError(msg)
    w, dirs = _check_weights(DEFAULT_WEIGHTS if weights is None else weights, directions)
    norm, used = _normalised(table, w, dirs)
    if not used:
        msg = "rank stability: expected values for at least one weighted criterion, found none."
        raise DataError(msg)
    mat = norm[used].to_numpy()  # sites x criteria
    base = np.array([w[c] for c in used])
    rng = np.random.default_rng(seed)
    draws = base * rng.uniform(1 - spread, 1 + spread, size=(n, base.size))
    scores = np.round(100.0 * draws @ mat.T / draws.sum(axis=1, keepdims=True), 10)  # draws x sites
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    ranks[np.arange(n)[:, None], order] = np.arange(1, mat.shape[0] + 1)
    out = pd.DataFrame(index=table.index)
    for c in ("site_id", "name"):
        if c in table.columns:
            out[c] = table[c].to_numpy()
    out["first_share"] = (ranks == 1).mean(axis=0)
    out["mean_rank"] = ranks.mean(axis=0)
    out["best_rank"] = ranks.min(axis=0)
    out["worst_rank"] = ranks.max(axis=0)
    return out.reset_index(drop=True)
