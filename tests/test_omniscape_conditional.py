"""Omniscape's conditional connectivity: a target's window keeps only the sources whose condition matches.

References: currents added up by hand on a strip; a dense brute force that writes out Omniscape.jl's
``get_source`` / ``source_target_match!`` (``src/utils.jl``, MIT licence: sources scaled to the target's
strength first, then the non-matching ones dropped; the target's value the median (``within``) or the mode
(``equals``) of the future condition over its block) around the dense window solve of ``test_omniscape``.
"""

from __future__ import annotations

import numpy as np
import pytest

from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.kernels.omniscape import (
    OmniscapeCondition,
    condition_target_values,
    omniscape,
    source_from_resistance,
)
from test_omniscape import dense_omniscape, random_landscape


def _strip():
    # three 1-ohm cells in a row with no data around, sources 1, radius 2, 4 neighbours (test_omniscape's strip)
    r = np.pad(np.ones((1, 3)), 2, constant_values=np.nan)
    return r, np.nan_to_num(r)


def _on_strip(values):
    grid = np.full((5, 7), np.nan)
    grid[2, 2:5] = values
    return grid


def test_within_hand_worked_strip():
    # Conditions 0, 0, 5; a source must lie within [-1, +1] of the target.  Without conditions: 2, 3, 2.
    # Target 0 (value 0): of its two 0.5 A sources only cell 1 matches -> 0.5 A from cell 1: currents 0.5, 0.5, 0
    # (the dropped half is not given to the others, as in Omniscape.jl).  Target 1: only cell 0 -> 0.5, 0.5, 0.
    # Target 2 (value 5): no source within 1 -> nothing.  Sum: 1, 1, 0.
    r, s = _strip()
    cond = OmniscapeCondition(_on_strip([0.0, 0.0, 5.0]), "within", lower=-1.0, upper=1.0)
    maps = omniscape(r, s, radius=2, connectivity=4, conditions=[cond])
    np.testing.assert_allclose(maps.current[2, 2:5], [1.0, 1.0, 0.0], rtol=1e-12, atol=1e-15)
    # the flow potential uses the same sources
    plain = omniscape(r, s, radius=2, connectivity=4)
    assert (maps.flow_potential[2, 2:5] < plain.flow_potential[2, 2:5]).all()


def test_equal_compared_to_the_future_hand_worked_strip():
    # Present 0, 0, 5; future 5, 0, 5 (compare_to_future).  Target 0 (future 5): only cell 2 matches -> 0.5 A
    # through cells 2, 1, 0: currents 0.5, 0.5, 0.5.  Target 1 (future 0): only cell 0 -> 0.5, 0.5, 0.
    # Target 2 (future 5): cells 0 and 1 are 0 -> nothing.  Sum: 1, 1, 0.5.
    r, s = _strip()
    cond = OmniscapeCondition(_on_strip([0.0, 0.0, 5.0]), "equals", future=_on_strip([5.0, 0.0, 5.0]))
    assert cond.comparison == "equal"
    maps = omniscape(r, s, radius=2, connectivity=4, conditions=[cond])
    np.testing.assert_allclose(maps.current[2, 2:5], [1.0, 1.0, 0.5], rtol=1e-12, atol=1e-15)


def _mode_column_major(block: np.ndarray) -> float:
    vals = [v for v in block.T.ravel() if not np.isnan(v)]  # Julia's order: column by column
    counts = {v: vals.count(v) for v in vals}
    best = max(counts.values())
    return next(v for v in vals if counts[v] == best)


def dense_conditional(res, src, radius, block_size, conditions, connectivity=8):
    """Omniscape.jl's loop with conditions, written out: scale, then drop the sources that do not match."""
    br = (block_size - 1) // 2

    def drop_unmatched(s, target, window):
        (y, x), (y0, y1, x0, x1) = target, window
        for c in conditions:
            future = c.present if c.future is None else c.future
            block = future[y - br : y + br + 1, x - br : x + br + 1]
            pres = c.present[y0:y1, x0:x1]
            if np.isnan(block).all():  # no value at the target (Omniscape.jl stops): no source matches
                s[:] = 0.0
                continue
            if c.comparison == "within":
                v = np.median(block[~np.isnan(block)])
                drop = ((pres - v) > c.upper) | ((pres - v) < c.lower)
            else:
                drop = pres != _mode_column_major(block)
            s[drop & ~np.isnan(pres)] = 0.0  # Omniscape.jl: coalesce(missing, false), a source without data stays

    return dense_omniscape(res, src, radius, block_size, connectivity, source_filter=drop_unmatched)


