"""What every row of an evaluation shares: the scored clips, the probe's training clips, the held-out
pairs, the caption pools and the frozen text features. Built once, then each model only runs its heads.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

import torch

from roboact.data.captions import atomic_caption
from roboact.data.opposites import OPPOSITE
from roboact.data.splits import Pair, pairs_of
from roboact.eval.config import EvalConfig
from roboact.eval.suites import reversal_targets, unseen_cameras
from roboact.eval.zero_shot import vocab_grid
from roboact.data.clipset import ClipSet, TextTable, Vocab, build_clipset, load_rows

log = logging.getLogger(__name__)


@dataclass
class EvalData:
    vocab: Vocab                       # class names of the whole manifest (every split)
    eval_set: ClipSet                  # the scored clips
    probe_set: ClipSet | None          # train-split clips (subsampled) for the leakage probes; None if none
    heldout_pairs: list[Pair]          # (action, object) pairs never seen in training
    heldout_mask: torch.Tensor         # (N,) bool: eval clips whose pair is held out
    all_captions: list[str]            # train ∪ eval distinct captions: the compositional "all" pool
    unseen_captions: list[str]         # distinct captions of the held-out eval clips
    grid_captions: list[str]           # full subject x action x object grid (zero-shot prototypes)
    grid_ids: torch.Tensor             # (G, 3)
    text: TextTable                    # frozen text-tower features of every caption above
    notes: list[str] = field(default_factory=list)
    train_split: str = "train"
    # time reversal: (N,) action id of each clip's opposite (-1: none in the vocabulary), and (N,) index in
    # `all_captions` of the caption with the opposite action, same subject and object (-1: not in the pool)
    reversal_opposite: torch.Tensor | None = None
    reversal_caption: torch.Tensor | None = None
    own_caption_all: torch.Tensor | None = None     # (N,) index of each clip's own caption in `all_captions`
    # unseen viewpoint: cameras of the scored split, those absent from the train split, (N,) clips filmed by them
    eval_cameras: list[str] = field(default_factory=list)
    train_cameras: list[str] = field(default_factory=list)
    unseen_cameras: list[str] = field(default_factory=list)
    camera_mask: torch.Tensor | None = None
    all_caption_pairs: list[Pair] = field(default_factory=list)  # (action, object) of each of `all_captions`

    def scored_factors(self) -> list[str]:
        """Factors with a zero-shot column: subject only when the data has at least two subjects."""
        return (["subject"] if len(self.vocab.subjects) >= 2 else []) + ["action", "object"]


def heldout_pairs_for(cfg: EvalConfig, eval_rows, train_rows) -> list[Pair]:
    """The configured pairs (checked against the train split), or eval pairs absent from train."""
    seen = pairs_of(train_rows)
    if cfg.heldout_pairs is None:
        return sorted(pairs_of(eval_rows) - seen)
    pairs = sorted({(a, o) for a, o in cfg.heldout_pairs})
    leaked = [p for p in pairs if p in seen]
    if leaked:
        raise ValueError(f"heldout_pairs: {leaked[0]} occurs in split {cfg.train_split!r}, so it is not unseen")
    missing = [p for p in pairs if p not in pairs_of(eval_rows)]
    if missing:
        log.warning("held-out pair(s) %s have no clip in split %r", missing, cfg.split)
    return pairs


def subsample(rows: list, k: int, seed: int) -> list:
    """A seeded subset of at most k rows, kept in manifest order (so runs are comparable)."""
    if len(rows) <= k:
        return list(rows)
    keep = sorted(random.Random(seed).sample(range(len(rows)), k))
    return [rows[i] for i in keep]


def load_eval_data(cfg: EvalConfig, cache, backbone) -> EvalData:
    rows = load_rows(cfg.manifest)
    vocab = Vocab.from_rows(rows)
    eval_rows = [r for r in rows if r.split == cfg.split]
    train_rows = [r for r in rows if r.split == cfg.train_split]
    if not eval_rows:
        raise ValueError(f"{cfg.manifest}: no rows in split {cfg.split!r}")
    log.info("loading features of %d %r clips (+ up to %d %r clips for the probes)", len(eval_rows), cfg.split,
             cfg.probe_max_train, cfg.train_split)
    eval_set = build_clipset(eval_rows, cache, vocab, f"eval split {cfg.split!r}")
    notes = []
    probe_rows = [r for r in subsample(train_rows, cfg.probe_max_train, cfg.seed) if r.clip_id in cache]
    probe_set = build_clipset(probe_rows, cache, vocab, f"probe split {cfg.train_split!r}") if probe_rows else None
    if probe_set is None:
        notes.append(f"split {cfg.train_split!r} has no clips with features: leakage probes not run")
    elif len(probe_rows) < len(train_rows):
        notes.append(f"leakage probes train on {len(probe_rows)} of the {len(train_rows)} {cfg.train_split!r} "
                     f"clips (seeded subsample, probe_max_train={cfg.probe_max_train})")
    held = heldout_pairs_for(cfg, eval_set.rows, train_rows)
    mask = torch.tensor([(r.action, r.object) in set(held) for r in eval_set.rows], dtype=torch.bool)
    all_caps = sorted({r.caption for r in train_rows} | set(eval_set.captions))
    unseen = sorted({r.caption for r, m in zip(eval_set.rows, mask.tolist()) if m})
    grid_caps, grid_ids = vocab_grid(vocab.subjects, vocab.actions, vocab.objects)
    log.info("text features of %d captions + %d zero-shot grid captions", len(all_caps), len(grid_caps))
    text = TextTable.build(all_caps + grid_caps, backbone, text_cache_file(cfg.out, backbone))
    cap_index = {c: i for i, c in enumerate(all_caps)}
    caption_pair = {r.caption: (r.action, r.object) for r in [*train_rows, *eval_set.rows]}
    opposite = reversal_targets(vocab.actions, eval_set.labels[:, 1])
    rev_caps = torch.tensor([cap_index.get(atomic_caption(r.subject, OPPOSITE[r.action], r.object), -1)
                             if o >= 0 else -1 for r, o in zip(eval_set.rows, opposite.tolist())], dtype=torch.long)
    own = torch.tensor([cap_index[r.caption] for r in eval_set.rows], dtype=torch.long)
    unseen_cams = unseen_cameras(eval_set.rows, train_rows)
    cam_mask = torch.tensor([r.camera in set(unseen_cams) for r in eval_set.rows], dtype=torch.bool)
    return EvalData(vocab, eval_set, probe_set, held, mask, all_caps, unseen, grid_caps, grid_ids, text, notes,
                    train_split=cfg.train_split, reversal_opposite=opposite, reversal_caption=rev_caps,
                    own_caption_all=own, eval_cameras=sorted({r.camera for r in eval_set.rows}),
                    train_cameras=sorted({r.camera for r in train_rows}), unseen_cameras=unseen_cams,
                    camera_mask=cam_mask, all_caption_pairs=[caption_pair[c] for c in all_caps])


def text_cache_file(out: str, backbone) -> Path:
    """One text-feature file per backbone identity, so a rerun with another backbone never reuses stale features."""
    from roboact.data.features import cache_dir, identity_hash

    spec = backbone.spec()
    return cache_dir(Path(out) / "cache", spec["name"]) / f"text_features-{identity_hash(spec)}.safetensors"
