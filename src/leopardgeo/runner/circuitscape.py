"""Run a Circuitscape ``.ini`` file unchanged and write Circuitscape-named outputs (``leopardgeo circuitscape``).

The four raster scenarios map onto :func:`leopardgeo.kernels.circuit.circuit_flow`
(pairwise, one-to-all, all-to-one; Circuitscape's per-pair short circuits) and
:func:`leopardgeo.kernels.circuit.advanced_flow` (advanced).  Outputs take
Circuitscape's names after the ``output_file`` prefix (``BASE``):

=================  ===========================================================
scenario           files
=================  ===========================================================
pairwise           ``BASE_resistances.out`` (id matrix, ``-1`` = not
                   connected), ``BASE_resistances_3columns.out``; with
                   ``write_cur_maps``: ``BASE_cum_curmap.asc`` and, unless
                   ``write_cum_cur_map_only``, ``BASE_curmap_A_B.asc``;
                   ``BASE_max_curmap.asc`` with ``write_max_cur_maps``;
                   ``BASE_voltmap_A_B.asc`` with ``write_volt_maps``
one-to-all         ``BASE_resistances.out`` (id, voltage per ampere), maps as
                   above named ``_ID``
all-to-one         maps as above named ``_ID``
advanced           ``BASE_curmap.asc``, ``BASE_voltmap.asc``
=================  ===========================================================

Pairwise voltage maps are referenced as Circuitscape's: the pair's first patch at 0 V, the
second at the effective resistance (1 A flows from the second to the first).  As in
Circuitscape, cells without data read 0 in the maps unless
``set_null_currents_to_nodata`` / ``set_null_voltages_to_nodata`` (then
-9999); ``write_as_tif`` writes GeoTIFFs.  Focal points given as a text list
(``id x y``) that fall in one cell share a node: the resistance between them
is 0 and each has the same resistances to the others (Circuitscape).
"""

from __future__ import annotations

import glob
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.io.circuitscape import (
    NODATA,
    CircuitscapeIni,
    Grid,
    read_graph,
    read_grid,
    read_ini,
    read_node_list,
    read_pairs_file,
    read_point_list,
    read_source_strengths,
    write_outputs,
)
from leopardgeo.kernels.circuit import advanced_flow, circuit_flow, network_resistances

__all__ = ["run_circuitscape"]

logger = logging.getLogger(__name__)


def _habitat(ini: CircuitscapeIni) -> tuple[Grid, np.ndarray]:
    """The habitat grid and the resistance it gives (conductances inverted, the mask applied)."""
    grid = read_grid(ini.file("habitat_file"), what="habitat_file")
    vals = grid.values.copy()
    if not ini.flag("habitat_map_is_resistances"):
        with np.errstate(divide="ignore"):
            vals = np.where(vals > 0, 1.0 / vals, np.nan)  # conductance 0: no connection (Circuitscape)
    if ini.flag("use_mask"):
        mask = read_grid(ini.file("mask_file"), grid, "mask_file").values
        vals[~(mask > 0)] = np.nan  # Circuitscape drops cells whose mask is 0 or no data
    return grid, vals


def _layer(ini: CircuitscapeIni, key: str, grid: Grid) -> np.ndarray:
    """A source / ground / focal / polygon layer as a grid of the habitat's shape (NaN = none)."""
    path = ini.file(key)
    assert path is not None
    if path.suffix.lower() == ".txt":
        out = np.full(grid.values.shape, np.nan)
        for val, r, c in read_point_list(path, grid, key):
            out[r, c] = val if np.isnan(out[r, c]) else out[r, c] + val
        return out
    return read_grid(path, grid, key).values


def _focal(ini: CircuitscapeIni, grid: Grid) -> tuple[np.ndarray, dict[int, int]]:
    """Focal id raster and the ids that share a cell with another (``alias -> id in the raster``)."""
    path = ini.file("point_file")
    assert path is not None
    lab = np.zeros(grid.values.shape, np.int64)
    alias: dict[int, int] = {}
    if path.suffix.lower() == ".txt":
        for val, r, c in read_point_list(path, grid, "point_file"):
            pid = int(val)
            if pid <= 0 or pid != val:
                msg = f"point_file {path}: expected whole focal ids > 0, found {val!r}. Renumber the points."
                raise DataError(msg)
            if lab[r, c] and lab[r, c] != pid:
                alias[pid] = int(lab[r, c])
            else:
                lab[r, c] = pid
        return lab, alias
    vals = read_grid(path, grid, "point_file").values
    ok = np.isfinite(vals) & (vals > 0)
    if (vals[ok] != np.round(vals[ok])).any():
        msg = f"point_file {path}: expected whole focal ids (0 or no data = none), found fractions. Fix the grid."
        raise DataError(msg)
    lab[ok] = vals[ok].astype(np.int64)
    return lab, alias


