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
import math
import os
import sqlite3
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import pyogrio
import rasterio
from rasterio.enums import Resampling

from leopardgeo.core.errors import DataError

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

#: QGIS version written into every QML (the oldest QGIS the styles target).
QGIS_VERSION = "3.22.16-Białowieża"
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

#: Raster names (file stem) with a dedicated style -> renderer and ramp.
RASTER_STYLES: dict[str, str] = {
    "suitability": "singlebandpseudocolor, viridis",
    "resistance": "singlebandpseudocolor, viridis, log-spaced stops",
    "cwd": "singlebandpseudocolor, viridis",
    "corridors": "singlebandpseudocolor, viridis reversed (low = best = bright)",
    "current": "singlebandpseudocolor, viridis",
    "pinchpoints": "singlebandpseudocolor, viridis",
    "barriers": "singlebandpseudocolor, viridis",
    "omniscape_current": "singlebandpseudocolor, viridis",
    "omniscape_flow_potential": "singlebandpseudocolor, viridis",
    "omniscape_normalized": "singlebandpseudocolor, diverging blue - pale yellow at 1 - red (impeded / as expected / channelled)",
    "patches": "paletted, one colour per patch id",
    "allocation": "paletted, one colour per patch id",
    "territories": "paletted: 1 female only, 2 male only, 3 both",
    "fence": "paletted: 1 fence",
    "corridors_change": "paletted: 1 lost, 2 gained, 3 in both",
    "current_diff": "singlebandpseudocolor, scenario minus baseline",
}

_DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
_GEOM_CODE = {"point": "0", "line": "1", "polygon": "2"}
_SYMBOL_TYPE = {"point": "marker", "line": "line", "polygon": "fill"}
_NS = uuid.UUID("6f1e1d2a-5c8e-4f0b-9a57-2f1a3c4b5d6e")  # deterministic rule keys
_VIRIDIS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725")
_MAGMA = ("#fcfdbf", "#fec287", "#fb8761", "#e55064", "#b5367a", "#812581", "#4f127b", "#1c1044")
_YLGN = ("#ffffcc", "#d9f0a3", "#addd8e", "#78c679", "#41ab5d", "#238443", "#005a32")
_RDYLBU_R = ("#313695", "#4575b4", "#74add1", "#abd9e9", "#ffffbf", "#fdae61", "#f46d43", "#d73027", "#a50026")
_REDS = ("#fee5d9", "#fcbba1", "#fc9272", "#fb6a4a", "#de2d26", "#a50f15")
_QUALITATIVE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)  # fmt: skip
#: Most entries of a paletted raster style; rasters with more classes get a pseudocolor ramp.
MAX_PALETTE = 2000
_CROSS_ORANGE = "#ff7f0e"


# ---------------------------------------------------------------------- colours
def _hex_rgba(color: str, alpha: float = 1.0) -> tuple[int, int, int, int]:
    c = color.lstrip("#")
    r, g, b = (int(c[i : i + 2], 16) for i in (0, 2, 4))
    a = int(c[6:8], 16) if len(c) == 8 else round(255 * alpha)
    return r, g, b, a


def _qcolor(color: str, alpha: float = 1.0) -> str:
    """``"#rrggbb"`` -> QGIS ``"r,g,b,a"``."""
    return ",".join(str(v) for v in _hex_rgba(color, alpha))


def _ramp(colors: Sequence[str], n: int, *, reverse: bool = False) -> list[str]:
    """``n`` colours evenly spaced along the piecewise-linear ramp through ``colors`` (hex)."""
    stops = np.array([_hex_rgba(c)[:3] for c in colors], dtype=float)
    pos = np.linspace(0, 1, len(colors))
    at = np.linspace(0, 1, n) if n > 1 else np.array([1.0])
    rgb = np.stack([np.interp(at, pos, stops[:, k]) for k in range(3)], axis=1)
    out = ["#{:02x}{:02x}{:02x}".format(*(round(v) for v in row)) for row in rgb]
    return out[::-1] if reverse else out


