"""The shared config mechanism: JSON file, --set overrides and flags over one typed dataclass, each key and
value checked against the field types, a bad one named with the valid keys."""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from typing import Literal

import pytest

from roboact.utils.config import (ConfigError, add_config_options, check, deep_merge, field_type, from_dict,
                                  layered, load_config, parse_value, save_config)


@dataclass
class Inner:
    lr: float = 0.1
    steps: int = 10
    betas: tuple[float, float] = (0.9, 0.99)

    def __post_init__(self) -> None:
        check(self.steps >= 1, "steps", f"must be >= 1, got {self.steps}")


@dataclass
class Outer:
    name: str                                       # required: no default
    seed: int = 0
    flag: bool = True
    mode: Literal["a", "b"] = "a"
    threads: int | None = None
    tags: list[str] = field(default_factory=list)
    pairs: list[tuple[str, str]] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)


def test_set_values_are_parsed_for_their_field_type():
    cfg = load_config(Outer, sets=["name=123", "seed=7", "flag=false", "mode=b", "threads=null", "tags=x,y",
                                   'pairs=[["open", "drawer"]]', "inner.lr=3e-4", "inner.betas=[0.8, 0.9]",
                                   "extra.anything.deep=1"])
    assert cfg.name == "123"                      # a string field keeps digits as text
    assert (cfg.seed, cfg.flag, cfg.mode, cfg.threads) == (7, False, "b", None)
    assert cfg.tags == ["x", "y"] and cfg.pairs == [("open", "drawer")]
    assert cfg.inner == Inner(lr=3e-4, steps=10, betas=(0.8, 0.9))
    assert cfg.extra == {"anything": {"deep": 1}}   # inside a free-form dict any key goes
    assert parse_value(list[str], '["a,b"]', "tags") == ["a,b"]   # JSON first


@pytest.mark.parametrize("item, message", [
    ("inner.lrr=1", r"inner.lrr: unknown config field for Inner \(known: betas, lr, steps\).*--set inner.lrr=1"),
    ("nope=1", r"nope: unknown config field for Outer \(known: extra, flag, inner, mode, name, pairs, seed"),
    ("seed=abc", r"seed: expected an integer, got 'abc'"),
    ("seed=1.5", r"seed: expected an integer, got 1.5"),
    ("flag=maybe", r"flag: expected true/false, got 'maybe'"),
    ("mode=c", r"mode: 'c' is not one of \('a', 'b'\)"),
    ("threads=x", r"threads: expected an integer, got 'x'"),
    ("inner.betas=[1]", r"inner.betas: expected 2 values"),
    ("seed.x=1", r"seed.x: seed is a value \(int\), not a section"),
    ("seed", r"must look like key.path=value"),
    ("inner..lr=1", r"empty part"),
])
def test_a_bad_set_names_the_field(item, message):
    with pytest.raises(ConfigError, match=message):
        load_config(Outer, sets=["name=n", item])


def test_checks_of_nested_configs_are_named_with_their_path_and_required_fields_are_named():
    with pytest.raises(ConfigError, match=r"^inner.steps: must be >= 1, got 0$"):
        load_config(Outer, sets=["name=n", "inner.steps=0"])
    with pytest.raises(ConfigError, match="^name: required, but not given$"):
        load_config(Outer)


def test_precedence_flags_over_set_over_file_over_defaults(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"name": "file", "seed": 1, "inner": {"lr": 0.5, "steps": 3}}))
    defaults = {"name": "default", "tags": ["d"], "inner": {"steps": 99, "lr": 0.9}}
    cfg = load_config(Outer, path, ["seed=2", "inner.lr=0.25"], {"seed": 3, "mode": None}, defaults)
    assert cfg.name == "file"                      # file over the command's defaults
    assert cfg.tags == ["d"]                       # a default nobody overrode
    assert cfg.seed == 3                           # a given flag over --set over the file
    assert cfg.mode == "a"                         # None: flag not given, the dataclass default stays
    assert cfg.inner.lr == 0.25 and cfg.inner.steps == 3   # nested sections merge key by key
    # defaults may depend on what the user asked for (policy's --mode preset)
    cfg = load_config(Outer, sets=["mode=b"], defaults=lambda user: {"name": f"mode-{user.get('mode', 'a')}"})
    assert cfg.name == "mode-b"


def test_the_file_is_checked_too_and_a_saved_config_reloads_equal(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "inner": {"stepz": 1}}))
    with pytest.raises(ConfigError, match=r"inner.stepz: unknown config field for Inner.*in --config"):
        layered(Outer, bad)
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        layered(Outer, tmp_path / "list.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        layered(Outer, tmp_path / "broken.json")
    cfg = load_config(Outer, sets=["name=n", "pairs=[[\"a\", \"b\"]]", "threads=2", "inner.betas=[0.1, 0.2]"])
    save_config(cfg, tmp_path / "saved.json", drop=["extra"])
    assert "extra" not in json.loads((tmp_path / "saved.json").read_text())
    assert load_config(Outer, tmp_path / "saved.json") == cfg


def test_field_type_and_deep_merge():
    assert field_type(Outer, ["inner", "betas"]) == tuple[float, float]
    assert deep_merge({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"b": 3}, "d": {"x": 1}}) == \
        {"a": {"b": 3, "c": 2}, "d": {"x": 1}}
    assert from_dict(Outer, {"name": "n", "inner": Inner(lr=2.0)}).inner.lr == 2.0


def test_command_line_options_take_several_sets_and_repeat():
    p = argparse.ArgumentParser()
    add_config_options(p, "Outer")
    args = p.parse_args(["--config", "c.json", "--set", "a=1", "b.c=2", "--set", "d=3"])
    assert args.config == "c.json" and args.overrides == ["a=1", "b.c=2", "d=3"]
    assert p.parse_args([]).overrides == [] and p.parse_args([]).config is None
