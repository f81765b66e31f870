"""The stage graph: stages declared as data, resolved for any targets, reused when nothing they depend on changed.

A :class:`Stage` says what it reads from the configuration (``sections``), which stages it needs
(``needs``: must run; ``uses``: read when enabled), what it adds to the run's context (``produces``),
which upstream values it changes in place (``mutates``, e.g. attributes added to the graph's links),
whether it is enabled for a configuration, and the function that computes it.  This module knows no
stage by name: :func:`resolve` orders any registry for any set of targets, and :func:`execute` runs it.

Reuse: each stage's hash covers its config sections (or single keys of them), the hashes of the stages it
needs or uses, (for a stage that reads files) the SHA-256 of every input file, and the code: leopardgeo's
version, the versions of the libraries that compute the numbers and the source of the stage's module and
everything of leopardgeo it imports.  A run into a folder whose ``manifest.json`` lists the same hash for a
stage, and that still holds the stage's cached values (``.leopardgeo_cache/<stage>.npz``), loads them
instead of computing; a changed hash recomputes the stage, and so every stage downstream of it (their
hashes include it): nothing is left stale.

The cache is :mod:`leopardgeo.runner.cache`'s format (arrays in a NumPy ``.npz``, the rest as JSON), which
loading cannot turn into running code, unlike a pickle.  A cache file that does not match the SHA-256 the
manifest lists, or that cannot be read, is computed again (with a note in the log); ``--recompute``
ignores the cache.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import logging
import platform
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leopardgeo.config import _to_plain
from leopardgeo.core.errors import ConfigError
from leopardgeo.core.version import __version__
from leopardgeo.runner import cache
from leopardgeo.stages.base import Section, Stage

__all__ = [
    "CACHE_DIR",
    "CACHE_SUFFIX",
    "Section",
    "Stage",
    "StageRun",
    "code_digest",
    "execute",
    "resolve",
    "software_versions",
    "stage_hashes",
    "upstream",
]

logger = logging.getLogger(__name__)

#: Folder inside a run folder holding each stage's values for reuse.
CACHE_DIR = ".leopardgeo_cache"
#: A stage's cache file is ``CACHE_DIR/<stage><CACHE_SUFFIX>`` (:mod:`leopardgeo.runner.cache`'s format).
CACHE_SUFFIX = ".npz"


@dataclass
class StageRun:
    """What happened to each stage of a run: its hash, whether it was reused, its time."""

    hashes: dict[str, str] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)
    computed: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    cache_sha256: dict[str, str] = field(default_factory=dict)

    def manifest(self) -> dict[str, dict[str, Any]]:
        """The ``stages`` entry of ``manifest.json``."""
        return {n: {"hash": h, "reused": n in self.reused} for n, h in self.hashes.items()}


def resolve(stages: Iterable[Stage], cfg: Any, targets: Iterable[str] | None = None) -> list[Stage]:
    """The enabled stages needed for ``targets`` (all when ``None``), in an order where each follows its needs.

    A target brings the stages it ``needs`` and ``uses`` (when enabled), and theirs; a stage it runs
    ``after`` comes first only when it is needed anyway.  Stages are otherwise in the order given.

    Raises
    ------
    ConfigError
        On an unknown target, or a graph whose needs name no stage or form a circle.

    Examples
    --------
    >>> from leopardgeo.runner.registry import RunConfig
    >>> a = Stage("a", "a", lambda c, x: {"a": 1}, produces=("a",))
    >>> b = Stage("b", "b", lambda c, x: {"b": x["a"] + 1}, needs=("a",), produces=("b",))
    >>> c = Stage("c", "c", lambda c, x: {}, needs=("a",), enabled=lambda cfg: False)
    >>> d = Stage("d", "d", lambda c, x: {}, needs=("a",), after=("b",))
    >>> [s.name for s in resolve([b, c, a, d], RunConfig(), ["b"])]
    ['a', 'b']
    >>> [s.name for s in resolve([d, b, c, a], RunConfig(), ["d"])], [s.name for s in resolve([d, b, c, a], RunConfig())]
    (['a', 'd'], ['a', 'b', 'd'])
    """
    by_name = {s.name: s for s in stages}
    for s in by_name.values():
        unknown = [n for n in (*s.needs, *s.uses, *s.after) if n not in by_name]
        if unknown:
            msg = f"stage {s.name!r} needs unknown stage(s) {unknown}; known: {', '.join(by_name)}."
            raise ConfigError(msg)
    wanted = list(by_name) if targets is None else list(targets)
    bad = [t for t in wanted if t not in by_name]
    if bad:
        msg = f"unknown stage(s) {bad}; expected some of: {', '.join(by_name)}."
        raise ConfigError(msg)

    live: dict[str, bool] = {}

    def alive(name: str, path: tuple[str, ...] = ()) -> bool:
        if name in path:
            msg = f"the stages form a circle: {' -> '.join((*path, name))}."
            raise ConfigError(msg)
        if name not in live:
            s = by_name[name]
            live[name] = s.enabled(cfg) and all(alive(n, (*path, name)) for n in s.needs)
        return live[name]

    included: set[str] = set()

    def include(name: str) -> None:
        if name in included or not alive(name):
            return
        included.add(name)
        s = by_name[name]
        for n in (*s.needs, *s.uses):
            include(n)

    for t in wanted:
        include(t)

    order: list[Stage] = []
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...] = ()) -> None:
        if name in path:
            msg = f"the stages form a circle: {' -> '.join((*path, name))}."
            raise ConfigError(msg)
        if name in done:
            return
        s = by_name[name]
        for n in (*s.needs, *s.uses, *s.after):
            if n in included:
                visit(n, (*path, name))
        done.add(name)
        order.append(s)

    for name in by_name:
        if name in included:
            visit(name)
    return order


def upstream(stage: Stage) -> tuple[str, ...]:
    """The stages ``stage`` depends on when they run: its needs, uses and the stages it runs after."""
    return (*stage.needs, *stage.uses, *stage.after)


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


#: Distributions whose version can change a stage's numbers (solvers, compiled kernels, geometry, I/O).
ANSWER_DISTRIBUTIONS = (
    "numpy", "scipy", "numba", "pandas", "geopandas", "shapely", "pyproj", "rasterio", "pyogrio", "networkx",
    "pyamg", "cholespy", "pypardiso",
)  # fmt: skip


@functools.cache
def software_versions() -> dict[str, str]:
    """The version of leopardgeo and those of :data:`ANSWER_DISTRIBUTIONS` (absent ones left out), for the stage hashes."""
    out = {"leopardgeo": __version__, "python": platform.python_version()}
    for dist in ANSWER_DISTRIBUTIONS:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[dist] = importlib.metadata.version(dist)
    return out


_ROOT = Path(__file__).resolve().parent.parent  # the leopardgeo package folder


@functools.cache
def _source(module: str) -> Path | None:
    """The source file of a ``leopardgeo`` module (``None`` when there is none), found without importing it."""
    parts = module.split(".")
    if parts[0] != "leopardgeo":
        return None
    base = _ROOT.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


#: ``import a.b`` and ``from .a import (b, c)`` statements, at any indent (a regular expression: ``ast`` is ~50x slower).
_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]*)|import[ \t]+([^\n#;]+))", re.M)


@functools.cache
def _imported(module: str) -> frozenset[str]:
    """The ``leopardgeo`` modules ``module``'s source imports (at module level or inside functions)."""
    path = _source(module)
    if path is None:
        return frozenset()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for base, names, plain in _IMPORT.findall(path.read_text(encoding="utf-8")):
        if plain:
            found |= {n.split(" as ")[0].strip() for n in plain.split(",")}
            continue
        level = len(base) - len(base.lstrip("."))
        base = base.lstrip(".")
        if level:
            parent = package.rsplit(".", level - 1)[0] if level > 1 else package
            base = f"{parent}.{base}" if base else parent
        found.add(base)
        for n in names.strip("()").split(","):  # ``from package import submodule``
            n = n.split(" as ")[0].strip()
            if n.isidentifier():
                found.add(f"{base}.{n}")
    return frozenset(m for m in found if _source(m) is not None)


