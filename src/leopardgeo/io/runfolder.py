"""The output folder as one unit: a lock for the length of a run, and an all-or-nothing commit.

A writer builds the complete new folder as a hidden sibling (``.<name>.staging-<pid>-<random>``):
the new outputs, plus the files of the earlier folder that stay (the user's own files always; the
earlier outputs too when the writer only adds to a run, as ``leopardgeo report`` does), linked rather
than copied.  The commit then swaps the two folders in one step:

- on Linux, ``renameat2(RENAME_EXCHANGE)`` exchanges them atomically: a kill at any moment leaves
  ``<name>`` holding either the earlier folder or the new one, each whole;
- elsewhere (or on a file system without it), the earlier folder is first renamed to
  ``.<name>.old-<pid>-<random>`` and the new one renamed into place; a kill between the two renames
  leaves no ``<name>``, and the next writer (or :func:`recover`) puts the earlier folder back.

The lock is a file beside the folder (``.<name>.lock``) held with ``flock`` for the length of the
run, so it is released by the operating system when its process dies, however it dies: a second
writer is refused with :class:`~leopardgeo.core.errors.RunLockedError` naming the holder, and the lock
of a killed run is taken over.  It lives beside the folder, not in it, because the folder itself is
swapped at the commit.  Staging and old folders left by killed runs are removed by the next writer
once it holds the lock.

Which files are outputs: every commit records what leopardgeo wrote into the folder in
``.leopardgeo_files.json`` (hidden, sorted names, no times); a file not listed there, nor in the
earlier ``manifest.json``'s ``outputs``, is the user's and is always kept.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import logging
import os
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from leopardgeo.core.errors import ConfigError, RunLockedError

__all__ = [
    "LEDGER_NAME",
    "FolderLock",
    "check_inputs_outside",
    "earlier_outputs",
    "exchange_folders",
    "recover",
    "remove_leftovers",
]

logger = logging.getLogger(__name__)

#: Seconds a writer waits for the lock of a process that has already ended (on this host): the system releases
#: a killed process's locks as it tears the process down, and under load that can lag its exit by a moment.
RELEASE_WAIT_S = 5.0

#: Hidden file in a run folder listing every file leopardgeo wrote there (everything else is the user's).
LEDGER_NAME = ".leopardgeo_files.json"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _sibling(folder: Path, kind: str) -> Path:
    return folder.parent / f".{folder.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def lock_path(folder: str | Path) -> Path:
    """The lock file of ``folder`` (beside it: ``.<name>.lock``)."""
    folder = Path(folder)
    return folder.parent / f".{folder.name}.lock"


class FolderLock:
    """An exclusive lock on an output folder, held for the length of a run.

    Parameters
    ----------
    folder
        The output folder (it need not exist yet; its parent is created).
    what
        What the holder is doing, written into the lock for the error a second writer gets.

    Raises
    ------
    RunLockedError
        If another process holds the lock (the message names its process id, host, start and command).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "out"
    >>> with FolderLock(out, what="example"):
    ...     FolderLock(out).acquire()
    Traceback (most recent call last):
    ...
    leopardgeo.core.errors.RunLockedError: output folder ... is in use by process ...
    """

    def __init__(self, folder: str | Path, *, what: str = "") -> None:
        self.folder = Path(folder)
        self.path = lock_path(self.folder)
        self.what = what or " ".join(sys.argv[:3])
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        """Take the lock (a stale lock of a killed run is taken over).

        A lock still held by a process of this host that no longer exists is waited for, up to
        :data:`RELEASE_WAIT_S` seconds, before the refusal: the system releases the locks of a killed
        process as it tears it down, which can come a moment after the process is reaped.
        """
        from leopardgeo.core.version import __version__

        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + RELEASE_WAIT_S
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                _flock(fd)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                if _gone(holder) and time.monotonic() < deadline:
                    time.sleep(0.05)  # its process has ended; the system has not yet released its lock
                    continue
                msg = (
                    f"output folder {str(self.folder)!r} is in use by process {holder.get('pid', '?')} on "
                    f"{holder.get('host', '?')} (started {holder.get('started', '?')}: {holder.get('what', '?')}); "
                    "expected no other run writing into it. Wait for that run to finish, or choose another --out. "
                    f"(The lock is {str(self.path)!r}; it is released when its process ends, however it ends.)"
                )
                raise RunLockedError(msg) from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder released and removed it between our open and our lock: try again
        if os.fstat(fd).st_size:
            logger.warning("taking over the lock of a run that ended without releasing it (%s)", _read_holder(fd))
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now(), "what": self.what, "leopardgeo": __version__}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Release the lock and remove its file."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)  # closing releases the flock
        self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *_: Any) -> None:
        self.release()


def _now() -> str:
    import datetime as _dt

    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _flock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: an exclusive create is the lock
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _gone(holder: dict[str, Any]) -> bool:
    """True if the lock's recorded holder is a process of this host that no longer exists."""
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0 or holder.get("host") != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists but is another user's
        return False
    return False


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        size = os.fstat(fd).st_size
        return json.loads(os.pread(fd, size, 0).decode() or "{}")
    except (OSError, ValueError):
        return {}


