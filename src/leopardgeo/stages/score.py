r"""The corridor score: one configurable number per link that ranks corridors everywhere.

Each criterion is rescaled to :math:`s \in [0, 1]` over the run's links, 1 = the best link:

* least-cost distance (``cwd``, lower is better, on a log scale because link costs span orders of magnitude):
  :math:`s = 1 - (\ln c - \ln c_{min}) / (\ln c_{max} - \ln c_{min})`;
* narrowest corridor width (``corridor_width_m``, wider is better): :math:`s = (w - w_{min}) / (w_{max} - w_{min})`;
* pinch-point current (``pinch_current``, A per cell; lower means the current spreads over a wider corridor):
  :math:`s = (p_{max} - p) / (p_{max} - p_{min})`;
* importance to the network (``dPC_link``, % of PC lost without the link, higher is better): min–max as width.

:math:`\text{score} = 100 \sum_k w_k s_k / \sum_k w_k` over the criteria the link has (a criterion missing for a
link — e.g. no pinch current when the circuit stage is off — drops out of its sum with its weight).  When all
links share a value, every link gets :math:`s = 1` for it.  Scores compare links within one run; they are not
comparable between runs.  Weights: ``[score]`` in the config.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import networkx as nx
import numpy as np
import pandas as pd

from leopardgeo.core.errors import ConfigError

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
        One row per link, best first: ``patch_a``, ``patch_b``, ``s_cwd``, ``s_width``, ``s_pinch``, ``s_dpc``,
        ``score`` (0–100) and ``rank`` (1 = best; ties share the better rank).

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
    out = pd.DataFrame({"patch_a": [a for a, _ in edges], "patch_b": [b for _, b in edges]}, dtype="int64")
    num = np.zeros(len(edges))
    den = np.zeros(len(edges))
    for key, (attr, how) in CRITERIA.items():
        x = np.array([float(graph.edges[e].get(attr, math.nan)) for e in edges], dtype=float)
        s = _rescale(x, how) if len(edges) else x
        out[f"s_{key}"] = s
        wk = float(w.get(key, 0.0))
        have = np.isfinite(s)
        num[have] += wk * s[have]
        den[have] += wk
    with np.errstate(invalid="ignore", divide="ignore"):
        out["score"] = np.where(den > 0, 100.0 * num / np.where(den > 0, den, 1.0), np.nan).round(6)
    out["rank"] = out["score"].rank(ascending=False, method="min").fillna(len(out)).astype("int64")
    return out.sort_values(["rank", "patch_a", "patch_b"]).reset_index(drop=True)


def add_scores(graph: nx.Graph, table: pd.DataFrame) -> None:
    """Store ``score`` and ``score_rank`` from :func:`corridor_scores` on the edges."""
    for row in table.itertuples(index=False):
        graph.edges[row.patch_a, row.patch_b].update({"score": float(row.score), "score_rank": int(row.rank)})
