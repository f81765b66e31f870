"""The configuration's field machinery: documented fields, vector inputs, and turning TOML values into typed sections.

Kept apart from :mod:`leopardgeo.config` so that section modules inside this package
(:mod:`leopardgeo.config.scenario`) use it without importing the package that assembles ``RunConfig``.
"""

from __future__ import annotations

import dataclasses
import enum
import numbers
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from leopardgeo.core.errors import ConfigError

__all__ = ["VectorInput"]


def _f(default: Any = dataclasses.MISSING, *, doc: str, factory: Any = None) -> Any:
    """A dataclass field carrying its documentation (used for the template)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True, slots=True, kw_only=True)
class VectorInput:
    """A vector layer: ``path`` (any OGR source) and an optional ``layer``."""

    path: str = _f(doc="file path (relative paths are relative to the config file)")
    layer: str | None = _f(None, doc="layer name; the first layer when omitted")


def _normalise(obj: Any, section: str) -> None:
    """Turn strings into enum members (and lists into tuples) when a section is built in Python."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        tp = hints[f.name]
        if isinstance(tp, type) and issubclass(tp, enum.Enum) and not isinstance(value, tp):
            object.__setattr__(obj, f.name, _coerce(tp, value, f"[{section}] {f.name}"))
        elif typing.get_origin(tp) is tuple and isinstance(value, list):
            object.__setattr__(obj, f.name, tuple(value))
        elif _is_number_type(tp):  # the checks a config file's numbers get (a number, whole where int, not NaN)
            object.__setattr__(obj, f.name, _coerce(tp, value, f"[{section}] {f.name}"))


def _is_number_type(tp: Any) -> bool:
    """True for ``int``, ``float`` and ``int | None`` / ``float | None``."""
    if tp in (int, float):
        return True
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        return len(rest) == 1 and rest[0] in (int, float)
    return False


def _positive(value: float, where: str, *, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not ok or value != value or value in (float("inf"), float("-inf")):
        bound = ">= 0" if allow_zero else "> 0"
        section, _, key = where.rpartition(".")
        msg = f"[{section}] {key}: expected a finite number {bound}, found {value!r}."
        raise ConfigError(msg)


# ---------------------------------------------------------------------- parsing
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if value is None:
            return None
        for alt in non_none[1:]:  # e.g. str | VectorInput: a table is the second kind
            if dataclasses.is_dataclass(alt) and isinstance(value, dict):
                return _coerce(alt, value, where)
        return _coerce(non_none[0], value, where)
    if dataclasses.is_dataclass(tp):
        if tp is VectorInput and isinstance(value, str):
            return VectorInput(path=value)
        if not isinstance(value, dict):
            msg = f"{where}: expected a table, found {value!r}."
            raise ConfigError(msg)
        return _from_dict(tp, value, where)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        valid = [m.value for m in tp]
        if value not in valid:
            msg = f"{where}: expected one of {valid}, found {value!r}."
            raise ConfigError(msg)
        return tp(value)
    if tp is bool:
        if not isinstance(value, bool):
            msg = f"{where}: expected true or false, found {value!r}."
            raise ConfigError(msg)
        return value
    if tp in (int, float):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:
            msg = f"{where}: expected a number, found {value!r}."
            raise ConfigError(msg)
        if tp is int and not float(value).is_integer():
            msg = f"{where}: expected a whole number, found {value!r}."
            raise ConfigError(msg)
        return tp(value)
    if tp is str:
        if not isinstance(value, str):
            msg = f"{where}: expected a string, found {value!r}."
            raise ConfigError(msg)
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            msg = f"{where}: expected a list, found {value!r}."
            raise ConfigError(msg)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            msg = f"{where}: expected a list of {len(args)} values, found {len(value)}."
            raise ConfigError(msg)
        return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            msg = f"{where}: expected a table of name = value, found {value!r}."
            raise ConfigError(msg)
        return {str(k): _coerce(args[1], v, f"{where}.{k}") for k, v in value.items()}
    msg = f"{where}: unsupported type {_type_name(tp)}"  # pragma: no cover - programming error
    raise TypeError(msg)


def _from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        label = f"[{where}]" if where else "top level"
        keys = ", ".join(repr(k) for k in unknown)
        plural = "s" if len(unknown) > 1 else ""
        msg = f"{label} unknown key{plural} {keys}; valid keys: {', '.join(names)}."
        raise ConfigError(msg)
    kwargs = {}
    for k, v in data.items():
        kwargs[k] = _coerce(hints[k], v, f"{where}.{k}" if where else k)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required key is missing
        required = [
            f.name for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in kwargs
        ]  # fmt: skip
        if not required:
            raise
        keys = ", ".join(repr(k) for k in required)
        add = "; ".join(f"{k} = ..." for k in required)
        msg = f"[{where}] expected the key{'s' if len(required) > 1 else ''} {keys}, found none. Add {add}."
        raise ConfigError(msg) from exc
