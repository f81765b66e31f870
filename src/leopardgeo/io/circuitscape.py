"""Circuitscape's inputs and outputs: .ini files, grids, point lists, pair and source-strength files.

Circuitscape (``included_pairs_file``; Circuitscape.jl ``read_included_pairs``)
reads two layouts, told apart by the first word of the file:

* a list: ``mode include`` or ``mode exclude`` on the first line, then one pair
  of focal ids per line;
* a matrix: ``min VALUE`` and ``max VALUE`` on the first two lines, then a
  table whose first row and first column hold the focal ids (the corner cell is
  ignored); as in Circuitscape, an entry above ``max`` counts as 0, and a pair
  is included when its entry (either triangle) is then at least ``min``.  The
  matrix layout is always an include list.

An ``.ini`` file (:func:`read_ini`) is read key by key as Circuitscape.jl does
(section headers are ignored); every key is checked against the ones
leopardgeo knows (:data:`INI_KEYS`), so a misspelt or unsupported option is an
error naming the key, never silently dropped.  Grids are ESRI ASCII (``.asc``)
or GeoTIFF, read with rasterio; point, source and ground lists are
Circuitscape's text lists (``id x y`` or ``value x y`` per line, map
coordinates).
"""

from __future__ import annotations

import configparser
import errno
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from leopardgeo.core.errors import ConfigError, DataError, OutputError, OutputExistsError

__all__ = [
    "INI_KEYS",
    "CircuitscapeIni",
    "Grid",
    "read_grid",
    "read_graph",
    "read_ini",
    "read_node_list",
    "read_pairs_file",
    "read_point_list",
    "read_source_strengths",
    "write_outputs",
]

#: Circuitscape's scenarios and leopardgeo's mode names.
SCENARIOS = {"pairwise": "pairwise", "advanced": "advanced", "one-to-all": "one_to_all", "all-to-one": "all_to_one"}
#: Keys that only steer Circuitscape's run (logging, memory, threads, precision): read, no effect on the answer.
RUNTIME_KEYS = frozenset(
    {
        "version", "log_file", "log_level", "print_timings", "print_rusages", "screenprint_log", "profiler_log_file",
        "parallelize", "max_parallel", "low_memory_mode", "preemptive_memory_release", "suppress_messages",
        "cholmod_batch_size", "precision", "use_64bit_indexing", "num_parallel", "point_file_contains_polygons",
    }
)  # fmt: skip
#: Keys that change the answer and that leopardgeo does not implement: an error when switched on.
UNSUPPORTED_TRUE = {
    "log_transform_maps": "write the maps and take log10 afterwards",
    "compress_grids": "compress the written grids afterwards (e.g. gzip)",
    "set_focal_node_currents_to_zero": "set the focal cells to 0 in the written current maps afterwards",
    "use_reclass_table": "reclassify the habitat grid before the run",
}
#: Every key leopardgeo reads (besides RUNTIME_KEYS and UNSUPPORTED_TRUE), with its default as in Circuitscape.jl.
INI_KEYS: dict[str, str] = {
    "data_type": "raster",
    "scenario": "",
    "habitat_file": "",
    "habitat_map_is_resistances": "true",
    "point_file": "",
    "connect_four_neighbors_only": "false",
    "connect_using_avg_resistances": "false",
    "use_polygons": "false",
    "polygon_file": "",
    "source_file": "",
    "ground_file": "",
    "ground_file_is_resistances": "true",
    "use_unit_currents": "false",
    "use_direct_grounds": "false",
    "remove_src_or_gnd": "keepall",
    "use_mask": "false",
    "mask_file": "",
    "use_included_pairs": "false",
    "included_pairs_file": "",
    "use_variable_source_strengths": "false",
    "variable_source_file": "",
    "output_file": "",
    "write_cur_maps": "false",
    "write_volt_maps": "false",
    "write_cum_cur_map_only": "false",
    "write_max_cur_maps": "false",
    "set_null_currents_to_nodata": "false",
    "set_null_voltages_to_nodata": "false",
    "write_as_tif": "false",
    "solver": "cg+amg",
}
_SOLVERS = {"cg+amg": "amg", "amg": "amg", "cholmod": "auto", "pardiso": "pardiso", "auto": "auto", "superlu": "superlu"}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
#: Circuitscape's no-data value in its written grids.
NODATA = -9999.0