def _fmt(x: float) -> str:
    """A short label."""
    return f"{x:.6g}"


def _num(x: float) -> str:
    """A value QGIS reads back exactly enough: integers in full, others to 10 significant digits."""
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 2**53 else f"{x:.10g}"


# ---------------------------------------------------------------------- XML pieces
def _options(parent: ET.Element, props: Mapping[str, Any]) -> None:
    """Symbol-layer properties, both as QGIS >= 3.20 ``<Option>`` map and legacy ``<prop>`` (as 3.22 writes)."""
    omap = ET.SubElement(parent, "Option", type="Map")
    for k in sorted(props):
        ET.SubElement(omap, "Option", type="QString", name=k, value=str(props[k]))
    for k in sorted(props):
        ET.SubElement(parent, "prop", k=k, v=str(props[k]))


def _ddp(parent: ET.Element, expressions: Mapping[str, str] | None = None) -> None:
    """``<data_defined_properties>``: property name -> expression (empty collection if none)."""
    el = ET.SubElement(parent, "data_defined_properties")
    omap = ET.SubElement(el, "Option", type="Map")
    ET.SubElement(omap, "Option", type="QString", name="name", value="")
    props = ET.SubElement(omap, "Option", name="properties")
    if expressions:
        props.set("type", "Map")
        for key, expr in expressions.items():
            p = ET.SubElement(props, "Option", type="Map", name=key)
            ET.SubElement(p, "Option", type="bool", name="active", value="true")
            ET.SubElement(p, "Option", type="QString", name="expression", value=expr)
            ET.SubElement(p, "Option", type="int", name="type", value="3")
    ET.SubElement(omap, "Option", type="QString", name="type", value="collection")


_SCALE = "3x:0,0,0,0,0,0"


def _fill_layer(color: str, alpha: float, outline: str | None, width: float, style: str = "solid") -> dict[str, Any]:
    return {
        "class": "SimpleFill",
        "color": _qcolor(color, alpha),
        "style": style,
        "outline_color": _qcolor(outline or "#000000", 1.0 if outline else 0.0),
        "outline_style": "solid" if outline else "no",
        "outline_width": _fmt(width),
        "outline_width_unit": "MM",
        "border_width_map_unit_scale": _SCALE,
        "joinstyle": "bevel",
        "offset": "0,0",
        "offset_unit": "MM",
        "offset_map_unit_scale": _SCALE,
    }


def _line_layer(color: str, width: float, style: str = "solid", alpha: float = 1.0) -> dict[str, Any]:
    return {
        "class": "SimpleLine",
        "line_color": _qcolor(color, alpha),
        "line_width": _fmt(width),
        "line_width_unit": "MM",
        "line_style": style,
        "capstyle": "round",
        "joinstyle": "round",
        "use_custom_dash": "0",
        "customdash": "5;2",
        "customdash_unit": "MM",
        "customdash_map_unit_scale": _SCALE,
        "draw_inside_polygon": "0",
        "offset": "0",
        "offset_unit": "MM",
        "offset_map_unit_scale": _SCALE,
        "ring_filter": "0",
        "width_map_unit_scale": _SCALE,
    }


def _marker_layer(color: str, size: float, shape: str = "circle", outline: str = "#232323", alpha: float = 1.0) -> dict[str, Any]:
    return {
        "class": "SimpleMarker",
        "name": shape,
        "color": _qcolor(color, alpha),
        "outline_color": _qcolor(outline),
        "outline_style": "solid",
        "outline_width": "0.3",
        "outline_width_unit": "MM",
        "outline_width_map_unit_scale": _SCALE,
        "size": _fmt(size),
        "size_unit": "MM",
        "size_map_unit_scale": _SCALE,
        "angle": "0",
        "scale_method": "diameter",
        "horizontal_anchor_point": "1",
        "vertical_anchor_point": "1",
        "joinstyle": "bevel",
        "offset": "0,0",
        "offset_unit": "MM",
        "offset_map_unit_scale": _SCALE,
    }


