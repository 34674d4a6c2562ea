"""Mutation testing of the modules where a silent error changes a published number (issue 18): for each
module, mutmut mutates that one file and runs only the test files that exercise it, then the per-module
counts go to docs/results/mutation/ (one JSON per module and summary.md). Not in CI: it takes tens of
minutes; run it before a release (docs/testing.md).

    .venv/bin/pip install -e '.[mutation]'
    .venv/bin/python scripts/mutation.py                      # every module
    .venv/bin/python scripts/mutation.py stats metrics        # some of them
    .venv/bin/python scripts/mutation.py --summary-only       # rebuild summary.md from the JSONs

Each module runs in its own scratch copy, build/mutation/NAME/ (git-ignored): src/, tests/ and
pyproject.toml with a [tool.mutmut] section for that module, and mutmut's mutants/ inside it. The source
tree is never written. Mutants that cannot change any observable behaviour are listed with the reason in
docs/results/mutation/equivalent.json (by mutant name *and* diff, so a stale entry is not silently
trusted) and left out of the kill rate; every other mutant that is not killed counts against it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from roboact.utils.io import atomic_write_json, atomic_write_text  # noqa: E402

OUT = ROOT / "docs" / "results" / "mutation"
SCRATCH = ROOT / "build" / "mutation"
GOAL = 90.0


@dataclass(frozen=True)
class Target:
    source: str                      # the one file mutated
    tests: tuple[str, ...]           # pytest arguments that select the tests exercising it
    scope: tuple[str, ...] = ()      # functions counted in the kill rate (empty: the whole file)
    scope_label: str = ""            # a few words for the summary table
    why_scope: str = ""


TARGETS = {
    "losses": Target("src/roboact/models/losses.py",
                     ("tests/models/test_losses.py", "tests/models/test_roboact_clip.py")),
    "roboact_clip": Target(
        "src/roboact/models/roboact_clip.py",
        ("tests/models/test_roboact_clip.py", "tests/models/test_losses.py"),
        scope=("RoboActOutput.loss", "RoboActCLIP.temperature_scale", "RoboActCLIP.compute_losses",
               "RoboActCLIP._clip_loss", "RoboActCLIP.frame_loss", "RoboActCLIP.recomb_loss"),
        scope_label="loss assembly",
        why_scope="loss assembly: the functions that turn the model's outputs into the training loss"),
    "checkpoint": Target("src/roboact/train/checkpoint.py",
                         ("tests/train/test_checkpoint.py", "tests/train/test_train.py", "-k",
                          # not the SIGTERM test: its training runs in a subprocess and costs 8 s a mutant;
                          # the in-process resume tests go through the same save and load
                          "(resume or checkpoint or overwrite or lowers_the_loss or forgets_metrics or "
                          "round_trips) and not sigterm")),
    "report": Target(
        "src/roboact/policy/report.py", ("tests/policy/test_report.py",),
        scope=("RowReport.interval", "RowReport.overall", "build_report", "_cell", "table_markdown", "to_markdown",
               "bar_chart"),
        scope_label="tables and the bar chart, not the rollout strip",
        why_scope="the tables' numbers, their markdown and the bar chart that plots them; rollout_figure shows "
                  "video frames of recorded rollouts, no number"),
    "stats": Target("src/roboact/utils/stats.py", ("tests/policy/test_stats.py", "tests/eval/test_suites.py")),
    "metrics": Target("src/roboact/eval/metrics.py", ("tests/eval/test_metrics.py",)),
}

# mutmut's `results --all true` words, grouped into what the table reports
KILLED, SURVIVED, NO_TESTS, TIMEOUT, OTHER = "killed", "survived", "no tests", "timeout", "other"


def mutmut_bin() -> str:
    exe = Path(sys.executable).parent / "mutmut"
    if not exe.exists():
        sys.exit(f"mutation.py: {exe} not found; install the tool with: {sys.executable} -m pip install -e "
                 f"'.[mutation]'")
    return str(exe)


def prepare(name: str, t: Target) -> Path:
    """A fresh scratch copy (results of an earlier run are dropped: mutmut caches by the mutated function's
    text, not by the tests, so new tests would not be rerun against old survivors)."""
    d = SCRATCH / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "src", d / "src", ignore=ignore)
    shutil.copytree(ROOT / "tests", d / "tests", ignore=ignore)
    pyproject = (ROOT / "pyproject.toml").read_text()
    if "[tool.mutmut]" in pyproject:
        sys.exit("mutation.py: pyproject.toml already has [tool.mutmut]; this script writes its own per module")
    conf = {"source_paths": ["src"], "only_mutate": [t.source],
            "pytest_add_cli_args_test_selection": list(t.tests),
            "pytest_add_cli_args": ["-p", "no:cacheprovider"],
            # with plain fork (mutmut's default) and torch's own thread count, every losses.py mutant ran ~40x
            # longer than its tests and timed out; a fork server (mutmut's advice for torch) plus one thread
            # per worker (env()) ran them at normal speed
            "process_isolation": "forkserver",
            # generous: this runs on shared machines, where a slow mutant must not pass for a killed one
            "timeout_multiplier": 30.0, "timeout_constant": 10.0}
    lines = [f"{k} = {json.dumps(v)}" for k, v in conf.items()]
    (d / "pyproject.toml").write_text(pyproject + "\n[tool.mutmut]\n" + "\n".join(lines) + "\n")
    return d


def env() -> dict:
    e = dict(os.environ)
    e.pop("PYTHONPATH", None)    # the mutants must be what `import roboact` finds
    # mutmut runs one worker per core; one thread each keeps them from oversubscribing the cores
    e.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return e


def function_of(key: str, module: str) -> str:
    """'roboact.utils.stats.xǁIntervalǁfmt__mutmut_4' -> 'Interval.fmt'."""
    local = key[len(module) + 1:].rsplit("__mutmut_", 1)[0]
    local = local[2:] if local.startswith("x_") else local.removeprefix("x")
    return local.strip("ǁ").replace("ǁ", ".")


DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
json.dump({k: get_diff_for_mutant(k) for k in json.load(sys.stdin)}, sys.stdout)
"""


