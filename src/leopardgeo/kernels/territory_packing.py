r"""Territory packing: non-overlapping, size-bounded leopard territories on a habitat-quality raster (the kernel).

Resource-based sequential packing in the spirit of the home-range models of
PATCH (Schumaker et al. 2004) and HexSim: territories are placed one after the
other, each grown from its seed cell outwards along cost distance until it
holds enough resource, here the sum of quality × cell area in hectares.

1. Females first, then males.  For each sex the eligible cells are habitat
   cells (``habitat``) with quality ``>= min_quality`` and finite quality and
   resistance.  Seeds are taken in order of quality, best first: quality is
   rounded down to bins of :data:`QUALITY_BIN` (0.05; a value within 1e-6 of a
   bin edge counts as the upper bin), and cells of one bin are taken in a
   random order drawn from ``seed`` (``numpy.random.default_rng``), so ties and
   near-ties do not favour the top-left corner.  Among seeds of the best bin
   left, a free cell bordering a territory already placed comes first (first
   queued, first tried): territories then tile outwards from each other
   instead of leaving slivers too small for a territory between them (on
   uniform habitat this packs 97-99 % of area / need, against about 90 % for
   a purely random order).
2. From the seed a territory grows by a Dijkstra search over the resistance
   surface (cells nearest in cost first), only through cells eligible for this
   sex and not yet claimed by a territory of the same sex, until
   :math:`\sum q \cdot a_{cell} \ge` need (``female_need_ha``, or
   ``female_need_ha × male_multiple`` for males), or the next cell lies beyond
   ``max_cost_m``, or it would exceed ``max_area_ha``.
3. It is accepted if the need is met and its area lies within
   ``[min_area_ha, max_area_ha]``; its cells are then claimed.  Otherwise the
   seed is marked as failed (its cells stay free for other seeds).  When a
   search runs out of cells (it explored the whole connected group of free
   cells and found too little resource) every cell of the group is marked as
   failed at once: any seed there would fail in the same way, so this only
   saves time and never changes the result.

Female territories are exclusive among females and male territories among
males; males overlap females freely (as in the Amur leopard: one male's range
overlaps several females').  A territory's area is about need / mean quality,
so territories are smaller in better habitat.

Replicate ``r`` repeats the packing with seed ``seed + r`` (in parallel
threads; the result does not depend on their number).  The compiled kernel is
tested cell for cell against :func:`leopardgeo.testing.naive_pack_females`,
which runs one SciPy Dijkstra per seed.

The step cost is that of :mod:`leopardgeo.kernels.costdist`: step length in metres
(cell size, or cell size × √2 for a diagonal) × the mean resistance of the two
cells, so ``max_cost_m`` is in cost-weighted metres (a plain radius in metres
where resistance is 1).

Defaults and their sources:

* ``min_area_ha = 5000``, ``max_area_ha = 30000``: individual Amur leopard
  territory of 5,000–30,000 ha "depending on sex, age and family size"
  (English Wikipedia, "Amur leopard", Ecology; primary source probably the
  Russian snow-tracking literature, e.g. Pikunov & Korkishko 1992 -- not
  verified).
* ``female_need_ha = 5000``: the smallest territory of that range, reached by a
  female in habitat of quality 1.
* ``male_multiple = 2``: a comparator, not a leopard measurement -- Amur tiger
  home ranges in the same landscape (Ussuriysky and Land of the Leopard NP,
  GPS, 95 % fixed kernel) are 778 ± 267 km² for males and 401 ± 205 km² for
  females, a ratio of ≈1.9 (Hernandez-Blanco et al. 2015, Integrative Zoology
  10(4):365–375).  Leopard males also hold larger ranges than females
  (Chistopolova et al. 2018, Russ. J. Ecol.), but no Amur leopard ratio was found.
* ``min_quality = 0.5``: the suitability threshold of a habitat core in
  :func:`leopardgeo.stages.patches.extract_patches`.
* ``max_cost_m = 30000``: a modelling choice, not a leopard measurement: about
  three times the radius of a disk of ``max_area_ha`` (30,000 ha: 9.8 km), so
  a territory may stretch along a valley but not become a long thin strip.
  A smaller radius also makes more seeds fail, which costs time.

Examples
--------
>>> from leopardgeo.core.grid import Grid
>>> g = Grid.from_bounds((0, 0, 2000, 1000), cell_size_m=100, crs="EPSG:32652")  # 10 x 20 cells of 1 ha
>>> q = np.ones(g.shape)
>>> res = pack_territories(q, np.ones(g.shape), g, min_area_ha=10, max_area_ha=40, female_need_ha=10)
>>> sorted(set(res.table.groupby("sex")["area_ha"].max().items()))
[('F', 10.0), ('M', 20.0)]
>>> int(territory_raster(res).max())
3
"""