def _symbol(kind: str, name: str, layers: Sequence[Mapping[str, Any]]) -> ET.Element:
    """A ``<symbol>`` of geometry ``kind`` made of symbol layers (bottom first); key ``"_ddp"`` adds data-defined props."""
    sym = ET.Element("symbol", type=_SYMBOL_TYPE[kind], name=name, alpha="1", clip_to_extent="1", force_rhr="0")
    _ddp(sym)
    for spec in layers:
        props = {k: v for k, v in spec.items() if k not in ("class", "_ddp")}
        lay = ET.SubElement(sym, "layer", {"class": spec["class"], "pass": "0", "locked": "0", "enabled": "1"})
        _options(lay, props)
        _ddp(lay, spec.get("_ddp"))
    return sym


def _gradient(parent: ET.Element, colors: Sequence[str], name: str = "[source]") -> ET.Element:
    """A QGIS gradient ``<colorramp>`` through ``colors`` (evenly spaced stops)."""
    ramp = ET.SubElement(parent, "colorramp", type="gradient", name=name)
    inner = [f"{_fmt(i / (len(colors) - 1))};{_qcolor(c)}" for i, c in enumerate(colors)][1:-1]
    props = {
        "color1": _qcolor(colors[0]),
        "color2": _qcolor(colors[-1]),
        "discrete": "0",
        "rampType": "gradient",
        "stops": ":".join(inner),
    }
    omap = ET.SubElement(ramp, "Option", type="Map")
    for k, v in props.items():
        ET.SubElement(omap, "Option", type="QString", name=k, value=v)
    for k, v in props.items():
        ET.SubElement(ramp, "prop", k=k, v=v)
    return ramp


def _renderer(kind: str, **attrs: str) -> ET.Element:
    return ET.Element(
        "renderer-v2",
        {"type": kind, "symbollevels": "0", "enableorderby": "0", "forceraster": "0", "referencescale": "-1", **attrs},
    )


def _single(kind: str, layers: Sequence[Mapping[str, Any]]) -> ET.Element:
    r = _renderer("singleSymbol")
    syms = ET.SubElement(r, "symbols")
    syms.append(_symbol(kind, "0", layers))
    ET.SubElement(r, "rotation")
    ET.SubElement(r, "sizescale")
    return r


def _graduated(
    kind: str,
    attr: str,
    breaks: Sequence[float],
    make_layers: Any,
    colors: Sequence[str],
    *,
    method: str = "GraduatedColor",
    classification: str = "Quantile",
) -> ET.Element:
    """Graduated renderer: class ``i`` spans ``breaks[i]..breaks[i+1]``; ``make_layers(i, colour)`` gives its symbol layers."""
    n = len(breaks) - 1
    cols = _ramp(colors, n)
    r = _renderer("graduatedSymbol", attr=attr, graduatedMethod=method)
    ranges = ET.SubElement(r, "ranges")
    syms = ET.SubElement(r, "symbols")
    for i in range(n):
        lo, hi = breaks[i], breaks[i + 1]
        ET.SubElement(
            ranges,
            "range",
            lower=f"{lo:.15f}",
            upper=f"{hi:.15f}",
            symbol=str(i),
            label=f"{_fmt(lo)} - {_fmt(hi)}",
            render="true",
        )
        syms.append(_symbol(kind, str(i), make_layers(i, cols[i])))
    ET.SubElement(r, "source-symbol").append(_symbol(kind, "0", make_layers(n - 1, cols[-1])))
    _gradient(r, colors)
    cm = ET.SubElement(r, "classificationMethod", id=classification)
    ET.SubElement(cm, "symmetricMode", enabled="0", symmetrypoint="0", astride="0")
    ET.SubElement(cm, "labelFormat", format="%1 - %2", labelprecision="4", trimtrailingzeroes="1")
    ET.SubElement(ET.SubElement(cm, "parameters"), "Option")
    ET.SubElement(cm, "extraInformation")
    ET.SubElement(r, "rotation")
    ET.SubElement(r, "sizescale")
    return r


