"""Resistance ensembles: N draws of the resistance model, the stages from resistance onward for each, summaries.

Resistance surfaces are guesses (the transform's shape and maximum, RSF coefficients known to a standard
error, barrier penalties).  Corridor studies report how robust each corridor is to them (e.g. sensitivity
analyses of resistance in Beier et al. 2008, *Conserv. Biol.* 22:836; Zeller et al. 2012, *Landsc. Ecol.*
27:777).  :func:`run_ensemble` draws the parameters of ``[ensemble]``, runs the stages the user asks for
(links, corridors, circuit, metrics, scores) on each draw, reusing everything upstream of resistance (inputs,
suitability, patches are computed once and shared with the executor's workers), and summarises per link
(share of draws in which it exists, cwd / score / rank median and 5-95 %, robustness class) and per cell
(corridor frequency: share of draws whose truncated corridors cover the cell; with the circuit, the median and
5-95 % of the current).

Draw ``i`` takes its parameters from ``SeedSequence(seed).spawn(draws)[i]``, drawn before any task runs, and
runs on one core, so the outputs are byte-identical with 1 thread, 2 threads or a Dask cluster.  Each
finished draw is saved in ``ensemble_draws/`` of the output folder as soon as it arrives (one map over all
draws, no waiting for the slowest draw of a batch), as ``draw_<i>.npz`` in the stage cache's format (no
pickle: resuming never runs code named by a file), so an interrupted ensemble resumes from them; the final
files are written at the end.

Per-cell current quantiles are exact (``numpy.quantile`` over all draws, linear interpolation) without
holding every draw's map in memory: each draw's float32 current map goes into one row of a memory-mapped
``.npy`` stack in ``ensemble_draws/`` when the draw arrives, and the quantiles are taken over blocks of grid
rows at the end, so memory holds ``draws x rows-per-block x columns`` values at a time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leopardgeo.config import HabitatMethod, config_hash
from leopardgeo.config.ensemble import Distribution
from leopardgeo.core.errors import ConfigError, DataError, OutputError, OutputExistsError
from leopardgeo.core.executor import Executor, core_budget, get_executor
from leopardgeo.runner import cache as cache_format
from leopardgeo.runner.registry import STAGES
from leopardgeo.runner.stagegraph import execute, resolve
from leopardgeo.stages.graph import PatchGaps
from leopardgeo.stages.habitat import compute_suitability, rsf_inputs
from leopardgeo.stages.inputs import protected_raster
from leopardgeo.stages.patches import country_raster

__all__ = [
    "ENSEMBLE_FILES",
    "check_draw_memory",
    "current_quantiles",
    "draw_bytes",
    "EnsembleResult",
    "draw_configs",
    "draw_parameters",
    "run_ensemble",
    "summarise_links",
]

logger = logging.getLogger(__name__)

#: What :func:`run_ensemble` writes into the output folder.
ENSEMBLE_FILES = (
    "ensemble_links.csv",
    "ensemble_draws.csv",
    "ensemble.gpkg",
    "corridor_frequency.tif",
    "corridor_frequency.qml",
    "current_quantiles.tif",
    "current_quantiles.qml",
    "ensemble.json",
)
DRAWS_DIR = "ensemble_draws"
CURRENT_STACK = "current.npy"  # in DRAWS_DIR: one float32 current map per draw (memory-mapped)
#: Bands of ``current_quantiles.tif``: the median first, so a viewer's default (band 1) shows it.
CURRENT_BANDS = (("median", 0.5), ("p05", 0.05), ("p95", 0.95))
_STAGE_OF = {"links": "links", "corridors": "corridors", "circuit": "circuit", "metrics": "metrics", "scores": "scores"}
_QUANTILES = (0.05, 0.5, 0.95)


@dataclass
class EnsembleResult:
    """What :func:`run_ensemble` made (also written to the folder)."""

    links: pd.DataFrame
    draws: pd.DataFrame
    corridor_frequency: np.ndarray | None
    grid: Any
    current_quantiles: np.ndarray | None = None  # (3, rows, cols) float32: median, p05, p95 (CURRENT_BANDS)
    resumed: int = 0
    elapsed_s: float = 0.0
    #: ``upstream_s`` (once), ``draws_s`` (the map over the draws, wall), ``tasks`` (draws run here, the base
    #: configuration included) and, summed over those tasks, the wall time of each stage (``links_s``, ...) and of
    #: whole tasks (``task_s``): each task runs on one core, so with ``w`` tasks at a time a stage's share of
    #: ``draws_s`` is about its sum over ``task_s``.
    timings_s: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------- parameters
def _range_draw(rng: np.random.Generator, low: float, high: float, dist: Distribution) -> float:
    if dist is Distribution.UNIFORM:
        return float(rng.uniform(low, high))
    mid, sd = (low + high) / 2, (high - low) / (2 * 1.959964)
    return float(np.clip(rng.normal(mid, sd), low, high))


def _check_coefficients_drawable(cfg: Any) -> None:
    """Refuse coefficient draws the suitability would ignore (a raster habitat, or coefficients read from a file)."""
    h = cfg.habitat
    if h.method is HabitatMethod.RASTER or h.coefficients_file:
        where = "method = 'raster'" if h.method is HabitatMethod.RASTER else f"coefficients_file = {h.coefficients_file!r}"
        msg = (
            f"[ensemble] RSF coefficient draws: expected the coefficients in [habitat] coefficients, found [habitat] "
            f"{where}, so the drawn coefficients would be ignored. Put the coefficients in [habitat] coefficients, "
            "or vary other parameters."
        )
        raise ConfigError(msg)


def draw_parameters(cfg: Any) -> pd.DataFrame:
    r"""One row per draw: the drawn value of every varied parameter (or the rows of ``[ensemble] table``).

    Draw ``i`` uses ``numpy.random.default_rng(SeedSequence(seed).spawn(draws)[i])``, parameters in a fixed
    order, so a draw's values do not depend on how many draws there are after it.

    Examples
    --------
    >>> from leopardgeo.runner.registry import load_config_string
    >>> cfg = load_config_string("[ensemble]\ndraws = 3\nmax_resistance = [50, 200]")
    >>> p = draw_parameters(cfg)
    >>> list(p.columns), len(p), bool(p.max_resistance.between(50, 200).all())
    (['draw', 'max_resistance'], 3, True)
    """
    ens = cfg.ensemble
    if ens.table is not None:
        path = cfg.resolve(ens.table)
        try:
            table = pd.read_csv(path)
        except (OSError, ValueError) as exc:
            msg = f"[ensemble] table {str(path)!r}: expected a CSV of draws, found: {exc}. Check the path."
            raise ConfigError(msg) from exc
        known = {"max_resistance", "shape_c", "barrier_penalty_factor"} | {f"coef_{k}" for k in cfg.habitat.coefficients}
        unknown = [c for c in table.columns if c not in known and c != "draw"]
        if unknown or table.empty:
            msg = (
                f"[ensemble] table {str(path)!r}: expected columns among {sorted(known)} and at least one row, "
                f"found columns {list(table.columns)} and {len(table)} rows."
            )
            raise ConfigError(msg)
        if any(c.startswith("coef_") for c in table.columns):
            _check_coefficients_drawable(cfg)
        table = table.drop(columns=["draw"], errors="ignore").astype(float)
        table.insert(0, "draw", np.arange(len(table)))
        return table
    varied = ens.varied()
    if any(se > 0 for se in ens.coefficient_se.values()):
        _check_coefficients_drawable(cfg)
    if not varied:
        msg = (
            "[ensemble]: expected at least one varied parameter (max_resistance, shape_c, barrier_penalty_factor, "
            "coefficient_se or table), found none. Add one, e.g. max_resistance = [50, 200]."
        )
        raise ConfigError(msg)
    unknown = [k for k in ens.coefficient_se if k not in cfg.habitat.coefficients]
    if unknown:
        msg = (
            f"[ensemble] coefficient_se: expected names of habitat.coefficients "
            f"({', '.join(cfg.habitat.coefficients)}), found {unknown}."
        )
        raise ConfigError(msg)
    rows = []
    for i, ss in enumerate(np.random.SeedSequence(ens.seed).spawn(ens.draws)):
        rng = np.random.default_rng(ss)
        row: dict[str, float] = {"draw": i}
        for name in ("max_resistance", "shape_c", "barrier_penalty_factor"):
            rng_ = getattr(ens, name)
            if rng_ is not None:
                row[name] = _range_draw(rng, rng_[0], rng_[1], ens.distribution)
        for k, se in ens.coefficient_se.items():
            if se > 0:
                row[f"coef_{k}"] = float(rng.normal(cfg.habitat.coefficients[k], se))
        rows.append(row)
    return pd.DataFrame(rows)


def draw_configs(cfg: Any, params: pd.DataFrame) -> list[Any]:
    """The configuration of each draw: ``cfg`` with the drawn values put in its sections."""
    out = []
    for row in params.to_dict("records"):
        res, hab = cfg.resistance, cfg.habitat
        changes: dict[str, Any] = {}
        if "max_resistance" in row:
            changes["max_resistance"] = row["max_resistance"]
        if "shape_c" in row:
            changes["shape_c"] = row["shape_c"]
        if "barrier_penalty_factor" in row:
            f = row["barrier_penalty_factor"]
            changes["barriers"] = tuple(
                dataclasses.replace(
                    b, penalty=b.penalty * f, class_penalties={k: v * f for k, v in b.class_penalties.items()}
                )
                for b in res.barriers
            )
        coefs = {k[5:]: v for k, v in row.items() if k.startswith("coef_")}
        new = cfg.replace(resistance=dataclasses.replace(res, **changes)) if changes else cfg
        if coefs:
            new = new.replace(habitat=dataclasses.replace(hab, coefficients={**hab.coefficients, **coefs}))
        out.append(new)
    return out


# ---------------------------------------------------------------------- one draw
def _draw_corridors(cfg: Any, ctx: dict[str, Any]) -> dict[str, Any]:
    """The corridors stage of a draw: the corridor map, widths and cwd, without the outlines and measures no summary uses.

    The circuit stage of a draw reads the windows' masks, which stay.
    """
    from leopardgeo.stages.corridors import compute_corridors

    extra = {"protected": ctx["protected"]} if "protected" in ctx else {}  # rasterised once per ensemble
    corridors = compute_corridors(
        cfg, ctx["inputs"], ctx["resistance"], ctx["labels"], ctx["graph"], polygons=False, measures=False,
        cwd=ctx.get("cwd"), **extra
    )
    return {"corridors": corridors}


def _draw_links(cfg: Any, ctx: dict[str, Any]) -> dict[str, Any]:
    """The links stage of a draw, with the country raster made once per ensemble (it does not vary by draw)."""
    from leopardgeo.stages.graph import compute_links

    graph, cwd = compute_links(
        cfg, ctx["inputs"], ctx["resistance"], ctx["labels"], ctx["patches"], countries=ctx["countries"],
        gaps=ctx.get("patch_gaps"),
    )  # fmt: skip
    return {"graph": graph, "cwd": cwd}


#: Stages a draw computes its own way (the same values the summaries read, less of what they do not, and
#: nothing twice that does not depend on the draw).
_DRAW_COMPUTE: dict[str, Callable[[Any, dict[str, Any]], dict[str, Any]]] = {
    "links": _draw_links,
    "corridors": _draw_corridors,
}


def _run_draw(cfg: Any, base: Any, stage_names: tuple[str, ...], coefs_varied: bool) -> dict[str, Any]:
    """Resistance onward for one draw (a task of the executor), on one core so results never depend on it.

    Returns the draw's compact result: the links table (paths as WKB), the corridor mask packed to one bit
    per cell, with the circuit its float32 current map, and ``seconds``: the wall time of each stage and of the
    whole task (``"task"``), for :attr:`EnsembleResult.timings_s` (not saved with the draw).
    """
    t_task = time.perf_counter()
    by_name = {s.name: s for s in STAGES}
    seconds: dict[str, float] = {}
    with core_budget(1):
        ctx = dict(base.get())
        if coefs_varied:  # the suitability resistance derives from; patches stay those of the base config
            # the covariates do not depend on the draw: built once (run_ensemble), only the logistic is redone
            t = time.perf_counter()
            ctx["suitability"] = compute_suitability(cfg, ctx["inputs"], covariates=ctx.get("covariates"))
            seconds["suitability"] = time.perf_counter() - t
        for name in ("resistance", *stage_names):
            s = by_name[name]
            if s.enabled(cfg):
                t = time.perf_counter()
                ctx.update(_DRAW_COMPUTE.get(name, s.compute)(cfg, ctx))
                seconds[name] = time.perf_counter() - t
    graph = ctx.get("graph")
    rows = []
    if graph is not None:
        for a, b, d in graph.edges(data=True):
            rows.append(
                {
                    "patch_a": min(a, b),
                    "patch_b": max(a, b),
                    "cwd": float(d.get("cwd", np.nan)),
                    "score": float(d["score"]) if d.get("score") is not None else np.nan,
                    "eff_resistance": float(d["eff_resistance"]) if d.get("eff_resistance") is not None else np.nan,
                    "geometry": d["geometry"].wkb if d.get("geometry") is not None else None,
                }
            )
    links = pd.DataFrame(rows, columns=["patch_a", "patch_b", "cwd", "score", "eff_resistance", "geometry"])
    links = links.sort_values(["patch_a", "patch_b"], kind="stable").reset_index(drop=True)
    corr = ctx.get("corridors")
    bits = None
    if corr is not None and getattr(corr, "normalised", None) is not None:
        bits = np.packbits(np.isfinite(corr.normalised).ravel())
    circ = ctx.get("circuit")
    current = None
    if circ is not None and getattr(circ, "cum_current", None) is not None:
        current = np.ascontiguousarray(circ.cum_current, dtype=np.float32)
    seconds["task"] = time.perf_counter() - t_task
    return {"links": links, "corridor_bits": bits, "current": current, "seconds": seconds}


# ---------------------------------------------------------------------- summaries
def _rank(values: pd.Series, ascending: bool) -> pd.Series:
    return values.rank(ascending=ascending, method="min")


def summarise_links(
    draws: list[dict[str, Any]], base: dict[str, Any], *, robust_share: float, rare_share: float, rank_spread: float = 0.25
) -> pd.DataFrame:
    """Per link: share of draws present, rank / cwd / score median and 5-95 %, the base config's values, class.

    ``rank`` is the link's rank within its draw (1 = best: highest score when scores ran, else lowest cwd), and
    ``rank_spread`` its 5-95 % range over the draws as a share of the links ranked in a draw (their median count).
    The class: ``rare`` if present in fewer than ``rare_share`` of the draws; ``robust`` if present in at least
    ``robust_share`` of them and its ``rank_spread`` is at most ``rank_spread`` (its standing among the corridors
    holds, not only its existence: least-cost routes and their costs move with the relative cost values, Rayfield,
    Fortin & Fall 2010, Landscape Ecology 25:519-532, while which patches are linked mostly does not: on the demo,
    76 of 94 links are present in at least 90 % of 30 draws); else ``sensitive``.  ``rank_spread=1`` classes by
    presence alone.

    Examples
    --------
    >>> mk = lambda rows: {"links": pd.DataFrame(rows, columns=["patch_a", "patch_b", "cwd", "score"])}
    >>> d = [mk([(1, 2, 10.0, np.nan), (2, 3, 30.0, np.nan)]), mk([(1, 2, 20.0, np.nan)])]
    >>> t = summarise_links(d, d[0], robust_share=0.9, rare_share=0.1)
    >>> t[["patch_a", "patch_b", "share", "cwd_median", "rank_median", "robustness"]].to_dict("records")[1]
    {'patch_a': 2, 'patch_b': 3, 'share': 0.5, 'cwd_median': 30.0, 'rank_median': 2.0, 'robustness': 'sensitive'}
    """
    n = len(draws)
    frames = []
    ranked = []  # links ranked in each draw
    for i, d in enumerate(draws):
        f = d["links"][["patch_a", "patch_b", "cwd", "score"]].copy()
        scored = f["score"].notna().any()
        f["rank"] = _rank(f["score"], ascending=False) if scored else _rank(f["cwd"], ascending=True)
        f["draw"] = i
        frames.append(f)
        ranked.append(int(f["rank"].notna().sum()))
    per_draw = max(1.0, float(np.median(ranked))) if ranked else 1.0
    allf = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["patch_a", "patch_b", "draw"])
    keys = sorted({(int(a), int(b)) for a, b in zip(allf["patch_a"], allf["patch_b"], strict=True)})
    base_links = base["links"].set_index(["patch_a", "patch_b"]) if len(base["links"]) else None
    out = []
    groups = dict(list(allf.groupby(["patch_a", "patch_b"], sort=True)))
    for key in keys:
        g = groups[key]
        share = len(g) / n
        row: dict[str, Any] = {"patch_a": key[0], "patch_b": key[1], "draws_present": len(g), "share": share}
        for col in ("rank", "cwd", "score"):
            v = g[col].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            q = np.quantile(v, _QUANTILES) if v.size else (np.nan,) * 3
            row[f"{col}_p05"], row[f"{col}_median"], row[f"{col}_p95"] = (float(x) for x in q)
        in_base = base_links is not None and key in base_links.index
        row["in_base"] = bool(in_base)
        row["base_cwd"] = float(base_links.loc[key, "cwd"]) if in_base else np.nan
        spread = (row["rank_p95"] - row["rank_p05"]) / per_draw
        row["rank_spread"] = spread
        holds = not spread > rank_spread  # no rank (NaN): by presence alone
        row["robustness"] = "rare" if share < rare_share else ("robust" if share >= robust_share and holds else "sensitive")
        out.append(row)
    cols = ["patch_a", "patch_b", "draws_present", "share", "robustness", "rank_spread", "in_base", "base_cwd"]
    cols += [f"{c}_{s}" for c in ("rank", "cwd", "score") for s in ("median", "p05", "p95")]
    table = pd.DataFrame(out, columns=cols)
    table.attrs["links_ranked"] = per_draw  # the median count of links ranked in a draw
    return table


def current_quantiles(stack: np.ndarray, *, block_bytes: int = 64 * 2**20) -> np.ndarray:
    """Per-cell median, 5 % and 95 % (:data:`CURRENT_BANDS`) over the first axis of a ``(draws, rows, cols)`` stack.

    Exact (``numpy.quantile``, linear interpolation; NaN where any draw has NaN), taken over blocks of grid rows so
    that a memory-mapped stack is read once and memory holds about ``block_bytes`` of it (plus numpy's working
    copy) at a time.

    Examples
    --------
    >>> st = np.arange(24, dtype=np.float32).reshape(4, 2, 3)
    >>> q = current_quantiles(st, block_bytes=1)  # one row per block
    >>> bool(np.array_equal(q, np.quantile(st, [0.5, 0.05, 0.95], axis=0).astype(np.float32)))
    True
    """
    n, rows, cols = stack.shape
    qs = [q for _, q in CURRENT_BANDS]
    out = np.empty((len(qs), rows, cols), dtype=np.float32)
    step = max(1, int(block_bytes // max(1, n * cols * stack.dtype.itemsize)))
    for r0 in range(0, rows, step):
        block = np.asarray(stack[:, r0 : r0 + step, :])
        out[:, r0 : r0 + step, :] = np.quantile(block, qs, axis=0)
    return out


# ---------------------------------------------------------------------- memory
def draw_bytes(n_cells: int, stage_names: tuple[str, ...]) -> int:
    """Approximate peak bytes of one draw: resistance and its temporaries, plus each stage it runs.

    From :data:`leopardgeo.core.memory.RUN_BYTES_PER_CELL` (approximate, rounded up), plus the inputs,
    suitability and patches every worker holds once (``inputs`` for four layers).

    Examples
    --------
    >>> draw_bytes(1_000_000, ("links", "corridors"))
    132000000
    """
    from leopardgeo.core.memory import RUN_BYTES_PER_CELL as B

    per_cell = B["base"] + 4 * B["inputs"] + sum(B.get(s, 0.0) for s in stage_names)
    return int(n_cells * per_cell)


def _check_stack_disk(path: Path, n_bytes: int) -> None:
    """Refuse, before any draw runs, a current stack that the output folder's disk cannot hold."""
    free = shutil.disk_usage(path).free
    if n_bytes > free:
        msg = (
            f"{str(path)!r}: expected room for the draws' current maps ({n_bytes / 1e9:.2f} GB: draws x cells x 4 B, "
            f"for the per-cell current quantiles), found {free / 1e9:.2f} GB free. Free space, use another --out, "
            "fewer draws or coarser cells, or leave 'circuit' out of [ensemble] stages."
        )
        raise OutputError(msg)


