"""The behaviour-cloning policy of the R3M / MPI Franka-Kitchen harness, on top of any frozen encoder.

    BatchNorm1d([embedding; proprio]) -> Linear 256 -> ReLU -> Linear 256 -> ReLU -> Linear A
    action = output * action_std + action_mean;  loss = MSE(action, expert action)

As in R3M's `FCNetworkWithBatchNorm` the BatchNorm sits on the policy input, which is the embedding with
the proprioception concatenated; BatchNorm1d is per feature, so this is a BatchNorm on the embedding and one
on the proprioception. As in their BC (`set_transforms=True`), the output is rescaled by the demo actions'
mean and standard deviation and the MSE is taken in action units. The policy is a plain module; the
training loop (train.py) owns the optimizer. Saved as safetensors + JSON, nothing pickled.

Token inputs (an encoder's `tokens` output, [B, n, w]) are first pooled into one vector by a learned
attention head (`AttentionPool`, Voltron's multi-head attention pooling), trained with the policy; the
proprioception joins after pooling, and the BatchNorm and MLP are as above on [pooled; proprio].

A multi-task policy (policy/multitask.py) also takes the instruction as a conditioning vector (`cond_dim` > 0:
a text embedding or a task one-hot, policy/conditioning.py), joined like the proprioception, after pooling and
before the BatchNorm: [embedding; condition; proprio]. Concatenation rather than FiLM keeps the one-task policy
and the multi-task one the same network but for C more input features, so their numbers compare.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from roboact.policy.suites import PolicyError
from roboact.utils.io import atomic_path, atomic_write_json, read_json
from roboact.utils.config import check, from_dict


@dataclass
class PoolConfig:
    """The attention-pooling head for token inputs (Voltron's MAP defaults, scaled to a 256-wide policy)."""

    width: int = 256                   # tokens are projected to this width before attention
    queries: int = 1                   # learned queries; the pooled vector is their concatenation
    heads: int = 4

    def __post_init__(self) -> None:
        for name in ("width", "queries", "heads"):
            v = getattr(self, name)
            check(isinstance(v, int) and v >= 1, f"pool.{name}", f"must be a positive integer, got {v!r}")
        check(self.width % self.heads == 0, "pool.width", f"{self.width} is not divisible by pool.heads={self.heads}")

    @property
    def out_dim(self) -> int:
        return self.width * self.queries


@dataclass
class BCConfig:
    embed_dim: int                     # the input vector's width, or each token's when n_tokens > 0
    proprio_dim: int
    action_dim: int
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    n_tokens: int = 0                  # 0: a vector input (B, embed_dim); n: tokens (B, n, embed_dim), pooled
    pool: PoolConfig | None = None     # token inputs only; default PoolConfig()
    cond_dim: int = 0                  # width of the instruction's conditioning vector; 0: a one-task policy

    def __post_init__(self) -> None:
        for name in ("embed_dim", "action_dim"):
            v = getattr(self, name)
            check(isinstance(v, int) and v >= 1, name, f"must be a positive integer, got {v!r}")
        check(isinstance(self.proprio_dim, int) and self.proprio_dim >= 0, "proprio_dim",
              f"must be an integer >= 0, got {self.proprio_dim!r}")
        check(bool(self.hidden) and all(isinstance(h, int) and h >= 1 for h in self.hidden), "hidden",
              f"must be a non-empty list of positive widths, got {self.hidden!r}")
        check(isinstance(self.n_tokens, int) and self.n_tokens >= 0, "n_tokens",
              f"must be an integer >= 0, got {self.n_tokens!r}")
        check(self.n_tokens > 0 or self.pool is None, "pool", "only for token inputs (n_tokens > 0)")
        check(isinstance(self.cond_dim, int) and self.cond_dim >= 0, "cond_dim",
              f"must be an integer >= 0, got {self.cond_dim!r}")
        if self.n_tokens and self.pool is None:
            self.pool = PoolConfig()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.n_tokens, self.embed_dim) if self.n_tokens else (self.embed_dim,)


