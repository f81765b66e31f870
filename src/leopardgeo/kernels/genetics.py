r"""Neutral genetics of the population simulation: founder allele spectra and the theory it is checked against.

The population simulation (:mod:`leopardgeo.stages.simulate`) gives every animal
diploid neutral loci (microsatellite-like, alleles coded ``0 .. A - 1``).
Founders draw their alleles independently from an allele-frequency
*spectrum* (one row of frequencies per locus), given directly or built by
:func:`spectrum_from_heterozygosity` from an expected heterozygosity.  Wild
founders and captive-bred founders have spectra of their own.

Reference formulas (used by the tests and the report; each a textbook result):

* :func:`expected_heterozygosity_decay`: in an ideal closed population of
  effective size :math:`N_e`, :math:`H_t = H_0 (1 - 1/(2 N_e))^t`
  (Wright 1931; Hartl & Clark, *Principles of Population Genetics*, ch. 3).
* :func:`ne_sex_ratio`: :math:`N_e = 4 N_m N_f / (N_m + N_f)` with Poisson
  family sizes (Wright 1931).
* :func:`ne_family_size`: :math:`N_e = (4N - 2) / (V_k + 2)` for a population
  of constant size :math:`N` whose individuals leave :math:`k` offspring with
  variance :math:`V_k` (Crow & Kimura 1970, eq. 7.6.3.12 for dioecious species
  with equal sexes, Hill 1979).
* :func:`island_fst`: equilibrium :math:`F_{ST}` of the finite island model,
  :math:`1 / (1 + 4 N m (n / (n - 1))^2)` for :math:`n` demes (Takahata 1983;
  Slatkin 1991); for many demes :math:`1 / (1 + 4 N m)` (Wright 1931).
* :func:`island_fst_trajectory`: the exact recursion of identity by descent
  within and between two Wright-Fisher demes exchanging migrants.

Examples
--------
>>> f = spectrum_from_heterozygosity(0.5, n_alleles=4, n_loci=2)
>>> f.shape
(2, 4)
>>> round(float(1 - (f[0] ** 2).sum()), 6)
0.5
>>> round(expected_heterozygosity_decay(0.5, 50, 10), 4)
0.4522
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from leopardgeo.core.errors import ConfigError

__all__ = [
    "expected_heterozygosity_decay",
    "heterozygosity",
    "island_fst",
    "island_fst_trajectory",
    "ne_family_size",
    "ne_sex_ratio",
    "spectrum",
    "spectrum_from_heterozygosity",
]


def spectrum_from_heterozygosity(heterozygosity: float, *, n_alleles: int, n_loci: int) -> np.ndarray:
    r"""Allele frequencies with the given expected heterozygosity: :math:`p_i \propto r^i`, the same at every locus.

    A geometric spectrum (a few common alleles and rarer ones, as in
    microsatellite surveys) whose :math:`1 - \sum p_i^2` equals
    ``heterozygosity``; ``r`` is found by bisection.  The largest
    heterozygosity ``n_alleles`` alleles allow is :math:`1 - 1/A` (equal
    frequencies).

    Raises
    ------
    ConfigError
        If the heterozygosity is not in [0, 1 - 1/n_alleles].

    Examples
    --------
    >>> spectrum_from_heterozygosity(0.75, n_alleles=4, n_loci=1).round(3).tolist()
    [[0.25, 0.25, 0.25, 0.25]]
    """
    for name, v, low in (("n_alleles", n_alleles, 1), ("n_loci", n_loci, 1)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
            msg = f"{name}: expected a whole number >= {low}, found {v!r}."
            raise ConfigError(msg)
    h_max = 1.0 - 1.0 / n_alleles
    ok = isinstance(heterozygosity, numbers.Real) and not isinstance(heterozygosity, bool)
    if not ok or not 0.0 <= float(heterozygosity) <= h_max + 1e-12:
        msg = (
            f"founder heterozygosity: expected a value from 0 to 1 - 1/{n_alleles} = {h_max:.3f} "
            f"({n_alleles} alleles per locus), found {heterozygosity!r}. Raise the number of alleles per locus."
        )
        raise ConfigError(msg)
    h = min(float(heterozygosity), h_max)
    i = np.arange(n_alleles, dtype=np.float64)

    def het(r: float) -> float:
        w = r**i
        p = w / w.sum()
        return 1.0 - float((p * p).sum())

    lo, hi = 0.0, 1.0  # het(0) = 0, het(1) = h_max, increasing in r
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if het(mid) < h:
            lo = mid
        else:
            hi = mid
    w = hi**i
    p = w / w.sum()
    return np.tile(p, (n_loci, 1))


def spectrum(
    frequencies: Sequence[float] | Sequence[Sequence[float]], *, n_loci: int, name: str = "allele_frequencies"
) -> np.ndarray:
    """Allele frequencies as an (n_loci, A) array: one row for every locus, or one row per locus.

    Raises
    ------
    ConfigError
        If a row is empty, negative, does not sum to 1, or the rows are not one or ``n_loci``.

    Examples
    --------
    >>> spectrum([0.5, 0.3, 0.2], n_loci=2).tolist()
    [[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]
    """
    nested = bool(frequencies) and isinstance(frequencies[0], Sequence)
    try:
        rows = [list(map(float, r)) for r in frequencies] if nested else [list(map(float, frequencies))]  # type: ignore[arg-type]
    except (TypeError, ValueError):
        msg = f"{name}: expected a list of allele frequencies (or one list per locus), found {frequencies!r}."
        raise ConfigError(msg) from None
    if len(rows) not in (1, n_loci):
        msg = f"{name}: expected one list of frequencies or {n_loci} (one per locus), found {len(rows)}."
        raise ConfigError(msg)
    width = max(len(r) for r in rows)
    out = np.zeros((len(rows), width))
    for k, r in enumerate(rows):
        if not r or any(x < 0 or not math.isfinite(x) for x in r) or abs(sum(r) - 1) > 1e-6:
            msg = f"{name}: expected frequencies >= 0 that sum to 1 at every locus, found {r!r} (sum {sum(r):g})."
            raise ConfigError(msg)
        out[k, : len(r)] = r
    return np.tile(out, (n_loci, 1)) if len(rows) == 1 else out


def _number(value: float, name: str, *, low: float, high: float = math.inf, low_open: bool = False) -> float:
    """``value`` as a float in ``[low, high]`` (``(low, high]`` with ``low_open``); ConfigError otherwise."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok:
        v = float(value)
        ok = (v > low if low_open else v >= low) and v <= high
    if not ok:
        bound = f"{'>' if low_open else '>='} {low:g}" + (f" and <= {high:g}" if high != math.inf else "")
        msg = f"{name}: expected a finite number {bound}, found {value!r}."
        raise ConfigError(msg)
    return float(value)


def heterozygosity(freqs: np.ndarray) -> float:
    r"""Expected heterozygosity :math:`1 - \\sum p^2`, averaged over loci (rows of ``freqs``).

    Examples
    --------
    >>> heterozygosity(np.array([[0.5, 0.5], [1.0, 0.0]]))
    0.25
    """
    f = np.atleast_2d(np.asarray(freqs, dtype=np.float64))
    return float(np.mean(1.0 - (f * f).sum(axis=1)))


def expected_heterozygosity_decay(h0: float, ne: float, t: float) -> float:
    """Expected heterozygosity after ``t`` generations at effective size ``ne``: ``h0 (1 - 1/(2 ne))^t``.

    ``ne`` is at least 0.5 (one gene copy); ``h0`` in [0, 1], ``t`` >= 0.
    """
    h0 = _number(h0, "h0", low=0.0, high=1.0)
    ne = _number(ne, "ne", low=0.5)
    t = _number(t, "t", low=0.0)
    return float(h0 * (1.0 - 1.0 / (2.0 * ne)) ** t)


def ne_sex_ratio(n_males: float, n_females: float) -> float:
    """Effective size of a population of ``n_males`` and ``n_females`` breeders: 4 Nm Nf / (Nm + Nf).

    Examples
    --------
    >>> ne_sex_ratio(10, 30)
    30.0
    """
    n_males = _number(n_males, "n_males", low=0.0)
    n_females = _number(n_females, "n_females", low=0.0)
    if n_males + n_females == 0:
        return 0.0
    return float(4.0 * n_males * n_females / (n_males + n_females))


def ne_family_size(n: float, variance_k: float) -> float:
    """Effective size of a constant population of ``n`` whose members leave k offspring with variance V_k.

    (4N - 2) / (V_k + 2); Poisson family sizes (V_k = 2) give about N.

    Examples
    --------
    >>> ne_family_size(50, 2.0)
    49.5
    """
    n = _number(n, "n", low=1.0)
    variance_k = _number(variance_k, "variance_k", low=0.0)
    return float((4.0 * n - 2.0) / (variance_k + 2.0))


def island_fst(n_per_deme: float, migration_rate: float, n_demes: int = 2) -> float:
    """Equilibrium F_ST of the finite island model: 1 / (1 + 4 N m (n / (n - 1))^2).

    ``n_per_deme`` is the effective size of a deme, ``migration_rate`` the
    share of each deme's genes that come from the others every generation.
    """
    n_per_deme = _number(n_per_deme, "n_per_deme", low=0.0, low_open=True)
    migration_rate = _number(migration_rate, "migration_rate", low=0.0, high=1.0)
    if isinstance(n_demes, bool) or not isinstance(n_demes, numbers.Integral) or n_demes < 2:
        msg = f"n_demes: expected a whole number of demes >= 2, found {n_demes!r}."
        raise ConfigError(msg)
    return float(1.0 / (1.0 + 4.0 * n_per_deme * migration_rate * (n_demes / (n_demes - 1.0)) ** 2))


def island_fst_trajectory(n_per_deme: float, migration_rate: float, generations: int) -> np.ndarray:
    r"""F_ST of two Wright-Fisher demes of effective size N exchanging a share m every generation, from F = 0.

    The exact recursion of the probabilities of identity by descent of two
    genes drawn in the same deme (:math:`F_0`) and in different demes
    (:math:`F_1`), migration before the sampling of the next generation:
    two genes of one deme come from one parental deme with probability
    :math:`a = (1-m)^2 + m^2`, from the two with :math:`1 - a`; two genes of
    different demes from one parental deme with :math:`b = 2m(1-m)`.  Then
    :math:`F' = c\,[1/(2N) + (1 - 1/(2N)) F_0] + (1 - c) F_1` with
    :math:`c = a` or :math:`b`, and :math:`F_{ST} = (F_0 - \bar F)/(1 - \bar F)`,
    :math:`\bar F = (F_0 + F_1)/2`.

    Examples
    --------
    >>> traj = island_fst_trajectory(25, 0.02, 2000)
    >>> abs(float(traj[-1]) - island_fst(25, 0.02)) < 0.02  # the equilibrium of the finite island model
    True
    """
    n_per_deme = _number(n_per_deme, "n_per_deme", low=0.5)
    migration_rate = _number(migration_rate, "migration_rate", low=0.0, high=1.0)
    if isinstance(generations, bool) or not isinstance(generations, numbers.Integral) or generations < 0:
        msg = f"generations: expected a whole number >= 0, found {generations!r}."
        raise ConfigError(msg)
    a = (1 - migration_rate) ** 2 + migration_rate**2
    b = 2 * migration_rate * (1 - migration_rate)
    f0 = f1 = 0.0
    out = np.zeros(generations + 1)
    for g in range(1, generations + 1):
        within = 1.0 / (2 * n_per_deme) + (1 - 1.0 / (2 * n_per_deme)) * f0
        f0, f1 = a * within + (1 - a) * f1, b * within + (1 - b) * f1
        fbar = 0.5 * (f0 + f1)
        out[g] = (f0 - fbar) / (1 - fbar)
    return out