def _categorized(kind: str, attr: str, categories: Sequence[tuple[str, str, Sequence[Mapping[str, Any]]]]) -> ET.Element:
    """Categorized renderer: ``(value, label, symbol layers)`` per category."""
    r = _renderer("categorizedSymbol", attr=attr)
    cats = ET.SubElement(r, "categories")
    syms = ET.SubElement(r, "symbols")
    for i, (value, label, layers) in enumerate(categories):
        ET.SubElement(cats, "category", value=value, label=label, symbol=str(i), render="true")
        syms.append(_symbol(kind, str(i), layers))
    ET.SubElement(r, "rotation")
    ET.SubElement(r, "sizescale")
    return r


def _rule_based(kind: str, rules: Sequence[tuple[str, str, Sequence[Mapping[str, Any]]]], key: str) -> ET.Element:
    """Rule-based renderer: ``(filter expression, label, symbol layers)`` per rule, drawn in order."""
    r = _renderer("RuleRenderer")
    root = ET.SubElement(r, "rules", key="{" + str(uuid.uuid5(_NS, key)) + "}")
    syms = ET.SubElement(r, "symbols")
    for i, (expr, label, layers) in enumerate(rules):
        attrs = {"key": "{" + str(uuid.uuid5(_NS, f"{key}/{i}")) + "}", "symbol": str(i), "label": label}
        if expr:
            attrs["filter"] = expr
        ET.SubElement(root, "rule", attrs)
        syms.append(_symbol(kind, str(i), layers))
    return r


def _labeling(field: str) -> ET.Element:
    """Simple labels from ``field``: dark text with a white buffer, over the feature."""
    lab = ET.Element("labeling", type="simple")
    settings = ET.SubElement(lab, "settings", calloutType="simple")
    style = ET.SubElement(
        settings,
        "text-style",
        fieldName=field,
        isExpression="0",
        fontFamily="Sans Serif",
        fontSize="9",
        fontSizeUnit="Point",
        fontWeight="75",
        fontItalic="0",
        textColor="40,40,40,255",
        textOpacity="1",
        namedStyle="Bold",
        multilineHeight="1",
        blendMode="0",
        previewBkgrdColor="255,255,255,255",
    )
    ET.SubElement(
        style,
        "text-buffer",
        bufferDraw="1",
        bufferSize="1",
        bufferSizeUnits="MM",
        bufferColor="255,255,255,255",
        bufferOpacity="1",
        bufferNoFill="1",
        bufferJoinStyle="128",
        bufferBlendMode="0",
    )
    ET.SubElement(settings, "text-format", wrapChar="", multilineAlign="3", formatNumbers="0", decimals="3", plussign="0")
    ET.SubElement(settings, "placement", placement="1", placementFlags="10", centroidInside="1", centroidWhole="0", priority="5")
    ET.SubElement(settings, "rendering", obstacle="1", drawLabels="1", displayAll="0", upsidedownLabels="0", limitNumLabels="0")
    return lab


def _document(renderer: ET.Element, kind: str, labeling: ET.Element | None = None, opacity: float = 1.0) -> str:
    root = ET.Element(
        "qgis",
        version=QGIS_VERSION,
        styleCategories="Symbology|Labeling",
        labelsEnabled="1" if labeling is not None else "0",
    )
    root.append(renderer)
    if labeling is not None:
        root.append(labeling)
    ET.SubElement(root, "blendMode").text = "0"
    ET.SubElement(root, "featureBlendMode").text = "0"
    ET.SubElement(root, "layerOpacity").text = _fmt(opacity)
    ET.SubElement(root, "layerGeometryType").text = _GEOM_CODE[kind]
    return _serialise(root)


def _serialise(root: ET.Element) -> str:
    ET.indent(root, space="  ")
    return _DOCTYPE + "\n" + ET.tostring(root, encoding="unicode") + "\n"


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