class AttentionPool(nn.Module):
    """Tokens (B, n, w) -> one vector (B, queries * width): learned queries attend over the tokens.

    Multi-head attention pooling as in Voltron's MAP block (Karamcheti et al., "Language-Driven Representation
    Learning for Robotics", RSS 2023; github.com/siddk/voltron-robotics, after Set Transformer's PMA): project
    the tokens, let learned latent queries attend over them, then post-norm residual attention and MLP. We use
    LayerNorm and a GELU MLP (Voltron's non-default variant) and torch's attention. Learned rather than a mean
    or the last token because which frames matter for the action is what the policy has to find out.
    Unlike Voltron's ViT patches, our tokens need not carry their position (the backbone's are plain frame
    features), and attention is blind to order, so a learned embedding per token position is added first:
    without it the head could not tell the current frame from the oldest.
    """

    def __init__(self, n_tokens: int, token_dim: int, cfg: PoolConfig):
        super().__init__()
        self.proj = nn.Linear(token_dim, cfg.width)
        self.pos = nn.Parameter(torch.randn(n_tokens, cfg.width) * 0.02)
        self.queries = nn.Parameter(torch.randn(cfg.queries, cfg.width) * 0.02)
        self.attn = nn.MultiheadAttention(cfg.width, cfg.heads, batch_first=True)
        self.attn_norm = nn.LayerNorm(cfg.width)
        self.mlp = nn.Sequential(nn.Linear(cfg.width, 4 * cfg.width), nn.GELU(), nn.Linear(4 * cfg.width, cfg.width))
        self.mlp_norm = nn.LayerNorm(cfg.width)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.proj(tokens) + self.pos                                        # (B, n, W)
        q = self.queries.unsqueeze(0).expand(len(x), -1, -1)                     # (B, K, W)
        q = self.attn_norm(q + self.attn(q, x, x, need_weights=False)[0])        # (B, K, W)
        q = self.mlp_norm(q + self.mlp(q))                                       # (B, K, W)
        return q.flatten(1)                                                      # (B, K * W)


class BCPolicy(nn.Module):
    def __init__(self, cfg: BCConfig):
        super().__init__()
        self.cfg = cfg
        self.pool = AttentionPool(cfg.n_tokens, cfg.embed_dim, cfg.pool) if cfg.n_tokens else None
        width = (cfg.pool.out_dim if cfg.n_tokens else cfg.embed_dim) + cfg.cond_dim + cfg.proprio_dim
        self.input_norm = nn.BatchNorm1d(width)
        layers: list[nn.Module] = []
        for h in cfg.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, cfg.action_dim))
        self.mlp = nn.Sequential(*layers)
        self.register_buffer("action_mean", torch.zeros(cfg.action_dim))
        self.register_buffer("action_std", torch.ones(cfg.action_dim))

    def set_action_stats(self, actions: torch.Tensor) -> None:
        """Output scaling from the demonstrations (a constant action dimension keeps scale 1)."""
        std = actions.float().std(dim=0, unbiased=False)
        self.action_mean.copy_(actions.float().mean(dim=0))
        self.action_std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))

    def forward(self, emb: torch.Tensor, proprio: torch.Tensor, target: torch.Tensor | None = None,
                cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """emb (B, E) or tokens (B, n, E), proprio (B, P), cond (B, C) for a multi-task policy ->
        (actions (B, A), MSE loss against target or None)."""
        shape = self.cfg.input_shape
        if tuple(emb.shape[1:]) != shape:
            raise ValueError(f"embedding must be (B, {', '.join(map(str, shape))}), got {tuple(emb.shape)}")
        if proprio.shape != (emb.shape[0], self.cfg.proprio_dim):
            raise ValueError(f"proprio must be ({emb.shape[0]}, {self.cfg.proprio_dim}), got {tuple(proprio.shape)}")
        if self.cfg.cond_dim and (cond is None or cond.shape != (emb.shape[0], self.cfg.cond_dim)):
            got = None if cond is None else tuple(cond.shape)
            raise ValueError(f"this multi-task policy needs cond ({emb.shape[0]}, {self.cfg.cond_dim}), got {got}")
        if not self.cfg.cond_dim and cond is not None:
            raise ValueError("this policy takes no conditioning vector (cond_dim = 0)")
        if self.pool is not None:
            emb = self.pool(emb)                                                # (B, K * W)
        parts = [emb, proprio] if cond is None else [emb, cond, proprio]
        x = self.input_norm(torch.cat(parts, dim=-1))                           # (B, E [+ C] + P)
        act = self.mlp(x) * self.action_std + self.action_mean                  # (B, A)
        loss = F.mse_loss(act, target) if target is not None else None
        return act, loss

    @torch.no_grad()
    def act(self, emb: torch.Tensor, proprio: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """One control step in eval mode: (1, E) or (1, n, E), (1, P) [, (1, C)] -> (A,)."""
        return self(emb, proprio, cond=cond)[0][0]

    # --- persistence ---------------------------------------------------------------------------
    def save_pretrained(self, folder: str | os.PathLike, extra: dict | None = None) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        with atomic_path(folder / "policy.safetensors") as tmp:
            save_file(state, str(tmp))
        atomic_write_json(folder / "policy.json", {"format": "roboact-bc/1", "config": dataclasses.asdict(self.cfg),
                                                   **(extra or {})})
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> "BCPolicy":
        from safetensors.torch import load_file

        folder = Path(folder)
        meta = read_json(folder / "policy.json")
        if not isinstance(meta, dict) or meta.get("format") != "roboact-bc/1":
            raise PolicyError(f"{folder / 'policy.json'}: not a roboact BC policy")
        policy = cls(from_dict(BCConfig, meta["config"], where="config"))
        try:
            state = load_file(str(folder / "policy.safetensors"))
            policy.load_state_dict(state, strict=True)
        except Exception as e:  # missing, truncated or mismatched weights
            raise PolicyError(f"{folder / 'policy.safetensors'}: cannot load policy weights: {e}") from None
        return policy.eval()
