"""`roboact judge`: how well a video matches instructions over time, and the judge's calibration as a success
detector on `roboact demos` files.

    roboact judge clip.mp4 --model runs/study/models/old_full_s0 --text "open the drawer" \\
        [--text "the drawer is still closed"] [--stride 5] [--plot s.png] [--json s.json] [--threshold 0.6]
    roboact judge --calibrate demos/metaworld/*_demo.hdf5 --model ... --done-text "{instruction}" \\
        [--not-done-text "..."] [--max-demos 10] --out runs/judge
"""
from __future__ import annotations

from roboact.backbones.runtime import RUNTIME_HELP, RUNTIMES


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "judge", help="score a video against instructions per frame (a success detector / reward on any video)",
        description="For every frame, the RoboAct-CLIP embedding of the window of the last n frames ending there "
                    "(as a policy sees it) against each --text: cosine similarity, and with two or more texts "
                    "the softmax over them at the model's learned temperature. A similarity, not a calibrated "
                    "probability of success: calibrate a threshold with --calibrate on labelled demos.")
    p.add_argument("video", nargs="?", help="video file to score (omit with --calibrate)")
    p.add_argument("--model", required=True, help="RoboAct-CLIP checkpoint folder, run folder or model-store name")
    p.add_argument("--text", action="append", default=[], help="an instruction to score (repeat for several)")
    p.add_argument("--embedding", default="fused", choices=("fused", "action"),
                   help="fused: the eq. 23 video/text vectors; action: the action branch vs the action text")
    p.add_argument("--window", type=int, default=None, help="frames per window (default: the checkpoint's n_frames)")
    p.add_argument("--stride", type=int, default=1, help="control steps between the window's frames (default 1)")
    p.add_argument("--threshold", type=float, default=None,
                   help="report the first frame whose score (softmax probability with >= 2 texts, else cosine) "
                        "stays >= this for --patience frames; drawn on the plot")
    p.add_argument("--patience", type=int, default=1, help="frames the score must stay above --threshold")
    p.add_argument("--mark", type=int, default=None, help="frame to mark on the plot (e.g. the true success frame)")
    p.add_argument("--plot", help="write the score-per-frame figure here (png, pdf, svg)")
    p.add_argument("--json", help="write every frame's scores here")
    c = p.add_argument_group("calibration on roboact demos files (frames before the recorded success = not done)")
    c.add_argument("--calibrate", nargs="+", metavar="DEMOS.hdf5", help="demo files, one task each")
    c.add_argument("--done-text", default="{instruction}",
                   help="text for 'this stage is done'; {instruction} {action} {object} {task} {caption} come "
                        "from each file ({caption}: the pretraining caption 'Robot opens drawer, Action is open, "
                        "Object is drawer.'; default: {instruction})")
    c.add_argument("--not-done-text", default=None,
                   help="text for 'not yet'; with it the score is the probability of done over the two texts")
    c.add_argument("--camera", default=None, help="image key (<camera>_rgb; default: the file's only camera)")
    c.add_argument("--feature-cache", default=None,
                   help="per-frame feature cache, shared with `roboact policy` (its OUT/cache; default OUT/cache)")
    c.add_argument("--max-demos", type=int, default=0, help="demos per file (default all)")
    c.add_argument("--calib-fraction", type=float, default=0.5, help="share of each file's demos that calibrate")
    c.add_argument("--objective", default="f1", choices=("f1", "balanced_accuracy", "accuracy", "episode"),
                   help="what the threshold maximises on the calibration demos: a per-frame score (default f1: "
                        "done frames are rare, so accuracy favours never firing) or episode = the share of demos "
                        "where the detector (with --patience) fires at or after success")
    c.add_argument("--out", default="runs/judge", help="report folder (report.json, report.md, scores.jsonl)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--runtime", default="default", choices=RUNTIMES, help=RUNTIME_HELP)
    p.set_defaults(func=run)


def run(args) -> int:
    from roboact.judge.scoring import Judge, JudgeError, check_texts

    if bool(args.video) == bool(args.calibrate):
        raise JudgeError("give either a VIDEO to score or --calibrate DEMOS.hdf5 ...")
    if args.video:
        if not args.text:
            raise JudgeError("give at least one --text to score the video against")
        check_texts(args.text, "--text")       # before the model loads: a bad argument fails at once
    judge = Judge.from_pretrained(args.model, device=args.device, runtime=args.runtime, window=args.window,
                                  stride=args.stride, embedding=args.embedding)
    return calibrate_demos(judge, args) if args.calibrate else score(judge, args)


def score(judge, args) -> int:
    from roboact.judge.scoring import check_texts

    res = judge.score_video(args.video, check_texts(args.text, "--text"))
    res.meta["checkpoint"] = judge.checkpoint
    if args.json:
        res.save_json(args.json, summary=res.summary(args.threshold, args.patience))
    if args.plot:
        res.save_plot(args.plot, threshold=args.threshold, mark=args.mark, mark_label="marked")
    fps = f", {res.fps:g} fps" if res.fps else ""
    print(f"{args.video}: {res.num_frames} frames{fps}; {res.embedding} embedding, {res.window}-frame window "
          f"(stride {res.stride}); score = {res.score_name}")
    for row in res.summary(args.threshold, args.patience):
        above = ""
        if args.threshold is not None:
            above = (f", first >= {args.threshold:g} for {args.patience} frame(s): "
                     + ("never" if row["first_above"] is None else f"frame {row['first_above']}"))
        print(f"  {row['text']!r}: max {row['max']:.4f} at frame {row['frame_of_max']}{above}")
    return 0


def calibrate_demos(judge, args) -> int:
    from roboact.judge.demos import DemoCalibration, markdown, run_calibration

    cfg = DemoCalibration(files=list(args.calibrate), done_text=args.done_text, not_done_text=args.not_done_text,
                          camera=args.camera, feature_cache=args.feature_cache, max_demos=args.max_demos,
                          calib_fraction=args.calib_fraction, patience=args.patience, objective=args.objective,
                          out=args.out)
    report = run_calibration(judge, cfg, checkpoint=judge.checkpoint or args.model)
    print(markdown(report))
    print(f"report: {args.out}/report.json, {args.out}/report.md")
    return 0
