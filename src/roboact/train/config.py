"""The whole training run as one typed config: loaded from JSON, overridden from the command line
(`--set optim.lr=3e-4 model.temporal=false`), validated, and saved beside every checkpoint.

`model` is the typed `RoboActConfig` of the heads, so a mistyped `model.*` key or value fails at load, before
any data or backbone loads. Its vocabulary, widths, frame count and backbone come from the data (`FROM_DATA`):
whatever a config says for them is replaced when the model is built. Saved, `model` lists only the fields
that differ from `RoboActConfig`'s defaults (what the run changed, e.g. `{"temporal": false}` for ablation
1), the form train configs have always had; `roboact.load` reads the full resolved config from the
checkpoint's own `config.json`.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

from roboact.models.config import RoboActConfig
from roboact.utils.config import check, from_dict, layered

log = logging.getLogger(__name__)

# RoboActConfig fields that `roboact train` fills from the data: the cache's backbone, feature width and frame
# count, the backbone's text width and the manifest's vocabulary.
FROM_DATA = ("backbone", "backbone_path", "image_dim", "text_dim", "n_frames", "subjects", "actions", "objects")


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


@dataclass
class TrainConfig:
    out: str = "runs/roboact"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    # the heads; FROM_DATA fields are replaced by the data's. A dict of RoboActConfig fields is accepted too.
    model: RoboActConfig = field(default_factory=RoboActConfig)
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    # On SIGTERM/SIGINT (a scheduler's preemption) the run stops after its current step and first saves a
    # checkpoint unless the last one (or the start of the run) is younger than this many seconds, so a
    # preempted run loses at most this much work. 0: always save. Keep it well under the grace period.
    checkpoint_on_stop_s: float = 60.0
    eval_every: int = 250              # validation loss + retrieval on val_splits; 0 disables
    log_every: int = 10
    amp: bool = True                   # bfloat16 autocast when a GPU is present (ignored on CPU)
    tensorboard: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        check(self.checkpoint_every >= 1, "checkpoint_every", "must be >= 1")
        check(self.keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1")
        check(isinstance(self.checkpoint_on_stop_s, (int, float)) and self.checkpoint_on_stop_s >= 0,
              "checkpoint_on_stop_s", f"must be a number of seconds >= 0, got {self.checkpoint_on_stop_s!r}")
        check(self.eval_every >= 0, "eval_every", "must be >= 0")
        check(self.log_every >= 1, "log_every", "must be >= 1")
        check(bool(self.out), "out", "an output folder is required")
        if isinstance(self.model, dict):
            self.model = from_dict(RoboActConfig, self.model, where="model")
        check(isinstance(self.model, RoboActConfig), "model",
              f"must be a RoboActConfig or a dict of its fields, got {type(self.model).__name__}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["model"] = model_changes(self.model)
        return d


def model_changes(model: RoboActConfig) -> dict[str, Any]:
    """The fields of `model` that differ from RoboActConfig's defaults, leaving out those the data sets."""
    default = dataclasses.asdict(RoboActConfig())
    return {k: v for k, v in dataclasses.asdict(model).items() if k not in FROM_DATA and v != default[k]}


def load_train_config(path: str | None = None, overrides: list[str] | None = None,
                      flags: dict[str, Any] | None = None) -> TrainConfig:
    """JSON `path`, then `key.path=value` overrides, then `flags` (dotted key -> value, None: not given);
    every key and value is checked against TrainConfig (model.* against RoboActConfig) before returning."""
    user = layered(TrainConfig, path, overrides or [], flags)
    model = user.get("model")
    ignored = sorted(set(model) & set(FROM_DATA)) if isinstance(model, dict) else []
    if ignored:
        log.warning("model.%s: taken from the data (manifest, feature cache, backbone); the configured value "
                    "is not used", ", model.".join(ignored))
    return from_dict(TrainConfig, user)
