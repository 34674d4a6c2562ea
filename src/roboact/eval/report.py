"""The evaluation report: one dict (written as report.json) and the same content as markdown tables,
one per suite.

One row per model, in the order they were named, "not run" rows included; a last "chance" row gives what
a model with no information would score in every column where that is defined. Multi-seed rows show
mean ± the half-width of the 95% t-interval over seeds.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from roboact.eval import metrics as M
from roboact.eval.config import EVAL_SUITES
from roboact.eval.seeds import format_cell
from roboact.eval.suites import TITLES, reversal_pairs_in
from roboact.utils.io import atomic_write_json, atomic_write_text

FORMAT = "roboact-eval/2"

# (key in RowResult.metrics, markdown header). Leakage chance columns are shown inside the leakage cells.
COLUMNS: list[tuple[str, str]] = [
    ("v2t_r1", "v→t R@1"), ("v2t_r5", "v→t R@5"), ("t2v_r1", "t→v R@1"), ("t2v_r5", "t→v R@5"),
    ("zs_action", "action acc"), ("zs_object", "object acc"), ("zs_subject", "subject acc"),
    ("comp_v2t_r1_all", "comp v→t R@1 (all caps)"), ("comp_v2t_r1_unseen", "comp v→t R@1 (unseen caps)"),
    ("comp_action", "comp action acc"), ("comp_object", "comp object acc"),
    ("mean_abs_cos", "mean abs cos"),
    ("leak_object_from_action", "leak obj←action"), ("leak_action_from_object", "leak action←obj"),
]
METRIC_KEYS = [k for k, _ in COLUMNS] + ["leak_object_from_action_chance", "leak_action_from_object_chance"]

# The other suites' tables (the open-vocabulary suite reads the compositional metrics of the main table,
# plus their R@5).
SUITE_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "standard": COLUMNS,
    "reversal": [("rev_fwd_acc", "forward 2-way acc"), ("rev_rev_acc", "reversed 2-way acc"),
                 ("rev_balanced", "balanced 2-way acc"), ("rev_fwd_v2t_r1", "forward v→t R@1 (own caption)"),
                 ("rev_rev_v2t_r1", "reversed v→t R@1 (opposite caption)")],
    "openvocab": [("comp_v2t_r1_all", "R@1 (all caps)"), ("comp_v2t_r5_all", "R@5 (all caps)"),
                  ("comp_v2t_r1_unseen", "R@1 (unseen caps)"), ("comp_v2t_r5_unseen", "R@5 (unseen caps)"),
                  ("comp_action", "action acc"), ("comp_object", "object acc")],
    "viewpoint": [("vp_action", "action acc"), ("vp_object", "object acc"), ("vp_v2t_r1", "v→t R@1")],
}
ALL_KEYS = list(dict.fromkeys(METRIC_KEYS + [k for cols in SUITE_COLUMNS.values() for k, _ in cols]))


def _clean(x):
    """NaN/Inf -> None, recursively, so report.json is strict JSON."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def chance_levels(data, rows) -> dict:
    """What a model with no information scores, per column (None where undefined)."""
    es, voc = data.eval_set, data.vocab
    ch = {"v2t_r1": M.chance_video_to_text(len(es.captions), 1), "v2t_r5": M.chance_video_to_text(len(es.captions), 5),
          "t2v_r1": M.chance_text_to_video(es.caption_ids, 1), "t2v_r5": M.chance_text_to_video(es.caption_ids, 5)}
    for f in ("subject", "action", "object"):
        ch[f"zs_{f}"] = 1 / len(voc.names(f)) if f in data.scored_factors() else None
    held = bool(data.heldout_mask.any())
    ch["comp_v2t_r1_all"] = 1 / len(data.all_captions) if held else None
    ch["comp_v2t_r1_unseen"] = 1 / len(data.unseen_captions) if held else None
    ch["comp_action"] = 1 / len(voc.actions) if held else None
    ch["comp_object"] = 1 / len(voc.objects) if held else None
    ch["mean_abs_cos"] = None
    ok = [r for r in rows if r.status == "ok"]
    for k in ("leak_object_from_action", "leak_action_from_object"):  # depends on labels only: same for every row
        ch[k] = ok[0].metrics.get(f"{k}_chance") if ok else None
    return ch


