"""A success detector on a score curve, its calibration on labelled episodes, and its evaluation.

A labelled episode is a score per frame and the frame where success happened (the simulator's oracle):
frames before it are "not done", frames from it on are "done". The detector fires at the first frame t
where the score has been >= threshold for `patience` consecutive frames (t included): the frame at which
a control loop reading one score per step could switch stage, so its delay is what a chain would see.

`calibrate` picks the threshold that maximises an objective on calibration episodes. The default is the
per-frame F1 of the "done" frames: in demos that stop a few steps after success, "done" frames are rare (5 of
~95 per Meta-World demo), and plain accuracy is then maximised by a threshold that never fires. A per-frame
objective ignores `patience` and when the errors fall; "episode" (the share of episodes where the detector
fires on time) optimises what a chain of stages needs directly, at the cost of fewer data points. `evaluate`
reports, on held-out episodes, the episode outcome (on time: fired at or after success; early: fired before;
missed: never fired within the recorded frames), the per-frame accuracy and F1, and the delay in steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roboact.judge.scoring import JudgeError

OBJECTIVES = ("f1", "balanced_accuracy", "accuracy", "episode")
MAX_EPISODE_CANDIDATES = 512   # thresholds tried by the episode objective (each runs the detector on every episode)


@dataclass
class LabelledEpisode:
    scores: np.ndarray      # (T,) detector score per frame
    success: int            # first frame showing success, 0 <= success < T
    name: str = ""

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float64)
        if self.scores.ndim != 1 or len(self.scores) == 0:
            raise JudgeError(f"episode {self.name!r}: scores must be a non-empty 1-d array, got {self.scores.shape}")
        if not 0 <= int(self.success) < len(self.scores):
            raise JudgeError(f"episode {self.name!r}: success frame {self.success} outside its "
                             f"{len(self.scores)} frames")
        self.success = int(self.success)

    @property
    def labels(self) -> np.ndarray:
        return np.arange(len(self.scores)) >= self.success


def detect(scores: np.ndarray, threshold: float, patience: int = 1) -> int | None:
    """The first frame at which the score has been >= threshold for `patience` frames in a row, or None."""
    if patience < 1:
        raise JudgeError(f"patience must be >= 1, got {patience}")
    run = 0
    for t, s in enumerate(np.asarray(scores, dtype=np.float64)):
        run = run + 1 if s >= threshold else 0
        if run >= patience:
            return t
    return None


class Detector:
    """`detect` online, one score per control step: `step(score)` is True from the frame it fires on."""

    def __init__(self, threshold: float, patience: int = 1):
        if patience < 1:
            raise JudgeError(f"patience must be >= 1, got {patience}")
        self.threshold, self.patience = float(threshold), int(patience)
        self.reset()

    def reset(self) -> None:
        self.run, self.fired = 0, False

    def step(self, score: float) -> bool:
        self.run = self.run + 1 if score >= self.threshold else 0
        self.fired = self.fired or self.run >= self.patience
        return self.fired


def frame_metrics(pred: np.ndarray, labels: np.ndarray) -> dict:
    """Per-frame accuracy, balanced accuracy and F1 of the "done" class."""
    pred, labels = np.asarray(pred, bool), np.asarray(labels, bool)
    tp, fp = int((pred & labels).sum()), int((pred & ~labels).sum())
    fn, tn = int((~pred & labels).sum()), int((~pred & ~labels).sum())
    return _metrics(np.array([tp]), np.array([fp]), np.array([fn]), np.array([tn]))[0]


def _metrics(tp, fp, fn, tn) -> list[dict]:
    tp, fp, fn, tn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn, tn))
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=(2 * tp + fp + fn) > 0)
    tpr = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=(tp + fn) > 0)
    tnr = np.divide(tn, tn + fp, out=np.zeros_like(tp), where=(tn + fp) > 0)
    acc = (tp + tn) / np.maximum(tp + fp + fn + tn, 1)
    return [{"accuracy": float(a), "balanced_accuracy": float((p + n) / 2), "f1": float(f)}
            for a, p, n, f in zip(acc, tpr, tnr, f1)]


def calibrate(episodes: list[LabelledEpisode], objective: str = "f1", patience: int = 1) -> dict:
    """The threshold maximising `objective` over `episodes`, with the objective's value.

    Per-frame objectives (f1, balanced_accuracy, accuracy) score the raw threshold on every frame; "episode"
    scores what a chain needs, the share of episodes where the detector (with `patience`) fires on time.
    Candidates are the midpoints between consecutive distinct scores (and one below / above all of them),
    so every distinct split of the frames is tried once (the episode objective tries an evenly spaced subset
    of at most MAX_EPISODE_CANDIDATES). Ties go to the highest threshold: of equally good thresholds the one
    that fires least early.
    """
    if objective not in OBJECTIVES:
        raise JudgeError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if not episodes:
        raise JudgeError("calibration needs at least one labelled episode")
    scores = np.concatenate([e.scores for e in episodes])
    labels = np.concatenate([e.labels for e in episodes])
    u = np.unique(scores)                                                   # ascending
    cands = np.concatenate([[u[0] - 1.0], (u[1:] + u[:-1]) / 2, [u[-1] + 1.0]])
    if objective == "episode":
        return _calibrate_episodes(episodes, cands, patience, len(scores), int(labels.sum()))
    order = np.sort(scores)
    pos_sorted = np.sort(scores[labels])
    # frames predicted done at threshold c: score >= c
    n_above = len(order) - np.searchsorted(order, cands, side="left")
    tp = len(pos_sorted) - np.searchsorted(pos_sorted, cands, side="left")
    fp = n_above - tp
    fn = labels.sum() - tp
    tn = (~labels).sum() - fp
    values = np.array([m[objective] for m in _metrics(tp, fp, fn, tn)])
    best = int(np.flatnonzero(values == values.max())[-1])
    return {"threshold": float(cands[best]), "objective": objective, "value": float(values[best]),
            "frames": int(len(scores)), "done_frames": int(labels.sum())}


def _calibrate_episodes(episodes, cands, patience: int, frames: int, done: int) -> dict:
    if len(cands) > MAX_EPISODE_CANDIDATES:
        cands = cands[np.unique(np.linspace(0, len(cands) - 1, MAX_EPISODE_CANDIDATES).round().astype(int))]
    values = np.array([np.mean([_on_time(e, c, patience) for e in episodes]) for c in cands])
    best = int(np.flatnonzero(values == values.max())[-1])
    return {"threshold": float(cands[best]), "objective": "episode", "value": float(values[best]),
            "frames": frames, "done_frames": done}


def _on_time(e: LabelledEpisode, threshold: float, patience: int) -> bool:
    fired = detect(e.scores, threshold, patience)
    return fired is not None and fired >= e.success


def evaluate(episodes: list[LabelledEpisode], threshold: float, patience: int = 1) -> dict:
    """Held-out report of the detector (see the module doc); `episodes` lists each outcome and delay."""
    rows, preds, labels = [], [], []
    for e in episodes:
        fired = detect(e.scores, threshold, patience)
        outcome = "missed" if fired is None else ("early" if fired < e.success else "on_time")
        rows.append({"name": e.name, "success": e.success, "detected": fired, "outcome": outcome,
                     "delay": None if fired is None else fired - e.success, "frames": len(e.scores)})
        preds.append(e.scores >= threshold)
        labels.append(e.labels)
    n = max(len(rows), 1)
    delays = [r["delay"] for r in rows if r["delay"] is not None]
    on_time = [r["delay"] for r in rows if r["outcome"] == "on_time"]
    frame = frame_metrics(np.concatenate(preds), np.concatenate(labels)) if rows else {}
    return {"threshold": float(threshold), "patience": int(patience), "episodes": len(rows),
            "episode_accuracy": sum(r["outcome"] == "on_time" for r in rows) / n,
            "early_share": sum(r["outcome"] == "early" for r in rows) / n,
            "missed_share": sum(r["outcome"] == "missed" for r in rows) / n,
            "delay_mean": _stat(np.mean, delays), "delay_median": _stat(np.median, delays),
            "on_time_delay_mean": _stat(np.mean, on_time), "on_time_delay_median": _stat(np.median, on_time),
            **{f"frame_{k}": v for k, v in frame.items()}, "per_episode": rows}


def _stat(fn, xs: list) -> float | None:
    return float(fn(xs)) if xs else None
