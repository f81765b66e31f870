"""What a stage declares about itself: :class:`Stage` and the config :class:`Section` it owns.

Each stage module ends with one ``STAGE = Stage(...)``: its name, the config section it owns (the frozen
dataclass beside it), the stages it needs, what it adds to the run's context, the function that computes
it, and what it writes into the run folder (GeoPackage layers, rasters, tables; their QGIS styles come from
:mod:`leopardgeo.io.styles` by name).  The run layer (:mod:`leopardgeo.runner.registry`) lists the stages,
assembles ``RunConfig`` from their sections and runs them (:mod:`leopardgeo.runner.stagegraph`); it knows
no stage by name.

Examples
--------
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True, slots=True, kw_only=True)
... class DoubleConfig:
...     factor: float = 2.0
>>> double = Stage(
...     "double", "doubling the suitability",
...     lambda cfg, ctx: {"doubled": ctx["suitability"] * cfg.double.factor},
...     config=(Section("double", DoubleConfig, "doubling"),),
...     needs=("habitat",), produces=("doubled",),
... )
>>> double.sections
('double',)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = ["Section", "Stage"]

#: A run configuration (``leopardgeo.runner.registry.RunConfig``): one attribute per section.
RunConfigLike = Any
#: The run's values by key, as the stages produced them (``ctx["graph"]``, ``ctx["patches"]``, ...).
Context = Mapping[str, Any]


class Section(NamedTuple):
    """A config section a stage owns: its TOML table name, its frozen dataclass, a one-line description."""

    name: str
    cls: type
    doc: str


def _always(cfg: RunConfigLike) -> bool:
    return True


@dataclass(frozen=True)
class Stage:
    """One stage of a run, as data.

    Parameters
    ----------
    name
        Unique name (also the key in ``manifest.json``'s ``stages``).
    label
        What the progress bar shows.
    compute
        ``compute(config, context) -> {key: value}`` for the keys in ``produces``.
    config
        The config sections the stage owns (``RunConfig`` gets one attribute per section).
    sections
        Config sections the stage reads (its hash covers them); default: the names of ``config``.  An entry
        ``"section.key"`` covers one key of a section, for a stage that reads only part of one.
    needs
        Stages that must run first (the stage is skipped when one of them is disabled).
    uses
        Stages read when they are enabled (``None`` in the context otherwise); a target's ``uses`` run with it.
    after
        Stages that, when they run too, run first (and enter the hash), without being pulled in: e.g. the
        stages that add attributes to the graph's links before this one changes it.
    produces
        Context keys the stage sets.
    mutates
        Upstream context keys the stage changes in place; saved with the stage so a reuse restores them.
    enabled
        Whether the configuration asks for the stage.
    reads_inputs
        The stage may read the configuration's input files (its hash covers their SHA-256); ``False``
        promises it reads none (its hash then changes with an input only through its upstream stages).
    outputs
        Files of the run folder that can come from this stage (documentation and the output listing).
    files
        ``files(config)``: the files a run with ``config`` writes for this stage (default: ``outputs``);
        checked before any work so a run without ``--overwrite`` fails early.
    layers
        ``layers(config, context) -> {name: GeoDataFrame}``: the stage's layers of ``leopardgeo.gpkg``.
    write
        ``write(writer, config, context) -> {timing: seconds} | None``: stage the stage's rasters and tables
        with the run's :class:`leopardgeo.io.OutputWriter`.
    """

    name: str
    label: str
    compute: Callable[[RunConfigLike, dict[str, Any]], Mapping[str, Any]]
    config: tuple[Section, ...] = ()
    sections: tuple[str, ...] | None = None
    needs: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    produces: tuple[str, ...] = ()
    mutates: tuple[str, ...] = ()
    enabled: Callable[[RunConfigLike], bool] = _always
    reads_inputs: bool = True
    outputs: tuple[str, ...] = ()
    files: Callable[[RunConfigLike], tuple[str, ...]] | None = None
    layers: Callable[[RunConfigLike, Context], Mapping[str, Any]] | None = None
    write: Callable[[Any, RunConfigLike, Context], Mapping[str, float] | None] | None = None

    def __post_init__(self) -> None:
        if self.sections is None:
            object.__setattr__(self, "sections", tuple(s.name for s in self.config))

    def files_for(self, cfg: RunConfigLike) -> tuple[str, ...]:
        """The files a run with ``cfg`` writes for this stage."""
        return tuple(self.files(cfg)) if self.files is not None else self.outputs
