"""Typed dataclass configs: loaded from JSON, overridden from the command line, refused with a clear error
naming the bad field.

Each component owns a `@dataclass` whose `__post_init__` validates its values; this module only turns
dicts into those dataclasses (recursively) and refuses unknown or mistyped fields, so a typo in a config
file is an error rather than a silently ignored setting.

Every stage command (`roboact train`, `eval`, `policy`, `simulate metaworld`, `demos`, `extract`, `curate`,
`split`) builds its config the same way, with `load_config`: four layers, each overriding the one below

    explicit flags (--out, --seed, ...)   >   --set key.path=value   >   --config FILE   >   defaults

where "defaults" are the dataclass's own, or the command's where it documents others (policy's --mode
preset, curate's environment variables). A flag counts only when it is given on the command line, so a
flag's default never hides a value from the file or from --set. `--set` keys are the dataclass's field
names (nested dataclasses addressed with dots: `optim.lr`, `model.temporal`, `llm.concurrency`); values
are read as JSON where they parse (`3e-4`, `false`, `null`, `["a", "b"]`), otherwise as the literal
string, and a list field also takes `a,b,c`. Every key and value is checked against the field's type
before anything else happens, and the whole config is validated (each `__post_init__`) before any data
loads. The effective config is written as JSON into the run's output folder (`save_config`), so
`--config` of that file reproduces the run.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import types
import typing
from typing import Any, Callable, Iterable, Mapping, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value is missing, unknown or invalid; the message names the field."""


