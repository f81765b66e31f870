"""CRS and unit checks shared by every stage.

Least-cost analysis measures lengths and areas on the grid, so every analysis
CRS must be projected with metre axes; geopandas only warns on a geographic
CRS, we refuse (a wrong CRS makes every number wrong).
"""

from __future__ import annotations

from typing import Any

from pyproj import CRS

from leopardgeo.core.errors import CRSError

__all__ = ["M2_PER_HA", "M_PER_KM", "DEMO_CRS_PROJ4", "require_projected_metres", "to_pyproj"]

#: Square metres per hectare.
M2_PER_HA = 10_000.0
#: Metres per kilometre.
M_PER_KM = 1_000.0
#: The embedded study area's equal-area CRS (Lambert azimuthal equal-area
#: centred on the Amur leopard region); a good fix to suggest for a
#: geographic CRS in this region.
DEMO_CRS_PROJ4 = "+proj=laea +lat_0=44.25 +lon_0=132.25 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"


def to_pyproj(crs: Any) -> CRS | None:
    """Return ``crs`` as a :class:`pyproj.CRS` (``None`` stays ``None``)."""
    if crs is None:
        return None
    if isinstance(crs, CRS):
        return crs
    if hasattr(crs, "to_wkt"):
        return CRS.from_wkt(crs.to_wkt())
    try:
        return CRS.from_user_input(crs)
    except Exception as exc:  # pyproj raises its own CRSError
        msg = f"cannot understand the CRS {crs!r}: {exc}. Give an EPSG code or WKT."
        raise CRSError(msg) from exc


def require_projected_metres(crs: Any, what: str) -> CRS:
    """Check that ``crs`` is projected with metre axes, and return it.

    Parameters
    ----------
    crs
        Anything :meth:`pyproj.CRS.from_user_input` accepts, or ``None``.
    what
        What the CRS belongs to, for the message (e.g. ``"analysis grid"``).

    Returns
    -------
    pyproj.CRS

    Raises
    ------
    CRSError
        If the CRS is missing, geographic, or its axis unit is not the metre.

    Examples
    --------
    >>> require_projected_metres("EPSG:32652", "grid").name
    'WGS 84 / UTM zone 52N'
    >>> require_projected_metres("EPSG:4326", "grid")
    Traceback (most recent call last):
    ...
    leopardgeo.core.errors.CRSError: grid: expected a projected CRS in metres, found geographic CRS 'WGS 84' ...
    """
    fix = (
        "Reproject it (e.g. `gdf.to_crs(...)` or `gdalwarp -t_srs ...`) to a projected CRS in "
        "metres such as EPSG:32652 (UTM 52N) or the demo's equal-area CRS "
        f"'{DEMO_CRS_PROJ4}'."
    )
    pcrs = to_pyproj(crs)
    if pcrs is None:
        msg = f"{what}: expected a projected CRS in metres, found no CRS at all. Set one. {fix}"
        raise CRSError(msg)
    code = pcrs.to_epsg()
    label = f"'{pcrs.name}'" + (f" (EPSG:{code}" if code else " (")
    if pcrs.is_geographic:
        msg = f"{what}: expected a projected CRS in metres, found geographic CRS {label}, units of degrees). {fix}"
        raise CRSError(msg)
    units = {ax.unit_name for ax in pcrs.axis_info}
    if not units <= {"metre", "meter", "m"}:
        msg = f"{what}: expected a projected CRS in metres, found {label}, axis units {sorted(units)}). {fix}"
        raise CRSError(msg)
    return pcrs
