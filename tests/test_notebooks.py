"""The notebooks in notebooks/ run top to bottom without edits, on the demo data.

They share one working folder, so the demo run made by the first notebook is reused by the others
(``leopardgeo.runner.pipeline.run_once``).  Notebooks 03 and 04 read the outputs of the territory and site stages;
they run when ``RunResult`` has those stages (``territories`` / ``sites`` fields) and are skipped before.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from pathlib import Path
from queue import Empty

import pytest

from conftest import copy_run
from leopardgeo.runner.pipeline import RunResult

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
sys.path.insert(0, str(ROOT / "scripts"))  # the notebooks run with the client that renders them for the docs
from build_notebook_html import POLL_S, PollingClient, poll_each_second  # noqa: E402

_FIELDS = {f.name for f in dataclasses.fields(RunResult)}
#: notebook -> RunResult field it needs (its stage must exist on this branch)
NEEDS = {"03_territories_capacity.ipynb": "territories", "04_reintroduction_sikhote_alin.ipynb": "sites"}


def _params() -> list:
    out = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        need = NEEDS.get(path.name)
        marks = [pytest.mark.skip(reason=f"RunResult has no {need!r} stage yet")] if need and need not in _FIELDS else []
        out.append(pytest.param(path, id=path.stem, marks=marks))
    return out


@pytest.fixture(scope="session")
def notebook_dir(tmp_path_factory, demo_run):
    """One working folder for every notebook (they share the demo run written into it).

    It starts with a copy of the session's demo run as ``out_demo``: the same configuration, so the first
    notebook's ``leopardgeo.run(..., overwrite=True)`` reuses its stages instead of computing the demo a second
    time (the computation itself is checked on that run by test_pipeline_cli.py).
    """
    d = tmp_path_factory.mktemp("notebooks")
    copy_run(demo_run[1], d / "out_demo")
    return d


def test_a_missed_wake_up_costs_at_most_a_poll_step():
    """A channel that sees its queued message only when a wait times out (the missed wake-up) answers within a step."""

    class Missed:
        async def get_msg(self, timeout: float | None = None) -> dict:
            await asyncio.sleep(3600.0 if timeout is None else timeout)
            return {"msg_id": "queued"}

    class Silent:
        async def get_msg(self, timeout: float | None = None) -> dict:
            await asyncio.sleep(timeout)
            raise Empty

    missed, silent = Missed(), Silent()
    poll_each_second(missed)
    poll_each_second(silent)
    t = time.monotonic()
    assert asyncio.run(missed.get_msg(timeout=30.0)) == {"msg_id": "queued"}
    assert time.monotonic() - t < 2 * POLL_S  # not the 30 s timeout
    t = time.monotonic()
    assert asyncio.run(missed.get_msg()) == {"msg_id": "queued"}  # no timeout: not for ever either
    assert time.monotonic() - t < 2 * POLL_S
    with pytest.raises(Empty):  # nothing came within the timeout: Empty, as before
        asyncio.run(silent.get_msg(timeout=0.05))


def test_every_notebook_is_listed_and_stripped():
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert [n[:3] for n in names] == ["01_", "02_", "03_", "04_", "05_"]
    for name in names:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{name}: outputs must be stripped in git"


@pytest.mark.parametrize("path", _params())
def test_notebook_runs(path, notebook_dir):
    nb = nbformat.read(path, as_version=4)
    client = PollingClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(notebook_dir)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, f"{path.name}: expected maps shown as images"
    texts = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                    for c in nb.cells if c.cell_type == "code" for o in c.outputs)  # fmt: skip
    assert "Warning" not in texts, texts[texts.find("Warning") - 500 :][:1500]


def test_rendered_notebooks_are_fresh():
    """docs/notebooks/<name>.html exists for every notebook and was rendered from the notebook as it is now."""
    import hashlib
    import re

    docs = NOTEBOOKS.parent / "docs" / "notebooks"
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        page = docs / f"{path.stem}.html"
        assert page.is_file(), f"{page.name} missing: run `make notebooks-html`"
        head = page.read_text(encoding="utf-8")[:5000]
        found = re.search(r'<meta name="leopardgeo-notebook-sha256" content="([0-9a-f]{64})">', head)
        assert found, f"{page.name}: no notebook hash; run `make notebooks-html`"
        assert found.group(1) == hashlib.sha256(path.read_bytes()).hexdigest(), (
            f"{page.name} is older than {path.name}: run `make notebooks-html`"
        )
        assert "Traceback" not in page.read_text(encoding="utf-8"), f"{page.name}: a cell failed"
