r"""The corridor score: one configurable number per link that ranks corridors everywhere.

Each criterion is rescaled to :math:`s \in [0, 1]` over the run's links, 1 = the best link:

* least-cost distance (``cwd``, lower is better, on a log scale because link costs span orders of magnitude):
  :math:`s = 1 - (\ln c - \ln c_{min}) / (\ln c_{max} - \ln c_{min})`;
* narrowest corridor width (``corridor_width_m``, wider is better): :math:`s = (w - w_{min}) / (w_{max} - w_{min})`;
* pinch-point current (``pinch_current``, A per cell; lower means the current spreads over a wider corridor):
  :math:`s = (p_{max} - p) / (p_{max} - p_{min})`;
* importance to the network (``dPC_link``, % of PC lost without the link, higher is better): min–max as width.

:math:`\text{score} = 100 \sum_k w_k s_k / \sum_k w_k` over the criteria the run has.  A link is never rewarded
for a criterion it lacks:

* a criterion that **no** scored link has (e.g. no pinch current when the circuit stage is off) is left out for
  every link, with its weight;
* a criterion that some links have and others lack counts :math:`s = 0` (the worst) for those that lack it, so
  the link scores exactly as if it had the worst value of the run.

Only real corridors are scored.  Links whose patches touch, and zero-length links (``kind = "touching"``, see
:func:`leopardgeo.stages.graph.link_kind`) are seams between adjacent habitat, not movement routes: they get no score
and no rank and are listed after the ranked corridors.  When all links share a value, every link gets
:math:`s = 1` for it.  Scores compare links within one run; they are not comparable between runs.  Weights:
``[score]`` in the config.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from leopardgeo.config import _f, _normalise, _positive
from leopardgeo.core.errors import ConfigError
from leopardgeo.stages.base import RunConfigLike, Section, Stage
from leopardgeo.stages.graph import CORRIDOR, link_kind

__all__ = ["CRITERIA", "add_scores", "corridor_scores"]

#: criterion -> (edge attribute, how it is rescaled: "higher" or "lower" is better, "log_lower": lower on a log scale)
CRITERIA: dict[str, tuple[str, str]] = {
    "cwd": ("cwd", "log_lower"),
    "width": ("corridor_width_m", "higher"),
    "pinch": ("pinch_current", "lower"),
    "dpc": ("dPC_link", "higher"),
}


def _rescale(x: np.ndarray, how: str) -> np.ndarray:
    ok = np.isfinite(x)
    if how == "log_lower":
        ok &= x > 0
        x = np.where(ok, np.log(np.where(ok, x, 1.0)), np.nan)
    out = np.full(x.shape, np.nan)
    if not ok.any():
        return out
    lo, hi = float(np.min(x[ok])), float(np.max(x[ok]))
    if hi - lo <= 1e-12 * max(abs(hi), abs(lo), 1.0):
        out[ok] = 1.0
        return out
    s = (x[ok] - lo) / (hi - lo)
    out[ok] = s if how == "higher" else 1.0 - s
    return out


def corridor_scores(graph: nx.Graph, weights: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Score and rank every link of ``graph``.

    Parameters
    ----------
    graph
        Patch graph; edges carry some of ``cwd``, ``corridor_width_m``, ``pinch_current``, ``dPC_link``.
    weights
        ``{"cwd": w, "width": w, "pinch": w, "dpc": w}`` (missing keys weigh 0); default 0.4 / 0.2 / 0.2 / 0.2.

    Returns
    -------
    pandas.DataFrame
        One row per link, best first: ``patch_a``, ``patch_b``, ``kind``, ``s_cwd``, ``s_width``, ``s_pinch``,
        ``s_dpc``, ``score`` (0–100) and ``rank`` (1 = best; ties share the better rank).  Seams
        (``kind = "touching"``) come last, with no criteria, score or rank (NA).

    Examples
    --------
    Two links: the cheaper one is also wider, so it wins on both criteria.

    >>> G = nx.Graph()
    >>> G.add_edge(1, 2, cwd=1000.0, corridor_width_m=2000.0); G.add_edge(2, 3, cwd=10000.0, corridor_width_m=500.0)
    >>> corridor_scores(G, {"cwd": 1, "width": 1})[["patch_a", "patch_b", "score", "rank"]].to_dict("records")
    [{'patch_a': 1, 'patch_b': 2, 'score': 100.0, 'rank': 1}, {'patch_a': 2, 'patch_b': 3, 'score': 0.0, 'rank': 2}]
    """
    w = {"cwd": 0.4, "width": 0.2, "pinch": 0.2, "dpc": 0.2} if weights is None else dict(weights)
    unknown = sorted(set(w) - set(CRITERIA))
    if unknown:
        msg = f"score weights: expected keys among {sorted(CRITERIA)}, found {unknown}."
        raise ConfigError(msg)
    if any(not (v >= 0 and math.isfinite(v)) for v in w.values()) or sum(w.values()) <= 0:
        msg = f"score weights: expected finite weights >= 0 with a positive sum, found {w}."
        raise ConfigError(msg)
    edges = sorted((min(u, v), max(u, v)) for u, v in graph.edges)
    kinds = np.array([link_kind(graph.edges[e]) for e in edges], dtype=object)
    scored = kinds == CORRIDOR
    out = pd.DataFrame({"patch_a": [a for a, _ in edges], "patch_b": [b for _, b in edges]}, dtype="int64")
    out["kind"] = kinds.astype(str)
    num = np.zeros(len(edges))
    den = np.zeros(len(edges))
    for key, (attr, how) in CRITERIA.items():
        x = np.array([float(graph.edges[e].get(attr, math.nan)) for e in edges], dtype=float)
        s = np.full(len(edges), np.nan)
        if scored.any():
            s[scored] = _rescale(x[scored], how)
        wk = float(w.get(key, 0.0))
        if np.isfinite(s[scored]).any():  # the run has this criterion: a link lacking it gets the worst, 0
            s[scored] = np.nan_to_num(s[scored], nan=0.0)
            num[scored] += wk * s[scored]
            den[scored] += wk
        out[f"s_{key}"] = s
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(scored & (den > 0), 100.0 * num / np.where(den > 0, den, 1.0), np.nan).round(6)
    if scored.any() and not (den[scored] > 0).any():
        score[scored] = 100.0  # no criterion weighs anything for this run: all corridors tie
    out["score"] = score
    out["rank"] = out["score"].rank(ascending=False, method="min").astype("Int64")
    out["_seam"] = ~scored
    out = out.sort_values(["_seam", "rank", "patch_a", "patch_b"], na_position="last").drop(columns="_seam")
    return out.reset_index(drop=True)


