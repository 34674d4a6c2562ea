"""One table from several `roboact policy` reports (issue 12's screening and final grids): every row that ran,
with the output its policy saw, per task and overall, mean ± half-width of the 95% t interval over seeds.

    python scripts/study12/table.py docs/results/study/mw_screen_*.json [--metric final|best] [--json OUT]

Rows are taken as the reports wrote them (no recomputation), so the table is exactly what the committed JSON
says; a row that appears in several reports (the backbone row of each screening command) is listed once per
distinct input and cell settings, from the first report that has it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def fmt(iv: dict) -> str:
    if not iv or iv.get("n", 0) == 0:
        return "-"
    if iv.get("half_width") is None:
        return f"{iv['mean']:.1f} (1 seed)"
    return f"{iv['mean']:.1f} ± {iv['half_width']:.1f}"


def _outcomes(tasks: dict) -> dict:
    """What a row's cells scored, without their timings (newer reports add them), so a row that several
    reports share is recognised as one."""
    return {t: {seed: {k: cell.get(k) for k in ("best", "final", "best_step")}
                for seed, cell in v.get("per_seed", {}).items()} | {"final": v["final"], "best": v["best"]}
            for t, v in tasks.items()}


def collect(paths: list[Path], metric: str) -> tuple[list[str], list[dict]]:
    tasks, rows, seen = None, [], set()
    for p in paths:
        rep = json.loads(p.read_text())
        if tasks is None:
            tasks = rep["tasks"]
        elif rep["tasks"] != tasks:
            raise SystemExit(f"{p}: tasks {rep['tasks']} differ from {tasks} (one table per task list)")
        output = (rep["config"].get("encoder") or {}).get("output", "fused")
        for r in rep["rows"]:
            if r["status"] != "ok":
                continue
            inp = r.get("input") or output
            key = (r["name"], inp, json.dumps(_outcomes(r["tasks"]), sort_keys=True))
            if key in seen:
                continue
            seen.add(key)
            rows.append({"name": r["name"], "kind": r["kind"], "input": inp, "report": str(p),
                         "seen": r.get("pretraining", {}).get("eval_tasks_seen"),
                         "tasks": {t: r["tasks"][t][metric] for t in tasks}, "overall": r["overall"][metric],
                         "per_seed_overall": per_seed_overall(r["tasks"], tasks, metric)})
    return tasks or [], rows


def per_seed_overall(cells: dict, tasks: list[str], metric: str) -> dict[str, float]:
    """Each seed's overall success (%), the tasks averaged within the seed as the reports' overall does; only
    seeds every task has."""
    seeds = set.intersection(*(set(cells[t].get("per_seed", {})) for t in tasks)) if tasks else set()
    return {s: 100 * sum(cells[t]["per_seed"][s][metric] for t in tasks) / len(tasks)
            for s in sorted(seeds, key=int)}


def add_suite_args(ap: argparse.ArgumentParser) -> None:
    """The options every multi-suite reader (goal.py, figure.py) takes."""
    ap.add_argument("--suite", nargs="+", action="append", required=True, metavar=("NAME", "REPORT"),
                    help="a suite's name and its final reports (repeat per suite)")
    ap.add_argument("--metric", choices=("final", "best"), default="final")
    ap.add_argument("--margin", type=float, default=5.0, help="the goal's lead over the best backbone row")


def suites_rows(ap: argparse.ArgumentParser, args: argparse.Namespace) -> list[tuple[str, list[dict]]]:
    """(suite, rows) for each --suite, its reports read by `collect`."""
    out = []
    for name, *reports in args.suite:
        if not reports:
            ap.error(f"--suite {name}: no report files")
        out.append((name, collect([Path(p) for p in reports], args.metric)[1]))
    return out


def markdown(tasks: list[str], rows: list[dict], metric: str) -> str:
    lines = [f"| row | policy input | {' | '.join(tasks)} | overall ({metric}) |",
             "|---" * (len(tasks) + 3) + "|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['input']} | {' | '.join(fmt(r['tasks'][t]) for t in tasks)} | "
                     f"**{fmt(r['overall'])}** |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reports", nargs="+", type=Path)
    ap.add_argument("--metric", choices=("final", "best"), default="final")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args()
    tasks, rows = collect(args.reports, args.metric)
    print(markdown(tasks, rows, args.metric))
    if args.json:
        args.json.write_text(json.dumps({"metric": args.metric, "tasks": tasks, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
