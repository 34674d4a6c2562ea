"""Evaluation metrics as pure functions on tensors: no model, no files, no globals.

Ties are counted against the model everywhere (a caption that scores exactly as high as the right one
outranks it), so a constant similarity matrix scores 0 at R@1 instead of whatever order `topk` happens to pick.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, D), (M, D) -> (N, M) cosine similarities."""
    return F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T


def _check_sims(sims: torch.Tensor, caption_ids: torch.Tensor, k: int) -> None:
    if sims.ndim != 2:
        raise ValueError(f"similarity matrix must be (clips, captions), got shape {tuple(sims.shape)}")
    if caption_ids.shape != (sims.shape[0],):
        raise ValueError(f"caption_ids must have shape ({sims.shape[0]},), got {tuple(caption_ids.shape)}")
    if len(caption_ids) and (int(caption_ids.min()) < 0 or int(caption_ids.max()) >= sims.shape[1]):
        raise ValueError(f"caption_ids must index the {sims.shape[1]} captions, got range "
                         f"[{int(caption_ids.min())}, {int(caption_ids.max())}]")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def recall_video_to_text(sims: torch.Tensor, caption_ids: torch.Tensor, k: int) -> float:
    """Fraction of clips whose own caption is among the top k of the distinct captions.

    sims: (N clips, C distinct captions); caption_ids: (N,) index of each clip's caption. A clip's rank is
    the number of *other* captions scoring >= its own caption (ties against the model); hit if rank < k.
    """
    _check_sims(sims, caption_ids, k)
    if len(caption_ids) == 0:
        return float("nan")
    pos = sims.gather(1, caption_ids[:, None])                                   # (N, 1)
    rank = (sims >= pos).sum(dim=1) - 1                                          # (N,) others at or above
    return float((rank < k).float().mean())


def recall_text_to_video(sims: torch.Tensor, caption_ids: torch.Tensor, k: int) -> float:
    """Fraction of captions (those with at least one clip) for which some clip with that caption is
    among the top k clips. Several clips share a caption: the best-scoring one counts, and only clips
    with *other* captions can push it down (ties against the model)."""
    _check_sims(sims, caption_ids, k)
    present = torch.unique(caption_ids)
    if len(present) == 0:
        return float("nan")
    s = sims[:, present]                                                         # (N, P)
    is_pos = caption_ids[:, None] == present[None, :]                            # (N, P)
    best_pos = s.masked_fill(~is_pos, -math.inf).max(dim=0).values               # (P,)
    rank = ((s >= best_pos[None, :]) & ~is_pos).sum(dim=0)                       # (P,) negatives at or above
    return float((rank < k).float().mean())


def chance_video_to_text(n_captions: int, k: int) -> float:
    """Expected R@k of a random ranking: the right caption is one of n, so P(top k) = k/n."""
    return min(1.0, k / n_captions) if n_captions else float("nan")


def chance_text_to_video(caption_ids: torch.Tensor, k: int) -> float:
    """Expected t->v R@k of a random ranking of N clips: for a caption with m clips,
    P(at least one in top k) = 1 - C(N-m, k) / C(N, k); averaged over the captions present."""
    n = len(caption_ids)
    if n == 0:
        return float("nan")
    counts = torch.bincount(caption_ids).tolist()
    probs = [1.0 - math.comb(n - m, k) / math.comb(n, k) if k <= n else 1.0 for m in counts if m > 0]
    return float(np.mean(probs))


def factor_accuracy(feats: torch.Tensor, class_feats: torch.Tensor, labels: torch.Tensor) -> float:
    """Zero-shot accuracy: each clip's branch feature (N, D) is assigned the class whose text feature
    (K, D) is most cosine-similar; fraction equal to `labels` (N,)."""
    if feats.shape[0] != labels.shape[0]:
        raise ValueError(f"{feats.shape[0]} features but {labels.shape[0]} labels")
    if feats.shape[1] != class_feats.shape[1]:
        raise ValueError(f"features have width {feats.shape[1]}, class features {class_feats.shape[1]}")
    if len(labels) == 0:
        return float("nan")
    pred = cosine_matrix(feats, class_feats).argmax(dim=1)                       # (N,)
    return float((pred == labels).float().mean())


PAIRS = (("subject", "action"), ("subject", "object"), ("action", "object"))


def mean_abs_cos(branches: dict[str, torch.Tensor]) -> dict[str, float]:
    """Mean over clips of |cos| between each pair of branch features, and the mean over the three pairs
    ("mean"). 0 = orthogonal branches; the paper's eq. 11 pushes this down."""
    out = {}
    for a, b in PAIRS:
        cos = F.cosine_similarity(branches[a].float(), branches[b].float(), dim=-1)   # (N,)
        out[f"{a}-{b}"] = float(cos.abs().mean())
    out["mean"] = float(np.mean([out[f"{a}-{b}"] for a, b in PAIRS]))
    return out


@dataclass
class ProbeResult:
    """Linear-probe accuracy on the eval split, and the two reference rates it should be read against."""
    accuracy: float
    chance: float          # eval split's majority-class rate: the best any constant guess can score there
    constant_probe: float  # train split's majority class scored on the eval split: a probe fed no information
    n_train: int
    n_eval: int
    n_classes: int
    converged: bool      # lbfgs stopped before max_iter (if not, the accuracy is that of a nearly fitted probe)


def leakage_probe(train_x: torch.Tensor, train_y: torch.Tensor, eval_x: torch.Tensor, eval_y: torch.Tensor,
                  seed: int = 0, max_iter: int = 1000) -> ProbeResult | None:
    """How much of a factor can be read linearly from another factor's branch (lower = less leakage).

    Standardised features -> multinomial LogisticRegression (lbfgs, C=1), trained on the train split,
    scored on the eval split. None when the train labels have a single class (nothing to probe).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ytr, yev = train_y.cpu().numpy(), eval_y.cpu().numpy()
    classes, counts = np.unique(ytr, return_counts=True)
    if len(classes) < 2 or len(yev) == 0:
        return None
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=seed))
    with warnings.catch_warnings():  # non-convergence is recorded in the result instead
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(train_x.float().cpu().numpy(), ytr)
    acc = float((probe.predict(eval_x.float().cpu().numpy()) == yev).mean())
    chance = float(np.unique(yev, return_counts=True)[1].max() / len(yev))
    constant = float((yev == classes[np.argmax(counts)]).mean())
    converged = int(np.max(probe[-1].n_iter_)) < max_iter
    return ProbeResult(acc, chance, constant, len(ytr), len(yev), len(classes), converged)
