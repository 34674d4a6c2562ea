"""Issue 12's goal, read off the committed final tables of one or more suites: does the best RoboAct-CLIP row
(no evaluated task seen in pretraining) beat the best frozen-backbone row by >= 5 points overall, with the 95%
intervals apart, and is each ablation below the chosen configuration?

    python scripts/study12/goal.py \
        --suite metaworld docs/results/policy_metaworld_study_{fused_table2,best_table2,best_table3}.json \
        --suite libero_goal docs/results/policy_libero_study_{fused_table2,best_table2,best_table3}.json \
        [--metric final] [--json OUT]

(Table III holds the ablation rows: a RoboAct row there counts for "best RoboAct row" too.)

Rows are read as the reports wrote them (scripts/study12/table.py's `collect`); nothing is recomputed except
the comparison itself (`roboact.utils.stats.lead`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from table import add_suite_args, fmt, suites_rows  # noqa: E402

from roboact.utils.io import atomic_write_json  # noqa: E402
from roboact.utils.stats import lead, t_interval  # noqa: E402


def verdict(rows: list[dict], margin: float, chosen: str, ablations: list[str]) -> dict:
    backbone = [r for r in rows if r["kind"] == "backbone"]
    clean = [r for r in rows if r["kind"] == "roboact" and r["seen"] == []]
    if not backbone or not clean:
        raise SystemExit(f"need a backbone row and a RoboAct-CLIP row with no evaluated task seen; got "
                         f"{[(r['name'], r['kind'], r['seen']) for r in rows]}")
    bb = max(backbone, key=lambda r: r["overall"]["mean"])
    ra = max(clean, key=lambda r: r["overall"]["mean"])
    out = {"best_backbone": _row(bb), "best_roboact": _row(ra), **lead(ra["overall"], bb["overall"], margin),
           "paired": paired(ra, bb)}
    # the ablations' names say "at the chosen configuration" too: the chosen row is the one that is not an ablation
    full = [r for r in clean if chosen in r["name"] and not any(a in r["name"] for a in ablations)]
    if full:
        out["chosen"] = {**_row(full[0]), "vs_best_backbone": {**lead(full[0]["overall"], bb["overall"], margin),
                                                               "paired": paired(full[0], bb)}}
        out["ablations"] = []
        for name in ablations:
            for r in (r for r in rows if name in r["name"]):
                gap = lead(full[0]["overall"], r["overall"], 0.0)       # chosen - ablation
                out["ablations"].append({**_row(r), "below_chosen": gap["lead"] > 0, "minus_chosen": -gap["lead"],
                                         "intervals_apart": gap["intervals_apart"]})
    return out


def paired(a: dict, b: dict) -> dict | None:
    """Supplementary, not the goal's test: the interval of the per-seed difference a - b over the seeds both
    rows ran (seed s of each policy trains on the same demos and is evaluated from the same initial states, and a
    RoboAct row's seed s uses pretraining seed s), which removes the scene-to-scene variance the two rows share."""
    seeds = sorted(set(a["per_seed_overall"]) & set(b["per_seed_overall"]), key=int)
    if len(seeds) < 2:
        return None
    iv = t_interval([a["per_seed_overall"][s] - b["per_seed_overall"][s] for s in seeds])
    return {"seeds": seeds, **iv.to_dict()}


def _row(r: dict) -> dict:
    return {"name": r["name"], "input": r["input"], "overall": r["overall"], "report": r["report"]}


def markdown(suite: str, v: dict, metric: str) -> str:
    lines = [f"**{suite}** ({metric} success): best RoboAct-CLIP row `{v['best_roboact']['name']}` "
             f"({v['best_roboact']['input']}) {fmt(v['best_roboact']['overall'])} vs best frozen-backbone row "
             f"`{v['best_backbone']['name']}` ({v['best_backbone']['input']}) {fmt(v['best_backbone']['overall'])}: "
             f"lead {v['lead']:+.1f} points, intervals {'apart' if v['intervals_apart'] else 'overlap'}; goal "
             f"(>= {v['margin']:g} points, apart) **{'met' if v['met'] else 'not met'}**."
             + (f" Paired over seeds {', '.join(v['paired']['seeds'])}: {fmt(v['paired'])} points (supplementary)."
                if v.get("paired") else "")]
    if "chosen" in v:
        c = v["chosen"]["vs_best_backbone"]
        lines.append(f"- chosen configuration `{v['chosen']['name']}` {fmt(v['chosen']['overall'])}: "
                     f"{c['lead']:+.1f} points against the best backbone row"
                     + (f" (paired over seeds {fmt(c['paired'])})" if c.get("paired") else ""))
    for a in v.get("ablations", []):
        lines.append(f"- `{a['name']}` {fmt(a['overall'])}: {'below' if a['below_chosen'] else 'not below'} the "
                     f"chosen configuration ({a['minus_chosen']:+.1f} points against it; intervals "
                     f"{'apart' if a['intervals_apart'] else 'overlap'})")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_suite_args(ap)
    ap.add_argument("--chosen", default="chosen configuration", help="substring naming the chosen row")
    ap.add_argument("--ablation", nargs="+", default=["Ablation 1", "Ablation 2"])
    ap.add_argument("--json", type=Path, help="also write the verdicts as JSON here")
    args = ap.parse_args()
    out = {}
    for suite, rows in suites_rows(ap, args):
        out[suite] = verdict(rows, args.margin, args.chosen, args.ablation)
        print(markdown(suite, out[suite], args.metric), end="\n\n")
    both = all(v["met"] for v in out.values())
    print(f"Goal on every suite given: **{'met' if both else 'not met'}**")
    if args.json:
        atomic_write_json(args.json, {"metric": args.metric, "suites": out, "met": both})


if __name__ == "__main__":
    main()
