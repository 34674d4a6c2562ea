"""The typed configuration of one `roboact eval` run (what `evaluate` takes; the CLI only fills it in)."""
from __future__ import annotations

from dataclasses import dataclass, field

from roboact.backbones.runtime import RUNTIMES
from roboact.data.manifest import SPLITS
from roboact.utils.config import check
from roboact.utils.device import device_problem

# The evaluation suites, in report order. "standard": retrieval, zero-shot, compositional, disentanglement
# (the main table); "reversal": time-reversed clips vs the opposite action; "openvocab": held-out
# (action, object) pairs ranked among every caption; "viewpoint": clips of cameras absent from training.
EVAL_SUITES: tuple[str, ...] = ("standard", "reversal", "openvocab", "viewpoint")


@dataclass
class EvalConfig:
    manifest: str                                   # JSONL manifest (roboact.data.manifest)
    cache: str                                      # feature-cache root (roboact extract --out)
    out: str                                        # report folder: report.md, report.json, plots/
    # one table row per entry: (row name, checkpoint folder) or (row name, [one folder per training seed]);
    # normalised to (name, (folder, ...)). A row none of whose folders has a checkpoint is "not run"; a
    # multi-seed row missing only some of them is an error (the interval would silently cover fewer seeds).
    models: list[tuple[str, str | list[str]]] = field(default_factory=list)
    backbone: str | None = None                     # None: the backbone the checkpoints were trained on
    backbone_path: str | None = None                # None: the checkpoints' backbone_path
    split: str = "test"                             # clips that are scored
    train_split: str = "train"                      # what the leakage probes train on; "seen" pairs
    # (action, object) pairs treated as never seen in training. None: every pair of `split` that is
    # absent from `train_split`'s rows.
    heldout_pairs: list[tuple[str, str]] | None = None
    seed: int = 0                                   # probe subsampling and solver
    device: str = "cpu"
    # The runtime the cache's image features must come from (roboact.backbones.runtime); None: whatever
    # the cache holds. Eval runs no image tower, so this only guards against reading the wrong cache.
    runtime: str | None = None
    # CPU threads for torch and BLAS (sklearn, numpy) during the run; None leaves them as they are. On a
    # loaded machine a second thread can make these small matrix products many times slower.
    threads: int | None = None
    batch_size: int = 512                           # clips per forward pass
    probe_max_train: int = 20000                    # train clips encoded for the probes (seeded subsample)
    # suites to run (names of EVAL_SUITES). None: every suite that applies to the data, the others listed in
    # the report with the reason; a suite named here that cannot apply is an error.
    suites: list[str] | None = None
    plots: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        check(bool(self.manifest), "manifest", "a manifest path is required")
        check(bool(self.cache), "cache", "a feature-cache root is required")
        check(bool(self.out), "out", "an output folder is required")
        check(len(self.models) >= 1, "models", "name at least one model as NAME=CHECKPOINT_DIR")
        self.models = [_normalise_row(i, m) for i, m in enumerate(self.models)]
        names = [m[0] for m in self.models]
        check(len(set(names)) == len(names), "models", f"row names must be unique, got {names}")
        check(self.split in SPLITS, "split", f"must be one of {SPLITS}, got {self.split!r}")
        check(self.train_split in SPLITS, "train_split", f"must be one of {SPLITS}, got {self.train_split!r}")
        check(self.train_split != self.split, "train_split", "must differ from split (probes would test on "
              "their own training clips)")
        for i, p in enumerate(self.heldout_pairs or []):
            check(len(p) == 2 and all(isinstance(x, str) and x.strip() for x in p), f"heldout_pairs[{i}]",
                  f"must be (action, object), got {p!r}")
        check(self.threads is None or self.threads >= 1, "threads", f"must be >= 1, got {self.threads}")
        check(self.runtime is None or self.runtime in RUNTIMES, "runtime",
              f"must be one of {', '.join(RUNTIMES)} or None, got {self.runtime!r}")
        check(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        problem = device_problem(self.device)
        check(problem is None, "device", problem or "")
        check(self.probe_max_train >= 2, "probe_max_train", f"must be >= 2, got {self.probe_max_train}")
        if self.suites is not None:
            check(len(self.suites) >= 1, "suites", f"name at least one of {', '.join(EVAL_SUITES)} (or leave unset)")
            bad = [x for x in self.suites if x not in EVAL_SUITES]
            check(not bad, "suites", f"unknown suite {bad[:1]} (known: {', '.join(EVAL_SUITES)})")
            check(len(set(self.suites)) == len(self.suites), "suites", f"listed twice in {self.suites}")

    def folders(self, name: str) -> tuple[str, ...]:
        return dict(self.models)[name]


def _normalise_row(i: int, m) -> tuple[str, tuple[str, ...]]:
    """(name, folder) or (name, [folders]) -> (name, (folders...)), each a non-empty string, none twice."""
    ok = isinstance(m, (tuple, list)) and len(m) == 2 and isinstance(m[0], str) and m[0].strip()
    check(bool(ok), f"models[{i}]", f"must be (row name, checkpoint folder or list of folders), got {m!r}")
    name, folders = m[0].strip(), m[1]
    folders = [folders] if isinstance(folders, str) else folders
    check(isinstance(folders, (tuple, list)) and len(folders) >= 1
          and all(isinstance(f, str) and f.strip() for f in folders), f"models[{i}]",
          f"row {name!r}: checkpoint folders must be non-empty strings, got {m[1]!r}")
    folders = tuple(f.strip() for f in folders)
    twice = sorted({f for f in folders if folders.count(f) > 1})
    check(not twice, f"models[{i}]", f"row {name!r} names {twice[0] if twice else ''} twice (one folder per seed)")
    return name, folders
