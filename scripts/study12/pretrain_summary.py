"""What a pretraining run made, as a small JSON to commit beside the study's tables: the corpus (clips per
split, subject and task, tasks kept out) and each model's last validation metrics.

    python scripts/study12/pretrain_summary.py --manifest runs/pretrain/roboact-sawyer-panda/corpus/merged/manifest.jsonl \
        --model runs/pretrain/roboact-sawyer-panda/models/seed0 [--model ...] --out docs/results/study/new_corpus.json
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))


def last_val(metrics: Path) -> dict:
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    val = [r for r in rows if any(k.startswith("val/") for k in r)]
    if not val:
        raise SystemExit(f"{metrics}: no validation row")
    return {"step": val[-1]["step"], **{k: v for k, v in val[-1].items() if k.startswith("val/")},
            "train_steps": max(r["step"] for r in rows)}


def main() -> None:
    from roboact.data.manifest import read_manifest
    from roboact.train.recipes import corpus_record

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--model", type=Path, action="append", default=[], help="a `roboact train` output folder")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    out = {"command": " ".join(["python", "scripts/study12/pretrain_summary.py", *sys.argv[1:]]),
           **corpus_record(args.manifest),        # what a recipe records as an encoder's corpus
           "splits": dict(Counter(r.split for r in read_manifest(args.manifest))),
           "models": {str(m): last_val(m / "metrics.jsonl") for m in args.model}}
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k not in ("tasks", "excluded")}, indent=1))


if __name__ == "__main__":
    main()
