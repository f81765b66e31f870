"""Reports on a run's outputs: the least-cost link table (terminal, CSV, JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

import geopandas as gpd
import pyogrio

from leopardgeo._crs import M_PER_KM
from leopardgeo.errors import DataError
from leopardgeo.io import GPKG_NAME, OutputWriter

__all__ = ["LINK_TABLE_COLUMNS", "link_table", "read_run_layer", "write_link_table"]

#: Columns of the link table, in order.
LINK_TABLE_COLUMNS = (
    "from_id",
    "from_name",
    "to_id",
    "to_name",
    "cwd",
    "path_km",
    "euclid_km",
    "cwd_to_euclid",
    "cwd_to_lcp_length",
    "countries",
)


def read_run_layer(out_dir: str | Path, layer: str) -> gpd.GeoDataFrame:
    """Read a layer of a run's ``leopardgeo.gpkg``.

    Raises
    ------
    DataError
        If the folder holds no run, or the run has no such layer (naming the
        command that makes it).
    """
    gpkg = Path(out_dir) / GPKG_NAME
    if not gpkg.is_file():
        msg = f"{str(out_dir)!r}: expected a run folder holding {GPKG_NAME}, found none. Run `leopardgeo run --out {out_dir}`."
        raise DataError(msg)
    layers = [str(n) for n in pyogrio.list_layers(gpkg)[:, 0]]
    if layer not in layers:
        msg = (
            f"{gpkg}: expected a layer {layer!r}, found {layers}. "
            "Build it with `leopardgeo links` (or `leopardgeo run` with [links] enabled = true)."
        )
        raise DataError(msg)
    return pyogrio.read_dataframe(gpkg, layer=layer)


#: Link attributes added by later stages, copied into the table when present.
OPTIONAL_COLUMNS = ("corridor_width_m", "protected_frac", "eff_resistance", "pinch_current")


def link_table(links: pd.DataFrame, nodes: pd.DataFrame | None = None) -> pd.DataFrame:
    """The link table: from, to (with patch names), cwd, path km, ratios; sorted by cwd.

    Examples
    --------
    >>> links = pd.DataFrame({"patch_a": [1], "patch_b": [2], "cwd": [900.0], "lcp_length_m": [300.0],
    ...                       "euclid_m": [250.0], "cwd_to_euclid": [3.6], "cwd_to_lcp_length": [3.0],
    ...                       "countries": ["RUS"]})
    >>> link_table(links)[["from_id", "to_id", "cwd", "path_km"]].to_dict("records")
    [{'from_id': 1, 'to_id': 2, 'cwd': 900.0, 'path_km': 0.3}]
    """
    names = {}
    if nodes is not None and "name" in nodes.columns:
        names = dict(zip(nodes["patch_id"].astype(int), nodes["name"].fillna("").astype(str), strict=True))
    t = pd.DataFrame(
        {
            "from_id": links["patch_a"].astype(int),
            "from_name": [names.get(int(i), "") for i in links["patch_a"]],
            "to_id": links["patch_b"].astype(int),
            "to_name": [names.get(int(i), "") for i in links["patch_b"]],
            "cwd": links["cwd"].astype(float),
            "path_km": links["lcp_length_m"].astype(float) / M_PER_KM,
            "euclid_km": links["euclid_m"].astype(float) / M_PER_KM,
            "cwd_to_euclid": links["cwd_to_euclid"].astype(float),
            "cwd_to_lcp_length": links["cwd_to_lcp_length"].astype(float),
            "countries": ["" if pd.isna(v) else str(v) for v in links["countries"]],
        }
    )
    for col in OPTIONAL_COLUMNS:  # from the corridor, circuit and pinch-point stages, when they ran
        if col in links.columns:
            t[col] = links[col].astype(float).to_numpy()
    return t.sort_values(["cwd", "from_id", "to_id"], kind="stable").reset_index(drop=True)


def write_link_table(table: pd.DataFrame, out_dir: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write ``links.csv`` and ``links.json`` into ``out_dir`` (atomically; refuses to overwrite)."""
    records = [
        {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
        for row in table.to_dict("records")
    ]
    with OutputWriter(out_dir, overwrite=overwrite, names=["links.csv", "links.json"]) as w:
        table.to_csv(w.path("links.csv"), index=False)
        w.text("links.json", json.dumps({"columns": list(table.columns), "links": records}, indent=1, ensure_ascii=False))
    return [Path(out_dir) / "links.csv", Path(out_dir) / "links.json"]
