r"""The registry of stages: the run's stages in run order, and ``RunConfig`` assembled from their sections.

Adding a stage is one new module in ``leopardgeo/stages/`` that ends with ``STAGE = Stage(...)`` (its config
section dataclass beside it, see :mod:`leopardgeo.stages.base`) and one entry in :data:`STAGES` here.  The
runner (:mod:`leopardgeo.runner.stagegraph`, :func:`leopardgeo.runner.pipeline.run`) works from this list
and knows no stage by name.

This module is also where the configuration functions bound to ``RunConfig`` live: :func:`load_config`,
:func:`load_config_string`, :func:`demo_config` and :func:`config_template` (the generic machinery they
call is :mod:`leopardgeo.config`).

Examples
--------
>>> cfg = load_config_string("[links]\nrule = 'knn'")
>>> cfg.links.rule.value, cfg.patches.min_area_ha
('knn', 5000.0)
>>> [s.name for s in STAGES][:4]
['inputs', 'habitat', 'resistance', 'patches']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leopardgeo import config as _config
from leopardgeo.config import FocalShorting, VectorInput, config_hash, dump_config, make_run_config
from leopardgeo.config.ensemble import EnsembleConfig
from leopardgeo.stages import (
    barrier_mapper,
    circuit,
    corridors,
    crossborder,
    graph,
    habitat,
    inputs,
    metrics,
    omniscape,
    patches,
    pinchpoints,
    resistance,
    score,
    sites,
    territories,
)
from leopardgeo.stages.barrier_mapper import BarrierMapperConfig
from leopardgeo.stages.base import Stage
from leopardgeo.stages.circuit import CircuitConfig
from leopardgeo.stages.corridors import CorridorConfig
from leopardgeo.stages.crossborder import CrossBorderConfig
from leopardgeo.stages.graph import LinkConfig
from leopardgeo.stages.habitat import HabitatConfig
from leopardgeo.stages.inputs import GridConfig, InputsConfig
from leopardgeo.stages.metrics import MetricsConfig
from leopardgeo.stages.patches import PatchConfig
from leopardgeo.stages.resistance import BarrierConfig, ResistanceConfig
from leopardgeo.stages.score import ScoreConfig
from leopardgeo.stages.sites import SiteConfig
from leopardgeo.stages.territories import TerritoryConfig

__all__ = [
    "STAGES",
    "BarrierConfig",
    "BarrierMapperConfig",
    "CircuitConfig",
    "CorridorConfig",
    "CrossBorderConfig",
    "GridConfig",
    "HabitatConfig",
    "InputsConfig",
    "LinkConfig",
    "MetricsConfig",
    "PatchConfig",
    "ResistanceConfig",
    "RunConfig",
    "ScoreConfig",
    "SiteConfig",
    "TerritoryConfig",
    "config_hash",
    "config_template",
    "demo_config",
    "dump_config",
    "load_config",
    "load_config_string",
]

#: The run as data: every stage (:func:`leopardgeo.runner.stagegraph.resolve` runs each after the stages it
#: needs or uses).  This order is also the order of the layers in ``leopardgeo.gpkg``.
STAGES: tuple[Stage, ...] = (
    inputs.STAGE,
    habitat.STAGE,
    resistance.STAGE,
    patches.STAGE,
    graph.STAGE,
    corridors.STAGE,
    circuit.STAGE,
    pinchpoints.STAGE,
    barrier_mapper.STAGE,
    omniscape.STAGE,
    metrics.STAGE,
    crossborder.STAGE,
    territories.STAGE,
    score.STAGE,
    sites.EVALUATION_STAGE,
    sites.SIMULATION_STAGE,
    sites.STAGE,
)

#: The order the sections are written in TOML (the order of earlier versions; a new section goes last).
_SECTION_ORDER = (
    "grid", "inputs", "habitat", "resistance", "patches", "links", "corridors", "circuit", "barrier_mapper",
    "metrics", "crossborder", "score", "sites", "territories",
)  # fmt: skip


def _sections() -> list[tuple[str, type, str]]:
    owned = [sec for s in STAGES for sec in s.config]
    rank = {n: i for i, n in enumerate(_SECTION_ORDER)}
    return sorted(owned, key=lambda sec: rank.get(sec.name, len(rank)))


#: The whole run's configuration: one frozen section per stage section, then ``output`` and ``base_dir``.
RunConfig = make_run_config(
    [*_sections(), ("ensemble", EnsembleConfig, "resistance ensembles (`leopardgeo ensemble`; not read by `run`)")],
    module=__name__,
)


def load_config_string(text: str, *, base_dir: str | Path = ".") -> Any:
    """Parse TOML text into a :class:`RunConfig` (see :func:`leopardgeo.config.read_config_string`).

    Raises
    ------
    ConfigError
        On a TOML syntax error, an unknown key or a bad value.
    """
    return _config.read_config_string(RunConfig, text, base_dir=base_dir)


def load_config(path: str | Path, *, over: Any = None) -> Any:
    """Read a TOML config file into a :class:`RunConfig` (see :func:`leopardgeo.config.read_config`).

    ``over`` (an earlier run's effective config, or :func:`demo_config`) completes a file that holds only
    some stage sections.

    Raises
    ------
    ConfigError
        If the file is missing or invalid.
    """
    return _config.read_config(RunConfig, path, over=over)


def demo_config(data_dir: str | Path | None = None) -> Any:
    """The configuration of the embedded Amur study area (``data/amur``).

    Parameters
    ----------
    data_dir
        Folder of the demo data; found automatically when omitted.
    """
    from leopardgeo.core.data import demo_data_dir

    d = Path(data_dir) if data_dir is not None else demo_data_dir()
    gpkg = "amur.gpkg"
    return RunConfig(
        base_dir=str(d.resolve()),
        grid=GridConfig(template="landmask.tif"),
        inputs=InputsConfig(
            landmask="landmask.tif",
            elevation="elevation.tif",
            landcover="landcover.tif",
            study_area=VectorInput(path=gpkg, layer="study_area"),
            countries=VectorInput(path=gpkg, layer="countries"),
            borders=VectorInput(path=gpkg, layer="borders"),
            protected_areas=VectorInput(path=gpkg, layer="protected_areas"),
            sites=VectorInput(path=gpkg, layer="sites"),
            settlements=VectorInput(path=gpkg, layer="settlements"),
            covariates={"dec_temp_c": "dec_temp_c.tif", "dec_precip_mm": "dec_precip_mm.tif"},
        ),
        # 35 habitat patches, 595 pairs: one factor for all pairs instead of one network and factor per pair
        # (Circuitscape's pairwise convention); docs/circuit.md compares the two.
        circuit=CircuitConfig(focal_shorting=FocalShorting.ALL),
    )


def config_template(cfg: Any = None, *, relative_to: str | Path | None = None) -> str:
    """A commented TOML template with every key, its default and its source (the demo's when ``cfg`` is None).

    See :func:`leopardgeo.config.config_template`.
    """
    return _config.config_template(demo_config() if cfg is None else cfg, relative_to=relative_to)
