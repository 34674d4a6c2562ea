"""Calibrate and evaluate the judge as a success detector on `roboact demos` files (labelled by the simulator).

Every demo ends `post_success_steps` frames after the expert's success (roboact.sim.demo_gen), and its
`rewards[t]` is the success predicate after action t (robomimic's convention, sim/suites.make_episode), so
the first frame showing success is first(rewards > 0) + 1: frames before it are "not done", the rest "done".
Demos whose success is not inside the recorded frames are skipped and counted.

Per file (one task, one stage of a chain): the first `calib_fraction` of its demos calibrate a threshold
for each embedding, the embedding with the better calibration objective is chosen, and the rest are the
held-out set the report is about. Scores are cached per demo in OUT/scores.jsonl, so a stopped run resumes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from roboact.judge.detect import OBJECTIVES, LabelledEpisode, calibrate, evaluate
from roboact.judge.scoring import EMBEDDINGS, Judge, JudgeError, check_texts
from roboact.utils.config import check

log = logging.getLogger(__name__)


@dataclass
class DemoCalibration:
    """files: demo HDF5 files (one task each); done_text / not_done_text: instructions, with {instruction},
    {action}, {object}, {task} and {caption} (the pretraining caption of the file's action and object,
    data/captions.py) filled from each file's attributes; without not_done_text the score is the
    cosine to done_text, with it the probability of done_text over the two; camera: the obs image key
    (<camera>_rgb; None: the file's only one); feature_cache: a folder of per-frame backbone features in the
    layout of `roboact policy`'s OUT/cache (shared with it: the judge reads what a policy run encoded, and
    writes what it encodes; None: OUT/cache); max_demos: demos used per file (0: all)."""

    files: list[str]
    done_text: str = "{instruction}"
    not_done_text: str | None = None
    camera: str | None = None
    feature_cache: str | None = None
    max_demos: int = 0
    calib_fraction: float = 0.5
    patience: int = 1
    objective: str = "f1"
    out: str = "runs/judge"

    def __post_init__(self) -> None:
        check(len(self.files) >= 1, "files", "give at least one demo file")
        check(self.max_demos >= 0, "max_demos", f"must be >= 0, got {self.max_demos}")
        check(0.0 < self.calib_fraction < 1.0, "calib_fraction", f"must be in (0, 1), got {self.calib_fraction}")
        check(self.patience >= 1, "patience", f"must be >= 1, got {self.patience}")
        check(self.objective in OBJECTIVES, "objective", f"must be one of {OBJECTIVES}, got {self.objective!r}")
        check_texts(self.done_text, "done_text")
        if self.not_done_text is not None:
            check_texts(self.not_done_text, "not_done_text")


def success_frame(rewards: np.ndarray) -> int | None:
    """First frame showing success (rewards[t] follows action t, so frame t+1 shows it), or None when the
    demo never succeeds inside its recorded frames."""
    hits = np.flatnonzero(np.asarray(rewards) > 0)
    if len(hits) == 0 or hits[0] + 1 >= len(rewards):
        return None
    return int(hits[0]) + 1


def fill_text(template: str, demos, where: str) -> str:
    """A text template filled from a demo file's attributes, or JudgeError naming the unknown field."""
    from roboact.data.captions import atomic_caption

    action, obj = demos.attrs.get("action", ""), demos.attrs.get("object", "")
    values = {"instruction": demos.instruction, "action": action, "object": obj,
              "task": demos.attrs.get("task_name", ""),
              "caption": atomic_caption("Robot", action, obj) if action and obj else ""}
    try:
        text = template.format_map(values)
    except (KeyError, IndexError, ValueError) as e:
        raise JudgeError(f"{where} {template!r}: unknown placeholder {e} (known: {', '.join(values)})") from None
    return check_texts(text, f"{where} for {demos.path}")[0]


def image_key(demos, camera: str | None) -> str:
    import h5py

    with h5py.File(demos.path, "r") as f:
        images = sorted(k for k in f[f"data/{demos.keys[0]}/obs"] if k.endswith("_rgb"))
    if camera is not None:
        key = camera if camera.endswith("_rgb") else f"{camera}_rgb"
        if key not in images:
            raise JudgeError(f"{demos.path}: no camera {camera!r} (has {', '.join(images) or 'no images'})")
        return key
    if len(images) != 1:
        raise JudgeError(f"{demos.path}: {len(images)} cameras ({', '.join(images)}); choose one with camera")
    return images[0]


