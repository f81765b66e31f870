"""Reading any GDAL raster / OGR vector onto the analysis grid, and writing outputs.

Inputs may come in any CRS: rasters are warped onto the analysis
:class:`~leopardgeo.core.grid.Grid` (nearest for classes, bilinear or average for
continuous values), vectors are reprojected to its CRS.  Outputs are written
atomically (a temporary file, then a rename) and never overwrite an existing
file unless asked to.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import shutil
import sqlite3
import tempfile
import uuid
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

import geopandas as gpd
import pyogrio
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window, from_bounds

from leopardgeo.core._crs import to_pyproj  # noqa: F401  (kept importable from here)
from leopardgeo.core._lazy import submodule_getattr
from leopardgeo.core.errors import (
    AlignmentError,
    CRSError,
    DataError,
    InvalidGeometryWarning,  # noqa: F401
    OutputError,
    OutputExistsError,
)
from leopardgeo.core.grid import Grid, _check_cell_size

# Input checks and vector reading live beside this module; their names are importable from here too.
from leopardgeo.io.paths import check_input_path
from leopardgeo.io.vector import _norm_text, read_vector, read_wdpa, require_polygons, to_analysis_crs  # noqa: F401

__all__ = [
    "GPKG_NAME",
    "LAYERS",
    "RASTERS",
    "OutputWriter",
    "grid_from_raster",
    "json_records",
    "read_raster",
    "read_vector",
    "read_wdpa",
    "check_input_path",
    "output_errors",
    "require_polygons",
    "to_analysis_crs",
    "write_raster",
]

logger = logging.getLogger(__name__)


def json_records(frame: Any) -> list[dict[str, Any]]:
    """Rows of a DataFrame as JSON-ready dicts: numpy scalars become Python ones, NaN and ±inf become None.

    Examples
    --------
    >>> import pandas as pd
    >>> json_records(pd.DataFrame({"a": [1, 2], "b": [0.5, float("nan")]}))
    [{'a': 1, 'b': 0.5}, {'a': 2, 'b': None}]
    """
    out = []
    for row in frame.to_dict("records"):
        rec = {}
        for k, v in row.items():
            if isinstance(v, np.generic):
                v = v.item()
            rec[str(k)] = None if isinstance(v, float) and not math.isfinite(v) else v
        out.append(rec)
    return out

#: File name of the run's GeoPackage.
GPKG_NAME = "leopardgeo.gpkg"

#: Output GeoPackage layers: name -> description shown in QGIS.
LAYERS: dict[str, str] = {
    "study_area": "Study area (analysis grid extent clipped to the study-area polygon)",
    "borders": "National borders inside the study area",
    "protected_areas": "Protected areas used in the run (WDPA schema; may be approximate)",
    "patches": "Habitat patches: cores by suitability threshold and minimum area, with protected areas",
    "graph_nodes": "Nodes of the connectivity graph: one point per patch, with its degree",
    "links": "Least-cost links between patches (paths through cell centres), cwd in cost-weighted metres",
    "corridors": "Truncated least-cost corridors, one (multi)polygon per link, with width, resistance and protected share",
    "pinch_points": "Pinch point of each link: the corridor cell with the highest current density (A for 1 A)",
    "border_crossings": (
        "Where each least-cost path passes from one country to another (country polygons): link, cwd, corridor length "
        "along the border there (corridor_at_border_m), current, nearest border line"
    ),
    "transboundary_patches": (
        "Habitat patches across a border, at their main crossing: border length through habitat, effective resistance "
        "and share of the current between the national parts crossing inside the patch, protected areas on each side"
    ),
    "crossing_routes": (
        "Every cross-border route (links and transboundary patches) ranked by importance_dpc, the % of PC lost if "
        "closed; crossing lon / lat, nearest border segment, protected areas on each side"
    ),
    "border_permeability": "National borders in segments: current density summed over the cells crossed, corridors crossing",
    "barriers": "Top barrier locations: improvement in least-cost distance per metre restored (Barrier Mapper)",
    "fence_links": (
        "Border-fence scenario (patches cut at the border, border fenced): every link before / after, cwd change, "
        "status (vanished, lengthened...)"
    ),
    "sites": "Reintroduction sites: every criterion, normalised criteria (n_*), score 0-100, rank, rank stability",
    "habitat_nodes": (
        "Habitat polygons as graph nodes (leopardgeo metrics): weight, node point, dPC / dIIC with intra, flux and "
        "connector fractions, BC, BCPC, articulation"
    ),
    "node_links": "Links between habitat polygons (leopardgeo metrics): distance, probability p, dPC_link, dIIC_link, bridge",
    "territories": (
        "Packed territories (replicate 0): sex F/M, area_ha, mean_quality, majority patch, country and protected area; "
        "exclusive within a sex, males overlap females"
    ),
}

#: Output rasters: file name -> description.
RASTERS: dict[str, str] = {
    "suitability.tif": "Habitat suitability 0..1",
    "resistance.tif": "Resistance to movement (>= 1; nodata = impassable)",
    "patches.tif": "Patch id per cell (0 = no patch)",
    "cwd.tif": "Cost-weighted distance to the nearest patch (cost-weighted metres)",
    "allocation.tif": "Patch whose cost-distance region holds each cell (0 = unreachable)",
    "corridors.tif": "Normalised least-cost corridor (cwd_a + cwd_b - LCD, minimum over links; truncated; cost-weighted metres)",
    "current.tif": "Cumulative current density over the circuit solves (A; Circuitscape's definition)",
    "voltage.tif": "Voltage per solve (V), one band per pair or patch",
    "current_solves.tif": "Current density per solve (A; Circuitscape's definition), one band per pair or patch",
    "max_current.tif": "Largest current density of any solve at each cell (A; Circuitscape's max-current map)",
    "pinchpoints.tif": "Current density inside each truncated corridor, maximum over links (A for 1 A per link)",
    "omniscape_current.tif": "Omniscape cumulative current over all moving windows (A; Omniscape.jl's cum_currmap)",
    "omniscape_flow_potential.tif": "Omniscape flow potential: the cumulative current with every resistance 1 (A)",
    "omniscape_normalized.tif": "Omniscape normalised current: current / flow potential (> 1 channelled, < 1 impeded)",
    "barriers.tif": "Barrier Mapper score: improvement in least-cost distance per metre restored (cost-weighted m / m)",
    "fence.tif": "Border-fence scenario: 1 = fence cell (the border of the country raster, gaps left open), 0 = none",
    "territories.tif": "Packed territories (replicate 0): 0 = none, 1 = female only, 2 = male only, 3 = female and male",
}

_RESAMPLING = {
    "nearest": Resampling.nearest,
    "bilinear": Resampling.bilinear,
    "average": Resampling.average,
    "mode": Resampling.mode,
}


def _open_raster(path: str | Path, what: str = "raster") -> Any:
    check_input_path(path, f"raster {what}" if what != "raster" else "raster")
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        msg = f"raster {str(path)!r} cannot be read by GDAL: {exc}. Give a GeoTIFF or another GDAL raster."
        raise DataError(msg) from exc


def _read_failed(name: str, path: str | Path, exc: Exception) -> DataError:
    """The error for a raster that opens but whose pixels cannot be read (truncated file, corrupt tiles)."""
    msg = (
        f"raster {name!r} ({str(path)!r}): its header opens but reading its cells failed ({exc}); expected a complete "
        "raster. The file is truncated or damaged: copy or download it again, or check it with `gdalinfo -checksum`."
    )
    return DataError(msg)


def grid_from_raster(path: str | Path, *, cell_size_m: float | None = None) -> Grid:
    """The analysis grid of a template raster, optionally with another cell size.

    Raises
    ------
    CRSError
        If the raster has no CRS or a geographic one.
    """
    with _open_raster(path) as ds:
        if ds.crs is None:
            msg = (
                f"template raster {str(path)!r}: expected a projected CRS in metres, found no CRS. "
                "Assign one, e.g. `gdal_edit.py -a_srs EPSG:32652 file.tif`."
            )
            raise CRSError(msg)
        try:
            grid = Grid.from_dataset(ds)
        except CRSError as exc:
            msg = f"template raster {str(path)!r}: {exc}"
            raise CRSError(msg) from exc
        except AlignmentError as exc:
            t = ds.transform
            kind = "south-up (rows run from south to north)" if t.e > 0 else "rotated or with non-square cells"
            msg = (
                f"template raster {str(path)!r}: expected a north-up grid with square cells, found a {kind} transform "
                f"({exc}). Warp it to a north-up grid first: `gdalwarp -tr {abs(t.a):g} {abs(t.a):g} in.tif north_up.tif`, "
                "or give [grid] crs, bounds and cell_size_m instead of a template."
            )
            raise AlignmentError(msg) from exc
    if cell_size_m is not None and not np.isclose(_check_cell_size(cell_size_m), grid.cell_size_m):
        grid = grid.resampled(cell_size_m)
    return grid


def read_raster(
    path: str | Path,
    grid: Grid,
    *,
    resampling: str = "nearest",
    band: int | None = None,
    what: str | None = None,
) -> np.ndarray:
    """Read one band of any GDAL raster onto ``grid`` as float32, NaN = no data.

    Parameters
    ----------
    path
        Raster file (any CRS, north-up or south-up; it is warped onto the grid).
    grid
        The analysis grid.
    resampling
        ``"nearest"`` for classes, ``"bilinear"`` or ``"average"`` for
        continuous values (``"average"`` when coarsening), ``"mode"`` for
        classes when coarsening.
    band
        1-based band index; default band 1, with a :class:`MultiBandWarning`
        when the raster has more than one band.
    what
        Name of the layer for messages.

    Returns
    -------
    numpy.ndarray
        ``grid.shape`` float32 array; cells outside the source or at its
        nodata are NaN.

    Raises
    ------
    DataError
        Missing, unreadable, truncated or damaged file, a named pipe, or no
        valid cell inside the grid.
    CRSError
        The raster has no CRS.
    AlignmentError
        The raster does not overlap the grid.
    MemoryLimitError
        The part of the source to read would not fit in memory.

    Notes
    -----
    The source window over the grid is read whole and warped in memory when it
    is small; a source much finer than the grid (more than four source cells
    per grid cell and over 64 MB) is streamed through GDAL's warper
    (:class:`rasterio.vrt.WarpedVRT`), which holds only blocks of the source
    at a time.

    Examples
    --------
    >>> from leopardgeo.testing import synthetic_raster
    >>> import tempfile, pathlib
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> grid, path = synthetic_raster(tmp / "a.tif", [[1, 2], [3, 4]], cell_size_m=100)
    >>> read_raster(path, grid)
    array([[1., 2.],
           [3., 4.]], dtype=float32)
    """
    from leopardgeo.core.errors import MultiBandWarning
    from leopardgeo.core.memory import check_memory, fmt_bytes

    name = what or Path(str(path)).name
    if resampling not in _RESAMPLING:
        msg = f"resampling: expected one of {sorted(_RESAMPLING)}, found {resampling!r}."
        raise DataError(msg)
    with _open_raster(path, name) as ds:
        if ds.crs is None:
            msg = (
                f"raster {name!r} has no CRS; expected one so it can be aligned with the grid. "
                "Assign it, e.g. `gdal_edit.py -a_srs EPSG:4326 file.tif` for lon/lat data."
            )
            raise CRSError(msg)
        if band is None:
            band = 1
            if ds.count > 1:
                warnings.warn(
                    f"raster {name!r} has {ds.count} bands; reading band 1. Set the band explicitly "
                    "(e.g. suitability_band = 2 in [inputs]) or give a one-band raster.",
                    MultiBandWarning,
                    stacklevel=2,
                )
        if isinstance(band, bool) or not isinstance(band, int | np.integer) or not 1 <= band <= ds.count:
            msg = f"raster {name!r}: expected band 1..{ds.count}, found band {band!r}."
            raise DataError(msg)
        src_crs = ds.crs
        try:
            src_grid_same = Grid.from_dataset(ds).same_as(grid)
        except (CRSError, AlignmentError):
            src_grid_same = False
        itemsize = np.dtype(ds.dtypes[band - 1]).itemsize
        try:
            if src_grid_same:
                check_memory(grid.height * grid.width * (itemsize + 5), what=f"reading raster {name!r}", fix=_MEMORY_FIX)
                out = ds.read(band, masked=True).astype("float32").filled(np.nan)
            else:
                gl, gb, gr, gt = transform_bounds(grid.rasterio_crs, src_crs, *grid.bounds, densify_pts=21)
                sl, sr = sorted((ds.bounds[0], ds.bounds[2]))
                sb, st = sorted((ds.bounds[1], ds.bounds[3]))  # a south-up raster has bottom > top
                if gl >= sr or gr <= sl or gb >= st or gt <= sb:
                    msg = (
                        f"raster {name!r} does not overlap the study area: its bounds "
                        f"{tuple(round(v, 3) for v in (sl, sb, sr, st))} vs the grid's "
                        f"{tuple(round(v, 3) for v in (gl, gb, gr, gt))} in its CRS {src_crs.to_string()!r}. "
                        "Check that the raster covers the study area and that its CRS is right."
                    )
                    raise AlignmentError(msg)
                win = _source_window(ds, (max(gl, sl), max(gb, sb), min(gr, sr), min(gt, st)))
                n_src = float(win.width) * float(win.height)
                n_grid = float(grid.height) * float(grid.width)
                if n_src > 4 * n_grid and n_src * (itemsize + 4) > _STREAM_BYTES:
                    logger.info(
                        "%s: streaming %s source cells (%s) through GDAL's warper", name, f"{n_src:,.0f}",
                        fmt_bytes(n_src * (itemsize + 4)),
                    )
                    need = n_grid * 9 + 3 * _STREAM_CACHE_MB * 1e6
                    check_memory(need, what=f"reading raster {name!r} onto the grid", fix=_MEMORY_FIX)
                    out = _read_warped(ds, band, grid, resampling)
                else:
                    check_memory(
                        n_src * (itemsize + 5) + n_grid * 4,
                        what=f"reading raster {name!r} ({n_src:,.0f} source cells)",
                        fix=_MEMORY_FIX,
                    )
                    src = ds.read(band, window=win, masked=True).astype("float32").filled(np.nan)
                    out = np.full(grid.shape, np.nan, dtype="float32")
                    reproject(
                        source=src,
                        destination=out,
                        src_transform=ds.window_transform(win),
                        src_crs=src_crs,
                        src_nodata=np.nan,
                        dst_transform=grid.transform,
                        dst_crs=grid.rasterio_crs,
                        dst_nodata=np.nan,
                        resampling=_RESAMPLING[resampling],
                    )
        except rasterio.errors.RasterioError as exc:
            raise _read_failed(name, path, exc) from exc
    if not np.isfinite(out).any():
        msg = (
            f"raster {name!r} has no valid cell inside the study area (all nodata). "
            "Check its nodata value and that it covers the study area."
        )
        raise DataError(msg)
    return out


#: Source windows larger than this (and more than four source cells per grid cell) are streamed through GDAL.
_STREAM_BYTES = 64e6
#: GDAL block cache and warp buffer (MB) while streaming.
_STREAM_CACHE_MB = 64

_MEMORY_FIX = (
    "Use coarser cells ([grid] cell_size_m), clip the study area, or resample the input first "
    "(e.g. `gdalwarp -tr 500 500 -r average in.tif out.tif`)."
)


def _source_window(ds: Any, bounds: tuple[float, float, float, float]) -> Window:
    """The window of ``ds`` covering ``bounds`` (in its CRS) plus two cells, clipped to the raster; any cell orientation."""
    pad = 2  # cells of margin so bilinear sampling at the edge has neighbours
    if ds.transform.e < 0 and ds.transform.b == 0 and ds.transform.d == 0:  # north-up: the common case
        win = from_bounds(*bounds, ds.transform)
        c_lo, r_lo = win.col_off, win.row_off
        c_hi, r_hi = win.col_off + win.width, win.row_off + win.height
    else:  # south-up (or rotated): map the four corners into pixel space
        inv = ~ds.transform
        corners = [inv * (x, y) for x in (bounds[0], bounds[2]) for y in (bounds[1], bounds[3])]
        c_lo, c_hi = min(c for c, _ in corners), max(c for c, _ in corners)
        r_lo, r_hi = min(r for _, r in corners), max(r for _, r in corners)
    c0, r0 = math.floor(c_lo) - pad, math.floor(r_lo) - pad
    c1, r1 = math.ceil(c_hi) + pad, math.ceil(r_hi) + pad
    return Window(c0, r0, c1 - c0, r1 - r0).intersection(Window(0, 0, ds.width, ds.height))


def _read_warped(ds: Any, band: int, grid: Grid, resampling: str) -> np.ndarray:
    """Warp one band onto ``grid`` through GDAL's warper, block by block (:class:`rasterio.vrt.WarpedVRT`)."""
    from rasterio.vrt import WarpedVRT

    # a small block cache and warp buffer: the source passes through in pieces instead of staying in GDAL's cache
    with rasterio.Env(GDAL_CACHEMAX=_STREAM_CACHE_MB), WarpedVRT(
        ds,
        crs=grid.rasterio_crs,
        transform=grid.transform,
        width=grid.width,
        height=grid.height,
        resampling=_RESAMPLING[resampling],
        src_nodata=ds.nodata,
        nodata=np.nan,
        dtype="float32",
        warp_mem_limit=_STREAM_CACHE_MB,
    ) as vrt:
        return vrt.read(band, masked=True).astype("float32").filled(np.nan)


