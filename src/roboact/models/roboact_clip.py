"""RoboAct-CLIP, the trainable part: every head of the paper on top of frozen frame and text features.

The backbone is not in here. Training and most evaluation run on cached frame features, so the heads
take features, not pixels; `roboact.models.encoder.RoboActEncoder` pairs them with a frozen backbone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import nn

from roboact.models import losses as L
from roboact.models.config import FACTORS, RoboActConfig
from roboact.models.disentangle import AuxClassifiers, Branches, Combiner, FeatureBanks, TokenSelfAttention
from roboact.models.temporal import VisualFusion
from roboact.models.text import TextHeads

# gather(x) -> (x from all ranks concatenated in rank order, offset of this rank's rows); identity when single-process
Gather = Callable[[torch.Tensor], tuple[torch.Tensor, int]]


@dataclass
class RoboActOutput:
    """Video-side features, and text features / losses when text was given. One type for every call."""
    subject: torch.Tensor              # (B, D)
    action: torch.Tensor               # (B, D)
    object: torch.Tensor               # (B, D)
    video: torch.Tensor                # (B, 3D) concat (subject, object, action): the vector aligned with text
    f_v: torch.Tensor                  # (B, 3D) eq. 8
    f_attn: torch.Tensor               # (B, 3D) eq. 9
    logits: dict[str, torch.Tensor] = field(default_factory=dict)   # eq. 21 (pre-softmax)
    text: Optional[dict[str, torch.Tensor]] = None                  # subject/action/object/fused, (B, D)/(B, 3D)
    losses: dict[str, torch.Tensor] = field(default_factory=dict)   # every term, and "total"
    states: Optional[torch.Tensor] = None  # (B, n-1, W) per-frame temporal states, kept only when lambda_tcn > 0

    @property
    def loss(self) -> Optional[torch.Tensor]:
        return self.losses.get("total")


class RoboActCLIP(nn.Module):
    def __init__(self, cfg: RoboActConfig):
        super().__init__()
        self.cfg = cfg
        self.fusion = VisualFusion(cfg)
        self.text_heads = TextHeads(cfg)
        if cfg.disentangle:
            part_dims = ([cfg.temporal_width] + [cfg.image_dim] * 3) if cfg.temporal else [cfg.image_dim] * 2
            self.attn = TokenSelfAttention(cfg, part_dims)
            self.branches = Branches(cfg)
            self.aux = AuxClassifiers(cfg)
            self.banks = FeatureBanks(cfg)
            self.combiner = Combiner(cfg)
        if cfg.lambda_frame > 0:  # linear: the probes it answers are linear (docs/model.md)
            k = 2 if cfg.frame_targets == "first_last" else 1
            self.frame_decoder = nn.Linear(cfg.fused_dim, k * cfg.image_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.temperature_init)),
                                        requires_grad=cfg.learn_temperature)
        self.register_buffer("seen_triplets", torch.zeros(0, 3, dtype=torch.long))

    # ----------------------------------------------------------------------------------------------
    def encode_frames(self, frame_feats: torch.Tensor) -> RoboActOutput:
        """Frame features (B, n, d) -> disentangled video features."""
        check_frame_features(frame_feats, self.cfg.image_dim)
        fv, parts, states = self.fusion(frame_feats)                                 # (B, 3D)
        if not self.cfg.disentangle:  # ablation 2: Fv is the video vector; its thirds face the text branches
            s, o, a = fv.split(self.cfg.embed_dim, dim=-1)
            return RoboActOutput(subject=s, action=a, object=o, video=fv, f_v=fv, f_attn=fv, states=states)
        f_attn = self.attn(fv, parts)                                                # eq. 9
        br = self.branches(f_attn)                                                   # eq. 10
        video = torch.cat([br["subject"], br["object"], br["action"]], dim=-1)       # eq. 23: F_video
        return RoboActOutput(subject=br["subject"], action=br["action"], object=br["object"], video=video,
                             f_v=fv, f_attn=f_attn, logits=self.aux(br, f_attn), states=states)

    def encode_text_features(self, text_feats: torch.Tensor) -> dict[str, torch.Tensor]:
        check_text_features(text_feats, self.cfg.text_dim)
        return self.text_heads(text_feats)

    def forward(self, frame_feats: torch.Tensor, text_feats: torch.Tensor | None = None,
                labels: dict[str, torch.Tensor] | None = None,
                recomb: tuple[torch.Tensor, torch.Tensor] | None = None,
                gather: Gather | None = None, generator: torch.Generator | None = None) -> RoboActOutput:
        """Encode a batch; with `text_feats`, also compute every loss term (eq. 24).

        labels: optional {"subject","action","object": (B,) class ids} for eq. 22 and the banks.
        recomb: optional (triplets (M, 3) as (subject, action, object) ids, frozen text features of their
                eq. 18 captions (M, d_text)) for eq. 19.
        generator: the time-contrastive term's draws (lambda_tcn > 0), a CPU generator; None: torch's
                global RNG. The trainer seeds one per step, so a resumed run draws alike.
        """
        out = self.encode_frames(frame_feats)
        if text_feats is None:
            return out
        if text_feats.shape[0] != frame_feats.shape[0]:
            raise ValueError(f"text_feats has {text_feats.shape[0]} rows but frame_feats has {frame_feats.shape[0]}")
        out.text = self.encode_text_features(text_feats)
        out.losses = self.compute_losses(out, labels or {}, recomb, gather, frame_feats, generator)
        return out

    # ----------------------------------------------------------------------------------------------
    def temperature_scale(self) -> torch.Tensor:
        return self.logit_scale.clamp(max=math.log(100.0)).exp()

    def compute_losses(self, out: RoboActOutput, labels: dict[str, torch.Tensor],
                       recomb: tuple[torch.Tensor, torch.Tensor] | None, gather: Gather | None,
                       frame_feats: torch.Tensor | None = None,
                       generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        cfg, scale = self.cfg, self.temperature_scale()
        losses = {"clip": self._clip_loss(out.video, out.text["fused"], scale, gather)}
        total = losses["clip"]
        if cfg.disentangle:
            losses["sim"] = L.loss_sim_eq11(out.subject, out.action, out.object, absolute=cfg.sim_abs)
            losses["l2"] = L.loss_l2_eq12(out.subject, out.action, out.object, coef=cfg.l2_coef)
            losses["recomb"] = (self.recomb_loss(*recomb, scale) if recomb is not None and len(recomb[0]) >= 2
                                else total.new_zeros(()))
            losses["disent"] = L.loss_disent_eq20(losses["sim"], losses["l2"], losses["recomb"],
                                                  cfg.lambda_ortho, cfg.lambda_recomb)
            alphas = {"subject": cfg.alpha_subject, "action": cfg.alpha_action, "object": cfg.alpha_object}
            losses["aux"] = L.loss_aux_eq22(out.logits, {k: v for k, v in labels.items() if k in FACTORS}, alphas)
            total = L.loss_total_eq24(total, losses["disent"], losses["aux"], cfg.lambda_disent, cfg.lambda_aux)
        # beyond eq. 24, each only when switched on (so the paper's total is untouched bit for bit otherwise)
        if cfg.lambda_tcn > 0:
            losses["tcn"] = L.loss_tcn(out.states, *L.tcn_draws(*out.states.shape[:2], generator=generator))
            total = total + cfg.lambda_tcn * losses["tcn"]
        if cfg.lambda_frame > 0:
            losses["frame"] = self.frame_loss(out.video, frame_feats)
            total = total + cfg.lambda_frame * losses["frame"]
        losses["total"] = total
        return losses

    def _clip_loss(self, video, text, scale, gather: Gather | None) -> torch.Tensor:
        if gather is None:
            return L.loss_clip_eq23(video, text, scale, symmetric=self.cfg.clip_symmetric)
        v_all, offset = gather(video)
        t_all, _ = gather(text)
        return L.loss_clip_eq23(video, text, scale, symmetric=self.cfg.clip_symmetric,
                                text_all=t_all, video_all=v_all, offset=offset)

    def frame_loss(self, video: torch.Tensor, frame_feats: torch.Tensor | None) -> torch.Tensor:
        """The fused video vector (what a policy reads) decoded back into the clip's frozen frame features."""
        if frame_feats is None:
            raise ValueError("lambda_frame > 0: the frame-reconstruction term needs the clip's frame features")
        idx = [0, -1] if self.cfg.frame_targets == "first_last" else [-1]
        decoded = self.frame_decoder(video).view(video.shape[0], len(idx), -1)              # (B, k, d)
        return L.loss_frame(decoded, frame_feats[:, idx])

    # --- feature banks and recombination (eqs. 13-19) -------------------------------------------------
    def recomb_loss(self, triplets: torch.Tensor, recomb_text_feats: torch.Tensor, scale) -> torch.Tensor:
        s, a, o = triplets.unbind(-1)
        b = self.banks
        recombined = self.combiner(b.bank("subject")[s], b.bank("action")[a], b.bank("object")[o])  # (M, 3D) eq. 17
        text = self.encode_text_features(recomb_text_feats)["fused"]                              # (M, 3D) eq. 18
        return L.loss_recomb_eq19(recombined, text, scale)

    @torch.no_grad()
    def update_banks(self, out: RoboActOutput, labels: dict[str, torch.Tensor], step: int,
                     gather: Gather | None = None) -> bool:
        """Eq. 16: on steps where step % bank_update_every == 0, last instance of each class wins.
        Returns whether an update happened."""
        if not self.cfg.disentangle or step % self.cfg.bank_update_every != 0:
            return False
        feats = {"subject": out.subject, "action": out.action, "object": out.object}
        labs = {f: labels[f] for f in FACTORS if f in labels}
        if gather is not None:
            feats = {f: gather(x.detach())[0] for f, x in feats.items()}
            labs = {f: gather(y)[0] for f, y in labs.items()}
        self.banks.update(feats, labs)
        return True

    def register_seen_triplets(self, triplets: torch.Tensor) -> None:
        """The (subject, action, object) ids present in training; eq. 19's M when recomb_triplets == "seen"."""
        self.seen_triplets = torch.unique(triplets.long().reshape(-1, 3), dim=0).to(self.seen_triplets.device)

    def sample_triplets(self, m: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Up to m distinct triplets whose three bank slots are filled; (M, 3) as (subject, action, object)."""
        if not self.cfg.disentangle:
            return torch.zeros(0, 3, dtype=torch.long)
        fs, fa, fo = (self.banks.filled(f).cpu() for f in FACTORS)
        if self.cfg.recomb_triplets == "seen":
            cand = self.seen_triplets.cpu()
            ok = fs[cand[:, 0]] & fa[cand[:, 1]] & fo[cand[:, 2]] if len(cand) else torch.zeros(0, dtype=torch.bool)
            cand = cand[ok]
        else:
            s, a, o = (torch.nonzero(x).flatten() for x in (fs, fa, fo))
            if min(len(s), len(a), len(o)) == 0:
                return torch.zeros(0, 3, dtype=torch.long)
            cand = torch.cartesian_prod(s, a, o).reshape(-1, 3)
        if len(cand) == 0:
            return torch.zeros(0, 3, dtype=torch.long)
        perm = torch.randperm(len(cand), generator=generator)[:m]
        return cand[perm]


def check_frame_features(x: torch.Tensor, dim: int) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"frame features must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"frame features must be floating point, got {x.dtype}")
    if x.ndim != 3:
        raise ValueError(f"frame features must have shape [batch, frames, {dim}], got {tuple(x.shape)}")
    if x.shape[1] < 2:
        raise ValueError(f"need at least 2 frames per clip for frame differences (eq. 4), got {x.shape[1]}")
    if x.shape[2] != dim:
        raise ValueError(f"frame features have width {x.shape[2]}, the model expects {dim} (another backbone?)")
    if not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).nonzero()[0].tolist()
        raise ValueError(f"frame features contain NaN/Inf (first at [clip {bad[0]}, frame {bad[1]}, dim {bad[2]}])")


def check_text_features(x: torch.Tensor, dim: int) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != dim:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"text features must have shape [batch, {dim}], got {shape}")
    if not torch.isfinite(x).all():
        raise ValueError("text features contain NaN/Inf")
