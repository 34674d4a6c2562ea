"""The judge's figure: the detector score per frame, one line per text, an optional threshold line and an
optional marked frame (the oracle's success frame); with >= 2 texts a second panel shows the raw cosines,
since the softmax hides how similar the video is to any of them."""
from __future__ import annotations

import os
from pathlib import Path

from roboact.eval.plots import _plt
from roboact.utils.io import atomic_path


def plot_scores(path: str | os.PathLike, result, threshold: float | None = None, mark: int | None = None,
                mark_label: str = "success") -> Path:
    plt = _plt()
    panels = 2 if result.prob is not None else 1
    fig, axes = plt.subplots(panels, 1, figsize=(8, 3.2 * panels), sharex=True, squeeze=False)
    x = result.times
    unit = "time (s)" if result.fps else "frame"
    curves = [(axes[0, 0], result.score, result.score_name)]
    if panels == 2:
        curves.append((axes[1, 0], lambda k: result.cosine[:, k], "cosine similarity"))
    for ax, get, label in curves:
        for k, text in enumerate(result.texts):
            ax.plot(x, get(k), label=_short(text), lw=1.5)
        ax.set_ylabel(label)
        if mark is not None:
            ax.axvline(x[mark], color="k", ls=":", lw=1, label=f"{mark_label} (frame {mark})")
    if threshold is not None:
        axes[0, 0].axhline(threshold, color="r", ls="--", lw=1, label=f"threshold {threshold:g}")
    axes[0, 0].legend(fontsize=7, loc="best")
    axes[0, 0].set_title(f"{Path(result.source).name if result.source else 'video'}: {result.embedding} "
                         f"embedding, {result.window}-frame window (stride {result.stride})", fontsize=9)
    axes[-1, 0].set_xlabel(unit)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path


def _short(text: str, n: int = 48) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