# ---------------------------------------------------------------------- writing
def write_raster(
    path: str | Path,
    array: np.ndarray,
    grid: Grid,
    *,
    nodata: float | int | None = None,
    description: str | None = None,
    overwrite: bool = False,
    band_names: list[str] | None = None,
) -> Path:
    """Write a Cloud-Optimized GeoTIFF atomically (2-D array: one band; 3-D: one band per first index).

    Float arrays use NaN as nodata unless ``nodata`` is given; integer arrays
    have no nodata unless ``nodata`` is given (it must be a value of their
    type).  A boolean array is written as ``uint8`` 0 / 1 and a ``float16``
    one as ``float32`` (both lossless).  ``band_names`` describe the bands of
    a 3-D array, one name per band (``description`` goes into the dataset
    tags then).

    Raises
    ------
    AlignmentError
        If the array's shape is not the grid's.
    DataError
        If the array is not real numbers, ``nodata`` is not a value of its type
        or ``band_names`` does not name every band.
    OutputExistsError
        If ``path`` exists and ``overwrite`` is false.
    OutputError
        If the file cannot be written (a missing or read-only folder, a full disk).
    """
    path = Path(path)
    array = _writable(np.asarray(array), path, nodata)
    bands = array if array.ndim == 3 else array[np.newaxis]
    if array.ndim not in (2, 3) or bands.shape[1:] != grid.shape:
        msg = f"{path.name}: expected an array of the grid's shape {grid.shape}, found {array.shape}."
        raise AlignmentError(msg)
    if band_names is not None and array.ndim != 3:
        msg = f"{path.name}: expected band_names only for a 3-D array, found a 2-D one. Give its name as description."
        raise DataError(msg)
    if band_names is not None and len(band_names) != bands.shape[0]:
        msg = f"{path.name}: expected one band name per band ({bands.shape[0]}), found {len(band_names)}."
        raise DataError(msg)
    _check_free(path, overwrite)
    if not path.parent.is_dir():
        msg = (
            f"cannot write {str(path)!r}: expected an existing folder, found no folder {str(path.parent)!r}. "
            "Create it first or write into another folder."
        )
        raise OutputError(msg)
    if nodata is None and np.issubdtype(array.dtype, np.floating):
        nodata = np.nan
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with output_errors(path):
        _write_cog(tmp, path, bands, array, grid, nodata, description, band_names)
    return path