def add_scores(graph: nx.Graph, table: pd.DataFrame) -> None:
    """Store ``score`` and ``score_rank`` from :func:`corridor_scores` on the scored edges (seams get neither)."""
    for row in table.itertuples(index=False):
        d = graph.edges[row.patch_a, row.patch_b]
        d["kind"] = str(row.kind)
        if pd.isna(row.rank):
            d.pop("score", None)
            d.pop("score_rank", None)
        else:
            d.update({"score": float(row.score), "score_rank": int(row.rank)})


# ---------------------------------------------------------------------- config section
@dataclass(frozen=True, slots=True, kw_only=True)
class ScoreConfig:
    """The corridor score that ranks links everywhere (report, layers, cross-border table).

    score = 100 · Σ w·s / Σ w over the criteria a link has, each s in [0, 1] with 1 = best among the run's links:
    s_cwd = 1 − (ln cwd − ln min) / (ln max − ln min); s_width, s_dpc = (x − min) / (max − min);
    s_pinch = (max − x) / (max − min) (a low pinch current = a wide corridor).
    """

    weight_cwd: float = _f(0.4, doc="weight of the least-cost distance (lower cwd = better, on a log scale)")
    weight_width: float = _f(0.2, doc="weight of the corridor's narrowest width (corridor_width_m, wider = better)")
    weight_pinch: float = _f(0.2, doc="weight of the pinch-point current (pinch_current, lower = better)")
    weight_dpc: float = _f(0.2, doc="weight of the link's importance to PC (dPC_link, higher = better)")

    def __post_init__(self) -> None:
        _normalise(self, "score")
        for name in ("weight_cwd", "weight_width", "weight_pinch", "weight_dpc"):
            _positive(getattr(self, name), f"score.{name}", allow_zero=True)
        if self.weight_cwd + self.weight_width + self.weight_pinch + self.weight_dpc <= 0:
            msg = "[score] weights: expected at least one weight > 0, found all 0. Set e.g. weight_cwd = 1."
            raise ConfigError(msg)


# ---------------------------------------------------------------------- the stage
def compute_scores(cfg: RunConfigLike, graph: nx.Graph) -> pd.DataFrame:
    """The corridor score of every link (see :mod:`leopardgeo.stages.score`); stored as ``score`` / ``score_rank``."""
    s = cfg.score
    table = corridor_scores(
        graph, {"cwd": s.weight_cwd, "width": s.weight_width, "pinch": s.weight_pinch, "dpc": s.weight_dpc}
    )
    add_scores(graph, table)
    return table


STAGE = Stage(
    "scores",
    "corridor scores",
    lambda cfg, c: {"scores": compute_scores(cfg, c["graph"])},
    config=(Section("score", ScoreConfig, "corridor score"),),
    needs=("links",),
    uses=("corridors", "pinch_points", "metrics"),  # the criteria: width, pinch current, dPC
    after=("circuit", "barriers", "crossborder"),  # the graph's in-place chain
    produces=("scores",),
    mutates=("graph",),
)
