"""Configuration of the RoboAct-CLIP heads. Every choice the paper leaves open is a field here, with the
reason for its default (docs/design.md §2 and docs/model.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from roboact.utils.config import check

FACTORS = ("subject", "action", "object")


@dataclass
class RoboActConfig:
    # --- frozen backbone (not part of the trainable heads; recorded so a checkpoint rebuilds its encoder) ---
    backbone: str = "lite0-minilm"
    backbone_path: str | None = None
    image_dim: int = 1280          # d of eq. 3 (frame features from the frozen image tower)
    text_dim: int = 384            # width of F_text (eq. 1)
    n_frames: int = 16             # n: frames uniformly sampled per clip (paper: 16)
    input_norm: bool = True        # LayerNorm on frame features: backbones differ wildly in feature scale

    # --- ablation switches (paper Table III) ---
    temporal: bool = True          # False = ablation 1: eq. 8 sees only [F1; Fn]
    disentangle: bool = True       # False = ablation 2: Fv itself is aligned with the text feature
    # "meanpool" = the frozen-backbone baseline (the paper's "CLIP" row): Fv is a linear projection of the
    # mean-pooled frame features, trained by the same contrastive loss; needs disentangle=False.
    fusion: Literal["diff", "meanpool"] = "diff"

    # --- Temporal Diff-Transformer (eqs. 4-6) ---
    temporal_width: int = 256
    temporal_layers: int = 2
    temporal_heads: int = 4
    temporal_dropout: float = 0.1
    # eq. 5 leaves the relative scheme open: a learned bias per head and per clipped offset (T5/ALiBi-like),
    # added to attention logits over the n-1 difference tokens.
    max_rel_distance: int = 32

    # --- fusion (eqs. 7-8) and self-attention (eq. 9) ---
    fusion_hidden: int = 1024
    # eq. 9 attends over a single vector, which is the identity up to a projection. We attend over tokens:
    # "split": Fv cut into `attn_tokens` chunks; "parts": the projected parts of eq. 8 ([Tem; dF; F1; Fn]) plus Fv.
    attn_mode: Literal["split", "parts"] = "split"
    attn_tokens: int = 4
    attn_heads: int = 4

    # --- disentanglement (eqs. 10-22) ---
    embed_dim: int = 256           # D of each branch; the video/text vectors of eq. 23 are 3*D
    branch_hidden: int = 512
    text_hidden: int = 512
    subjects: list[str] = field(default_factory=lambda: ["Robot"])
    actions: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    bank_update_every: int = 1     # "Setting_Step" of eq. 16
    # eq. 19's M: "seen" = triplets observed in training; "all" = any filled bank slots, novel combinations too
    recomb_triplets: Literal["seen", "all"] = "all"
    recomb_size: int = 64          # |M| triplets per step
    # eq. 17: "concat" is the simplest faithful choice (comparable with the text concatenation of eq. 23);
    # "residual_mlp" adds a small zero-initialised MLP on top.
    combiner: Literal["concat", "residual_mlp"] = "concat"
    # eq. 21 applies the classifiers to F_attn while the text says each branch is supervised; default: branch.
    aux_on: Literal["branch", "attn"] = "branch"
    aux_hidden: int = 256
    # eq. 11 has a minus sign but the text minimises similarity; we minimise mean |cos| (sim_abs) or mean cos.
    sim_abs: bool = True

    # --- loss weights (eqs. 12, 20, 22, 24) ---
    l2_coef: float = 0.01
    lambda_disent: float = 1.0
    lambda_ortho: float = 1.0
    lambda_recomb: float = 0.5
    lambda_aux: float = 1.0
    alpha_subject: float = 1.0
    alpha_action: float = 1.0
    alpha_object: float = 1.0

    # --- terms beyond the paper that keep what control needs (issue #12); 0 = off, the paper's eq. 24 ---
    # R3M's time-contrastive loss on the Temporal Diff-Transformer's per-token states (docs/model.md).
    lambda_tcn: float = 0.0
    # A linear decoder from the fused video vector must rebuild the clip's last ("last") or first and last
    # ("first_last") frozen frame features: the probes of docs/RESULTS.md show the fused vector drops them.
    lambda_frame: float = 0.0
    frame_targets: Literal["last", "first_last"] = "last"

    # --- contrastive alignment (eq. 23) ---
    temperature_init: float = 0.07
    learn_temperature: bool = True
    # eq. 23 is video->text only; symmetric (CLIP's usual) adds text->video. Kept on because over 3 seeds it
    # was at least as good on every retrieval/accuracy metric with a smaller spread (docs/RESULTS.md).
    clip_symmetric: bool = True

    def __post_init__(self) -> None:
        for name in ("image_dim", "text_dim", "temporal_width", "temporal_layers", "temporal_heads",
                     "fusion_hidden", "attn_tokens", "attn_heads", "embed_dim", "branch_hidden", "text_hidden",
                     "aux_hidden", "bank_update_every", "recomb_size", "max_rel_distance"):
            check(isinstance(getattr(self, name), int) and getattr(self, name) >= 1, name,
                  f"must be a positive integer, got {getattr(self, name)!r}")
        check(self.fusion == "diff" or not self.disentangle, "fusion",
              "the meanpool baseline aligns Fv directly: set disentangle=false")
        check(self.n_frames >= 2, "n_frames", f"needs at least 2 frames for a frame difference, got {self.n_frames}")
        check(self.temporal_width % self.temporal_heads == 0, "temporal_width",
              f"{self.temporal_width} is not divisible by temporal_heads={self.temporal_heads}")
        check(self.fused_dim % self.attn_tokens == 0, "attn_tokens",
              f"fused dim {self.fused_dim} (3*embed_dim) is not divisible by attn_tokens={self.attn_tokens}")
        token_dim = self.fused_dim // self.attn_tokens if self.attn_mode == "split" else self.fused_dim
        check(token_dim % self.attn_heads == 0, "attn_heads",
              f"attention token width {token_dim} is not divisible by attn_heads={self.attn_heads}")
        check(0.0 <= self.temporal_dropout < 1.0, "temporal_dropout", "must be in [0, 1)")
        check(0.0 < self.temperature_init < 1.0, "temperature_init", "must be in (0, 1)")
        for name in ("l2_coef", "lambda_disent", "lambda_ortho", "lambda_recomb", "lambda_aux",
                     "alpha_subject", "alpha_action", "alpha_object", "lambda_tcn", "lambda_frame"):
            check(float(getattr(self, name)) >= 0.0, name, "must be >= 0")
        # Ablation 1 and the mean-pool baseline have no per-frame states by design; giving them a per-frame
        # network for this term would make them no longer the ablations they are.
        check(self.lambda_tcn == 0 or (self.temporal and self.fusion == "diff"), "lambda_tcn",
              "the time-contrastive term needs the Temporal Diff-Transformer's per-frame states: "
              "set temporal=true and fusion=diff, or lambda_tcn=0")
        check(self.lambda_tcn == 0 or self.n_frames >= 4, "lambda_tcn",
              f"needs n_frames >= 4 (3 frame differences: anchor, positive, negative), got {self.n_frames}")
        for name in FACTORS:
            vocab = self.vocab(name)
            check(all(isinstance(v, str) and v.strip() for v in vocab), f"{name}s", "class names must be non-empty strings")
            check(len(set(vocab)) == len(vocab), f"{name}s", f"duplicate class names in {vocab}")

    @property
    def fused_dim(self) -> int:
        """Width of Fv. Equal to the text vector's width so ablation 2 can align Fv directly."""
        return 3 * self.embed_dim

    def vocab(self, factor: str) -> list[str]:
        return {"subject": self.subjects, "action": self.actions, "object": self.objects}[factor]

    def num_classes(self, factor: str) -> int:
        return len(self.vocab(factor))