def _writable(array: np.ndarray, path: Path, nodata: float | None) -> np.ndarray:
    """``array`` in a type a GeoTIFF holds (bool -> uint8, float16 -> float32); DataError for what none does."""
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    elif array.dtype == np.float16:
        array = array.astype(np.float32)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        msg = f"{path.name}: expected an array of real numbers (integers or floats), found dtype {array.dtype}."
        raise DataError(msg)
    if nodata is not None and np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        number = isinstance(nodata, int | float | np.number) and not isinstance(nodata, bool | np.bool_)
        if not (number and float(nodata).is_integer() and info.min <= nodata <= info.max):
            msg = (
                f"{path.name}: expected a nodata value of the array's type {array.dtype} ({info.min}..{info.max}), "
                f"found {nodata!r}. Give a value the array can hold, or cast the array."
            )
            raise DataError(msg)
    return array


def _write_cog(
    tmp: Path,
    path: Path,
    bands: np.ndarray,
    array: np.ndarray,
    grid: Grid,
    nodata: float | None,
    description: str | None,
    band_names: list[str] | None,
) -> None:
    """Write ``bands`` as a COG at ``tmp``, then move it to ``path`` (``tmp`` removed whatever happens)."""
    try:
        with rasterio.open(
            tmp,
            "w",
            driver="COG",
            height=grid.height,
            width=grid.width,
            count=bands.shape[0],
            dtype=array.dtype,
            crs=grid.rasterio_crs,
            transform=grid.transform,
            nodata=nodata,
            compress="deflate",
            predictor=3 if np.issubdtype(array.dtype, np.floating) else 2,
            overview_resampling="average" if np.issubdtype(array.dtype, np.floating) else "nearest",
        ) as dst:
            dst.write(bands)
            if array.ndim == 3:
                for i, name in enumerate(band_names or [], start=1):
                    dst.set_band_description(i, name)
                if description:
                    dst.update_tags(DESCRIPTION=description)
            elif description:
                dst.set_band_description(1, description)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


