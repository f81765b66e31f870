"""The stage cache's file format: a stage's values in one ``.npz`` that loading cannot turn into running code.

A run folder keeps each stage's values (``.leopardgeo_cache/<stage>.npz``) so a later run can reuse them
(:mod:`leopardgeo.runner.stagegraph`).  Python's pickle would store anything, but loading a pickle runs
whatever code the file names, so a run folder from someone else could run code on the machine that reruns
into it.  This format stores only data:

* every array in a NumPy ``.npz`` (read with ``allow_pickle=False``), and the structure around them as JSON
  (member ``__tree__``);
* frames column by column (numeric columns as arrays, text and other cells as JSON values), geometries
  as WKB, coordinate reference systems as the text they were made from (WKT, ``EPSG:n``), graphs as
  node-link lists (nodes, then edges, each with its attributes), ``affine.Affine`` as its six numbers;
* leopardgeo's own result dataclasses and enums by name: loading imports the named class only from
  ``leopardgeo`` and only when it is a dataclass or an enum, and fills its fields without running its
  ``__init__``.

A value of any other type raises :class:`CacheFormatError` when saving (the stage is then not cached and is
computed again next time); a file that is not in this format, or is damaged, raises it when loading (the
stage is then computed again).  The same object met twice in one stage's values is stored once and loaded
as one object.

Examples
--------
>>> import numpy as np, networkx as nx
>>> g = nx.Graph(); g.add_edge(1, 2, cwd=3.5, path=np.arange(3))
>>> back = loads(dumps({"graph": g, "labels": np.eye(2, dtype=np.int32), "note": ("a", None)}))
>>> back["graph"].edges[1, 2]["cwd"], back["graph"].edges[1, 2]["path"].tolist(), back["note"]
(3.5, [0, 1, 2], ('a', None))
>>> loads(b"not a cache")
Traceback (most recent call last):
...
leopardgeo.runner.cache.CacheFormatError: not a stage cache file: File is not a zip file
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import io
import json
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

import geopandas as gpd
import shapely
from affine import Affine
from pyproj import CRS

from leopardgeo.core.errors import LeopardGeoError

__all__ = ["FORMAT", "CacheFormatError", "dumps", "loads"]

#: Written into every file; a file with another value is not read.
FORMAT = "leopardgeo-stage-cache-1"

_GRAPHS = {c.__name__: c for c in (nx.Graph, nx.DiGraph, nx.MultiGraph, nx.MultiDiGraph)}


class CacheFormatError(LeopardGeoError):
    """A value the stage cache cannot store, or a file that is not a stage cache."""


def _class_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _own_class(name: str) -> type:
    """The leopardgeo class ``module:qualname``; refused unless it is a dataclass or an enum of leopardgeo's."""
    module, _, qual = name.partition(":")
    if module != "leopardgeo" and not module.startswith("leopardgeo."):
        msg = f"the cache names the class {name!r}, which is not leopardgeo's"
        raise CacheFormatError(msg)
    try:
        obj: Any = importlib.import_module(module)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        msg = f"the cache names the class {name!r}, which this leopardgeo does not have ({exc})"
        raise CacheFormatError(msg) from None
    if not isinstance(obj, type) or not (dataclasses.is_dataclass(obj) or issubclass(obj, enum.Enum)):
        msg = f"the cache names {name!r}, which is not a leopardgeo dataclass or enum"
        raise CacheFormatError(msg)
    return obj


