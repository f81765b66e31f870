"""Checking an input path before GDAL opens it: :func:`check_input_path`."""

from __future__ import annotations

from pathlib import Path

from leopardgeo.core.errors import (
    DataError,
)


# ---------------------------------------------------------------------- rasters
def check_input_path(path: str | Path, what: str) -> None:
    """Refuse an input path that is missing, a symlink loop, a named pipe, a device or a folder.

    GDAL's open blocks forever on a named pipe (FIFO) and Python raises a bare
    ``RuntimeError`` on a symlink loop; both are user mistakes with a clear fix.
    URLs and GDAL virtual paths (``/vsi...``) are passed through.

    Raises
    ------
    DataError
        Naming the path, what it is and what was expected.

    Examples
    --------
    >>> check_input_path("/no/such/file.tif", "suitability")
    Traceback (most recent call last):
    ...
    leopardgeo.core.errors.DataError: suitability: file '/no/such/file.tif' not found. ...
    """
    text = str(path)
    if "://" in text or text.startswith("/vsi"):
        return
    p = Path(path)
    try:
        st = p.stat()
    except RuntimeError as exc:  # pragma: no cover - older Pythons raise this on a loop
        msg = f"{what}: {text!r} is a symbolic link loop; expected a file. Point the path at the real file."
        raise DataError(msg) from exc
    except OSError as exc:
        if p.is_symlink():
            msg = (
                f"{what}: {text!r} is a symbolic link that leads nowhere ({exc.strerror}); expected a file. "
                "Point the path at the real file."
            )
            raise DataError(msg) from exc
        msg = f"{what}: file {text!r} not found. Check the path (relative paths start from the config's base_dir)."
        raise DataError(msg) from exc
    import stat

    if stat.S_ISDIR(st.st_mode):
        if p.suffix.lower() in (".gdb", ".zarr") or any(p.glob("*.shp")):
            return  # a file geodatabase or a shapefile folder is read as a dataset
        msg = f"{what}: {text!r} is a folder; expected a file. Give the path of the raster or vector file inside it."
        raise DataError(msg)
    if not stat.S_ISREG(st.st_mode):
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "a device or socket"
        msg = (
            f"{what}: {text!r} is {kind}; expected a regular file (reading it would block or never end). "
            "Copy the data into a file and give that path."
        )
        raise DataError(msg)
