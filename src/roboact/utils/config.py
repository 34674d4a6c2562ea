"""Typed dataclass configs loaded from JSON with a clear error naming the bad field.

Each component owns a `@dataclass` whose `__post_init__` validates its values; this module only turns
dicts into those dataclasses (recursively) and refuses unknown or mistyped fields, so a typo in a config
file is an error rather than a silently ignored setting.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value is missing, unknown or invalid; the message names the field."""


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from `data`, recursing into nested dataclass fields."""
    prefix = f"{where}." if where else ""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected an object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown config field for {cls.__name__} "
                          f"(known: {', '.join(sorted(fields))})")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{prefix}{name}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where or cls.__name__}: {e}") from None


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} does not match {tp}")
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not one of {typing.get_args(tp)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        (inner, *_) = typing.get_args(tp) or (Any,)
        out = [_coerce(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object, got {type(value).__name__}")
        return dict(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def check_overrides(cls: type, overrides: dict[str, Any], where: str, fixed: frozenset[str] = frozenset()) -> dict:
    """Field-by-field check of a partial config for dataclass `cls` (names and types), for overrides that are
    completed later (e.g. model fields whose widths come from the data): a typo fails at load, not after the
    data and backbone are loaded. `fixed` fields are filled in by the program and may not be overridden."""
    if not isinstance(overrides, dict):
        raise ConfigError(f"{where}: expected an object of {cls.__name__} fields, got {type(overrides).__name__}")
    fields = {f.name for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    out = {}
    for name, value in overrides.items():
        if name not in fields:
            raise ConfigError(f"{where}.{name}: unknown config field for {cls.__name__} "
                              f"(known: {', '.join(sorted(fields - fixed))})")
        if name in fixed:
            raise ConfigError(f"{where}.{name}: set by the program from the data and backbone, not configurable")
        out[name] = _coerce(hints[name], value, f"{where}.{name}")
    return out


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def check(cond: bool, field: str, msg: str) -> None:
    """Raise ConfigError naming `field` when `cond` is false; used in `__post_init__`."""
    if not cond:
        raise ConfigError(f"{field}: {msg}")
