"""The report's restoration advice is ordered by the connectivity it adds, not by the cost it saves."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import geopandas as gpd
import shapely

from leopardgeo.report import runreport as R

CRS = "+proj=laea +lat_0=44.25 +lon_0=132.25 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"


class _Run:
    """A run folder's tables in memory: three patches, a short link 1-2 and a hopeless link 2-3."""

    def __init__(self, k: float) -> None:
        self.k = k
        self.nodes = pd.DataFrame({"patch_id": [1, 2, 3], "area_ha": [100.0, 200.0, 300.0], "name": ["", "", ""]})
        self.links = pd.DataFrame({"patch_a": [1, 2], "patch_b": [2, 3], "cwd": [1000.0, 1.0e6]})
        # Barrier Mapper: rank 1 saves 50 % on the hopeless link, rank 2 saves 10 % on the short one
        self.barriers = gpd.GeoDataFrame(
            {"rank": [1, 2], "patch_a": [2, 1], "patch_b": [3, 2], "pct_of_lcd": [50.0, 10.0], "radius_m": [1000.0, 1000.0]},
            geometry=[shapely.Point(0, 0), shapely.Point(1000, 0)],
            crs=CRS,
        )

    def table(self, layer: str):
        return {"graph_nodes": self.nodes, "links": self.links}.get(layer)

    def frame(self, layer: str):
        return self.barriers if layer == "barriers" else None

    def json(self, name: str):
        return {"k": self.k} if name == "metrics.json" else None


def test_equivalent_connected_area_by_hand():
    run = _Run(k=math.log(2) / 1000)  # p = 0.5 on link 1-2, about 0 on link 2-3
    ec = R._equivalent_connected_area(run.nodes, run.links, run.k, run.links["cwd"].to_numpy())
    a = np.array([100.0, 200.0, 300.0])
    p = np.array([[1, 0.5, 0], [0.5, 1, 0], [0, 0, 1]])
    assert ec == pytest.approx(math.sqrt(a @ p @ a))


def test_restoration_advice_ordered_by_connectivity_added():
    run = _Run(k=math.log(2) / 1000)
    report = R.Report(out_dir=Path("."), sections=[], summary={})
    text = R._restore_finding(run, report)[0]
    # the short link 1-2 comes first (EC gain > 0) although the Barrier Mapper ranked the hopeless link first
    assert text.index("link 1-2") < text.index("link 2-3")
    assert "link 1-2" in report.headlines[0] and "equivalent connected area" in report.headlines[0]
    gains = R._restoration_gains(run, run.barriers)
    p0 = 0.5
    p1 = 2 ** -0.9  # cwd 900 after saving 10 %
    expected = math.sqrt(100**2 + 200**2 + 300**2 + 2 * 100 * 200 * p1) - math.sqrt(100**2 + 200**2 + 300**2 + 2 * 100 * 200 * p0)
    assert gains.loc[1, "ec_gain_ha"] == pytest.approx(expected)
    assert gains.loc[0, "ec_gain_ha"] == pytest.approx(0.0, abs=1e-9)
    # the Barrier Mapper's own table keeps its ranking
    assert run.barriers["rank"].tolist() == [1, 2]


def test_restoration_without_gain_says_so():
    run = _Run(k=1.0)  # every link has p ~ 0
    report = R.Report(out_dir=Path("."), sections=[], summary={})
    R._restore_finding(run, report)
    assert "none of the places" in report.headlines[0]