@dataclass(frozen=True)
class CircuitscapeIni:
    """A Circuitscape ``.ini`` file, checked.

    Attributes
    ----------
    path
        The file.
    mode
        ``pairwise``, ``advanced``, ``one_to_all`` or ``all_to_one``.
    options
        Every known key with its value (Circuitscape.jl's default when absent),
        placeholders such as ``(Browse for ...)`` and ``None`` read as empty.
    """

    path: Path
    mode: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def network(self) -> bool:
        """Whether the landscape is a graph (``data_type = network``)."""
        return self.options["data_type"].strip().lower() == "network"

    def flag(self, key: str) -> bool:
        """A true / false option."""
        v = self.options[key].strip().lower()
        if v in _TRUE:
            return True
        if v in _FALSE:
            return False
        msg = f"{self.path}: {key}: expected True or False, found {self.options[key]!r}. Fix the .ini file."
        raise ConfigError(msg)

    def file(self, key: str, *, required: bool = True) -> Path | None:
        """An input file, looked up as given (relative to the current directory), then next to the .ini file."""
        v = self.options[key].strip()
        if not v:
            if required:
                msg = f"{self.path}: {key}: expected a file for the {self.mode} scenario, found none. Add '{key} = PATH'."
                raise ConfigError(msg)
            return None
        p = Path(v).expanduser()
        for cand in (p, self.path.parent / p):
            if cand.is_file():
                return cand
        msg = f"{self.path}: {key}: expected an existing file, found no file at {v!r} (nor next to the .ini file)."
        raise DataError(msg)

    @property
    def solver(self) -> str:
        """The solver used for Circuitscape's ``solver`` (cg+amg -> amg, cholmod -> a direct factor)."""
        v = self.options["solver"].strip().lower()
        if v not in _SOLVERS:
            msg = f"{self.path}: solver: expected one of {sorted(_SOLVERS)}, found {v!r}. Fix the .ini file."
            raise ConfigError(msg)
        return _SOLVERS[v]

    @property
    def output_base(self) -> Path:
        """``output_file`` without its ``.out`` suffix (Circuitscape's prefix of every output), next to the .ini if relative."""
        v = self.options["output_file"].strip()
        if not v:
            msg = f"{self.path}: output_file: expected a base name for the outputs, found none. Add 'output_file = out/run.out'."
            raise ConfigError(msg)
        p = Path(v).expanduser()
        if not p.is_absolute():
            p = Path.cwd() / p
        return p.with_suffix("") if p.suffix == ".out" else p


def _empty(value: str) -> bool:
    v = value.strip()
    return not v or v.lower() == "none" or (v.startswith("(") and v.endswith(")"))


def read_ini(path: str | Path) -> CircuitscapeIni:
    r"""Read and check a Circuitscape ``.ini`` file.

    Raises
    ------
    ConfigError
        An unknown key, an unsupported option switched on, an unknown
        scenario or data type; the message names the key and the fix.
    DataError
        The file is missing or unreadable.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "run.ini"
    >>> _ = f.write_text("[Circuitscape mode]\nscenario = pairwise\n[Habitat raster]\nhabitat_file = r.asc\n")
    >>> ini = read_ini(f)
    >>> ini.mode, ini.options["habitat_file"], ini.flag("connect_four_neighbors_only")
    ('pairwise', 'r.asc', False)
    """
    p = Path(path)
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",), comment_prefixes=("#", ";"))
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        msg = f"{p}: expected a readable Circuitscape .ini file, found {exc.strerror or exc}. Check the path."
        raise DataError(msg) from exc
    try:
        parser.read_string(text if text.lstrip().startswith("[") else "[options]\n" + text)
    except configparser.Error as exc:
        msg = f"{p}: expected 'key = value' lines under [section] headers, found {exc.message.splitlines()[0]}."
        raise ConfigError(msg) from exc
    given: dict[str, str] = {}
    for section in parser.sections():
        for key, value in parser.items(section):
            given[key.strip().lower()] = value
    opts = dict(INI_KEYS)
    for key, value in given.items():
        if key in RUNTIME_KEYS:
            continue
        if key in UNSUPPORTED_TRUE:
            if value.strip().lower() in _TRUE:
                msg = (
                    f"{p}: {key} = {value.strip()}: expected False (leopardgeo does not implement it), found True. "
                    f"Set it to False and {UNSUPPORTED_TRUE[key]}."
                )
                raise ConfigError(msg)
            continue
        if key not in INI_KEYS:
            msg = (
                f"{p}: {key}: expected one of Circuitscape's keys that leopardgeo reads ({', '.join(sorted(INI_KEYS))}), "
                "found an unknown key. Fix its spelling or remove it."
            )
            raise ConfigError(msg)
        opts[key] = "" if _empty(value) else value.strip()
    data_type = opts["data_type"].strip().lower()
    if data_type not in ("raster", "network"):
        msg = f"{p}: data_type: expected raster or network, found {opts['data_type']!r}. Fix the .ini file."
        raise ConfigError(msg)
    scen = opts["scenario"].strip().lower()
    if scen not in SCENARIOS:
        msg = f"{p}: scenario: expected one of {sorted(SCENARIOS)}, found {opts['scenario']!r}. Fix the .ini file."
        raise ConfigError(msg)
    if data_type == "network" and scen != "pairwise":
        msg = (
            f"{p}: scenario = {scen} with data_type = network: expected pairwise (leopardgeo's network mode), found "
            f"{scen}. Use scenario = pairwise, or give the landscape as a raster."
        )
        raise ConfigError(msg)
    return CircuitscapeIni(path=p, mode=SCENARIOS[scen], options=opts)


