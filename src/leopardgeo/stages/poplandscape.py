"""Territories as the population simulation sees them: centroids, regions, sides and least-cost distances.

The landscape half of the population simulation (:mod:`leopardgeo.stages.simulate`):
:class:`TerritoryLandscape` is built once from packed territories
(:func:`leopardgeo.stages.territories.pack_territories`) and a resistance surface;
the compiled yearly kernel (:mod:`leopardgeo.kernels.popkernel`) reads only its
arrays.  Corridor scenarios are other landscapes of the same territories:
:meth:`TerritoryLandscape.with_resistance` (a scenario's resistance surface),
:meth:`TerritoryLandscape.without_corridor` (no dispersal or mating between
the site's side and the source's side) or a landscape built by hand from a
distance table (:meth:`TerritoryLandscape.from_distances`).
"""

from __future__ import annotations

import math
import numbers
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numba import njit

from leopardgeo.core.errors import AlignmentError, ConfigError, DataError
from leopardgeo.core.executor import available_cores
from leopardgeo.kernels.costdist import cost_distance

__all__ = ["OTHER", "SITE", "SOURCE", "TerritoryLandscape"]

# Region codes of a territory.
OTHER, SITE, SOURCE = 0, 1, 2


def _expected(name: str, expected: str, value: object, fix: str = "") -> str:
    """Error message: what was expected, what was found, how to fix it."""
    return f"{name}: expected {expected}, found {value!r}." + (f" {fix}" if fix else "")


def _check_cost(name: str, v: object) -> None:
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and float(v) > 0 and math.isfinite(float(v))
    if not ok:
        raise ConfigError(_expected(name, "a positive finite number of cost-weighted metres", v))