def check_draw_memory(grid: Any, stage_names: tuple[str, ...], ex: Executor) -> None:
    """Refuse, before any draw runs, an ensemble whose draws cannot fit in a worker's memory per task.

    Raises
    ------
    MemoryLimitError
        With the estimate, the memory per task and the remedy.
    """
    from leopardgeo.core.memory import check_memory

    n = int(np.prod(grid.shape))
    check_memory(
        draw_bytes(n, stage_names),
        what=f"one ensemble draw ({n:,} cells; {', '.join(stage_names)}) on each of {ex.slots} task slots",
        fix=(
            "Use fewer threads per worker ([executor] threads), workers with more memory ([executor] "
            "memory_limit_gb, or a cluster with bigger workers), fewer [ensemble] stages, or coarser cells."
        ),
        limit_bytes=ex.task_memory_bytes(),
    )


# ---------------------------------------------------------------------- the run
def _key(cfg: Any, params: pd.DataFrame) -> str:
    h = hashlib.sha256(config_hash(cfg).encode())
    h.update(params.to_csv(index=False).encode())
    return h.hexdigest()[:16]


def _load_draw(path: Path) -> dict[str, Any] | None:
    """A finished draw saved in ``ensemble_draws/`` (None if absent or unreadable: the draw then runs again).

    Draws are stored in the stage cache's format (:mod:`leopardgeo.runner.cache`: arrays in an ``.npz`` read
    without pickle, the links table column by column), so resuming never runs code named by a file on disk.
    """
    if not path.is_file():
        return None
    try:
        return cache_format.loads(path.read_bytes())
    except (OSError, cache_format.CacheFormatError) as exc:
        logger.warning("ensemble: %s is not a readable draw (%s); running that draw again", path.name, exc)
        return None


