"""Every loss term of the paper, one function each, named after its equation.

All take plain tensors (no module state), so each can be tested against hand-computed values.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def loss_sim_eq11(subject: torch.Tensor, action: torch.Tensor, obj: torch.Tensor, absolute: bool = True) -> torch.Tensor:
    """Eq. 11, minimised: mean over the batch and the three branch pairs of cos (or |cos| with `absolute`).

    The paper prints a minus sign but says it *minimises* the similarity; we follow the text. |cos| stops
    the branches from "escaping" into anti-correlation, which is as entangled as correlation.
    """
    pairs = [(subject, action), (subject, obj), (action, obj)]
    sims = torch.stack([F.cosine_similarity(a, b, dim=-1, eps=1e-8) for a, b in pairs], dim=0)  # (3, B)
    return (sims.abs() if absolute else sims).mean()


def loss_l2_eq12(subject: torch.Tensor, action: torch.Tensor, obj: torch.Tensor, coef: float = 0.01) -> torch.Tensor:
    """Eq. 12: coef * (||Fs||2 + ||Fa||2 + ||Fo||2), averaged over the batch."""
    norms = subject.norm(dim=-1) + action.norm(dim=-1) + obj.norm(dim=-1)  # (B,)
    return coef * norms.mean()


def loss_clip_eq23(video: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor | float,
                   symmetric: bool = True, text_all: torch.Tensor | None = None,
                   video_all: torch.Tensor | None = None, offset: int = 0) -> torch.Tensor:
    """Eq. 23: InfoNCE between L2-normalised video and text vectors, logits = logit_scale * cos = cos / tau.

    - `symmetric` adds the text->video direction (CLIP's usual loss); eq. 23 alone is video->text.
    - Data parallel: pass the features of all ranks as `text_all` / `video_all` (this rank's rows start
      at `offset`); the local rows are the queries.
    - Clips sharing a caption in a batch are not false negatives here: their text rows are identical,
      and cross-entropy over identical columns equals a multi-positive target (checked in the tests).
    """
    v = F.normalize(video, dim=-1)
    t = F.normalize(text, dim=-1)
    t_all = t if text_all is None else F.normalize(text_all, dim=-1)
    v_all = v if video_all is None else F.normalize(video_all, dim=-1)
    targets = torch.arange(v.shape[0], device=v.device) + offset                          # (B,)
    loss = F.cross_entropy(logit_scale * v @ t_all.T, targets)                             # video -> text
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(logit_scale * t @ v_all.T, targets))         # text -> video
    return loss


def loss_recomb_eq19(recombined: torch.Tensor, recomb_text: torch.Tensor, logit_scale: torch.Tensor | float) -> torch.Tensor:
    """Eq. 19: each recombined bank vector (from triplet a) must pick its own caption T^a among the
    captions of all sampled triplets b in M. Rows must be distinct triplets."""
    r = F.normalize(recombined, dim=-1)
    t = F.normalize(recomb_text, dim=-1)
    logits = logit_scale * r @ t.T                                                         # (M, M)
    return F.cross_entropy(logits, torch.arange(r.shape[0], device=r.device))


def loss_disent_eq20(l_sim: torch.Tensor, l_l2: torch.Tensor, l_recomb: torch.Tensor,
                     lambda_ortho: float, lambda_recomb: float) -> torch.Tensor:
    """Eq. 20: lambda_ortho * (L_sim + L_L2) + lambda_recomb * L_recomb."""
    return lambda_ortho * (l_sim + l_l2) + lambda_recomb * l_recomb


def loss_aux_eq22(logits: dict[str, torch.Tensor], labels: dict[str, torch.Tensor],
                  alphas: dict[str, float]) -> torch.Tensor:
    """Eq. 22: sum over factors of alpha_f * CE(P_f, y_f). (The paper's leading minus belongs to the
    log-likelihood form; cross-entropy is already non-negative.) Factors with one class carry no signal
    and are skipped; labels < 0 are ignored."""
    total = None
    for f, lg in logits.items():
        if lg.shape[-1] < 2 or f not in labels:
            continue
        term = alphas.get(f, 1.0) * F.cross_entropy(lg, labels[f].long(), ignore_index=-1)
        total = term if total is None else total + term
    if total is None:
        return next(iter(logits.values())).new_zeros(()) if logits else torch.zeros(())
    return total


def loss_total_eq24(l_clip: torch.Tensor, l_disent: torch.Tensor, l_aux: torch.Tensor,
                    lambda_disent: float, lambda_aux: float) -> torch.Tensor:
    """Eq. 24: L_CLIP + lambda_disent * L_disent-enhanced + lambda_aux * L_aux."""
    return l_clip + lambda_disent * l_disent + lambda_aux * l_aux


# --- beyond the paper: terms that keep what control needs (off by default; docs/model.md) -------------------

def tcn_draws(batch: int, tokens: int, generator: torch.Generator | None = None
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """R3M's sampling for `loss_tcn`: per clip three distinct positions a < b < c, uniformly, and per clip
    another clip of the batch (a shift by 1..B-1, so never itself; R3M's permutation can pick the clip
    itself). Returns ((B, 3) positions, (B,) other clip or None for a batch of one). On the CPU, from
    `generator` (None: torch's global RNG), so a seeded caller draws the same on every device."""
    if tokens < 3:
        raise ValueError(f"the time-contrastive term needs at least 3 per-frame states (4 frames), got {tokens}")
    pos = torch.rand(batch, tokens, generator=generator).argsort(dim=1)[:, :3].sort(dim=1).values  # (B, 3)
    if batch < 2:
        return pos, None
    shift = int(torch.randint(1, batch, (1,), generator=generator))
    return pos, (torch.arange(batch) + shift) % batch


def loss_tcn(states: torch.Tensor, pos: torch.Tensor, other: torch.Tensor | None) -> torch.Tensor:
    """R3M's time-contrastive loss (Nair et al. 2022) on per-frame states (B, T, W), positions from `tcn_draws`.

    Two InfoNCE problems per clip: anchor c must pick b (nearer in time) over a, and anchor a must pick b
    over c; each also over the same-role state of another clip (R3M's negative from another video).
    Similarity = -||x - y||^2 / W: R3M's code uses -||x - y||; squared is smooth where states coincide
    (repeated frames make equal difference tokens), and /W keeps logits O(1) at any width.
    """
    rows = torch.arange(states.shape[0], device=states.device)[:, None]
    a, b, c = states[rows, pos.to(states.device)].unbind(1)                                 # 3x (B, W)

    def sim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -(x - y).pow(2).mean(-1)                                                    # (B,)

    from_c, from_a = [sim(c, b), sim(c, a)], [sim(a, b), sim(a, c)]                         # positive first
    if other is not None:
        other = other.to(states.device)
        from_c.append(sim(c, c[other]))
        from_a.append(sim(a, a[other]))
    logits = torch.cat([torch.stack(from_c, -1), torch.stack(from_a, -1)])                  # (2B, K)
    return F.cross_entropy(logits, logits.new_zeros(logits.shape[0], dtype=torch.long))


def loss_frame(decoded: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """Mean squared error between decoded (B, k, d) and the frozen frame features (B, k, d) they must rebuild,
    the latter LayerNorm-ed without learned parameters: a fixed target of unit scale on any backbone (the
    model's own input LayerNorm could shrink to make it trivial). MSE rather than cosine because a
    LayerNorm-ed target has a fixed norm anyway, and explained variance (1 - MSE) is what the probes score."""
    target = F.layer_norm(frames.detach().float(), frames.shape[-1:])
    return F.mse_loss(decoded.float(), target)


def uniform_clip_loss(n: int) -> float:
    """Value of eq. 23 when all logits are equal: log N (a reference for tests and sanity checks)."""
    return math.log(n)