@dataclass(frozen=True)
class Grid:
    """A raster read for a Circuitscape run: values (float64, NaN = no data) and the georeferencing."""

    values: np.ndarray
    transform: Any
    crs: Any


def read_grid(path: str | Path, like: Grid | None = None, what: str = "grid") -> Grid:
    """Read an ESRI ASCII grid or GeoTIFF (first band) with rasterio; no data becomes NaN.

    With ``like``, the grid must have its shape (and cell size and origin).
    """
    import rasterio

    p = Path(path)
    try:
        with rasterio.open(p) as src:
            arr = src.read(1, masked=True).astype(np.float64).filled(np.nan)
            transform, crs = src.transform, src.crs
    except rasterio.errors.RasterioIOError as exc:
        msg = f"{what} {p}: expected an ESRI ASCII grid or GeoTIFF, found {exc}. Check the file."
        raise DataError(msg) from exc
    if like is not None:
        if arr.shape != like.values.shape:
            msg = (
                f"{what} {p}: expected the habitat grid's {like.values.shape[0]} rows x {like.values.shape[1]} columns, "
                f"found {arr.shape[0]} x {arr.shape[1]}. Resample it onto the habitat grid."
            )
            raise DataError(msg)
        if not transform.almost_equals(like.transform, precision=1e-6 * max(abs(like.transform.a), 1e-12)):
            msg = (
                f"{what} {p}: expected the habitat grid's origin and cell size {tuple(like.transform)[:6]}, found "
                f"{tuple(transform)[:6]}. Align it with the habitat grid."
            )
            raise DataError(msg)
    return Grid(arr, transform, crs)


def read_point_list(path: str | Path, like: Grid, what: str = "points") -> list[tuple[float, int, int]]:
    """Circuitscape's text list: ``value x y`` per line (map coordinates) -> ``(value, row, col)``.

    Raises
    ------
    DataError
        A line that is not three numbers, or a point outside the grid.
    """
    p = Path(path)
    out = []
    inv = ~like.transform
    nr, nc = like.values.shape
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        try:
            val, x, y = (float(v) for v in parts[:3])
            if len(parts) != 3:
                raise ValueError
        except ValueError:
            msg = f"{what} {p}, line {i}: expected 'value x y' (three numbers), found {line.strip()!r}. Fix the line."
            raise DataError(msg) from None
        col_f, row_f = inv * (x, y)
        r, c = int(np.floor(row_f)), int(np.floor(col_f))
        if not (0 <= r < nr and 0 <= c < nc):
            msg = f"{what} {p}, line {i}: expected a point inside the habitat grid, found ({x}, {y}) outside it."
            raise DataError(msg)
        out.append((val, r, c))
    return out


def read_graph(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Circuitscape's network file: ``node node value`` per line -> the two node arrays and the values."""
    p = Path(path)
    rows = []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        try:
            if len(parts) != 3:
                raise ValueError
            a, b, v = (float(x) for x in parts)
            if a != int(a) or b != int(b):
                raise ValueError
        except ValueError:
            msg = f"graph {p}, line {i}: expected 'node node value' (two whole node ids, a number), found {line.strip()!r}."
            raise DataError(msg) from None
        rows.append((int(a), int(b), v))
    if not rows:
        msg = f"graph {p}: expected one 'node node value' line per edge, found none. Check the file."
        raise DataError(msg)
    arr = np.array(rows, dtype=np.float64)
    return arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2]