class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.memo: dict[int, int] = {}
        self.alive: list[Any] = []  # keeps every memoised object alive, so no id is reused

    def array(self, a: np.ndarray) -> str:
        key = f"a{len(self.arrays)}"
        self.arrays[key] = a
        return key

    def blob(self, items: list[bytes | None]) -> dict[str, Any]:
        """Byte strings (``None`` allowed) as one byte array and their offsets."""
        sizes = np.array([-1 if b is None else len(b) for b in items], dtype=np.int64)
        data = np.frombuffer(b"".join(b for b in items if b is not None), dtype=np.uint8)
        return {"data": self.array(data), "sizes": self.array(sizes)}

    def geometries(self, values: Any) -> dict[str, Any]:
        wkb = shapely.to_wkb(np.asarray(values, dtype=object), output_dimension=3)
        return self.blob([None if b is None else bytes(b) for b in wkb])

    def column(self, s: pd.Series) -> dict[str, Any]:
        dtype = s.dtype
        if isinstance(dtype, gpd.array.GeometryDtype):
            return {"t": "geo", "v": self.geometries(s.to_numpy()), "crs": self.enc(s.array.crs)}
        if isinstance(dtype, pd.CategoricalDtype):
            return {"t": "cat", "codes": self.array(s.cat.codes.to_numpy()), "categories": self.index(s.cat.categories),
                    "ordered": bool(dtype.ordered)}  # fmt: skip
        if isinstance(dtype, np.dtype) and not dtype.hasobject:
            return {"t": "nd", "a": self.array(np.ascontiguousarray(s.to_numpy()))}
        values = s.to_numpy(dtype=object)
        na = [bool(v is pd.NA or v is None) for v in values]
        cells = [None if m else self.enc(v) for v, m in zip(values, na, strict=True)]
        if isinstance(dtype, np.dtype):  # object
            return {"t": "obj", "v": cells}
        return {"t": "ext", "dtype": str(dtype), "v": cells, "na": na}

    def index(self, idx: pd.Index) -> dict[str, Any]:
        if isinstance(idx, pd.MultiIndex):
            msg = "the stage cache does not store a MultiIndex"
            raise CacheFormatError(msg)
        if isinstance(idx, pd.RangeIndex):
            return {"t": "range", "v": [idx.start, idx.stop, idx.step], "name": self.enc(idx.name)}
        return {"t": "index", "v": self.column(pd.Series(idx, copy=False)), "name": self.enc(idx.name)}

    def frame(self, df: pd.DataFrame) -> dict[str, Any]:
        if isinstance(df.columns, pd.MultiIndex):
            msg = "the stage cache does not store MultiIndex columns"
            raise CacheFormatError(msg)
        return {
            "columns": self.index(df.columns),
            "data": [self.column(df.iloc[:, i]) for i in range(df.shape[1])],
            "index": self.index(df.index),
            "attrs": self.enc(dict(df.attrs)),
        }

    def enc(self, x: Any) -> Any:
        t = type(x)
        if x is None or t in (bool, str):
            return x
        if t is int:
            return x if abs(x) < 2**53 else {"t": "bigint", "v": str(x)}
        if t is float:
            return {"t": "float", "v": repr(x)} if not np.isfinite(x) else x
        if isinstance(x, enum.Enum):
            return {"t": "enum", "cls": _class_name(t), "v": self.enc(x.value)}
        if isinstance(x, np.generic):
            if x.dtype.hasobject:
                msg = f"the stage cache does not store a NumPy object scalar ({t.__name__})"
                raise CacheFormatError(msg)
            return {"t": "np", "a": self.array(np.asarray(x))}
        if t is tuple:
            return {"t": "tuple", "v": [self.enc(v) for v in x]}
        if t in (set, frozenset):
            return {"t": t.__name__, "v": [self.enc(v) for v in x]}
        if t is slice:
            return {"t": "slice", "v": [self.enc(x.start), self.enc(x.stop), self.enc(x.step)]}
        if t is bytes:
            return {"t": "bytes", "a": self.array(np.frombuffer(x, dtype=np.uint8))}
        if t is Affine:
            return {"t": "affine", "v": [float(v) for v in tuple(x)[:6]]}
        if isinstance(x, CRS):
            return {"t": "crs", "v": x.srs}  # the text it was made from: the same CRS, written the same way
        if isinstance(x, shapely.Geometry):
            return {"t": "geom", "v": self.geometries([x])}
        # the containers below are stored once per object and referred to again by number
        if id(x) in self.memo:
            return {"t": "ref", "i": self.memo[id(x)]}
        self.memo[id(x)] = len(self.memo)
        self.alive.append(x)
        number = self.memo[id(x)]
        if t is list:
            return {"t": "list", "n": number, "v": [self.enc(v) for v in x]}
        if t is dict:
            return {"t": "dict", "n": number, "k": [self.enc(k) for k in x], "v": [self.enc(v) for v in x.values()]}
        if t is np.ndarray:
            if x.dtype.hasobject:
                return {"t": "ndo", "n": number, "shape": list(x.shape), "v": [self.enc(v) for v in x.ravel()]}
            return {"t": "nd", "n": number, "a": self.array(x)}
        if t is gpd.GeoDataFrame:
            geometry = x._geometry_column_name if x._geometry_column_name in x.columns else None
            return {"t": "gdf", "n": number, "f": self.frame(pd.DataFrame(x, copy=False)), "geometry": self.enc(geometry),
                    "crs": self.enc(x.crs if geometry is not None else None)}  # fmt: skip
        if t is pd.DataFrame:
            return {"t": "df", "n": number, "f": self.frame(x)}
        if t is gpd.GeoSeries:
            return {"t": "gs", "n": number, "v": self.geometries(x.to_numpy()), "index": self.index(x.index),
                    "name": self.enc(x.name), "crs": self.enc(x.crs)}  # fmt: skip
        if t is pd.Series:
            return {"t": "series", "n": number, "v": self.column(x), "index": self.index(x.index), "name": self.enc(x.name)}
        if isinstance(x, pd.Index):
            return {"t": "pdindex", "n": number, "v": self.index(x)}
        if t.__name__ in _GRAPHS and _GRAPHS[t.__name__] is t:
            multi = x.is_multigraph()
            edges = x.edges(keys=True, data=True) if multi else x.edges(data=True)
            return {
                "t": "graph", "n": number, "kind": t.__name__, "graph": self.enc(dict(x.graph)),
                "nodes": [[self.enc(n), self.enc(dict(d))] for n, d in x.nodes(data=True)],
                "edges": [[self.enc(v) for v in e[:-1]] + [self.enc(dict(e[-1]))] for e in edges],
            }  # fmt: skip
        if dataclasses.is_dataclass(x) and not isinstance(x, type) and t.__module__.startswith("leopardgeo."):
            return {"t": "dc", "n": number, "cls": _class_name(t),
                    "f": {f.name: self.enc(getattr(x, f.name)) for f in dataclasses.fields(x)}}  # fmt: skip
        msg = f"the stage cache does not store a {t.__module__}.{t.__qualname__}"
        raise CacheFormatError(msg)


