"""Ranking interventions: which crossing structures or restorations gain the most connectivity per unit.

:func:`rank_interventions` ranks candidates by a connectivity value (e.g. PC or EC of the network with
the candidates in place) gained per unit: per structure (1 each), per km² (the candidate's area) or per
cost (a column of the candidate layer).  Two methods:

* ``greedy`` — pick the candidate with the largest marginal gain per unit given those already picked,
  then the next, and so on (n(n+1)/2 evaluations): a ranking that accounts for redundancy (a second
  underpass beside the first gains little);
* ``exhaustive`` — evaluate every subset (2^n evaluations; at most :data:`MAX_EXHAUSTIVE` candidates)
  and report, for each number of candidates k, the best set of k; the ranking orders candidates by the
  first k whose best set holds them (ties by their gain alone).

The value function is given by the caller, so the ranking can be tested against a brute force on any
value; :mod:`leopardgeo.runner.interventions` evaluates the network's PC / EC with the candidates burned
into the resistance.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import pandas as pd

from leopardgeo.core.errors import ConfigError

__all__ = ["MAX_EXHAUSTIVE", "RANK_METHODS", "rank_interventions"]

#: Largest candidate set ranked exhaustively (2^12 = 4,096 evaluations).
MAX_EXHAUSTIVE = 12
RANK_METHODS = ("greedy", "exhaustive")


def rank_interventions(
    candidates: Sequence[str],
    value: Callable[[frozenset[str]], float],
    *,
    method: str = "greedy",
    units: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Rank ``candidates`` by the gain in ``value`` per unit.

    Parameters
    ----------
    candidates
        Candidate names (unique).
    value
        ``value(set of candidates in place) -> float``, higher = better connected (e.g. PC).
    method
        ``"greedy"`` or ``"exhaustive"`` (see the module).
    units
        Each candidate's unit (1 per structure when None; its area in km² or its cost otherwise); > 0.

    Returns
    -------
    pandas.DataFrame
        Best first: ``rank``, ``candidate``, ``gain_alone`` (value with it alone − value with none),
        ``gain`` (marginal gain when it joined the ranking's set), ``unit``, ``gain_per_unit``,
        ``value_after`` (value of the set up to it).

    Raises
    ------
    ConfigError
        On an unknown method, duplicate candidates, a unit ≤ 0, or more than :data:`MAX_EXHAUSTIVE`
        candidates for ``exhaustive``.

    Examples
    --------
    Two underpasses on the same road (redundant) and one on another road:

    >>> gains = {"a": 5.0, "b": 4.0, "c": 3.0}
    >>> def pc(chosen):
    ...     v = sum(gains[c] for c in chosen)
    ...     return v - (3.5 if {"a", "b"} <= chosen else 0.0)
    >>> rank_interventions(["a", "b", "c"], pc)["candidate"].tolist()
    ['a', 'c', 'b']
    >>> rank_interventions(["a", "b", "c"], pc, method="exhaustive")["candidate"].tolist()
    ['a', 'c', 'b']
    """
    if method not in RANK_METHODS:
        msg = f"ranking method: expected one of {list(RANK_METHODS)}, found {method!r}."
        raise ConfigError(msg)
    names = [str(c) for c in candidates]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        msg = f"ranking: expected unique candidate names, found {dup} more than once. Name each candidate."
        raise ConfigError(msg)
    unit = {n: float((units or {}).get(n, 1.0)) for n in names}
    bad = {n: u for n, u in unit.items() if not (u > 0 and math.isfinite(u))}
    if bad:
        msg = f"ranking: expected each candidate's unit (area, cost) > 0, found {bad}. Fix or drop those candidates."
        raise ConfigError(msg)
    if method == "exhaustive" and len(names) > MAX_EXHAUSTIVE:
        msg = (
            f"ranking: exhaustive search over {len(names)} candidates needs 2^{len(names)} runs; expected at most "
            f"{MAX_EXHAUSTIVE}. Use method = 'greedy'."
        )
        raise ConfigError(msg)
    cache: dict[frozenset[str], float] = {}

    def v(s: frozenset[str]) -> float:
        if s not in cache:
            cache[s] = float(value(s))
        return cache[s]

    v0 = v(frozenset())
    alone = {n: v(frozenset([n])) - v0 for n in names}
    order: list[str] = []
    if method == "greedy":
        chosen: frozenset[str] = frozenset()
        left = list(names)
        while left:
            best = max(left, key=lambda n: ((v(chosen | {n}) - v(chosen)) / unit[n], alone[n] / unit[n], -names.index(n)))
            order.append(best)
            chosen = chosen | {best}
            left.remove(best)
    else:
        for k in range(1, len(names) + 1):
            # the best set of k by value per unit spent (ties: the earlier set in candidate order)
            best_set = max(
                itertools.combinations(names, k),
                key=lambda c: ((v(frozenset(c)) - v0) / sum(unit[n] for n in c), [-names.index(n) for n in c]),
            )
            for n in sorted(set(best_set) - set(order), key=lambda n: (-alone[n] / unit[n], names.index(n))):
                order.append(n)
    rows = []
    chosen = frozenset()
    for i, n in enumerate(order, start=1):
        before = v(chosen)
        chosen = chosen | {n}
        after = v(chosen)
        rows.append({"rank": i, "candidate": n, "gain_alone": alone[n], "gain": after - before, "unit": unit[n],
                     "gain_per_unit": (after - before) / unit[n], "value_after": after})  # fmt: skip
    return pd.DataFrame(rows, columns=["rank", "candidate", "gain_alone", "gain", "unit", "gain_per_unit", "value_after"])
