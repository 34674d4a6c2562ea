"""The user-facing encoder: a frozen backbone plus trained RoboAct-CLIP heads, loaded in one call.

    enc = roboact.load("runs/demo/full/final")        # a folder written by save_pretrained
    enc.encode_video(frames_uint8)                     # or cached frame features [B, n, d]
    enc.encode_text(["Robot opens drawer, Action is open, Object is drawer."])

A checkpoint folder holds `config.json` (RoboActConfig, backbone spec, roboact version) and
`model.safetensors` (head weights and feature banks only; the backbone is rebuilt from its spec).
Nothing is unpickled.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from roboact.data.video import uniform_indices
from roboact.models.checkpoints import CONFIG_NAME, CheckpointError, check_backbone, resolve_checkpoint
from roboact.models.config import RoboActConfig
from roboact.models.roboact_clip import RoboActCLIP, check_frame_features
from roboact.utils.config import ConfigError, from_dict
from roboact.utils.io import atomic_path, atomic_write_json, read_json

WEIGHTS_NAME = "model.safetensors"
FORMAT = "roboact-clip/1"
# What a policy can be given of a checkpoint, all frozen (`encode_for_policy`, `roboact policy --output`):
# the paper's fused embedding, one factor branch, the fused embedding next to the current frame's backbone
# feature ("fused+frame": the branches drop object position that the raw frame feature keeps, docs/RESULTS.md's
# probes; the study's best row), or the Temporal Diff-Transformer's per-frame states ("tokens", for a policy
# that pools them itself).
POLICY_OUTPUTS = ("fused", "subject", "action", "object", "fused+frame", "tokens")


class RoboActEncoder(nn.Module):
    """Frozen backbone + RoboAct-CLIP heads. The backbone is not part of `state_dict()`."""

    def __init__(self, heads: RoboActCLIP, backbone=None, runtime: str = "default"):
        super().__init__()
        self.heads = heads
        # Stored outside nn.Module's registry: excluded from state_dict(), .parameters() and optimizers.
        self.__dict__["_backbone"] = backbone
        self.runtime = runtime       # how a lazily built backbone runs its image tower (backbones/runtime.py)

    @property
    def cfg(self) -> RoboActConfig:
        return self.heads.cfg

    @property
    def backbone(self):
        if self._backbone is None:
            from roboact.backbones import load_backbone

            # The heavy part must run where the heads do: `load(..., device="cuda")` with a CPU backbone
            # would encode every frame on the CPU.
            bb = load_backbone(self.cfg.backbone, path=self.cfg.backbone_path,
                               device=next(self.heads.parameters()).device, runtime=self.runtime)
            check_backbone(self.cfg, bb.name, image_dim=bb.image_dim, text_dim=bb.text_dim)
            self.__dict__["_backbone"] = bb
        return self._backbone

    def _apply(self, fn, recurse: bool = True):
        # `.to()`, `.cuda()`, `.half()` go through `_apply`; the backbone is outside the module registry
        # (so it stays out of state_dict), so carry it along by hand, as a private copy when it is shared.
        from roboact.backbones import private

        super()._apply(fn, recurse)
        if self._backbone is not None:
            self.__dict__["_backbone"] = private(self._backbone)._apply(fn, recurse)
        return self

    # --- encoding ------------------------------------------------------------------------------
    @torch.no_grad()
    def frame_features(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 frames [T, H, W, 3] (one clip) or [B, T, H, W, 3] -> [B, n, d], n uniformly sampled."""
        x = frames if isinstance(frames, torch.Tensor) else torch.from_numpy(np.asarray(frames))
        if x.ndim == 4:
            x = x.unsqueeze(0)
        if x.ndim != 5:
            raise ValueError(f"frames must be [T, H, W, 3] or [B, T, H, W, 3] uint8, got shape {tuple(x.shape)}")
        if x.shape[1] < 2:
            raise ValueError(f"a clip needs at least 2 frames, got {x.shape[1]}")
        idx = torch.from_numpy(uniform_indices(x.shape[1], self.cfg.n_frames))
        x = x[:, idx]                                                            # (B, n, H, W, 3)
        b, n = x.shape[:2]
        feats = self.backbone.encode_images(x.reshape(b * n, *x.shape[2:]))      # (B*n, d); validates dtype/channels
        return feats.view(b, n, -1)

    def _as_features(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 frames through the backbone; anything else is taken as cached frame features [B, n, d]."""
        is_frames = (x.dtype == torch.uint8) if isinstance(x, torch.Tensor) else (np.asarray(x).dtype == np.uint8)
        if is_frames:
            return self.frame_features(x)
        feats = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
        return feats.unsqueeze(0) if feats.ndim == 2 else feats

    @torch.no_grad()
    def encode_video(self, frames_or_features: np.ndarray | torch.Tensor, normalize: bool = False) -> dict[str, torch.Tensor]:
        """Raw uint8 frames or cached float frame features -> {subject, action, object, fused}.

        `fused` is the vector aligned with text (eq. 23: concat of subject, object, action). With
        `normalize`, every output is L2-normalised (for cosine retrieval).
        """
        feats = self._as_features(frames_or_features)
        dev = next(self.heads.parameters()).device
        out = self.heads.encode_frames(feats.to(dev, torch.float32))
        res = {"subject": out.subject, "action": out.action, "object": out.object, "fused": out.video}
        return {k: _maybe_norm(v, normalize) for k, v in res.items()}

    @property
    def has_tokens(self) -> bool:
        """Whether `encode_tokens` exists: only models with a Temporal Diff-Transformer have per-frame states."""
        return self.heads.fusion.temporal is not None

    @torch.no_grad()
    def encode_tokens(self, features: torch.Tensor) -> torch.Tensor:
        """Cached frame features [B, n, d] -> the Temporal Diff-Transformer's states [B, n-1, temporal_width],
        one per frame difference, the last being the summary eq. 8 fuses. A separate call rather than a key of
        `encode_video`, so the fused outputs keep one type and cost nothing more; ValueError without the module."""
        feats = features.unsqueeze(0) if features.ndim == 2 else features
        dev = next(self.heads.parameters()).device
        x = feats.to(dev, torch.float32)
        check_frame_features(x, self.cfg.image_dim)
        return self.heads.fusion.tokens(x)                                   # (B, n-1, W)

    @property
    def policy_outputs(self) -> tuple[str, ...]:
        """The POLICY_OUTPUTS this checkpoint has (`tokens` needs a Temporal Diff-Transformer)."""
        return tuple(o for o in POLICY_OUTPUTS if o != "tokens" or self.has_tokens)

    def output_dim(self, output: str) -> int:
        """Width of `encode_for_policy(..., output)`: the vector's, or each token's."""
        self._check_output(output)
        cfg = self.cfg
        return {"fused": cfg.fused_dim, "fused+frame": cfg.fused_dim + cfg.image_dim,
                "tokens": cfg.temporal_width}.get(output, cfg.embed_dim)

    def _check_output(self, output: str) -> None:
        if output not in POLICY_OUTPUTS:
            raise ValueError(f"output must be one of {POLICY_OUTPUTS}, got {output!r}")
        if output not in self.policy_outputs:
            raise ValueError(f"output {output!r}: this checkpoint has no Temporal Diff-Transformer (ablation 1 "
                             f"or the meanpool baseline); its outputs are {', '.join(self.policy_outputs)}")

    @torch.no_grad()
    def encode_for_policy(self, frames_or_features: np.ndarray | torch.Tensor,
                          output: str = "fused+frame") -> torch.Tensor:
        """A window ending at the current frame (uint8 frames [T, H, W, 3] / [B, T, H, W, 3], n sampled with the
        last kept, or cached frame features [B, n, d]) -> what a frozen-encoder policy sees: [B, D], or
        [B, n-1, W] for `tokens`. The one home of the outputs `roboact policy --output` offers."""
        self._check_output(output)
        feats = self._as_features(frames_or_features)
        if output == "tokens":
            return self.encode_tokens(feats)
        out = self.encode_video(feats)
        if output == "fused+frame":
            current = feats[:, -1].to(out["fused"].device, out["fused"].dtype)
            return torch.cat([out["fused"], current], dim=-1)
        return out[output]

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str] | str, normalize: bool = False) -> dict[str, torch.Tensor]:
        """Strings -> {subject, action, object, fused} through the frozen text tower and the text MLPs."""
        feats = self.backbone.encode_texts([texts] if isinstance(texts, str) else list(texts))
        dev = next(self.heads.parameters()).device
        parts = self.heads.encode_text_features(feats.to(dev))
        return {k: _maybe_norm(v, normalize) for k, v in parts.items()}

    def stream(self, n_frames: int | None = None):
        """A streaming view for control: encodes one new frame per step (see models/streaming.py)."""
        from roboact.models.streaming import StreamingEncoder

        return StreamingEncoder(self, n_frames)

    def train(self, mode: bool = True) -> "RoboActEncoder":
        super().train(mode)
        if self._backbone is not None:
            self._backbone.train(False)
        return self

    # --- persistence ---------------------------------------------------------------------------
    def save_pretrained(self, folder: str | os.PathLike, extra: dict | None = None) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_heads(self.heads, folder, extra=extra)
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, backbone=None, device: str = "cpu",
                        runtime: str = "default") -> "RoboActEncoder":
        """`runtime` applies to a backbone built here; a passed `backbone` keeps the runtime it has."""
        from roboact.backbones.runtime import resolve_runtime

        resolve_runtime(runtime, device)        # an unavailable runtime fails before the weights load
        heads = load_heads(folder, device=device)
        if backbone is not None:
            from roboact.backbones import on_device

            check_backbone(heads.cfg, backbone.name, image_dim=backbone.image_dim, text_dim=backbone.text_dim)
            backbone = on_device(backbone, device)
        return cls(heads, backbone, runtime).eval()


def _maybe_norm(x: torch.Tensor, normalize: bool) -> torch.Tensor:
    return torch.nn.functional.normalize(x, dim=-1) if normalize else x


def save_heads(heads: RoboActCLIP, folder: Path, extra: dict | None = None) -> None:
    from safetensors.torch import save_file

    from roboact import __version__

    state = {k: v.detach().cpu().contiguous() for k, v in heads.state_dict().items()}
    with atomic_path(folder / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp), metadata={"format": FORMAT})
    atomic_write_json(folder / CONFIG_NAME, {"format": FORMAT, "roboact_version": __version__,
                                             "model": dataclasses.asdict(heads.cfg), **(extra or {})})


def load_config(folder: str | os.PathLike) -> RoboActConfig:
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{path}: no config.json (is {folder} a roboact checkpoint folder?)")
    try:
        meta = read_json(path)
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "model" not in meta:
        raise CheckpointError(f"{path}: not a {FORMAT} config")
    try:
        return from_dict(RoboActConfig, meta["model"], where="model")
    except ConfigError as e:
        raise CheckpointError(f"{path}: {e}") from None


def load_heads(folder: str | os.PathLike, device: str = "cpu") -> RoboActCLIP:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg = load_config(folder)
    wpath = folder / WEIGHTS_NAME
    if not wpath.is_file():
        raise CheckpointError(f"{wpath}: weights file missing")
    try:
        state = load_file(str(wpath), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{wpath}: corrupted or unreadable safetensors file ({e})") from None
    heads = RoboActCLIP(cfg)
    if "seen_triplets" in state:  # variable-size buffer
        heads.seen_triplets = torch.zeros_like(state["seen_triplets"])
    expected = heads.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{wpath}: weights do not match config.json (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]})")
    for k, v in state.items():
        if v.shape != expected[k].shape:
            raise CheckpointError(f"{wpath}: {k} has shape {tuple(v.shape)}, config implies {tuple(expected[k].shape)}")
    heads.load_state_dict(state, strict=True)
    return heads.to(device).eval()


def load(path_or_name: str | os.PathLike, device: str = "cpu", backbone=None,
         runtime: str = "default") -> RoboActEncoder:
    """A checkpoint folder, a training run folder (its final/), or the name of one under the model store
    ($ROBOACT_HOME/models, default ~/.cache/roboact/models); see roboact.models.checkpoints.

    `runtime`: how the frozen image tower runs (roboact.backbones.runtime: default = openvino on a CPU, eager
    on a GPU; `eager` for plain PyTorch, `openvino-bf16` for the lossy fast path)."""
    folder = resolve_checkpoint(path_or_name)
    return RoboActEncoder.from_pretrained(folder, backbone=backbone, device=device, runtime=runtime)