from __future__ import annotations

import json
import logging
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

import geopandas as gpd
import shapely
from rasterio.features import shapes

from leopardgeo.core.errors import AlignmentError, ConfigError, DataError
from leopardgeo.core.executor import current_executor
from leopardgeo.core.grid import Grid
from leopardgeo.core.validation import check_resistance
from leopardgeo.kernels._territory_compiled import _MAX_BIN, _pack_one_sex  # the compiled kernel

__all__ = [
    "QUALITY_BIN",
    "TerritoryResult",
    "capacity",
    "capacity_table",
    "pack_territories",
    "territory_raster",
]

logger = logging.getLogger(__name__)

#: Width of the quality bins that order the seeds (best bin first, random within a bin).
QUALITY_BIN = 0.05
#: Slack for values within floating-point noise of a bin edge (float32 inputs).
_BIN_EPS = 1e-6
#: Relative slack of the need and area comparisons (sums of many float cells).
_REL_EPS = 1e-9
#: Columns of the territory table before the zone columns.
_BASE_COLUMNS = ("territory_id", "sex", "area_ha", "mean_quality", "need_ha", "n_cells")
_RESERVED = {*_BASE_COLUMNS, "geometry", "replicate"}

# --------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class TerritoryResult:
    """Packed territories of replicate 0 and territory counts of every replicate.

    Attributes
    ----------
    female, male
        int32 rasters on the grid: territory id per cell, 0 = none.  Ids are
        unique across both sexes (females ``1..n_F``, males after them).
    table
        One row per territory of replicate 0, in the grid CRS: ``territory_id``,
        ``sex`` (``"F"`` / ``"M"``), ``area_ha``, ``mean_quality``, ``need_ha``,
        ``n_cells``, one column per zone layer holding the territory's label
        (see :func:`pack_territories`), and ``geometry``: the exact outline of
        its cells (a MultiPolygon if its cells touch only at corners).
    replicates
        One row per replicate: ``replicate``, ``females``, ``males``, ``adults``
        (number of territories).
    replicate_territories
        Every territory of every replicate, without geometry: ``replicate`` and
        the table's columns.  Ids of replicates > 0 refer to no raster.
    zone_labels
        Per zone layer, the sorted nonzero labels present in its raster.
    grid
        The analysis grid.
    zone_codes
        Per zone layer, optionally, the code each label stands for (e.g.
        ``{"country": {1: "CHN", 2: "RUS"}}``); :meth:`capacity` shows them.
    """

    female: np.ndarray
    male: np.ndarray
    table: gpd.GeoDataFrame
    replicates: pd.DataFrame
    replicate_territories: pd.DataFrame
    zone_labels: dict[str, np.ndarray] = field(default_factory=dict)
    grid: Grid | None = None
    zone_codes: dict[str, dict[int, str]] = field(default_factory=dict)

    def capacity(self, zone: str) -> pd.DataFrame:
        """Territory counts per zone of layer ``zone``; see :func:`capacity`.

        Where :attr:`zone_codes` names the labels of ``zone`` (the pipeline
        gives the country codes), the ``zone`` column holds those codes (label
        0, outside every zone, becomes ``""``) instead of the raster labels.
        """
        out = capacity(self, zone)
        codes = self.zone_codes.get(zone)
        if codes:
            out[zone] = [codes.get(int(i), "" if int(i) == 0 else str(int(i))) for i in out[zone]]
        return out


