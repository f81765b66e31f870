"""Validation helpers shared by the kernels and the stages (arrays in, clear errors out)."""

from __future__ import annotations

import numpy as np

from leopardgeo.core.errors import DataError, ResistanceError
from leopardgeo.core.grid import Grid

__all__ = ["check_nonnegative", "check_resistance", "check_resistance_cells", "unmasked"]


def check_resistance(resistance: np.ndarray, grid: Grid | None = None, *, what: str = "resistance") -> np.ndarray:
    """Check that resistance is finite and > 0 wherever it is not no data (NaN).

    Returns the array as float32.

    Raises
    ------
    ResistanceError
        Naming how many cells are <= 0 or infinite, their range and the first
        cells (row, col and, with ``grid``, map coordinates).
    DataError
        If every cell is no data.

    Examples
    --------
    >>> check_resistance(np.array([[1.0, np.nan], [0.0, -2.0]]))
    Traceback (most recent call last):
    ...
    leopardgeo.core.errors.ResistanceError: resistance: expected values > 0 and finite (NaN = impassable), found 2 cells ...
    """
    r = np.asarray(resistance, dtype="float32")
    check_resistance_cells(r, grid, what=what)
    if np.isnan(r).all():
        msg = f"{what}: every cell is no data (impassable). Check the land mask and nodata values."
        raise DataError(msg)
    # a path crosses up to ~2 x (rows + cols) cells; its cost must stay far below the largest 32-bit float
    cell_m = grid.cell_size_m if grid is not None else 1000.0
    top = float(np.nanmax(r))
    if top * cell_m * 2.0 * (r.shape[0] + r.shape[-1]) > 1e36:
        msg = (
            f"{what}: expected resistances small enough that path costs stay finite, found a maximum of {top:g}: "
            f"summed over a path of {cell_m:g} m cells it overflows 32-bit floats. Rescale the resistance (e.g. to "
            "1..10,000), and mark impassable cells as no data (or a barrier with mode = 'impassable')."
        )
        raise ResistanceError(msg)
    return r


def _where(bad: np.ndarray, grid: Grid | None, row0: int) -> str:
    """The first bad cells as ``(row, col)`` (rows counted from ``row0``), the first one's map coordinates with ``grid``."""
    rows, cols = np.nonzero(bad)
    rows = rows + row0
    where = ", ".join(f"({i}, {j})" for i, j in zip(rows[:5].tolist(), cols[:5].tolist(), strict=True))
    if grid is not None:
        x, y = grid.xy(rows[:1], cols[:1])
        where += f" (first at x={x[0]:.0f} m, y={y[0]:.0f} m)"
    return where


def check_resistance_cells(resistance: np.ndarray, grid: Grid | None = None, *, what: str = "resistance", row0: int = 0) -> None:
    """Raise :class:`ResistanceError` unless every cell is NaN (no data) or finite and > 0.

    Unlike :func:`check_resistance` this looks at the cells alone, so it also checks a band of rows of a
    larger raster (``row0``: the band's first row, for the message).

    Examples
    --------
    >>> check_resistance_cells(np.array([[1.0, np.nan]]))
    >>> check_resistance_cells(np.array([[1.0, 0.0]]), what="band", row0=10)
    Traceback (most recent call last):
    ...
    leopardgeo.core.errors.ResistanceError: band: expected values > 0 and finite (NaN = impassable), found 1 cells ...
    """
    r = np.asarray(resistance)
    bad = ~np.isnan(r) & ~(np.isfinite(r) & (r > 0))
    if bad.any():
        vals = r[bad]
        msg = (
            f"{what}: expected values > 0 and finite (NaN = impassable), found {int(bad.sum())} cells "
            f"<= 0 or infinite (min {vals.min():g}, max {vals.max():g}) at row/col {_where(bad, grid, row0)}. "
            "Set no-data cells to the raster's nodata value, and give barriers a large finite "
            "resistance or mode = 'impassable'."
        )
        raise ResistanceError(msg)


def check_nonnegative(values: np.ndarray, grid: Grid | None = None, *, what: str, row0: int = 0) -> None:
    """Raise :class:`DataError` unless every cell is NaN or finite and >= 0 (e.g. source strengths).

    Examples
    --------
    >>> check_nonnegative(np.array([[0.0, 2.5, np.nan]]), what="source")
    >>> check_nonnegative(np.array([[1.0, -0.5]]), what="source")
    Traceback (most recent call last):
    ...
    leopardgeo.core.errors.DataError: source: expected values >= 0 and finite (NaN = 0), found 1 cells ...
    """
    v = np.asarray(values)
    bad = ~np.isnan(v) & ~(np.isfinite(v) & (v >= 0))
    if bad.any():
        vals = v[bad]
        msg = (
            f"{what}: expected values >= 0 and finite (NaN = 0), found {int(bad.sum())} cells below 0 or infinite "
            f"(min {vals.min():g}, max {vals.max():g}) at row/col {_where(bad, grid, row0)}. "
            "Rescale the raster to strengths >= 0, or set those cells to its nodata value."
        )
        raise DataError(msg)


def unmasked(values: np.ndarray) -> np.ndarray:
    """A masked array (e.g. ``rasterio``'s ``read(masked=True)``) as a plain float array with NaN (no data) where masked.

    ``np.asarray`` drops the mask and keeps the hidden values (often the file's nodata, e.g. 65535): a cost or a
    circuit over them would treat no data as passable.  Anything else is returned as it is.

    Examples
    --------
    >>> unmasked(np.ma.masked_equal([1.0, 65535.0], 65535.0))
    array([ 1., nan])
    """
    if not np.ma.isMaskedArray(values):
        return values
    dtype = np.float32 if values.dtype == np.float32 else np.float64
    return np.ma.filled(values.astype(dtype), np.nan)