@functools.cache
def code_digest(module: str) -> str:
    """SHA-256 (16 hex digits) of the source of ``module`` and of every ``leopardgeo`` module it imports, transitively.

    The code version of a stage: an edit to any code the stage can run changes its hash, so a run folder made
    by other code is recomputed rather than reused.

    Examples
    --------
    >>> len(code_digest("leopardgeo.stages.base"))
    16
    """
    seen: set[str] = set()
    todo = [module]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(_imported(m) - seen)
    h = hashlib.sha256()
    for m in sorted(seen):
        path = _source(m)
        h.update(m.encode() + b"\0" + (path.read_bytes() if path is not None else b""))
    return h.hexdigest()[:16]


def _section(plain: Mapping[str, Any], name: str) -> Any:
    """A config section (``"sites"``) or one key of it (``"sites.weights"``) from the plain configuration."""
    section, _, key = name.partition(".")
    value = plain.get(section)
    return value.get(key) if key and isinstance(value, Mapping) else value


def stage_hashes(order: list[Stage], cfg: Any, input_hashes: Mapping[str, str]) -> dict[str, str]:
    """Hash of each stage: its config sections, the hashes of the stages it needs or uses, its input files, its code.

    The code is leopardgeo's version, the versions of the libraries that compute the numbers
    (:func:`software_versions`) and the source of the stage's module and everything of leopardgeo it imports
    (:func:`code_digest`), so an upgrade or an edit never reuses an older run's values.
    """
    plain = _to_plain(cfg)
    names = {s.name for s in order}
    versions = software_versions()
    out: dict[str, str] = {}
    for s in order:
        part = {
            "stage": s.name,
            "sections": {k: _section(plain, k) for k in s.sections},
            "upstream": {n: out[n] for n in upstream(s) if n in names},
            "inputs": dict(sorted(input_hashes.items())) if s.reads_inputs else {},
            "versions": versions,
            "code": code_digest(getattr(s.compute, "__module__", None) or __name__),
        }
        out[s.name] = _digest(part)
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def execute(
    order: list[Stage],
    cfg: Any,
    *,
    input_hashes: Mapping[str, str],
    previous: Mapping[str, Any] | None = None,
    folder: Path | None = None,
    trusted: Iterable[str] = (),
    save: Callable[[str, bytes], None] | None = None,
    keep: Callable[[str], None] | None = None,
    step: Callable[[str], None] = lambda label: None,
    clock: Callable[[], float] | None = None,
) -> tuple[dict[str, Any], StageRun]:
    """Run ``order`` (from :func:`resolve`), reusing the stages whose hash matches ``previous``.

    Parameters
    ----------
    order
        The stages to run, each after its needs.
    cfg
        The configuration.
    input_hashes
        SHA-256 of each input file, by path.
    previous
        The earlier run's ``manifest.json`` in ``folder`` (``None``: compute everything).
    folder
        The earlier run's folder (where its cache lives).
    trusted
        Files of ``folder`` that leopardgeo wrote (only those caches are read).
    save
        ``save(name, data)``: stage a cache file of the new run.
    keep
        ``keep(name)``: carry an earlier cache file into the new run unchanged.
    step
        Called with each stage's label as it starts.
    clock
        Seconds counter for the timings (``time.perf_counter``).

    Returns
    -------
    context, StageRun
        Every value the stages produced (``None`` for disabled ones), and what was reused.
    """
    import time

    clock = clock or time.perf_counter
    hashes = stage_hashes(order, cfg, input_hashes)
    before = (previous or {}).get("stages", {})
    cache_sums = (previous or {}).get("cache_sha256", {})
    trusted = set(trusted)
    report = StageRun(hashes=hashes)
    ctx: dict[str, Any] = {}
    new_sums: dict[str, str] = {}
    changed: set[str] = set()
    for s in order:
        name = f"{CACHE_DIR}/{s.name}{CACHE_SUFFIX}"
        t = clock()
        reusable = (
            folder is not None
            and s.name not in changed
            and before.get(s.name, {}).get("hash") == hashes[s.name]
            and name in trusted
            and (folder / name).is_file()
        )
        values = None
        if reusable:
            path = folder / name
            digest = _sha256(path)
            if digest != cache_sums.get(name):
                logger.warning("%s does not match the SHA-256 in manifest.json; computing %s again", path, s.name)
            else:
                try:
                    values = cache.loads(path.read_bytes())
                    if not isinstance(values, dict):
                        msg = f"expected the values by key, found a {type(values).__name__}"
                        raise cache.CacheFormatError(msg)
                except cache.CacheFormatError as exc:
                    logger.warning("%s: %s; computing %s again", path, exc, s.name)
                    values = None
                else:
                    new_sums[name] = digest
                    if keep is not None:
                        keep(name)
        if values is not None:
            step(f"{s.label} (reused)")
            report.reused.append(s.name)
        else:
            step(s.label)
            values = dict(s.compute(cfg, ctx))
            report.computed.append(s.name)
            changed.add(s.name)
            if save is not None:
                keys = (*s.produces, *s.mutates)
                try:
                    data = cache.dumps({k: values.get(k, ctx.get(k)) for k in keys})
                except cache.CacheFormatError as exc:
                    logger.warning("stage %s is not cached (%s): a later run computes it again", s.name, exc)
                else:
                    save(name, data)
                    new_sums[name] = hashlib.sha256(data).hexdigest()
        ctx.update(values)
        report.timings_s[s.name] = clock() - t
        # a recomputed stage changes everything downstream: their hashes include it, so they recompute too
        for later in order:
            if s.name in changed and s.name in upstream(later):
                changed.add(later.name)
    report.cache_sha256 = new_sums
    return ctx, report
