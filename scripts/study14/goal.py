"""Issue 14's goal, read off the multi-task report that `bash scripts/study14/run.sh grid` writes
(`roboact policy --multitask --chain`, runs/libero10/policy/report.json; its copy under docs/results):

1. one language-conditioned policy on a frozen image encoder reaches >= 80% overall on LIBERO-Goal's ten tasks;
2. the RoboAct-CLIP row is ahead of the backbone row with the 95% intervals apart;
3. the four-stage chain is completed in >= 60% of episodes with the encoder as judge, within 10 points of the
   same policy under the simulator's oracle.

    python scripts/study14/goal.py REPORT.json [--metric final] [--json OUT]

Only rows that hear the instruction count for 1 and 2: the task one-hot is the issue's "upper reference that
cannot generalise", printed beside them but never the answer. For 2 each image row is represented by its best
language-conditioned condition (the like-for-like comparison at each condition is printed too). For 3 the
judge's row is the language-conditioned RoboAct-CLIP row whose judged chain went furthest (a one-hot row's
chains are listed, not counted). Nothing is recomputed except these comparisons (`roboact.utils.stats.lead`);
values are the report's.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from roboact.utils.io import atomic_write_json
from roboact.utils.stats import Interval, lead

LANGUAGE = ("roboact-text", "sentence")        # conditions that hear the instruction (roboact.policy.conditioning)
FIELDS = ("mean", "low", "high", "n", "std")   # an interval as the report stores it (Interval.to_dict)


def fmt(iv: dict) -> str:
    return Interval(**{f: iv.get(f) for f in FIELDS}).fmt()


def condition_of(name: str, conditions: list[str]) -> str | None:
    """A multi-task row is named "<image row> [<condition>]" (roboact.policy.multitask.row_name)."""
    return next((c for c in conditions if name.endswith(f" [{c}]")), None)


def rows_of(report: dict, metric: str) -> list[dict]:
    mt = report.get("multitask")
    if not mt:
        raise SystemExit("not a multi-task report (no 'multitask' section): pass the JSON that "
                         "`roboact policy --multitask` wrote")
    out = []
    for r in report["rows"]:
        cond = condition_of(r["name"], mt["conditions"])
        out.append({"name": r["name"], "kind": r["kind"], "condition": cond, "status": r["status"],
                    "overall": r.get("overall", {}).get(metric) if r["status"] == "ok" else None})
    return out


def _pct(k: dict) -> dict:
    """A chain share (a fraction) as percentage points, like the task table's intervals."""
    return {f: k.get(f) if f == "n" or k.get(f) is None else 100 * k[f] for f in FIELDS}


def chain_verdict(report: dict, target: float, within: float) -> dict:
    """The judged chains of RoboAct-CLIP rows against their own oracle chains, all stages in a row."""
    chain = report.get("chain")
    if not chain:
        return {"met": False, "why": "the report has no chain section (run with --chain)"}
    kinds = {r["name"]: r["kind"] for r in report["rows"]}
    conditions = report["multitask"]["conditions"]
    rows = []
    for r in chain["rows"]:
        sw = r["switches"]
        if kinds.get(r["name"]) != "roboact" or "judge" not in sw:
            continue
        judge, oracle = sw["judge"], sw.get("oracle", {"status": "not run"})
        counted = condition_of(r["name"], conditions) in LANGUAGE
        if judge["status"] != "ok" or oracle["status"] != "ok":
            rows.append({"name": r["name"], "counted": counted,
                         "status": judge["status"] if judge["status"] != "ok" else oracle["status"]})
            continue
        j, o = _pct(judge["in_a_row"][-1]), _pct(oracle["in_a_row"][-1])
        rows.append({"name": r["name"], "counted": counted, "status": "ok", "stages": len(judge["in_a_row"]),
                     "judge": j, "oracle": o,
                     "oracle_minus_judge": o["mean"] - j["mean"], "switching": judge.get("switching"),
                     "met": j["mean"] >= target and o["mean"] - j["mean"] <= within})
    done = [r for r in rows if r["status"] == "ok" and r["counted"]]
    if not done:
        return {"met": False, "why": "no language-conditioned RoboAct-CLIP row has both a judged and an oracle chain",
                "rows": rows}
    best = max(done, key=lambda r: r["judge"]["mean"])
    return {"met": best["met"], "target": target, "within": within, "best": best["name"], "rows": rows}