@pytest.mark.parametrize(("radius", "block_size", "connectivity"), [(3, 1, 8), (4, 3, 4)])
def test_conditional_against_dense_brute_force(radius, block_size, connectivity):
    r = random_landscape(11 + radius)
    s = source_from_resistance(r)
    rng = np.random.default_rng(radius)
    temp = rng.normal(0.0, 1.0, r.shape)
    temp[rng.random(r.shape) < 0.05] = np.nan  # sources without data keep their current
    future = temp + 0.5
    cover = rng.integers(0, 3, r.shape).astype(float)
    conds = [
        OmniscapeCondition(temp, "within", lower=-0.5, upper=1.0, future=future),
        OmniscapeCondition(cover, "equal"),
    ]
    maps = omniscape(
        r, s, radius=radius, block_size=block_size, connectivity=connectivity, correct_artifacts=False, conditions=conds
    )
    ref = dense_conditional(r, s, radius, block_size, conds, connectivity)
    ok = ~np.isnan(r)
    np.testing.assert_allclose(maps.current[ok], ref[ok], rtol=1e-9, atol=1e-12)
    # the conditions do drop current: less than without them, and more than nothing
    plain = omniscape(r, s, radius=radius, block_size=block_size, connectivity=connectivity, correct_artifacts=False)
    assert 0 < np.nansum(maps.current) < np.nansum(plain.current)


def test_wide_condition_keeps_every_source():
    r = random_landscape(5)
    s = source_from_resistance(r)
    cond = OmniscapeCondition(np.zeros(r.shape), "within", lower=-1.0, upper=1.0)
    a = omniscape(r, s, radius=3, conditions=[cond]).current
    b = omniscape(r, s, radius=3).current
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_target_values_median_and_first_mode():
    v = np.array([[1.0, 2.0, 2.0], [1.0, np.nan, 7.0], [5.0, 6.0, 7.0]])
    # block read column by column: 1, 1, 5, 2, 6, 2, 7, 7 -> 1, 2 and 7 twice each: the first is 1
    assert condition_target_values(v, np.array([1]), np.array([1]), 3, "equal").tolist() == [1.0]
    assert condition_target_values(v, np.array([1]), np.array([1]), 3, "within").tolist() == [3.5]
    none = np.full((3, 3), np.nan)
    assert np.isnan(condition_target_values(none, np.array([1]), np.array([1]), 3, "within")).all()


def test_target_without_condition_data_gets_no_sources():
    r, s = _strip()
    cond = OmniscapeCondition(_on_strip([np.nan, 0.0, 0.0]), "within", lower=-1.0, upper=1.0)
    maps = omniscape(r, s, radius=2, connectivity=4, conditions=[cond])
    # target 0 has no condition value: no current of its own; targets 1 and 2 keep cell 0 (no data = kept)
    plain_without_target0 = [0.5 + 0.5, 1.0 + 1.0, 0.5 + 1.0]
    np.testing.assert_allclose(maps.current[2, 2:5], plain_without_target0, rtol=1e-12)


def test_condition_errors():
    with pytest.raises(ConfigError, match="within"):
        OmniscapeCondition(np.zeros((2, 2)), "similar")
    with pytest.raises(ConfigError, match="lower"):
        OmniscapeCondition(np.zeros((2, 2)), "within", lower=1.0, upper=-1.0)
    with pytest.raises(DataError, match="future"):
        OmniscapeCondition(np.zeros((2, 2)), future=np.zeros((3, 2)))
    with pytest.raises(DataError, match="condition"):
        omniscape(np.ones((4, 4)), np.ones((4, 4)), radius=1, conditions=[OmniscapeCondition(np.zeros((3, 3)))])


