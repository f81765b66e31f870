"""Open a run folder in headless QGIS and report what QGIS sees, as JSON on stdout.

Run by tests/test_qgis.py with the system Python that has the ``qgis`` bindings (Debian ``python3-qgis``):

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis_check.py RUN_DIR OUT.png [EXTRA.gpkg ...]

For every layer of RUN_DIR/leopardgeo.gpkg and every GeoTIFF: whether it is valid, its renderer type, and the
renderer type of the default style stored for it (``layer_styles`` / ``.qml``); the messages QGIS logged while
opening each GeoPackage given; and the colours of a map rendered from the layers into OUT.png.  Only the
standard library and qgis are used: this runs outside the project's virtual environment.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsMapRendererParallelJob,
    QgsMapSettings,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor

#: Layers drawn in the rendered check image, top first.
DRAWN = ("border_crossings", "links", "graph_nodes", "borders", "protected_areas", "patches", "study_area")


def _first_colour(renderer: ET.Element) -> str | None:
    """The first ``color`` / ``line_color`` of the first symbol layer in a stored renderer, as ``r,g,b``."""
    for opt in renderer.iter("Option"):
        if opt.get("name") in ("color", "line_color") and opt.get("value"):
            return ",".join(opt.get("value").split(",")[:3])
    for prop in renderer.iter("prop"):
        if prop.get("k") in ("color", "line_color") and prop.get("v"):
            return ",".join(prop.get("v").split(",")[:3])
    return None


def _stored_renderers(gpkg: Path) -> dict[str, tuple[str, str | None]]:
    con = sqlite3.connect(gpkg)
    try:
        rows = con.execute("SELECT f_table_name, styleQML FROM layer_styles WHERE useAsDefault = 1").fetchall()
    finally:
        con.close()
    out = {}
    for name, qml in rows:
        r = ET.fromstring(qml).find("renderer-v2")
        out[name] = (r.get("type"), _first_colour(r))
    return out


def _feature_layers(gpkg: Path) -> list[str]:
    con = sqlite3.connect(gpkg)
    try:
        return [r[0] for r in con.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'features' ORDER BY 1")]
    finally:
        con.close()


def main() -> None:
    run_dir, png = Path(sys.argv[1]), Path(sys.argv[2])
    extra = [Path(p) for p in sys.argv[3:]]
    app = QgsApplication([], False)
    app.setPrefixPath("/usr", True)
    app.initQgis()
    messages: list[dict[str, object]] = []

    def log(message: str, tag: str, level: object) -> None:
        messages.append({"message": message, "tag": tag, "level": int(level)})

    QgsApplication.messageLog().messageReceived.connect(log)
    out: dict[str, object] = {"qgis": Qgis.QGIS_VERSION, "vectors": {}, "rasters": {}, "open_messages": {}}
    gpkg = run_dir / "leopardgeo.gpkg"
    stored = _stored_renderers(gpkg)
    layers = []
    for path in [gpkg, *extra]:
        start = len(messages)
        for name in _feature_layers(path):
            lyr = QgsVectorLayer(f"{path}|layername={name}", name, "ogr")
            if path == gpkg:
                renderer = lyr.renderer()
                colour = None
                if renderer is not None and renderer.type() == "singleSymbol":
                    c = renderer.symbol().symbolLayer(0).color() if renderer.symbol().symbolLayerCount() else None
                    colour = f"{c.red()},{c.green()},{c.blue()}" if c is not None else None
                out["vectors"][name] = {
                    "valid": lyr.isValid(),
                    "features": lyr.featureCount(),
                    "renderer": renderer.type() if renderer else None,
                    "colour": colour,
                    "stored": stored.get(name, (None, None))[0],
                    "stored_colour": stored.get(name, (None, None))[1],
                }
                if name in DRAWN:
                    layers.append(lyr)
        QgsApplication.processEvents()
        out["open_messages"][str(path)] = [m["message"] for m in messages[start:]]
    for tif in sorted(run_dir.glob("*.tif")):
        lyr = QgsRasterLayer(str(tif), tif.stem)
        qml = tif.with_suffix(".qml")
        want = ET.parse(qml).getroot().find("pipe/rasterrenderer").get("type") if qml.is_file() else None
        out["rasters"][tif.name] = {
            "valid": lyr.isValid(),
            "renderer": lyr.renderer().type() if lyr.renderer() else None,
            "stored": want,
        }
        if tif.stem == "suitability":
            layers.append(lyr)
    # render: the vectors (first = on top) over the suitability raster
    settings = QgsMapSettings()
    settings.setLayers(layers)
    extent = QgsRectangle()
    for lyr in layers:
        extent.combineExtentWith(lyr.extent())
    settings.setExtent(extent)
    settings.setOutputSize(QSize(900, 700))
    settings.setBackgroundColor(QColor(255, 255, 255))
    settings.setDestinationCrs(layers[0].crs())
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    image.save(str(png), "PNG")
    colours = set()
    for y in range(0, image.height(), 5):
        for x in range(0, image.width(), 5):
            colours.add(image.pixel(x, y))
    out["render"] = {"width": image.width(), "height": image.height(), "distinct_colours": len(colours)}
    out["messages"] = messages
    print(json.dumps(out), flush=True)  # noqa: T201
    sys.stderr.flush()
    # QGIS 3.22's Python bindings can crash in exitQgis() when layers are still referenced; all is written: leave now
    os._exit(0)


if __name__ == "__main__":
    main()
