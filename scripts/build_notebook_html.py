"""Execute the notebooks in notebooks/ and render each as HTML into docs/notebooks/ (outputs embedded).

    python scripts/build_notebook_html.py            # every notebook (or: make notebooks-html)
    python scripts/build_notebook_html.py 02 04      # the notebooks whose names start with these

The notebooks stay stripped of outputs in git (tests/test_notebooks.py checks it); the rendered pages in
docs/notebooks/ are what a reader on a code-hosting site opens. Each page records the SHA-256 of the
notebook it was rendered from (``<meta name="leopardgeo-notebook-sha256">``), and the test suite fails when
a notebook changed after its page was built, naming this command.

All notebooks run in one temporary working folder, so the demo run made by the first is reused by the
others (``leopardgeo.runner.pipeline.run_once``), as in the test suite. Needs the ``docs`` extra
(``pip install -e ".[docs]"``: nbconvert, nbclient, ipykernel, folium).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import tempfile
import time
from pathlib import Path
from queue import Empty

import nbclient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
OUT = ROOT / "docs" / "notebooks"
META = "leopardgeo-notebook-sha256"

logger = logging.getLogger("build_notebook_html")

#: Longest single wait for a kernel message (seconds) before the socket is looked at again.
POLL_S = 1.0


def poll_each_second(channel: object) -> None:
    """Make ``channel.get_msg`` wait in steps of :data:`POLL_S`, up to its timeout (None: for ever).

    pyzmq's asyncio poll can miss the wake-up for a message already queued on a socket and return it only when the
    poll times out (zeromq/pyzmq#1558). nbclient waits for a cell's reply with the cell's whole timeout, so one missed
    wake-up stalled a 10-second notebook for 20 minutes in a CI run, which then passed. A message is found at the end
    of each step, so a missed wake-up now costs at most a second.
    """
    get = channel.get_msg  # type: ignore[attr-defined]

    async def get_msg(timeout: float | None = None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = POLL_S if deadline is None else min(POLL_S, max(0.0, deadline - time.monotonic()))
            try:
                return await get(timeout=left)
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    channel.get_msg = get_msg  # type: ignore[attr-defined]


class PollingClient(nbclient.NotebookClient):
    """nbclient's client with its shell and IOPub channels polled each second (:func:`poll_each_second`)."""

    async def async_start_new_kernel_client(self) -> object:
        kc = await super().async_start_new_kernel_client()
        poll_each_second(kc.shell_channel)
        poll_each_second(kc.iopub_channel)
        return kc


def notebook_sha256(path: Path) -> str:
    """SHA-256 of the notebook file as committed (stripped of outputs)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def render(path: Path, workdir: Path, timeout_s: int = 1800) -> str:
    """Execute ``path`` in ``workdir`` and return the page as HTML (images embedded, hash in a meta tag)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(path, as_version=4)
    client = PollingClient(nb, timeout=timeout_s, kernel_name="python3", resources={"metadata": {"path": str(workdir)}})
    client.execute()
    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": path.stem}})
    tag = f'<meta name="{META}" content="{notebook_sha256(path)}">'
    return body.replace("<head>", f"<head>\n{tag}", 1)


def main(argv: list[str] | None = None) -> int:
    """Render the notebooks named (by prefix) on the command line, or all of them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix", nargs="*", help="render only notebooks whose file name starts with one of these")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    paths = sorted(p for p in NOTEBOOKS.glob("*.ipynb") if not args.prefix or any(p.name.startswith(x) for x in args.prefix))
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="leopardgeo-notebooks-") as tmp:
        for path in paths:
            logger.info("executing %s", path.name)
            html = render(path, Path(tmp))
            target = OUT / f"{path.stem}.html"
            partial = target.with_suffix(".html.tmp")
            partial.write_text(html, encoding="utf-8")
            partial.replace(target)  # all or nothing per page
            logger.info("  -> %s (%.1f MB)", target.relative_to(ROOT), target.stat().st_size / 1e6)
    return 0


if __name__ == "__main__":
    sys.exit(main())