def suite_chance(name: str, data) -> dict:
    """Chance row of a non-standard suite's table."""
    n_all, n_unseen = len(data.all_captions), len(data.unseen_captions)
    n_act, n_obj = len(data.vocab.actions), len(data.vocab.objects)
    if name == "reversal":
        return {"rev_fwd_acc": 0.5, "rev_rev_acc": 0.5, "rev_balanced": 0.5,
                "rev_fwd_v2t_r1": M.chance_video_to_text(n_all, 1), "rev_rev_v2t_r1": M.chance_video_to_text(n_all, 1)}
    if name == "openvocab":
        return {"comp_v2t_r1_all": M.chance_video_to_text(n_all, 1),
                "comp_v2t_r5_all": M.chance_video_to_text(n_all, 5),
                "comp_v2t_r1_unseen": M.chance_video_to_text(n_unseen, 1),
                "comp_v2t_r5_unseen": M.chance_video_to_text(n_unseen, 5),
                "comp_action": 1 / n_act, "comp_object": 1 / n_obj}
    if name == "viewpoint":
        return {"vp_action": 1 / n_act, "vp_object": 1 / n_obj,
                "vp_v2t_r1": M.chance_video_to_text(len(data.eval_set.captions), 1)}
    raise KeyError(name)


def suite_info(name: str, data) -> dict:
    """What a suite was computed on: clip counts, pairs, pools, cameras."""
    if name == "reversal":
        sel = data.reversal_opposite >= 0
        per = {}
        for r, o in zip(data.eval_set.rows, data.reversal_opposite.tolist()):
            if o >= 0:
                per[r.action] = per.get(r.action, 0) + 1
        return {"pairs": [list(p) for p in reversal_pairs_in(data.vocab.actions)], "clips": int(sel.sum()),
                "clips_with_opposite_caption": int((data.reversal_caption >= 0).sum()),
                "caption_pool": len(data.all_captions), "clips_per_action": per}
    if name == "openvocab":
        held = set(data.heldout_pairs)
        unseen = sum(p in held for p in data.all_caption_pairs)
        return {"heldout_pairs": [list(p) for p in data.heldout_pairs], "clips": int(data.heldout_mask.sum()),
                "caption_pool": len(data.all_captions), "pool_unseen_pair_captions": unseen,
                "pool_seen_pair_captions": len(data.all_captions) - unseen,
                "unseen_pool": len(data.unseen_captions)}
    if name == "viewpoint":
        per = {}
        for r, m in zip(data.eval_set.rows, data.camera_mask.tolist()):
            if m:
                per[r.camera] = per.get(r.camera, 0) + 1
        return {"heldout_cameras": list(data.unseen_cameras), "train_cameras": list(data.train_cameras),
                "scored_cameras": list(data.eval_cameras), "clips": int(data.camera_mask.sum()),
                "clips_per_camera": per}
    return {}


