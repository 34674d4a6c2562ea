"""Temporal Diff-Transformer (paper eqs. 4-8): what changed between frames, not what the frames show.

Consecutive differences suppress the static scene (eq. 4); a Transformer with relative positions models
their order (eq. 5); its last token summarises the clip (eq. 6). The fusion MLP of eq. 8 combines that
summary with the overall change Fn - F1 (eq. 7) and the two end frames.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from roboact.models.config import RoboActConfig


class RelativePositionBias(nn.Module):
    """A learned scalar per head and per signed offset j - i, clipped to +-max_distance.

    Offsets rather than absolute positions: a motion pattern means the same wherever it happens in the
    clip, and n may differ between training and use.
    """

    def __init__(self, heads: int, max_distance: int):
        super().__init__()
        self.max_distance = max_distance
        self.bias = nn.Embedding(2 * max_distance + 1, heads)
        nn.init.zeros_(self.bias.weight)

    def forward(self, t: int, device: torch.device) -> torch.Tensor:
        pos = torch.arange(t, device=device)
        rel = (pos[None, :] - pos[:, None]).clamp(-self.max_distance, self.max_distance) + self.max_distance
        return self.bias(rel).permute(2, 0, 1)  # (H, T, T)


class RelAttentionBlock(nn.Module):
    """Pre-norm Transformer encoder block whose attention logits carry the relative-position bias."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * width, width))
        self.dropout = nn.Dropout(dropout)
        self.attn_dropout = dropout

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, w = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)  # 3x (B, H, T, w/H)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.unsqueeze(0).to(q.dtype),
                                           dropout_p=self.attn_dropout if self.training else 0.0)  # (B, H, T, w/H)
        x = x + self.dropout(self.proj(a.transpose(1, 2).reshape(b, t, w)))
        return x + self.dropout(self.mlp(self.norm2(x)))


class TemporalDiffTransformer(nn.Module):
    """Eqs. 4-6: frame features [B, n, d] -> Tem [B, width] (the last output token)."""

    def __init__(self, cfg: RoboActConfig):
        super().__init__()
        self.inp = nn.Linear(cfg.image_dim, cfg.temporal_width)
        self.rel_bias = RelativePositionBias(cfg.temporal_heads, cfg.max_rel_distance)
        self.blocks = nn.ModuleList(RelAttentionBlock(cfg.temporal_width, cfg.temporal_heads, cfg.temporal_dropout)
                                    for _ in range(cfg.temporal_layers))
        self.norm = nn.LayerNorm(cfg.temporal_width)

    def states(self, frames: torch.Tensor) -> torch.Tensor:
        """Eqs. 4-5: frame features [B, n, d] -> one state per frame difference [B, n-1, W], before the norm."""
        diffs = frames[:, 1:] - frames[:, :-1]                       # (B, n-1, d)   eq. 4
        x = self.inp(diffs)                                          # (B, n-1, W)
        bias = self.rel_bias(x.shape[1], x.device)                   # (H, n-1, n-1)
        for blk in self.blocks:
            x = blk(x, bias)                                         # eq. 5
        return x

    def tokens(self, frames: torch.Tensor) -> torch.Tensor:
        """Every difference's normalised state [B, n-1, W], for a policy that pools them itself (the `tokens`
        output) and for the time-contrastive term; the last one is `forward`'s Tem. The norm is per token, so
        normalising all changes no token."""
        return self.norm(self.states(frames))                        # (B, n-1, W)

    def forward(self, frames: torch.Tensor, all_tokens: bool = False) -> torch.Tensor:
        """Tem (B, W); with `all_tokens`, every output token (B, n-1, W), the last being Tem."""
        if all_tokens:
            return self.tokens(frames)                               # (B, n-1, W)
        return self.norm(self.states(frames)[:, -1])                 # (B, W)        eq. 6: last token


class VisualFusion(nn.Module):
    """Eqs. 7-8: Fv = MLP([Tem; Fn - F1; F1; Fn]); ablation 1 (temporal=False) uses only [F1; Fn];
    the "meanpool" baseline is a linear projection of the mean frame feature (order-blind by design)."""

    def __init__(self, cfg: RoboActConfig):
        super().__init__()
        self.meanpool = cfg.fusion == "meanpool"
        self.temporal = TemporalDiffTransformer(cfg) if cfg.temporal and not self.meanpool else None
        self.keep_states = cfg.lambda_tcn > 0
        self.input_norm = nn.LayerNorm(cfg.image_dim) if cfg.input_norm else nn.Identity()
        if self.meanpool:
            self.mlp = nn.Linear(cfg.image_dim, cfg.fused_dim)
            return
        in_dim = (cfg.temporal_width + 3 * cfg.image_dim) if self.temporal is not None else 2 * cfg.image_dim
        self.mlp = nn.Sequential(nn.Linear(in_dim, cfg.fusion_hidden), nn.GELU(), nn.Linear(cfg.fusion_hidden, cfg.fused_dim))

    def parts(self, frames: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """The concatenated parts of eq. 8, in order (eq. 9's "parts" attention mode reads them too), and the
        Temporal Diff-Transformer's per-frame states (B, n-1, W) when a loss needs them (lambda_tcn > 0)."""
        f = self.input_norm(frames)                                  # (B, n, d)
        if self.meanpool:
            return [f.mean(dim=1)], None                             # (B, d)
        first, last = f[:, 0], f[:, -1]                              # (B, d)
        if self.temporal is None:
            return [first, last], None
        states = self.temporal(f, all_tokens=True) if self.keep_states else None
        tem = states[:, -1] if states is not None else self.temporal(f)
        return [tem, last - first, first, last], states              # Tem, dF (eq. 7), F1, Fn

    def tokens(self, frames: torch.Tensor) -> torch.Tensor:
        """The Temporal Diff-Transformer's per-difference states [B, n-1, W] on the same normalised frames as
        eq. 8's Tem (which is their last); ablation 1 and the meanpool baseline have no temporal module."""
        if self.temporal is None:
            raise ValueError("this model has no Temporal Diff-Transformer (ablation 1 or the meanpool baseline), "
                             "so it has no per-frame tokens")
        return self.temporal.tokens(self.input_norm(frames))         # (B, n-1, W)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor | None]:
        parts, states = self.parts(frames)
        return self.mlp(torch.cat(parts, dim=-1)), parts, states     # Fv: (B, 3D)