def read_node_list(path: str | Path) -> list[int]:
    """Circuitscape's focal node file of a network: one node id per line (the first column)."""
    p = Path(path)
    out = []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        try:
            v = float(parts[0])
            if v != int(v):
                raise ValueError
        except ValueError:
            msg = f"focal nodes {p}, line {i}: expected a whole node id, found {line.strip()!r}."
            raise DataError(msg) from None
        out.append(int(v))
    return out


def read_source_strengths(path: str | Path) -> dict[int, float]:
    """Circuitscape's ``variable_source_file``: ``id strength`` per line -> ``{id: amperes}``."""
    p = Path(path)
    out: dict[int, float] = {}
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        try:
            if len(parts) != 2:
                raise ValueError
            out[int(float(parts[0]))] = float(parts[1])
        except ValueError:
            msg = f"source strengths {p}, line {i}: expected 'id strength' (two numbers), found {line.strip()!r}."
            raise DataError(msg) from None
    return out


def write_outputs(files: dict[Path, Any], *, overwrite: bool, stale: Iterable[Path] = ()) -> list[Path]:
    """Write Circuitscape's outputs all-or-nothing: every file to a temporary folder first, then moved in place.

    ``files`` maps a path to either text (``str``) or a ``(Grid, array, nodata)``
    triple; grids are written as ESRI ASCII (``.asc``) or GeoTIFF (``.tif``)
    with rasterio.  ``stale``: files of an earlier output set under the same name
    that this one does not write (e.g. per-pair maps of an earlier run), removed with
    ``overwrite`` so the folder holds one run's outputs, not a mix.  When a file cannot
    be moved in place, the files moved before it are taken out again and the earlier
    ones put back.

    Raises
    ------
    OutputExistsError
        A file exists and ``overwrite`` is false (nothing is written).
    OutputError
        A file cannot be written (nothing is left half-written, earlier outputs are kept).
    """
    import rasterio

    exists = [f for f in files if f.exists()]
    if exists and not overwrite:
        msg = (
            f"{exists[0]}: expected no earlier output, found {len(exists)} existing file(s). Use --overwrite or "
            "another output_file."
        )
        raise OutputExistsError(msg)
    stale = [f for f in stale if f not in files and f.is_file()] if overwrite else []
    folders = {f.parent for f in [*files, *stale]}
    staged: list[tuple[Path, Path]] = []
    tmp: dict[Path, Path] = {}
    backup: dict[Path, Path] = {}  # an earlier file -> where it waits (in the staging folder) until all are in place
    moved: list[Path] = []
    target: Path | None = None
    try:
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            tmp[folder] = Path(tempfile.mkdtemp(prefix=".cs-", dir=folder))
        for target, content in files.items():
            stage = tmp[target.parent] / target.name
            if isinstance(content, str):
                stage.write_text(content, encoding="utf-8")
            else:
                grid, arr, nodata = content
                data = np.where(np.isnan(arr), nodata, arr).astype(np.float64)
                driver = "GTiff" if target.suffix.lower() in (".tif", ".tiff") else "AAIGrid"
                profile = {
                    "driver": driver, "width": data.shape[1], "height": data.shape[0], "count": 1,
                    "dtype": "float64", "transform": grid.transform, "nodata": nodata,
                }  # fmt: skip
                if grid.crs is not None:
                    profile["crs"] = grid.crs
                with rasterio.open(stage, "w", **profile) as dst:
                    dst.write(data, 1)
            staged.append((stage, target))
        news = [t for _, t in staged] + [t.with_suffix(".prj") for s, t in staged if s.with_suffix(".prj").exists()]
        for target in news:
            if target.is_dir():
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
        earlier_prj = [t.with_suffix(".prj") for t in files if t.suffix.lower() == ".asc"]  # a map's old CRS goes too
        for target in dict.fromkeys([*news, *earlier_prj, *stale]):
            if target.exists():
                backup[target] = tmp[target.parent] / f".old-{target.name}"
                os.replace(target, backup[target])
        for stage, target in staged:
            for side in stage.parent.glob(stage.name + ".*"):  # GDAL side files (.aux.xml) stay out
                side.unlink()
            os.replace(stage, target)
            moved.append(target)
            prj = stage.with_suffix(".prj")
            if prj.exists():
                target = target.with_suffix(".prj")
                os.replace(prj, target)
                moved.append(target)
    except OSError as exc:
        for done in moved:  # back to the earlier state: nothing of this call stays, the earlier files return
            done.unlink(missing_ok=True)
        for orig, kept in backup.items():
            if kept.exists():
                os.replace(kept, orig)
        where = target or exc.filename or "output"
        msg = (
            f"{where}: expected to write Circuitscape's outputs, found {exc.strerror or exc}. Nothing was written; "
            "free the path (or the disk) and run again."
        )
        raise OutputError(msg) from exc
    finally:
        for leftover in tmp.values():  # only this call's staging folders (and the replaced files)
            for f in leftover.iterdir():
                f.unlink()
            leftover.rmdir()
    return [t for _, t in staged]


