"""QGIS styles (QML) for a run's GeoPackage layers and GeoTIFFs, so they open styled in QGIS 3.22+.

* :func:`layer_qml` — the QML of one vector layer, from its name, attributes
  (class breaks come from the data) and geometry type; layers it does not know
  get a plain style by geometry type.
* :func:`write_layer_styles` — store those styles in the GeoPackage's
  ``layer_styles`` table, as QGIS's "Save style → In database" does, each as
  the layer's default, so QGIS applies them when the layer is added.
* :func:`raster_qml` / :func:`write_raster_style` — a ``<name>.qml`` beside a
  GeoTIFF (QGIS loads a same-name ``.qml`` automatically): singleband
  pseudocolor for continuous rasters (limits at the 2nd and 98th percentile),
  paletted for class rasters (``patches.tif``, ``territories.tif``...).
* :func:`write_run_styles` — both, for every output of a run folder.

Call them after the outputs exist: the styles read the data for class breaks
and limits, so re-run them whenever a layer or raster is rewritten.

Examples
--------
>>> import xml.etree.ElementTree as ET
>>> import pandas as pd
>>> qml = layer_qml("territories", pd.DataFrame({"sex": ["F", "M", "F"]}), "polygon")
>>> root = ET.fromstring(qml)
>>> root.get("version")[:4], root.find("renderer-v2").get("type")
('3.22', 'categorizedSymbol')
>>> [c.get("value") for c in root.iter("category")]
['F', 'M']
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import sqlite3
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import pyogrio

from leopardgeo.core.errors import DataError

# The QML builders and the raster styles live beside this module; their names are importable from here too.
from leopardgeo.io.qml import (  # noqa: F401
    _CROSS_ORANGE,
    _DOCTYPE,
    _GEOM_CODE,
    _MAGMA,
    _NS,
    _QUALITATIVE,
    _RDYLBU_R,
    _REDS,
    _SCALE,
    _SYMBOL_TYPE,
    _VIRIDIS,
    _YLGN,
    MAX_PALETTE,
    QGIS_VERSION,
    _categorized,
    _ddp,
    _document,
    _fill_layer,
    _fmt,
    _gradient,
    _graduated,
    _hex_rgba,
    _labeling,
    _line_layer,
    _marker_layer,
    _num,
    _options,
    _qcolor,
    _ramp,
    _renderer,
    _rule_based,
    _serialise,
    _single,
    _symbol,
)
from leopardgeo.io.rasterstyles import (  # noqa: F401
    RASTER_STYLES,
    _min_max_origin,
    _paletted,
    _pipe_tail,
    _pseudocolor,
    _raster_document,
    _raster_kind,
    _raster_sample,
    _unique_values,
    raster_qml,
)

__all__ = [
    "LAYER_STYLES",
    "QGIS_VERSION",
    "RASTER_STYLES",
    "STYLE_NAME",
    "layer_qml",
    "raster_qml",
    "write_layer_styles",
    "write_raster_style",
    "write_run_styles",
]

logger = logging.getLogger(__name__)

#: ``styleName`` of the default style in ``layer_styles`` (QGIS limits it to 30 characters).
STYLE_NAME = "leopardgeo"
#: ``styleName`` of the alternative links style highlighting cross-border links.
CROSS_BORDER_STYLE_NAME = "leopardgeo cross-border"

#: Vector layers with a dedicated style -> what it shows.
LAYER_STYLES: dict[str, str] = {
    "study_area": "outline",
    "coastline": "blue line",
    "borders": "dashed dark red line",
    "protected_areas": "green hatched fill with outline",
    "patches": "fill graduated by mean_quality",
    "graph_nodes": "points",
    "links": "line colour and width graduated by score (else cwd); cross-border links under an orange dashed halo",
    "corridors": "fill graduated by cwd (low = best = strongest colour)",
    "pinch_points": "points graduated by pinch_current",
    "barriers": "points graduated by score",
    "border_crossings": "star markers graduated by current",
    "transboundary_patches": "star markers graduated by current_share",
    "crossing_routes": "star markers graduated by importance_dpc",
    "border_permeability": "line colour and width graduated by current_sum",
    "territories": "semi-transparent fill categorized by sex (F / M)",
    "sites": "outline labelled by name",
    "changes": "scenario comparison: links categorized by status (lost red, gained green, lengthened orange, ...)",
    "edits": "scenario edits: lines dark red, gaps white circles, polygons by effect",
}



# ---------------------------------------------------------------------- vector styles
def _geometry_kind(geometry_type: str | None) -> str:
    """``"point"`` / ``"line"`` / ``"polygon"`` from an OGR or GeoPackage geometry type name."""
    g = (geometry_type or "").lower()
    if "point" in g:
        return "point"
    if "polygon" in g or "surface" in g:
        return "polygon"
    if "line" in g or "curve" in g:
        return "line"
    return "polygon"


def _numeric(data: pd.DataFrame | None, column: str, min_distinct: int = 2) -> np.ndarray | None:
    """Finite values of a numeric column, or None if absent / not numeric / fewer than ``min_distinct`` distinct values."""
    if data is None or column not in data.columns:
        return None
    s = data[column]
    if s.dtype == bool or not pd.api.types.is_numeric_dtype(s):
        return None
    v = s.to_numpy(dtype=float, na_value=np.nan)
    v = v[np.isfinite(v)]
    return v if np.unique(v).size >= min_distinct else None


def _quantile_breaks(values: np.ndarray, n: int = 5) -> list[float]:
    b = np.unique(np.quantile(values, np.linspace(0, 1, n + 1)))
    return [float(x) for x in b]


def _links_style(kind: str, data: pd.DataFrame | None) -> ET.Element:
    cross = data is not None and "crosses_border" in data.columns
    score = _numeric(data, "score", min_distinct=1)  # fixed classes: one value is enough
    if score is not None:
        attr, breaks, classification = "score", [0.0, 20.0, 40.0, 60.0, 80.0, 100.0], "EqualInterval"
        breaks[0], breaks[-1] = min(0.0, float(score.min())), max(100.0, float(score.max()))
        colors = _VIRIDIS[::-1]  # high score = better = dark and wide
        widths = list(np.linspace(0.4, 1.9, 5))
    else:
        cwd = _numeric(data, "cwd")
        if cwd is None:
            return _single(kind, [_line_layer("#31688e", 0.8)])
        attr, breaks, classification = "cwd", _quantile_breaks(cwd), "Quantile"
        colors = _VIRIDIS  # low cwd = better = dark and wide
        widths = list(np.linspace(1.9, 0.4, len(breaks) - 1))

    def layers(i: int, color: str) -> list[dict[str, Any]]:
        w = widths[min(i, len(widths) - 1)]
        out: list[dict[str, Any]] = []
        if cross:
            halo = _line_layer(_CROSS_ORANGE, w + 1.6, style="dash")
            halo["_ddp"] = {"enabled": '"crosses_border"'}
            out.append(halo)
        out.append(_line_layer(color, w))
        return out

    return _graduated(kind, attr, breaks, layers, colors, classification=classification)


def _links_cross_border_style(kind: str, data: pd.DataFrame | None) -> ET.Element:
    """Rule-based links style: cross-border links thick dashed orange, the others thin grey."""
    return _rule_based(
        kind,
        [
            ('"crosses_border" = true', "crosses a border", [_line_layer(_CROSS_ORANGE, 1.6, style="dash")]),
            ('"crosses_border" = false OR "crosses_border" IS NULL', "within one country", [_line_layer("#6e6e6e", 0.5)]),
        ],
        "links/cross-border",
    )


def _default_layers(kind: str) -> list[dict[str, Any]]:
    if kind == "point":
        return [_marker_layer("#7f7f7f", 2.4)]
    if kind == "line":
        return [_line_layer("#555555", 0.5)]
    return [_fill_layer("#bdbdbd", 0.5, "#555555", 0.3)]


def _renderer_for(layer: str, kind: str, data: pd.DataFrame | None) -> tuple[ET.Element, ET.Element | None]:
    """Renderer (and labeling) of a known layer; unknown layers and geometry mismatches get the default."""
    if layer == "links" and kind == "line":
        return _links_style(kind, data), None
    if layer == "study_area" and kind == "polygon":
        return _single(kind, [_fill_layer("#000000", 0.0, "#4d4d4d", 0.6, style="no")]), None
    if layer == "coastline" and kind == "line":
        return _single(kind, [_line_layer("#3a7bbf", 0.5)]), None
    if layer == "borders" and kind == "line":
        return _single(kind, [_line_layer("#8b0000", 0.8, style="dash")]), None
    if layer == "protected_areas" and kind == "polygon":
        return _single(
            kind, [_fill_layer("#2e7d32", 0.15, None, 0.0), _fill_layer("#2e7d32", 1.0, "#1b5e20", 0.5, style="b_diagonal")]
        ), None
    if layer == "patches" and kind == "polygon":
        q = _numeric(data, "mean_quality")
        if q is None:
            return _single(kind, [_fill_layer("#66bb6a", 0.8, "#1b5e20", 0.2)]), None
        return _graduated(
            kind, "mean_quality", _quantile_breaks(q), lambda i, c: [_fill_layer(c, 0.85, "#1b5e20", 0.2)], _YLGN
        ), None
    if layer == "graph_nodes" and kind == "point":
        return _single(kind, [_marker_layer("#1b5e20", 2.6)]), None
    if layer == "corridors" and kind == "polygon":
        v = _numeric(data, "cwd")
        if v is None:
            return _single(kind, [_fill_layer("#31688e", 0.5, None, 0.0)]), None
        return _graduated(kind, "cwd", _quantile_breaks(v), lambda i, c: [_fill_layer(c, 0.6, None, 0.0)], _VIRIDIS[::-1]), None
    if layer in ("pinch_points", "barriers", "border_crossings", "transboundary_patches", "crossing_routes") and kind == "point":
        attr, colors, shape, size = {
            "pinch_points": ("pinch_current", _MAGMA, "circle", 2.4),
            "barriers": ("score", _REDS, "circle", 2.4),
            "border_crossings": ("current", _MAGMA, "star", 4.2),
            "transboundary_patches": ("current_share", _MAGMA, "star", 4.8),
            "crossing_routes": ("importance_dpc", _REDS, "star", 4.8),
        }[layer]
        v = _numeric(data, attr)
        if v is None:
            return _single(kind, [_marker_layer(colors[len(colors) // 2], size, shape)]), None
        breaks = _quantile_breaks(v)
        return _graduated(
            kind, attr, breaks, lambda i, c: [_marker_layer(c, size + 0.5 * i if layer == "barriers" else size, shape)], colors
        ), None
    if layer == "border_permeability" and kind == "line":
        v = _numeric(data, "current_sum")
        if v is None:
            return _single(kind, [_line_layer("#8b0000", 1.0)]), None
        breaks = _quantile_breaks(v)
        return _graduated(kind, "current_sum", breaks, lambda i, c: [_line_layer(c, 0.6 + 0.6 * i)], _MAGMA), None
    if layer == "changes" and kind == "line":
        cats = [
            ("lost", "lost", [_line_layer("#d62728", 1.6)]),
            ("gained", "gained", [_line_layer("#2ca02c", 1.2, "dash")]),
            ("lengthened", "lengthened (costlier)", [_line_layer("#ff7f0e", 1.4)]),
            ("shortened", "shortened (cheaper)", [_line_layer("#1f77b4", 1.4)]),
            ("merged", "merged (patches joined)", [_line_layer("#17becf", 1.4)]),
            ("unchanged", "unchanged", [_line_layer("#9e9e9e", 0.5, alpha=0.7)]),
        ]
        return _categorized(kind, "status", cats), None
    if layer == "edits":
        if kind == "polygon":
            cats = [
                ("restoration", "restoration", [_fill_layer("#2ca02c", 0.45, "#1b5e20", 0.6)]),
                ("development", "development", [_fill_layer("#8c564b", 0.5, "#4e342e", 0.6)]),
                ("fire", "fire", [_fill_layer("#ff7f0e", 0.5, "#bf360c", 0.6)]),
            ]
            return _categorized(kind, "effect", cats), None
        if kind == "line":
            return _single(kind, [_line_layer("#8b0000", 1.6)]), None
        return _single(kind, [_marker_layer("#ffffff", 4.0, "circle", outline="#000000")]), None
    if layer == "territories" and kind == "polygon":
        cats = [
            ("F", "female", [_fill_layer("#e7298a", 0.35, "#ad1457", 0.4)]),
            ("M", "male", [_fill_layer("#1f78b4", 0.35, "#0d47a1", 0.4)]),
        ]
        return _categorized(kind, "sex", cats), None
    if layer in ("habitat_nodes", "node_links") and kind in ("polygon", "line"):
        attr = "dPC" if layer == "habitat_nodes" else "dPC_link"
        v = _numeric(data, attr)
        if v is None:
            return _single(kind, _default_layers(kind)), None
        if kind == "polygon":
            return _graduated(kind, attr, _quantile_breaks(v), lambda i, c: [_fill_layer(c, 0.85, "#1b5e20", 0.2)], _YLGN), None
        return _graduated(kind, attr, _quantile_breaks(v), lambda i, c: [_line_layer(c, 0.4 + 0.4 * i)], _MAGMA), None
    if layer == "sites" and kind == "polygon":
        lab = _labeling("name") if data is None or "name" in data.columns else None
        return _single(kind, [_fill_layer("#6a1b9a", 0.0, "#6a1b9a", 0.8, style="no")]), lab
    return _single(kind, _default_layers(kind)), None


def layer_qml(layer: str, data: pd.DataFrame | None = None, geometry_type: str | None = "polygon") -> str:
    """QML (QGIS style XML) for a vector layer.

    Parameters
    ----------
    layer
        Layer name: one of :data:`LAYER_STYLES` for its dedicated style;
        any other name gets a plain style by geometry type.
    data
        The layer's attributes (a GeoDataFrame or DataFrame); graduated
        styles take their class breaks (quantiles) from it, and styles that
        need a missing column fall back to a single symbol.
    geometry_type
        ``"point"``, ``"line"``, ``"polygon"`` or an OGR / GeoPackage type
        name (``"MultiLineString"``, ``"POINT"``...).

    Returns
    -------
    str
        A complete QML document (``<qgis version="3.22...">`` with a
        ``<renderer-v2>``).

    Examples
    --------
    >>> import pandas as pd
    >>> links = pd.DataFrame({"score": [10.0, 55.0, 90.0], "crosses_border": [True, False, False]})
    >>> qml = layer_qml("links", links, "LineString")
    >>> 'type="graduatedSymbol"' in qml and 'attr="score"' in qml
    True
    >>> 'type="singleSymbol"' in layer_qml("my_points", None, "Point")
    True
    """
    kind = _geometry_kind(geometry_type)
    renderer, labeling = _renderer_for(layer, kind, data)
    opacity = 0.9 if layer in ("corridors", "protected_areas") else 1.0
    return _document(renderer, kind, labeling, opacity)


def _extra_styles(layer: str, kind: str, data: pd.DataFrame | None) -> dict[str, str]:
    """Alternative (non-default) styles of a layer: style name -> QML."""
    if layer == "links" and kind == "line" and data is not None and "crosses_border" in data.columns:
        return {CROSS_BORDER_STYLE_NAME: _document(_links_cross_border_style(kind, data), kind)}
    return {}


# ---------------------------------------------------------------------- GeoPackage layer_styles
_LAYER_STYLES_DDL = """CREATE TABLE "layer_styles" (
 "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
 "f_table_catalog" TEXT(256), "f_table_schema" TEXT(256), "f_table_name" TEXT(256), "f_geometry_column" TEXT(256),
 "styleName" TEXT(30), "styleQML" TEXT, "styleSLD" TEXT, "useAsDefault" BOOLEAN, "description" TEXT,
 "owner" TEXT(30), "ui" TEXT(30),
 "update_time" DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"""


def _now() -> str:
    fixed = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")  # set while leopardgeo writes a run (io.FIXED_DATE)
    if fixed:
        return str(fixed)
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _has_table(con: sqlite3.Connection, name: str) -> bool:
    return con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _ensure_layer_styles(con: sqlite3.Connection) -> None:
    """Create and register ``layer_styles`` as GDAL does for QGIS (FID ``id``, an 'attributes' table)."""
    if not _has_table(con, "layer_styles"):
        con.execute(_LAYER_STYLES_DDL)
    if con.execute("SELECT 1 FROM gpkg_contents WHERE lower(table_name) = 'layer_styles'").fetchone() is None:
        con.execute(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, last_change, srs_id) "
            "VALUES ('layer_styles', 'attributes', 'layer_styles', '', ?, 0)",
            (_now(),),
        )
    if _has_table(con, "gpkg_ogr_contents"):  # GDAL's feature-count cache, kept up to date by triggers
        if con.execute("SELECT 1 FROM gpkg_ogr_contents WHERE lower(table_name) = 'layer_styles'").fetchone() is None:
            con.execute("INSERT INTO gpkg_ogr_contents (table_name, feature_count) VALUES ('layer_styles', NULL)")
        for op, sign in (("insert", "+"), ("delete", "-")):
            con.execute(
                f'CREATE TRIGGER IF NOT EXISTS "trigger_{op}_feature_count_layer_styles" AFTER {op.upper()} ON "layer_styles" '
                f"BEGIN UPDATE gpkg_ogr_contents SET feature_count = feature_count {sign} 1 "
                "WHERE lower(table_name) = lower('layer_styles'); END"
            )


def _feature_tables(con: sqlite3.Connection) -> dict[str, tuple[str, str]]:
    """Feature tables of a GeoPackage: name -> (geometry column, geometry type name)."""
    if not _has_table(con, "gpkg_geometry_columns"):
        return {}
    rows = con.execute(
        "SELECT g.table_name, g.column_name, g.geometry_type_name FROM gpkg_geometry_columns g "
        "JOIN gpkg_contents c ON lower(c.table_name) = lower(g.table_name) WHERE c.data_type = 'features' ORDER BY c.rowid"
    ).fetchall()
    return {str(t): (str(col), str(gt)) for t, col, gt in rows}


def _geometry_type_of(path: Path, layer: str, declared: str) -> str:
    """The declared type, or for a generic ``GEOMETRY`` column the type of the first geometry."""
    if declared.upper() not in ("GEOMETRY", "GEOMETRYCOLLECTION"):
        return declared
    gdf = pyogrio.read_dataframe(path, layer=layer, max_features=1)
    if len(gdf) and gdf.geometry.iloc[0] is not None:
        return str(gdf.geometry.iloc[0].geom_type)
    return "polygon"


def write_layer_styles(gpkg_path: str | Path, layers: Mapping[str, str] | None = None) -> dict[str, str]:
    """Store QGIS default styles for the GeoPackage's layers in its ``layer_styles`` table.

    Writes the table as QGIS's "Save style → In database (GeoPackage)" does
    (same columns, ``f_table_catalog`` and ``f_table_schema`` empty,
    ``useAsDefault`` 1, the table registered in ``gpkg_contents`` as
    ``attributes``), so QGIS applies the style when a layer is added.
    Re-running replaces the rows it wrote before (same layer and style name);
    other default styles of the same layer are kept but no longer default.
    The GeoPackage version (``application_id``, ``user_version``) is unchanged.

    GDAL lists ``layer_styles`` as an attribute layer without geometry, so
    ``pyogrio.list_layers`` returns it too (with geometry type ``None``).

    Parameters
    ----------
    gpkg_path
        The GeoPackage (written by GDAL / pyogrio).
    layers
        Which layers to style. ``None``: every feature layer, each with its
        style from :func:`layer_qml`. A mapping layer -> value styles just
        those layers; a value starting with ``<`` is used as the QML itself,
        any other value names the style to use (a key of
        :data:`LAYER_STYLES`, e.g. ``{"links_2030": "links"}``).

    Returns
    -------
    dict of str to str
        Layer name -> the default QML written.

    Raises
    ------
    DataError
        If the file does not exist or is not a GeoPackage, or a requested
        layer is not one of its feature layers.
    """
    path = Path(gpkg_path)
    if not path.is_file():
        msg = f"{str(path)!r}: expected a GeoPackage, found no file. Write the layers first, then their styles."
        raise DataError(msg)
    con = sqlite3.connect(path)
    try:
        if not _has_table(con, "gpkg_contents"):
            msg = f"{str(path)!r}: expected a GeoPackage (a gpkg_contents table), found none."
            raise DataError(msg)
        tables = _feature_tables(con)
        todo: dict[str, str | None] = dict.fromkeys(tables) if layers is None else dict(layers)
        missing = [n for n in todo if n not in tables]
        if missing:
            msg = f"{path.name}: expected feature layers {missing}, found {list(tables)}."
            raise DataError(msg)
        rows: list[tuple[str, str, str, str, int, str]] = []
        written: dict[str, str] = {}
        for name, spec in todo.items():
            geom_col, declared = tables[name]
            if spec is not None and spec.lstrip().startswith("<"):
                rows.append((name, geom_col, STYLE_NAME, spec, 1, "leopardgeo style"))
                written[name] = spec
                continue
            kind = _geometry_kind(_geometry_type_of(path, name, declared))
            data = pyogrio.read_dataframe(path, layer=name, read_geometry=False)
            style = spec or name
            qml = layer_qml(style, data, kind)
            rows.append((name, geom_col, STYLE_NAME, qml, 1, f"leopardgeo: {LAYER_STYLES.get(style, 'default style')}"))
            rows.extend(
                (name, geom_col, sname, sqml, 0, f"leopardgeo: {sname}")
                for sname, sqml in _extra_styles(style, kind, data).items()
            )
            written[name] = qml
        with con:
            _ensure_layer_styles(con)
            now = _now()
            for name, geom_col, sname, qml, default, desc in rows:
                con.execute(
                    "DELETE FROM layer_styles WHERE f_table_name = ? AND f_geometry_column = ? AND styleName = ?",
                    (name, geom_col, sname),
                )
                if default:
                    con.execute(
                        "UPDATE layer_styles SET useAsDefault = 0 WHERE f_table_name = ? AND f_geometry_column = ?",
                        (name, geom_col),
                    )
                con.execute(
                    "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, styleName, "
                    "styleQML, styleSLD, useAsDefault, description, owner, ui, update_time) "
                    "VALUES ('', '', ?, ?, ?, ?, '', ?, ?, '', NULL, ?)",
                    (name, geom_col, sname, qml, default, desc, now),
                )
            if _has_table(con, "gpkg_ogr_contents"):
                con.execute(
                    "UPDATE gpkg_ogr_contents SET feature_count = (SELECT count(*) FROM layer_styles) "
                    "WHERE lower(table_name) = 'layer_styles'"
                )
            con.execute("UPDATE gpkg_contents SET last_change = ? WHERE lower(table_name) = 'layer_styles'", (now,))
    finally:
        con.close()
    logger.info("wrote QGIS styles of %d layers into %s", len(written), path.name)
    return written


def _atomic_write_text(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_raster_style(tif_path: str | Path, *, style: str | None = None) -> Path:
    """Write ``<name>.qml`` beside a raster (atomically), which QGIS loads with it.

    Parameters
    ----------
    tif_path
        The raster; see :func:`raster_qml`.
    style
        Style name to use instead of the file stem.

    Returns
    -------
    pathlib.Path
        The ``.qml`` written.

    Raises
    ------
    DataError
        If the raster does not exist.
    """
    path = Path(tif_path)
    qml = raster_qml(path, style=style)
    return _atomic_write_text(path.with_suffix(".qml"), qml)


def write_run_styles(out_dir: str | Path) -> list[Path]:
    """Style every output of a run folder: the GeoPackage's layers and each known raster present.

    Parameters
    ----------
    out_dir
        A run folder (``leopardgeo.gpkg`` and GeoTIFFs).

    Returns
    -------
    list of pathlib.Path
        The GeoPackage (if styled) and the ``.qml`` files written.
    """
    out = Path(out_dir)
    done: list[Path] = []
    gpkg = out / "leopardgeo.gpkg"
    if gpkg.is_file():
        write_layer_styles(gpkg)
        done.append(gpkg)
    for stem in RASTER_STYLES:
        tif = out / f"{stem}.tif"
        if tif.is_file():
            done.append(write_raster_style(tif))
    return done