def _short_circuit(ini: CircuitscapeIni, grid: Grid) -> np.ndarray | None:
    if not ini.flag("use_polygons"):
        return None
    vals = read_grid(ini.file("polygon_file"), grid, "polygon_file").values
    ok = np.isfinite(vals) & (vals > 0)
    out = np.zeros(vals.shape, np.int64)
    out[ok] = vals[ok].astype(np.int64)
    return out


def _map(arr: np.ndarray, nodata_cells: np.ndarray, null_to_nodata: bool) -> np.ndarray:
    """Circuitscape's written map: 0 where nothing was solved; no data -> 0 or -9999 (``set_null_*_to_nodata``)."""
    out = np.nan_to_num(np.asarray(arr, dtype=np.float64), nan=0.0)
    if null_to_nodata:
        out[nodata_cells] = np.nan
    return out


def _matrix_text(ids: list[int], value: dict[tuple[int, int], float]) -> tuple[str, str]:
    """Circuitscape's resistance matrix (ids in the first row and column, 0 diagonal) and its 3-column form."""
    rows = [" ".join(["0"] + [str(i) for i in ids])]
    three = []
    for a in ids:
        cells = [str(a)]
        for b in ids:
            v = 0.0 if a == b else value.get((min(a, b), max(a, b)), -1.0)
            cells.append(repr(float(v)))
        rows.append(" ".join(cells))
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            three.append(f"{a} {b} {float(value.get((a, b), -1.0))!r}")
    return "\n".join(rows) + "\n", "\n".join(three) + "\n"


