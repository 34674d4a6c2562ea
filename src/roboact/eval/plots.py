"""Figures of the report (matplotlib, Agg backend: no display needed). One panel per evaluated model.

- heatmap.png: video-text cosine similarities, clips sorted by caption, so a model that matches clips
  to their captions shows a bright staircase along the diagonal;
- action_pca.png: the action branch projected on its first two principal components, coloured by action;
- training_curves.png: each row's metrics.jsonl (written by the trainer) overlaid;
- suite_<name>.png (reversal, openvocab, viewpoint): one group of bars per metric, one bar per row, error
  bars the 95% t-interval over seeds (multi-seed rows), a black tick at chance.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

CURVE_KEYS = ("train/clip", "train/total", "val/r1_video_to_text")
MAX_HEATMAP = 60     # clips (and at most as many captions) shown: beyond that cells are sub-pixel
MAX_PCA = 5000       # points projected


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def evenly_spaced(n: int, k: int) -> np.ndarray:
    """k indices spread over range(n) (all of them when n <= k); deterministic."""
    return np.arange(n) if n <= k else np.unique(np.linspace(0, n - 1, k).round().astype(int))


def pca_2d(x: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, 2) coordinates on the first two principal components.

    Eigenvectors of the D x D covariance in float64 (cheaper than an SVD of the N x D data when N >> D).
    Signs are fixed so that each component's largest-magnitude loading is positive: the same input always
    gives the same picture. Fewer than two dimensions are zero-padded.
    """
    xc = torch.as_tensor(x, dtype=torch.float64)
    xc = xc - xc.mean(dim=0, keepdim=True)                                       # (N, D)
    _, vecs = torch.linalg.eigh(xc.T @ xc)                                       # ascending eigenvalues
    comps = vecs.flip(-1)[:, :2].T                                               # (k<=2, D)
    signs = torch.sign(comps[torch.arange(len(comps)), comps.abs().argmax(dim=1)])
    coords = (xc @ (comps * signs[:, None]).T).numpy()                           # (N, k)
    return coords if coords.shape[1] == 2 else np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))


def caption_labels(data) -> list[str]:
    """Short 'action object' label of each distinct caption of the eval split (plus subject when it varies)."""
    es, with_subject = data.eval_set, len(data.vocab.subjects) >= 2
    first = {}
    for r, cid in zip(es.rows, es.caption_ids.tolist()):
        first.setdefault(cid, f"{r.subject} {r.action} {r.object}" if with_subject else f"{r.action} {r.object}")
    return [first[i] for i in range(len(es.captions))]


def _panels(plt, n: int, w: float = 5.5, h: float = 5.0):
    fig, axes = plt.subplots(1, n, figsize=(w * n, h), squeeze=False)
    return fig, axes[0]


