"""``leopardgeo compare``: a scenario against its baseline, from two run folders or a run with scenarios.

:func:`read_run_tables` reads what the comparison needs from a run folder (or a scenario folder under
``<run>/scenarios/``); :func:`compare_folders` compares two and writes the comparison
(:func:`leopardgeo.runner.scenarios.write_comparison`); :func:`stored_comparisons` lists the comparisons a
run with ``[[scenarios]]`` already holds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import geopandas as gpd
import pyogrio
import rasterio

from leopardgeo.core.errors import AlignmentError, DataError
from leopardgeo.core.grid import Grid
from leopardgeo.runner.scenarios import SCENARIO_DIR, write_comparison
from leopardgeo.stages.compare import Comparison, RunTables, compare_runs

__all__ = ["compare_folders", "read_run_tables", "scenario_folder", "stored_comparisons"]

GPKG = "leopardgeo.gpkg"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        msg = f"{str(path)!r} cannot be read ({exc}). Rerun the run that wrote it."
        raise DataError(msg) from exc


def _raster(path: Path) -> tuple[np.ndarray, Grid] | None:
    if not path.is_file():
        return None
    with rasterio.open(path) as ds:
        a = ds.read(1, masked=True)
        grid = Grid(ds.crs, ds.transform, (ds.height, ds.width))
    arr = a.filled(np.nan if a.dtype.kind == "f" else 0)
    return arr, grid


def read_run_tables(folder: str | Path) -> tuple[RunTables, Grid, dict[str, Any]]:
    """What :func:`leopardgeo.stages.compare.compare_runs` needs from a run or scenario folder.

    Returns the tables, the grid (of ``patches.tif``) and the folder's ``scenario.json`` (empty for a run).

    Raises
    ------
    DataError
        If the folder lacks ``leopardgeo.gpkg`` with a ``links`` layer or ``patches.tif`` (not a run with links).
    """
    d = Path(folder)
    gpkg = d / GPKG
    if not gpkg.is_file() or not (d / "patches.tif").is_file():
        msg = (
            f"{str(d)!r}: expected a run folder (leopardgeo.gpkg and patches.tif), found neither. Give the folder "
            "`leopardgeo run --out` wrote, or one of its scenarios/<name> folders."
        )
        raise DataError(msg)
    names = {str(n) for n, _ in pyogrio.list_layers(gpkg)}
    if "links" not in names:
        msg = f"{str(gpkg)!r}: expected a `links` layer, found {sorted(names)}. Run with [links] enabled."
        raise DataError(msg)
    links = gpd.read_file(gpkg, layer="links")
    nodes = gpd.read_file(gpkg, layer="graph_nodes") if "graph_nodes" in names else gpd.read_file(gpkg, layer="patches")
    labels, grid = _raster(d / "patches.tif")
    metrics = _read_json(d / "metrics.json") if (d / "metrics.json").is_file() else {}
    scenario = _read_json(d / "scenario.json") if (d / "scenario.json").is_file() else {}
    capacity = None
    if (d / "capacity.csv").is_file():
        cap = pd.read_csv(d / "capacity.csv")
        if "zone_type" in cap.columns:
            rows = cap[cap["zone_type"] == "patch"]
            capacity = pd.DataFrame({"patch_id": rows["zone"].astype(int), "adults": rows["adults"].astype(float)})
        else:
            capacity = cap
    sites = pd.read_csv(d / "sites.csv") if (d / "sites.csv").is_file() else None
    source = scenario.get("source")
    if source is None and (d / "sites.json").is_file():
        source = _read_json(d / "sites.json").get("source")
    if source is None and (d / "run_config.toml").is_file():
        import tomllib

        source = tomllib.loads((d / "run_config.toml").read_text(encoding="utf-8")).get("sites", {}).get("source")
    cur = _raster(d / "current.tif")
    corr = _raster(d / "corridors.tif")
    tables = RunTables(
        links=links,
        nodes=pd.DataFrame(nodes.drop(columns="geometry")),
        metrics=metrics,
        labels=labels,
        capacity=capacity,
        sites=sites,
        source=source,
        current=cur[0] if cur else None,
        corridors=corr[0] if corr else None,
        source_patches=tuple(scenario["source_patches"]) if scenario.get("source_patches") is not None else None,
    )
    return tables, grid, scenario


def scenario_folder(run: str | Path, name: str) -> Path:
    """``<run>/scenarios/<name>``, checked to exist.

    Raises
    ------
    DataError
        Naming the scenarios the run holds.
    """
    d = Path(run) / SCENARIO_DIR / name
    if not d.is_dir():
        held = sorted(p.name for p in (Path(run) / SCENARIO_DIR).glob("*") if p.is_dir())
        msg = f"{str(run)!r}: expected a scenario {name!r}, found {held or 'no scenarios'}. Add it as [[scenarios]] and rerun."
        raise DataError(msg)
    return d


def stored_comparisons(run: str | Path) -> list[dict[str, Any]]:
    """The ``compare.json`` of every scenario a run folder holds (by name)."""
    base = Path(run) / SCENARIO_DIR
    out = []
    for d in sorted(p for p in base.glob("*") if p.is_dir()):
        if (d / "compare.json").is_file():
            out.append(_read_json(d / "compare.json"))
    return out


def _crossing_masks(scen_dir: Path, grid: Grid) -> dict[str, np.ndarray]:
    """Cells of each gap of the scenario's ``edits`` layer (a disc of half its width, at least a cell)."""
    from rasterio.features import rasterize

    gpkg = scen_dir / GPKG
    if not gpkg.is_file() or "edits" not in {str(n) for n, _ in pyogrio.list_layers(gpkg)}:
        return {}
    edits = gpd.read_file(gpkg, layer="edits")
    out = {}
    for name, grp in edits[edits["kind"] == "gap"].groupby("edit", sort=False):
        w = float(grp["width_m"].iloc[0]) or grid.cell_size_m
        geoms = grp.geometry.buffer(max(w / 2, grid.cell_size_m)).to_numpy()
        out[str(name)] = rasterize(((g, 1) for g in geoms), out_shape=grid.shape, transform=grid.transform, fill=0,
                                   all_touched=True, dtype="uint8").astype(bool)  # fmt: skip
    return out


def compare_folders(base: str | Path, scenario: str | Path, out_dir: str | Path | None = None, *,
                    overwrite: bool = False) -> Comparison:  # fmt: skip
    """Compare the run in ``scenario`` with the run in ``base``; write the comparison into ``out_dir`` if given.

    Raises
    ------
    AlignmentError
        If the two runs are on different grids.
    """
    from leopardgeo.io import OutputWriter

    b, gb, _ = read_run_tables(base)
    s, gs, meta = read_run_tables(scenario)
    if gb.shape != gs.shape or tuple(gb.transform) != tuple(gs.transform):
        msg = (
            f"compare: expected two runs on one grid, found {gb.shape} and {gs.shape} cells "
            f"({tuple(gb.transform)[:6]} vs {tuple(gs.transform)[:6]}). Run both with the same [grid]."
        )
        raise AlignmentError(msg)
    comp = compare_runs(b, s, crossing_masks=_crossing_masks(Path(scenario), gs))
    if out_dir is not None:
        name = meta.get("name") or Path(scenario).name
        with OutputWriter(out_dir, overwrite=overwrite, names=["compare.json"]) as w:
            write_comparison(w, "", comp, gs, scenario={**meta, "name": name})
    return comp
