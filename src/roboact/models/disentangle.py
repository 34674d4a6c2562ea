"""Feature disentanglement (paper eqs. 9-22): one fused video vector split into subject / action / object.

Components: token self-attention (eq. 9), three branch MLPs (eq. 10), per-factor feature banks (eqs.
13-16), the Combiner that rebuilds a video vector from bank entries (eq. 17), and auxiliary classifiers
(eq. 21). The loss terms themselves live in `roboact.models.losses`.
"""
from __future__ import annotations

import torch
from torch import nn

from roboact.models.config import FACTORS, RoboActConfig


def mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))


class TokenSelfAttention(nn.Module):
    """Eq. 9 made meaningful: self-attention over a short token sequence, pooled back to one vector.

    "split" cuts Fv into k chunks (k tokens of width 3D/k) and reassembles them; "parts" attends over the
    projected parts of eq. 8 plus Fv and mean-pools. Both keep a residual to Fv, so at initialisation
    F_attn is close to Fv.
    """

    def __init__(self, cfg: RoboActConfig, part_dims: list[int]):
        super().__init__()
        self.mode, self.k = cfg.attn_mode, cfg.attn_tokens
        width = cfg.fused_dim // self.k if self.mode == "split" else cfg.fused_dim
        if self.mode == "parts":
            self.part_proj = nn.ModuleList(nn.Linear(d, width) for d in part_dims)
        self.norm = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, cfg.attn_heads, batch_first=True)
        self.out_norm = nn.LayerNorm(cfg.fused_dim)

    def forward(self, fv: torch.Tensor, parts: list[torch.Tensor]) -> torch.Tensor:
        b = fv.shape[0]
        if self.mode == "split":
            tokens = fv.view(b, self.k, -1)                                              # (B, k, 3D/k)
        else:
            tokens = torch.stack([p(x) for p, x in zip(self.part_proj, parts)] + [fv], 1)  # (B, P+1, 3D)
        t = self.norm(tokens)
        attended, _ = self.attn(t, t, t, need_weights=False)
        tokens = tokens + attended
        pooled = tokens.reshape(b, -1) if self.mode == "split" else fv + attended.mean(1)  # (B, 3D)
        return self.out_norm(pooled)


class Branches(nn.Module):
    """Eq. 10: F_subject, F_action, F_object = MLP_f(F_attn)."""

    def __init__(self, cfg: RoboActConfig):
        super().__init__()
        self.mlps = nn.ModuleDict({f: mlp(cfg.fused_dim, cfg.branch_hidden, cfg.embed_dim) for f in FACTORS})

    def forward(self, f_attn: torch.Tensor) -> dict[str, torch.Tensor]:
        return {f: m(f_attn) for f, m in self.mlps.items()}                             # each (B, D)


class AuxClassifiers(nn.Module):
    """Eq. 21: per-factor classifiers, on each branch's own feature ("branch") or on F_attn ("attn")."""

    def __init__(self, cfg: RoboActConfig):
        super().__init__()
        self.on = cfg.aux_on
        in_dim = cfg.embed_dim if self.on == "branch" else cfg.fused_dim
        self.heads = nn.ModuleDict({f: mlp(in_dim, cfg.aux_hidden, cfg.num_classes(f))
                                    for f in FACTORS if cfg.num_classes(f) >= 1})

    def forward(self, branches: dict[str, torch.Tensor], f_attn: torch.Tensor) -> dict[str, torch.Tensor]:
        return {f: h(branches[f] if self.on == "branch" else f_attn) for f, h in self.heads.items()}  # logits (B, K_f)


class FeatureBanks(nn.Module):
    """Eqs. 13-16: one slot per class and factor, holding the (detached) branch feature of the last
    instance of that class seen on an update step. Buffers, so they are saved with the checkpoint."""

    def __init__(self, cfg: RoboActConfig):
        super().__init__()
        for f in FACTORS:
            k = cfg.num_classes(f)
            self.register_buffer(f"{f}_bank", torch.zeros(k, cfg.embed_dim))
            self.register_buffer(f"{f}_filled", torch.zeros(k, dtype=torch.bool))

    def bank(self, factor: str) -> torch.Tensor:
        return getattr(self, f"{factor}_bank")

    def filled(self, factor: str) -> torch.Tensor:
        return getattr(self, f"{factor}_filled")

    @torch.no_grad()
    def update(self, feats: dict[str, torch.Tensor], labels: dict[str, torch.Tensor]) -> None:
        """Replace each present class's slot by its last instance in the batch (batch order = update order).

        Under data parallelism the caller passes features and labels gathered from all ranks, in rank order,
        so every rank writes identical banks.
        """
        for f in FACTORS:
            if f not in labels or self.bank(f).shape[0] == 0:
                continue
            y = labels[f].long()
            valid = (y >= 0) & (y < self.bank(f).shape[0])
            idx = torch.nonzero(valid).flatten()
            if idx.numel() == 0:
                continue
            # Index assignment with repeated targets is last-write-undefined on some devices; pick the last
            # occurrence of each class explicitly.
            last = {}
            for i in idx.tolist():
                last[int(y[i])] = i
            cls = torch.tensor(list(last.keys()), device=y.device)
            rows = torch.tensor(list(last.values()), device=y.device)
            self.bank(f)[cls] = feats[f].detach()[rows].to(self.bank(f).dtype)
            self.filled(f)[cls] = True


class Combiner(nn.Module):
    """Eq. 17: (subject, action, object) bank features -> a vector comparable with the video vector of
    eq. 23, which concatenates in the order (subject, object, action)."""

    def __init__(self, cfg: RoboActConfig):
        super().__init__()
        self.mlp = None
        if cfg.combiner == "residual_mlp":
            self.mlp = mlp(cfg.fused_dim, cfg.fused_dim, cfg.fused_dim)
            nn.init.zeros_(self.mlp[-1].weight)
            nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, subject: torch.Tensor, action: torch.Tensor, obj: torch.Tensor) -> torch.Tensor:
        x = torch.cat([subject, obj, action], dim=-1)                                   # (M, 3D)
        return x if self.mlp is None else x + self.mlp(x)
