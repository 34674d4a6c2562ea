"""The encoder as its own judge: how well a video matches an instruction over time, usable as a success
detector or a reward on any video (docs/judge.md).

    from roboact.judge import Judge, detect
    judge = Judge.from_pretrained("runs/study/models/old_full_s0")
    res = judge.score_video("clip.mp4", ["the drawer is open", "the drawer is closed"])
    res.save_plot("scores.png", threshold=0.6)
    detect(res.score(0), threshold=0.6, patience=3)   # the frame a control loop would switch on, or None

Modules: scoring (Judge, JudgeStream, JudgeResult), detect (detector, calibration, evaluation), demos
(labelled episodes from `roboact demos` files), plot, cli (`roboact judge`).
"""
from __future__ import annotations

from roboact.judge.detect import Detector, LabelledEpisode, calibrate, detect, evaluate
from roboact.judge.scoring import EMBEDDINGS, Judge, JudgeConfig, JudgeError, JudgeResult, JudgeStream, check_texts

__all__ = ["Judge", "JudgeConfig", "JudgeError", "JudgeResult", "JudgeStream", "EMBEDDINGS", "check_texts",
           "Detector", "LabelledEpisode", "calibrate", "detect", "evaluate"]
