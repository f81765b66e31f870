"""Commands comparing runs and scenarios: ``compare``, ``scenarios``, ``rank``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from leopardgeo.cli.app import _fmt_num, cli
from leopardgeo.cli.options import overwrite_option
from leopardgeo.cli.printing import (  # the rich tables each command prints
    _console,
)


def _patch_label(d: dict, p: Any) -> str:
    n = str((d.get("patch_names") or {}).get(str(p), "")).split(";")[0].strip()
    return f"{p} ({n})" if n and not n.startswith("patch ") else str(p)


def _patch_list(d: dict) -> str:
    cut = [f"{_patch_label(d, p)} isolated" for p in d.get("newly_isolated") or []]
    cut += [f"{_patch_label(d, p)} cut in two" for p in d.get("patches_split") or []]
    return "; ".join(cut) or "none"


def _worst_link(d: dict) -> str:
    w = d.get("most_changed_link")
    if not w:
        return "none"
    link = f"{_patch_label(d, w['patch_a'])}–{_patch_label(d, w['patch_b'])}"
    return f"{link} lost" if w["status"] == "lost" else f"{link} costs ×{w['cwd_ratio']:.2f}"


def _print_comparisons(con: Any, docs: list[dict]) -> None:
    """One row per scenario: what a manager asks first (connectivity, links, isolation, leopards reachable)."""
    from rich.table import Table

    t = Table(title="Scenarios compared with the baseline run", title_justify="left")
    for col in ("scenario", "PC change", "EC change", "links lost / costlier / merged / gained", "most affected link",
                "patches cut off", "adults reachable from the source", "sites cut off"):  # fmt: skip
        t.add_column(col, justify="left" if col in ("scenario", "most affected link", "patches cut off") else "right")
    for d in docs:
        name = d.get("scenario", "") + (" (illustrative)" if d.get("illustrative") else "")
        pc, ec = d.get("PC_change_pct"), d.get("EC_ha_change_pct")
        cap = f"{_fmt_num(d.get('capacity_reachable_before'))} → {_fmt_num(d.get('capacity_reachable_after'))}"
        t.add_row(
            name,
            "—" if pc is None else f"{pc:+.1f} %",
            "—" if ec is None else f"{ec:+.1f} %",
            f"{d.get('links_lost', 0)} / {d.get('links_lengthened', 0)} / {d.get('links_merged', 0)} / "
            f"{d.get('links_gained', 0)}",
            _worst_link(d),
            _patch_list(d),
            cap,
            ", ".join(str(p) for p in d.get("sites_disconnected") or []) or "none",
        )
    con.print(t)
    con.print(
        "PC (probability of connectivity) and EC (equivalent connected area) count the habitat a leopard can reach, "
        "inside patches as well as between them, so a costlier route between two large patches can move them little: "
        "read the links too. costlier: the cheapest path costs more (×: cost after / before; links_change.csv). "
        "merged: the two patches became one (PC / EC then count them as one block of habitat, which alone can move them "
        "by tens of per cent). gained: a new neighbour after paths reroute, usually long. "
        "Illustrative scenarios use made-up geometry to show the method."
    )


def _print_link_changes(con: Any, links: Any, top: int) -> None:
    from rich.table import Table

    changed = links[links["status"] != "unchanged"]
    if not len(changed):
        con.print("No link changed.")
        return
    t = Table(title="Links that changed (patch ids as in the baseline)", title_justify="left")
    for col in ("link", "status", "cost before", "cost after", "ratio"):
        t.add_column(col, justify="left" if col in ("link", "status") else "right")
    for _, r in changed.head(top).iterrows():
        t.add_row(f"{int(r['patch_a'])}–{int(r['patch_b'])}", str(r["status"]), _fmt_num(r["cwd_before"]),
                  _fmt_num(r["cwd_after"]), _fmt_num(r["cwd_ratio"]))  # fmt: skip
    con.print(t)


@cli.command()
@click.argument("base", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("scenario", required=False)
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the comparison of two folders here (tables, difference maps, the `changes` layer).")
@overwrite_option
@click.option("--top", type=click.IntRange(min=0), default=20, show_default=True, help="Changed links to print.")
@click.pass_context
def compare(ctx: click.Context, base: Path, scenario: str | None, out: Path | None, overwrite: bool, top: int) -> None:
    r"""Compare a scenario with its baseline run.

    BASE alone: every scenario the run holds (from [[scenarios]]), one line each.
    BASE NAME: that scenario of BASE (BASE/scenarios/NAME).  BASE FOLDER: two run
    folders on the same grid; with --out the comparison is written there
    (compare.json, links_change.csv, patches_change.csv, sites_change.csv,
    crossings.csv, current_diff.tif, corridors_change.tif, and leopardgeo.gpkg
    with the styled `changes` layer).

    \b
    Examples:
      leopardgeo compare out
      leopardgeo compare out new_road
      leopardgeo compare out_today out_fence --out cmp --overwrite
    """
    import pandas as pd

    from leopardgeo.runner.compare import compare_folders, scenario_folder, stored_comparisons

    con = _console()
    quiet = ctx.obj["verbosity"] < 0
    if scenario is None:
        if out is not None:
            msg = "--out writes the comparison of two folders: give the second one (BASE FOLDER --out DIR), or leave --out out"
            raise click.UsageError(msg)
        docs = stored_comparisons(base)
        if not docs:
            msg = f"{str(base)!r} holds no scenarios; add [[scenarios]] to the config and rerun, or give two folders."
            raise click.ClickException(msg)
        if not quiet:
            _print_comparisons(con, docs)
        return
    folder = Path(scenario)
    if folder.is_dir() and folder.resolve() == base.resolve():
        msg = f"expected two different run folders, found {str(base)!r} twice"
        raise click.UsageError(msg)
    if not folder.is_dir():
        folder = scenario_folder(base, scenario)
        if out is None:
            import json

            doc = json.loads((folder / "compare.json").read_text(encoding="utf-8"))
            if not quiet:
                _print_comparisons(con, [doc])
                _print_link_changes(con, pd.read_csv(folder / "links_change.csv"), top)
                con.print(f"Files: {folder}")
            return
    comp = compare_folders(base, folder, out, overwrite=overwrite)
    if not quiet:
        _print_comparisons(con, [{"scenario": folder.name, **comp.summary}])
        _print_link_changes(con, comp.links, top)
        if out is not None:
            con.print(f"Written: {out}")


@cli.command("scenarios")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--config", "config", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="A file with [[scenarios]] (default: the run's own run_config.toml).")
@click.option("--demo", is_flag=True, help="The demo's illustrative scenarios (data/amur/scenarios.toml).")
@click.option("--only", multiple=True, help="Run only this scenario (repeatable).")
@overwrite_option
@click.pass_context
def scenarios_command(
    ctx: click.Context, run_dir: Path, config: Path | None, demo: bool, only: tuple[str, ...], overwrite: bool
) -> None:
    r"""Run [[scenarios]] on the finished run in RUN_DIR, reusing its stages.

    Each scenario reruns only the stages its edits touch (a road's penalty:
    links and what follows; habitat loss: patches and what follows) and is
    written to RUN_DIR/scenarios/NAME with its comparison; then the scenarios
    are listed as by `leopardgeo compare RUN_DIR`.

    \b
    Examples:
      leopardgeo scenarios out --config scenarios.toml --overwrite
      leopardgeo scenarios out --demo --overwrite
    """
    from leopardgeo.runner.compare import stored_comparisons
    from leopardgeo.runner.interventions import rerun_scenarios
    from leopardgeo.runner.registry import load_config

    if demo:
        if config is not None:
            msg = "give either --config or --demo"
            raise click.UsageError(msg)
        from leopardgeo.core.data import demo_data_dir

        config = demo_data_dir() / "scenarios.toml"
    todo = None
    if config is not None:
        todo = load_config(config, over=load_config(run_dir / "run_config.toml")).scenarios
    if only:
        pool = todo if todo is not None else load_config(run_dir / "run_config.toml").scenarios
        missing = sorted(set(only) - {s.name for s in pool})
        if missing:
            msg = f"--only {missing}: expected names of [[scenarios]], found {[s.name for s in pool]}."
            raise click.ClickException(msg)
        todo = tuple(s for s in pool if s.name in only)
    rerun_scenarios(run_dir, scenarios=todo, overwrite=overwrite)
    if ctx.obj["verbosity"] >= 0:
        _print_comparisons(_console(), stored_comparisons(run_dir))


@cli.command("rank")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--candidates", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Vector file of candidates: points / lines (crossing structures) or polygons (restorations), any CRS.")
@click.option("--layer", default=None, help="Layer of --candidates.")
@click.option("--barriers", "n_barriers", type=click.IntRange(min=1), default=None,
              help="Use the Barrier Mapper's N best sites as restoration candidates (circles of their radius).")
@click.option("--scenario", "scenario_name", default=None,
              help="Rank on top of this [[scenarios]] entry of the run (e.g. the road the underpasses cross).")
@click.option("--name-field", default=None, help="Column naming each candidate.")
@click.option("--cost-field", default=None, help="Column with each candidate's cost (ranks per unit of cost).")
@click.option("--per", type=click.Choice(["structure", "km2", "cost"]), default=None,
              help="Unit of the gain (default: cost with --cost-field, else km2 for polygons, structure for crossings).")
@click.option("--method", type=click.Choice(["greedy", "exhaustive"]), default="greedy", show_default=True)
@click.option("--metric", type=click.Choice(["PC", "EC_ha"]), default="PC", show_default=True)
@click.option("--width", "width_m", type=float, default=0.0, help="Width of each crossing structure, metres.")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for ranking.csv and candidates.gpkg (default: RUN_DIR/ranking).")
@overwrite_option
@click.pass_context
def rank_command(ctx: click.Context, run_dir: Path, candidates: Path | None, layer: str | None, n_barriers: int | None,
                 scenario_name: str | None, name_field: str | None, cost_field: str | None, per: str | None, method: str,
                 metric: str, width_m: float, out: Path | None, overwrite: bool) -> None:  # fmt: skip
    r"""Rank candidate crossing structures or restorations of the run in RUN_DIR by connectivity gained.

    Each candidate set the ranking needs is burned into the run's resistance
    (on top of --scenario's edits), the links and metrics are rebuilt, and the
    candidates are ranked by PC (or EC) gained per structure, km² or cost;
    patches stay as they are.

    \b
    Examples:
      leopardgeo rank out --barriers 5
      leopardgeo rank out --scenario new_road --candidates underpasses.gpkg --cost-field cost_usd
    """
    import geopandas as gpd

    from leopardgeo.core.errors import OutputExistsError
    from leopardgeo.io import OutputWriter, read_vector
    from leopardgeo.runner.interventions import barrier_candidates, candidate_edits, load_context, rank_candidates
    from leopardgeo.runner.registry import load_config

    if (candidates is None) == (n_barriers is None):
        msg = "give either --candidates FILE or --barriers N"
        raise click.UsageError(msg)
    # what can be checked without the run's values, before loading them (about a minute on the demo)
    folder = out or run_dir / "ranking"
    taken = [folder / n for n in ("ranking.csv", "candidates.gpkg") if (folder / n).exists()]
    if taken and not overwrite:
        msg = f"{str(taken[0])!r} exists; expected a free path. Pass --overwrite or choose another folder (--out)."
        raise OutputExistsError(msg)
    if scenario_name is not None and (run_dir / "run_config.toml").is_file():
        _check_scenario_name(scenario_name, [s.name for s in load_config(run_dir / "run_config.toml").scenarios])
    config, base = load_context(run_dir)
    grid = base["inputs"].grid
    if n_barriers is not None:
        if base.get("barriers") is None:
            msg = "the run has no Barrier Mapper results; run with [barrier_mapper] enabled"
            raise click.ClickException(msg)
        frame = barrier_candidates(base["barriers"], grid, n=n_barriers)
        name_field = "name"
    else:
        frame = read_vector(candidates, layer, grid=grid, what="candidates")
    kind = "restoration" if set(frame.geom_type.str.removeprefix("Multi")) == {"Polygon"} else "gap"
    edits = candidate_edits(frame, kind=kind, name_field=name_field, width_m=width_m)
    scenario = None
    if scenario_name is not None:
        _check_scenario_name(scenario_name, [s.name for s in config.scenarios])
        scenario = next(s for s in config.scenarios if s.name == scenario_name)
    unit = per or ("cost" if cost_field else "km2" if kind == "restoration" else "structure")
    if unit == "km2" and kind != "restoration":
        msg = "--per km2: expected polygon candidates (restorations), found points or lines (crossings); use --per structure"
        raise click.UsageError(msg)
    costs = None
    if unit == "cost":
        if not cost_field or cost_field not in frame.columns:
            found = f"no column {cost_field!r}" if cost_field else "no --cost-field"
            msg = f"--per cost: expected --cost-field naming a column of the candidates {list(frame.columns)}, found {found}"
            raise click.UsageError(msg)
        costs = {e.name: float(v) for (e, _), v in zip(edits, frame[cost_field], strict=True)}
    table = rank_candidates(config, base, edits, scenario=scenario, method=method, per=unit, costs=costs, metric=metric)
    layer_out = gpd.GeoDataFrame(
        table.merge(_candidate_frame(edits), on="candidate"), geometry="geometry", crs=grid.crs
    )
    with OutputWriter(folder, overwrite=overwrite, names=["ranking.csv", "candidates.gpkg"]) as w:
        w.text("ranking.csv", table.to_csv(index=False, float_format="%.6g"))
        from leopardgeo.io import write_layers

        write_layers(w.path("candidates.gpkg"), {"candidates": layer_out})
    if ctx.obj["verbosity"] >= 0:
        from rich.table import Table

        t = Table(title=f"Candidates ranked by {metric} gained per {unit} ({method})", title_justify="left")
        for col in ("rank", "candidate", f"{metric} gain", "per unit", f"{metric} with it and those above"):
            t.add_column(col, justify="left" if col == "candidate" else "right")
        for _, r in table.iterrows():
            t.add_row(str(r["rank"]), str(r["candidate"]), _fmt_num(r["gain"]), _fmt_num(r["gain_per_unit"]),
                      _fmt_num(r["value_after"]))  # fmt: skip
        _console().print(t)
        _console().print(f"Written: {folder / 'ranking.csv'}, {folder / 'candidates.gpkg'}")


def _check_scenario_name(name: str, names: list[str]) -> None:
    if name not in names:
        found = f"the run's {names}" if names else "no [[scenarios]] in the run's configuration"
        msg = (
            f"--scenario {name!r}: expected the name of one of the run's [[scenarios]], found {found}. Check the "
            "spelling, or add the scenario to the run's configuration (and `leopardgeo scenarios RUN_DIR --config FILE`)."
        )
        raise click.ClickException(msg)


def _candidate_frame(edits: Any) -> Any:
    """Candidate name and geometry of each edit, as a frame to join the ranking on."""
    import pandas as pd

    return pd.DataFrame({"candidate": [e.name for e, _ in edits], "geometry": [f.geometry.iloc[0] for _, f in edits]})