def dumps(values: Any) -> bytes:
    """``values`` (a stage's values: arrays, frames, graphs, leopardgeo results) as the bytes of a cache file.

    Raises
    ------
    CacheFormatError
        If a value has a type the format does not store.
    """
    enc = _Encoder()
    tree = json.dumps({"format": FORMAT, "value": enc.enc(values)}, allow_nan=False).encode()
    buf = io.BytesIO()
    np.savez(buf, __tree__=np.frombuffer(tree, dtype=np.uint8), **enc.arrays)
    return buf.getvalue()


class _Decoder:
    def __init__(self, arrays: Any) -> None:
        self.arrays = arrays
        self.memo: dict[int, Any] = {}

    def array(self, key: Any) -> np.ndarray:
        if not isinstance(key, str) or not key.startswith("a"):
            msg = f"bad array name {key!r}"
            raise CacheFormatError(msg)
        return self.arrays[key]

    def blob(self, node: dict[str, Any]) -> list[bytes | None]:
        data = self.array(node["data"]).tobytes()
        out: list[bytes | None] = []
        pos = 0
        for size in self.array(node["sizes"]).tolist():
            if size < 0:
                out.append(None)
            else:
                out.append(data[pos : pos + size])
                pos += size
        return out

    def geometries(self, node: dict[str, Any]) -> np.ndarray:
        return shapely.from_wkb(np.array(self.blob(node), dtype=object))

    def column(self, node: dict[str, Any]) -> Any:
        kind = node["t"]
        if kind == "geo":
            return gpd.GeoSeries(self.geometries(node["v"]), crs=self.dec(node["crs"])).array
        if kind == "cat":
            cats = self.index(node["categories"])
            return pd.Categorical.from_codes(self.array(node["codes"]), categories=cats, ordered=bool(node["ordered"]))
        if kind == "nd":
            return self.array(node["a"])
        cells = [self.dec(v) for v in node["v"]]
        if kind == "obj":
            out = np.empty(len(cells), dtype=object)
            out[:] = cells
            return out
        if kind == "ext":
            values = [None if m else v for v, m in zip(cells, node["na"], strict=True)]
            return pd.array(values, dtype=node["dtype"])
        msg = f"unknown column kind {kind!r}"
        raise CacheFormatError(msg)

    def index(self, node: dict[str, Any]) -> pd.Index:
        if node["t"] == "range":
            start, stop, step = node["v"]
            return pd.RangeIndex(start, stop, step, name=self.dec(node["name"]))
        return pd.Index(self.column(node["v"]), name=self.dec(node["name"]))

    def frame(self, node: dict[str, Any]) -> pd.DataFrame:
        columns = self.index(node["columns"])
        data = [self.column(c) for c in node["data"]]
        df = pd.DataFrame(dict(enumerate(data)), index=self.index(node["index"]))
        df.columns = columns
        df.attrs = self.dec(node["attrs"])
        return df

    def keep(self, node: dict[str, Any], value: Any) -> Any:
        self.memo[node["n"]] = value
        return value

    def dec(self, node: Any) -> Any:
        if node is None or isinstance(node, bool | int | float | str):
            return node
        kind = node["t"]
        if kind == "ref":
            return self.memo[node["i"]]
        if kind == "bigint":
            return int(node["v"])
        if kind == "float":
            return float(node["v"])
        if kind == "enum":
            cls = _own_class(node["cls"])
            return cls(self.dec(node["v"]))
        if kind == "np":
            return self.array(node["a"])[()]
        if kind == "tuple":
            return tuple(self.dec(v) for v in node["v"])
        if kind in ("set", "frozenset"):
            return (set if kind == "set" else frozenset)(self.dec(v) for v in node["v"])
        if kind == "slice":
            return slice(*(self.dec(v) for v in node["v"]))
        if kind == "bytes":
            return self.array(node["a"]).tobytes()
        if kind == "affine":
            return Affine(*(float(v) for v in node["v"]))
        if kind == "crs":
            return CRS.from_user_input(str(node["v"]))
        if kind == "geom":
            return self.geometries(node["v"])[0]
        if kind == "list":
            out: list[Any] = self.keep(node, [])
            out.extend(self.dec(v) for v in node["v"])
            return out
        if kind == "dict":
            d: dict[Any, Any] = self.keep(node, {})
            for k, v in zip(node["k"], node["v"], strict=True):
                d[self.dec(k)] = self.dec(v)
            return d
        if kind == "nd":
            return self.keep(node, self.array(node["a"]))
        if kind == "ndo":
            flat = np.empty(int(np.prod(node["shape"])), dtype=object)
            flat[:] = [self.dec(v) for v in node["v"]]
            return self.keep(node, flat.reshape(node["shape"]))
        if kind == "gdf":
            df = self.frame(node["f"])
            geometry = self.dec(node["geometry"])
            gdf = gpd.GeoDataFrame(df, geometry=geometry) if geometry is not None else gpd.GeoDataFrame(df)
            crs = self.dec(node["crs"])
            if geometry is not None and gdf.crs is None and crs is not None:
                gdf = gdf.set_crs(crs)
            return self.keep(node, gdf)
        if kind == "df":
            return self.keep(node, self.frame(node["f"]))
        if kind == "gs":
            gs = gpd.GeoSeries(self.geometries(node["v"]), index=self.index(node["index"]), crs=self.dec(node["crs"]),
                               name=self.dec(node["name"]))  # fmt: skip
            return self.keep(node, gs)
        if kind == "series":
            series = pd.Series(self.column(node["v"]), index=self.index(node["index"]), name=self.dec(node["name"]))
            return self.keep(node, series)
        if kind == "pdindex":
            return self.keep(node, self.index(node["v"]))
        if kind == "graph":
            g = self.keep(node, _GRAPHS[node["kind"]]())
            g.graph.update(self.dec(node["graph"]))
            for n, attrs in node["nodes"]:
                g.add_node(self.dec(n), **self.dec(attrs))
            for *ends, attrs in node["edges"]:
                g.add_edge(*(self.dec(v) for v in ends), **self.dec(attrs))
            return g
        if kind == "dc":
            cls = _own_class(node["cls"])
            obj = self.keep(node, object.__new__(cls))
            names = {f.name for f in dataclasses.fields(cls)}
            if set(node["f"]) != names:
                msg = f"the cached {node['cls']} has the fields {sorted(node['f'])}, this leopardgeo {sorted(names)}"
                raise CacheFormatError(msg)
            for name, value in node["f"].items():
                object.__setattr__(obj, name, self.dec(value))
            return obj
        msg = f"unknown value kind {kind!r}"
        raise CacheFormatError(msg)


def loads(data: bytes) -> Any:
    """The values :func:`dumps` stored.  Reads only arrays and JSON; runs no code from the file.

    Raises
    ------
    CacheFormatError
        If ``data`` is not a stage cache of this format, or is damaged.
    """
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        tree = json.loads(arrays.pop("__tree__").tobytes())
        if not isinstance(tree, dict) or tree.get("format") != FORMAT:
            msg = f"expected the format {FORMAT!r}"
            raise CacheFormatError(msg)
        return _Decoder(arrays).dec(tree["value"])
    except CacheFormatError as exc:
        msg = f"not a stage cache file: {exc}"
        raise CacheFormatError(msg) from None
    except Exception as exc:  # any damage to the file gives the same answer: not a cache
        msg = f"not a stage cache file: {exc}"
        raise CacheFormatError(msg) from None