# ---------------------------------------------------------------------- raster styles
def _raster_sample(src: Any, max_pixels: int = 4_000_000) -> np.ndarray:
    """Valid (unmasked, finite) values of band 1, read decimated to at most ``max_pixels``."""
    h, w = src.height, src.width
    f = max(1.0, math.sqrt(h * w / max_pixels))
    shape = (max(1, int(h / f)), max(1, int(w / f)))
    a = src.read(1, masked=True, out_shape=shape, resampling=Resampling.nearest)
    v = np.ma.compressed(a).astype(float)
    return v[np.isfinite(v)]


def _unique_values(src: Any, cap: int) -> np.ndarray | None:
    """Exact unique valid values of band 1 (block by block), or None if more than ``cap``."""
    vals = np.array([], dtype=float)
    for _, win in src.block_windows(1):
        block = src.read(1, window=win, masked=True)
        vals = np.union1d(vals, np.unique(np.ma.compressed(block)).astype(float))
        if vals.size > cap:
            return None
    return vals[np.isfinite(vals)]


def _raster_kind(stem: str, src: Any) -> str:
    if stem in ("patches", "allocation", "territories", "fence", "corridors_change"):
        return "paletted"
    if stem in RASTER_STYLES:
        return "pseudocolor"
    return "paletted" if np.issubdtype(np.dtype(src.dtypes[0]), np.integer) else "pseudocolor"


def _pipe_tail(pipe: ET.Element) -> None:
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(
        pipe,
        "huesaturation",
        saturation="0",
        grayscaleMode="0",
        colorizeOn="0",
        colorizeRed="255",
        colorizeGreen="128",
        colorizeBlue="128",
        colorizeStrength="100",
        invertColors="0",
    )
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(pipe, "resamplingStage").text = "resamplingFilter"


def _min_max_origin(parent: ET.Element) -> None:
    mmo = ET.SubElement(parent, "minMaxOrigin")
    for tag, text in (
        ("limits", "None"),
        ("extent", "WholeRaster"),
        ("statAccuracy", "Estimated"),
        ("cumulativeCutLower", "0.02"),
        ("cumulativeCutUpper", "0.98"),
        ("stdDevFactor", "2"),
    ):
        ET.SubElement(mmo, tag).text = text


def _raster_document(renderer: ET.Element) -> str:
    root = ET.Element("qgis", version=QGIS_VERSION, styleCategories="Symbology", hasScaleBasedVisibilityFlag="0")
    pipe = ET.SubElement(root, "pipe")
    prov = ET.SubElement(pipe, "provider")
    ET.SubElement(
        prov,
        "resampling",
        enabled="false",
        maxOversampling="2",
        zoomedInResamplingMethod="nearestNeighbour",
        zoomedOutResamplingMethod="nearestNeighbour",
    )
    pipe.append(renderer)
    _pipe_tail(pipe)
    ET.SubElement(root, "blendMode").text = "0"
    return _serialise(root)


def _pseudocolor(values: np.ndarray, stem: str) -> ET.Element:
    if values.size:
        lo, hi = (float(x) for x in np.percentile(values, [2, 98]))
    else:
        logger.warning("%s: no valid cells; its style uses the range 0..1", stem)
        lo, hi = 0.0, 1.0
    if not hi > lo:
        hi = lo + (abs(lo) * 0.01 or 1.0)
    colors = list(_VIRIDIS[::-1] if stem == "corridors" else _VIRIDIS)
    n = len(colors)
    if stem == "resistance" and lo > 0:  # log-spaced stops: resistance spans orders of magnitude
        stops = np.geomspace(lo, hi, n)
    elif stem == "omniscape_normalized":  # diverging at 1: current as the landscape's geometry alone would give
        colors = list(_RDYLBU_R)
        lo, hi = min(lo, 0.99), max(hi, 1.01)
        half = len(colors) // 2
        stops = np.concatenate([np.linspace(lo, 1.0, half + 1), np.linspace(1.0, hi, half + 1)[1:]])
        n = len(colors)
    else:
        stops = np.linspace(lo, hi, n)
    r = ET.Element(
        "rasterrenderer",
        type="singlebandpseudocolor",
        band="1",
        opacity="1",
        alphaBand="-1",
        classificationMin=_num(lo),
        classificationMax=_num(hi),
        nodataColor="",
    )
    ET.SubElement(r, "rasterTransparency")
    _min_max_origin(r)
    shader = ET.SubElement(ET.SubElement(r, "rastershader"), "colorrampshader")
    shader.attrib.update(
        colorRampType="INTERPOLATED",
        classificationMode="1",
        minimumValue=_num(lo),
        maximumValue=_num(hi),
        clip="0",
        labelPrecision="4",
    )
    _gradient(shader, colors)
    for value, color in zip(stops, colors, strict=True):
        ET.SubElement(shader, "item", alpha="255", value=_num(value), label=_fmt(float(value)), color=color)
    return r


