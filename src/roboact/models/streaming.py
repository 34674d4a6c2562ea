"""Streaming encoding for control: one new camera frame per step, one backbone call per step.

A policy sees the clip "the last n frames up to now". Encoding that window from scratch costs n backbone
calls per step; the frame features of the older n-1 frames are already known, so the stream keeps them
in a ring and encodes only the newest frame. The heads (cheap) still run on the whole window, so the
embedding is exactly that of the window encoded from scratch.

Episode start: until n frames have been seen, the window is left-padded with copies of the first frame's
features. Padded frame differences are exactly zero, which the Temporal Diff-Transformer reads as "no
motion yet" (the same rule as `uniform_indices` for clips shorter than n).
"""
from __future__ import annotations

import numpy as np
import torch


class FrameWindow:
    """The ring of the last n frame features of B environments in lockstep, oldest first, left-padded with the
    first frame's features at episode start. The one home of the window rule, shared by the stream below and
    by the policy's windowed encoders (roboact.policy.encoders), whose offline twin is `window_indices`."""

    def __init__(self, n: int):
        if n < 2:
            raise ValueError(f"a streaming window needs at least 2 frames, got {n}")
        self.n = int(n)
        self.window: torch.Tensor | None = None   # (B, n, d)

    def reset(self) -> None:
        self.window = None

    def push(self, feats: torch.Tensor) -> torch.Tensor:
        """Add the newest frame features [B, d]; the window [B, n, d] ending with them."""
        if self.window is None:
            self.window = feats.unsqueeze(1).repeat(1, self.n, 1)            # (B, n, d) padded with frame 0
        else:
            if self.window.shape[0] != feats.shape[0]:
                raise ValueError(f"stream holds {self.window.shape[0]} environments, got a batch of "
                                 f"{feats.shape[0]} frames; call reset() between episodes")
            self.window = torch.cat([self.window[:, 1:], feats.unsqueeze(1)], dim=1)
        return self.window

    def keep(self, rows) -> None:
        """Only the environments at these batch positions go on. Before the first frame there is nothing to drop."""
        if self.window is not None:
            self.window = self.window[torch.as_tensor(list(rows), dtype=torch.long)]


class StreamingEncoder:
    def __init__(self, encoder, n_frames: int | None = None):
        self.encoder = encoder
        self._ring = FrameWindow(int(n_frames or encoder.cfg.n_frames))
        self.n = self._ring.n

    def reset(self) -> None:
        """Forget the episode (call at every episode start)."""
        self._ring.reset()

    @torch.no_grad()
    def step(self, frame: np.ndarray | torch.Tensor, normalize: bool = False) -> dict[str, torch.Tensor]:
        """Add the newest frame(s) — uint8 [H, W, 3] or a batch of environments [B, H, W, 3] — and return
        the embedding of the current window: {subject, action, object, fused}, each [B, ...]."""
        return self.encoder.encode_video(self._push(frame), normalize=normalize)

    @torch.no_grad()
    def policy_step(self, frame: np.ndarray | torch.Tensor, output: str = "fused+frame") -> torch.Tensor:
        """As `step`, returning what a frozen-encoder policy sees of the window (`encode_for_policy`)."""
        self.encoder._check_output(output)                                  # before the frame enters the ring
        return self.encoder.encode_for_policy(self._push(frame), output=output)

    def _push(self, frame: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Encode the newest frame(s), [H, W, 3] or [B, H, W, 3] (the step's only backbone call), into the
        ring: the window [B, n, d] ending with them."""
        x = torch.as_tensor(np.asarray(frame)) if not isinstance(frame, torch.Tensor) else frame
        if x.ndim == 3:
            x = x.unsqueeze(0)
        return self._ring.push(self.encoder.backbone.encode_images(x))

    def keep(self, rows) -> None:
        """Batched streams (several environments in lockstep): only the environments at these batch
        positions go on; the others' episodes ended."""
        self._ring.keep(rows)

    @property
    def window(self) -> torch.Tensor | None:
        return self._ring.window


def window_from_scratch(encoder, frames: np.ndarray, n: int) -> torch.Tensor:
    """Reference: the last n frames (left-padded with the first) encoded from scratch -> fused embedding.
    Used by tests and the streaming benchmark to check the stream."""
    frames = np.asarray(frames)
    if len(frames) < n:
        frames = np.concatenate([np.repeat(frames[:1], n - len(frames), axis=0), frames])
    window = frames[-n:]
    feats = encoder.backbone.encode_images(window).unsqueeze(0)             # (1, n, d): n backbone calls
    return encoder.encode_video(feats)["fused"]