def plot_heatmap(path: Path, plot_data: dict, data) -> None:
    plt = _plt()
    order = torch.argsort(data.eval_set.caption_ids, stable=True).numpy()       # clips grouped by caption
    clips = order[evenly_spaced(len(order), MAX_HEATMAP)]
    caps = np.unique(data.eval_set.caption_ids.numpy()[clips])
    labels = caption_labels(data)
    fig, axes = _panels(plt, len(plot_data), 6.5, 6.0)
    for ax, (name, pd) in zip(axes, plot_data.items()):
        im = ax.imshow(pd["sims"].numpy()[np.ix_(clips, caps)], aspect="auto", cmap="viridis")
        ax.set_title(f"{name}: video-text cosine")
        ax.set_xticks(range(len(caps)), [labels[c] for c in caps], rotation=90, fontsize=6)
        ax.set_ylabel(f"{len(clips)} clips, sorted by caption")
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_action_pca(path: Path, plot_data: dict, data) -> None:
    plt = _plt()
    names = data.vocab.actions
    cmap = plt.get_cmap("tab20" if len(names) > 10 else "tab10")
    fig, axes = _panels(plt, len(plot_data))
    for ax, (name, pd) in zip(axes, plot_data.items()):
        keep = evenly_spaced(len(pd["action"]), MAX_PCA)
        x = torch.nn.functional.normalize(pd["action"][keep].float(), dim=-1).numpy()
        xy, lab = pca_2d(x), pd["action_labels"].numpy()[keep]
        for a in np.unique(lab):
            m = lab == a
            ax.scatter(xy[m, 0], xy[m, 1], s=10, color=cmap(int(a) % cmap.N), label=names[a])
        ax.set_title(f"{name}: action branch, PCA")
        ax.set_xlabel("PC1")
        ax.set_ylabel("PC2")
        if len(names) <= 20:
            ax.legend(fontsize=7, markerscale=1.5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def read_metrics(run_dir: str) -> list[dict]:
    """metrics.jsonl lines as dicts; unreadable lines are skipped with a warning (a killed run may leave
    a truncated last line)."""
    out, bad = [], 0
    for line in (Path(run_dir) / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            d = json.loads(line)
            if isinstance(d, dict) and "step" in d:
                out.append(d)
        except json.JSONDecodeError:
            bad += 1
    if bad:
        log.warning("%s/metrics.jsonl: %d unreadable line(s) skipped", run_dir, bad)
    return out


def training_runs(rows) -> dict[str, list[dict]]:
    """{row name: metrics.jsonl lines} for the rows whose run folder has a non-empty metrics.jsonl."""
    runs = {r.name: read_metrics(r.run_dir) for r in rows if r.status == "ok" and r.run_dir}
    return {k: v for k, v in runs.items() if v}


def plot_training_curves(path: Path, runs: dict[str, list[dict]]) -> None:
    plt = _plt()
    fig, axes = _panels(plt, len(CURVE_KEYS), 5.0, 3.8)
    for ax, key in zip(axes, CURVE_KEYS):
        for name, lines in runs.items():
            pts = [(d["step"], d[key]) for d in lines if key in d]
            if pts:
                ax.plot(*zip(*pts), label=name, marker="." if len(pts) < 30 else None)
        ax.set_title(key)
        ax.set_xlabel("step")
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_suite_bars(path: Path, suite: str, rows, data) -> None:
    from roboact.eval.report import SUITE_COLUMNS, suite_chance

    plt = _plt()
    cols, chance = SUITE_COLUMNS[suite], suite_chance(suite, data)
    ok = [r for r in rows if r.status == "ok"]
    width = 0.8 / max(1, len(ok))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(cols) * max(1, len(ok)) ** 0.5), 4.2))
    x = np.arange(len(cols))
    for i, r in enumerate(ok):
        vals = [r.metrics.get(k) for k, _ in cols]
        errs = [(r.intervals.get(k) or {}).get("half_width") for k, _ in cols]
        ax.bar(x + (i - (len(ok) - 1) / 2) * width, [np.nan if v is None else v for v in vals], width,
               yerr=None if all(e is None for e in errs) else [0.0 if e is None else e for e in errs], capsize=3,
               label=f"{r.name} ({len(r.seeds)} seed{'s' if len(r.seeds) != 1 else ''})")
    for j, (k, _) in enumerate(cols):
        if chance.get(k) is not None:
            ax.plot([j - 0.45, j + 0.45], [chance[k]] * 2, color="black", lw=1.2, ls="--")
    ax.set_xticks(x, [h for _, h in cols], rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{suite}: mean over seeds, 95% t-interval; dashed = chance")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(folder: Path, rows, plot_data: dict, data, suites: list[str] = ()) -> dict[str, str]:
    """Write every figure that has data (atomically); returns {figure: path relative to the report folder}."""
    from roboact.utils.io import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    jobs = {}
    if plot_data:
        jobs["heatmap"] = lambda p: plot_heatmap(p, plot_data, data)
        jobs["action_pca"] = lambda p: plot_action_pca(p, plot_data, data)
    runs = training_runs(rows)
    if runs:
        jobs["training_curves"] = lambda p: plot_training_curves(p, runs)
    if any(r.status == "ok" for r in rows):
        for suite in suites:
            if suite != "standard":
                jobs[f"suite_{suite}"] = lambda p, s=suite: plot_suite_bars(p, s, rows, data)
    written = {}
    for name, fn in jobs.items():
        dest = folder / f"{name}.png"
        with atomic_path(dest) as tmp:
            fn(tmp)
        written[name] = f"{folder.name}/{dest.name}"
    return written
