"""QGIS style documents (``.qml``) built with ElementTree.

Colours and ramps, symbol layers, renderers (single, graduated, categorized,
rule-based), labelling and the document around them.

:mod:`leopardgeo.io.styles` chooses a renderer per layer with these;
:mod:`leopardgeo.io.rasterstyles` builds the raster pipes.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: QGIS version written into every QML (the oldest QGIS the styles target).
QGIS_VERSION = "3.22.16-Białowieża"

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