def run_circuitscape(path: str | Path, *, overwrite: bool = False, workers: int | None = None) -> list[Path]:
    """Run a Circuitscape ``.ini`` file and write its outputs under Circuitscape's names.

    Parameters
    ----------
    path
        The ``.ini`` file (raster data; pairwise, advanced, one-to-all or all-to-one).
    overwrite
        Replace earlier outputs of the same ``output_file``.
    workers
        Threads (default: all cores).

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    ConfigError, DataError, ResistanceError, OutputExistsError
        An unknown or unsupported key, missing or misaligned inputs, outputs
        that exist without ``overwrite``.
    """
    ini = read_ini(path)
    if ini.network:
        return _run_network(ini, overwrite=overwrite)
    grid, res = _habitat(ini)
    nodata_cells = np.isnan(res)
    base = ini.output_base
    ext = ".tif" if ini.flag("write_as_tif") else ".asc"
    cur_maps = ini.flag("write_cur_maps")
    cum_only = ini.flag("write_cum_cur_map_only")
    volt_maps = ini.flag("write_volt_maps")
    max_maps = ini.flag("write_max_cur_maps")
    null_cur = ini.flag("set_null_currents_to_nodata")
    null_volt = ini.flag("set_null_voltages_to_nodata")
    opts: dict[str, Any] = {
        "connectivity": 4 if ini.flag("connect_four_neighbors_only") else 8,
        "avg_resistances": ini.flag("connect_using_avg_resistances"),
        "solver": ini.solver,
        "workers": workers,
    }
    short = _short_circuit(ini, grid)
    files: dict[Path, Any] = {}

    def grid_file(name: str, arr: np.ndarray, null: bool) -> None:
        files[Path(f"{base}_{name}{ext}")] = (grid, _map(arr, nodata_cells, null), NODATA)

    if ini.mode == "advanced":
        out = advanced_flow(
            res,
            _layer(ini, "source_file", grid),
            _layer(ini, "ground_file", grid),
            ground_is_resistance=ini.flag("ground_file_is_resistances"),
            use_direct_grounds=ini.flag("use_direct_grounds"),
            use_unit_currents=ini.flag("use_unit_currents"),
            remove_src_or_gnd=ini.options["remove_src_or_gnd"],
            short_circuit=short,
            connectivity=opts["connectivity"],
            avg_resistances=opts["avg_resistances"],
            solver=opts["solver"],
        )
        if cur_maps:
            grid_file("curmap", out.current, null_cur)
        if volt_maps:
            grid_file("voltmap", out.voltage, null_volt)
        return write_outputs(files, overwrite=overwrite, stale=_earlier_outputs(base))

    lab, alias = _focal(ini, grid)
    pairs = exclude = None
    if ini.flag("use_included_pairs"):
        kind, listed = _pairs_file(ini, {int(i) for i in np.unique(lab[lab > 0])} | set(alias))
        pairs, exclude = (listed, None) if kind == "include" else (None, listed)
    strengths = None
    if ini.flag("use_variable_source_strengths"):
        if ini.mode == "pairwise":
            msg = f"{ini.path}: use_variable_source_strengths: expected False in pairwise mode, found True. Set it to False."
            raise ConfigError(msg)
        strengths = read_source_strengths(ini.file("variable_source_file"))
        for a, b in alias.items():
            strengths[b] = strengths.get(b, 1.0) + strengths.pop(a, 1.0)
    want_each = (cur_maps and not cum_only) or volt_maps
    max_maps = max_maps and (cur_maps or cum_only)
    result = circuit_flow(
        res,
        lab,
        mode=ini.mode,
        pairs=_map_pairs(pairs, alias),
        exclude_pairs=(_map_pairs(exclude, alias) or ()) if not alias else (),  # with shared cells: filtered below
        short_circuit=short,
        current_maps=cur_maps and not cum_only,
        voltage_maps=volt_maps,
        max_current=max_maps,
        source_strengths=strengths,
        **opts,
    )
    ids = sorted({int(i) for i in np.unique(lab[lab > 0])} | set(alias))
    if ini.mode == "pairwise":
        value = {(int(a), int(b)): float(r) for a, b, r in result.resistances.itertuples(index=False)}
        value = {k: (-1.0 if not np.isfinite(v) else v) for k, v in value.items()}
        for a, rep in alias.items():  # ids sharing a cell: 0 between them, the same resistance as their cell's id
            for b in ids:
                if b == a:
                    continue
                rb = alias.get(b, b)
                v = 0.0 if rb == rep else value.get((min(rep, rb), max(rep, rb)))
                if v is not None:
                    value[(min(a, b), max(a, b))] = v
        if pairs is not None or exclude is not None:
            keep = {tuple(sorted(p)) for p in pairs} if pairs is not None else None
            drop = {tuple(sorted(p)) for p in exclude} if exclude is not None else set()
            value = {k: v for k, v in value.items() if (keep is None or k in keep) and k not in drop}
        full, three = _matrix_text(ids, value)
        files[Path(f"{base}_resistances.out")] = full
        files[Path(f"{base}_resistances_3columns.out")] = three
    elif ini.mode == "one_to_all":
        got = {int(p): (-1.0 if not np.isfinite(v) else float(v)) for p, v in result.resistances.itertuples(index=False)}
        got.update({a: got.get(r, -1.0) for a, r in alias.items()})
        files[Path(f"{base}_resistances.out")] = "".join(f"{p} {got[p]!r}\n" for p in sorted(got))
    if cur_maps or cum_only:
        grid_file("cum_curmap", result.cum_current, null_cur)
    if (cur_maps or cum_only) and max_maps and result.max_current is not None:
        grid_file("max_curmap", result.max_current, null_cur)
    if want_each:
        for key, arr in result.currents.items():
            grid_file("curmap_" + _key(key), arr, null_cur)
        for key, arr in result.voltages.items():
            if isinstance(key, tuple):  # Circuitscape's pairwise reference: the pair's first patch at 0 V, the second at R
                at_a = arr[(lab == key[0]) & np.isfinite(arr)]
                arr = (at_a[0] - arr) if at_a.size else arr
            grid_file("voltmap_" + _key(key), arr, null_volt)
    return write_outputs(files, overwrite=overwrite, stale=_earlier_outputs(base))


