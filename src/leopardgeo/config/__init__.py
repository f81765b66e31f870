r"""Typed, frozen run configuration loaded from TOML: the generic machinery.

Each stage owns its config section: a frozen, slotted, keyword-only dataclass that lives beside the stage in
``leopardgeo/stages/`` (``PatchConfig`` in ``stages/patches.py``, ...).  This layer knows none of them: it
holds the choices shared by kernels and stages (``StrEnum``\ s), :class:`VectorInput`, the run's own
:class:`OutputConfig`, the field helper :func:`param` and the validation helpers the sections call, the
parser (unknown keys and bad values raise :class:`~leopardgeo.core.errors.ConfigError` listing the valid
ones; nothing falls back silently), and :func:`make_run_config`, which the run layer
(:mod:`leopardgeo.runner.registry`) calls with the sections its stages declare to build ``RunConfig``.
Every default that comes from the literature says where from (see ``docs/parameters.md``); field names
carry their unit.

Examples
--------
>>> from leopardgeo.runner.registry import load_config_string
>>> cfg = load_config_string('''
... [patches]
... min_area_ha = 8000
... ''')
>>> cfg.patches.min_area_ha, cfg.patches.min_suitability
(8000.0, 0.5)
>>> load_config_string("[patches]\\nmin_area = 1")
Traceback (most recent call last):
...
leopardgeo.core.errors.ConfigError: [patches] unknown key 'min_area'; valid keys: ...
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from leopardgeo.config.fields import VectorInput, _f, _from_dict
from leopardgeo.config.fields import _normalise as _normalise  # re-exported: the section modules use them
from leopardgeo.config.fields import _positive as _positive
from leopardgeo.core.errors import ConfigError
from leopardgeo.core.executor import ExecutorConfig

__all__ = [
    "ExecutorConfig",
    "choice",
    "CircuitMode",
    "CircuitSolver",
    "FocalShorting",
    "Combine",
    "FenceMode",
    "PairSet",
    "HabitatMethod",
    "LinkRule",
    "OutputConfig",
    "ProtectedAreaMode",
    "ResistanceMethod",
    "BarrierMode",
    "TerritoryQuality",
    "VectorInput",
    "config_hash",
    "config_template",
    "decode_utf8",
    "dump_config",
    "make_run_config",
    "param",
    "read_config",
    "read_config_string",
]


# ---------------------------------------------------------------------- enums
class HabitatMethod(enum.StrEnum):
    """How suitability is obtained."""

    RASTER = "raster"  #: read a 0..1 suitability raster
    RSF = "rsf"  #: logistic model from covariates and a coefficient table


class ResistanceMethod(enum.StrEnum):
    """How resistance is derived."""

    NEGATIVE_EXPONENTIAL = "negative_exponential"  #: Keeley et al. 2016 transform of suitability
    LINEAR = "linear"  #: linear in suitability
    CLASSES = "classes"  #: lookup table on a class raster (land cover)
    RASTER = "raster"  #: read a resistance raster as it is (inputs.resistance)


class BarrierMode(enum.StrEnum):
    """How a barrier layer changes resistance where it is burned in."""

    ADD = "add"  #: resistance + penalty
    MAX = "max"  #: max(resistance, penalty)
    IMPASSABLE = "impassable"  #: no data (infinite cost), e.g. a fence


class LinkRule(enum.StrEnum):
    """How patches are linked (see :mod:`leopardgeo.stages.graph`)."""

    PLANAR = "planar"  #: cost-Voronoi adjacency in one pass (minimum planar graph, Fall et al. 2007)
    CUTOFF = "cutoff"  #: all pairs within max_cwd and/or max_euclid_m
    KNN = "knn"  #: k nearest patches by least-cost distance


def choice(cls: type[enum.Enum], value: Any, name: str) -> Any:
    """``cls(value)``, or a :class:`ConfigError` naming ``name`` and the values there are.

    Examples
    --------
    >>> choice(CircuitMode, "pairwise", "mode")
    <CircuitMode.PAIRWISE: 'pairwise'>
    >>> choice(CircuitMode, "pairwize", "mode")
    Traceback (most recent call last):
    ...
    leopardgeo.core.errors.ConfigError: mode: expected one of ['pairwise', 'one_to_all', 'all_to_one'], found 'pairwize'.
    """
    try:
        return cls(value)
    except ValueError:
        msg = f"{name}: expected one of {[m.value for m in cls]}, found {value!r}."
        raise ConfigError(msg) from None


class CircuitMode(enum.StrEnum):
    """Which currents are driven (Circuitscape's modes)."""

    PAIRWISE = "pairwise"  #: 1 A from one patch to another, for each pair
    ONE_TO_ALL = "one_to_all"  #: 1 A into one patch, every other patch grounded
    ALL_TO_ONE = "all_to_one"  #: 1 A into every other patch, one patch grounded


class PairSet(enum.StrEnum):
    """Which patch pairs a pairwise circuit run solves."""

    ALL = "all"  #: every pair of patches (Circuitscape's default)
    LINKS = "links"  #: only pairs joined by a link of the graph


class FenceMode(enum.StrEnum):
    """The border-fence scenario of the cross-border evaluation."""

    NONE = "none"  #: no scenario
    IMPASSABLE = "impassable"  #: border cells become no data, except at the listed gaps
    PENALTY = "penalty"  #: border cells get `fence_penalty` added to their resistance, except at the gaps


class CircuitSolver(enum.StrEnum):
    """Linear solver for the circuit."""

    AUTO = "auto"  #: a direct factor (PARDISO, else CHOLMOD, else SuperLU) where it pays off and fits, else amg
    AMG = "amg"  #: conjugate gradients preconditioned by classical AMG (pyamg)
    PARDISO = "pardiso"  #: MKL PARDISO sparse Cholesky (pypardiso), reused for every solve
    CHOLMOD = "cholmod"  #: CHOLMOD sparse Cholesky (cholespy), reused for every solve
    SUPERLU = "superlu"  #: SciPy's SuperLU sparse LU, reused for every solve


class FocalShorting(enum.StrEnum):
    """Which focal patches a pairwise circuit solve short-circuits."""

    PAIR = "pair"  #: only the pair's two patches (Circuitscape's pairwise convention)
    ALL = "all"  #: every patch in every solve (one matrix for all pairs; Circuitscape with the patches as short-circuit regions)


class Combine(enum.StrEnum):
    """How per-link rasters are combined into one map."""

    MAX = "max"
    SUM = "sum"


class TerritoryQuality(enum.StrEnum):
    """The habitat-quality surface territories are packed on."""

    SUITABILITY = "suitability"  #: the run's habitat suitability 0..1
    PREY = "prey"  #: [inputs] prey_density scaled by [territories] prey_full_density


class ProtectedAreaMode(enum.StrEnum):
    """How protected areas enter the patches."""

    LABEL = "label"  #: patches from suitability only; protected areas name the patches they overlap
    MERGE = "merge"  #: protected cells join the habitat cores they touch
    SEPARATE = "separate"  #: each group of overlapping protected areas is a patch of its own
    IGNORE = "ignore"  #: patches from suitability only


#: Upper bounds on counts that only a typing mistake reaches (10**9 replicates would run for years).
MAX_REPLICATES = 10_000
MAX_DRAWS = 1_000_000
MAX_SIMULATION_RUNS = 100_000


# ---------------------------------------------------------------------- sections
@dataclass(frozen=True, slots=True, kw_only=True)
class OutputConfig:
    """Where and how outputs are written."""

    dir: str = _f("out", doc="output folder (relative to the current directory)")
    overwrite: bool = _f(False, doc="replace existing outputs")


#: The documented field helper for section dataclasses: ``x_m: float = param(100.0, doc="...")``.
param = _f


def _resolve_path(self: Any, path: str | None) -> Path | None:
    """An input path made absolute against :attr:`base_dir`."""
    if path is None:
        return None
    p = Path(path).expanduser()
    return p if p.is_absolute() else (Path(self.base_dir) / p).resolve()


def _replace_sections(self: Any, **sections: Any) -> Any:
    """A copy with whole sections replaced (configs are frozen)."""
    return dataclasses.replace(self, **sections)


def make_run_config(sections: typing.Iterable[tuple[str, type, str]], *, module: str = __name__) -> type:
    r"""The frozen ``RunConfig`` class with one attribute per section, then ``output`` and ``base_dir``.

    Parameters
    ----------
    sections
        ``(name, dataclass, description)`` of each section, in the order they are written to TOML
        (:class:`leopardgeo.stages.base.Section` is such a triple).
    module
        The module the class is found in (for pickling and documentation).

    Raises
    ------
    ConfigError
        If two sections share a name, or one is named ``output``, ``executor`` or ``base_dir``.

    Examples
    --------
    >>> @dataclass(frozen=True, slots=True, kw_only=True)
    ... class DemoSection:
    ...     k: int = param(3, doc="a number")
    >>> Config = make_run_config([("demo", DemoSection, "a demo section")])
    >>> Config().demo.k, [f.name for f in dataclasses.fields(Config)]
    (3, ['demo', 'output', 'executor', 'base_dir', 'scenarios'])
    >>> read_config_string(Config, "[demo]\nk = 4").demo.k
    4
    """
    fields: list[tuple[str, type, Any]] = []
    seen: set[str] = {"output", "executor", "base_dir", "scenarios"}
    for name, cls, doc in sections:
        if name in seen:
            msg = f"config section {name!r} is declared twice (or shadows a run setting); expected unique names."
            raise ConfigError(msg)
        seen.add(name)
        fields.append((name, cls, _f(doc=doc, factory=cls)))
    fields.append(("output", OutputConfig, _f(doc="outputs", factory=OutputConfig)))
    fields.append(
        (
            "executor",
            ExecutorConfig,
            _f(doc="where parallel tasks run: local threads (default) or a Dask cluster; results do not depend on it",
               factory=ExecutorConfig),
        )
    )  # fmt: skip
    from leopardgeo.config.scenario import ScenarioConfig, check_scenario_names

    fields.append(("base_dir", str, _f(".", doc="folder that relative input paths start from")))
    fields.append(
        (
            "scenarios",
            tuple[ScenarioConfig, ...],
            _f((), doc="[[scenarios]]: named lists of edits (roads, fences, crossings, restoration), each compared with the run"),
        )
    )

    def post_init(self: Any) -> None:
        if isinstance(self.scenarios, list):
            object.__setattr__(self, "scenarios", tuple(self.scenarios))
        check_scenario_names(self.scenarios)

    ns = {"resolve": _resolve_path, "replace": _replace_sections, "__post_init__": post_init,
          "__doc__": "The whole run: one section per stage."}  # fmt: skip
    cls = dataclasses.make_dataclass("RunConfig", fields, namespace=ns, frozen=True, slots=True, kw_only=True)
    cls.__module__ = module  # (make_dataclass takes ``module`` only from Python 3.12)
    return cls


def read_config_string(cls: type, text: str, *, base_dir: str | Path = ".") -> Any:
    """Parse TOML text into a run configuration of class ``cls`` (from :func:`make_run_config`).

    Raises
    ------
    ConfigError
        On a TOML syntax error, an unknown key or a bad value.
    """
    text = text.removeprefix("\ufeff")  # a byte-order mark, as some Windows editors write
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"config is not valid TOML: {exc}. Check quotes and [section] headers."
        raise ConfigError(msg) from exc
    root = Path(base_dir).resolve()
    given = data.get("base_dir", ".")
    if not isinstance(given, str):
        msg = f"base_dir: expected a string, found {given!r}."
        raise ConfigError(msg)
    data["base_dir"] = str((root / Path(given).expanduser()).resolve())
    return _from_dict(cls, data, "")


def read_config(cls: type, path: str | Path, *, over: Any = None) -> Any:
    r"""Read a TOML config file; relative input paths resolve against its folder.

    Parameters
    ----------
    path
        The TOML file.
    over
        The configuration a partial file completes (the effective config of an
        earlier run, or :func:`demo_config`).  A file without ``[inputs]`` and
        ``[grid]`` sections takes every section it does not hold from ``over``
        (the data, the countries, the other stages' settings); a section it holds
        replaces ``over``'s section whole (keys it leaves out take their defaults).
        A file with ``[inputs]`` or ``[grid]`` describes its own data and is read
        as it is.

    Raises
    ------
    ConfigError
        If the file is missing or invalid.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "links.toml"
    >>> _ = f.write_text('[links]\nrule = "knn"\n')
    >>> from leopardgeo.runner.registry import RunConfig, demo_config
    >>> cfg = read_config(RunConfig, f, over=demo_config())
    >>> cfg.links.rule.value, cfg.inputs.countries.layer
    ('knn', 'countries')
    >>> read_config(RunConfig, f).inputs.countries is None
    True
    """
    p = Path(path)
    if not p.is_file():
        msg = f"config file {str(p)!r} not found. Create one with `leopardgeo init {p}`."
        raise ConfigError(msg)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        msg = f"config file {str(p)!r} cannot be read: {exc.strerror}. Check its permissions."
        raise ConfigError(msg) from exc
    try:
        text = decode_utf8(raw, f"config file {str(p)!r}")
        return _load_over(cls, text, p, over)
    except ConfigError as exc:
        if str(p) in str(exc):
            raise
        msg = f"{exc} (config file {str(p)!r})"
        raise ConfigError(msg) from exc


def _load_over(cls: type, text: str, p: Path, over: Any) -> Any:
    """``text`` read as a config file at ``p``, completing ``over`` when it is partial (see :func:`load_config`)."""
    if over is None:
        return read_config_string(cls, text, base_dir=p.parent)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return read_config_string(cls, text, base_dir=p.parent)  # raises the usual ConfigError
    if "inputs" in data or "grid" in data or "base_dir" in data:
        return read_config_string(cls, text, base_dir=p.parent)
    merged = _to_plain(over)
    folder = p.parent.resolve()
    for key, value in data.items():
        merged[key] = _absolute_paths(value, folder)
    return _from_dict(cls, merged, "")


def _absolute_paths(value: Any, folder: Path) -> Any:
    """``value`` with each string that names a file relative to ``folder`` made absolute (a partial config's paths)."""
    if isinstance(value, dict):
        return {k: _absolute_paths(v, folder) for k, v in value.items()}
    if isinstance(value, list):
        return [_absolute_paths(v, folder) for v in value]
    if isinstance(value, str) and value and not Path(value).is_absolute() and _is_file(folder / value):
        return str((folder / value).resolve())
    return value


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a file; False for text that cannot be a path (too long, a NUL byte), e.g. a description."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def decode_utf8(raw: bytes, what: str) -> str:
    r"""Text of a UTF-8 file, without a byte-order mark; a clear error for any other encoding.

    Raises
    ------
    ConfigError
        Naming the file, the first bad byte and the fix.

    Examples
    --------
    >>> decode_utf8(b"\xef\xbb\xbfa = 1", "x.toml")
    'a = 1'
    >>> decode_utf8("é".encode("latin-1"), "x.toml")
    Traceback (most recent call last):
    ...
    leopardgeo.core.errors.ConfigError: x.toml: expected UTF-8 text, found byte 0xe9 at position 0 ...
    """
    if b"\x00" in raw[:4096]:
        msg = f"{what}: expected UTF-8 text, found binary data (a NUL byte). Give the text file, not a binary one."
        raise ConfigError(msg)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = (
            f"{what}: expected UTF-8 text, found byte 0x{raw[exc.start]:02x} at position {exc.start} (another encoding, "
            "e.g. Latin-1 or Windows-1251, or a binary file). Save it as UTF-8 (e.g. `iconv -f cp1251 -t utf-8`)."
        )
        raise ConfigError(msg) from exc
    return text.removeprefix("\ufeff")


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if getattr(obj, f.name) is not None}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, tuple | list):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    return obj