# --- dicts -> dataclasses ------------------------------------------------------------------------------

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
    missing = [n for n, f in fields.items() if n not in data and f.init and _required(f)]
    if missing:
        raise ConfigError(f"{prefix}{missing[0]}: required, but not given")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{prefix}{name}")
    try:
        return cls(**kwargs)
    except ConfigError as e:
        # a nested config's own checks name its fields without the path to it: add the path once
        msg = str(e)
        raise ConfigError(msg if not where or msg.startswith(prefix) else f"{prefix}{msg}") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where or cls.__name__}: {e}") from None


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value) and isinstance(value, tp):
            return value
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, where)
            except ConfigError as e:
                errors.append(e)
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:  # X | None: X's own message says more than "does not match"
            raise errors[0]
        raise ConfigError(f"{where}: {value!r} does not match {_name(tp)}")
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not one of {typing.get_args(tp)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:  # fixed length: tuple[float, float]
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)} ({value!r})")
            return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        inner = args[0] if args else Any
        out = [_coerce(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object, got {value!r}")
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


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", None) if isinstance(tp, type) else str(tp).replace("typing.", "")


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def check(cond: bool, field: str, msg: str) -> None:
    """Raise ConfigError naming `field` when `cond` is false; used in `__post_init__`."""
    if not cond:
        raise ConfigError(f"{field}: {msg}")


# --- keys and values of --set --------------------------------------------------------------------------

def field_type(cls: type, path: list[str]) -> Any:
    """The declared type at dotted `path` inside dataclass `cls`; ConfigError naming the first bad part of
    the path and listing the valid keys there. Inside an untyped dict field every key is accepted."""
    tp: Any = cls
    for i, name in enumerate(path):
        here = ".".join(path[: i + 1])
        section = _section(tp)
        if section is dict:
            return Any
        if section is None:
            raise ConfigError(f"{here}: {'.'.join(path[:i])} is a value ({_name(tp)}), not a section "
                              "with fields")
        fields = {f.name for f in dataclasses.fields(section)}
        if name not in fields:
            raise ConfigError(f"{here}: unknown config field for {section.__name__} "
                              f"(known: {', '.join(sorted(fields))})")
        tp = typing.get_type_hints(section)[name]
    return tp


def _section(tp: Any) -> Any:
    """The dataclass `tp` stands for (also inside `X | None`), dict for a free-form dict, else None."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = inner[0] if len(inner) == 1 else None
    if dataclasses.is_dataclass(tp):
        return tp
    if tp is dict or typing.get_origin(tp) is dict:
        return dict
    return None


def parse_override(s: str) -> tuple[list[str], Any]:
    """'optim.lr=3e-4' -> (['optim', 'lr'], 0.0003). Values parse as JSON, else stay strings."""
    if "=" not in s:
        raise ConfigError(f"override {s!r} must look like key.path=value")
    key, raw = s.split("=", 1)
    path = key.strip().split(".")
    if not all(p.strip() for p in path):
        raise ConfigError(f"override {s!r}: the key {key.strip()!r} has an empty part")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return path, value


def parse_value(tp: Any, raw: str, where: str) -> Any:
    """`raw` (text after `key=`) read for a field of type `tp`: JSON where that fits the type, else the
    literal string (so `out=123` stays the folder "123"), and `a,b` (or `a`) for a list of strings."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    candidates = [value]
    if not isinstance(value, str) or value != raw:
        candidates.append(raw)
    if _is_list(tp):
        candidates.append([x.strip() for x in raw.split(",") if x.strip()])
    first_error = None
    for cand in candidates:
        try:
            _coerce(tp, cand, where)
            return cand
        except ConfigError as e:
            first_error = first_error or e
    raise first_error


def _is_list(tp: Any) -> bool:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return any(_is_list(a) for a in typing.get_args(tp))
    return typing.get_origin(tp) in (list, tuple)


def apply_overrides(d: dict, overrides: Iterable[str], cls: type | None = None) -> dict:
    """Apply `key.path=value` strings to the nested dict `d` (in place; later ones win). With `cls`, each
    key is checked against the dataclass and each value parsed and type-checked for its field first."""
    for o in overrides:
        path, value = parse_override(o)
        if cls is not None:
            try:
                tp = field_type(cls, path)
                value = parse_value(tp, o.split("=", 1)[1], ".".join(path))
            except ConfigError as e:
                raise ConfigError(f"{e} (in --set {o})") from None
        _put(d, path, value, f"override {o!r}")
    return d


def _put(d: dict, path: list[str], value: Any, what: str) -> None:
    node = d
    for p in path[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{what}: {p} is not a section")
    node[path[-1]] = value


def deep_merge(base: Mapping, top: Mapping) -> dict:
    """`top` over `base`, recursing where both hold an object (a section); anything else in `top` wins."""
    out = dict(base)
    for k, v in top.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


# --- the layers ----------------------------------------------------------------------------------------

def layered(cls: type, file: str | os.PathLike | None = None, sets: Iterable[str] = (),
            flags: Mapping[str, Any] | None = None) -> dict:
    """What the user asked for, as a nested dict: the JSON `file`, then `--set` strings, then `flags`
    (dotted key -> value; None means "not given" and is skipped). Keys and types are checked here;
    defaults are not filled in (see `load_config`)."""
    d: dict = {}
    if file:
        from roboact.utils.io import read_json

        d = read_json(file)  # a missing or malformed file: an error naming the path
        if not isinstance(d, dict):
            raise ConfigError(f"--config {file}: expected a JSON object of {cls.__name__} fields")
        from_dict_keys(cls, d, f"--config {file}")
    apply_overrides(d, sets, cls)
    for key, value in (flags or {}).items():
        if value is None:
            continue
        path = key.split(".")
        field_type(cls, path)  # a flag mapped to a field that does not exist is a bug: say which
        if dataclasses.is_dataclass(value):
            value = dataclasses.asdict(value)
        _put(d, path, value, f"flag for {key}")
    return d


def from_dict_keys(cls: type, d: dict, what: str) -> None:
    """Refuse unknown keys of `d` (recursively, as `field_type` names them) without building anything."""
    def walk(node: dict, path: list[str]) -> None:
        for k, v in node.items():
            try:
                tp = field_type(cls, path + [k])
            except ConfigError as e:
                raise ConfigError(f"{e} (in {what})") from None
            if isinstance(v, dict) and _section(tp) not in (None, dict):
                walk(v, path + [k])
    walk(d, [])


def load_config(cls: type[T], file: str | os.PathLike | None = None, sets: Iterable[str] = (),
                flags: Mapping[str, Any] | None = None,
                defaults: Mapping | Callable[[dict], Mapping] | None = None) -> T:
    """The typed config of one run: flags > sets > file > defaults > the dataclass's own defaults.

    `defaults` is the command's own default layer (a dict, or a function of what the user asked for, for
    defaults that depend on another field, like policy's --mode preset). Everything is validated before
    this returns; nothing has loaded any data yet."""
    user = layered(cls, file, sets, flags)
    base = defaults(user) if callable(defaults) else (defaults or {})
    return from_dict(cls, deep_merge(_plain(base), user))


def _plain(d: Mapping) -> dict:
    return {k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else _plain(v) if isinstance(v, Mapping) else v
            for k, v in d.items()}


def save_config(obj: Any, path: str | os.PathLike, drop: Iterable[str] = ()) -> None:
    """Write the effective config (atomically) so `--config path` reproduces the run; `drop`: dotted
    keys left out (secrets such as an API key)."""
    from roboact.utils.io import atomic_write_json

    d = to_dict(obj) if dataclasses.is_dataclass(obj) else dict(obj)
    for key in drop:
        *parents, last = key.split(".")
        node = d
        for p in parents:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(last, None)
    atomic_write_json(path, d)


# --- the command line ----------------------------------------------------------------------------------

def add_config_options(parser: argparse.ArgumentParser, cls_path: str) -> None:
    """--config FILE and --set KEY=VALUE [KEY=VALUE ...] (repeatable) for a stage command whose config is
    the dataclass `cls_path` (named in the help)."""
    g = parser.add_argument_group("configuration (docs/config.md)")
    g.add_argument("--config", metavar="FILE",
                   help=f"JSON config ({cls_path}); e.g. the one a previous run saved in its output folder")
    g.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="override a config field, dotted for nested ones (e.g. a.b=1); values are JSON where "
                        "they parse. Precedence: flags > --set > --config > defaults")
