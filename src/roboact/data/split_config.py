"""The typed configuration of one `roboact split` run: which manifest, which kind of split, its parameters.

Only the shape of the request is checked here (paths given, a known kind, well-formed pairs). Fractions are
checked by `roboact.data.splits`, and whether the named cameras or pairs exist by the split against the rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from roboact.data.manifest_ops import SPLIT_KINDS
from roboact.utils.config import check


@dataclass
class SplitConfig:
    manifest: str                                   # input clip manifest (JSONL)
    out: str                                        # output manifest (JSONL); must differ from the input
    by: Literal["episode", "compositional", "camera"]
    cameras: list[str] = field(default_factory=list)                 # camera: held-out cameras
    pairs: list[tuple[str, str]] = field(default_factory=list)       # compositional: held-out (action, object)
    heldout_pairs: int = 3                          # compositional: pairs chosen when `pairs` is empty
    seed: int = 0                                   # compositional: which pairs are chosen
    val_fraction: float = 0.1
    # episode split: 0.1 when None; camera split: episodes whose held-out-camera clips are test, 0.2 when None
    test_fraction: float | None = None
    salt: str = ""                                  # changes which episodes fall in val/test

    def __post_init__(self) -> None:
        check(bool(str(self.manifest).strip()), "manifest", "an input manifest is required")
        check(bool(str(self.out).strip()), "out", "an output manifest is required")
        check(self.by in SPLIT_KINDS, "by", f"must be one of {', '.join(SPLIT_KINDS)}, got {self.by!r}")
        for i, p in enumerate(self.pairs):
            check(len(p) == 2 and all(isinstance(x, str) and x.strip() for x in p), f"pairs[{i}]",
                  f"must be (action, object), got {p!r}")
        self.pairs = sorted({(a.strip(), o.strip()) for a, o in self.pairs})
        self.cameras = [c.strip() for c in self.cameras if c.strip()]