#: SQLite (GeoPackage, QGIS styles) refuses paths longer than this many bytes.
_MAX_PATH_BYTES = 512


@contextlib.contextmanager
def output_errors(path: str | Path) -> Iterator[None]:
    """Turn an operating-system error while writing ``path`` into an :class:`OutputError` saying what to do.

    Covers a read-only or missing folder, a full disk (GDAL reports it as a
    write or seek error), a name too long and a path below a regular file.

    Examples
    --------
    >>> with output_errors("/proc/no/such/folder/x.tif"):
    ...     open("/proc/no/such/folder/x.tif", "w")
    Traceback (most recent call last):
    ...
    leopardgeo.core.errors.OutputError: cannot write '/proc/no/such/folder/x.tif': ...
    """
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        raise _output_error(path, exc) from exc
    except (
        rasterio.errors.RasterioError, pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, sqlite3.Error
    ) as exc:
        text = str(exc).lower()
        # GDAL's words for a write that failed (a full disk or a file-size limit mid-GeoPackage: "could not add
        # feature ... sqlite3_exec(...) failed"); anything else is not an output problem and stays as it is
        words = (
            "space", "seek", "write", "disk", "full", "i/o", "readonly", "read-only", "unable", "could not add", "sqlite3_exec"
        )
        if any(k in text for k in words):
            raise _output_error(path, exc) from exc
        raise


