"""Text side (paper eqs. 1-2): the frozen text tower's feature, decomposed by three trainable MLPs."""
from __future__ import annotations

import torch
from torch import nn

from roboact.models.config import FACTORS, RoboActConfig
from roboact.models.disentangle import mlp


class TextHeads(nn.Module):
    """Eq. 2: F_text-subject/action/object = MLP_f(F_text). The text vector of eq. 23 is their
    concatenation in the order (subject, object, action)."""

    def __init__(self, cfg: RoboActConfig):
        super().__init__()
        self.norm = nn.LayerNorm(cfg.text_dim) if cfg.input_norm else nn.Identity()
        self.mlps = nn.ModuleDict({f: mlp(cfg.text_dim, cfg.text_hidden, cfg.embed_dim) for f in FACTORS})

    def forward(self, text_feats: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.norm(text_feats)                                            # (B, d_text)
        parts = {f: m(x) for f, m in self.mlps.items()}                      # each (B, D)
        parts["fused"] = torch.cat([parts["subject"], parts["object"], parts["action"]], dim=-1)  # (B, 3D)
        return parts