def check_inputs_outside(folder: str | Path, inputs: Iterable[str | Path]) -> None:
    """Refuse an output folder that holds any of the run's inputs (a run would replace or remove them).

    Raises
    ------
    ConfigError
        Naming the first input inside ``folder``.

    Examples
    --------
    >>> check_inputs_outside("/data/out", ["/data/in/habitat.tif"])
    >>> check_inputs_outside("/data", ["/data/in/habitat.tif"])
    Traceback (most recent call last):
    ...
    leopardgeo.core.errors.ConfigError: --out '/data' holds the run's input '/data/in/habitat.tif'; ...
    """
    out = Path(folder).expanduser().resolve()
    for item in inputs:
        p = Path(item).expanduser().resolve()
        if p == out or out in p.parents:
            msg = (
                f"--out {str(folder)!r} holds the run's input {str(item)!r}; expected an output folder apart from "
                "the inputs (a run replaces the folder's earlier outputs). Choose another --out, e.g. a new sub-folder."
            )
            raise ConfigError(msg)


def earlier_outputs(folder: Path) -> set[str]:
    """Relative paths of the files leopardgeo wrote into ``folder`` (the ledger, the manifest's outputs)."""
    names: set[str] = set()
    for fname, key in ((LEDGER_NAME, "files"), ("manifest.json", "outputs")):
        f = folder / fname
        if f.is_file():
            try:
                names |= set(json.loads(f.read_text(encoding="utf-8")).get(key, []))
            except (OSError, ValueError):
                logger.warning("could not read %s; its files are kept as the user's", f)
            names.add(fname)
    return names


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def carry_over(old: Path, new: Path, *, keep_outputs: bool, written: Iterable[str]) -> list[str]:
    """Link into ``new`` the files of ``old`` that stay; return the output names they include.

    The user's files always stay; earlier outputs stay only with ``keep_outputs`` and unless ``written``
    replaces them.  Staging and lock leftovers of earlier runs never travel.
    """
    if not old.is_dir():
        return []
    outputs = earlier_outputs(old)
    written = set(written)
    kept = []
    for name in _files(old):
        if name in written or name == LEDGER_NAME or name.split("/")[0].startswith(".staging-"):
            continue
        if name in outputs:
            if not keep_outputs or (name == "manifest.json" and "manifest.json" in written):
                continue
            kept.append(name)
        _link_or_copy(old / name, new / name)
    return kept


def write_ledger(folder: Path, names: Iterable[str]) -> None:
    """Record ``names`` as leopardgeo's files in ``folder`` (sorted, no times: the same run gives the same file)."""
    (folder / LEDGER_NAME).write_text(json.dumps({"files": sorted(set(names))}, indent=1) + "\n", encoding="utf-8")


def _renameat2(src: Path, dst: Path) -> bool:
    """Exchange two paths atomically (Linux ``renameat2``); False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(src))


def exchange_folders(new: Path, folder: Path) -> Path | None:
    """Put the complete folder ``new`` in the place of ``folder`` in one step; return where the earlier one went.

    Returns ``None`` when there was no earlier folder (``new`` is renamed into place).
    """
    if not folder.exists():
        os.rename(new, folder)
        return None
    if _renameat2(new, folder):
        return new  # the earlier folder now sits at the staging path
    old = _sibling(folder, "old")
    os.rename(folder, old)
    os.rename(new, folder)
    return old


def recover(folder: str | Path) -> None:
    """Put back an earlier folder that a killed commit left renamed aside (only without ``RENAME_EXCHANGE``)."""
    folder = Path(folder)
    if folder.exists():
        return
    olds = sorted(folder.parent.glob(f".{folder.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds:
        os.rename(olds[-1], folder)
        logger.warning("restored %s from %s, left by an interrupted commit", folder, olds[-1].name)


def remove_leftovers(folder: str | Path) -> list[Path]:
    """Remove the staging and old folders killed runs left beside (and, from older versions, inside) ``folder``.

    Call only while holding the folder's lock.
    """
    folder = Path(folder)
    recover(folder)
    gone = [*folder.parent.glob(f".{folder.name}.staging-*"), *folder.parent.glob(f".{folder.name}.old-*")]
    if folder.is_dir():
        gone += list(folder.glob(".staging-*"))
    for p in gone:
        shutil.rmtree(p, ignore_errors=True)
    if gone:
        logger.info("removed %d staging folder(s) left by interrupted runs", len(gone))
    return gone
