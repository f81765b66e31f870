"""``run(config)``: chain the stages (inputs -> habitat -> resistance -> patches) and write outputs.

Each stage is also callable on its own (:func:`load_inputs`,
:func:`compute_suitability`, :func:`compute_resistance`,
:func:`compute_patches`) so a notebook can stop, inspect and resume anywhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

import geopandas as gpd
import pyogrio

from leopardgeo.config import config_hash, dump_config
from leopardgeo.core.errors import DataError, OutputExistsError
from leopardgeo.core.executor import get_executor, use_executor
from leopardgeo.core.grid import Grid
from leopardgeo.core.version import __version__
from leopardgeo.io import GPKG_NAME, OutputWriter
from leopardgeo.kernels.circuit import CircuitResult
from leopardgeo.kernels.costdist import CostDistanceResult
from leopardgeo.runner.manifest import MANIFEST_NAME, input_files, input_paths, manifest_json, read_manifest, utc_now
from leopardgeo.runner.registry import STAGES, RunConfig
from leopardgeo.runner.stagegraph import CACHE_DIR, Stage, execute, resolve

# the stage functions, for notebooks and scripts that call one stage on its own (their home is each stage's module)
from leopardgeo.stages.barrier_mapper import BarrierResult, barrier_radii_m, compute_barriers
from leopardgeo.stages.circuit import (
    MAX_CIRCUIT_PAIRS,
    _check_circuit_patches,
    circuit_table,
    compute_circuit,
)
from leopardgeo.stages.corridors import CorridorResult, compute_corridors
from leopardgeo.stages.crossborder import CrossBorderResult, compute_crossborder, crossborder_layers, fence_report
from leopardgeo.stages.graph import LINK_FILES, compute_links, link_rasters
from leopardgeo.stages.habitat import compute_suitability, movement_suitability, rsf_inputs
from leopardgeo.stages.inputs import Inputs, check_run_memory, load_inputs, make_grid, protected_raster
from leopardgeo.stages.metrics import MetricsResult, compute_metrics
from leopardgeo.stages.patches import compute_patches
from leopardgeo.stages.pinchpoints import PinchResult, compute_pinch_points
from leopardgeo.stages.resistance import compute_resistance
from leopardgeo.stages.score import compute_scores
from leopardgeo.stages.sites import (
    TIME_KEYS,
    SiteResult,
    compute_sites,
    site_files,
    site_layer,
    split_times,
    write_sites,
)
from leopardgeo.stages.territories import (
    TERRITORY_FILES,
    TerritoryResult,
    capacity_report,
    compute_territories,
    territory_outputs,
    territory_quality,
    territory_zones,
)

__all__ = [
    "LINK_FILES",
    "MAX_CIRCUIT_PAIRS",
    "STAGES",
    "TERRITORY_FILES",
    "TIME_KEYS",
    "Inputs",
    "RunConfig",
    "RunResult",
    "Stage",
    "_check_circuit_patches",
    "barrier_radii_m",
    "capacity_report",
    "check_run_memory",
    "circuit_table",
    "compute_crossborder",
    "compute_scores",
    "crossborder_layers",
    "fence_report",
    "link_rasters",
    "movement_suitability",
    "output_files",
    "protected_raster",
    "rsf_inputs",
    "site_files",
    "site_layer",
    "split_times",
    "territory_quality",
    "territory_zones",
    "write_sites",
    "compute_barriers",
    "compute_circuit",
    "compute_corridors",
    "compute_metrics",
    "compute_pinch_points",
    "compute_patches",
    "compute_resistance",
    "compute_sites",
    "compute_links",
    "compute_suitability",
    "compute_territories",
    "load_inputs",
    "make_grid",
    "run",
    "run_links",
    "run_once",
    "summary_table",
    "territory_outputs",
]

logger = logging.getLogger(__name__)

#: Files every run writes into the output folder; each stage adds its own (``Stage.files``).
OUTPUT_FILES = (GPKG_NAME, "run_config.toml", MANIFEST_NAME)


def _targets(targets: tuple[str, ...] | list[str] | None, out: Path | None) -> list[str] | None:
    """``targets`` and, into the folder of an earlier run, every stage that run made (in registry order)."""
    if targets is None:
        return None
    known = [s.name for s in STAGES]
    wanted = set(targets)
    if out is not None and out.is_dir():
        earlier = read_manifest(out) or {}
        wanted |= set(earlier.get("stages", {})) & set(known)
    return [n for n in known if n in wanted] + sorted(wanted - set(known))  # an unknown target is refused by resolve


def output_files(cfg: RunConfig, targets: tuple[str, ...] | list[str] | None = None) -> tuple[str, ...]:
    """Files a run with ``cfg`` writes (each GeoTIFF with its QGIS style ``.qml``); ``targets`` as in :func:`run`."""
    return _files(cfg, resolve(STAGES, cfg, targets))


def _files(cfg: RunConfig, order: list[Stage]) -> tuple[str, ...]:
    files = OUTPUT_FILES + tuple(f for s in order for f in s.files_for(cfg))
    return files + tuple(f.removesuffix(".tif") + ".qml" for f in files if f.endswith(".tif"))  # QGIS styles


@dataclass
class RunResult:
    """What :func:`run` produced (arrays on ``inputs.grid``, frames in its CRS)."""

    config: RunConfig
    inputs: Inputs
    suitability: np.ndarray
    resistance: np.ndarray
    patch_labels: np.ndarray
    patches: gpd.GeoDataFrame
    graph: nx.Graph | None = None
    cwd: CostDistanceResult | None = None
    corridors: CorridorResult | None = None
    circuit: CircuitResult | None = None
    pinch: PinchResult | None = None
    barriers: BarrierResult | None = None
    metrics: MetricsResult | None = None
    crossborder: CrossBorderResult | None = None
    scores: pd.DataFrame | None = None
    sites: SiteResult | None = None
    territories: TerritoryResult | None = None
    out_dir: Path | None = None
    timings_s: dict[str, float] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)

    @property
    def grid(self) -> Grid:
        """The analysis grid."""
        return self.inputs.grid


# ---------------------------------------------------------------------- stages




































































def run_links(
    out_dir: str | Path,
    config: RunConfig | None = None,
    *,
    overwrite: bool = False,
) -> tuple[nx.Graph, CostDistanceResult]:
    """(Re)build the links of an earlier run, and everything that depends on them, in its folder.

    The run is redone with its own configuration (or ``config``) and links
    enabled: stages the links do not touch are reused from the folder, the
    links and every stage downstream of them (corridors, circuit, pinch points,
    barriers, metrics, cross-border, scores, sites) are recomputed, and the
    folder is replaced whole, so no output is left describing the old links.

    Parameters
    ----------
    out_dir
        Folder of an earlier ``leopardgeo run``.
    config
        Configuration to use; default: the run's own ``run_config.toml``.
    overwrite
        Replace links written before.

    Raises
    ------
    DataError
        If the folder holds no complete run.
    OutputExistsError
        If links exist and ``overwrite`` is false.
    """
    from leopardgeo.runner.registry import load_config

    out = Path(out_dir)
    needed = [GPKG_NAME, "resistance.tif", "patches.tif", "run_config.toml"]
    missing = [n for n in needed if not (out / n).exists()]
    if missing:
        msg = f"{str(out)!r}: expected the outputs of `leopardgeo run`, missing {', '.join(missing)}. Run it first."
        raise DataError(msg)
    cfg = config if config is not None else load_config(out / "run_config.toml")
    existing = [str(n) for n in pyogrio.list_layers(out / GPKG_NAME)[:, 0]]
    if not overwrite and ("links" in existing or any((out / n).exists() for n in LINK_FILES)):
        msg = f"{str(out)!r} already holds links; expected none. Pass --overwrite to rebuild them."
        raise OutputExistsError(msg)
    cfg = cfg.replace(links=dataclasses.replace(cfg.links, enabled=True))
    result = run(cfg, out_dir=out, overwrite=True)
    assert result.graph is not None and result.cwd is not None  # links are enabled
    return result.graph, result.cwd


def summary_table(patches: gpd.GeoDataFrame) -> pd.DataFrame:
    """Patches and their area (ha) by country, with a total row.

    A patch across a border counts in every country it reaches, with that country's own share of its area
    (the ``area_ha_<iso3>`` columns), not wholly under its majority country; the ``all`` row counts each
    patch once, with its whole area (which also holds the few cells outside every country's polygon).

    Examples
    --------
    >>> import geopandas as gpd
    >>> p = gpd.GeoDataFrame({"country": ["CHN", "RUS"], "area_ha": [100.0, 40.0],
    ...                       "area_ha_chn": [60.0, 0.0], "area_ha_rus": [40.0, 40.0]})
    >>> summary_table(p).to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'country': 'CHN', 'patches': 1, 'area_ha': 60.0}, {'country': 'RUS', 'patches': 2, 'area_ha': 80.0},
     {'country': 'all', 'patches': 2, 'area_ha': 140.0}]
    """
    shares = sorted(c for c in patches.columns if c.startswith("area_ha_"))
    if shares:
        rows = [
            {"country": c.removeprefix("area_ha_").upper(), "patches": int((patches[c] > 0).sum()),
             "area_ha": float(patches[c].sum())}
            for c in shares
        ]  # fmt: skip
        table = pd.DataFrame([r for r in rows if r["patches"]], columns=["country", "patches", "area_ha"])
    else:
        by = patches.assign(country=patches["country"].replace("", "?")).groupby("country")
        table = pd.DataFrame({"patches": by.size(), "area_ha": by["area_ha"].sum()}).reset_index()
    total = pd.DataFrame({"country": ["all"], "patches": [len(patches)], "area_ha": [patches["area_ha"].sum()]})
    return pd.concat([table, total], ignore_index=True)


# ---------------------------------------------------------------------- run
@contextlib.contextmanager
def _steps(progress: bool, total: int) -> Iterator[Callable[[str], None]]:
    """Yield ``step(label)``: logs each step and, with ``progress``, shows a rich bar."""
    if not progress:
        yield lambda label: logger.info("%s", label)
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task("starting", total=total)

        def step(label: str) -> None:
            logger.info("%s", label)
            bar.update(task, description=label, advance=1)

        yield step


def run(
    config: RunConfig,
    *,
    out_dir: str | Path | None = None,
    overwrite: bool | None = None,
    progress: bool = False,
    recompute: bool = False,
    targets: tuple[str, ...] | list[str] | None = None,
) -> RunResult:
    """Run the pipeline and write the outputs.

    Parameters
    ----------
    config
        The run configuration (:func:`leopardgeo.config.demo_config` for the
        embedded Amur study area).
    out_dir
        Output folder; ``config.output.dir`` when omitted.  ``None`` with
        ``config.output.dir == ""`` runs without writing.
    overwrite
        Replace existing outputs; ``config.output.overwrite`` when omitted.
    progress
        Show a progress bar (terminal or Jupyter).
    recompute
        Compute every stage, even those an earlier run in ``out_dir`` could give (see Notes).
    targets
        Run only these stages (names in :data:`STAGES`) and what they need, e.g. ``("territories",)``;
        ``None`` runs every enabled stage.  Into the folder of an earlier run, the stages that run made
        run too (reused when unchanged, recomputed when something they depend on changed), so the folder
        loses nothing and holds nothing stale.

    Returns
    -------
    RunResult

    Raises
    ------
    OutputExistsError
        Before any work, if outputs exist and ``overwrite`` is false.  A run
        that fails later leaves earlier outputs intact.
    RunLockedError
        Before any work, if another run is writing into ``out_dir``.
    ConfigError
        Before any work, if ``out_dir`` holds one of the run's input files.

    Notes
    -----
    The run folder is replaced as a whole (:mod:`leopardgeo.io.runfolder`):
    outputs of an earlier run that this run does not make are removed, files
    the user put there are kept, and a failure or kill leaves the earlier
    folder as it was.

    The stages are the registry :data:`STAGES`, resolved and run by
    :mod:`leopardgeo.runner.stagegraph`.  With ``overwrite`` into a folder of
    an earlier run, a stage whose hash (its config sections, upstream stages,
    input files) is unchanged is loaded from that run's cache instead of being
    computed; ``RunResult.reused`` names those stages.
    """
    out = Path(out_dir) if out_dir is not None else (Path(config.output.dir) if config.output.dir else None)
    ow = config.output.overwrite if overwrite is None else overwrite
    order = resolve(STAGES, config, _targets(targets, out))
    writer = None
    if out is not None:
        inputs = [path for _, path in input_paths(config)]
        names = _files(config, order)
        writer = OutputWriter(out, overwrite=ow, names=names, replace=True, inputs=inputs)
    timings: dict[str, float] = {}
    started = utc_now()
    try:
        previous = None
        trusted: set[str] = set()
        if writer is not None and not recompute and out is not None and out.is_dir():
            from leopardgeo.io.runfolder import earlier_outputs

            previous = read_manifest(out)
            trusted = earlier_outputs(out)
        input_hashes = {f["path"]: f["sha256"] for f in input_files(config)}
        with (
            _steps(progress, total=len(order) + (writer is not None)) as step,
            get_executor(config.executor) as executor,
            use_executor(executor),  # the stages' parallel tasks run on it
        ):
            ctx, stage_run = execute(
                order,
                config,
                input_hashes=input_hashes,
                previous=previous,
                folder=out,
                trusted=trusted,
                save=(lambda name, data: writer.path(name).write_bytes(data)) if writer is not None else None,
                keep=writer.keep if writer is not None else None,
                step=step,
            )
            timings |= stage_run.timings_s
            if stage_run.reused:
                done = ", ".join(stage_run.computed) or "nothing"
                logger.info("reused from %s: %s; recomputed: %s", out, ", ".join(stage_run.reused), done)
            inputs, suit, res, labels, patches = (ctx[k] for k in ("inputs", "suitability", "resistance", "labels", "patches"))
            if config.sites.enabled and "sites" not in {s.name for s in order}:
                logger.info("reintroduction sites skipped: no [inputs] sites and [sites] candidates = 'layer'")
            if writer is not None:
                t = time.perf_counter()
                step(f"writing outputs to {out}")
                meta = {"leopardgeo_version": __version__, "config_hash": config_hash(config)}
                layers: dict[str, gpd.GeoDataFrame] = {}
                ran = {s.name for s in order}
                for s in (s for s in STAGES if s.name in ran):  # each stage's layers of the one GeoPackage
                    if s.layers is not None:
                        layers |= dict(s.layers(config, ctx))
                writer.layers(layers, metadata=meta)
                for s in order:  # each stage's rasters and tables; a reused stage's files are carried over
                    if s.write is None:
                        continue
                    if s.name in stage_run.reused and _carry_over(writer, out, trusted, s.files_for(config)):
                        continue
                    timings |= dict(s.write(writer, config, ctx) or {})
                if config.scenarios and targets is None:
                    from leopardgeo.runner.scenarios import write_scenarios

                    timings |= write_scenarios(writer, config, ctx, stages=STAGES, capacity=territory_outputs, step=step)
                writer.text("run_config.toml", dump_config(config, relative_to=out))
                writer.write_styles()  # QGIS styles: layer_styles in the GeoPackage, a .qml beside each GeoTIFF
                timings["write"] = time.perf_counter() - t
                manifest = manifest_json(
                    config,
                    started=started,
                    timings_s=timings,
                    outputs=[n for n in [*writer.written, MANIFEST_NAME] if not n.startswith(CACHE_DIR)],
                    stages=stage_run.manifest(),
                    cache_sha256=stage_run.cache_sha256,
                    relative_to=out,
                )
                writer.text(MANIFEST_NAME, manifest)
                writer.commit()
                timings["write"] = time.perf_counter() - t
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    return RunResult(
        config,
        inputs,
        suit,
        res,
        labels,
        patches,
        graph=ctx.get("graph"),
        cwd=ctx.get("cwd"),
        corridors=ctx.get("corridors"),
        circuit=ctx.get("circuit"),
        pinch=ctx.get("pinch"),
        barriers=ctx.get("barriers"),
        metrics=ctx.get("metrics"),
        crossborder=ctx.get("crossborder"),
        scores=ctx.get("scores"),
        sites=ctx.get("sites"),
        territories=ctx.get("territories"),
        out_dir=out,
        timings_s=timings,
        reused=stage_run.reused,
    )




















def _carry_over(writer: OutputWriter, out: Path | None, trusted: set[str], files: tuple[str, ...]) -> bool:
    """Carry a reused stage's files (and their QGIS styles) from the earlier run into the new one unchanged.

    A reused stage's values are those of the earlier run (same hash: config sections, upstream stages, input
    files), and its files depend on nothing else, so they are what writing them again would give; linking them
    saves encoding every raster again.  Returns ``False`` (write them) unless every file is an earlier output.
    """
    if out is None or not files or not all(f in trusted and (out / f).is_file() for f in files):
        return False
    for f in files:
        writer.keep(f)
        qml = f.removesuffix(".tif") + ".qml"
        if f.endswith(".tif") and qml in trusted and (out / qml).is_file():
            writer.keep(qml)
    return True


def run_once(config: RunConfig, out_dir: str | Path, *, progress: bool = False) -> Path:
    """Run ``config`` into ``out_dir`` unless the folder already holds a finished run of the same configuration.

    A folder counts as holding the run when its ``manifest.json`` has the same
    ``config_hash`` and leopardgeo version and every file the manifest lists
    is present; otherwise the run is (re)done with ``overwrite=True``.  Meant
    for notebooks and scripts that share one run: the first one runs it, the
    others read its outputs.

    Parameters
    ----------
    config
        The run configuration.
    out_dir
        The output folder.
    progress
        Show a progress bar when running.

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    out = Path(out_dir)
    m = read_manifest(out) if out.is_dir() else None
    if (
        m is not None
        and m.get("config_hash") == config_hash(config)
        and m.get("versions", {}).get("leopardgeo") == __version__
        and all((out / name).is_file() for name in m.get("outputs", []))
    ):
        return out
    run(config, out_dir=out, overwrite=True, progress=progress)
    return out