def diffs_of(d: Path, keys: list[str]) -> dict[str, str]:
    """The changed lines of each mutant, in one process (`mutmut show` per mutant costs a second each)."""
    res = subprocess.run([sys.executable, "-c", DIFFS], cwd=d, env=env(), input=json.dumps(keys),
                         capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"mutation.py: reading the mutants' diffs in {d} failed:\n{res.stderr[-3000:]}")
    return {k: "\n".join(line for line in v.splitlines()
                         if line[:1] in "+-" and not line.startswith(("---", "+++")))
            for k, v in json.loads(res.stdout).items()}


def classify(status: str) -> str:
    if status == "killed":
        return KILLED
    if status == "survived":
        return SURVIVED
    if status == "no tests":
        return NO_TESTS
    if status == "timeout":
        return TIMEOUT
    return OTHER


def run_module(name: str, t: Target, equivalent: dict) -> dict:
    d = prepare(name, t)
    started = dt.datetime.now().astimezone()
    t0 = time.perf_counter()
    with open(d / "run.log", "w") as log:
        rc = subprocess.run(["nice", "-n", "10", mutmut_bin(), "run"], cwd=d, env=env(), stdout=log,
                            stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t0
    if rc != 0:
        tail = (d / "run.log").read_text(errors="replace")[-3000:]
        sys.exit(f"mutation.py: mutmut failed for {name} (rc={rc}); see {d / 'run.log'}:\n{tail}")
    atomic_write_json(d / "run.json", {"date": started.isoformat(timespec="seconds"), "wall_s": round(wall, 1)})
    return score(name, t, equivalent)


def score(name: str, t: Target, equivalent: dict) -> dict:
    """Counts from the finished run in build/mutation/NAME (rerun alone with --rescore, e.g. after editing
    equivalent.json)."""
    d = SCRATCH / name
    if not (d / "run.json").exists():
        sys.exit(f"mutation.py: no finished run of {name} in {d}; run it first")
    run = json.loads((d / "run.json").read_text())
    res = subprocess.run([mutmut_bin(), "results", "--all", "true"], cwd=d, env=env(), capture_output=True,
                         text=True)
    if res.returncode != 0:
        sys.exit(f"mutation.py: `mutmut results` failed in {d}:\n{res.stderr[-3000:]}")
    module = t.source.removeprefix("src/").removesuffix(".py").replace("/", ".")
    statuses = {}
    for line in res.stdout.splitlines():
        m = re.match(r"\s*(\S+): (.+)$", line)
        if m and m.group(1).startswith(module + "."):
            statuses[m.group(1)] = m.group(2).strip()
    if not statuses:
        sys.exit(f"mutation.py: no mutants reported for {name}; see {d / 'run.log'}")

    eq = equivalent.get(name, {})
    counts = {k: 0 for k in (KILLED, SURVIVED, NO_TESTS, TIMEOUT, OTHER, "equivalent")}
    outside = {True: 0, False: 0}     # mutants in functions outside the scope: killed or not
    not_killed = []
    diffs = diffs_of(d, [k for k, v in statuses.items() if classify(v) != KILLED
                         and (not t.scope or function_of(k, module) in t.scope)])
    for key, status in sorted(statuses.items(), key=lambda kv: _natural(kv[0])):
        fn = function_of(key, module)
        group = classify(status)
        if t.scope and fn not in t.scope:
            outside[group == KILLED] += 1
            continue
        if group == KILLED:
            counts[KILLED] += 1
            continue
        entry = {"mutant": key, "function": fn, "status": status, "diff": diffs[key]}
        known = eq.get(key)
        if known is not None and group == SURVIVED:
            if known["diff"] == entry["diff"]:
                counts["equivalent"] += 1
                entry["equivalent"] = known["reason"]
                not_killed.append(entry)
                continue
            entry["stale_equivalent_entry"] = "equivalent.json names this mutant with another diff; not trusted"
        counts[group] += 1
        not_killed.append(entry)
    counted = sum(counts[k] for k in (KILLED, SURVIVED, NO_TESTS, TIMEOUT, OTHER))
    report = {
        "module": t.source, "tests": list(t.tests), "scope": list(t.scope) or "whole file",
        "scope_label": t.scope_label or None,
        "why_scope": t.why_scope or None,
        "tool": f"mutmut {_version()}", "command": f"python scripts/mutation.py {name}",
        "date": run["date"], "wall_s": run["wall_s"],
        "total_mutants": len(statuses), "counts": counts, "counted": counted,
        "outside_scope": {"killed": outside[True], "not_killed": outside[False]} if t.scope else None,
        "killed_pct": round(100 * counts[KILLED] / counted, 1) if counted else None,
        "rule": "killed / (all in scope - equivalent); survived, no tests, timeout and other count against",
        "not_killed": not_killed,
    }
    atomic_write_json(OUT / f"{name}.json", report)
    return report


def _natural(key: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key)]


