"""Train/val/test splits of a clip manifest that cannot leak.

Three kinds, all deterministic:
- **by episode**: every clip of one episode (all its cameras) falls in the same split, decided by a hash of
  the episode's key, so adding or removing other episodes never moves it.
- **compositional**: whole (action, object) pairs are held out for test while their action and their object
  each still appear in training (with other partners). This is the "novel combination" test that the
  disentangled action/object branches are meant to pass.
- **by camera** ("unseen viewpoint"): held-out cameras are test only, and on held-out episodes only, so a
  test clip shows neither a viewpoint nor a trajectory seen in training.
"""
from __future__ import annotations

import dataclasses
import hashlib
import random
from collections import defaultdict
from typing import Iterable, Sequence

from roboact.data.manifest import ClipRecord

Pair = tuple[str, str]  # (action, object)


class SplitError(ValueError):
    """A split cannot be made as asked, or a split breaks its promise; the message says which."""


def episode_key(row: ClipRecord) -> str:
    """What ties clips together: the episode record they share (one demo of a multi-demo file such as a
    robomimic HDF5, whose rows carry extra["demo"]), else the clip itself."""
    if row.episode and "demo" in row.extra:
        return f"{row.episode}#{row.extra['demo']}"
    return row.episode or row.clip_id


def hash_unit(key: str, salt: str = "") -> float:
    """A stable pseudo-random number in [0, 1) for `key` (sha256; the same on every machine and run)."""
    digest = hashlib.sha256(f"{salt}\0{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_for_key(key: str, val_fraction: float, test_fraction: float, salt: str = "") -> str:
    _check_fractions(val_fraction, test_fraction)
    u = hash_unit(key, salt)
    if u < test_fraction:
        return "test"
    return "val" if u < test_fraction + val_fraction else "train"


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not (0.0 <= val_fraction < 1.0 and 0.0 <= test_fraction < 1.0 and val_fraction + test_fraction < 1.0):
        raise SplitError(f"val_fraction={val_fraction} and test_fraction={test_fraction} must be in [0, 1) "
                         f"and sum to less than 1")


def assign_episode_splits(rows: Iterable[ClipRecord], val_fraction: float = 0.1,
                          test_fraction: float = 0.1, salt: str = "") -> list[ClipRecord]:
    """Copies of `rows` with `split` set by episode."""
    return [dataclasses.replace(r, split=split_for_key(episode_key(r), val_fraction, test_fraction, salt))
            for r in rows]


def check_no_episode_leakage(rows: Iterable[ClipRecord]) -> None:
    """Raise SplitError if any episode has clips in two splits."""
    seen: dict[str, str] = {}
    for r in rows:
        k = episode_key(r)
        if seen.setdefault(k, r.split) != r.split:
            raise SplitError(f"episode {k!r} is in both {seen[k]!r} and {r.split!r} (clip {r.clip_id!r})")


# --- compositional -------------------------------------------------------------------------------------

def pairs_of(rows: Iterable[ClipRecord]) -> set[Pair]:
    return {(r.action, r.object) for r in rows}


def _covers(pairs: set[Pair], held: set[Pair]) -> bool:
    """Does every action and object of `pairs` still occur among the pairs not held out?"""
    kept = pairs - held
    return ({a for a, _ in pairs} == {a for a, _ in kept}) and ({o for _, o in pairs} == {o for _, o in kept})


def holdable_pairs(pairs: set[Pair]) -> list[Pair]:
    """Pairs that could be held out alone: their action has another object and their object another action."""
    return sorted(p for p in pairs if _covers(pairs, {p}))


def choose_heldout_pairs(rows: Iterable[ClipRecord], n_pairs: int, seed: int = 0) -> list[Pair]:
    """Pick `n_pairs` (action, object) pairs to hold out, keeping every action and object in training.

    Greedy over a seeded shuffle of the candidates: a pair is taken when, with it and the pairs already
    taken held out, every action and every object of the data still has a training pair. Deterministic
    for (set of pairs, n_pairs, seed); raises SplitError when fewer than `n_pairs` can be held out.
    """
    if n_pairs < 1:
        raise SplitError(f"n_pairs must be >= 1, got {n_pairs}")
    pairs = pairs_of(rows)
    order = holdable_pairs(pairs)
    random.Random(seed).shuffle(order)
    held: set[Pair] = set()
    for p in order:
        if len(held) < n_pairs and _covers(pairs, held | {p}):
            held.add(p)
    if len(held) < n_pairs:
        raise SplitError(f"only {len(held)} of the requested {n_pairs} (action, object) pairs can be held out "
                         f"while keeping every action and object in training ({len(pairs)} pairs in the data)")
    return sorted(held)


def compositional_split(rows: Iterable[ClipRecord], held_out: Sequence[Pair], val_fraction: float = 0.1,
                        salt: str = "") -> list[ClipRecord]:
    """Copies of `rows`: held-out pairs -> test; the rest -> train or val (seen pairs), by episode."""
    held = set(map(tuple, held_out))
    out = []
    for r in rows:
        split = "test" if (r.action, r.object) in held else split_for_key(episode_key(r), val_fraction, 0.0, salt)
        out.append(dataclasses.replace(r, split=split))
    return out


def check_compositional(rows: Sequence[ClipRecord], held_out: Sequence[Pair]) -> None:
    """Raise SplitError unless held-out pairs are absent from train/val and each of their actions and
    objects appears in train."""
    held = set(map(tuple, held_out))
    train = [r for r in rows if r.split == "train"]
    seen_pairs = {(r.action, r.object) for r in rows if r.split != "test"}
    leaked = sorted(held & seen_pairs)
    if leaked:
        raise SplitError(f"held-out pair {leaked[0]} appears outside the test split")
    actions, objects = {r.action for r in train}, {r.object for r in train}
    for a, o in sorted(held):
        if a not in actions or o not in objects:
            missing = f"action {a!r}" if a not in actions else f"object {o!r}"
            raise SplitError(f"held-out pair ({a!r}, {o!r}): its {missing} never appears in train")
    check_no_episode_leakage(rows)


# --- unseen viewpoint ----------------------------------------------------------------------------------

def camera_split(rows: Iterable[ClipRecord], held_out_cameras: Sequence[str], val_fraction: float = 0.1,
                 test_fraction: float = 0.2, salt: str = "") -> list[ClipRecord]:
    """Unseen-viewpoint split. Test = held-out cameras on test episodes; train/val = the other cameras on
    train/val episodes. Rows that would leak (a held-out camera on a training episode, or a seen camera on
    a test episode) are dropped, so the result is smaller than `rows`.
    """
    held = set(held_out_cameras)
    if not held:
        raise SplitError("camera_split needs at least one held-out camera")
    out = []
    for r in rows:
        split = split_for_key(episode_key(r), val_fraction, test_fraction, salt)
        if (split == "test") == (r.camera in held):
            out.append(dataclasses.replace(r, split=split))
    return out


def check_camera_split(rows: Sequence[ClipRecord], held_out_cameras: Sequence[str]) -> None:
    held = set(held_out_cameras)
    for r in rows:
        if (r.split == "test") != (r.camera in held):
            raise SplitError(f"clip {r.clip_id!r}: camera {r.camera!r} is in split {r.split!r} "
                             f"(held-out cameras: {sorted(held)})")
    check_no_episode_leakage(rows)


def split_counts(rows: Iterable[ClipRecord]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        counts[r.split] += 1
    return dict(counts)