def relative_base_dir(cfg: Any, folder: str | Path) -> Any:
    """``cfg`` with ``base_dir`` relative to ``folder``, for files shared with others (no home folder in them).

    A config written into ``folder`` with this ``base_dir`` loads back to the
    same absolute paths (a relative ``base_dir`` starts from the config's
    folder).  On Windows, a ``base_dir`` on another drive stays absolute.

    Examples
    --------
    >>> from leopardgeo.runner.registry import RunConfig
    >>> cfg = RunConfig(base_dir="/data/amur")
    >>> relative_base_dir(cfg, "/data/runs/out").base_dir
    '../../amur'
    """
    try:
        rel = os.path.relpath(Path(cfg.base_dir).absolute(), Path(folder).absolute())
    except ValueError:  # pragma: no cover - another drive on Windows
        return cfg
    return dataclasses.replace(cfg, base_dir=Path(rel).as_posix())


def dump_config(cfg: Any, *, relative_to: str | Path | None = None) -> str:
    """The effective config as TOML text (round-trips through :func:`load_config_string`).

    With ``relative_to`` (the folder the text is written into), ``base_dir`` is
    written relative to it, so the file holds no absolute machine path of the
    data and still loads from that folder.
    """
    if relative_to is not None:
        cfg = relative_base_dir(cfg, relative_to)
    plain = _to_plain(cfg)
    if not plain.get("executor"):  # all defaults: nothing to say
        plain.pop("executor", None)
    return tomli_w.dumps(plain)


