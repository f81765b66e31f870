"""Omniscape's conditional connectivity: which sources a moving window's target is connected to.

Omniscape.jl (Landau et al. 2021) lets a target draw current only from source cells whose condition
(e.g. climate) is similar to its own: ``"within"`` a range of differences, or ``"equal"``, compared
with the present or with a future raster at the target.  :func:`leopardgeo.kernels.omniscape.omniscape`
takes these conditions; this module holds them, the targets' condition values and the per-window
source selection.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from leopardgeo.core.errors import ConfigError, DataError

__all__ = ["OmniscapeCondition", "condition_target_values"]


@dataclass(frozen=True)
class OmniscapeCondition:
    """One condition of Omniscape's conditional connectivity: which sources a target is connected to.

    A source sends current to a target only when its ``present`` value compares to the target's value:
    ``"within"``: ``lower <= source - target <= upper``; ``"equal"``: ``source == target``.  The target's
    value is taken over its block from ``future`` (Omniscape's ``compare_to_future``) or, without it, from
    ``present``: the median for ``"within"``, the most common value for ``"equal"`` (ties: the first in
    Omniscape.jl's column-major order), no data skipped.  As in Omniscape.jl (``source_target_match!``) the
    sources are dropped after they were scaled to the target's strength, so a target whose window holds
    non-matching sources injects less than its strength, and a source whose condition has no data is kept.
    A target whose block has no condition data connects to no source (Omniscape.jl stops with an error).

    Parameters
    ----------
    present
        The condition at the sources (Omniscape's ``condition1_file``), on the resistance's grid; NaN = no data.
    comparison
        ``"within"`` or ``"equal"`` (Omniscape.jl's code spells it ``"equals"``; both are accepted).
    lower, upper
        The range of ``source - target`` for ``"within"`` (``condition1_lower`` / ``condition1_upper``).
    future
        The condition at the targets (``condition1_future_file``), or None to compare present with present.

    Examples
    --------
    >>> c = OmniscapeCondition(np.array([[1.0, 2.0, 5.0]]), "within", lower=-1.0, upper=1.0)
    >>> c.comparison, c.lower, c.upper
    ('within', -1.0, 1.0)
    """

    present: np.ndarray
    comparison: str = "within"
    lower: float = 0.0
    upper: float = 0.0
    future: np.ndarray | None = None

    def __post_init__(self) -> None:
        comparison = str(self.comparison).strip().lower()
        comparison = "equal" if comparison == "equals" else comparison
        if comparison not in ("within", "equal"):
            msg = f"omniscape condition: expected comparison 'within' or 'equal', found {self.comparison!r}."
            raise ConfigError(msg)
        object.__setattr__(self, "comparison", comparison)
        lower, upper = float(self.lower), float(self.upper)
        if comparison == "within" and not lower <= upper:
            msg = f"omniscape condition: expected lower <= upper, found lower {lower:g} > upper {upper:g}. Swap them."
            raise ConfigError(msg)
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        object.__setattr__(self, "present", np.asarray(self.present, dtype=np.float64))
        if self.future is not None:
            future = np.asarray(self.future, dtype=np.float64)
            if future.shape != self.present.shape:
                msg = (
                    f"omniscape condition: expected a future raster of the present's shape {self.present.shape}, "
                    f"found {future.shape}."
                )
                raise DataError(msg)
            object.__setattr__(self, "future", future)

    @property
    def spec(self) -> tuple[str, float, float]:
        """``(comparison, lower, upper)``: what a window needs besides the rasters."""
        return (self.comparison, self.lower, self.upper)


def _mode_first(values: np.ndarray) -> float:
    """The most common value; among ties the one that comes first in ``values``."""
    u, first, counts = np.unique(values, return_index=True, return_counts=True)
    best = counts == counts.max()
    return float(u[best][np.argmin(first[best])])


def condition_target_values(
    values: np.ndarray, ty: np.ndarray, tx: np.ndarray, block_size: int, comparison: str, *, row0: int = 0
) -> np.ndarray:
    """Each target's value of a condition over its block: median (``"within"``) or most common value (``"equal"``).

    ``values`` holds grid rows from ``row0`` on; NaN (no data) is skipped; a block without data gives NaN.

    Examples
    --------
    >>> v = np.array([[1.0, 2.0, 9.0], [3.0, 3.0, 9.0], [4.0, 3.0, np.nan]])
    >>> condition_target_values(v, np.array([1]), np.array([1]), 3, "within")
    array([3.])
    >>> condition_target_values(v, np.array([1]), np.array([1]), 3, "equal")
    array([3.])
    """
    br = (block_size - 1) // 2
    out = np.full(len(ty), np.nan)
    nr, nc = values.shape
    for t, (y, x) in enumerate(zip(np.asarray(ty).tolist(), np.asarray(tx).tolist(), strict=True)):
        r = y - row0
        block = values[max(r - br, 0) : min(r + br + 1, nr), max(x - br, 0) : min(x + br + 1, nc)]
        vals = block.T.ravel()  # Omniscape.jl reads the block column by column
        vals = vals[~np.isnan(vals)]
        if vals.size:
            out[t] = float(np.median(vals)) if comparison == "within" else _mode_first(vals)
    return out


def _condition_sources(
    s_w: np.ndarray, present_w: Sequence[np.ndarray], target_values: np.ndarray, specs: Sequence[tuple[str, float, float]]
) -> np.ndarray:
    """Zero the window's sources whose conditions do not match the target's (``source_target_match!``)."""
    keep = np.ones(s_w.shape, bool)
    for pres, v, (comparison, lower, upper) in zip(present_w, target_values.tolist(), specs, strict=True):
        if math.isnan(v):
            return np.zeros_like(s_w)
        known = ~np.isnan(pres)
        if comparison == "within":
            d = pres - v
            keep &= ~known | ((d >= lower) & (d <= upper))
        else:
            keep &= ~known | (pres == v)
    return np.where(keep, s_w, 0.0)
