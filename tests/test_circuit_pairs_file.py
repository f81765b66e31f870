"""Circuitscape include / exclude pair files: both layouts, the errors, and their effect on the circuit stage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from leopardgeo.core.errors import DataError
from leopardgeo.io.circuitscape import read_pairs_file
from leopardgeo.runner.pipeline import circuit_table, compute_circuit
from leopardgeo.runner.registry import CircuitConfig, RunConfig


def test_list_layout(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("mode include\n3 1\n1 3\n2 2\n4 2\n")
    assert read_pairs_file(f) == ("include", [(1, 3), (2, 4)])  # sorted, repeats and self-pairs dropped


def test_matrix_layout_follows_circuitscape(tmp_path):
    # Circuitscape.jl read_included_pairs: entries above max count as 0, then included when >= min
    f = tmp_path / "m.txt"
    f.write_text("min 1\nmax 2\n0 1 2 3\n1 0 2 5\n2 2 0 0\n3 5 0 0\n")
    assert read_pairs_file(f) == ("include", [(1, 2)])


@pytest.mark.parametrize(
    ("text", "found"),
    [("", "empty"), ("mode maybe\n1 2\n", "'maybe'"), ("mode include\n1 2 3\n", "1 2 3"), ("pairs\n1 2\n", "'pairs'"),
     ("mode include\n1 x\n", "unreadable"), ("min 1\n0 1 2\n", "'max'"),
     ("mode include\n1.5 2\n", "the id 1.5"), ("min 1\nmax 1\n0 1 2.5\n1 0 1\n2.5 1 0\n", "the id 2.5")],
)  # fmt: skip
def test_bad_files_say_what_was_expected(tmp_path, text, found):
    f = tmp_path / "bad.txt"
    f.write_text(text)
    with pytest.raises(DataError, match="expected a Circuitscape pairs file") as err:
        read_pairs_file(f)
    assert found in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="Check the path"):
        read_pairs_file(tmp_path / "none.txt")


@pytest.mark.parametrize(("text", "solved"), [("mode include\n1 3\n", {(1, 3)}), ("mode exclude\n1 3\n", {(1, 2), (2, 3)})])
def test_pairs_file_drives_the_circuit_stage(tmp_path, text, solved):
    (tmp_path / "pairs.txt").write_text(text)
    res = np.ones((5, 9))
    focal = np.zeros(res.shape, dtype=np.int32)
    focal[2, 0], focal[2, 4], focal[2, 8] = 1, 2, 3
    cfg = RunConfig(base_dir=str(tmp_path), circuit=CircuitConfig(pairs_file="pairs.txt", focal_shorting="all"))
    out = compute_circuit(cfg, res, focal)
    got = {(int(a), int(b)) for a, b in zip(out.resistances.patch_a, out.resistances.patch_b, strict=True)}
    assert got == solved
    assert all(math.isfinite(r) for r in out.resistances.eff_resistance)


def test_disconnected_pair_written_as_minus_one():
    res = np.ones((1, 5))
    res[0, 2] = np.nan
    out = compute_circuit(RunConfig(), res, np.array([[1, 0, 0, 0, 2]], dtype=np.int32))
    assert out.resistances.eff_resistance.iloc[0] == math.inf
    assert circuit_table(out).splitlines()[1] == "1,2,-1"
