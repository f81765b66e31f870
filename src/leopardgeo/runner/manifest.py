"""The run manifest (``manifest.json``): what a run used and how long it took, for reproducibility.

Every ``leopardgeo run`` writes one beside its outputs.  It records

* the effective configuration (the same as ``run_config.toml``, as a dict) and its hash,
* every input file the configuration points at: path, size and SHA-256,
* the versions of leopardgeo, Python, the libraries it stands on, GDAL and PROJ, and the platform,
* the start and end time (UTC) and the seconds spent in each stage,
* the files the run wrote.

The keys are listed in ``docs/outputs.md``; :data:`MANIFEST_VERSION` changes when they do.

Examples
--------
>>> from leopardgeo.runner.registry import demo_config
>>> files = input_files(demo_config())
>>> sorted({f["key"] for f in files})[:3]
['grid.template', 'inputs.borders.path', 'inputs.countries.path']
>>> len(files[0]["sha256"])
64
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import sys
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from leopardgeo.config import config_hash
from leopardgeo.core.errors import DataError
from leopardgeo.runner.registry import RunConfig

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "build_manifest",
    "input_files",
    "input_paths",
    "package_versions",
    "read_manifest",
    "utc_now",
]

#: File name of the manifest in the output folder.
MANIFEST_NAME = "manifest.json"
#: Version of the manifest's layout (major.minor; minor = keys added).
MANIFEST_VERSION = "1.0"

#: Python packages whose versions the manifest records.
PACKAGES = ("numpy", "scipy", "pandas", "geopandas", "shapely", "pyproj", "rasterio", "pyogrio", "networkx", "numba",
            "pyamg", "matplotlib", "click", "rich")  # fmt: skip

#: Config keys that are never input files.
_NOT_INPUTS = ("base_dir", "output.", "scenarios.")  # scenario files do not change the baseline's stages


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (``2026-11-26T09:00:00Z``)."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _leaves(obj: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    """``(dotted.key, value)`` for every leaf of a nested dict / list."""
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _leaves(v, f"{prefix}{k}.")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{prefix}{i}.")
    else:
        yield prefix.rstrip("."), obj


def input_paths(cfg: RunConfig) -> list[tuple[str, Path]]:
    """``(config key, absolute path)`` of every existing file the configuration points at (see :func:`input_files`)."""
    from leopardgeo.config import _to_plain

    out = []
    for key, value in _leaves(_to_plain(cfg)):
        if not isinstance(value, str) or not value or key.startswith(_NOT_INPUTS) or "://" in value:
            continue
        path = cfg.resolve(value)
        if path is not None and path.is_file():
            out.append((key, path))
    return out


def input_files(cfg: RunConfig) -> list[dict[str, Any]]:
    """Every file the configuration points at: config key, absolute path, size in bytes, SHA-256.

    Any string value of the configuration (outside ``base_dir`` and
    ``[output]``) that names an existing file, relative to ``base_dir`` or
    absolute, counts as an input, so sections added later are covered too.
    A file named by several keys (e.g. the layers of one GeoPackage) is hashed
    once and listed under each key.
    """
    out: list[dict[str, Any]] = []
    hashes: dict[Path, tuple[int, str]] = {}
    for key, path in input_paths(cfg):
        if path not in hashes:
            hashes[path] = (path.stat().st_size, _sha256(path))
        size, digest = hashes[path]
        out.append({"key": key, "path": str(path), "size_bytes": size, "sha256": digest})
    return out


def package_versions() -> dict[str, str]:
    """Versions of leopardgeo, Python, its libraries, GDAL and PROJ (``"not installed"`` when absent)."""
    from leopardgeo.core.version import __version__

    out = {"leopardgeo": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    try:
        import rasterio

        out["GDAL"] = str(rasterio.__gdal_version__)
    except ImportError:  # pragma: no cover - rasterio is a dependency
        out["GDAL"] = "not installed"
    try:
        import pyproj

        out["PROJ"] = str(pyproj.proj_version_str)
    except ImportError:  # pragma: no cover - pyproj is a dependency
        out["PROJ"] = "not installed"
    return out


def build_manifest(
    cfg: RunConfig,
    *,
    started: str,
    finished: str | None = None,
    timings_s: Mapping[str, float] | None = None,
    outputs: Iterable[str] = (),
    stages: Mapping[str, Any] | None = None,
    cache_sha256: Mapping[str, str] | None = None,
    relative_to: str | Path | None = None,
) -> dict[str, Any]:
    """The manifest of a run as a JSON-ready dict (see the module docstring and ``docs/outputs.md``).

    Parameters
    ----------
    cfg
        The effective configuration.
    started, finished
        UTC times (:func:`utc_now`); ``finished`` defaults to now.
    timings_s
        Seconds per stage (``RunResult.timings_s``).
    outputs
        File names the run wrote.
    stages
        Per stage its hash and whether it was reused (:class:`leopardgeo.runner.stagegraph.StageRun`).
    cache_sha256
        SHA-256 of each stage cache file, checked before a later run reuses it.
    relative_to
        The run folder: ``base_dir`` and input paths are then written relative
        to it, so the manifest holds no absolute machine path (the interpreter
        is always given by name only).

    Examples
    --------
    >>> from leopardgeo.runner.registry import RunConfig
    >>> m = build_manifest(RunConfig(), started="2026-01-01T00:00:00Z", timings_s={"inputs": 1.25})
    >>> m["manifest_version"], m["timings_s"], m["inputs"]
    ('1.0', {'inputs': 1.25}, [])
    >>> "numpy" in m["versions"] and "GDAL" in m["versions"]
    True
    """
    from leopardgeo.config import _to_plain, relative_base_dir

    timings = {k: round(float(v), 3) for k, v in (timings_s or {}).items()}
    inputs = input_files(cfg)
    shown = cfg
    if relative_to is not None:
        shown = relative_base_dir(cfg, relative_to)
        for rec in inputs:
            try:
                rec["path"] = Path(os.path.relpath(rec["path"], Path(relative_to).absolute())).as_posix()
            except ValueError:  # pragma: no cover - another drive on Windows
                pass
    return {
        "manifest_version": MANIFEST_VERSION,
        "started": started,
        "finished": finished or utc_now(),
        "timings_s": timings,
        "total_s": round(sum(timings.values()), 3),
        "config_hash": config_hash(cfg),
        "config": _to_plain(shown),
        "inputs": inputs,
        "versions": package_versions(),
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "python_implementation": platform.python_implementation(),
            "executable": Path(sys.executable).name,
        },
        "outputs": sorted(set(outputs)),
        "stages": dict(stages or {}),
        "cache_sha256": dict(sorted((cache_sha256 or {}).items())),
    }


def manifest_json(cfg: RunConfig, **kwargs: Any) -> str:
    """:func:`build_manifest` as indented JSON text."""
    return json.dumps(build_manifest(cfg, **kwargs), indent=1, ensure_ascii=False, default=str)


def read_manifest(out_dir: str | Path) -> dict[str, Any] | None:
    """The ``manifest.json`` of a run folder, or ``None`` when there is none.

    Raises
    ------
    DataError
        If the file exists but is not JSON.
    """
    p = Path(out_dir) / MANIFEST_NAME
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        msg = f"{p}: expected the JSON manifest of a run, found a file that does not parse ({exc}). Re-run with --overwrite."
        raise DataError(msg) from exc