def _atomic_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def run_ensemble(
    cfg: Any,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    executor: Executor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EnsembleResult:
    """Run ``[ensemble] draws`` draws of the resistance model and write the summaries into ``out_dir``.

    Parameters
    ----------
    cfg
        The run configuration with its ``[ensemble]`` section.
    out_dir
        Output folder: ``ensemble_links.csv`` (per link), ``ensemble_draws.csv`` (the drawn parameters),
        ``ensemble.gpkg`` (layer ``ensemble_links``, styled for QGIS by robustness),
        ``corridor_frequency.tif`` (COG), with the circuit ``current_quantiles.tif`` (COG; bands median, p05,
        p95 of the per-cell current over the draws), a QGIS ``.qml`` beside each GeoTIFF, and
        ``ensemble.json``; finished draws in ``ensemble_draws/``.
    overwrite
        Replace earlier ensemble outputs (and draws made with other settings).
    executor
        Where the draws run; default: ``get_executor(cfg.executor)``.
    progress
        ``progress(done, total)`` after each draw.

    Raises
    ------
    OutputExistsError
        If the folder holds ensemble outputs or draws of other settings and ``overwrite`` is false.
    ConfigError
        If ``[ensemble]`` varies nothing or names unknown coefficients.
    MemoryLimitError
        If one draw cannot fit in the memory of a task slot.
    OutputError
        If the disk cannot hold the draws' current maps (ensembles with the circuit).
    WorkerLostError
        If a Dask worker dies mid-run (rerun the command to resume from the saved draws).
    """
    t0 = time.perf_counter()
    ens = cfg.ensemble
    out = Path(out_dir)
    params = draw_parameters(cfg)
    key = _key(cfg, params)
    draws_dir = out / DRAWS_DIR
    done_files = [out / n for n in ENSEMBLE_FILES if (out / n).exists()]
    if done_files and not overwrite:
        msg = (
            f"{str(out)!r}: expected a folder without ensemble outputs, found {', '.join(p.name for p in done_files)}. "
            "Use --overwrite to replace them, or another --out."
        )
        raise OutputExistsError(msg)
    stored_key = (draws_dir / "key.txt").read_text().strip() if (draws_dir / "key.txt").is_file() else None
    if stored_key is not None and stored_key != key:
        if not overwrite:
            msg = (
                f"{str(draws_dir)!r}: expected draws of these settings to resume, found draws of other settings. "
                "Use --overwrite to discard them."
            )
            raise OutputExistsError(msg)
        shutil.rmtree(draws_dir)
    draws_dir.mkdir(parents=True, exist_ok=True)
    (draws_dir / "key.txt").write_text(key + "\n")
    timings: dict[str, float] = {}

    # upstream of resistance, once
    t = time.perf_counter()
    order = resolve(STAGES, cfg, targets=["inputs", "habitat", "patches"])
    base_ctx, _ = execute(order, cfg, input_hashes={})
    timings["upstream_s"] = time.perf_counter() - t
    grid = base_ctx["inputs"].grid
    stage_names = tuple(n for n in ("links", "corridors", "circuit", "metrics", "scores") if n in ens.stages)
    coefs_varied = any(c.startswith("coef_") for c in params.columns)
    configs = draw_configs(cfg, params)
    base_shared = {k: base_ctx[k] for k in ("inputs", "suitability", "labels", "patches")}
    # the country raster of the links' paths does not depend on the draw: made once, shared
    base_shared["countries"] = country_raster(base_ctx["inputs"].countries, grid, cfg.inputs.country_field)
    # nor do the edge-to-edge distances between patches: each pair measured once, by the first draw that links it (one
    # dict for the threads of this process, filled by each Dask worker for its own draws; the same values either way)
    base_shared["patch_gaps"] = PatchGaps(base_ctx["patches"])
    if "corridors" in stage_names:  # so is the corridors' protected-area raster
        base_shared["protected"] = protected_raster(base_ctx["inputs"])
    if coefs_varied:  # the RSF covariates do not depend on the draw (_check_coefficients_drawable)
        base_shared["covariates"] = rsf_inputs(cfg, base_ctx["inputs"])[0]
    n_draws = len(configs)
    stack = None
    if "circuit" in stage_names and cfg.circuit.enabled:
        stack_path = draws_dir / CURRENT_STACK
        shape = (n_draws, *grid.shape)
        if stack_path.is_file():
            stack = np.load(stack_path, mmap_mode="r+")
            if stack.shape != shape or stack.dtype != np.float32:  # pragma: no cover - key.txt guards this
                del stack
                stack_path.unlink()
                stack = None
        if stack is None:
            _check_stack_disk(draws_dir, n_draws * int(np.prod(grid.shape)) * 4)
            stack = np.lib.format.open_memmap(stack_path, mode="w+", dtype=np.float32, shape=shape)

    own = executor is None
    ex = get_executor(cfg.executor) if own else executor
    try:
        check_draw_memory(grid, stage_names, ex)
        shared = ex.share(base_shared)
        todo = [("base", cfg)] + [(f"{i:05d}", c) for i, c in enumerate(configs)]
        results: dict[str, dict[str, Any]] = {}
        for name, _ in todo:
            done = _load_draw(draws_dir / f"draw_{name}.npz")
            if done is not None:
                results[name] = done
        resumed = sum(1 for n in results if n != "base")
        if resumed:
            logger.info("ensemble: resuming, %d of %d draws already done", resumed, n_draws)
        pending = [(n, c) for n, c in todo if n not in results]

        def save(i: int, r: dict[str, Any]) -> None:
            """Keep a finished draw: its current map in the stack first, then its file (which marks it done)."""
            n = pending[i][0]
            cur = r.pop("current", None)
            for k, v in r.pop("seconds", {}).items():  # the draws computed in this run; not saved (outputs do not vary)
                spent[k] = spent.get(k, 0.0) + v
            if stack is not None and n != "base":
                if cur is None:  # pragma: no cover - the circuit always gives a map
                    msg = f"ensemble draw {n}: expected a current map from the circuit stage, found none."
                    raise DataError(msg)
                stack[int(n)] = cur
                stack.flush()
            _atomic_bytes(draws_dir / f"draw_{n}.npz", cache_format.dumps(r))
            results[n] = r
            if progress is not None:
                progress(sum(1 for k in results if k != "base"), n_draws)

        spent: dict[str, float] = {}
        t = time.perf_counter()
        # one map over every pending draw; each is saved as it arrives, so no task waits for a batch's slowest
        ex.map(_run_draw, [(c, shared, stage_names, coefs_varied) for _, c in pending], star=True, label="draw",
               on_result=save)  # fmt: skip
        timings["draws_s"] = time.perf_counter() - t
        timings.update({f"{k}_s": v for k, v in spent.items()})  # summed over the tasks run (each on one core)
        timings["tasks"] = float(len(pending))
        ex.release(shared)
    finally:
        if own:
            ex.close()

    draws = [results[f"{i:05d}"] for i in range(n_draws)]
    links = summarise_links(
        draws, results["base"], robust_share=ens.robust_share, rare_share=ens.rare_share, rank_spread=ens.rank_spread
    )
    freq = None
    if all(d["corridor_bits"] is not None for d in draws):
        n_cells = int(np.prod(grid.shape))
        counts = np.zeros(n_cells, dtype=np.int64)
        for d in draws:
            counts += np.unpackbits(d["corridor_bits"], count=n_cells)
        freq = (counts / len(draws)).astype(np.float32).reshape(grid.shape)
    cur_q = None
    if stack is not None:
        t = time.perf_counter()
        cur_q = current_quantiles(stack)
        timings["current_quantiles_s"] = time.perf_counter() - t
        del stack
    result = EnsembleResult(
        links=links,
        draws=params,
        corridor_frequency=freq,
        grid=grid,
        current_quantiles=cur_q,
        resumed=resumed,
        timings_s=timings,
    )
    _write(out, cfg, result, draws, results["base"], base_ctx)
    result.elapsed_s = time.perf_counter() - t0
    return result


def _geometries(draws: list[dict[str, Any]], base: dict[str, Any]) -> dict[tuple[int, int], bytes]:
    """Each link's path: from the base configuration when it has the link, else from the first draw that does."""
    geoms: dict[tuple[int, int], bytes] = {}
    for d in [base, *draws]:
        for a, b, g in zip(d["links"]["patch_a"], d["links"]["patch_b"], d["links"]["geometry"], strict=True):
            if g is not None:
                geoms.setdefault((int(a), int(b)), g)
    return geoms


def _current_summary(q: np.ndarray | None) -> dict[str, float] | None:
    """How much the current moves between draws where it is high (None without the circuit).

    Over the cells of the top 10 % median current: the median of the 5-95 % range relative to the median.
    """
    if q is None:
        return None
    med, lo, hi = q
    ok = np.isfinite(med) & (med > 0)
    if not ok.any():
        return {"top_cells": 0, "relative_range_median": float("nan")}
    top = ok & (med >= np.quantile(med[ok], 0.9))
    rel = (hi[top] - lo[top]) / med[top]
    return {"top_cells": int(top.sum()), "relative_range_median": round(float(np.median(rel)), 6)}


def _write(out: Path, cfg: Any, res: EnsembleResult, draws: list[dict[str, Any]], base: dict[str, Any], ctx: Any) -> None:
    """The final files, each written to a temporary name and renamed into place."""
    import geopandas as gpd
    import shapely

    from leopardgeo.io import write_layers, write_raster
    from leopardgeo.io.styles import write_layer_styles, write_raster_style

    tmp = out / ".ensemble_tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    links = res.links.copy()
    names = {}
    patches = ctx.get("patches")
    if patches is not None and "name" in patches.columns:
        ids, labels = patches["patch_id"], patches["name"]
        names = {int(p): (n if isinstance(n, str) else "") for p, n in zip(ids, labels, strict=True)}
    links.insert(2, "name_a", [names.get(int(a), "") for a in links["patch_a"]])
    links.insert(3, "name_b", [names.get(int(b), "") for b in links["patch_b"]])
    links.to_csv(tmp / "ensemble_links.csv", index=False, float_format="%.6g", lineterminator="\n")
    res.draws.to_csv(tmp / "ensemble_draws.csv", index=False, float_format="%.9g", lineterminator="\n")
    geoms = _geometries(draws, base)
    gdf = gpd.GeoDataFrame(
        links,
        geometry=[
            shapely.from_wkb(geoms[(a, b)]) if (a, b) in geoms else None
            for a, b in zip(links.patch_a, links.patch_b, strict=True)
        ],
        crs=res.grid.crs,
    )
    write_layers(tmp / "ensemble.gpkg", {"ensemble_links": gdf}, metadata={"config_hash": config_hash(cfg)})
    write_layer_styles(tmp / "ensemble.gpkg", {"ensemble_links": _ROBUSTNESS_QML})
    if res.corridor_frequency is not None:
        write_raster(tmp / "corridor_frequency.tif", res.corridor_frequency, res.grid,
                     description="share of draws whose truncated corridors cover the cell")  # fmt: skip
        write_raster_style(tmp / "corridor_frequency.tif", style="suitability")  # viridis over 0..1
    if res.current_quantiles is not None:
        write_raster(tmp / "current_quantiles.tif", res.current_quantiles, res.grid,
                     description="per-cell current (A) over the draws: median, 5 % and 95 % quantiles",
                     band_names=[b for b, _ in CURRENT_BANDS])  # fmt: skip
        write_raster_style(tmp / "current_quantiles.tif", style="current")  # band 1: the median
    summary = {
        "draws": len(draws),
        "varied": [c for c in res.draws.columns if c != "draw"],
        "stages": list(cfg.ensemble.stages),
        "seed": cfg.ensemble.seed,
        "robust_share": cfg.ensemble.robust_share,
        "rare_share": cfg.ensemble.rare_share,
        "rank_spread": cfg.ensemble.rank_spread,
        "links_ranked": res.links.attrs.get("links_ranked"),
        "links": {k: int((links["robustness"] == k).sum()) for k in ("robust", "sensitive", "rare")},
        "current_quantiles": _current_summary(res.current_quantiles),
        "config_hash": config_hash(cfg),
    }
    (tmp / "ensemble.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    for name in ENSEMBLE_FILES:
        if (tmp / name).exists():
            os.replace(tmp / name, out / name)
        elif (out / name).exists():
            (out / name).unlink()  # an earlier ensemble's file this one does not make
    shutil.rmtree(tmp)
    if not (out / "ensemble_links.csv").is_file():  # pragma: no cover - defensive
        msg = f"{str(out)!r}: the ensemble outputs were not written."
        raise DataError(msg)


def _line_symbol(name: str, rgb: str, width: float, style: str) -> str:
    opts = f'<Option type="QString" name="line_color" value="{rgb},255"/>'
    opts += f'<Option type="QString" name="line_width" value="{width}"/>'
    opts += f'<Option type="QString" name="line_style" value="{style}"/>'
    return (
        f'      <symbol type="line" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
        f'<layer class="SimpleLine" enabled="1" locked="0" pass="0"><Option type="Map">{opts}</Option></layer></symbol>\n'
    )


#: QGIS style of ``ensemble_links``: categories by robustness (green solid, orange dashed, red dotted).
_ROBUSTNESS_QML = (
    "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
    '<qgis version="3.22.0" styleCategories="Symbology">\n'
    '  <renderer-v2 type="categorizedSymbol" attr="robustness" symbollevels="0" enableorderby="0" forceraster="0">\n'
    "    <categories>\n"
    '      <category render="true" symbol="0" value="robust" label="robust (present in most draws)"/>\n'
    '      <category render="true" symbol="1" value="sensitive" label="depends on the resistance guess"/>\n'
    '      <category render="true" symbol="2" value="rare" label="rare (few draws)"/>\n'
    "    </categories>\n"
    "    <symbols>\n"
    + _line_symbol("0", "26,150,65", 1.2, "solid")
    + _line_symbol("1", "253,174,97", 0.9, "dash")
    + _line_symbol("2", "215,25,28", 0.6, "dot")
    + "    </symbols>\n  </renderer-v2>\n</qgis>\n"
)