def _output_error(path: str | Path, exc: BaseException) -> OutputError:
    reason = getattr(exc, "strerror", None) or str(exc)
    errno_ = getattr(exc, "errno", None)
    if errno_ == errno.EEXIST and any(p.exists() and not p.is_dir() for p in Path(path).parents):
        errno_ = errno.ENOTDIR  # mkdir(exist_ok=True) below a regular file says "File exists"
    fixes = {
        errno.EACCES: "The folder is not writable: choose a folder you can write to (--out) or change its permissions.",
        errno.EROFS: "The file system is read-only: choose another output folder (--out).",
        errno.ENOSPC: "The disk is full: free space or choose an output folder on another disk (--out).",
        errno.ENAMETOOLONG: "The path is too long: choose a shorter output folder (--out).",
        errno.ENOTDIR: "A part of the path is a file, not a folder: choose another output folder (--out).",
        errno.ENOENT: "A folder of the path does not exist: create it first or choose another path.",
    }
    fix = fixes.get(errno_ or -1)
    if fix is None:
        low = reason.lower()
        if "space" in low or "seek" in low or "write" in low or "full" in low:
            fix = "The disk is probably full: free space or choose an output folder on another disk (--out)."
        else:
            fix = "Check that the output folder exists, is writable and has free space, or choose another (--out)."
    msg = f"cannot write {str(path)!r}: {reason}; expected a writable output folder. {fix}"
    err = OutputError(msg)
    err.errno = errno_
    return err