def _version() -> str:
    out = subprocess.run([mutmut_bin(), "--version"], capture_output=True, text=True).stdout
    return out.strip().rsplit(" ", 1)[-1]


def before_pct(name: str, equivalent: dict) -> str:
    """Kill rate of the first run, before the tests written for this check (baseline/NAME.json), with the
    same equivalent mutants left out."""
    p = OUT / "baseline" / f"{name}.json"
    if not p.exists():
        return "-"
    r = json.loads(p.read_text())
    eq = equivalent.get(name, {})
    n_eq = sum(1 for e in r["not_killed"] if e["mutant"] in eq and eq[e["mutant"]]["diff"] == e["diff"]
               and "function" in e and e.get("status") == "survived")
    counted = r["counted"] + r["counts"].get("equivalent", 0) - n_eq
    return f"{100 * r['counts']['killed'] / counted:.1f}"


def summary(equivalent: dict) -> str:
    rows = ["| module | scope | mutants | killed | survived | no tests | timeout | other | equivalent | "
            f"killed % (goal {GOAL:.0f}) | before the new tests | run (s) | date |", "|" + "---|" * 13]
    for name in TARGETS:
        p = OUT / f"{name}.json"
        if not p.exists():
            rows.append(f"| {TARGETS[name].source} | not run yet |" + " |" * 11)
            continue
        r = json.loads(p.read_text())
        c = r["counts"]
        scope = "whole file"
        if r["scope"] != "whole file":
            o = r["outside_scope"]
            scope = (f"{r['scope_label']}: {len(r['scope'])} functions; outside them "
                     f"{o['killed']}/{o['killed'] + o['not_killed']} killed")
        mark = "" if (r["killed_pct"] or 0) >= GOAL else " (below goal)"
        rows.append(f"| {r['module']} | {scope} | {r['counted'] + c['equivalent']} | {c['killed']} | "
                    f"{c['survived']} | {c['no tests']} | {c['timeout']} | {c['other']} | {c['equivalent']} | "
                    f"{r['killed_pct']}{mark} | {before_pct(name, equivalent)} | {r['wall_s']:.0f} | {r['date'][:10]} |")
    eq_rows = ["| module | mutant | change | why it cannot change behaviour |", "|---|---|---|---|"]
    for name in TARGETS:
        p = OUT / f"{name}.json"
        if not p.exists():
            continue
        for e in json.loads(p.read_text())["not_killed"]:
            if "equivalent" in e:
                change = e["diff"].replace("\n", " → ").replace("|", "\\|")
                eq_rows.append(f"| {name} | {e['mutant'].rsplit('.', 1)[-1]} | `{change}` | {e['equivalent']} |")
    text = ("# Mutation testing: killed / survived per module\n\n"
            "Written by `python scripts/mutation.py` (see docs/testing.md) from the per-module JSONs next to this "
            "file, which list every mutant that was not killed with its diff. \"before the new tests\": the first run "
            "(baseline/), scored with the same equivalent mutants left out.\n\n" + "\n".join(rows) + "\n\n"
            "## Equivalent mutants (left out of the kill rate)\n\n" + "\n".join(eq_rows) + "\n")
    atomic_write_text(OUT / "summary.md", text)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", metavar="MODULE", help=f"some of {', '.join(TARGETS)} (default: all)")
    ap.add_argument("--summary-only", action="store_true", help="only rebuild summary.md from the JSONs")
    ap.add_argument("--rescore", action="store_true",
                    help="rewrite the JSONs from the last run in build/mutation/ without running mutmut again")
    args = ap.parse_args(argv)
    bad = [m for m in args.modules if m not in TARGETS]
    if bad:
        ap.error(f"unknown module(s) {bad}; choose from {', '.join(TARGETS)}")
    OUT.mkdir(parents=True, exist_ok=True)
    eq_path = OUT / "equivalent.json"
    equivalent = json.loads(eq_path.read_text()) if eq_path.exists() else {}
    unknown = set(equivalent) - set(TARGETS)
    if unknown:
        sys.exit(f"mutation.py: {eq_path} names unknown modules {sorted(unknown)}; known: {list(TARGETS)}")
    if not args.summary_only:
        for name in args.modules or list(TARGETS):
            if not args.rescore:
                print(f"[mutation] {name}: mutating {TARGETS[name].source} ...", flush=True)
            r = (score if args.rescore else run_module)(name, TARGETS[name], equivalent)
            print(f"[mutation] {name}: {r['counts']} -> {r['killed_pct']}% killed in {r['wall_s']:.0f} s",
                  flush=True)
    print(summary(equivalent))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