def _run_network(ini: CircuitscapeIni, *, overwrite: bool) -> list[Path]:
    """Network (graph) mode, pairwise: effective resistances between the focal nodes of a resistor graph."""
    u, v, val = read_graph(ini.file("habitat_file"))
    if not ini.flag("habitat_map_is_resistances"):
        with np.errstate(divide="ignore"):
            keep = val > 0  # a zero conductance is no edge
            u, v, val = u[keep], v[keep], 1.0 / val[keep]
    focal = sorted(set(read_node_list(ini.file("point_file"))))
    pairs = None
    drop: set[tuple[int, int]] = set()
    if ini.flag("use_included_pairs"):
        kind, listed = _pairs_file(ini, set(focal))
        pairs, drop = (listed, set()) if kind == "include" else (None, set(listed))
    table = network_resistances(u, v, val, focal=focal, pairs=pairs)
    value = {
        (int(a), int(b)): (-1.0 if not np.isfinite(r) else float(r))
        for a, b, r in table.itertuples(index=False)
        if (int(a), int(b)) not in drop
    }
    full, three = _matrix_text(focal, value)
    base = ini.output_base
    files: dict[Path, Any] = {Path(f"{base}_resistances.out"): full, Path(f"{base}_resistances_3columns.out"): three}
    return write_outputs(files, overwrite=overwrite, stale=_earlier_outputs(base))


#: the files Circuitscape writes under an output name ``NAME``, after ``NAME_`` (ids: pair or node ids)
_OUTPUT_NAME = re.compile(
    r"(resistances\.out|resistances_3columns\.out|(cum_curmap|max_curmap|curmap|voltmap)\.(asc|tif|tiff|prj)"
    r"|(curmap|voltmap)_-?\d+(_-?\d+)?\.(asc|tif|tiff|prj))"
)


def _earlier_outputs(base: str | Path) -> list[Path]:
    """Files an earlier run wrote under the output name ``base`` (replaced as a set with ``--overwrite``).

    Only Circuitscape's own names count (``NAME_curmap_3_7.asc``, not ``NAME_curmap_notes.txt``), so another
    output name that starts with this one (``NAME_curmap.out``'s files) is not touched.
    """
    base = Path(base)
    prefix = base.name + "_"
    return sorted(
        p for p in base.parent.glob(f"{glob.escape(prefix)}*") if _OUTPUT_NAME.fullmatch(p.name[len(prefix):])
    )


def _pairs_file(ini: CircuitscapeIni, ids: set[int]) -> tuple[str, list[tuple[int, int]]]:
    """The ``included_pairs_file``, checked against the focal ids: a typo in it would change which pairs are solved.

    Raises
    ------
    DataError
        An id that is no focal node (in include and exclude mode alike), or no pair of two different
        focal nodes left to solve.
    """
    path = ini.file("included_pairs_file")
    kind, listed = read_pairs_file(path)
    unknown = sorted({i for p in listed for i in p} - ids)
    if unknown:
        msg = (
            f"{path}: expected ids of the focal nodes {sorted(ids)[:20]}{' ...' if len(ids) > 20 else ''}, found "
            f"{unknown[:10]} in its {kind} list. Fix the ids (a wrong id in an {kind} list changes which pairs are solved)."
        )
        raise DataError(msg)
    listed_set = {tuple(sorted(p)) for p in listed if p[0] != p[1]}
    every = {(a, b) for a in ids for b in ids if a < b}
    left = listed_set & every if kind == "include" else every - listed_set
    if not left:
        msg = (
            f"{path}: expected at least one pair of two different focal nodes to solve, found none left in {kind} "
            "mode. List the pairs to solve (include) or to skip (exclude)."
        )
        raise DataError(msg)
    return kind, listed


def _key(key: object) -> str:
    return "_".join(str(int(k)) for k in key) if isinstance(key, tuple) else str(int(key))  # type: ignore[call-overload]


def _map_pairs(pairs: list[tuple[int, int]] | None, alias: dict[int, int]) -> list[tuple[int, int]] | None:
    """Pairs with ids sharing a cell replaced by the id in the raster; pairs within one cell dropped."""
    if pairs is None:
        return None
    out = []
    for a, b in pairs:
        ra, rb = alias.get(a, a), alias.get(b, b)
        if ra != rb:
            out.append((min(ra, rb), max(ra, rb)))
    return list(dict.fromkeys(out))
