from __future__ import annotations

import pytest

from leopardgeo.config import ProtectedAreaMode, dump_config
from leopardgeo.core.errors import ConfigError
from leopardgeo.runner.registry import RunConfig, config_template, demo_config, load_config, load_config_string


def test_defaults_carry_the_sourced_territory_minimum():
    cfg = RunConfig()
    assert cfg.patches.min_area_ha == 5000.0  # smallest territory, 5,000-30,000 ha
    assert cfg.patches.protected_areas is ProtectedAreaMode.LABEL  # protected areas label patches, add no habitat


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as err:
        load_config_string("[patches]\nmin_area = 3\n")
    msg = str(err.value)
    assert "unknown key 'min_area'" in msg
    assert "min_area_ha" in msg and "min_suitability" in msg


def test_unknown_section_lists_sections():
    with pytest.raises(ConfigError, match="unknown key 'patchez'.*patches"):
        load_config_string("[patchez]\nx = 1\n")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[patches]\nmin_suitability = 1.5", r"min_suitability: expected a value in 0..1, found 1.5"),
        ("[patches]\nmin_area_ha = -1", r"min_area_ha: expected a finite number >= 0"),
        ("[patches]\nprotected_areas = 'fuse'", r"expected one of \['label', 'merge', 'separate', 'ignore'\]"),
        ("[patches]\nconnectivity = 6", "expected 4 or 8"),
        ("[patches]\nmin_area_ha = 'big'", "expected a number, found 'big'"),
        ("[resistance]\nmax_resistance = 1", "expected a finite number > 1"),
        ("[resistance]\nmax_resistance = inf", "expected a finite number > 1, found inf"),
        ("[habitat]\nintercept = nan", r"habitat.intercept: expected a number, found nan"),
        ("[habitat]\nintercept = -inf", r"\[habitat\] intercept: expected a finite number .*found -inf"),
        ("[habitat.coefficients]\nforest = inf", r"\[habitat\] coefficients.forest: expected a finite number"),
        ("[territories]\nseed = nan", r"territories.seed: expected a number, found nan"),
        ("[resistance]\nclass_values = { 1 = 0 }", "expected resistance > 0 for every class"),
        ("[output]\noverwrite = 'yes'", "expected true or false"),
        ("[grid]\nbounds = [1, 2, 3]", "expected a list of 4 values"),
        ("[patches\n", "not valid TOML"),
    ],
)
def test_bad_values_raise_config_error(text, match):
    with pytest.raises(ConfigError, match=match):
        load_config_string(text)


@pytest.mark.parametrize(
    ("section", "key", "value", "match"),
    [("links", "k_nearest", float("nan"), "expected a number, found nan"),
     ("links", "k_nearest", 2.5, "expected a whole number, found 2.5"),
     ("territories", "replicates", float("inf"), "expected a whole number, found inf"),
     ("barrier_mapper", "n_top", "20", "expected a number, found '20'"),
     ("habitat", "intercept", float("inf"), "expected a finite number")],
)  # fmt: skip
def test_sections_built_in_python_check_numbers_as_a_file_does(section, key, value, match):
    # a NaN k_nearest or seed, set in Python, was accepted (a config file's numbers were checked, these not)
    import dataclasses

    obj = getattr(demo_config(), section)
    with pytest.raises(ConfigError, match=rf"\[{section}\] {key}: {match}"):
        dataclasses.replace(obj, **{key: value})


def test_numpy_numbers_are_read_as_python_numbers():
    import dataclasses

    import numpy as np

    links = dataclasses.replace(demo_config().links, k_nearest=np.int64(4))
    assert links.k_nearest == 4 and type(links.k_nearest) is int


def test_config_is_frozen():
    cfg = RunConfig()
    with pytest.raises(AttributeError):
        cfg.patches.min_area_ha = 1  # type: ignore[misc]


def test_dump_round_trips(tmp_path):
    cfg = demo_config()
    text = dump_config(cfg)
    again = load_config_string(text, base_dir=tmp_path)
    assert again == cfg


def test_template_is_commented_and_loads_to_the_demo(tmp_path):
    text = config_template()
    assert text.count("# ") > 30
    assert "Hebblewhite" in text and "5,000" in text and "Keeley" in text
    assert "Legates & Willmott" in text and "GeoNames" in text and "residency_covariates" in text
    assert "[territories]" in text and "Vitkalova" in text and "1 male : 1.2 females" in text and "# prey_full_density = " in text
    path = tmp_path / "c.toml"
    path.write_text(text)
    assert load_config(path) == demo_config()


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "c.toml"
    path.write_text('base_dir = "data"\n[inputs]\nlandmask = "lm.tif"\n')
    cfg = load_config(path)
    assert cfg.resolve(cfg.inputs.landmask) == (tmp_path / "sub" / "data" / "lm.tif").resolve()


def test_missing_config_file_says_how_to_make_one(tmp_path):
    with pytest.raises(ConfigError, match="leopardgeo init"):
        load_config(tmp_path / "nope.toml")


def test_vector_input_accepts_a_plain_path():
    cfg = load_config_string('[inputs]\nborders = "b.gpkg"\nprotected_areas = { path = "w.gpkg", layer = "pa" }\n')
    assert cfg.inputs.borders.path == "b.gpkg" and cfg.inputs.borders.layer is None
    assert cfg.inputs.protected_areas.layer == "pa"


def test_barriers_parse_as_a_list_of_tables():
    cfg = load_config_string('[[resistance.barriers]]\npath = "roads.gpkg"\nmode = "max"\npenalty = 80\nbuffer_m = 250\n')
    (b,) = cfg.resistance.barriers
    assert b.mode == "max" and b.penalty == 80.0 and b.buffer_m == 250.0
    with pytest.raises(ConfigError, match=r"expected one of \['add', 'max', 'impassable'\]"):
        load_config_string('[[resistance.barriers]]\npath = "r.gpkg"\nmode = "wall"\n')
