"""The evaluation report: one dict (written as report.json) and the same content as a markdown table.

One row per model, in the order they were named, "not run" rows included; a last "chance" row gives what
a model with no information would score in every column where that is defined.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from roboact.eval import metrics as M
from roboact.utils.io import atomic_write_json, atomic_write_text

FORMAT = "roboact-eval/1"

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


def build_report(cfg, data, rows, plots: dict, backbone_spec: dict, seconds: float) -> dict:
    es = data.eval_set
    counts = {"clips": len(es), "captions": len(es.captions), "heldout_clips": int(data.heldout_mask.sum()),
              "all_captions": len(data.all_captions), "unseen_captions": len(data.unseen_captions),
              "probe_train_clips": len(data.probe_set) if data.probe_set is not None else 0,
              "grid_captions": len(data.grid_captions),
              "classes": {f: len(data.vocab.names(f)) for f in ("subject", "action", "object")}}
    for r in rows:
        r.metrics = {k: r.metrics.get(k) for k in METRIC_KEYS} if r.status == "ok" else dict.fromkeys(METRIC_KEYS)
    return _clean({
        "format": FORMAT, "config": dataclasses.asdict(cfg), "backbone": backbone_spec, "split": cfg.split,
        "train_split": cfg.train_split, "counts": counts, "heldout_pairs": [list(p) for p in data.heldout_pairs],
        "columns": [{"key": k, "header": h} for k, h in COLUMNS], "chance": chance_levels(data, rows),
        "rows": [dataclasses.asdict(r) for r in rows], "plots": plots, "notes": list(data.notes),
        "seconds": round(seconds, 3)})


# --- markdown ---------------------------------------------------------------------------------------------

def _fmt(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def _cells(metrics: dict) -> list[str]:
    cells = []
    for k, _ in COLUMNS:
        v = metrics.get(k)
        if k.startswith("leak_") and v is not None:
            cells.append(f"{v:.3f} (chance {_fmt(metrics.get(k + '_chance'))})")
        else:
            cells.append(_fmt(v))
    return cells


def markdown_table(report: dict) -> str:
    head = ["model", "variant"] + [h for _, h in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report["rows"]:
        if r["status"] != "ok":
            lines.append("| " + " | ".join([r["name"], f"not run: {r['reason']}"] + ["–"] * len(COLUMNS)) + " |")
        else:
            lines.append("| " + " | ".join([r["name"], r["variant"]] + _cells(r["metrics"])) + " |")
    ch = report["chance"]
    lines.append("| " + " | ".join(["chance", "no information"] + [_fmt(ch.get(k)) for k, _ in COLUMNS]) + " |")
    return "\n".join(lines)


def render_markdown(report: dict) -> str:
    c, cfg, k = report["counts"], report["config"], report["counts"]["classes"]
    held = ", ".join(f"({a}, {o})" for a, o in report["heldout_pairs"]) or "none"
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
        f"- backbone: `{report['backbone'].get('name')}`; evaluated in {report['seconds']:.1f} s", "",
        markdown_table(report), "",
        "Rates are fractions in [0, 1]. Higher is better except mean abs cos and leakage (lower = more "
        "disentangled). `–`: not applicable or not run. Definitions: docs/eval.md.", "",
    ]
    notes = list(report["notes"]) + [f"**{r['name']}**: {n}" for r in report["rows"] for n in r["notes"]]
    if notes:
        out += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    if report["plots"]:
        out += ["## Plots", ""] + [f"![{k}]({v})" for k, v in report["plots"].items()] + [""]
    return "\n".join(out)


def write_report(out: Path, report: dict) -> None:
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", render_markdown(report))