def build_report(cfg, data, rows, plots: dict, backbone_spec: dict, seconds: float,
                 suites: list[str] = EVAL_SUITES[:1], skipped: dict | None = None) -> dict:
    es = data.eval_set
    counts = {"clips": len(es), "captions": len(es.captions), "heldout_clips": int(data.heldout_mask.sum()),
              "all_captions": len(data.all_captions), "unseen_captions": len(data.unseen_captions),
              "probe_train_clips": len(data.probe_set) if data.probe_set is not None else 0,
              "grid_captions": len(data.grid_captions),
              "classes": {f: len(data.vocab.names(f)) for f in ("subject", "action", "object")}}
    for r in rows:
        r.metrics = {k: r.metrics.get(k) for k in ALL_KEYS} if r.status == "ok" else dict.fromkeys(ALL_KEYS)
        r.intervals = {k: v for k, v in r.intervals.items() if k in ALL_KEYS}
    skipped = skipped or {}
    suite_part = {}
    for name in EVAL_SUITES:
        ran = name in suites
        suite_part[name] = {
            "title": TITLES[name], "status": "ok" if ran else "not run", "reason": skipped.get(name, ""),
            "columns": [{"key": k, "header": h} for k, h in SUITE_COLUMNS[name]],
            "chance": (chance_levels(data, rows) if name == "standard" else suite_chance(name, data)) if ran else {},
            "info": suite_info(name, data) if ran else {}}
    return _clean({
        "format": FORMAT, "config": dataclasses.asdict(cfg), "backbone": backbone_spec, "split": cfg.split,
        "train_split": cfg.train_split, "counts": counts, "heldout_pairs": [list(p) for p in data.heldout_pairs],
        "columns": [{"key": k, "header": h} for k, h in COLUMNS], "chance": chance_levels(data, rows),
        "suites": suite_part, "rows": [dataclasses.asdict(r) for r in rows], "plots": plots,
        "notes": list(data.notes),
        "seconds": round(seconds, 3)})


# --- markdown ---------------------------------------------------------------------------------------------

