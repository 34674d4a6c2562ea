"""Does the encoder know which stage of the instruction chain it is watching? The probe behind the judged
chain's result (docs/judge.md, "The chain"): for every frame of every chained demo video, the window ending
there (the judge's and the policy's window: 16 frames, stride 5) against the four stages' texts; the stage
with the highest similarity is the encoder's answer, the stage whose action produced the frame is the truth
(`attempts.jsonl`'s stage_steps; the tail after the last stage is left out). Chance is 25%.

Each checkpoint, each embedding (`fused`, `action`) and two text forms: the stages' instructions as the chain
gives them to the judge, and the pretraining captions of their (action, object) labels ("Robot opens drawer,
Action is open, Object is drawer."). The image tower is the frozen backbone all checkpoints share, so each
video is decoded and encoded once.

    python benchmarks/judge_chain_stages.py runs/libero10/demos \\
        --model runs/pretrain/roboact-sawyer-panda/models/seed{0,1,2}/final --starts 25-49 \\
        --json docs/results/judge/chain_stage_recognition.json

The starts 25-49 are those the chain's judge calibration holds out (roboact.policy.chain); all are chained
*training* demos, never the chain's evaluation starts.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def stage_of_frames(stage_steps: list[int]) -> np.ndarray:
    """Frame t follows action t-1 (frame 0 is the reset): its stage, for frames 0..last stage's end (the video's
    tail after it has no stage and is left out by the caller)."""
    ends = np.cumsum(stage_steps)
    actions = np.arange(int(ends[-1]))
    labels = np.searchsorted(ends, actions, side="right")          # stage of each action
    return np.r_[0, labels]                                         # frames 0..ends[-1]


def parse_starts(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("demos", help="the -o folder of `roboact chain demos` (its libero_goal/chain/attempts.jsonl "
                                  "and videos/libero_goal/chain/start_*.mp4)")
    ap.add_argument("--model", nargs="+", required=True, help="RoboAct-CLIP checkpoint folders")
    ap.add_argument("--starts", default="25-49", help="chain start indices, e.g. 25-49 or 0,3,7-9")
    ap.add_argument("--stride", type=int, default=5)
    ap.add_argument("--runtime", default="openvino")
    ap.add_argument("--json", help="write the summary here")
    args = ap.parse_args()

    from tqdm import tqdm

    from roboact.data.captions import atomic_caption
    from roboact.data.video import read_frames
    from roboact.judge import EMBEDDINGS, Judge
    from roboact.sim.chain.demos import video_rel
    from roboact.sim.chain.stages import STAGES
    from roboact.sim.episodes import ResultLog
    from roboact.utils.io import atomic_write_json

    root = Path(args.demos)
    log = ResultLog(root / "libero_goal" / "chain" / "attempts.jsonl", key=lambda r: int(r["index"])).read()
    attempts = {i: r["stage_steps"] for i, r in log.items() if r.get("status") == "ok"}   # as `chain demos` reads it
    starts = [i for i in parse_starts(args.starts) if i in attempts]
    if not starts:
        print(f"none of the starts {args.starts} has a kept chained demo in {root}", file=sys.stderr)
        return 1
    texts = {"instruction": [s.instruction for s in STAGES],
             "caption": [atomic_caption("Robot", s.action, s.object) for s in STAGES]}   # as the judge's {caption}
    judges = [Judge.from_pretrained(m, runtime=args.runtime, stride=args.stride) for m in args.model]
    backbones = {(j.encoder.cfg.backbone, j.encoder.cfg.backbone_path) for j in judges}
    if len(backbones) != 1:
        print(f"the checkpoints do not share one image backbone: {sorted(backbones)}", file=sys.stderr)
        return 1
    text_emb = [{form: j.text_embeddings(t) for form, t in texts.items()} for j in judges]
    k = len(STAGES)
    confusion = np.zeros((len(judges), len(EMBEDDINGS), len(texts), k, k), np.int64)   # [model, emb, form, truth, answer]
    for idx in tqdm(starts, desc="chained demos", unit="video"):
        frames = read_frames(root / video_rel(idx))
        truth = stage_of_frames(attempts[idx])
        if len(frames) < len(truth):
            print(f"start {idx}: video has {len(frames)} frames, its stages {len(truth)}; skipped", file=sys.stderr)
            continue
        feats = judges[0].frame_features(frames)
        for m, j in enumerate(judges):
            win = j.window_embeddings(feats)
            for e, emb in enumerate(EMBEDDINGS):
                for f, form in enumerate(texts):
                    cos = (win[emb] @ text_emb[m][form][emb].T).numpy()[: len(truth)]
                    np.add.at(confusion[m, e, f], (truth, cos.argmax(1)), 1)
    rows = []
    for m, model in enumerate(args.model):
        for e, emb in enumerate(EMBEDDINGS):
            for f, form in enumerate(texts):
                c = confusion[m, e, f]
                recall = (np.diag(c) / np.maximum(c.sum(1), 1)).round(3).tolist()
                rows.append({"model": model, "embedding": emb, "texts": form,
                             "frame_accuracy": round(float(np.trace(c) / c.sum()), 3),
                             "balanced_accuracy": round(float(np.mean(recall)), 3),
                             "recall_per_stage": recall, "confusion": c.tolist()})
    out = {"command": " ".join(["python", "benchmarks/judge_chain_stages.py", *sys.argv[1:]]),
           "starts": starts, "stride": args.stride, "chance": 1 / k, "stages": [s.name for s in STAGES],
           "texts": texts, "rows": rows}
    for r in rows:
        print(f"{Path(r['model']).parent.name:>6} {r['embedding']:>6} {r['texts']:>11}: frames {r['frame_accuracy']:.3f}"
              f"  balanced {r['balanced_accuracy']:.3f}  per stage {r['recall_per_stage']}")
    if args.json:
        atomic_write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
