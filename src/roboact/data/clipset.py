"""The clip set training and evaluation both read: cached frame features, class labels and caption text features.

Everything here is computed once per run and kept in memory (a 16-task Meta-World corpus is tens of MB of
float16 features). The frozen text tower runs once per distinct caption; eq. 18's recombined captions for
every (subject, action, object) triplet are encoded up front too, so a training step never touches a
backbone.
"""
from __future__ import annotations

import itertools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from roboact.data.captions import atomic_caption, recombined_caption
from roboact.data.manifest import ClipRecord, read_manifest
from roboact.models.config import FACTORS

log = logging.getLogger(__name__)


@dataclass
class Vocab:
    """Class names per factor. Built from *all* rows of a manifest (every split), so a compositional test
    pair's action and object have ids even though the pair itself never appears in training."""
    subjects: list[str]
    actions: list[str]
    objects: list[str]

    @classmethod
    def from_rows(cls, rows: Sequence[ClipRecord]) -> "Vocab":
        return cls(sorted({r.subject for r in rows}), sorted({r.action for r in rows}), sorted({r.object for r in rows}))

    def names(self, factor: str) -> list[str]:
        return {"subject": self.subjects, "action": self.actions, "object": self.objects}[factor]

    def ids(self, row: ClipRecord) -> tuple[int, int, int]:
        return (self.subjects.index(row.subject), self.actions.index(row.action), self.objects.index(row.object))

    def triplets(self) -> list[tuple[int, int, int]]:
        return list(itertools.product(range(len(self.subjects)), range(len(self.actions)), range(len(self.objects))))

    def triplet_caption(self, t: tuple[int, int, int], recombined: bool = True) -> str:
        s, a, o = self.subjects[t[0]], self.actions[t[1]], self.objects[t[2]]
        return recombined_caption(s, a, o) if recombined else atomic_caption(s, a, o)


@dataclass
class ClipSet:
    """One split's clips: features (N, n, d) float16, labels (N, 3) as (subject, action, object), captions."""
    rows: list[ClipRecord]
    features: torch.Tensor
    labels: torch.Tensor
    captions: list[str]          # distinct captions of this set
    caption_ids: torch.Tensor    # (N,) index into `captions`

    def __len__(self) -> int:
        return len(self.rows)

    def label_dict(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        lab = self.labels[idx]
        return {f: lab[:, i] for i, f in enumerate(FACTORS)}


def reversal_map(clips: ClipSet, vocab: Vocab) -> tuple[torch.Tensor, torch.Tensor]:
    """For each clip: the action id and caption id (into clips.captions) of its time reversal, or -1 where
    the action has no opposite or the opposite triplet never occurs in `clips` (so reversal cannot
    invent a pair, e.g. a held-out one)."""
    from roboact.data.opposites import OPPOSITE

    caption_of = {tuple(lab): int(c) for lab, c in zip(clips.labels.tolist(), clips.caption_ids.tolist())}
    actions, captions = [], []
    for s, a, o in clips.labels.tolist():
        opp = OPPOSITE.get(vocab.actions[a])
        b = vocab.actions.index(opp) if opp in vocab.actions else -1
        c = caption_of.get((s, b, o), -1) if b >= 0 else -1
        actions.append(b if c >= 0 else -1)
        captions.append(c)
    return torch.tensor(actions, dtype=torch.long), torch.tensor(captions, dtype=torch.long)


def load_rows(manifest: str | os.PathLike, splits: Sequence[str] | None = None) -> list[ClipRecord]:
    rows = read_manifest(manifest)
    return [r for r in rows if splits is None or r.split in splits]


def build_clipset(rows: Sequence[ClipRecord], cache, vocab: Vocab, what: str = "clips") -> ClipSet:
    """Keep the rows whose features are in the cache (the rest were rejected at extraction; logged)."""
    kept = [r for r in rows if r.clip_id in cache]
    if len(kept) < len(rows):
        log.warning("%s: %d of %d clips have no cached features (rejected at extraction?) and are skipped",
                    what, len(rows) - len(kept), len(rows))
    if not kept:
        raise ValueError(f"{what}: none of the {len(rows)} manifest rows has features in the cache {cache.folder}")
    prev_dtype, cache.dtype = cache.dtype, None
    try:
        feats = cache.get_many([r.clip_id for r in kept]).to(torch.float16)               # (N, n, d)
    finally:
        cache.dtype = prev_dtype
    captions = sorted({r.caption for r in kept})
    cap_index = {c: i for i, c in enumerate(captions)}
    return ClipSet(rows=kept, features=feats, labels=torch.tensor([vocab.ids(r) for r in kept], dtype=torch.long),
                   captions=captions, caption_ids=torch.tensor([cap_index[r.caption] for r in kept]))


class TextTable:
    """Frozen text-tower features for a fixed set of strings, encoded once (and cached on disk)."""

    def __init__(self, texts: Sequence[str], feats: torch.Tensor):
        self.texts = list(texts)
        self.index = {t: i for i, t in enumerate(self.texts)}
        self.feats = feats.float()

    @classmethod
    def build(cls, texts: Sequence[str], backbone, cache_file: str | os.PathLike | None = None) -> "TextTable":
        texts = list(dict.fromkeys(texts))
        if cache_file is not None and Path(cache_file).is_file():
            table = cls.load(cache_file)
            if set(texts) <= set(table.index):
                return table
        feats = backbone.encode_texts(texts)
        table = cls(texts, feats)
        if cache_file is not None:
            table.save(cache_file)
        return table

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        try:
            return self.feats[[self.index[t] for t in texts]]
        except KeyError as e:
            raise KeyError(f"text {e.args[0]!r} was not pre-encoded") from None

    def save(self, path: str | os.PathLike) -> None:
        import json

        from safetensors.torch import save_file

        from roboact.utils.io import atomic_path

        with atomic_path(path) as tmp:
            save_file({"feats": self.feats.contiguous()}, str(tmp), metadata={"texts": json.dumps(self.texts)})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TextTable":
        import json

        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return cls(json.loads(f.metadata()["texts"]), f.get_tensor("feats"))