def _bad(path: Path, what: str) -> DataError:
    return DataError(
        f"{path}: expected a Circuitscape pairs file ('mode include' / 'mode exclude' then one pair of ids per "
        f"line, or 'min' / 'max' lines then an id matrix), found {what}. Fix the file or list the pairs in "
        "[circuit] include_pairs / exclude_pairs."
    )


def _whole_id(path: Path, text: str | float) -> int:
    """A focal node id of a pairs file (``3`` or ``3.0``); a fraction is refused, not truncated."""
    value = float(text)
    if not value.is_integer():
        raise _bad(path, f"the id {value:g} (ids are whole numbers)")
    return int(value)


def read_pairs_file(path: str | Path) -> tuple[str, list[tuple[int, int]]]:
    r"""Read a Circuitscape include / exclude pairs file.

    Parameters
    ----------
    path
        Text file in either of Circuitscape's layouts (module docstring).

    Returns
    -------
    tuple
        ``(mode, pairs)``: ``"include"`` or ``"exclude"``, and the pairs as
        sorted ``(a, b)`` tuples with ``a < b``, without repeats.

    Raises
    ------
    DataError
        If the file is missing or in neither layout.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "pairs.txt"
    >>> _ = f.write_text("mode exclude\n2 1\n3 4\n")
    >>> read_pairs_file(f)
    ('exclude', [(1, 2), (3, 4)])
    >>> _ = f.write_text("min 1\nmax 1\n0 1 2 3\n1 0 1 0\n2 1 0 1\n3 0 1 0\n")
    >>> read_pairs_file(f)
    ('include', [(1, 2), (2, 3)])
    """
    p = Path(path)
    try:
        lines = [ln.split() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except OSError as exc:
        msg = f"{p}: expected a readable Circuitscape pairs file, found {exc.strerror or exc}. Check the path."
        raise DataError(msg) from exc
    if not lines:
        raise _bad(p, "an empty file")
    head = lines[0][0].lower()
    try:
        if head == "mode":
            mode = lines[0][1].lower() if len(lines[0]) > 1 else ""
            if mode not in ("include", "exclude"):
                raise _bad(p, f"mode {mode!r}")
            pairs = set()
            for row in lines[1:]:
                if len(row) != 2:
                    raise _bad(p, f"the line {' '.join(row)!r}")
                a, b = (_whole_id(p, v) for v in row)
                if a != b:
                    pairs.add((min(a, b), max(a, b)))
            return mode, sorted(pairs)
        if head == "min":
            lo = float(lines[0][1])
            if len(lines) < 3 or lines[1][0].lower() != "max":
                raise _bad(p, "a 'min' line without a 'max' line after it")
            hi = float(lines[1][1])
            table = np.array([[float(v) for v in row] for row in lines[2:]])
            if table.ndim != 2 or table.shape[0] != table.shape[1]:
                raise _bad(p, f"a matrix of {len(lines) - 2} rows of unequal or non-square length")
            ids = [_whole_id(p, v) for v in table[0, 1:]]
            if [_whole_id(p, v) for v in table[1:, 0]] != ids:
                raise _bad(p, "row ids that differ from the column ids")
            vals = table[1:, 1:]
            ok = np.where(vals > hi, 0.0, vals) >= lo
            keep = set()
            for i, j in combinations(range(len(ids)), 2):
                if ok[i, j] or ok[j, i]:
                    keep.add((min(ids[i], ids[j]), max(ids[i], ids[j])))
            return "include", sorted(keep)
    except (ValueError, IndexError) as exc:
        if isinstance(exc, DataError):
            raise
        raise _bad(p, f"unreadable numbers ({exc})") from exc
    raise _bad(p, f"a first word {lines[0][0]!r}")