def _paletted(values: np.ndarray, stem: str) -> ET.Element:
    r = ET.Element("rasterrenderer", type="paletted", band="1", opacity="1", alphaBand="-1", nodataColor="")
    ET.SubElement(r, "rasterTransparency")
    _min_max_origin(r)
    pal = ET.SubElement(r, "colorPalette")
    if stem == "territories":
        entries = [
            (0, "#000000", 0, "none"),
            (1, "#e7298a", 200, "female only"),
            (2, "#1f78b4", 200, "male only"),
            (3, "#7b3294", 220, "both"),
        ]
    elif stem == "fence":
        entries = [(0, "#000000", 0, "none"), (1, "#8b0000", 255, "fence")]
    elif stem == "corridors_change":
        entries = [(0, "#000000", 0, "none"), (1, "#d62728", 230, "corridor lost"), (2, "#2ca02c", 230, "corridor gained"),
                   (3, "#bdbdbd", 160, "corridor in both")]  # fmt: skip
    else:
        ids = [v for v in values if v != 0]
        entries = [(v, _QUALITATIVE[i % len(_QUALITATIVE)], 255, _num(v)) for i, v in enumerate(ids)]
    for value, color, alpha, label in entries:
        ET.SubElement(pal, "paletteEntry", value=_num(value), color=color, alpha=str(alpha), label=label)
    ET.SubElement(r, "colorramp", type="randomcolors", name="[source]")
    return r


def raster_qml(tif_path: str | Path, *, style: str | None = None) -> str:
    """QML (QGIS style XML) for a single-band raster, from its name and data.

    Continuous rasters get a singleband pseudocolor ramp (viridis; reversed
    for ``corridors``, where low is best; log-spaced stops for
    ``resistance``) from the 2nd to the 98th percentile of the valid cells;
    class rasters (``patches``, ``allocation``, ``territories``, ``fence``,
    and unknown integer rasters with at most :data:`MAX_PALETTE` values) a
    paletted style.

    Parameters
    ----------
    tif_path
        The raster (any GDAL format); its stem selects the style.
    style
        Style name to use instead of the file stem (a key of :data:`RASTER_STYLES`).

    Returns
    -------
    str
        A QML document with ``<pipe><rasterrenderer type=...>``.

    Raises
    ------
    DataError
        If the file does not exist.
    """
    path = Path(tif_path)
    if not path.is_file():
        msg = f"{str(path)!r}: expected a raster, found no file."
        raise DataError(msg)
    stem = style or path.stem
    with rasterio.open(path) as src:
        kind = _raster_kind(stem, src)
        if kind == "paletted":
            fixed = ("territories", "fence", "corridors_change")
            values = _unique_values(src, MAX_PALETTE) if stem not in fixed else np.array([])
            if values is None:
                logger.info("%s: more than %d classes; styled as a continuous raster", path.name, MAX_PALETTE)
                renderer = _pseudocolor(_raster_sample(src), stem)
            else:
                renderer = _paletted(values, stem)
        else:
            renderer = _pseudocolor(_raster_sample(src), stem)
    return _raster_document(renderer)


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