def run_calibration(judge: Judge, cfg: DemoCalibration, checkpoint: str = "") -> dict:
    """Score every demo (resumably), calibrate and evaluate per file; writes OUT/report.{json,md}."""
    from roboact.sim.demos import DemoFile
    from roboact.utils.io import atomic_write_json, atomic_write_text

    out = Path(cfg.out)
    embeddings = [e for e in EMBEDDINGS if e != "action" or judge.encoder.cfg.disentangle]
    tasks = []
    for path in cfg.files:
        demos = DemoFile(path)
        texts = [fill_text(cfg.done_text, demos, "done_text")]
        if cfg.not_done_text is not None:
            texts.append(fill_text(cfg.not_done_text, demos, "not_done_text"))
        records = score_file(judge, demos, texts, cfg, embeddings, out / "scores.jsonl", checkpoint)
        tasks.append(task_report(demos, texts, records, cfg, embeddings))
    report = {"checkpoint": checkpoint, "window": judge.window, "stride": judge.stride,
              "config": dataclasses.asdict(cfg), "tasks": tasks, "overall": overall(tasks)}
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", markdown(report))
    return report


def score_file(judge: Judge, demos, texts: list[str], cfg: DemoCalibration, embeddings: list[str],
               cache: Path, checkpoint: str) -> list[dict]:
    """Per demo: its success frame and detector score per frame for every embedding (cached, resumable)."""
    from tqdm import tqdm

    from roboact.sim.episodes import ResultLog

    key = image_key(demos, cfg.camera)
    ident = hashlib.sha256(json.dumps([checkpoint, judge.window, judge.stride, key, texts]).encode()).hexdigest()[:16]
    results = ResultLog(cache, key=lambda r: (r["identity"], r["file"], r["demo"]))
    done = results.read()
    names = demos.keys[: cfg.max_demos or None]
    text_emb = judge.text_embeddings(texts)
    todo = [n for n in names if (ident, str(demos.path), n) not in done]
    features = FrameFeatures(judge, demos, key, Path(cfg.feature_cache or Path(cfg.out) / "cache"), todo)
    records = []
    for name in tqdm(names, desc=Path(demos.path).name, unit="demo", dynamic_ncols=True):
        row = done.get((ident, str(demos.path), name))
        if row is None:
            ep = demos.episode(name)
            row = {"identity": ident, "file": str(demos.path), "demo": name, "frames": ep.num_samples,
                   "success": success_frame(ep.rewards), "scores": {}}
            if row["success"] is not None:
                windows = judge.window_embeddings(features.get(name, ep.obs[key]))
                for e in embeddings:
                    res = judge.score_windows(windows, texts, embedding=e, text_emb=text_emb)
                    row["scores"][e] = np.round(res.score(0), 6).tolist()
            results.append(row)
        records.append(row)
    features.flush()
    return records


class FrameFeatures:
    """Per-frame backbone features of one demo file through `roboact policy`'s DemoFeatureCache: the same
    identity (frame encoder, demo file sha256) when the camera is the one the policy suite reads, so both share
    one cache; another camera adds its key to the identity."""

    def __init__(self, judge: Judge, demos, image_key: str, root: Path, todo: list[str]):
        from roboact.policy.data import DemoFeatureCache
        from roboact.policy.encoders import frame_identity
        from roboact.policy.suites import BENCH_SUITES
        from roboact.utils.io import sha256_file

        self.judge, self.todo = judge, todo
        self.cache = DemoFeatureCache(root)
        suite = BENCH_SUITES.get(str(demos.attrs.get("suite", "")))
        self.identity = frame_identity(judge.encoder.backbone)
        if suite is None or suite.image_key != image_key:
            self.identity = {**self.identity, "image_key": image_key}
        self.sha = sha256_file(demos.path) if todo else ""
        self.have = self.cache.load("frames", self.identity, self.sha) if todo else {}
        self.unsaved = 0

    def get(self, name: str, frames: np.ndarray):
        from roboact.policy.data import SAVE_EVERY

        if name not in self.have:
            self.have[name] = self.judge.frame_features(frames).contiguous()
            self.unsaved += 1
            if self.unsaved >= SAVE_EVERY:
                self.flush()
        return self.have[name]

    def flush(self) -> None:
        """Write the file's features (the whole file is rewritten, so not after every demo)."""
        if self.unsaved:
            self.cache.save("frames", self.identity, self.sha, self.have)
            self.unsaved = 0


