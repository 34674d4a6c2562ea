"""The tables of docs/RESULTS.md's issue-4 and issue-7 sections, printed from the committed evaluation reports
(docs/results/generalization/<run>/<evaluation>.json, written by `bash scripts/issue7/regen.sh ... publish`).

    python scripts/issue7/tables.py [--results docs/results/generalization]

Every figure is a report's own `intervals` entry (mean ± half-width of the 95% Student-t interval over the
training seeds), rounded to three places: nothing is recomputed, so a table can be checked against its JSON.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

VAL, TEST, VIEW = "compositional-val", "compositional-test", "viewpoint-test"
ROWS4 = ("RoboAct-CLIP", "ablation 1 (no temporal)", "ablation 2 (no disentanglement)", "frozen backbone (mean-pool)")

# (title, [(row label, run, evaluation, row name)], [(column header, metric key)])
STANDARD = [("v→t R@1", "v2t_r1"), ("t→v R@1", "t2v_r1"), ("action acc", "zs_action"),
            ("object acc", "zs_object"), ("mean abs cos", "mean_abs_cos"),
            ("leak obj←action", "leak_object_from_action"), ("leak action←obj", "leak_action_from_object")]
REVERSAL = [("forward 2-way", "rev_fwd_acc"), ("reversed 2-way", "rev_rev_acc"), ("balanced", "rev_balanced"),
            ("reversed v→t R@1 (opposite caption)", "rev_rev_v2t_r1")]
OPENVOCAB = [("R@1 (all)", "comp_v2t_r1_all"), ("R@5 (all)", "comp_v2t_r5_all"),
             ("R@1 (3 unseen only)", "comp_v2t_r1_unseen"), ("zero-shot action", "comp_action"),
             ("zero-shot object", "comp_object")]
VIEWPOINT = [("action acc", "vp_action"), ("object acc", "vp_object"), ("v→t R@1", "vp_v2t_r1")]


def tables() -> list[tuple[str, list[tuple[str, str, str, str]], list[tuple[str, str]], str | None]]:
    """(title, rows, columns, evaluation whose chance row is shown)."""
    four = lambda run, ev: [(r, run, ev, r) for r in ROWS4]  # noqa: E731
    return [
        ("Held-out episodes of seen pairs (`val`), three seeds", four("base", VAL), STANDARD, VAL),
        ("Time reversal (`val`)", four("base", VAL), REVERSAL, VAL),
        ("Open-vocabulary composition (`test`: the 3 held-out pairs)", four("base", TEST), OPENVOCAB, TEST),
        ("Unseen viewpoint (`test`: corner3 clips; training saw only corner)", four("base", VIEW), VIEWPOINT, VIEW),
        ("`clip_symmetric` (full model)",
         [("symmetric (default)", "base", VAL, "RoboAct-CLIP"), ("video→text only", "asym", VAL, "RoboAct-CLIP")],
         STANDARD[:4] + REVERSAL[1:2], None),
        ("`clip_symmetric`, composition (full model)",
         [("symmetric (default)", "base", TEST, "RoboAct-CLIP"), ("video→text only", "asym", TEST, "RoboAct-CLIP")],
         OPENVOCAB, None),
        ("Reversed clips (`data.reverse_prob` 0.5)",
         [("RoboAct-CLIP, plain, 300 steps", "base", VAL, "RoboAct-CLIP"),
          ("RoboAct-CLIP, reverse_prob 0.5, 300 steps", "rev", VAL, "RoboAct-CLIP"),
          ("RoboAct-CLIP, reverse_prob 0.5, 600 steps", "rev600", VAL, "RoboAct-CLIP"),
          ("ablation 1, plain, 300 steps", "base", VAL, "ablation 1 (no temporal)"),
          ("ablation 1, reverse_prob 0.5, 300 steps", "rev", VAL, "ablation 1 (no temporal)"),
          ("ablation 1, reverse_prob 0.5, 600 steps", "rev600", VAL, "ablation 1 (no temporal)")],
         REVERSAL[1:] + [("val action acc", "zs_action")], VAL),
        ("Reversed clips, composition",
         [("RoboAct-CLIP, plain, 300 steps", "base", TEST, "RoboAct-CLIP"),
          ("RoboAct-CLIP, reverse_prob 0.5, 300 steps", "rev", TEST, "RoboAct-CLIP"),
          ("RoboAct-CLIP, reverse_prob 0.5, 600 steps", "rev600", TEST, "RoboAct-CLIP")],
         OPENVOCAB[:1] + OPENVOCAB[3:], None),
        ("Unseen viewpoint with randomised training views (roboact-sawyer-panda corpus, corner3 held out)",
         four("viewrand", VIEW), VIEWPOINT, VIEW),
        ("The paper's levers on composition (full model)",
         [("defaults (`lambda_recomb` 0.5, `combiner` concat)", "base", TEST, "RoboAct-CLIP"),
          ("`model.lambda_recomb=2.0`", "recomb2", TEST, "RoboAct-CLIP"),
          ("`model.combiner=residual_mlp`", "resmlp", TEST, "RoboAct-CLIP")],
         OPENVOCAB, None),
    ]


def fmt(iv: dict | None) -> str:
    if not iv or iv.get("mean") is None:
        return "–"
    hw = iv.get("half_width")
    return f"{iv['mean']:.3f}" if hw is None else f"{iv['mean']:.3f} ± {hw:.3f}"


def load(results: Path, run: str, ev: str) -> dict | None:
    path = results / run / f"{ev}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def render(results: Path) -> str:
    out = []
    for title, rows, cols, chance_ev in tables():
        lines = [f"#### {title}", "", "| model | " + " | ".join(h for h, _ in cols) + " |",
                 "|---" * (len(cols) + 1) + "|"]
        missing = []
        for label, run, ev, name in rows:
            rep = load(results, run, ev)
            row = next((r for r in rep["rows"] if r["name"] == name), None) if rep else None
            if row is None or row.get("status") != "ok":
                missing.append(f"{run}/{ev}")
                continue
            lines.append(f"| {label} | " + " | ".join(fmt(row["intervals"].get(k)) for _, k in cols) + " |")
        if chance_ev:
            rep = load(results, rows[0][1], chance_ev)
            chance = {} if rep is None else {k: v for s in rep["suites"].values() if s["status"] == "ok"
                                             for k, v in (s.get("chance") or {}).items()}
            lines.append("| chance | " + " | ".join("–" if chance.get(k) is None else f"{chance[k]:.3f}"
                                                    for _, k in cols) + " |")
        if missing:
            lines.append(f"\n(not run yet: {', '.join(sorted(set(missing)))})")
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("docs/results/generalization"))
    print(render(ap.parse_args().results), end="")


if __name__ == "__main__":
    main()
