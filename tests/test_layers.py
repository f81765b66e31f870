"""The package's layers: imports only point down, no import circles, a cheap ``import leopardgeo``.

The layers are listed in DESIGN.md ("Layers and the stage graph") and docs/architecture.md:
core <- config <- io <- kernels <- stages <- runner <- report <- cli.  Every ``import`` statement counts,
including the ones inside functions (a lazy import that points up is still an upward dependency).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

import leopardgeo

PKG = Path(leopardgeo.__file__).resolve().parent
ROOT = PKG.parents[1]

#: Layer of each top-level name inside the package, lowest first.
LAYERS = ["core", "config", "io", "kernels", "stages", "runner", "report", "cli"]
#: Modules outside the layer folders and the layer they sit in.
EXTRA = {"testing": "io"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The package module that an imported dotted name lives in (None outside leopardgeo)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(mod: str) -> set[str]:
    tree = ast.parse(MODULES[mod].read_text(encoding="utf-8"))
    is_pkg = MODULES[mod].name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = mod.split(".") if is_pkg else mod.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for n in names:
            target = _resolve(n)
            if target is not None and target != mod and not mod.startswith(target + "."):
                found.add(target)
    return found


def _layer(mod: str) -> int:
    parts = mod.split(".")
    if len(parts) == 1:
        return len(LAYERS)  # the package root sits on top of everything
    top = EXTRA.get(parts[1], parts[1])
    return LAYERS.index(top)


GRAPH = nx.DiGraph()
for _m in MODULES:
    GRAPH.add_node(_m)
    for _t in _imports(_m):
        GRAPH.add_edge(_m, _t)


def test_every_module_sits_in_a_layer():
    stray = [m for m in MODULES if len(m.split(".")) > 1 and EXTRA.get(m.split(".")[1], m.split(".")[1]) not in LAYERS]
    assert stray == [], f"modules outside the layer folders {LAYERS}: {stray}"


def test_imports_only_point_down():
    up = [(a, b) for a, b in GRAPH.edges if _layer(b) > _layer(a)]
    assert up == [], "imports pointing up a layer (importer -> imported): " + ", ".join(f"{a} -> {b}" for a, b in up)


def test_no_import_circles():
    cycles = list(nx.simple_cycles(GRAPH))
    assert cycles == [], f"import circles: {cycles}"


def test_the_checker_sees_an_upward_import(tmp_path):
    # the checks above can fail: a kernel importing a stage is caught
    src = "from leopardgeo.stages.resistance import burn_barriers\n"
    fake = "leopardgeo.kernels._fake"
    MODULES[fake] = tmp_path / "_fake.py"
    MODULES[fake].write_text(src)
    try:
        targets = _imports(fake)
        assert targets == {"leopardgeo.stages.resistance"}
        assert _layer("leopardgeo.stages.resistance") > _layer(fake)
    finally:
        del MODULES[fake]


def _fresh(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return out.stdout.strip()


def test_import_leopardgeo_is_lazy():
    # neither numba, scipy, GDAL nor pandas load for `import leopardgeo` or for the CLI's --help
    heavy = ["numba", "scipy", "rasterio", "pyogrio", "geopandas", "pandas", "numpy", "matplotlib", "networkx"]
    code = (
        "import sys, leopardgeo, leopardgeo.cli; "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    assert _fresh(code) == ""


def test_help_loads_no_heavy_module():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from leopardgeo.cli import cli\n"
        "r = CliRunner().invoke(cli, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(','.join(m for m in ('numba', 'scipy', 'rasterio', 'pandas', 'numpy') if m in sys.modules))\n"
    )
    assert _fresh(code) == ""


def _readme_python() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def _dotted(expr: ast.AST) -> list[str] | None:
    parts = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if isinstance(expr, ast.Name):
        return [expr.id, *reversed(parts)]
    return None


@pytest.mark.skipif(not (ROOT / "README.md").is_file(), reason="README.md is not beside an installed package")
def test_readme_names_resolve():
    """Every ``leopardgeo...`` name and import in the README's Python blocks exists after ``import leopardgeo``.

    Here each name they use, and every ``leopardgeo.*`` name the README's text mentions, is resolved;
    :func:`test_readme_python_blocks_run` runs the blocks themselves.
    """
    import importlib

    blocks = _readme_python()
    assert blocks
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    files = {"gpkg", "tif", "toml", "json", "csv", "md", "html", "qml", "png"}
    prose = {n for n in re.findall(r"`(leopardgeo(?:\.\w+)+)", text) if n.rpartition(".")[2] not in files}
    checked = 0
    for block in blocks:
        tree = ast.parse(block)
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("leopardgeo"):
                mod = importlib.import_module(node.module)
                for a in node.names:
                    aliases[a.asname or a.name] = getattr(mod, a.name)
                    checked += 1
        for node in ast.walk(tree):
            chain = _dotted(node) if isinstance(node, ast.Attribute) else None
            if chain and chain[0] in (*aliases, "leopardgeo"):
                obj = aliases.get(chain[0], leopardgeo)
                for name in chain[1:]:
                    if isinstance(obj, type) or (callable(obj) and not isinstance(obj, type(leopardgeo))):
                        break  # attributes of results (inputs.grid, territories.capacity) are not names of the package
                    obj = getattr(obj, name)
                    checked += 1
    for name in prose:
        obj = leopardgeo
        for part in name.split(".")[1:]:
            obj = getattr(obj, part)
        checked += 1
    assert checked > 5


@pytest.mark.skipif(not (ROOT / "README.md").is_file(), reason="README.md is not beside an installed package")
def test_readme_python_blocks_run(tmp_path, monkeypatch):
    """The README's Python blocks run as written, on the demo at 2 km cells (the same calls; seconds, not a minute)."""
    import dataclasses

    from conftest import coarse_demo_config

    cfg = coarse_demo_config()
    cfg = cfg.replace(sites=dataclasses.replace(cfg.sites, enabled=False))  # not used by the README's blocks
    monkeypatch.setattr(leopardgeo, "demo_config", lambda data_dir=None: cfg)
    monkeypatch.chdir(tmp_path)
    for block in _readme_python():
        namespace: dict = {}
        exec(compile(block, "README.md", "exec"), namespace)
    assert (tmp_path / "out" / "leopardgeo.gpkg").is_file()
    assert namespace["territories"].capacity("country")["adults"].sum() > 0
    assert namespace["result"].graph.number_of_edges() == namespace["graph"].number_of_edges()
