"""Issue 12's final result in one figure: every row's overall success per suite, with each seed's overall as a dot
and the 95% t-interval as a bar, the best backbone row's mean and the goal line (that mean + 5) drawn across.

    python scripts/study12/figure.py \
        --suite metaworld docs/results/policy_metaworld_study_{fused_table2,best_table3}.json \
        --suite libero_goal docs/results/policy_libero_study_{fused_table2,best_table3}.json \
        [--metric final] --out docs/results/study/final_success.png

Rows are read as the reports wrote them (scripts/study12/table.py's `collect`): the figure shows the committed
numbers and nothing else. Seeds as dots because with three seeds the interval alone hides how the seeds spread.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from table import add_suite_args, suites_rows  # noqa: E402

# (substring of a row's name, or of its input for the backbone rows) -> short label; the first match wins
LABELS = (
    ("tokens", "backbone, tokens"),
    ("frozen backbone", "backbone, frame"),
    ("old corpus", "paper-faithful,\nold corpus"),
    ("paper-faithful, new corpus", "paper-faithful,\nnew corpus"),
    ("Ablation 1", "ablation 1\n(no temporal)"),     # before "chosen": their names say "at the chosen ..."
    ("Ablation 2", "ablation 2\n(no disent.)"),
    ("chosen configuration", "chosen\n(fused+frame)"),
)
SUITE_TITLES = {"metaworld": "Meta-World (4 tasks)", "libero_goal": "LIBERO-Goal (the paper's 4 tasks)"}


def label(row: dict) -> str:
    for key, short in LABELS:
        if key in row["name"] or (row["kind"] == "backbone" and key in row["input"]):
            return short
    return row["name"][:24]


def draw(suites: list[tuple[str, list[dict]]], metric: str, margin: float, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from roboact.utils.io import atomic_path

    fig, axes = plt.subplots(1, len(suites), figsize=(6.2 * len(suites), 4.4), sharey=True, squeeze=False)
    for ax, (suite, rows) in zip(axes[0], suites):
        backbone = [r for r in rows if r["kind"] == "backbone"]
        for i, r in enumerate(rows):
            iv = r["overall"]
            colour = "tab:gray" if r["kind"] == "backbone" else "tab:blue"
            ax.bar(i, iv["mean"], 0.7, color=colour, alpha=0.55)
            if iv.get("half_width") is not None:
                ax.errorbar(i, iv["mean"], yerr=iv["half_width"], color="black", capsize=4, lw=1.2)
            seeds = list(r["per_seed_overall"].values())
            xs = [i + (j - (len(seeds) - 1) / 2) * 0.12 for j in range(len(seeds))]
            ax.scatter(xs, seeds, s=14, color="black", zorder=3)
            ax.text(i, 2, f"{iv['mean']:.1f}", ha="center", fontsize=8)
        if backbone:
            best = max(r["overall"]["mean"] for r in backbone)
            ax.axhline(best, color="tab:gray", ls=":", lw=1, label=f"best backbone row ({best:.1f})")
            ax.axhline(best + margin, color="tab:red", ls="--", lw=1, label=f"goal: best backbone + {margin:g}")
        ax.set_xticks(range(len(rows)), [label(r) for r in rows], rotation=35, ha="right", fontsize=8)
        ax.set_title(SUITE_TITLES.get(suite, suite), fontsize=10)
        ax.set_ylim(0, 105)
        ax.legend(fontsize=7, loc="upper right", frameon=False)
    axes[0][0].set_ylabel(f"overall {metric} success (%)\nbar: mean, line: 95% t-interval, dots: seeds")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=130, format="png")
    plt.close(fig)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_suite_args(ap)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    print(draw(suites_rows(ap, args), args.metric, args.margin, args.out))


if __name__ == "__main__":
    main()