def config_hash(cfg: Any) -> str:
    """Short SHA-256 of the effective config (stored in output metadata), without ``[executor]`` (results do not depend on it)."""
    if hasattr(cfg, "executor"):
        cfg = dataclasses.replace(cfg, executor=ExecutorConfig())
    return hashlib.sha256(dump_config(cfg).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------- template
def _inline(value: Any) -> str:
    """One TOML value on one line (inline tables and arrays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{_key(k)} = {_inline(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    msg = f"cannot write {value!r} as TOML"  # pragma: no cover - programming error
    raise TypeError(msg)


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() and k.isascii() else json.dumps(k)


def _template_lines(cls: type, obj: Any, section: str) -> list[str]:
    lines: list[str] = []
    nested: list[tuple[str, type, Any]] = []
    for f in dataclasses.fields(cls):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, VectorInput):
            nested.append((f.name, type(value), value))
            continue
        lines.append(f"# {f.metadata.get('doc', '')}")
        if f.name == "scenarios" and value == ():  # an array of tables: an example, see docs/scenarios.md
            lines += ["# [[scenarios]]", '# name = "new_road"', "# [[scenarios.edits]]", '# kind = "line"',
                      "# coords = [[131.937, 43.567], [131.937, 43.837]]", '# mode = "impassable"']  # fmt: skip
        elif value is None or value == ():
            lines.append(f"# {f.name} = ")
        else:
            lines.append(f"{f.name} = {_inline(_to_plain(value))}")
    out = [f"[{section}]"] if section else []
    out += lines
    for name, sub_cls, sub in nested:
        out.append("")
        doc = next(f.metadata["doc"] for f in dataclasses.fields(cls) if f.name == name)
        out.append(f"# ---- {doc}")
        out += _template_lines(sub_cls, sub, f"{section}.{name}" if section else name)
    return out


def config_template(cfg: Any, *, relative_to: str | Path | None = None) -> str:
    """A commented TOML template with every key, its default and its source.

    ``leopardgeo init`` writes it for the embedded Amur study area, so it runs as
    written; edit ``base_dir`` and the paths to point at your own data.  With
    ``relative_to`` (the folder the template is written into), ``base_dir`` is
    relative to it rather than an absolute machine path.
    """
    if relative_to is not None:
        cfg = relative_base_dir(cfg, relative_to)
    head = [
        "# leopardgeo run configuration (TOML).",
        "# Every key is optional; the values shown are the defaults of the embedded Amur study area.",
        "# Units are in the key names (_m metres, _ha hectares, _km kilometres).",
        "# Relative paths start from base_dir; a relative base_dir starts from this file's folder.",
        "",
    ]
    return "\n".join(head + _template_lines(type(cfg), cfg, "")) + "\n"