@dataclass(frozen=True, eq=False)
class TerritoryLandscape:
    """Territories as the simulation sees them: centroids, regions and least-cost distances.

    Female territories have indices ``0 .. n_female - 1``, male territories
    ``0 .. n_male - 1``.  Distances are least costs (cost-weighted metres)
    from any cell of a female territory to the nearest cell of another
    territory, kept only up to ``max_cost_m``, in compressed rows sorted
    nearest first: for female territory ``i`` the female territories
    ``ff_index[ff_ptr[i]:ff_ptr[i+1]]`` at costs ``ff_cost[...]`` (itself
    first, at 0), and likewise ``fm_*`` for male territories (0 if they overlap).

    Attributes
    ----------
    female_ids, male_ids
        Territory ids (``territory_id`` of the territory table).
    female_xy, male_xy
        Centroids, metres in the grid CRS, shape (n, 2).
    female_region, male_region
        0 = other, 1 = release site, 2 = source population.
    female_side, male_side
        0 = the site's side, 1 = the source's side: the territory's cells are
        mostly nearer (least cost) to the source than to the site.  Without a
        source every territory is on the site's side.
    site_female_order, site_male_order
        Indices of the site's territories, nearest to the release point first.
    source_female_order, source_male_order, source_origin
        Likewise for the source's territories, nearest to the centroid of the
        source's cells first (where animals translocated to the source settle),
        and the female territory nearest to it (-1 without a source).
    release_origin
        Index of the female territory nearest the release point (where
        unsettled released animals start their search).
    release_xy
        The release point (metres).
    max_cost_m
        Cost up to which distances are kept.
    build_s
        Seconds taken to build it.
    grid, female_raster, male_raster, resistance, connectivity
        What :meth:`with_site` needs to place another site: the grid, the
        territory id rasters (0 = none or filtered out), the resistance and the
        search's neighbourhood.
    """

    female_ids: np.ndarray
    male_ids: np.ndarray
    female_xy: np.ndarray
    male_xy: np.ndarray
    female_region: np.ndarray
    male_region: np.ndarray
    female_side: np.ndarray
    male_side: np.ndarray
    ff_ptr: np.ndarray
    ff_index: np.ndarray
    ff_cost: np.ndarray
    fm_ptr: np.ndarray
    fm_index: np.ndarray
    fm_cost: np.ndarray
    site_female_order: np.ndarray
    site_male_order: np.ndarray
    release_origin: int
    release_xy: tuple[float, float]
    max_cost_m: float
    build_s: float = 0.0
    grid: Any = field(default=None, repr=False)
    female_raster: np.ndarray | None = field(default=None, repr=False)
    male_raster: np.ndarray | None = field(default=None, repr=False)
    resistance: np.ndarray | None = field(default=None, repr=False)
    connectivity: int = 8
    source_female_order: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    source_male_order: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    source_origin: int = -1

    @property
    def n_female(self) -> int:
        """Number of female territories."""
        return int(self.female_ids.size)

    @property
    def n_male(self) -> int:
        """Number of male territories."""
        return int(self.male_ids.size)

    def summary(self) -> dict[str, Any]:
        """Territory counts per region, for reports."""
        out: dict[str, Any] = {}
        for name, code in (("site", SITE), ("source", SOURCE), ("other", OTHER)):
            out[f"{name}_female_territories"] = int((self.female_region == code).sum())
            out[f"{name}_male_territories"] = int((self.male_region == code).sum())
        out["site_side_female_territories"] = int((self.female_side == 0).sum())
        out["source_side_female_territories"] = int((self.female_side == 1).sum())
        out["max_cost_m"] = self.max_cost_m
        return out

    @classmethod
    def from_territories(
        cls,
        territories: Any,
        resistance: np.ndarray,
        *,
        site: Any,
        source: Any = None,
        max_cost_m: float = 50000.0,
        min_share: float = 0.5,
        release_xy: tuple[float, float] | None = None,
        within_cost_m: float | None = None,
        connectivity: int = 8,
        workers: int | None = None,
    ) -> TerritoryLandscape:
        """Build the landscape from packed territories and the resistance surface.

        Parameters
        ----------
        territories
            A :class:`leopardgeo.stages.territories.TerritoryResult` (its ``female``
            and ``male`` rasters and ``grid`` are used).
        resistance
            Resistance on the same grid (NaN = impassable).
        site, source
            The release site and the source population: a boolean raster on
            the grid, or polygons (shapely geometry, GeoSeries or GeoDataFrame in
            the grid CRS).  A territory belongs to one if at least ``min_share``
            of its cells do (the site wins where both claim it).  ``source`` may
            be None.
        max_cost_m
            Distances beyond this cost are not kept; use the simulation's
            ``max_dispersal_cost_m`` (and at least ``mate_search_cost_m``).
        min_share
            Share of a territory's cells that must lie in the site / source.
        release_xy
            Release point in metres; default: the centroid of the site's cells.
        within_cost_m
            Keep only territories with a cell within this least cost of the
            site or the source (None: all).  The distance searches, one per
            female territory, dominate the build time (about 16 s for the 3,762
            female territories of the demo at ``max_cost_m = 50000``).
        connectivity
            4, 8 or 16 neighbours of the cost-distance search.
        workers
            Threads for the searches (default: the CPU count).

        Raises
        ------
        DataError
            If there is no female territory, or the site holds no female territory.
        AlignmentError, ConfigError
            If rasters do not match the grid or a parameter is out of range.
        """
        t0 = time.perf_counter()
        grid = territories.grid
        female = np.asarray(territories.female)
        male = np.asarray(territories.male)
        res = np.asarray(resistance, dtype=np.float64)
        if res.shape != female.shape:
            msg = f"resistance: expected the territory rasters' shape {female.shape}, found {res.shape}."
            raise AlignmentError(msg)
        _check_cost("max_cost_m", max_cost_m)
        if female.max(initial=0) <= 0:
            msg = "territories: expected at least one female territory, found none. Check the territory packing."
            raise DataError(msg)
        if within_cost_m is not None:
            _check_cost("within_cost_m", within_cost_m)
            site_mask = _mask(site, grid, "site")
            src_mask = None if source is None else _mask(source, grid, "source")
            near = np.isfinite(_allocation(res, grid, site_mask, src_mask, connectivity, within_cost_m).cost)
            # whole territories with a cell within reach
            female = np.where(np.isin(female, np.unique(female[near & (female > 0)])), female, 0)
            male = np.where(np.isin(male, np.unique(male[near & (male > 0)])), male, 0)
            if female.max(initial=0) <= 0:
                msg = (
                    f"within_cost_m: expected female territories within {within_cost_m:g} cost-weighted metres "
                    "of the site or source, found none. Raise within_cost_m."
                )
                raise DataError(msg)
        f_ids = np.unique(female[female > 0]).astype(np.int64)
        m_ids = np.unique(male[male > 0]).astype(np.int64)
        f_idx = _index_raster(female, f_ids)
        m_idx = _index_raster(male, m_ids)
        ff, fm = _territory_distances(
            res, f_idx, m_idx, f_ids.size, m_ids.size, grid.cell_size_m, float(max_cost_m), connectivity, workers
        )
        empty = np.zeros(0, dtype=np.int64)
        base = cls(
            female_ids=f_ids,
            male_ids=m_ids,
            female_xy=_centroids(f_idx, f_ids.size, grid),
            male_xy=_centroids(m_idx, m_ids.size, grid),
            female_region=np.zeros(f_ids.size, dtype=np.int64),
            male_region=np.zeros(m_ids.size, dtype=np.int64),
            female_side=np.zeros(f_ids.size, dtype=np.int64),
            male_side=np.zeros(m_ids.size, dtype=np.int64),
            ff_ptr=ff[0],
            ff_index=ff[1],
            ff_cost=ff[2],
            fm_ptr=fm[0],
            fm_index=fm[1],
            fm_cost=fm[2],
            site_female_order=empty,
            site_male_order=empty,
            release_origin=-1,
            release_xy=(math.nan, math.nan),
            max_cost_m=float(max_cost_m),
            grid=grid,
            female_raster=female,
            male_raster=male,
            resistance=res,
            connectivity=int(connectivity),
        )
        out = base.with_site(site, source, min_share=min_share, release_xy=release_xy)
        return replace(out, build_s=time.perf_counter() - t0)

    def with_site(
        self,
        site: Any,
        source: Any = None,
        *,
        min_share: float = 0.5,
        release_xy: tuple[float, float] | None = None,
    ) -> TerritoryLandscape:
        """The same territories and distances with another release site (and source).

        Only the regions, sides and release order are recomputed (one
        allocation search when a source is given, about 1 s on the demo), so
        several candidate sites can share one landscape built once: build it
        with ``site`` = all candidate sites together, then call this per site.

        Raises
        ------
        DataError
            If the site holds no female territory (at ``min_share``).
        """
        t0 = time.perf_counter()
        if not (isinstance(min_share, numbers.Real) and 0 < float(min_share) <= 1):
            raise ConfigError(_expected("min_share", "a share in (0, 1]", min_share))
        grid = self.grid
        site_mask = _mask(site, grid, "site")
        src_mask = None if source is None else _mask(source, grid, "source")
        f_idx = _index_raster(self.female_raster, self.female_ids)
        m_idx = _index_raster(self.male_raster, self.male_ids)
        n_f, n_m = self.female_ids.size, self.male_ids.size
        f_reg = np.zeros(n_f, dtype=np.int64)
        m_reg = np.zeros(n_m, dtype=np.int64)
        for mask, code in ((src_mask, SOURCE), (site_mask, SITE)):
            if mask is not None:
                f_reg[_share(f_idx, n_f, mask) >= min_share] = code
                m_reg[_share(m_idx, n_m, mask) >= min_share] = code
        if not (f_reg == SITE).any():
            msg = (
                f"site: expected at least one female territory with >= {min_share:g} of its cells in the site, "
                "found none. Enlarge the site, lower min_share, or check that the site overlaps the territories."
            )
            raise DataError(msg)
        # sides: territories whose cells are mostly nearer (least cost) to the source than to the site
        f_side = np.zeros(n_f, dtype=np.int64)
        m_side = np.zeros(m_reg.size, dtype=np.int64)
        if src_mask is not None:
            alloc = _allocation(self.resistance, grid, site_mask, src_mask, self.connectivity, None).allocation
            f_side[_share(f_idx, n_f, alloc == 2) > 0.5] = 1
            m_side[_share(m_idx, n_m, alloc == 2) > 0.5] = 1
        if release_xy is None:
            rows, cols = np.nonzero(site_mask)
            xy = _cell_xy(grid, np.array([rows.mean()]), np.array([cols.mean()]))[0]
            release_xy = (float(xy[0]), float(xy[1]))
        rx, ry = float(release_xy[0]), float(release_xy[1])
        site_f = np.flatnonzero(f_reg == SITE)
        site_m = np.flatnonzero(m_reg == SITE)
        d_f = np.hypot(self.female_xy[site_f, 0] - rx, self.female_xy[site_f, 1] - ry)
        d_m = np.hypot(self.male_xy[site_m, 0] - rx, self.male_xy[site_m, 1] - ry)
        site_f = site_f[np.argsort(d_f, kind="stable")].astype(np.int64)
        site_m = site_m[np.argsort(d_m, kind="stable")].astype(np.int64)
        src_f = np.zeros(0, dtype=np.int64)
        src_m = np.zeros(0, dtype=np.int64)
        if src_mask is not None:
            rows, cols = np.nonzero(src_mask)
            sx, sy = _cell_xy(grid, np.array([rows.mean()]), np.array([cols.mean()]))[0]
            src_f = np.flatnonzero(f_reg == SOURCE)
            src_m = np.flatnonzero(m_reg == SOURCE)
            src_f = src_f[np.argsort(np.hypot(self.female_xy[src_f, 0] - sx, self.female_xy[src_f, 1] - sy), kind="stable")]
            src_m = src_m[np.argsort(np.hypot(self.male_xy[src_m, 0] - sx, self.male_xy[src_m, 1] - sy), kind="stable")]
        return replace(
            self,
            female_region=f_reg,
            male_region=m_reg,
            female_side=f_side,
            male_side=m_side,
            site_female_order=site_f,
            site_male_order=site_m,
            release_origin=int(site_f[0]),
            release_xy=(rx, ry),
            build_s=time.perf_counter() - t0,
            source_female_order=src_f.astype(np.int64),
            source_male_order=src_m.astype(np.int64),
            source_origin=int(src_f[0]) if src_f.size else -1,
        )

    def without_corridor(self) -> TerritoryLandscape:
        """The same landscape with no movement between the sides: the *no corridor* scenario.

        Every distance between a territory on the site's side and one on the
        source's side is dropped, so dispersers settle only on their own side
        and mates are found only there.  Without a source nothing changes.

        Examples
        --------
        >>> from leopardgeo.core.grid import Grid
        >>> from leopardgeo.stages.territories import pack_territories
        >>> g = Grid.from_bounds((0, 0, 4000, 1000), cell_size_m=100, crs="EPSG:32652")
        >>> terr = pack_territories(np.ones(g.shape), np.ones(g.shape), g, min_area_ha=5, max_area_ha=40, female_need_ha=10)
        >>> site, src = np.zeros(g.shape, bool), np.zeros(g.shape, bool)
        >>> site[:, :10], src[:, -10:] = True, True
        >>> ls = TerritoryLandscape.from_territories(terr, np.ones(g.shape), site=site, source=src, max_cost_m=5000)
        >>> cut = ls.without_corridor()
        >>> bool((cut.female_side[cut.ff_index] == np.repeat(cut.female_side, np.diff(cut.ff_ptr))).all())
        True
        """
        if not (self.female_side == 1).any():
            return self
        ff = _filter_csr(self.ff_ptr, self.ff_index, self.ff_cost, self.female_side, self.female_side)
        fm = _filter_csr(self.fm_ptr, self.fm_index, self.fm_cost, self.female_side, self.male_side)
        return replace(self, ff_ptr=ff[0], ff_index=ff[1], ff_cost=ff[2], fm_ptr=fm[0], fm_index=fm[1], fm_cost=fm[2])

    def with_resistance(self, resistance: np.ndarray, *, workers: int | None = None) -> TerritoryLandscape:
        """The same territories, regions and sides with distances over another resistance surface.

        The corridor of a scenario (a restored or a degraded corridor) is a
        resistance raster on the same grid; the distances between territories
        are searched again on it (as in :meth:`from_territories`), while the
        regions, sides and release order stay those of this landscape so that
        the scenarios compare like with like.

        Raises
        ------
        AlignmentError
            If ``resistance`` is not on the territories' grid.
        """
        t0 = time.perf_counter()
        res = np.asarray(resistance, dtype=np.float64)
        if self.female_raster is None or res.shape != self.female_raster.shape:
            shape = None if self.female_raster is None else self.female_raster.shape
            msg = f"resistance: expected the territory rasters' shape {shape}, found {res.shape}."
            raise AlignmentError(msg)
        f_idx = _index_raster(self.female_raster, self.female_ids)
        m_idx = _index_raster(self.male_raster, self.male_ids)
        ff, fm = _territory_distances(
            res, f_idx, m_idx, self.n_female, self.n_male, self.grid.cell_size_m, self.max_cost_m, self.connectivity, workers
        )
        return replace(
            self, ff_ptr=ff[0], ff_index=ff[1], ff_cost=ff[2], fm_ptr=fm[0], fm_index=fm[1], fm_cost=fm[2],
            resistance=res, build_s=time.perf_counter() - t0,
        )  # fmt: skip


