"""``[[scenarios]]``: named lists of edits to a run's inputs ("what if a road, a fence, an underpass, a fire").

A scenario is data: a name, a description, whether it is illustrative, and a list of edits.  Each edit
takes its geometry from a vector file (any CRS, reprojected onto the grid) or from inline ``coords``
(longitude / latitude, WGS 84).  :mod:`leopardgeo.stages.scenario` applies the edits; the scenario runner
reruns only the stages they touch and compares the result with the baseline.

Examples
--------
>>> from leopardgeo.runner.registry import load_config_string
>>> cfg = load_config_string('''
... [[scenarios]]
... name = "new_road"
... [[scenarios.edits]]
... kind = "line"
... coords = [[131.9, 43.6], [132.0, 43.8]]
... mode = "impassable"
... width_m = 60
... ''')
>>> s = cfg.scenarios[0]
>>> s.name, s.edits[0].kind.value, s.edits[0].touches
('new_road', 'line', ('resistance',))
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from leopardgeo.config.fields import VectorInput, _f
from leopardgeo.core.errors import ConfigError

__all__ = ["EditConfig", "EditKind", "LineMode", "PolygonEffect", "ScenarioConfig"]


class EditKind(enum.StrEnum):
    """What an edit is."""

    LINE = "line"  #: a road, railway or fence: a resistance penalty or impassable, over a buffer width
    GAP = "gap"  #: a crossing structure or gap (points or lines): restores passage over a width
    POLYGON = "polygon"  #: development, restoration or fire over an area
    BORDER_FENCE = "border_fence"  #: a fence on every national border of the country layer, open at gaps


class LineMode(enum.StrEnum):
    """How a line edit (or the border fence) changes resistance."""

    IMPASSABLE = "impassable"  #: cells become no data (infinite cost) and hold no habitat
    PENALTY = "penalty"  #: ``penalty`` is added to the cells' resistance


class PolygonEffect(enum.StrEnum):
    """What a polygon edit does."""

    DEVELOPMENT = "development"  #: resistance up to at least ``resistance``, suitability × ``habitat_factor``
    RESTORATION = "restoration"  #: resistance down to at most ``resistance``, suitability up to at least ``habitat``
    FIRE = "fire"  #: suitability × a factor that recovers linearly over ``years``


#: The stages whose results each kind of edit changes directly.
_TOUCHES = {
    EditKind.GAP: ("resistance",),
    EditKind.BORDER_FENCE: ("resistance", "patches"),  # the fence also cuts transboundary patches at the border
}


@dataclass(frozen=True, slots=True, kw_only=True)
class EditConfig:
    """One edit of a scenario: its kind, its geometry (a file or inline lon / lat) and its effect."""

    kind: EditKind = _f(doc="line | gap | polygon | border_fence")
    name: str = _f("", doc="label used in logs, tables and the `edits` layer")
    path: str | None = _f(None, doc="vector file of the edit's geometry (any CRS; reprojected onto the grid)")
    layer: str | None = _f(None, doc="layer of `path`; the first layer when omitted")
    coords: tuple[tuple[float, float], ...] = _f(
        (),
        doc=(
            "inline geometry as [longitude, latitude] pairs (WGS 84): a line for kind = line, one point per pair "
            "for gap and border_fence gaps, a ring for polygon"
        ),
    )
    mode: LineMode = _f(LineMode.IMPASSABLE, doc="line / border_fence: impassable or penalty")
    penalty: float = _f(1000.0, doc="line / border_fence with mode = penalty: resistance added to the cells")
    width_m: float = _f(
        0.0,
        doc=(
            "line: width of the barrier, metres (an impassable line is burned at least two cells wide so no diagonal "
            "move slips through); gap / border_fence: width of each opening, metres (0: 1000 for the border fence, "
            "one cell for a gap)"
        ),
    )
    remove_habitat: bool = _f(
        False,
        doc=(
            "line: its cells hold no habitat (suitability 0; patches and territories are recomputed), e.g. a wide "
            "highway or a settlement's fence; off, a line only changes resistance"
        ),
    )
    effect: PolygonEffect = _f(PolygonEffect.RESTORATION, doc="polygon: development | restoration | fire")
    resistance: float = _f(
        0.0,
        doc=(
            "polygon: development raises resistance to at least this (0: 100), restoration lowers it to at most "
            "this (0: 1, the lowest resistance)"
        ),
    )
    habitat: float = _f(0.8, doc="polygon, restoration: suitability raised to at least this, 0..1")
    habitat_factor: float = _f(
        0.0, doc="polygon, development and fire: suitability multiplied by this right after the event, 0..1"
    )
    years: float = _f(10.0, doc="polygon, fire: years until the burnt habitat has recovered (linearly)")
    age_years: float = _f(0.0, doc="polygon, fire: years since the fire at the time the scenario describes")

    def __post_init__(self) -> None:
        from leopardgeo.config.fields import _normalise, _positive

        where = f"scenarios.edits {self.name!r}" if self.name else "scenarios.edits"
        _normalise(self, "scenarios.edits")
        object.__setattr__(self, "coords", tuple(tuple(float(v) for v in c) for c in self.coords))
        for key in ("penalty", "width_m", "resistance", "years", "age_years"):
            _positive(getattr(self, key), f"{where}.{key}", allow_zero=key != "years")
        for key in ("habitat", "habitat_factor"):
            v = getattr(self, key)
            if not 0.0 <= v <= 1.0:
                msg = f"[{where}] {key}: expected a suitability between 0 and 1, found {v!r}."
                raise ConfigError(msg)
        bad = [c for c in self.coords if len(c) != 2 or not (-180 <= c[0] <= 180 and -90 <= c[1] <= 90)]
        if bad:
            msg = (
                f"[{where}] coords: expected [longitude, latitude] pairs in degrees, found {list(bad[0])!r}. "
                "Write e.g. coords = [[131.94, 43.70], [131.99, 43.75]]."
            )
            raise ConfigError(msg)
        if self.path is not None and self.coords:
            msg = f"[{where}]: expected either path or coords, found both. Keep one."
            raise ConfigError(msg)
        need = {EditKind.LINE: 2, EditKind.POLYGON: 3, EditKind.GAP: 1}.get(self.kind, 0)
        if self.coords and len(self.coords) < need:
            msg = f"[{where}] coords: a {self.kind.value} needs at least {need} [lon, lat] pairs, found {len(self.coords)}."
            raise ConfigError(msg)

    @property
    def source(self) -> VectorInput | None:
        """The edit's vector file, or None for inline coordinates."""
        return VectorInput(path=self.path, layer=self.layer) if self.path is not None else None

    @property
    def touches(self) -> tuple[str, ...]:
        """The stages whose values this edit changes directly (``habitat``, ``resistance``, ``patches``).

        A line changes resistance, and habitat too with ``remove_habitat``.  Fire
        changes habitat only (resistance follows where it is derived from suitability).  The border fence
        changes resistance and cuts the patches that straddle the border.
        """
        if self.kind in _TOUCHES:
            return _TOUCHES[self.kind]
        if self.kind is EditKind.LINE:
            return ("habitat", "resistance") if self.remove_habitat else ("resistance",)
        if self.effect is PolygonEffect.FIRE:
            return ("habitat",)
        return ("habitat", "resistance")


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScenarioConfig:
    """A named scenario: a list of edits to the run's inputs, run and compared with the baseline."""

    name: str = _f(doc="scenario name (letters, digits, '_', '-', '.'; its folder under <out>/scenarios/)")
    description: str = _f("", doc="what the scenario stands for, shown in the comparison report")
    illustrative: bool = _f(
        False, doc="true for made-up geometry (drawn to show the method): labelled as illustrative in every output"
    )
    edits: tuple[EditConfig, ...] = _f((), doc="[[scenarios.edits]]: the edits, applied in order")

    def __post_init__(self) -> None:
        from leopardgeo.config.fields import _normalise

        _normalise(self, "scenarios")
        if not _NAME.match(self.name):
            msg = (
                f"[scenarios] name: expected letters, digits, '_', '-' or '.' (at most 64, used as a folder name), "
                f"found {self.name!r}. Write e.g. name = 'new_road'."
            )
            raise ConfigError(msg)
        if not self.edits:
            msg = f"[scenarios] {self.name!r}: expected at least one [[scenarios.edits]], found none."
            raise ConfigError(msg)
        for e in self.edits:
            if e.path is None and not e.coords and e.kind is not EditKind.BORDER_FENCE:
                msg = (
                    f"[scenarios] {self.name!r}: a {e.kind.value} edit {e.name!r} needs a geometry; found neither path "
                    "nor coords. Give path = 'file.gpkg' (any CRS) or coords = [[lon, lat], ...]."
                )
                raise ConfigError(msg)

    @property
    def touches(self) -> tuple[str, ...]:
        """The stages the scenario's edits change directly, in run order."""
        hit = {t for e in self.edits for t in e.touches}
        return tuple(s for s in ("habitat", "resistance", "patches") if s in hit)

    @property
    def fence(self) -> bool:
        """Whether the scenario holds a border fence (which cuts transboundary patches at the border)."""
        return any(e.kind is EditKind.BORDER_FENCE for e in self.edits)


def check_scenario_names(scenarios: tuple[ScenarioConfig, ...]) -> None:
    """Raise :class:`ConfigError` when two scenarios share a name (their folders would collide)."""
    seen: set[str] = set()
    for s in scenarios:
        if s.name.lower() in seen:
            msg = f"[[scenarios]]: expected unique names, found {s.name!r} twice. Rename one."
            raise ConfigError(msg)
        seen.add(s.name.lower())
