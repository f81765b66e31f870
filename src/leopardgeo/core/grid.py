"""The analysis :class:`Grid`: one CRS, transform and shape for every raster of a run."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from affine import Affine
from pyproj import CRS

from leopardgeo.core._crs import M2_PER_HA, require_projected_metres, to_pyproj
from leopardgeo.core.errors import AlignmentError, ConfigError

__all__ = ["Grid"]


@dataclass(frozen=True, slots=True)
class Grid:
    """A north-up raster grid in a projected CRS with square cells in metres.

    Parameters
    ----------
    crs
        Projected CRS with metre axes (anything pyproj understands).
    transform
        North-up affine transform (no rotation), square cells.
    shape
        ``(rows, cols)``.

    Raises
    ------
    CRSError
        If the CRS is missing or not projected in metres.
    AlignmentError
        If the transform is rotated or the cells are not square.

    Examples
    --------
    >>> g = Grid.from_bounds((0, 0, 1000, 500), cell_size_m=100, crs="EPSG:32652")
    >>> g.shape, g.cell_size_m, g.cell_area_ha
    ((5, 10), 100.0, 1.0)
    >>> g.bounds
    (0.0, 0.0, 1000.0, 500.0)
    """

    crs: CRS
    transform: Affine
    shape: tuple[int, int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "crs", require_projected_metres(self.crs, "analysis grid"))
        t = Affine(*tuple(self.transform)[:6])
        object.__setattr__(self, "transform", t)
        shape = tuple(self.shape)
        if len(shape) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in shape):
            msg = f"analysis grid: expected a shape of two whole numbers (rows, columns), found {self.shape!r}."
            raise AlignmentError(msg)
        object.__setattr__(self, "shape", (int(shape[0]), int(shape[1])))
        if t.b != 0 or t.d != 0:
            msg = (
                f"analysis grid: expected a north-up transform, found rotation terms b={t.b}, d={t.d}. "
                "Warp the raster to a north-up grid first."
            )
            raise AlignmentError(msg)
        if t.e >= 0 or t.a <= 0:
            msg = f"analysis grid: expected positive cell width and negative cell height, found a={t.a}, e={t.e}."
            raise AlignmentError(msg)
        if not math.isclose(t.a, -t.e, rel_tol=1e-9):
            msg = (
                f"analysis grid: expected square cells, found {t.a} m × {-t.e} m. "
                "Resample to square cells (set [grid] cell_size_m)."
            )
            raise AlignmentError(msg)
        if self.shape[0] < 1 or self.shape[1] < 1:
            msg = f"analysis grid: expected at least one row and column, found shape {self.shape}."
            raise AlignmentError(msg)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_bounds(cls, bounds: tuple[float, float, float, float], *, cell_size_m: float, crs: Any) -> Grid:
        """Grid covering ``bounds`` (left, bottom, right, top) in metres, snapped outward.

        The origin is snapped to a multiple of ``cell_size_m`` so grids of nested
        resolutions line up.
        """
        _check_cell_size(cell_size_m)
        left, bottom, right, top = (float(v) for v in bounds)
        if not (right > left and top > bottom):
            msg = f"bounds: expected left < right and bottom < top, found {bounds!r}."
            raise ConfigError(msg)
        c = float(cell_size_m)
        x0 = math.floor(left / c) * c
        y1 = math.ceil(top / c) * c
        cols = max(1, math.ceil(round((right - x0) / c, 9)))
        rows = max(1, math.ceil(round((y1 - bottom) / c, 9)))
        return cls(to_pyproj(crs), Affine(c, 0.0, x0, 0.0, -c, y1), (rows, cols))

    @classmethod
    def from_dataset(cls, ds: Any) -> Grid:
        """Grid of an open rasterio dataset."""
        return cls(to_pyproj(ds.crs), ds.transform, (ds.height, ds.width))

    def resampled(self, cell_size_m: float) -> Grid:
        """The same extent with another cell size (snapped outward)."""
        return Grid.from_bounds(self.bounds, cell_size_m=cell_size_m, crs=self.crs)

    # ------------------------------------------------------------------ properties
    @property
    def height(self) -> int:
        """Number of rows."""
        return self.shape[0]

    @property
    def width(self) -> int:
        """Number of columns."""
        return self.shape[1]

    @property
    def cell_size_m(self) -> float:
        """Cell side length in metres."""
        return float(self.transform.a)

    @property
    def cell_area_ha(self) -> float:
        """Area of one cell in hectares."""
        return self.cell_size_m**2 / M2_PER_HA

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in metres."""
        t = self.transform
        return (t.c, t.f + t.e * self.height, t.c + t.a * self.width, t.f)

    @property
    def rasterio_crs(self) -> Any:
        """The CRS as a :class:`rasterio.crs.CRS` (for rasterio calls)."""
        from rasterio.crs import CRS as RioCRS

        return RioCRS.from_wkt(self.crs.to_wkt())

    def xy(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map coordinates (metres) of cell centres."""
        t = self.transform
        x = t.c + (np.asarray(cols, dtype=float) + 0.5) * t.a
        y = t.f + (np.asarray(rows, dtype=float) + 0.5) * t.e
        return x, y

    def same_as(self, other: Grid, *, atol_m: float = 1e-6) -> bool:
        """Whether ``other`` has the same CRS, transform and shape."""
        return (
            self.shape == other.shape
            and self.transform.almost_equals(other.transform, precision=atol_m)
            and self.crs == other.crs
        )

    def check_same(self, other: Grid, what: str) -> None:
        """Raise :class:`AlignmentError` unless ``other`` equals this grid.

        Raises
        ------
        AlignmentError
            Naming what differs (CRS, transform or shape).
        """
        if self.same_as(other):
            return
        diffs = []
        if self.crs != other.crs:
            diffs.append(f"CRS {other.crs.name!r} instead of {self.crs.name!r}")
        if self.shape != other.shape:
            diffs.append(f"shape {other.shape} instead of {self.shape}")
        if not self.transform.almost_equals(other.transform, precision=1e-6):
            diffs.append(f"transform {tuple(other.transform)[:6]} instead of {tuple(self.transform)[:6]}")
        msg = (
            f"{what}: expected the analysis grid, found {'; '.join(diffs)}. "
            "Read it with leopardgeo.io.read_raster(path, grid) to align it."
        )
        raise AlignmentError(msg)


def _check_cell_size(cell_size_m: Any) -> float:
    """``cell_size_m`` as a float > 0; ConfigError for anything else (a string, NaN, inf, 0)."""
    ok = isinstance(cell_size_m, numbers.Real) and not isinstance(cell_size_m, bool)
    if not (ok and cell_size_m > 0 and math.isfinite(cell_size_m)):
        msg = f"cell_size_m: expected a positive number of metres, found {cell_size_m!r}."
        raise ConfigError(msg)
    return float(cell_size_m)