def _check_free(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        msg = f"{str(path)!r} exists; expected a free path. Pass --overwrite (overwrite=True) or choose another output folder."
        raise OutputExistsError(msg)


class OutputWriter:
    """Builds a run folder's next state beside it and swaps it in whole (see :mod:`leopardgeo.io.runfolder`).

    Nothing in ``out_dir`` changes until :meth:`commit`, which replaces the
    folder in one atomic step; if the run fails (or is killed), the earlier
    folder stays as it was, and a folder that did not exist is not created.
    The folder is locked from construction to commit or discard: a second
    writer is refused.  Use it as a context manager.

    Parameters
    ----------
    out_dir
        Output folder (created by the commit if needed).
    overwrite
        Replace outputs that exist.
    names
        Files the run will write, checked up front so a run without
        ``overwrite`` fails before doing any work.
    styles
        On :meth:`commit`, first store QGIS styles for what was staged: the
        GeoPackage's layers get default styles in its ``layer_styles`` table
        and each GeoTIFF a ``.qml`` beside it (see :mod:`leopardgeo.io.styles`),
        so that every output opens styled in QGIS.  The ``.qml`` files are
        committed with the rasters.
    replace
        The writer makes a whole new run: outputs of the earlier run that it
        does not write again are removed (files the user put in the folder
        stay).  Without it (a report, one stage added to a run), every earlier
        file stays unless written again.
    inputs
        The run's input files: an ``out_dir`` holding any of them is refused.

    Raises
    ------
    OutputExistsError
        If any of ``names`` (with ``replace``: any earlier output) exists in
        ``out_dir`` and ``overwrite`` is false.
    RunLockedError
        If another process is writing into ``out_dir``.
    ConfigError
        If ``out_dir`` holds one of ``inputs``.
    """

    def __init__(
        self,
        out_dir: str | Path,
        *,
        overwrite: bool = False,
        names: Iterable[str] = (),
        styles: bool = True,
        replace: bool = False,
        inputs: Iterable[str | Path] = (),
    ) -> None:
        from leopardgeo.io.runfolder import FolderLock, check_inputs_outside, earlier_outputs, remove_leftovers

        self.out_dir = Path(out_dir)
        self.overwrite = overwrite
        self.styles = styles
        self.replace = replace
        check_inputs_outside(self.out_dir, inputs)
        longest = len(os.fsencode(self.out_dir.absolute())) + 64  # staging folder and file names
        if longest > _MAX_PATH_BYTES:
            msg = (
                f"output folder {str(self.out_dir)[:60]!r}...: expected a path of at most {_MAX_PATH_BYTES - 64} bytes "
                f"(GeoPackage and QGIS-style files cannot be written deeper), found {longest - 64}. Choose a shorter --out."
            )
            raise OutputError(msg)
        created = [p for p in [self.out_dir.parent, *self.out_dir.parent.parents] if not p.exists()]
        with output_errors(self.out_dir):
            self._lock = FolderLock(self.out_dir).acquire()
        try:
            remove_leftovers(self.out_dir)
            clash = [n for n in names if (self.out_dir / n).exists()]
            if replace and self.out_dir.is_dir():
                clash += sorted(n for n in earlier_outputs(self.out_dir) if n not in clash and (self.out_dir / n).exists())
            if clash and not overwrite:
                shown = [n for n in clash if not n.startswith(".")] or clash
                listed = ", ".join(shown[:6]) + (f" and {len(shown) - 6} more" if len(shown) > 6 else "")
                msg = (
                    f"output folder {str(self.out_dir)!r} already holds {listed}; "
                    "expected no earlier outputs. Pass --overwrite to replace them, or --out another folder."
                )
                raise OutputExistsError(msg)
            with output_errors(self.out_dir):
                self.staging = Path(
                    tempfile.mkdtemp(prefix=f".{self.out_dir.name}.staging-{os.getpid()}-", dir=self.out_dir.parent)
                )
            umask = os.umask(0)
            os.umask(umask)
            self.staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; the run folder gets the usual permissions
        except BaseException:
            self._lock.release()
            _remove_empty(created)
            raise
        self._created = created
        self.written: list[str] = []
        self._kept: set[str] = set()

    def path(self, name: str) -> Path:
        """Staging path for output ``name`` (in ``out_dir/name`` after the commit; ``name`` may hold a sub-folder)."""
        if name not in self.written:
            self.written.append(name)
        p = self.staging / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def copy_existing(self, name: str) -> Path:
        """Stage a copy of ``out_dir/name`` (if it exists) so a later stage can add to it."""
        src = self.out_dir / name
        dst = self.path(name)
        if src.exists():
            shutil.copy2(src, dst)
        return dst

    def keep(self, name: str) -> Path:
        """Carry ``out_dir/name`` into the new folder unchanged (linked, not copied), as if written again."""
        from leopardgeo.io.runfolder import _link_or_copy

        dst = self.path(name)
        _link_or_copy(self.out_dir / name, dst)
        self._kept.add(name)
        return dst

    def raster(self, name: str, array: np.ndarray, grid: Grid, **kwargs: Any) -> Path:
        """Stage a COG raster (see :func:`write_raster`)."""
        with output_errors(self.out_dir / name):
            return write_raster(self.path(name), array, grid, overwrite=True, **kwargs)

    def layers(self, layers: Mapping[str, gpd.GeoDataFrame], *, metadata: Mapping[str, str] | None = None) -> Path:
        """Stage GeoPackage layers in the run's ``leopardgeo.gpkg`` (see :func:`write_layers`)."""
        with output_errors(self.out_dir / GPKG_NAME):
            return write_layers(self.path(GPKG_NAME), layers, metadata=metadata)

    def text(self, name: str, text: str) -> Path:
        """Stage a text file."""
        with output_errors(self.out_dir / name):
            p = self.path(name)
            p.write_text(text, encoding="utf-8")
        return p

    def write_styles(self) -> list[str]:
        """Store QGIS styles for the staged GeoPackage and GeoTIFFs (done by :meth:`commit` when ``styles``)."""
        with output_errors(self.out_dir):
            return self._write_styles()

    def _write_styles(self) -> list[str]:
        from leopardgeo.io.styles import write_layer_styles, write_raster_style

        added = []
        for name in list(self.written):
            src = self.staging / name
            if not src.is_file():
                continue
            if name == GPKG_NAME or name.endswith("/" + GPKG_NAME):
                with fixed_gpkg_dates():
                    write_layer_styles(src)
            elif name.endswith(".tif"):
                qml = name[: -len(".tif")] + ".qml"
                if name in self._kept and qml in self._kept:
                    continue  # carried over with its style
                write_raster_style(src)
                self.path(qml)
                added.append(qml)
        self.styles = False  # done: commit() does not style again
        return added

    def commit(self) -> list[Path]:
        """Swap the staged folder in (after styling, with ``styles``) and release the lock; return the written paths."""
        from leopardgeo.io.runfolder import carry_over, exchange_folders, write_ledger

        try:
            if self.styles:
                self.write_styles()
            written = [n for n in self.written if (self.staging / n).exists()]
            with output_errors(self.out_dir):
                kept = carry_over(self.out_dir, self.staging, keep_outputs=not self.replace, written=written)
                write_ledger(self.staging, [*written, *kept])
                old = exchange_folders(self.staging, self.out_dir)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            self.discard()
            raise
        self._lock.release()
        return [self.out_dir / n for n in written]

    def discard(self) -> None:
        """Remove the staging folder (and folders this writer created), and release the lock."""
        shutil.rmtree(self.staging, ignore_errors=True)
        self._lock.release()
        _remove_empty(self._created)

    def __enter__(self) -> OutputWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def _remove_empty(folders: Iterable[Path]) -> None:
    """Remove the folders (deepest first) that a failed writer created, when they are empty."""
    for f in folders:
        try:
            f.rmdir()
        except OSError:
            break


#: The ``last_change`` / ``update_time`` stamp written into GeoPackages (GDAL's ``OGR_CURRENT_DATE``), so that
#: two runs of one configuration write identical files; when the run happened is in ``manifest.json``.
FIXED_DATE = "2000-01-01T00:00:00.000Z"


@contextlib.contextmanager
def fixed_gpkg_dates() -> Iterator[None]:
    """Within the block, GeoPackage timestamps written by GDAL and by :mod:`leopardgeo.io.styles` are :data:`FIXED_DATE`."""
    before = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_DATE})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": before})


