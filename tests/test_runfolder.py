"""The run folder as one unit: lock, all-or-nothing commit (with a real kill -9), overwrite, leftovers."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from leopardgeo.core.errors import ConfigError, OutputExistsError, RunLockedError
from leopardgeo.io import OutputWriter
from leopardgeo.io import runfolder as rf

N_FILES = 30

#: A child that commits version after version of N_FILES files into one folder, as fast as it can.
CHILD = textwrap.dedent(
    f"""
    import sys
    from leopardgeo.io import OutputWriter
    out = sys.argv[1]
    v = 0
    while True:
        v += 1
        with OutputWriter(out, overwrite=True, replace=True, styles=False) as w:
            for i in range({N_FILES}):
                w.text(f"f{{i:02d}}.txt", f"{{v}}\\n" * 500)
            if v % 2:
                w.text("odd_only.txt", "only in odd versions")
        print(v, flush=True)
    """
)


def _versions(out):
    names = sorted(p.name for p in out.iterdir() if p.name.startswith("f"))
    return names, {(out / n).read_text() for n in names}


def _env():
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def test_kill_9_at_any_moment_leaves_one_whole_run(tmp_path):
    out = tmp_path / "out"
    rng = random.Random(13)
    seen = set()
    for _ in range(6):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(out)], stdout=subprocess.PIPE, env=_env(), text=True)
        try:
            child.stdout.readline()  # one version committed
            time.sleep(rng.uniform(0.0, 0.4))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
        (out / "user_notes.txt").exists() or (out / "user_notes.txt").write_text("mine")
        names, contents = _versions(out)
        assert names == [f"f{i:02d}.txt" for i in range(N_FILES)], "a kill left a folder missing files"
        assert len(contents) == 1, "a kill left a folder mixing two runs"
        version = int(next(iter(contents)).split()[0])
        assert (out / "odd_only.txt").exists() == bool(version % 2), "an output of the other run stayed"
        seen.add(version)
        assert (out / "user_notes.txt").read_text() == "mine"
    # the next writer takes over the stale lock and removes what the killed runs left beside the folder
    with OutputWriter(out, overwrite=True, replace=True, styles=False) as w:
        w.text("f00.txt", "final")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (out / "user_notes.txt").read_text() == "mine"
    assert not (out / "f01.txt").exists(), "replace keeps no output the new run did not write"
    assert len(seen) > 1


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "out"
    code = (
        "import sys, time\nfrom leopardgeo.io import OutputWriter\n"
        f"w = OutputWriter({str(out)!r}, overwrite=True)\nprint('locked', flush=True)\ntime.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=_env(), text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=rf"in use by process {holder.pid} "):
            OutputWriter(out, overwrite=True)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
    with OutputWriter(out, overwrite=True) as w:  # the killed holder's lock is taken over
        w.text("a.txt", "a")
    assert (out / "a.txt").read_text() == "a"
    assert not rf.lock_path(out).exists()


def _holder_recorded_dead(out, hold_s):
    """A process that holds ``out``'s lock for ``hold_s`` s with a dead process recorded as the holder."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    code = (
        "import json, os, sys, time\nfrom leopardgeo.io.runfolder import FolderLock\n"
        f"lock = FolderLock({str(out)!r}).acquire()\n"
        "info = json.loads(os.pread(lock._fd, 4096, 0)); info['pid'] = int(sys.argv[1])\n"
        "os.ftruncate(lock._fd, 0); os.pwrite(lock._fd, json.dumps(info).encode(), 0)\n"
        f"print('locked', flush=True)\ntime.sleep({hold_s})\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(dead.pid)], stdout=subprocess.PIPE, env=_env(), text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder, dead.pid


def test_lock_of_an_ended_process_is_waited_for_until_released(tmp_path, monkeypatch):
    # the system may release a killed process's lock a moment after the process is gone
    out = tmp_path / "out"
    monkeypatch.setattr(rf, "RELEASE_WAIT_S", 60.0)  # ample on a loaded machine; the holder ends after 0.5 s
    holder, _ = _holder_recorded_dead(out, 0.5)
    try:
        with OutputWriter(out, overwrite=True) as w:
            w.text("a.txt", "a")
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert (out / "a.txt").read_text() == "a"


