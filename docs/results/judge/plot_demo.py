"""The figure of docs/judge.md: one held-out plate-slide demo scored on its raw HDF5 frames (what --calibrate
scores) with the threshold calibrated in caption_s5_f1, and how far the same demo's mp4 (H.264, crf 20) moves
the scores.

    PYTHONPATH=src nice -n 10 python docs/results/judge/plot_demo.py

It reads plate_slide_demo10_s5_mp4.json, written (with the .txt, its printed summary) by

    roboact judge /work/main/runs/policy_bf16/demos/videos/metaworld/plate-slide-v3/seed_000010.mp4 \
        --model /work/main/runs/study/models/old_full_s0 --text "Robot pushes plate, Action is push, Object is plate." \
        --stride 5 --threshold 0.4207 --mark 53 --json docs/results/judge/plate_slide_demo10_s5_mp4.json

drawer_open_seed0_s5_mp4.{json,png} came from

    roboact judge /work/main/runs/policy_bf16/demos/videos/metaworld/drawer-open-v3/seed_000000.mp4 \
        --model /work/main/runs/study/models/old_full_s0 --stride 5 --mark 93 \
        --text "Robot opens drawer, Action is open, Object is drawer." \
        --text "Robot closes drawer, Action is close, Object is drawer." \
        --text "Robot pushes plate, Action is push, Object is plate." --plot ....png --json ....json
"""
import json
from pathlib import Path

import numpy as np

from roboact.judge import Judge, detect
from roboact.judge.demos import success_frame
from roboact.sim.demos import DemoFile

ROOT = Path("/work/main/runs/policy_bf16/demos")
OUT = Path(__file__).parent
TEXT = "Robot pushes plate, Action is push, Object is plate."
THRESHOLD = 0.4207          # caption_s5_f1/report.json: plate-slide-v3, fused

judge = Judge.from_pretrained("/work/main/runs/study/models/old_full_s0", stride=5)
demos = DemoFile(ROOT / "metaworld/plate-slide-v3_demo.hdf5")
ep = demos.episode("demo_10")
res = judge.score_video(ep.obs["corner_rgb"], TEXT, fps=float(ep.attrs["fps"]))
res.source = "plate-slide-v3 demo_10 (raw frames)"
success = success_frame(ep.rewards)
res.save_plot(OUT / "plate_slide_demo10_s5.png", threshold=THRESHOLD, mark=success)
mp4 = np.array(json.loads((OUT / "plate_slide_demo10_s5_mp4.json").read_text())["cosine"])[: res.num_frames, 0]
diff = np.abs(mp4 - res.cosine[:, 0])
summary = {"success_frame": success, "threshold": THRESHOLD, "fired_raw": detect(res.score(0), THRESHOLD),
           "fired_mp4": detect(mp4, THRESHOLD), "max_cosine_raw": float(res.cosine.max()),
           "mp4_vs_raw_abs_diff_max": float(diff.max()), "mp4_vs_raw_abs_diff_mean": float(diff.mean())}
(OUT / "plate_slide_demo10_s5_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary, indent=2))