def _fmt(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def _cell(r: dict, key: str) -> str:
    cell = format_cell(r["metrics"].get(key), r.get("intervals", {}).get(key))
    if key.startswith("leak_") and r["metrics"].get(key) is not None:
        cell += f" (chance {_fmt(r['metrics'].get(key + '_chance'))})"
    return cell


def suite_table(report: dict, suite: str) -> str:
    cols = SUITE_COLUMNS[suite]
    head = ["model", "variant", "seeds"] + [h for _, h in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report["rows"]:
        if r["status"] != "ok":
            lines.append("| " + " | ".join([r["name"], f"not run: {r['reason']}", "–"] + ["–"] * len(cols)) + " |")
        else:
            n = str(len(r.get("seeds") or [None]))
            lines.append("| " + " | ".join([r["name"], r["variant"], n] + [_cell(r, k) for k, _ in cols]) + " |")
    ch = report["suites"][suite]["chance"] if "suites" in report else report["chance"]
    lines.append("| " + " | ".join(["chance", "no information", "–"] + [_fmt(ch.get(k)) for k, _ in cols]) + " |")
    return "\n".join(lines)


def markdown_table(report: dict) -> str:
    """The main table (or, when the standard suite did not run, the first suite that did)."""
    ran = [s for s in EVAL_SUITES if report.get("suites", {}).get(s, {}).get("status", "ok" if s == "standard" else "")
           == "ok"]
    return suite_table(report, ran[0]) if ran else "(no suite ran)"


def _counts(d: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in d.items())


def _suite_header(report: dict, name: str) -> list[str]:
    """The lines that say what a suite's table was computed on and how to read it."""
    info, c = report["suites"][name]["info"], report["counts"]
    if name == "standard":
        return ["Rates are fractions in [0, 1]. Higher is better except mean abs cos and leakage (lower = more "
                "disentangled). `–`: not applicable or not run."]
    if name == "reversal":
        pairs = ", ".join("/".join(p) for p in info["pairs"])
        return [f"- reversible action pairs in the vocabulary: {pairs}; {info['clips']} scored clips have an "
                f"opposite ({_counts(info['clips_per_action'])}), {info['clips_with_opposite_caption']} of "
                f"them have the opposite caption in the pool of {info['caption_pool']} captions",
                "- each clip's frame features are reversed in time and re-encoded. 2-way: the action branch "
                "chooses between the clip's action and its opposite (ties count ½); forwards the right answer is "
                "the clip's own action, reversed the opposite. Balanced = the mean of the two, exactly 0.5 for "
                "any encoder blind to frame order (the mean-pool baseline). R@1: forwards the clip's own caption, "
                "reversed the caption with the opposite action and the same object, among every caption."]
    if name == "openvocab":
        held = ", ".join(f"({a}, {o})" for a, o in info["heldout_pairs"])
        return [f"- held-out (action, object) pairs (absent from split {report['train_split']!r}): {held} — "
                f"{info['clips']} clips",
                f"- ranked among all {info['caption_pool']} captions of the train and scored splits "
                f"({info['pool_seen_pair_captions']} of seen pairs, {info['pool_unseen_pair_captions']} of "
                f"held-out pairs); for reference among the {info['unseen_pool']} held-out captions only. "
                f"Same clips as the main table's comp columns."]
    if name == "viewpoint":
        return [f"- held-out cameras (in split {report['split']!r}, absent from split {report['train_split']!r}): "
                f"**{', '.join(info['heldout_cameras'])}** — {info['clips']} clips "
                f"({_counts(info['clips_per_camera'])}); "
                f"training cameras: {', '.join(info['train_cameras'])}",
                f"- zero-shot action/object accuracy and v→t R@1 among the split's {c['captions']} distinct "
                f"captions, on those clips only"]
    return []


def render_markdown(report: dict) -> str:
    c, cfg, k = report["counts"], report["config"], report["counts"]["classes"]
    held = ", ".join(f"({a}, {o})" for a, o in report["heldout_pairs"]) or "none"
    multi = any(len(r.get("seeds") or []) > 1 for r in report["rows"])
    out = [
        "# RoboAct-CLIP evaluation", "",
        f"- manifest: `{cfg['manifest']}`; split **{report['split']}**: {c['clips']} clips, "
        f"{c['captions']} distinct captions",
        f"- classes: {k['subject']} subjects, {k['action']} actions, {k['object']} objects;"
        f" zero-shot prototypes from {c['grid_captions']} grid captions",
        f"- held-out (action, object) pairs (absent from split {report['train_split']!r}): {held} "
        f"— {c['heldout_clips']} clips; pools: {c['all_captions']} captions (all), "
        f"{c['unseen_captions']} (unseen only)",
        f"- leakage probes trained on {c['probe_train_clips']} {report['train_split']!r} clips, scored on the split",
        f"- backbone: `{report['backbone'].get('name')}`; evaluated in {report['seconds']:.1f} s",
    ]
    if multi:
        out.append("- rows with several checkpoints (`seeds` > 1): mean ± half-width of the 95% Student-t "
                   "interval over seeds, mean ± t(0.975, k−1)·s/√k")
    out += ["", "Definitions: docs/eval.md.", ""]
    for name in EVAL_SUITES:
        s = report["suites"][name]
        out += [f"## {s['title']}", ""]
        if s["status"] != "ok":
            out += [f"Not run: {s['reason']}", ""]
            continue
        out += _suite_header(report, name) + ["", suite_table(report, name), ""]
        if f"suite_{name}" in report["plots"]:
            out += [f"![{name}]({report['plots'][f'suite_{name}']})", ""]
    notes = list(report["notes"]) + [f"**{r['name']}**: {n}" for r in report["rows"] for n in r["notes"]]
    if notes:
        out += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    other = {k: v for k, v in report["plots"].items() if not k.startswith("suite_")}
    if other:
        out += ["## Plots", ""] + [f"![{k}]({v})" for k, v in other.items()] + [""]
    return "\n".join(out)


def write_report(out: Path, report: dict) -> None:
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", render_markdown(report))


def embed_report(md: str, prefix: str) -> str:
    """An eval report.md as a section of a bigger report (`roboact demo`, scripts/generalization.py): its
    top-level heading dropped, its sections demoted one level, its plot paths prefixed with `prefix` (the
    eval folder relative to the bigger report)."""
    keep = [ln.replace("](plots/", f"]({prefix}plots/") for ln in md.splitlines() if not ln.startswith("# ")]
    return "\n".join(("#" + ln) if ln.startswith("##") else ln for ln in keep)
