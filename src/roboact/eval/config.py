"""The typed configuration of one `roboact eval` run (what `evaluate` takes; the CLI only fills it in)."""
from __future__ import annotations

from dataclasses import dataclass, field

from roboact.data.manifest import SPLITS
from roboact.utils.config import check


@dataclass
class EvalConfig:
    manifest: str                                   # JSONL manifest (roboact.data.manifest)
    cache: str                                      # feature-cache root (roboact extract --out)
    out: str                                        # report folder: report.md, report.json, plots/
    # one table row per entry: (row name, checkpoint folder); a folder without a checkpoint is "not run"
    models: list[tuple[str, str]] = field(default_factory=list)
    backbone: str | None = None                     # None: the backbone the checkpoints were trained on
    backbone_path: str | None = None                # None: the checkpoints' backbone_path
    split: str = "test"                             # clips that are scored
    train_split: str = "train"                      # what the leakage probes train on; "seen" pairs
    # (action, object) pairs treated as never seen in training. None: every pair of `split` that is
    # absent from `train_split`'s rows.
    heldout_pairs: list[tuple[str, str]] | None = None
    seed: int = 0                                   # probe subsampling and solver
    device: str = "cpu"
    # CPU threads for torch and BLAS (sklearn, numpy) during the run; None leaves them as they are. On a
    # loaded machine a second thread can make these small matrix products many times slower.
    threads: int | None = None
    batch_size: int = 512                           # clips per forward pass
    probe_max_train: int = 20000                    # train clips encoded for the probes (seeded subsample)
    plots: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        check(bool(self.manifest), "manifest", "a manifest path is required")
        check(bool(self.cache), "cache", "a feature-cache root is required")
        check(bool(self.out), "out", "an output folder is required")
        check(len(self.models) >= 1, "models", "name at least one model as NAME=CHECKPOINT_DIR")
        names = [m[0] for m in self.models]
        for i, m in enumerate(self.models):
            check(len(m) == 2 and all(isinstance(x, str) and x.strip() for x in m), f"models[{i}]",
                  f"must be (row name, checkpoint folder), got {m!r}")
        check(len(set(names)) == len(names), "models", f"row names must be unique, got {names}")
        check(self.split in SPLITS, "split", f"must be one of {SPLITS}, got {self.split!r}")
        check(self.train_split in SPLITS, "train_split", f"must be one of {SPLITS}, got {self.train_split!r}")
        check(self.train_split != self.split, "train_split", "must differ from split (probes would test on "
              "their own training clips)")
        for i, p in enumerate(self.heldout_pairs or []):
            check(len(p) == 2 and all(isinstance(x, str) and x.strip() for x in p), f"heldout_pairs[{i}]",
                  f"must be (action, object), got {p!r}")
        check(self.threads is None or self.threads >= 1, "threads", f"must be >= 1, got {self.threads}")
        check(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        check(self.probe_max_train >= 2, "probe_max_train", f"must be >= 2, got {self.probe_max_train}")