def _filter_csr(
    ptr: np.ndarray, index: np.ndarray, cost: np.ndarray, row_side: np.ndarray, col_side: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the entries of compressed rows whose row and column lie on the same side."""
    rows = np.repeat(np.arange(ptr.size - 1), np.diff(ptr))
    keep = row_side[rows] == col_side[index]
    new_ptr = np.zeros_like(ptr)
    np.cumsum(np.bincount(rows[keep], minlength=ptr.size - 1), out=new_ptr[1:])
    return new_ptr, index[keep].copy(), cost[keep].copy()


def _allocation(
    res: np.ndarray, grid: Any, site_mask: np.ndarray, src_mask: np.ndarray | None, connectivity: int, max_cost: float | None
) -> Any:
    """Least-cost search from the site (label 1) and the source (label 2; the site wins where they overlap)."""
    labels = np.zeros(res.shape, dtype=np.int32)
    if src_mask is not None:
        labels[src_mask] = 2
    labels[site_mask] = 1
    labels[~np.isfinite(res)] = 0
    if not (labels == 1).any():
        msg = "site: expected cells with finite resistance, found only no-data cells. Check the site's location."
        raise DataError(msg)
    return cost_distance(res, labels, cell_size_m=grid.cell_size_m, connectivity=connectivity, max_cost=max_cost)


def _mask(value: Any, grid: Any, name: str) -> np.ndarray:
    """Boolean raster of a site / source given as a raster or as polygons."""
    if isinstance(value, np.ndarray):
        if value.shape != grid.shape:
            msg = f"{name}: expected a boolean raster of the grid's shape {grid.shape}, found shape {value.shape}."
            raise AlignmentError(msg)
        mask = value.astype(bool)
    else:
        from rasterio.features import geometry_mask

        geoms = getattr(value, "geometry", value)
        geoms = list(np.atleast_1d(np.asarray(geoms, dtype=object))) if not hasattr(geoms, "to_numpy") else list(geoms.to_numpy())
        geoms = [g for g in geoms if g is not None and not g.is_empty]
        if not geoms:
            msg = f"{name}: expected polygons or a boolean raster, found no geometry."
            raise DataError(msg)
        mask = ~geometry_mask(geoms, out_shape=grid.shape, transform=grid.transform)
    if not mask.any():
        msg = f"{name}: expected an area on the grid, found no cell inside it. Check its CRS and extent."
        raise DataError(msg)
    return mask


def _index_raster(ids_raster: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Raster of territory indices (0-based), -1 outside."""
    out = np.full(ids_raster.shape, -1, dtype=np.int64)
    on = ids_raster > 0
    out[on] = np.searchsorted(ids, ids_raster[on])
    return out


def _centroids(idx: np.ndarray, n: int, grid: Any) -> np.ndarray:
    rows, cols = np.nonzero(idx >= 0)
    lab = idx[rows, cols]
    cnt = np.bincount(lab, minlength=n).astype(np.float64)
    r = np.bincount(lab, weights=rows, minlength=n) / np.maximum(cnt, 1)
    c = np.bincount(lab, weights=cols, minlength=n) / np.maximum(cnt, 1)
    return _cell_xy(grid, r, c)


def _cell_xy(grid: Any, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Map coordinates (metres) of the centres of cells at fractional ``rows``, ``cols``; shape (n, 2)."""
    t = grid.transform
    x = t.a * (cols + 0.5) + t.b * (rows + 0.5) + t.c
    y = t.d * (cols + 0.5) + t.e * (rows + 0.5) + t.f
    return np.column_stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])


def _share(idx: np.ndarray, n: int, mask: np.ndarray) -> np.ndarray:
    on = idx >= 0
    lab = idx[on]
    cnt = np.bincount(lab, minlength=n).astype(np.float64)
    inside = np.bincount(lab, weights=mask[on].astype(np.float64), minlength=n)
    return inside / np.maximum(cnt, 1)


@njit(cache=True, nogil=True)
def _label_min(cost, labels, best, touched):  # pragma: no cover - compiled
    """Least finite ``cost`` per label >= 0 of ``labels`` into ``best`` (inf = untouched); return the touched count."""
    nt = 0
    flat_c = cost.ravel()
    flat_l = labels.ravel()
    for k in range(flat_c.size):
        c = flat_c[k]
        if not c < np.inf:  # inf (beyond max cost) or NaN (no data)
            continue
        lab = flat_l[k]
        if lab < 0:
            continue
        if best[lab] == np.inf:
            touched[nt] = lab
            nt += 1
        if c < best[lab]:
            best[lab] = c
    return nt


def _territory_distances(
    res: np.ndarray,
    f_idx: np.ndarray,
    m_idx: np.ndarray,
    n_f: int,
    n_m: int,
    cell_size_m: float,
    max_cost_m: float,
    connectivity: int,
    workers: int | None,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Least-cost distances from every female territory to female and male territories within ``max_cost_m``.

    One bounded search of :func:`leopardgeo.kernels.costdist.cost_distance` per female
    territory, on a window around it: no path of cost <= ``max_cost_m`` leaves
    the territory's bounding box widened by ``max_cost_m / (cell size × least
    resistance)`` cells, so the window gives the same costs as the full grid.
    """
    from scipy import ndimage

    finite = np.isfinite(res)
    r_min = float(res[finite].min())
    pad = math.ceil(max_cost_m / (cell_size_m * r_min)) + 2
    boxes = ndimage.find_objects(f_idx + 1)  # label k+1 = territory index k
    n_rows, n_cols = res.shape

    def one(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        sl = boxes[i]
        r0, r1 = max(0, sl[0].start - pad), min(n_rows, sl[0].stop + pad)
        c0, c1 = max(0, sl[1].start - pad), min(n_cols, sl[1].stop + pad)
        src = (f_idx[r0:r1, c0:c1] == i).astype(np.int32)
        cost = cost_distance(res[r0:r1, c0:c1], src, cell_size_m=cell_size_m, connectivity=connectivity, max_cost=max_cost_m).cost
        out = []
        for idx, n in ((f_idx, n_f), (m_idx, n_m)):
            best = np.full(max(n, 1), np.inf)
            touched = np.empty(max(n, 1), dtype=np.int64)
            nt = _label_min(cost, np.ascontiguousarray(idx[r0:r1, c0:c1]), best, touched)
            lab = touched[:nt]
            d = best[lab]
            order = np.lexsort((lab, d))
            out.extend([lab[order], d[order]])
        return out[0], out[1], out[2], out[3]

    n_workers = max(1, min(n_f, available_cores()) if workers is None else int(workers))
    if n_workers == 1:
        rows = [one(i) for i in range(n_f)]
    else:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            rows = list(pool.map(one, range(n_f)))

    def csr(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lens = np.array([r[k].size for r in rows], dtype=np.int64)
        ptr = np.zeros(n_f + 1, dtype=np.int64)
        np.cumsum(lens, out=ptr[1:])
        idx = np.concatenate([r[k] for r in rows]).astype(np.int64) if rows else np.zeros(0, np.int64)
        cost = np.concatenate([r[k + 1] for r in rows]).astype(np.float64) if rows else np.zeros(0)
        return ptr, idx, cost

    return csr(0), csr(2)
