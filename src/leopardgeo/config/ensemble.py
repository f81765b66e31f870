"""``[ensemble]``: which resistance parameters a ``leopardgeo ensemble`` draws, and how.

Each draw perturbs the resistance model only (the transform's shape and maximum, the barrier penalties, the
RSF coefficients of the suitability that resistance is derived from); the habitat patches stay those of the
configuration, so a link is the same pair of patches in every draw and its share of draws is comparable.

Examples
--------
>>> EnsembleConfig(draws=50, max_resistance=(50.0, 200.0)).varied()
['max_resistance']
>>> EnsembleConfig(max_resistance=(200.0, 50.0))
Traceback (most recent call last):
...
leopardgeo.core.errors.ConfigError: [ensemble] max_resistance: expected [low, high] with 0 < low <= high, found (200.0, 50.0). ...
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from leopardgeo.config import _f, _normalise
from leopardgeo.core.errors import ConfigError

__all__ = ["ENSEMBLE_STAGES", "Distribution", "EnsembleConfig"]

#: Stages after resistance that a draw can run (links always runs).
ENSEMBLE_STAGES = ("links", "corridors", "circuit", "metrics", "scores")


class Distribution(enum.StrEnum):
    """How a ``[low, high]`` range is drawn."""

    UNIFORM = "uniform"
    NORMAL = "normal"  # mean at the middle, 95 % of draws inside [low, high], clipped to it


@dataclass(frozen=True, slots=True, kw_only=True)
class EnsembleConfig:
    """Resistance ensembles (``leopardgeo ensemble``)."""

    draws: int = _f(100, doc="number of draws of the resistance model")
    seed: int = _f(0, doc="seed; draw i uses SeedSequence(seed).spawn(draws)[i], whatever the executor")
    stages: tuple[str, ...] = _f(
        ("links", "corridors", "metrics", "scores"),
        doc="stages each draw runs after resistance: links, corridors, circuit, metrics, scores",
    )
    distribution: Distribution = _f(Distribution.UNIFORM, doc="uniform | normal: how the [low, high] ranges are drawn")
    max_resistance: tuple[float, ...] | None = _f(
        None, doc="[low, high] of resistance.max_resistance (resistance at suitability 0); unset: not varied"
    )
    shape_c: tuple[float, ...] | None = _f(None, doc="[low, high] of resistance.shape_c (transform shape); unset: not varied")
    barrier_penalty_factor: tuple[float, ...] | None = _f(
        None, doc="[low, high] of a factor on every barrier's penalty (1 = as configured); unset: not varied"
    )
    coefficient_se: dict[str, float] = _f(
        doc="standard error of each RSF coefficient (habitat.coefficients): drawn normal(coefficient, se)", factory=dict
    )
    table: str | None = _f(
        None,
        doc="CSV of draws, one row each, columns among max_resistance, shape_c, barrier_penalty_factor, "
        "coef_<name>; replaces the ranges and draws",
    )
    robust_share: float = _f(
        0.9, doc="a link present in at least this share of draws, whose rank also holds (rank_spread), is 'robust'"
    )
    rank_spread: float = _f(
        0.25,
        doc="a link present in at least robust_share of the draws is 'robust' only if the 5-95 % range of its rank "
        "spans at most this share of the links ranked in a draw, else 'sensitive' (1: by presence alone)",
    )
    rare_share: float = _f(0.1, doc="a link present in less than this share of draws is 'rare'; between: 'sensitive'")

    def __post_init__(self) -> None:
        _normalise(self, "ensemble")
        if isinstance(self.draws, bool) or not isinstance(self.draws, int) or not 1 <= self.draws <= 100_000:
            msg = f"[ensemble] draws: expected an integer from 1 to 100,000, found {self.draws!r}."
            raise ConfigError(msg)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            msg = f"[ensemble] seed: expected an integer >= 0, found {self.seed!r}."
            raise ConfigError(msg)
        bad = [s for s in self.stages if s not in ENSEMBLE_STAGES]
        if bad or not self.stages:
            msg = f"[ensemble] stages: expected some of {', '.join(ENSEMBLE_STAGES)}, found {list(self.stages)!r}."
            raise ConfigError(msg)
        for name in ("max_resistance", "shape_c", "barrier_penalty_factor"):
            rng = getattr(self, name)
            if rng is None:
                continue
            ok = len(rng) == 2 and all(isinstance(v, int | float) and math.isfinite(v) for v in rng) and 0 < rng[0] <= rng[1]
            if not ok:
                msg = f"[ensemble] {name}: expected [low, high] with 0 < low <= high, found {rng!r}. Fix or remove it."
                raise ConfigError(msg)
            object.__setattr__(self, name, (float(rng[0]), float(rng[1])))
        for k, se in self.coefficient_se.items():
            if not (isinstance(se, int | float) and math.isfinite(se) and se >= 0):
                msg = f"[ensemble] coefficient_se.{k}: expected a standard error >= 0, found {se!r}."
                raise ConfigError(msg)
        if isinstance(self.rank_spread, bool) or not isinstance(self.rank_spread, int | float) or not 0 < self.rank_spread <= 1:
            msg = (
                f"[ensemble] rank_spread: expected a share of the ranked links, 0 < rank_spread <= 1 (1: robust by "
                f"presence alone), found {self.rank_spread!r}."
            )
            raise ConfigError(msg)
        if not 0 < self.rare_share <= self.robust_share <= 1:
            msg = (
                f"[ensemble] rare_share = {self.rare_share!r}, robust_share = {self.robust_share!r}: expected "
                "0 < rare_share <= robust_share <= 1."
            )
            raise ConfigError(msg)

    def varied(self) -> list[str]:
        """Names of the parameters drawn from ranges (``coef_<name>`` for RSF coefficients)."""
        out = [n for n in ("max_resistance", "shape_c", "barrier_penalty_factor") if getattr(self, n) is not None]
        return out + [f"coef_{k}" for k, se in self.coefficient_se.items() if se > 0]