def task_report(demos, texts: list[str], records: list[dict], cfg: DemoCalibration,
                embeddings: list[str]) -> dict:
    usable = [r for r in records if r["success"] is not None]
    if len(usable) < len(records):
        log.warning("%s: %d demo(s) skipped: no success inside their recorded frames", demos.path,
                    len(records) - len(usable))
    n_cal = math.ceil(cfg.calib_fraction * len(usable))
    if n_cal < 1 or len(usable) - n_cal < 1:
        raise JudgeError(f"{demos.path}: {len(usable)} demo(s) with success inside their frames; need at least 2 "
                         "(one to calibrate, one held out)")
    episodes = {e: [LabelledEpisode(np.array(r["scores"][e]), r["success"], r["demo"]) for r in usable]
                for e in embeddings}
    per, chosen = calibrate_embeddings(episodes, n_cal, cfg.objective, cfg.patience)
    return {"file": str(demos.path), "task": demos.attrs.get("task_name") or Path(demos.path).stem,
            "texts": texts, "score": "prob(done)" if len(texts) == 2 else "cosine(done)",
            "demos": len(records), "skipped_no_success_frame": len(records) - len(usable),
            "calibration_demos": n_cal, "held_out_demos": len(usable) - n_cal,
            "frames_per_demo_mean": float(np.mean([r["frames"] for r in usable])),
            "done_frames_per_demo_mean": float(np.mean([r["frames"] - r["success"] for r in usable])),
            "chosen_embedding": chosen, "embeddings": per}


def calibrate_embeddings(episodes: dict[str, list[LabelledEpisode]], n_cal: int, objective: str,
                         patience: int) -> tuple[dict, str]:
    """Per embedding: a threshold calibrated on the first `n_cal` episodes, its evaluation there and on the
    rest (held out); and the embedding chosen by the calibration value (ties: fused)."""
    per = {}
    for e, eps in episodes.items():
        cal = calibrate(eps[:n_cal], objective, patience)
        per[e] = {"calibration": cal, "calibration_eval": brief(evaluate(eps[:n_cal], cal["threshold"], patience)),
                  "held_out": evaluate(eps[n_cal:], cal["threshold"], patience)}
    return per, max(episodes, key=lambda e: (per[e]["calibration"]["value"], e == "fused"))


def brief(ev: dict) -> dict:
    """An evaluation without its per-episode rows (summaries, cached calibrations)."""
    return {k: v for k, v in ev.items() if k != "per_episode"}


HEADLINE = ("episode_accuracy", "early_share", "missed_share", "delay_mean", "delay_median", "frame_accuracy",
            "frame_f1")


def overall(tasks: list[dict]) -> dict:
    """Mean over tasks of the held-out headline figures, for the chosen embedding and for each one."""
    def mean(rows, k):
        xs = [r[k] for r in rows if r[k] is not None]
        return float(np.mean(xs)) if xs else None

    out = {"chosen": {k: mean([t["embeddings"][t["chosen_embedding"]]["held_out"] for t in tasks], k)
                      for k in HEADLINE}}
    for e in EMBEDDINGS:
        rows = [t["embeddings"][e]["held_out"] for t in tasks if e in t["embeddings"]]
        if rows:
            out[e] = {k: mean(rows, k) for k in HEADLINE}
    return out


def markdown(report: dict) -> str:
    def f(x, pct=False):
        return "—" if x is None else (f"{100 * x:.0f}%" if pct else f"{x:.2f}")

    cfg = report["config"]
    lines = [f"# Judge as success detector: {report['checkpoint'] or 'model'}", "",
             f"Window {report['window']} frames, stride {report['stride']}; threshold chosen per task on the first "
             f"{cfg['calib_fraction']:.0%} of its demos by {cfg['objective']}; patience {cfg['patience']}. "
             "Held-out figures: on time = fired at or after the success frame; early = before it; missed = never "
             "within the recorded frames; delay = fired frame - success frame (steps, over fired episodes).", "",
             "| task | texts | embedding | threshold | calib " + cfg["objective"] + " | held-out demos | on time | "
             "early | missed | delay mean | delay median | frame acc | frame F1 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in report["tasks"]:
        for e, r in t["embeddings"].items():
            h, c = r["held_out"], r["calibration"]
            mark = " (chosen)" if e == t["chosen_embedding"] else ""
            lines.append(f"| {t['task']} | {' / '.join(t['texts'])} | {e}{mark} | {c['threshold']:.4f} | "
                         f"{c['value']:.3f} | {h['episodes']} | {f(h['episode_accuracy'], 1)} | "
                         f"{f(h['early_share'], 1)} | {f(h['missed_share'], 1)} | {f(h['delay_mean'])} | "
                         f"{f(h['delay_median'])} | {f(h['frame_accuracy'], 1)} | {f(h['frame_f1'])} |")
    o = report["overall"]["chosen"]
    lines += ["", f"Mean over tasks (chosen embedding): on time {f(o['episode_accuracy'], 1)}, early "
              f"{f(o['early_share'], 1)}, missed {f(o['missed_share'], 1)}, delay mean {f(o['delay_mean'])}, "
              f"frame F1 {f(o['frame_f1'])}.", ""]
    return "\n".join(lines)
