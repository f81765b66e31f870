"""Validation helpers shared by the kernels and the stages (arrays in, clear errors out)."""

from __future__ import annotations

import numpy as np

from leopardgeo.core.errors import DataError, ResistanceError
from leopardgeo.core.grid import Grid

__all__ = ["check_resistance"]


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
    bad = ~np.isnan(r) & ~(np.isfinite(r) & (r > 0))
    if bad.any():
        rows, cols = np.nonzero(bad)
        first = list(zip(rows[:5].tolist(), cols[:5].tolist(), strict=True))
        where = ", ".join(f"({i}, {j})" for i, j in first)
        if grid is not None:
            x, y = grid.xy(rows[:1], cols[:1])
            where += f" (first at x={x[0]:.0f} m, y={y[0]:.0f} m)"
        vals = r[bad]
        msg = (
            f"{what}: expected values > 0 and finite (NaN = impassable), found {int(bad.sum())} cells "
            f"<= 0 or infinite (min {vals.min():g}, max {vals.max():g}) at row/col {where}. "
            "Set no-data cells to the raster's nodata value, and give barriers a large finite "
            "resistance or mode = 'impassable'."
        )
        raise ResistanceError(msg)
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