# --------------------------------------------------------------------------- validation
def _positive(value: float, name: str, unit: str, *, allow_inf: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(value, bool) or not (v > 0 and (math.isfinite(v) or (allow_inf and v == math.inf))):
        kind = "positive number" if allow_inf else "positive finite number"
        msg = f"{name}: expected a {kind} of {unit}, found {value!r}."
        raise ConfigError(msg)
    return v


def _integer(value: int, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        msg = f"{name}: expected an integer >= {minimum}, found {value!r}."
        raise ConfigError(msg)
    return int(value)


def _raster(values: np.ndarray, grid: Grid, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != grid.shape:
        msg = (
            f"{name}: expected the grid's shape {grid.shape}, found {arr.shape}. "
            "Read it with leopardgeo.io.read_raster(path, grid) to align it."
        )
        raise AlignmentError(msg)
    return arr


def _check_quality(quality: np.ndarray, grid: Grid) -> np.ndarray:
    arr = _raster(quality, grid, "quality")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        msg = f"quality: expected a numeric raster of values 0..1 (NaN = no data), found dtype {arr.dtype}."
        raise DataError(msg)
    q = np.asarray(arr, dtype=np.float64)
    finite = np.isfinite(q)
    bad = (~finite & ~np.isnan(q)) | (finite & ((q < 0) | (q > 1)))
    if bad.any():
        vals = q[bad]
        msg = (
            f"quality: expected values from 0 to 1 (NaN = no data), found {int(bad.sum())} cells outside "
            f"(min {vals.min():g}, max {vals.max():g}). Rescale the habitat-quality map to 0..1."
        )
        raise DataError(msg)
    if not finite.any():
        msg = "quality: every cell is no data (NaN). Check the habitat-quality map and its nodata value."
        raise DataError(msg)
    return q


def _check_habitat(habitat: np.ndarray | None, grid: Grid) -> np.ndarray:
    if habitat is None:
        return np.ones(grid.shape, dtype=bool)
    arr = _raster(habitat, grid, "habitat")
    if arr.dtype == np.bool_:
        return arr
    if np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating):
        if np.isin(arr, (0, 1)).all():
            return arr.astype(bool)
    msg = (
        f"habitat: expected a boolean mask (or 0/1 values), found dtype {arr.dtype} with other values. "
        "Build it with a comparison, e.g. suitability >= 0.5."
    )
    raise DataError(msg)


def _check_zones(zones: Mapping[str, np.ndarray] | None, grid: Grid) -> dict[str, np.ndarray]:
    if zones is None:
        return {}
    if not isinstance(zones, Mapping):
        msg = f"zones: expected a dict of layer name -> integer label raster, found {type(zones).__name__}."
        raise ConfigError(msg)
    out = {}
    for name, values in zones.items():
        if not isinstance(name, str) or not name or name in _RESERVED:
            msg = (
                f"zones: expected layer names that are non-empty strings other than {sorted(_RESERVED)}, "
                f"found {name!r}. Rename the layer, e.g. 'patch' or 'country'."
            )
            raise ConfigError(msg)
        arr = _raster(values, grid, f"zones[{name!r}]")
        if not np.issubdtype(arr.dtype, np.integer):
            msg = (
                f"zones[{name!r}]: expected an integer label raster (0 = none), found dtype {arr.dtype}. "
                "Replace no data by 0 and cast it with .astype('int32')."
            )
            raise DataError(msg)
        out[name] = arr.astype(np.int64, copy=False)
    return out


def _check_sexes(sexes: Sequence[str] | str) -> tuple[str, ...]:
    given = (sexes,) if isinstance(sexes, str) else tuple(sexes)
    if not given or any(s not in ("F", "M") for s in given) or len(set(given)) != len(given):
        msg = f"sexes: expected a non-empty selection of 'F' and 'M' without repeats, found {sexes!r}."
        raise ConfigError(msg)
    return tuple(s for s in ("F", "M") if s in given)  # females are always packed first


# --------------------------------------------------------------------------- internals
def _quality_bins(q_flat: np.ndarray) -> np.ndarray:
    """Quality bin of every cell (0 .. 20; 0 for no data), int8."""
    q = np.where(np.isfinite(q_flat), q_flat, 0.0)
    return np.clip(np.floor(q / QUALITY_BIN + _BIN_EPS), 0, _MAX_BIN).astype(np.int8)


def _seed_order(qbin: np.ndarray, cells: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``cells`` best quality bin first, in random order within a bin."""
    perm = cells[rng.permutation(cells.size)]
    return perm[np.argsort(-qbin[perm], kind="stable")]


def _dense_labels(zone: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted nonzero labels of a zone raster and, per cell (flat), 1 + the label's index (0 = none)."""
    labels = np.unique(zone[zone != 0])
    flat = zone.ravel()
    dense = np.where(flat != 0, np.searchsorted(labels, flat) + 1, 0).astype(np.int32)
    return labels, dense


def _majority(terr: np.ndarray, dense: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Per territory ``0 .. count - 1``: the nonzero zone label covering most of its cells (0 if none).

    ``terr`` and ``dense`` hold, per territory cell, its territory index and
    its zone's dense index (see :func:`_dense_labels`).  Ties go to the
    smallest label (``argmax`` returns the first maximum).
    """
    out = np.zeros(count, dtype=np.int64)
    keep = dense > 0
    if count == 0 or not keep.any():
        return out
    votes = sparse.coo_matrix(
        (np.ones(int(keep.sum()), dtype=np.int64), (terr[keep], dense[keep].astype(np.int64))), shape=(count, labels.size + 1)
    ).tocsr()  # summing duplicates counts the cells of each (territory, label)
    best = np.asarray(votes.argmax(axis=1)).ravel()
    has = best > 0
    out[has] = labels[best[has] - 1]
    return out


def _outlines(ids: np.ndarray, grid: Grid) -> dict[int, object]:
    """Exact cell outline of each labelled territory: a Polygon, or a MultiPolygon if its cells touch only at corners."""
    mask = ids > 0
    if not mask.any():
        return {}
    records = list(shapes(ids, mask=mask, connectivity=4, transform=grid.transform))
    parts = shapely.from_geojson([json.dumps(g) for g, _ in records])
    labels = np.array([int(v) for _, v in records], dtype=np.int64)
    out: dict[int, object] = {}
    order = np.argsort(labels, kind="stable")
    starts = np.flatnonzero(np.r_[True, labels[order][1:] != labels[order][:-1]])
    for a, b in zip(starts, np.r_[starts[1:], order.size], strict=True):
        idx = order[a:b]
        # the 4-connected pieces of one territory are disjoint: no union needed
        out[int(labels[idx[0]])] = parts[idx[0]] if idx.size == 1 else shapely.multipolygons(parts[idx])
    return out


class _Scratch:
    """Work arrays of one packing, allocated once and reset by the kernel cell by cell."""

    def __init__(self, n: int, n_eligible: int, n_nb: int, min_cells: int, max_cells: int) -> None:
        cap = 1 + n_nb * max_cells + 1  # heap pushes per growth <= 1 + neighbours x settled cells
        self.dist = np.full(n, np.inf)
        self.state = np.zeros(n, dtype=np.uint8)
        self.queued = np.zeros(n, dtype=np.uint8)
        self.hkey = np.empty(cap, dtype=np.float64)
        self.hcell = np.empty(cap, dtype=np.int64)
        self.touched = np.empty(cap, dtype=np.int64)
        self.members = np.empty(max_cells + 1, dtype=np.int64)
        max_terr = n_eligible // min_cells + 1  # territories of one sex are disjoint and hold >= min_cells cells
        self.out_cells = np.empty(max_terr, dtype=np.int64)
        self.out_qsum = np.empty(max_terr, dtype=np.float64)
        self.fkey = np.empty(max(n_eligible, 1), dtype=np.float64)  # every eligible cell is queued at most once
        self.fcell = np.empty(max(n_eligible, 1), dtype=np.int64)


def _neighbours(connectivity: int, cell_size_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    off = [(-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1)][:connectivity]
    drow = np.array([o[0] for o in off], dtype=np.int64)
    dcol = np.array([o[1] for o in off], dtype=np.int64)
    step = cell_size_m * np.sqrt((drow**2 + dcol**2).astype(np.float64))
    return drow, dcol, step


# --------------------------------------------------------------------------- public API
def pack_territories(
    quality: np.ndarray,
    resistance: np.ndarray,
    grid: Grid,
    *,
    habitat: np.ndarray | None = None,
    zones: Mapping[str, np.ndarray] | None = None,
    min_area_ha: float = 5000.0,
    max_area_ha: float = 30000.0,
    female_need_ha: float = 5000.0,
    male_multiple: float = 2.0,
    min_quality: float = 0.5,
    max_cost_m: float = 30000.0,
    sexes: Sequence[str] = ("F", "M"),
    seed: int = 0,
    replicates: int = 1,
    connectivity: int = 8,
    workers: int | None = None,
) -> TerritoryResult:
    """Pack non-overlapping, size-bounded female and male territories on a habitat-quality raster.

    See the module docstring for the method and the sources of the defaults.

    Parameters
    ----------
    quality
        Habitat quality 0..1 on ``grid`` (NaN = no data).  A cell of quality
        ``q`` and area ``a`` ha holds ``q × a`` ha of resource.
    resistance
        Resistance to movement on ``grid``, > 0 (NaN = no data, impassable).
        Territories grow along least cost over it.
    grid
        The analysis grid.
    habitat
        Optional boolean mask of cells a territory may use (default: all).
    zones
        Optional ``{layer name: integer label raster}`` (0 = none), e.g.
        ``{"patch": labels, "country": index, "protected_area": index}``.  Each
        territory gets, per layer, the nonzero label covering most of its cells
        (ties: the smallest label; 0 if none of its cells has a label).
    min_area_ha, max_area_ha
        Bounds of a territory's area in hectares.
    female_need_ha
        Resource a female territory must hold: sum of quality × cell area, ha.
    male_multiple
        A male territory needs ``female_need_ha × male_multiple`` (>= 1).
    min_quality
        Minimum quality of a territory cell: every cell of a territory is
        habitat with quality >= ``min_quality`` (and finite resistance).
    max_cost_m
        Cost radius of a territory from its seed, cost-weighted metres (step
        length × mean resistance of the two cells); ``math.inf`` for none.
    sexes
        Which sexes to pack: ``("F", "M")``, ``("F",)`` or ``("M",)``.
    seed
        Seed of the random order of seed cells within a quality bin.
    replicates
        Number of packings; replicate ``r`` uses seed ``seed + r``.  Replicate 0
        gives the rasters and the table, every replicate is counted.
    connectivity
        4 or 8 neighbours for the growth (8: diagonal step = cell size × √2).
    workers
        Threads packing replicates in parallel (default: the run's executor,
        :func:`leopardgeo.core.executor.current_executor`: local threads on
        the available cores, or the Dask cluster of the run).  The result
        does not depend on it.

    Returns
    -------
    TerritoryResult
        Rasters and table of replicate 0, counts of every replicate.

    Raises
    ------
    AlignmentError
        If a raster does not have the grid's shape.
    ResistanceError
        If resistance is <= 0 or infinite anywhere.
    DataError
        If quality lies outside 0..1 or is all no data, resistance is all no
        data, the habitat mask is not boolean or a zone raster not integer.
    ConfigError
        If a parameter is out of range: areas not positive or
        ``min_area_ha >= max_area_ha``, a need larger than ``max_area_ha``,
        ``male_multiple < 1``, ``min_quality`` outside 0..1, ``replicates < 1``,
        ``connectivity`` not 4 or 8, unknown ``sexes``.

    Examples
    --------
    Better habitat, smaller territories (1 ha cells, need 10 ha):

    >>> from leopardgeo.core.grid import Grid
    >>> g = Grid.from_bounds((0, 0, 2000, 1000), cell_size_m=100, crs="EPSG:32652")  # 200 ha
    >>> def pack(q):
    ...     return pack_territories(np.full(g.shape, q), np.ones(g.shape), g, min_area_ha=5, max_area_ha=40, female_need_ha=10)
    >>> good, poor = pack(1.0), pack(0.5)
    >>> good.table.groupby("sex")["area_ha"].unique().to_dict()
    {'F': array([10.]), 'M': array([20.])}
    >>> poor.table.groupby("sex")["area_ha"].unique().to_dict()
    {'F': array([20.]), 'M': array([40.])}
    >>> good.replicates.to_dict("records")
    [{'replicate': 0, 'females': 19, 'males': 9, 'adults': 28}]
    """
    if not isinstance(grid, Grid):
        msg = f"grid: expected a leopardgeo.core.grid.Grid, found {type(grid).__name__}. Build it with Grid.from_bounds(...)."
        raise ConfigError(msg)
    min_area = _positive(min_area_ha, "min_area_ha", "hectares")
    max_area = _positive(max_area_ha, "max_area_ha", "hectares")
    if min_area >= max_area:
        msg = f"min_area_ha, max_area_ha: expected min_area_ha < max_area_ha, found {min_area:g} >= {max_area:g} ha."
        raise ConfigError(msg)
    f_need = _positive(female_need_ha, "female_need_ha", "hectares")
    try:
        mult = float(male_multiple)
    except (TypeError, ValueError):
        mult = math.nan
    if not (mult >= 1 and math.isfinite(mult)):
        msg = f"male_multiple: expected a finite number >= 1 (male need = female need × multiple), found {male_multiple!r}."
        raise ConfigError(msg)
    try:
        min_q = float(min_quality)
    except (TypeError, ValueError):
        min_q = math.nan
    if not 0 <= min_q <= 1:
        msg = f"min_quality: expected a quality from 0 to 1, found {min_quality!r}."
        raise ConfigError(msg)
    max_cost = _positive(max_cost_m, "max_cost_m", "cost-weighted metres", allow_inf=True)
    sex_list = _check_sexes(sexes)
    seed0 = _integer(seed, "seed", minimum=0)
    n_rep = _integer(replicates, "replicates", minimum=1)
    if isinstance(connectivity, bool) or connectivity not in (4, 8):
        msg = f"connectivity: expected 4 (axial steps) or 8 (+ diagonals), found {connectivity!r}."
        raise ConfigError(msg)
    needs = {"F": f_need, "M": f_need * mult}
    for s in sex_list:
        if needs[s] > max_area * (1 + _REL_EPS):
            msg = (
                f"{'female' if s == 'F' else 'male'} need: expected at most max_area_ha = {max_area:g} ha "
                f"(even quality 1 needs area = need), found {needs[s]:g} ha. "
                "Lower female_need_ha or male_multiple, or raise max_area_ha."
            )
            raise ConfigError(msg)

    q = _check_quality(quality, grid)
    r = _raster(resistance, grid, "resistance")
    r = np.asarray(check_resistance(r, grid), dtype=np.float64)
    hab = _check_habitat(habitat, grid)
    zone_rasters = _check_zones(zones, grid)

    cell_ha = grid.cell_area_ha
    eligible = hab & np.isfinite(q) & (q >= min_q) & np.isfinite(r)
    q_flat = np.ascontiguousarray(np.where(np.isfinite(q), q, 0.0).ravel())
    r_flat = np.ascontiguousarray(np.where(np.isfinite(r), r, 1.0).ravel())
    elig_flat = np.ascontiguousarray(eligible.ravel().view(np.uint8))
    del q, r, eligible
    qbin = _quality_bins(q_flat)
    cells = np.flatnonzero(elig_flat).astype(np.int64)
    n = q_flat.size
    min_cells = max(1, math.ceil(min_area / cell_ha * (1 - _REL_EPS)))
    max_cells = max(0, min(math.floor(max_area / cell_ha * (1 + _REL_EPS)), cells.size))
    drow, dcol, step_m = _neighbours(int(connectivity), grid.cell_size_m)
    zone_index = {name: _dense_labels(zr) for name, zr in zone_rasters.items()}
    n_cols = grid.shape[1]

    ex = current_executor(None if workers is None else _integer(workers, "workers", minimum=1))
    # the large arrays go to the executor's workers once; each replicate reads them from there
    data = ex.share((q_flat, r_flat, elig_flat, qbin, cells, zone_index))

    def one_replicate(rep: int) -> tuple[list[pd.DataFrame], dict[str, int], dict[str, np.ndarray]]:
        q_flat, r_flat, elig_flat, qbin, cells, zone_index = data.get()
        scratch = _Scratch(n, cells.size, drow.size, min_cells, max_cells)
        rng = np.random.default_rng(seed0 + rep)
        next_id = 1
        counts = {"F": 0, "M": 0}
        frames = []
        rasters = {}
        for sex in ("F", "M"):
            order = _seed_order(qbin, cells, rng)  # drawn for both sexes, so a replicate's female order never depends on sexes
            if sex not in sex_list:
                continue
            claimed = np.zeros(n, dtype=np.int32)
            failed = np.zeros(n, dtype=np.uint8)
            scratch.queued[:] = 0
            k = _pack_one_sex(
                q_flat, r_flat, elig_flat, order, qbin, claimed, failed, scratch.dist, scratch.state, scratch.hkey,
                scratch.hcell, scratch.touched, scratch.members, n_cols, drow, dcol, step_m, cell_ha, needs[sex],
                min_cells, max_cells, max_cost, next_id, scratch.out_cells, scratch.out_qsum, scratch.fkey,
                scratch.fcell, scratch.queued,
            )  # fmt: skip
            frame = pd.DataFrame(
                {
                    "replicate": np.full(k, rep, dtype=np.int64),
                    "territory_id": np.arange(next_id, next_id + k, dtype=np.int64),
                    "sex": sex,
                    "area_ha": scratch.out_cells[:k] * cell_ha,
                    "mean_quality": scratch.out_qsum[:k] / np.maximum(scratch.out_cells[:k], 1),
                    "need_ha": needs[sex],
                    "n_cells": scratch.out_cells[:k].copy(),
                }
            )
            in_terr = np.flatnonzero(claimed)
            terr_of = claimed[in_terr].astype(np.int64) - next_id
            for name, (labels, dense) in zone_index.items():
                frame[name] = _majority(terr_of, dense[in_terr], labels, k)
            frames.append(frame)
            counts[sex] = k
            next_id += k
            if rep == 0:
                rasters[sex] = claimed.reshape(grid.shape)
        logger.debug("territories, replicate %d: %d F, %d M", rep, counts["F"], counts["M"])
        return frames, counts, rasters

    # replicates are independent (replicate r draws from seed + r) and the kernel releases the GIL
    runs = ex.map(one_replicate, range(n_rep), label="territory replicates")
    terr_frames = [f for frames, _, _ in runs for f in frames]
    rep_rows = [
        {"replicate": rep, "females": c["F"], "males": c["M"], "adults": c["F"] + c["M"]} for rep, (_, c, _) in enumerate(runs)
    ]
    rasters = runs[0][2]

    columns = ["replicate", *_BASE_COLUMNS, *zone_rasters]
    rep_terr = pd.concat([f for f in terr_frames if len(f)], ignore_index=True) if any(len(f) for f in terr_frames) else None
    if rep_terr is None:
        rep_terr = terr_frames[0].iloc[:0].copy()
        for name in zone_rasters:
            rep_terr[name] = pd.Series([], dtype=np.int64)
    rep_terr = rep_terr[columns].reset_index(drop=True)
    female = rasters.get("F", np.zeros(grid.shape, dtype=np.int32))
    male = rasters.get("M", np.zeros(grid.shape, dtype=np.int32))
    attrs = rep_terr[rep_terr["replicate"] == 0].drop(columns="replicate").reset_index(drop=True)
    geoms: dict[int, object] = {}
    for ids in (female, male):
        geoms.update(_outlines(ids, grid))
    table = gpd.GeoDataFrame(attrs, geometry=[geoms[i] for i in attrs["territory_id"].tolist()], crs=grid.crs)
    reps = pd.DataFrame(rep_rows, columns=["replicate", "females", "males", "adults"]).astype("int64")
    labels = {name: lab for name, (lab, _) in zone_index.items()}
    logger.info(
        "territories: %d female, %d male (replicate 0 of %d); %d eligible cells",
        int(reps["females"].iloc[0]),
        int(reps["males"].iloc[0]),
        n_rep,
        cells.size,
    )
    return TerritoryResult(
        female=female, male=male, table=table, replicates=reps, replicate_territories=rep_terr, zone_labels=labels, grid=grid
    )


def capacity(result: TerritoryResult, zone: str) -> pd.DataFrame:
    """Number of territories per label of a zone layer: replicate 0 and statistics over replicates.

    Parameters
    ----------
    result
        Output of :func:`pack_territories` called with ``zones`` holding ``zone``.
    zone
        Name of a zone layer, e.g. ``"patch"``.

    Returns
    -------
    pandas.DataFrame
        One row per label: every nonzero label of the zone raster, plus label 0
        if any territory of any replicate lies outside every zone.  Columns: the
        label (named ``zone``), ``females``, ``males``, ``adults`` (replicate 0),
        and over all replicates ``<what>_mean``, ``<what>_sd`` (sample standard
        deviation, ddof = 1: NaN with one replicate), ``<what>_min``,
        ``<what>_max`` for ``<what>`` in females, males, adults.

    Raises
    ------
    ConfigError
        If ``zone`` is not a zone layer of ``result``.

    Examples
    --------
    >>> from leopardgeo.core.grid import Grid
    >>> g = Grid.from_bounds((0, 0, 2000, 1000), cell_size_m=100, crs="EPSG:32652")
    >>> halves = np.ones(g.shape, dtype="int32")
    >>> halves[:, 10:] = 2
    >>> res = pack_territories(
    ...     np.ones(g.shape), np.ones(g.shape), g, zones={"patch": halves},
    ...     min_area_ha=5, max_area_ha=40, female_need_ha=10, replicates=3,
    ... )
    >>> cap = capacity(res, "patch")
    >>> cap[["patch", "females", "males", "adults"]].to_dict("records")
    [{'patch': 1, 'females': 10, 'males': 5, 'adults': 15}, {'patch': 2, 'females': 9, 'males': 4, 'adults': 13}]
    >>> cap[["patch", "adults_mean", "adults_min", "adults_max"]].round(2).to_dict("records")
    [{'patch': 1, 'adults_mean': 14.33, 'adults_min': 14, 'adults_max': 15},
     {'patch': 2, 'adults_mean': 13.33, 'adults_min': 13, 'adults_max': 14}]
    >>> list(cap.columns[4:8])
    ['females_mean', 'females_sd', 'females_min', 'females_max']
    """
    if zone not in result.zone_labels:
        msg = (
            f"zone: expected one of the zone layers given to pack_territories {sorted(result.zone_labels)}, "
            f"found {zone!r}. Pass zones={{{zone!r}: labels}} to pack_territories."
        )
        raise ConfigError(msg)
    terr = result.replicate_territories
    labels = result.zone_labels[zone]
    if (terr[zone] == 0).any():
        labels = np.r_[0, labels]
    n_rep = len(result.replicates)
    reps = np.arange(n_rep)
    cols: dict[str, np.ndarray] = {}
    per_rep: dict[str, np.ndarray] = {}
    for what, sexes in (("females", ("F",)), ("males", ("M",)), ("adults", ("F", "M"))):
        sub = terr[terr["sex"].isin(sexes)]
        counts = sub.groupby(["replicate", zone]).size()
        table = counts.unstack(zone, fill_value=0).reindex(index=reps, columns=labels, fill_value=0)
        per_rep[what] = table.to_numpy(dtype=np.int64)  # replicates x labels
        cols[what] = per_rep[what][0]
    out = pd.DataFrame({zone: labels.astype(np.int64), **cols})
    for what, arr in per_rep.items():
        out[f"{what}_mean"] = arr.mean(axis=0)
        out[f"{what}_sd"] = arr.std(axis=0, ddof=1) if n_rep > 1 else np.full(arr.shape[1], np.nan)
        out[f"{what}_min"] = arr.min(axis=0)
        out[f"{what}_max"] = arr.max(axis=0)
    return out


#: Counted quantities of a capacity table.
_COUNTS = ("females", "males", "adults")


def _stats(arr: np.ndarray) -> dict[str, float]:
    """Mean, sample sd (NaN for one value), min and max of per-replicate counts."""
    return {
        "mean": float(arr.mean()),
        "sd": float(arr.std(ddof=1)) if arr.size > 1 else math.nan,
        "min": float(arr.min()),
        "max": float(arr.max()),
    }


def capacity_table(result: TerritoryResult, names: Mapping[str, Mapping[int, tuple[str, str]]] | None = None) -> pd.DataFrame:
    """Capacity of every zone layer and of the whole area in one table (``capacity.csv``).

    Parameters
    ----------
    result
        Output of :func:`pack_territories`.
    names
        Optional ``{zone layer: {label: (zone, name)}}``: how each label is
        shown, e.g. ``{"country": {1: ("CHN", "China")}}``.  Labels without an
        entry show the label itself and an empty name; label 0 (territories
        outside every zone of the layer) shows as zone ``"none"``.

    Returns
    -------
    pandas.DataFrame
        Columns ``zone_type`` (a zone layer, or ``"all"``), ``zone``,
        ``name``, ``females``, ``males``, ``adults`` (replicate 0) and
        ``<what>_mean``, ``<what>_sd``, ``<what>_min``, ``<what>_max`` over the
        replicates.  Within a zone layer each territory counts once, for the
        label covering most of its cells, so the counts of a layer sum to the
        ``all`` row.

    Examples
    --------
    >>> from leopardgeo.core.grid import Grid
    >>> g = Grid.from_bounds((0, 0, 2000, 1000), cell_size_m=100, crs="EPSG:32652")
    >>> halves = np.ones(g.shape, dtype="int32")
    >>> halves[:, 10:] = 2
    >>> res = pack_territories(np.ones(g.shape), np.ones(g.shape), g, zones={"country": halves},
    ...                        min_area_ha=5, max_area_ha=40, female_need_ha=10)
    >>> t = capacity_table(res, {"country": {1: ("CHN", "China"), 2: ("RUS", "Russia")}})
    >>> t[["zone_type", "zone", "name", "females", "males", "adults"]].to_dict("records")
    [{'zone_type': 'country', 'zone': 'CHN', 'name': 'China', 'females': 10, 'males': 5, 'adults': 15},
     {'zone_type': 'country', 'zone': 'RUS', 'name': 'Russia', 'females': 9, 'males': 4, 'adults': 13},
     {'zone_type': 'all', 'zone': 'all', 'name': 'all', 'females': 19, 'males': 9, 'adults': 28}]
    """
    frames = []
    for zone_type in result.zone_labels:
        cap = capacity(result, zone_type)
        lookup = (names or {}).get(zone_type, {})
        shown = [
            ("none", f"outside every {zone_type.replace('_', ' ')}") if int(v) == 0 else lookup.get(int(v), (str(int(v)), ""))
            for v in cap[zone_type]
        ]
        cap = cap.drop(columns=zone_type)
        cap.insert(0, "name", [n for _, n in shown])
        cap.insert(0, "zone", [z for z, _ in shown])
        cap.insert(0, "zone_type", zone_type)
        frames.append(cap)
    reps = result.replicates
    total: dict[str, object] = {"zone_type": "all", "zone": "all", "name": "all"}
    total |= {what: int(reps[what].iloc[0]) for what in _COUNTS}
    for what in _COUNTS:
        total |= {f"{what}_{k}": v for k, v in _stats(reps[what].to_numpy(dtype=np.float64)).items()}
    frames.append(pd.DataFrame([total]))
    out = pd.concat(frames, ignore_index=True)
    for what in _COUNTS:
        out[what] = out[what].astype(np.int64)
        out[f"{what}_min"] = out[f"{what}_min"].astype(np.int64)
        out[f"{what}_max"] = out[f"{what}_max"].astype(np.int64)
    return out


def territory_raster(result: TerritoryResult) -> np.ndarray:
    """Territory cover of replicate 0 as a uint8 raster for ``territories.tif``.

    Codes: 0 = no territory, 1 = female territory only, 2 = male territory
    only, 3 = both (a male territory over a female one).

    Examples
    --------
    >>> r = TerritoryResult(
    ...     female=np.array([[1, 1, 0, 0]], dtype="int32"), male=np.array([[0, 2, 2, 0]], dtype="int32"),
    ...     table=gpd.GeoDataFrame(), replicates=pd.DataFrame(), replicate_territories=pd.DataFrame(),
    ... )
    >>> territory_raster(r)
    array([[1, 3, 2, 0]], dtype=uint8)
    """
    return ((result.female > 0).astype(np.uint8) + 2 * (result.male > 0).astype(np.uint8)).astype(np.uint8)