def test_lock_of_an_ended_process_still_held_after_the_wait_is_refused(tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(rf, "RELEASE_WAIT_S", 0.3)
    holder, dead_pid = _holder_recorded_dead(out, 60)
    try:
        t0 = time.monotonic()
        with pytest.raises(RunLockedError, match=rf"in use by process {dead_pid} "):
            OutputWriter(out, overwrite=True)
        assert 0.25 < time.monotonic() - t0 < 10
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_in_process_second_writer_is_refused(tmp_path):
    with OutputWriter(tmp_path / "out") as w:
        w.text("a.txt", "a")
        with pytest.raises(RunLockedError, match="expected no other run"):
            OutputWriter(tmp_path / "out")


def test_overwrite_removes_earlier_outputs_and_keeps_user_files(tmp_path):
    out = tmp_path / "out"
    with OutputWriter(out, replace=True) as w:
        w.text("sites.csv", "old")
        w.text("links.csv", "old")
        w.text("maps/links.png", "old")
    (out / "my_notes.md").write_text("user")
    (out / "mine").mkdir()
    (out / "mine" / "qgis_project.qgz").write_text("user")
    with pytest.raises(OutputExistsError, match="links.csv"):
        OutputWriter(out, replace=True)
    with OutputWriter(out, replace=True, overwrite=True) as w:
        w.text("links.csv", "new")
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == [rf.LEDGER_NAME, "links.csv", "mine/qgis_project.qgz", "my_notes.md"]
    assert (out / "links.csv").read_text() == "new"
    # a writer that adds to a run (a report) keeps every earlier file
    with OutputWriter(out, overwrite=True) as w:
        w.text("report.md", "report")
    assert {"links.csv", "report.md", "my_notes.md"} <= {p.name for p in out.iterdir()}
    assert json.loads((out / rf.LEDGER_NAME).read_text())["files"] == ["links.csv", "report.md"]


def test_out_holding_an_input_is_refused_before_any_work(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "habitat.tif").write_bytes(b"x")
    with pytest.raises(ConfigError, match="holds the run's input"):
        OutputWriter(data, inputs=[data / "habitat.tif"])
    with pytest.raises(ConfigError, match="holds the run's input"):
        OutputWriter(tmp_path, inputs=[data / "habitat.tif"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    OutputWriter(tmp_path / "out", inputs=[data / "habitat.tif"]).discard()


def test_run_refuses_the_demo_data_folder_as_out():
    from leopardgeo.core.data import demo_data_dir
    from leopardgeo.runner.pipeline import run
    from leopardgeo.runner.registry import demo_config

    data = demo_data_dir()
    before = sorted(p.name for p in data.parent.iterdir())
    with pytest.raises(ConfigError, match="holds the run's input"):
        run(demo_config(), out_dir=data, overwrite=True)
    assert sorted(p.name for p in data.parent.iterdir()) == before


def test_a_failed_run_leaves_no_output_folder(tmp_path):
    out = tmp_path / "a" / "b" / "out"
    with pytest.raises(RuntimeError), OutputWriter(out) as w:
        w.text("x.txt", "x")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_a_run_failing_on_a_missing_input_leaves_no_output_folder(tmp_path):
    import dataclasses

    from leopardgeo.core.errors import LeopardGeoError
    from leopardgeo.runner.pipeline import run
    from leopardgeo.runner.registry import demo_config

    cfg = demo_config()
    cfg = cfg.replace(inputs=dataclasses.replace(cfg.inputs, landmask=str(tmp_path / "missing.tif")))
    with pytest.raises(LeopardGeoError):
        run(cfg, out_dir=tmp_path / "new" / "out")
    assert list(tmp_path.iterdir()) == []


def test_staging_folders_of_killed_runs_are_cleaned(tmp_path):
    out = tmp_path / "out"
    with OutputWriter(out) as w:
        w.text("a.txt", "a")
    (tmp_path / ".out.staging-999-dead").mkdir()
    (tmp_path / ".out.old-999-dead").mkdir()
    (out / ".staging-legacy").mkdir()  # the staging folder of earlier versions, inside the folder
    with OutputWriter(out, overwrite=True) as w:
        w.text("a.txt", "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == [rf.LEDGER_NAME, "a.txt"]


def test_without_rename_exchange_a_kill_between_the_renames_is_recovered(tmp_path, monkeypatch):
    out = tmp_path / "out"
    with OutputWriter(out) as w:
        w.text("a.txt", "old")
    monkeypatch.setattr(rf, "_renameat2", lambda *_: False)
    real_rename = os.rename
    calls = []

    def rename_then_die(src, dst):
        calls.append((src, dst))
        real_rename(src, dst)
        if len(calls) == 1:  # the earlier folder was moved aside; die before the new one moves in
            raise KeyboardInterrupt

    monkeypatch.setattr(rf.os, "rename", rename_then_die)
    with pytest.raises(KeyboardInterrupt), OutputWriter(out, overwrite=True) as w:
        w.text("a.txt", "new")
    monkeypatch.setattr(rf.os, "rename", real_rename)
    assert not out.exists()
    with OutputWriter(out, overwrite=True) as w:  # the next writer puts the earlier folder back first
        assert (out / "a.txt").read_text() == "old"
        w.text("b.txt", "b")
    assert (out / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
