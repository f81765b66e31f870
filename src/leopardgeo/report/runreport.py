"""The run report: ``report.md``, a self-contained ``report.html``, ``summary.json``, maps and CSV tables.

:func:`build_report` reads whatever a run folder holds and assembles the
report as :class:`Section` objects; each section appears only when its inputs
exist (links, metrics, cross-border, barriers, territories and capacity,
reintroduction sites and the population simulation), so the same report works
for a run with every stage and for one that stopped at the patches.
:func:`write_report` renders it as Markdown and HTML (maps embedded as base64
PNG, no external resources), writes ``summary.json`` (layout in
``docs/outputs.md``, versioned by :data:`SUMMARY_SCHEMA_VERSION`), the CSV
tables and the PNG maps, all through one atomic
:class:`~leopardgeo.io.OutputWriter`.

The parts live beside this module: the report's blocks and cell formatting in
:mod:`~leopardgeo.report.document`, reading the run folder in
:mod:`~leopardgeo.report.folder`, the per-output sections in
:mod:`~leopardgeo.report.sections`, the *Findings* in
:mod:`~leopardgeo.report.findings` and Markdown / HTML in
:mod:`~leopardgeo.report.render`; their public names are importable from here too.

The HTML is rendered from the sections directly (not through a Markdown
converter): tables come from the data frames, text needs only ``**bold**`` and
```code``` inline, so a converter dependency buys nothing.

Examples
--------
>>> print(markdown_table(pd.DataFrame({"patch": [1, 2], "area (ha)": ["5,000", "12,000"]})))
| patch | area (ha) |
|---:|---:|
| 1 | 5,000 |
| 2 | 12,000 |
>>> inline_html("**PC** falls by `42 %` <here>")
'<strong>PC</strong> falls by <code>42 %</code> &lt;here&gt;'
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # noqa: F401  (the docstring examples use it)

import pyogrio

from leopardgeo.core.errors import OutputExistsError
from leopardgeo.core.version import __version__
from leopardgeo.io import GPKG_NAME, OutputWriter

# The report's parts, re-exported under this module's names (imports written before the split keep working).
from leopardgeo.report.document import (  # noqa: F401
    TOP_ROWS,
    Block,
    Bullets,
    Figure,
    Report,
    Section,
    Table,
    _display,
    _fmt,
    _json_value,
    _lonlat,
    format_lonlat,
    inline_html,
    markdown_table,
)
from leopardgeo.report.findings import (  # noqa: F401
    _EC_RANK_MAX_PATCHES,
    PUBLISHED,
    PUBLISHED_DENSITY_PER_100KM2,
    _country_rows,
    _equivalent_connected_area,
    _findings_section,
    _restoration_gains,
    _restore_finding,
)
from leopardgeo.report.folder import _crs_text, _damaged, _grid_info, _patch_label, _patch_names, _RunFolder  # noqa: F401
from leopardgeo.report.render import render_html, render_markdown
from leopardgeo.report.sections import _MAP_CAPTIONS, SECTIONS, _files_section, _run_section  # noqa: F401

__all__ = [
    "REPORT_FILES",
    "SUMMARY_SCHEMA_VERSION",
    "Bullets",
    "Figure",
    "Report",
    "Section",
    "Table",
    "build_report",
    "inline_html",
    "markdown_table",
    "render_html",
    "render_markdown",
    "report_files",
    "write_report",
]

logger = logging.getLogger(__name__)

#: Version of the ``summary.json`` layout (major.minor; a minor step only adds keys).
SUMMARY_SCHEMA_VERSION = "1.0"
#: Files every report writes (plus links / cross-border tables and maps when the run has them).
REPORT_FILES = ("report.md", "report.html", "summary.json")


# ---------------------------------------------------------------------- build / render / write
def report_files(out_dir: str | Path, *, maps: bool = True) -> list[str]:
    """Files :func:`write_report` would write for the run in ``out_dir`` (for the overwrite check)."""
    from leopardgeo.report.maps import available_maps

    run = _RunFolder(out_dir)
    names = list(REPORT_FILES)
    if run.has("links"):
        names += ["links.csv", "links.json", "crossborder.csv", "crossborder.json", "crossborder.md"]
    if run.has("border_permeability"):
        names.append("border_permeability.png")
    if maps:
        names += [f"maps/{n}.png" for n in available_maps(out_dir)]
    return names


def build_report(out_dir: str | Path, maps: dict[str, Path] | None = None) -> Report:
    """Read a run folder and assemble the report (sections, ``summary.json`` content, tables to write).

    Parameters
    ----------
    out_dir
        A run folder (``leopardgeo.gpkg`` at least).
    maps
        Map name -> PNG already drawn (``maps/<name>.png``, see
        :func:`leopardgeo.report.maps.save_maps`), plus ``"border_permeability.png"``;
        figures without a PNG are left out.

    Raises
    ------
    DataError
        If ``out_dir`` holds no run.
    """
    run = _RunFolder(out_dir)
    manifest = run.json("manifest.json")
    grid = _grid_info(run)
    report = Report(run.dir, [], {}, maps=dict(maps or {}))
    report.summary.update(
        {
            "schema": "leopardgeo.summary",
            "schema_version": SUMMARY_SCHEMA_VERSION,
            "leopardgeo_version": __version__,
            "generated": _now(),
            "out_dir": run.dir.resolve().name,  # the folder's name only: no machine path in a shared report
            "run": {
                "config_hash": (manifest or {}).get("config_hash"),
                "started": (manifest or {}).get("started"),
                "finished": (manifest or {}).get("finished"),
                "total_s": (manifest or {}).get("total_s"),
                "timings_s": (manifest or {}).get("timings_s"),
                **{k: grid[k] for k in ("crs", "crs_wkt", "cell_size_m", "shape", "bounds")},
            },
            # every key is always present (null when the run has no such output), so readers need no key checks
            "findings": {},
            **dict.fromkeys(
                ("patches", "links", "connectivity", "crossborder", "barriers", "omniscape", "capacity", "sites", "simulation")
            ),
            "maps": {},
            "files": [],
        }
    )
    report.sections.append(_findings_section(run, report))
    for build in SECTIONS:
        sec = build(run, report)
        if sec is not None:
            report.sections.append(sec)
    report.sections.append(_run_section(run, report, manifest, grid))
    report.sections.append(_files_section(run, report))
    report.summary["maps"] = {k: (k if k.endswith(".png") else f"maps/{k}.png") for k in report.maps}
    report.title = f"leopardgeo run report: {run.dir.resolve().name}"
    return report


def _now() -> str:
    from leopardgeo.runner.manifest import utc_now

    return utc_now()


def write_report(
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    maps: bool = True,
    dpi: float = 110,
    progress: bool = False,
) -> Report:
    """Write ``report.md``, ``report.html``, ``summary.json``, the CSV tables and ``maps/*.png`` into a run folder.

    Everything is staged and moved into place at the end (atomically, file by
    file); a failure leaves the folder as it was.

    Parameters
    ----------
    out_dir
        A run folder.
    overwrite
        Replace a report written before.
    maps
        Draw the maps (``maps/<name>.png``; the slowest part, ~3 s a map on the demo).
    dpi
        Resolution of the maps.
    progress
        Show a progress bar while drawing the maps (terminal or Jupyter).

    Returns
    -------
    Report
        The sections and the summary written.

    Raises
    ------
    DataError
        If ``out_dir`` holds no run.
    OutputExistsError
        If report files exist and ``overwrite`` is false (checked before any work).
    """
    from leopardgeo.report.maps import available_maps, save_maps

    out = Path(out_dir)
    names = report_files(out, maps=maps)
    clash = [n for n in names if (out / n).exists()]
    if clash and not overwrite:
        msg = (
            f"run folder {str(out)!r} already holds a report ({', '.join(clash[:6])}{' ...' if len(clash) > 6 else ''}); "
            "expected none. Pass --overwrite to replace it (the report is always written into the run folder)."
        )
        raise OutputExistsError(msg)
    with OutputWriter(out, overwrite=overwrite, names=names, styles=False) as writer:
        drawn: dict[str, Path] = {}
        todo = available_maps(out) if maps else []
        png_dir = writer.staging / "maps"
        with _Progress(progress, len(todo) + 1) as step:
            for name in todo:
                step(f"map: {name}")
                drawn |= save_maps(out, png_dir, maps=[name], dpi=dpi)
                writer.path(f"maps/{name}.png")
            step("report tables")
            if (out / GPKG_NAME).is_file() and "border_permeability" in _RunFolder(out).layers:
                from leopardgeo.report import permeability_chart

                perm = pyogrio.read_dataframe(out / GPKG_NAME, layer="border_permeability")
                drawn["border_permeability.png"] = permeability_chart(perm, writer.path("border_permeability.png"))
            report = build_report(out, drawn)
        for name, text in report.files.items():
            writer.text(name, text)
        writer.text("report.md", render_markdown(report))
        writer.text("report.html", render_html(report))
        writer.text("summary.json", json.dumps(report.summary, indent=1, ensure_ascii=False, default=_json_default))
    if not maps and overwrite:  # maps of an earlier report would no longer match this one
        for png in sorted((out / "maps").glob("*.png")) if (out / "maps").is_dir() else []:
            png.unlink()
    report.maps = {k: out / (k if k.endswith(".png") else f"maps/{k}.png") for k in report.maps}
    return report


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return _json_value(v)
    if isinstance(v, Path):
        return str(v)
    msg = f"summary.json: cannot serialise {type(v).__name__}"
    raise TypeError(msg)


class _Progress:
    """``with _progress(show, total) as step: step(label)`` — a rich progress bar (terminal or Jupyter) or nothing."""

    def __init__(self, show: bool, total: int) -> None:
        self.show, self.total = show, total
        self.bar: Any = None

    def __enter__(self) -> Callable[[str], None]:
        if not self.show:
            return lambda label: logger.info("%s", label)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            transient=True)  # fmt: skip
        self.bar.__enter__()
        task = self.bar.add_task("report", total=self.total)

        def step(label: str) -> None:
            logger.info("%s", label)
            self.bar.update(task, description=label, advance=1)

        return step

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
