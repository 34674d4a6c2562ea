"""Actions that undo each other, and clips played backwards.

One home for the table because two stages read it: evaluation (the time-reversal suite scores reversed
clips against the opposite action) and training (`data.reverse_prob` adds reversed clips labelled with
the opposite action).
"""
from __future__ import annotations

import torch

# Actions that undo each other, so a clip of one played backwards *is* (visually) a clip of the other:
# opening a drawer reversed shows the drawer closing. Only true opposites of the corpora's vocabularies
# (roboact.sim.metaworld.ATOMIC_TASKS, roboact.sim.libero.PAPER_LIBERO_TASKS). Left out on purpose: "press"
# (a button pressed backwards is released, which is no action of the vocabulary), "turn" (a dial turned
# backwards is still turned), "put"/"place"/"sweep" (reversed, an object leaves its target: no label).
REVERSIBLE_PAIRS: tuple[tuple[str, str], ...] = (
    ("open", "close"),
    ("turn on", "turn off"),
    ("push", "pull"),
    ("lock", "unlock"),
)
# Symmetric by construction: each pair is entered both ways.
OPPOSITE: dict[str, str] = {**{a: b for a, b in REVERSIBLE_PAIRS}, **{b: a for a, b in REVERSIBLE_PAIRS}}


def reverse_time(frame_feats: torch.Tensor) -> torch.Tensor:
    """(N, n, d) per-frame features with the frame order reversed. The cache holds one feature per frame,
    computed from that frame alone, so this is exactly the features of the clip played backwards."""
    if frame_feats.ndim != 3:
        raise ValueError(f"frame features must be (clips, frames, dim), got shape {tuple(frame_feats.shape)}")
    return frame_feats.flip(1)
