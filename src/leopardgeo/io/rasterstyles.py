"""QGIS styles of the GeoTIFFs a run writes: :func:`raster_qml` (pseudocolor ramp or paletted by the data).

The style of each raster comes from :data:`RASTER_STYLES`
by file stem, else from the data (few integer values: paletted).
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

import rasterio
from rasterio.enums import Resampling

from leopardgeo.core.errors import DataError
from leopardgeo.io.qml import _QUALITATIVE, _RDYLBU_R, _VIRIDIS, MAX_PALETTE, QGIS_VERSION, _fmt, _gradient, _num, _serialise

logger = logging.getLogger(__name__)

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