# --------------------------------------------------------------------------- stage, files and command
def test_stage_conditions_in_memory_from_files_and_the_command(tmp_path):
    from click.testing import CliRunner

    import rasterio

    from leopardgeo.cli import cli
    from leopardgeo.stages.omniscape import OmniscapeConfig, compute_omniscape, omniscape_conditions, omniscape_files
    from leopardgeo.testing import synthetic_raster
    from test_omniscape import _stage_inputs

    grid, res, suit = _stage_inputs(shape=(26, 20))
    rng = np.random.default_rng(4)
    temp = rng.normal(0.0, 1.0, res.shape)
    future = temp + 0.3
    _, rpath = synthetic_raster(tmp_path / "r.tif", res, dtype="float64")
    _, tpath = synthetic_raster(tmp_path / "t.tif", temp, dtype="float64")
    _, fpath = synthetic_raster(tmp_path / "f.tif", future, dtype="float64")
    kw = {"radius_m": 300.0, "block_size": 3, "source": "resistance", "source_threshold": 0.0}
    cond = {"conditional": True, "condition1_lower": -0.5, "condition1_upper": 0.5}
    # in memory: the rasters by name
    cfg = OmniscapeConfig(**kw, **cond, condition1="temp", condition1_future="temp_2050")
    conditions = omniscape_conditions(cfg, {"temp": temp, "temp_2050": future})
    in_memory = compute_omniscape(cfg, grid, res, suit, conditions=conditions)
    plain = compute_omniscape(OmniscapeConfig(**kw), grid, res, suit)
    assert np.nansum(in_memory.maps.current) < np.nansum(plain.maps.current)
    # from files read band by band: the same maps
    fcfg = OmniscapeConfig(**kw, **cond, condition1=str(tpath), condition1_future=str(fpath))
    from_files, _ = omniscape_files(rpath, cfg=fcfg)
    np.testing.assert_allclose(from_files.maps.current, in_memory.maps.current, rtol=1e-12, equal_nan=True)
    # the command with --condition
    out = tmp_path / "omni"
    args = ["omniscape", "--resistance", str(rpath), "--radius-m", "300", "--block-size", "3", "--out", str(out)]
    args += ["--condition", str(tpath), "--condition-future", str(fpath), "--condition-range", "-0.5", "0.5"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    with rasterio.open(out / "omniscape_current.tif") as ds:
        cur = ds.read(1, masked=True).filled(np.nan)
    np.testing.assert_allclose(cur, in_memory.maps.current.astype(np.float32), rtol=1e-6, equal_nan=True)
    bad = CliRunner().invoke(
        cli, ["omniscape", "--resistance", str(rpath), "--out", str(tmp_path / "x"), "--comparison", "equal"]
    )
    assert bad.exit_code != 0 and "--condition" in bad.output


def test_stage_condition_config_errors():
    from leopardgeo.stages.omniscape import OmniscapeConfig, omniscape_conditions

    with pytest.raises(ConfigError, match="condition1"):
        OmniscapeConfig(conditional=True)
    with pytest.raises(ConfigError, match="comparison1"):
        OmniscapeConfig(conditional=True, condition1="elevation", comparison1="near")
    with pytest.raises(ConfigError, match="lower"):
        OmniscapeConfig(conditional=True, condition1="elevation", condition1_lower=2.0, condition1_upper=1.0)
    assert OmniscapeConfig(conditional=True, condition1="x", comparison1="equals").comparison1 == "equal"
    with pytest.raises(ConfigError, match="elevation"):
        omniscape_conditions(OmniscapeConfig(conditional=True, condition1="elevatoin"), {"elevation": np.zeros((2, 2))})


def test_stage_takes_conditions_from_the_run_rasters():
    from types import SimpleNamespace

    from leopardgeo.stages.omniscape import STAGE, OmniscapeConfig
    from test_omniscape import _stage_inputs

    grid, res, suit = _stage_inputs(shape=(15, 12))
    temp = np.linspace(-2.0, 2.0, res.size).reshape(res.shape)
    o = OmniscapeConfig(radius_m=300.0, block_size=3, conditional=True, condition1="dec_temp_c", condition1_upper=0.5)
    cfg = SimpleNamespace(omniscape=o, resolve=lambda p: p)
    ctx = {"inputs": SimpleNamespace(grid=grid, rasters={"covariate:dec_temp_c": temp}), "resistance": res, "suitability": suit}
    got = STAGE.compute(cfg, ctx)["omniscape"].maps.current
    cond = OmniscapeCondition(temp, "within", lower=0.0, upper=0.5)
    src = np.where(np.isnan(res), 0.0, suit)
    src[src < o.source_threshold] = 0.0
    ref = omniscape(res, src, radius=3, block_size=3, conditions=[cond])
    np.testing.assert_array_equal(got, ref.current)


def test_memory_check_counts_the_condition_rasters():
    """A task limit that fits resistance and source but not two more band-rows of conditions is refused."""
    from leopardgeo.core.errors import MemoryLimitError
    from leopardgeo.stages.omniscape import check_omniscape_memory, omniscape_memory

    opts = {"radius": 6, "buffer": 0, "block_size": 9}
    plain = omniscape_memory((8000, 8000), opts, arrays_shared=False)["task"]
    with_two = omniscape_memory((8000, 8000), opts, arrays_shared=False, n_conditions=2)["task"]
    assert with_two - plain == 48 * 8000 * 8 * 2  # two float64 condition rasters over the band's 48 rows

    class Executor:  # a worker whose task memory lies between the two estimates
        kind = "dask"

        @staticmethod
        def task_memory_bytes() -> int:
            return (plain + with_two) // 2

    check_omniscape_memory((8000, 8000), opts, Executor(), in_memory=False)  # fits
    with pytest.raises(MemoryLimitError, match="each task"):
        check_omniscape_memory((8000, 8000), opts, Executor(), in_memory=False, n_conditions=2)