def write_layers(path: str | Path, layers: Mapping[str, gpd.GeoDataFrame], *, metadata: Mapping[str, str] | None = None) -> Path:
    """Append layers to a GeoPackage (GeoPackage 1.2, which QGIS 3.22 fully supports).

    Layer names must be in :data:`LAYERS` (or snake_case ``[a-z0-9_]``); each
    gets an ``IDENTIFIER`` and ``DESCRIPTION`` that QGIS shows, and
    ``metadata`` is stored as layer metadata.
    """
    path = Path(path)
    for name, gdf in layers.items():
        if not (name.replace("_", "").isalnum() and name == name.lower() and name[0].isalpha()):
            msg = f"layer name {name!r}: expected lowercase snake_case [a-z0-9_]."  # pragma: no cover
            raise ValueError(msg)
        exists = path.exists()
        with fixed_gpkg_dates():
            pyogrio.write_dataframe(
                gdf,
                path,
                layer=name,
                driver="GPKG",
                append=False,
                dataset_options=None if exists else {"VERSION": "1.2"},
                layer_options={
                    "IDENTIFIER": name,
                    "DESCRIPTION": LAYERS.get(name, name),
                    "SPATIAL_INDEX": "YES",
                },
                metadata=dict(metadata) if metadata else None,
            )
    return path




__getattr__ = submodule_getattr(__name__)  # submodules load on first access (PEP 562)
