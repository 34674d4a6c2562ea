"""The frozen-backbone interface every image/text tower sits behind.

RoboAct-CLIP never trains its backbone (the paper freezes CLIP; we add towers that load offline), so a
backbone is a plain module that refuses to leave eval mode, has no trainable parameters, and turns
uint8 RGB frames / strings into feature vectors. Heads see only `image_dim` and `text_dim`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class BackboneError(ValueError):
    """Unknown backbone, missing weights, or input the backbone cannot take."""


class FrozenBackbone(nn.Module):
    name: str = "base"
    image_dim: int = 0
    text_dim: int = 0
    image_size: int = 224
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    batch_size: int = 16        # frames per forward on a CPU (per backbone: what measured fastest there)
    gpu_batch_size: int = 128   # on a GPU: lite0 on an H100 ran ~4,000 frames/s in chunks of 16, ~9,800 in 128
    runtime: str = "eager"      # how the image tower runs (roboact.backbones.runtime); set by load_backbone
    runtime_request: str = "eager"   # what was asked for ("default" re-resolves when the backbone moves)

    def freeze(self) -> "FrozenBackbone":
        for p in self.parameters():
            p.requires_grad_(False)
        return super().train(False)

    def train(self, mode: bool = True) -> "FrozenBackbone":
        # A frozen backbone stays in eval mode (BatchNorm statistics, dropout) whatever its parent does.
        return super().train(False)

    def spec(self) -> dict:
        """What `load_backbone(**spec)` needs to rebuild this backbone; saved beside checkpoints.

        The runtime is not part of it: it is how this machine runs the weights, not which weights they are
        (caches and policy cells record it separately, through `runtime_identity`).
        """
        return {"name": self.name}

    # --- runtime ------------------------------------------------------------------------------
    def set_runtime(self, runtime: str) -> "FrozenBackbone":
        """Run the image tower on `runtime` (see roboact.backbones.runtime); checked now, compiled lazily."""
        from roboact.backbones.runtime import resolve_runtime

        resolved = resolve_runtime(runtime, self._device())
        self.runtime_request, self.runtime = runtime, resolved
        self.__dict__.pop("_engine", None)
        return self

    def _device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def _apply(self, fn, recurse: bool = True):
        # Moving or casting the weights invalidates a compiled tower, and a "default" runtime follows the
        # device (openvino on a CPU, eager on a GPU); an explicit CPU-only runtime on a GPU is an error.
        super()._apply(fn, recurse)
        self.__dict__.pop("_engine", None)
        if self.runtime_request != "eager":
            self.set_runtime(self.runtime_request)
        return self

    def __getstate__(self):
        # A compiled engine cannot be copied (deepcopy in `private`, pickling to workers): rebuild it lazily.
        state = dict(super().__getstate__())
        state.pop("_engine", None)
        return state

    def image_tower(self) -> nn.Module:
        """resized images [N, 3, S, S] in [0, 1] -> features [N, image_dim]: what a runtime compiles (the
        normalisation inside it, where the engine folds it into the first convolution)."""
        return _ImageTower(self)

    def _compiled_tower(self):
        run = self.__dict__.get("_engine")
        if run is None:
            from roboact.backbones.runtime import compile_tower

            run = compile_tower(self.image_tower(), self.runtime, self.image_size)
            self.__dict__["_engine"] = run
        return run

    # --- images -------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_images(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 RGB frames [N, H, W, 3] -> float32 features [N, image_dim] (on CPU)."""
        x = check_frames(frames)
        device = next(self.parameters()).device
        bs = self.gpu_batch_size if device.type == "cuda" else self.batch_size
        outs = []
        for i in range(0, x.shape[0], bs):
            chunk = x[i:i + bs].to(device)
            if self.runtime == "eager":
                feats = self._image_features(self.preprocess(chunk))
            else:
                feats = self._compiled_tower()(self.resize(chunk, antialias_upsampling=False))
            outs.append(feats.float().cpu())
        return torch.cat(outs) if outs else torch.zeros(0, self.image_dim)

    def preprocess(self, frames_u8: torch.Tensor) -> torch.Tensor:
        """[N, H, W, 3] uint8 -> [N, 3, S, S] normalised float: resize short side to S, centre crop."""
        return self.normalize(self.resize(frames_u8))

    def resize(self, frames_u8: torch.Tensor, antialias_upsampling: bool = True) -> torch.Tensor:
        """[N, H, W, 3] uint8 -> [N, 3, S, S] float in [0, 1]: short side to S (bilinear, antialiased), centre crop.

        Upsampling (our 128 px frames to 224) gives the same pixels with or without the antialias kernel (within
        5e-6: benchmarks/resize_antialias.py) at half the cost; eager keeps the kernel so its features stay bit-identical to earlier releases.
        """
        x = frames_u8.permute(0, 3, 1, 2).float() / 255.0
        h, w = x.shape[-2:]
        s = self.image_size
        if (h, w) != (s, s):
            scale = s / min(h, w)
            nh, nw = max(s, round(h * scale)), max(s, round(w * scale))
            aa = antialias_upsampling or nh < h or nw < w
            x = F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=aa, align_corners=False)
            top, left = (nh - s) // 2, (nw - s) // 2
            x = x[..., top:top + s, left:left + s]
        return x

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / std per channel, for [N, 3, S, S] images in [0, 1]."""
        mean = torch.tensor(self.image_mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.image_std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # --- text ---------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """list of strings -> float32 features [N, text_dim] (on CPU)."""
        texts = check_texts(texts)
        outs = [self._text_features(texts[i:i + 64]).float().cpu() for i in range(0, len(texts), 64)]
        return torch.cat(outs) if outs else torch.zeros(0, self.text_dim)

    def _text_features(self, texts: list[str]) -> torch.Tensor:
        raise NotImplementedError


class _ImageTower(nn.Module):
    """A backbone's image path as a module of its own, for tracing by a runtime."""

    def __init__(self, backbone: FrozenBackbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone._image_features(self.backbone.normalize(images))


def check_frames(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Validate raw frames: uint8, [N, H, W, 3] (or [H, W, 3] for a single frame), non-empty."""
    if isinstance(frames, np.ndarray):
        if frames.dtype != np.uint8:
            raise BackboneError(f"frames must be uint8 RGB, got dtype {frames.dtype} "
                                "(convert float images with (x * 255).round().astype(np.uint8))")
        frames = torch.from_numpy(np.ascontiguousarray(frames))
    elif isinstance(frames, torch.Tensor):
        if frames.dtype != torch.uint8:
            raise BackboneError(f"frames must be uint8 RGB, got dtype {frames.dtype}")
    else:
        raise BackboneError(f"frames must be a numpy array or torch tensor, got {type(frames).__name__}")
    if frames.ndim == 3:
        frames = frames.unsqueeze(0)
    if frames.ndim != 4:
        raise BackboneError(f"frames must have shape [N, H, W, 3], got {tuple(frames.shape)}")
    if frames.shape[-1] != 3:
        hint = " (drop the alpha channel with frames[..., :3])" if frames.shape[-1] == 4 else ""
        hint = hint or (" (channels-first? use frames.permute(0, 2, 3, 1))" if frames.shape[1] == 3 else "")
        raise BackboneError(f"frames must have 3 channels (RGB) in the last axis, got shape "
                            f"{tuple(frames.shape)}{hint}")
    if frames.shape[0] == 0 or frames.shape[1] < 8 or frames.shape[2] < 8:
        raise BackboneError(f"frames are empty or too small: shape {tuple(frames.shape)}")
    return frames


def check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise BackboneError(f"texts[{i}] must be a string, got {type(t).__name__}")
    return texts
