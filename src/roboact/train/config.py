"""The whole training run as one typed config: loaded from JSON, overridden from the command line
(`--set optim.lr=3e-4 model.temporal=false`), validated, and saved beside every checkpoint.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from roboact.utils.config import ConfigError, check, check_overrides, from_dict


@dataclass
class DataConfig:
    manifest: str = ""                 # JSONL manifest (roboact.data.manifest)
    cache: str = ""                    # feature-cache root (roboact extract --out)
    backbone: str = "lite0-minilm"     # which backbone's features to read from the cache
    backbone_path: str | None = None
    train_splits: list[str] = field(default_factory=lambda: ["train"])
    val_splits: list[str] = field(default_factory=lambda: ["val"])
    # Probability that a drawn training clip whose action has an opposite (roboact.data.opposites) is
    # replaced by the clip played backwards, labelled and captioned with the opposite action. Only when
    # that (subject, opposite action, object) triplet occurs in the training split, so a held-out pair of
    # a compositional split can never enter training this way. 0 disables.
    reverse_prob: float = 0.0

    def __post_init__(self) -> None:
        check(all(s in ("train", "val", "test") for s in self.train_splits + self.val_splits), "data.train_splits",
              "splits must be among train, val, test")
        check(0.0 <= self.reverse_prob <= 1.0, "data.reverse_prob", f"must be in [0, 1], got {self.reverse_prob}")


@dataclass
class OptimConfig:
    lr: float = 3e-4
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 100
    steps: int = 2000
    batch_size: int = 64               # per process
    grad_clip: float = 1.0             # max global grad norm; 0 disables
    min_lr_ratio: float = 0.05         # cosine decays to lr * min_lr_ratio

    def __post_init__(self) -> None:
        check(self.lr > 0, "optim.lr", f"must be > 0, got {self.lr}")
        check(self.steps >= 1, "optim.steps", f"must be >= 1, got {self.steps}")
        check(0 <= self.warmup_steps <= self.steps, "optim.warmup_steps", f"must be in [0, steps={self.steps}]")
        check(self.batch_size >= 2, "optim.batch_size", "contrastive learning needs a batch of at least 2")
        check(self.grad_clip >= 0, "optim.grad_clip", "must be >= 0")
        check(0 <= self.min_lr_ratio <= 1, "optim.min_lr_ratio", "must be in [0, 1]")


# RoboActConfig fields `roboact train` fills in from the data and the backbone (train.loop.build_model_config).
MODEL_FIELDS_FROM_DATA = frozenset({"backbone", "backbone_path", "image_dim", "text_dim", "n_frames", "subjects",
                                    "actions", "objects"})


@dataclass
class TrainConfig:
    out: str = "runs/roboact"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    model: dict[str, Any] = field(default_factory=dict)   # RoboActConfig overrides; vocab/dims come from the data
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    eval_every: int = 250              # validation loss + retrieval on val_splits; 0 disables
    log_every: int = 10
    amp: bool = True                   # bfloat16 autocast when a GPU is present (ignored on CPU)
    tensorboard: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        check(self.checkpoint_every >= 1, "checkpoint_every", "must be >= 1")
        check(self.keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1")
        check(self.eval_every >= 0, "eval_every", "must be >= 0")
        check(self.log_every >= 1, "log_every", "must be >= 1")
        check(bool(self.out), "out", "an output folder is required")
        from roboact.models.config import RoboActConfig

        self.model = check_overrides(RoboActConfig, self.model, "model", MODEL_FIELDS_FROM_DATA)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def parse_override(s: str) -> tuple[list[str], Any]:
    """'optim.lr=3e-4' -> (['optim', 'lr'], 0.0003). Values parse as JSON, else stay strings."""
    if "=" not in s:
        raise ConfigError(f"override {s!r} must look like key.path=value")
    key, raw = s.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(d: dict, overrides: list[str]) -> dict:
    for o in overrides:
        path, value = parse_override(o)
        node = d
        for p in path[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {o!r}: {p} is not a section")
        node[path[-1]] = value
    return d


def load_train_config(path: str | None = None, overrides: list[str] | None = None) -> TrainConfig:
    base: dict = {}
    if path:
        from roboact.utils.io import read_json

        base = read_json(path)
    return from_dict(TrainConfig, apply_overrides(base, overrides or []))
