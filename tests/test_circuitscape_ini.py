"""``leopardgeo circuitscape FILE.ini``: Circuitscape's .ini keys, inputs and output names.

Grids are written here by hand in ESRI ASCII (independent of the package's writer); expected values are
hand-worked on strips of 1-ohm cells.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from leopardgeo.cli import cli
from leopardgeo.core.errors import ConfigError, DataError, OutputExistsError
from leopardgeo.io.circuitscape import read_grid
from leopardgeo.runner.circuitscape import run_circuitscape


def _asc(path: Path, arr: np.ndarray) -> Path:
    nr, nc = arr.shape
    rows = "\n".join(" ".join("-9999" if np.isnan(v) else repr(float(v)) for v in row) for row in arr)
    path.write_text(
        f"ncols {nc}\nnrows {nr}\nxllcorner 0\nyllcorner 0\ncellsize 10\nNODATA_value -9999\n{rows}\n", encoding="utf-8"
    )
    return path


def _ini(path: Path, **keys: object) -> Path:
    lines = ["[Circuitscape mode]"] + [f"{k} = {v}" for k, v in keys.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _matrix(path: Path) -> dict[tuple[int, int], float]:
    rows = [ln.split() for ln in path.read_text().splitlines()]
    ids = [int(float(v)) for v in rows[0][1:]]
    return {(ids[i], ids[j]): float(rows[i + 1][j + 1]) for i in range(len(ids)) for j in range(len(ids))}


@pytest.fixture
def strip(tmp_path: Path) -> Path:
    _asc(tmp_path / "habitat.asc", np.ones((1, 5)))
    _asc(tmp_path / "points.asc", np.array([[1.0, 0, 3, 0, 2]]))
    return tmp_path


def test_pairwise_ini_writes_circuitscape_outputs(strip: Path):
    ini = _ini(
        strip / "run.ini",
        scenario="pairwise",
        habitat_file=strip / "habitat.asc",
        point_file=strip / "points.asc",
        connect_four_neighbors_only="True",
        write_cur_maps="True",
        write_max_cur_maps="True",
        write_volt_maps="True",
        output_file=strip / "out" / "strip.out",
        log_level="INFO",
    )
    written = run_circuitscape(ini)
    names = sorted(p.name for p in written)
    assert "strip_resistances.out" in names and "strip_resistances_3columns.out" in names
    assert {"strip_cum_curmap.asc", "strip_max_curmap.asc", "strip_curmap_1_2.asc"} <= set(names)
    r = _matrix(strip / "out" / "strip_resistances.out")
    # Circuitscape's pairwise rule: patch 3 is an ordinary cell in the 1-2 solve
    assert r[(1, 2)] == pytest.approx(4.0) and r[(1, 3)] == pytest.approx(2.0) and r[(1, 1)] == 0.0
    three = (strip / "out" / "strip_resistances_3columns.out").read_text().split()
    assert three[:3] == ["1", "2", "4.0"] or float(three[2]) == pytest.approx(4.0)
    cur = read_grid(strip / "out" / "strip_curmap_1_2.asc").values
    np.testing.assert_allclose(cur, [[1.0] * 5], rtol=1e-6)
    # Circuitscape's voltage reference: patch 1 at 0 V, patch 2 at R = 4 V
    volt = read_grid(strip / "out" / "strip_voltmap_1_2.asc").values
    np.testing.assert_allclose(volt, [[0.0, 1.0, 2.0, 3.0, 4.0]], atol=1e-6)
    # outputs are never overwritten without --overwrite, and nothing is half-written
    before = (strip / "out" / "strip_resistances.out").read_text()
    with pytest.raises(OutputExistsError):
        run_circuitscape(ini)
    assert (strip / "out" / "strip_resistances.out").read_text() == before
    assert not list((strip / "out").glob(".cs-*"))
    run_circuitscape(ini, overwrite=True)


def test_overwrite_replaces_the_earlier_output_set(strip: Path):
    keys = {"scenario": "pairwise", "habitat_file": strip / "habitat.asc", "point_file": strip / "points.asc"}
    out = strip / "out"
    out.mkdir()
    (out / "strip_curmap_notes.txt").write_text("mine", encoding="utf-8")  # not one of Circuitscape's names
    (out / "strip_cum_curmap.out").write_text("mine", encoding="utf-8")
    every = _ini(strip / "a.ini", **keys, write_cur_maps="True", write_volt_maps="True", output_file=out / "strip.out")
    run_circuitscape(every)
    assert (out / "strip_curmap_1_2.asc").exists() and (out / "strip_voltmap_2_3.asc").exists()
    cum_only = _ini(strip / "b.ini", **keys, write_cum_cur_map_only="True", output_file=out / "strip.out")
    written = run_circuitscape(cum_only, overwrite=True)
    left = sorted(p.name for p in out.iterdir())
    # the per-pair maps of the first run are gone with their .prj files: one run's outputs, not a mix
    assert left == sorted([*(p.name for p in written), "strip_cum_curmap.out", "strip_curmap_notes.txt"]), left


def test_a_failed_move_puts_the_earlier_outputs_back(strip: Path, monkeypatch: pytest.MonkeyPatch):
    import os

    import leopardgeo.io.circuitscape as io_cs
    from leopardgeo.core.errors import OutputError

    keys = {"scenario": "pairwise", "habitat_file": strip / "habitat.asc", "point_file": strip / "points.asc"}
    ini = _ini(strip / "a.ini", **keys, write_cur_maps="True", output_file=strip / "o" / "s.out")
    run_circuitscape(ini)
    before = {p.name: p.read_bytes() for p in (strip / "o").iterdir()}
    real = os.replace
    calls = {"n": 0}

    def failing(src, dst):  # the third new file cannot be moved in place
        if Path(src).parent.name.startswith(".cs-") and not Path(src).name.startswith(".old-"):
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError(28, "No space left on device", str(src))
        return real(src, dst)

    monkeypatch.setattr(io_cs.os, "replace", failing)
    ini2 = _ini(strip / "b.ini", **keys, write_cum_cur_map_only="True", output_file=strip / "o" / "s.out")
    with pytest.raises(OutputError, match=r"s_.*: expected to write Circuitscape's outputs, found No space left"):
        run_circuitscape(ini2, overwrite=True)
    after = {p.name: p.read_bytes() for p in (strip / "o").iterdir()}
    assert after == before  # every earlier file back, byte for byte, and no staging folder left


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("mode exclude\n1 9\n", r"found \[9\] in its exclude list"),  # once ignored: every pair solved
        ("mode include\n1 9\n", r"found \[9\] in its include list"),
        ("mode include\n1 1\n", "no.* pair of two different focal nodes|found none left"),
        ("mode exclude\n1 2\n1 3\n2 3\n", "found none left in exclude mode"),
    ],
)
def test_pairs_file_ids_are_checked_in_both_modes(strip: Path, text: str, match: str):
    (strip / "pairs.txt").write_text(text, encoding="utf-8")
    ini = _ini(
        strip / "p.ini",
        scenario="pairwise",
        habitat_file=strip / "habitat.asc",
        point_file=strip / "points.asc",
        use_included_pairs="True",
        included_pairs_file=strip / "pairs.txt",
        output_file=strip / "p.out",
    )
    with pytest.raises(DataError, match=match):
        run_circuitscape(ini)
    assert not (strip / "p_resistances.out").exists()


def test_text_point_list_two_ids_on_one_cell(strip: Path):
    # ids 1 and 4 in the same cell: resistance 0 between them, the same resistances to the others
    (strip / "points.txt").write_text("1 5 5\n4 5 5\n2 45 5\n", encoding="utf-8")
    ini = _ini(
        strip / "pts.ini",
        scenario="pairwise",
        habitat_file=strip / "habitat.asc",
        point_file=strip / "points.txt",
        connect_four_neighbors_only="True",
        output_file=strip / "pts.out",
    )
    run_circuitscape(ini)
    r = _matrix(strip / "pts_resistances.out")
    assert r[(1, 4)] == 0.0
    assert r[(1, 2)] == pytest.approx(4.0) and r[(4, 2)] == pytest.approx(4.0)


def test_advanced_ini_with_text_lists(tmp_path: Path):
    _asc(tmp_path / "habitat.asc", np.ones((1, 3)))
    (tmp_path / "src.txt").write_text("2.0 5 5\n", encoding="utf-8")  # 2 A into the left cell
    (tmp_path / "gnd.txt").write_text("1.0 25 5\n", encoding="utf-8")  # right cell: 1 ohm to ground
    ini = _ini(
        tmp_path / "adv.ini",
        scenario="advanced",
        habitat_file=tmp_path / "habitat.asc",
        source_file=tmp_path / "src.txt",
        ground_file=tmp_path / "gnd.txt",
        connect_four_neighbors_only="True",
        write_cur_maps="True",
        write_volt_maps="True",
        output_file=tmp_path / "adv.out",
    )
    run_circuitscape(ini)
    np.testing.assert_allclose(read_grid(tmp_path / "adv_voltmap.asc").values, [[6.0, 4.0, 2.0]], rtol=1e-6)
    np.testing.assert_allclose(read_grid(tmp_path / "adv_curmap.asc").values, [[2.0, 2.0, 2.0]], rtol=1e-6)


def test_one_to_all_ini_with_source_strengths(strip: Path):
    (strip / "strengths.txt").write_text("1 2.0\n", encoding="utf-8")
    ini = _ini(
        strip / "ota.ini",
        scenario="one-to-all",
        habitat_file=strip / "habitat.asc",
        point_file=strip / "points.asc",
        connect_four_neighbors_only="True",
        use_variable_source_strengths="True",
        variable_source_file=strip / "strengths.txt",
        write_cur_maps="True",
        output_file=strip / "ota.out",
    )
    run_circuitscape(ini)
    # 2 A into patch 1, patches 3 and 2 at 0 V: all of it crosses the two cells to patch 3
    np.testing.assert_allclose(read_grid(strip / "ota_curmap_1.asc").values[0, :3], [2.0, 2.0, 2.0], rtol=1e-6)
    rows = dict(ln.split() for ln in (strip / "ota_resistances.out").read_text().splitlines())
    assert float(rows["1"]) == pytest.approx(2.0)  # volts per ampere


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("habitat_fle", "x.asc", "habitat_fle"),
        ("log_transform_maps", "True", "log_transform_maps"),
        ("data_type", "vector", "data_type"),
        ("scenario", "omnidirectional", "scenario"),
        ("connect_four_neighbors_only", "maybe", "connect_four_neighbors_only"),
    ],
)
def test_ini_errors_name_the_key(strip: Path, key: str, value: str, match: str):
    keys = {
        "scenario": "pairwise",
        "habitat_file": strip / "habitat.asc",
        "point_file": strip / "points.asc",
        "output_file": strip / "e.out",
    }
    keys[key] = value
    with pytest.raises(ConfigError, match=match):
        run_circuitscape(_ini(strip / "bad.ini", **keys))


def test_ini_misaligned_grid(strip: Path):
    _asc(strip / "points6.asc", np.zeros((1, 6)))
    ini = _ini(
        strip / "m.ini", scenario="pairwise", habitat_file=strip / "habitat.asc", point_file=strip / "points6.asc",
        output_file=strip / "m.out",
    )  # fmt: skip
    with pytest.raises(DataError, match="rows x"):
        run_circuitscape(ini)


def test_cli_circuitscape(strip: Path):
    ini = _ini(
        strip / "cli.ini",
        scenario="all-to-one",
        habitat_file=strip / "habitat.asc",
        point_file=strip / "points.asc",
        write_cum_cur_map_only="True",
        output_file=strip / "cli.out",
    )
    res = CliRunner().invoke(cli, ["circuitscape", str(ini)])
    assert res.exit_code == 0, res.output
    assert (strip / "cli_cum_curmap.asc").exists()
    res = CliRunner().invoke(cli, ["circuitscape", str(ini)])
    assert res.exit_code != 0 and "overwrite" in res.output.lower()


# The graph of Circuitscape.jl's published network case sgNetworkVerify3 (test/input/network, MIT licence):
# resistances of a small grid's branches, three connected components.
SG_NET3 = [
    (0, 1, 1), (0, 4, 1), (1, 4, 1.414213562), (2, 3, 1), (4, 5, 1), (5, 8, 1), (6, 7, 1), (6, 9, 1),
    (6, 10, 1.414213562), (7, 9, 1.414213562), (7, 10, 1), (8, 11, 1), (9, 10, 1), (9, 12, 1),
    (9, 13, 1.414213562), (10, 12, 1.414213562), (10, 13, 1), (12, 13, 1),
]  # fmt: skip
SG_NET3_FOCAL = [0, 1, 5, 6, 8, 11, 13]
#: Circuitscape's published answer (test/output_verify/sgNetworkVerify3_resistances_3columns.out).
SG_NET3_PUBLISHED = """0 1 0.7071067812
0 5 1.707106781
0 6 -1
0 8 2.707106781
0 11 3.707106781
0 13 -1
1 5 1.828427125
1 6 -1
1 8 2.828427125
1 11 3.828427125
1 13 -1
5 6 -1
5 8 1
5 11 2
5 13 -1
6 8 -1
6 11 -1
6 13 0.8578643762
8 11 1
8 13 -1
11 13 -1
"""


def test_network_ini_against_networkx_and_circuitscape(tmp_path: Path):
    import networkx as nx

    (tmp_path / "graph.txt").write_text("".join(f"{a}.0 {b}.0 {r}\n" for a, b, r in SG_NET3), encoding="utf-8")
    (tmp_path / "focal.txt").write_text("".join(f"{n:.15e}\n" for n in SG_NET3_FOCAL), encoding="utf-8")
    ini = _ini(
        tmp_path / "net.ini",
        data_type="network",
        scenario="pairwise",
        habitat_file=tmp_path / "graph.txt",
        habitat_map_is_resistances="True",
        point_file=tmp_path / "focal.txt",
        output_file=tmp_path / "net.out",
    )
    run_circuitscape(ini)
    r = _matrix(tmp_path / "net_resistances.out")
    g = nx.Graph()
    g.add_weighted_edges_from((a, b, 1.0 / w) for a, b, w in SG_NET3)  # conductances
    for a in SG_NET3_FOCAL:
        for b in SG_NET3_FOCAL:
            if a == b:
                assert r[(a, b)] == 0.0
            elif nx.has_path(g, a, b):
                sub = g.subgraph(nx.node_connected_component(g, a))
                ref = nx.resistance_distance(sub, a, b, weight="weight", invert_weight=False)
                assert r[(a, b)] == pytest.approx(ref, rel=1e-9)
            else:
                assert r[(a, b)] == -1.0
    # and Circuitscape's own published output, pair by pair (its tolerance: 1e-6)
    ours = [ln.split() for ln in (tmp_path / "net_resistances_3columns.out").read_text().splitlines()]
    theirs = [ln.split() for ln in SG_NET3_PUBLISHED.splitlines()]
    assert [row[:2] for row in ours] == [row[:2] for row in theirs]
    np.testing.assert_allclose([float(r[2]) for r in ours], [float(r[2]) for r in theirs], rtol=1e-6)