def verdict(report: dict, metric: str, target: float, chain_target: float, within: float) -> dict:
    rows = rows_of(report, metric)
    ok = [r for r in rows if r["status"] == "ok"]
    lang = [r for r in ok if r["condition"] in LANGUAGE]
    ra = [r for r in lang if r["kind"] == "roboact"]
    bb = [r for r in lang if r["kind"] == "backbone"]
    if not ra or not bb:
        raise SystemExit(f"need a language-conditioned RoboAct-CLIP row and a backbone row that ran; got "
                         f"{[(r['name'], r['status']) for r in rows]}")
    best = max(lang, key=lambda r: r["overall"]["mean"])
    best_ra = max(ra, key=lambda r: r["overall"]["mean"])
    best_bb = max(bb, key=lambda r: r["overall"]["mean"])
    versus = lead(best_ra["overall"], best_bb["overall"], 0.0)
    same = {}
    for cond in LANGUAGE:
        a = [r for r in ra if r["condition"] == cond]
        b = [r for r in bb if r["condition"] == cond]
        if a and b:
            same[cond] = {"roboact": a[0]["name"], "backbone": b[0]["name"], **lead(a[0]["overall"], b[0]["overall"], 0.0)}
    chain = chain_verdict(report, chain_target, within)
    goals = {"overall": best["overall"]["mean"] >= target, "roboact_ahead": versus["met"], "chain": chain["met"]}
    return {"metric": metric, "rows": rows, "best_language_row": best["name"], "target": target,
            "best_roboact": best_ra["name"], "best_backbone": best_bb["name"], "roboact_vs_backbone": versus,
            "same_condition": same, "chain": chain, "goals": goals, "met": all(goals.values())}


def markdown(v: dict) -> str:
    by = {r["name"]: r for r in v["rows"]}
    best = by[v["best_language_row"]]
    lines = [f"1. Best language-conditioned row `{best['name']}` {fmt(best['overall'])} overall ({v['metric']}): "
             f">= {v['target']:g}% **{'met' if v['goals']['overall'] else 'not met'}**."]
    for r in v["rows"]:
        if r["condition"] not in LANGUAGE:
            lines.append(f"   (reference, not counted: `{r['name']}` "
                         f"{fmt(r['overall']) if r['overall'] else r['status']})")
    a, b, vs = by[v["best_roboact"]], by[v["best_backbone"]], v["roboact_vs_backbone"]
    lines.append(f"2. RoboAct-CLIP `{a['name']}` {fmt(a['overall'])} vs backbone `{b['name']}` {fmt(b['overall'])}: "
                 f"{vs['lead']:+.1f} points, intervals {'apart' if vs['intervals_apart'] else 'overlap'}: "
                 f"**{'met' if vs['met'] else 'not met'}**.")
    for cond, s in v["same_condition"].items():
        lines.append(f"   at the same condition ({cond}): {s['lead']:+.1f} points, intervals "
                     f"{'apart' if s['intervals_apart'] else 'overlap'}")
    c = v["chain"]
    if "best" not in c:
        lines.append(f"3. Chain: **not met** ({c['why']}).")
    else:
        r = next(r for r in c["rows"] if r["name"] == c["best"])
        lines.append(f"3. Chain, all {r['stages']} stages in a row, `{r['name']}`: judge {fmt(r['judge'])}, oracle "
                     f"{fmt(r['oracle'])} ({r['oracle_minus_judge']:+.1f} points oracle - judge); >= "
                     f"{c['target']:g}% and within {c['within']:g} points: **{'met' if c['met'] else 'not met'}**.")
    for r in c.get("rows", []):
        if r["name"] != c.get("best"):
            what = (f"judge {fmt(r['judge'])}, oracle {fmt(r['oracle'])}" if r["status"] == "ok" else r["status"])
            lines.append(f"   `{r['name']}`: {what}{'' if r['counted'] else ' (reference, not counted)'}")
    lines.append(f"Goal: **{'met' if v['met'] else 'not met'}**.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, help="the multi-task report JSON (report.json or table2.json)")
    ap.add_argument("--metric", choices=("final", "best"), default="final")
    ap.add_argument("--target", type=float, default=80.0, help="overall success the best policy must reach")
    ap.add_argument("--chain-target", type=float, default=60.0, help="judged chain, all stages in a row (%%)")
    ap.add_argument("--within", type=float, default=10.0, help="judged chain's most points under the oracle's")
    ap.add_argument("--json", type=Path, help="also write the verdict as JSON here")
    args = ap.parse_args()
    v = verdict(json.loads(args.report.read_text()), args.metric, args.target, args.chain_target, args.within)
    print(markdown(v))
    if args.json:
        atomic_write_json(args.json, {"report": str(args.report), **v})


if __name__ == "__main__":
    main()
