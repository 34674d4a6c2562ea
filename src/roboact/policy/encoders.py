"""Frozen observation encoders for behaviour cloning: one small interface, one class per kind of encoder.

A `FrozenObsEncoder` turns the camera frame of each control step into the vector the policy sees. It has
two stages so that demonstrations are encoded cheaply and exactly as at control time:

    frame_features(frames [T, H, W, 3] uint8) -> [T, d]     the expensive per-frame network (cached)
    embed_episode(features [T, d])            -> [T, D]     the embedding at every step t of an episode
    reset(); step(frame [H, W, 3])            -> [1, D]     the same embedding, online, one frame per step
             step(frames [B, H, W, 3])        -> [B, D]     B envs in lockstep; keep(rows) drops ended ones

`embed_episode(frame_features(frames))[t]` equals the t-th `step` after a `reset` (tests check it), so
a policy is trained on exactly the inputs it will see in closed loop. Encoders with a `token_shape` (n, w)
give a sequence instead of a vector — [T, n, w] and [B, n, w] — which the BC policy pools with a learned
attention head (bc.py).

Kinds (a row of the benchmark each):
- `RoboActObsEncoder`: a RoboAct-CLIP checkpoint, streaming (as `roboact.load(...).stream()`): the window of
  the last n frames (left-padded with the first frame at episode start; optionally `stride` steps apart),
  one backbone call per step; the policy sees one of its outputs (`fused` by default, or
  `subject`/`action`/`object`, or `tokens`: the Temporal Diff-Transformer's n-1 per-frame states).
- `FrameObsEncoder`: the current frame's image feature of a frozen network: the backbone alone (the
  paper's "CLIP" row, with our offline backbone), real CLIP through `hf-clip`, or R3M.
- `FrameWindowObsEncoder`: the backbone's features of the same window of frames as RoboAct's, as n tokens
  (the backbone row's `tokens` output), so a token policy on RoboAct is compared with one on its backbone.
- MPI cannot be loaded here (see `load_mpi`); its row reports why.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from roboact.models.encoder import POLICY_OUTPUTS
from roboact.policy.suites import PolicyError

# What the policy sees of a RoboAct checkpoint: the API's outputs (RoboActEncoder.encode_for_policy); `tokens`
# are pooled by the policy's attention head (bc.py).
OUTPUTS = POLICY_OUTPUTS
# What the policy sees of the frozen backbone alone: the current frame, or the window's frames as tokens.
BACKBONE_OUTPUTS = ("frame", "tokens")
KINDS = ("roboact", "backbone", "clip", "r3m", "mpi")


class EncoderUnavailable(Exception):
    """A baseline row that cannot run here; `status` is what the table prints ("not run: no weights")."""

    def __init__(self, status: str):
        super().__init__(status)
        self.status = status


class FrozenObsEncoder:
    name: str = "encoder"
    dim: int = 0                                  # the vector's width, or each token's
    token_shape: tuple[int, int] | None = None    # (n, dim) when the policy sees n tokens; None: one vector

    def frame_identity(self) -> dict:
        """What determines `frame_features` (the cache key of the expensive stage)."""
        raise NotImplementedError

    def identity(self) -> dict:
        """What determines the embedding (the cache key of the whole encoder)."""
        raise NotImplementedError

    def frame_features(self, frames: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def embed_episode(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def step(self, frame: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def keep(self, rows: list[int]) -> None:
        """Lockstep rollouts: only the envs at these batch positions go on. Stateless encoders ignore it."""

    def episode_windows(self, t: int) -> torch.Tensor | None:
        """[T, n] frame indices when the input at step t is just the frame features of row t's frames: then the
        data path gathers them from the cached [T, d] features on the fly rather than caching [T, n, d] (1280-d
        backbone features x 16 frames). None: the data path caches `embed_episode`."""
        return None

    def input_label(self) -> str:
        """What the policy sees, for the tables."""
        return f"{self.dim}-d vector"


def _batch(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    return frame[None] if frame.ndim == 3 else frame                         # (B, H, W, 3)


class FrameObsEncoder(FrozenObsEncoder):
    """The current frame's feature from a frozen image network (anything with `encode_images`)."""

    def __init__(self, net, name: str):
        self.net = net
        self.name = name
        self.dim = int(net.image_dim)

    def frame_identity(self) -> dict:
        return frame_identity(self.net)

    def identity(self) -> dict:
        return {"kind": "frame", **self.frame_identity()}

    def frame_features(self, frames: np.ndarray) -> torch.Tensor:
        return self.net.encode_images(frames).float()                       # (T, d)

    def embed_episode(self, features: torch.Tensor) -> torch.Tensor:
        return features.float()                                              # (T, D = d)

    def reset(self) -> None:
        pass

    def step(self, frame: np.ndarray) -> torch.Tensor:
        return self.net.encode_images(_batch(frame)).float()                # (B, d)

    def input_label(self) -> str:
        return f"current frame's {self.dim}-d feature"


class WindowedObsEncoder(FrozenObsEncoder):
    """Encoders that see the window of the last n frames, `stride` control steps apart, ending at the current
    frame; `window_indices` is the same window offline.

    Pretraining clips are n frames spread over a whole atomic action (Meta-World: ~73 control steps, so ~5
    steps apart); a stride > 1 makes the control-time window span a comparable stretch. It is built from
    `stride` rings of frame features fed in turn (ring t mod stride gets frame t), so every step still costs
    one backbone call, and each ring pads its start with its own first frame.
    """

    def __init__(self, net, name: str, window: int, stride: int):
        from roboact.models.streaming import FrameWindow

        if stride < 1:
            raise PolicyError(f"stride must be >= 1, got {stride}")
        if window < 2:
            raise PolicyError(f"window must be >= 2 frames, got {window}")
        self.net, self.name = net, name
        self.window, self.stride = int(window), int(stride)
        self.rings = [FrameWindow(self.window) for _ in range(self.stride)]
        self._t = 0

    def frame_identity(self) -> dict:
        return frame_identity(self.net)

    def frame_features(self, frames: np.ndarray) -> torch.Tensor:
        return self.net.encode_images(frames).float()                       # (T, d)

    def reset(self) -> None:
        for r in self.rings:
            r.reset()
        self._t = 0

    def keep(self, rows: list[int]) -> None:
        for r in self.rings:
            r.keep(rows)

    def push_frame(self, frame: np.ndarray) -> torch.Tensor:
        """Encode the newest frame(s) (the step's one backbone call) into their ring: its window [B, n, d]. Public:
        the judge's stream (roboact.judge) reads windows the same way a policy does."""
        ring = self.rings[self._t % self.stride]
        self._t += 1
        return ring.push(self.net.encode_images(_batch(frame)))


class FrameWindowObsEncoder(WindowedObsEncoder):
    """The frozen backbone's features of the window's n frames, as n tokens (the backbone row's `tokens`)."""

    def __init__(self, net, name: str, window: int, stride: int = 1):
        super().__init__(net, name, window, stride)
        self.dim = int(net.image_dim)
        self.token_shape = (self.window, self.dim)

    def identity(self) -> dict:
        # the current-frame row's identity plus what makes this one differ, so the frame row keeps its keys
        return {"kind": "frame", **self.frame_identity(), "output": "tokens", "window": self.window,
                "stride": self.stride}

    def embed_episode(self, features: torch.Tensor) -> torch.Tensor:
        return features.float()[self.episode_windows(len(features))]        # (T, n, d)

    def episode_windows(self, t: int) -> torch.Tensor:
        return window_indices(t, self.window, self.stride)                  # (T, n)

    def step(self, frame: np.ndarray) -> torch.Tensor:
        return self.push_frame(frame).float().cpu()                         # (B, n, d)

    def input_label(self) -> str:
        return (f"tokens: {self.window} frames' {self.dim}-d features (stride {self.stride}), attention-pooled "
                "by the policy")


class RoboActObsEncoder(WindowedObsEncoder):
    """A RoboAct-CLIP checkpoint as an observation encoder on the window of the last n frames (the heads run
    on the whole window each step; only the newest frame goes through the backbone, as `encoder.stream()`)."""

    def __init__(self, encoder, checkpoint: str, name: str, output: str = "fused", window: int | None = None,
                 stride: int = 1):
        try:
            dim = encoder.output_dim(output)
        except ValueError as e:
            raise PolicyError(f"row {name!r} ({checkpoint}): {e}") from None
        super().__init__(encoder.backbone, name, int(window or encoder.cfg.n_frames), stride)
        self.enc = encoder
        self.checkpoint = str(checkpoint)
        self.output = output
        self.dim = dim        # fused: 3 * embed_dim for every variant (ablation 2's Fv has the text vector's width)
        if output == "tokens":  # one state per frame difference
            self.token_shape = (self.window - 1, self.dim)

    def identity(self) -> dict:
        return {"kind": "roboact", "weights_sha256": checkpoint_digest(self.checkpoint), "output": self.output,
                "window": self.window, "stride": self.stride, **self.frame_identity()}

    @torch.no_grad()
    def embed_episode(self, features: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        idx = window_indices(len(features), self.window, self.stride)       # (T, n)
        return torch.cat([self._select(features[idx[i:i + chunk]])          # (B, n, d) windows
                          for i in range(0, len(idx), chunk)])              # (T, D) or (T, n-1, W)

    @torch.no_grad()
    def step(self, frame: np.ndarray) -> torch.Tensor:
        return self._select(self.push_frame(frame))                         # (B, D); the policy runs on CPU

    def _select(self, windows: torch.Tensor) -> torch.Tensor:
        """The policy's input from a batch of windows of frame features [B, n, d]."""
        return self.enc.encode_for_policy(windows, self.output).float().cpu()  # (B, D) or (B, n-1, W)

    def input_label(self) -> str:
        if self.output == "tokens":
            return (f"tokens: the Temporal Diff-Transformer's {self.window - 1} {self.dim}-d states of a "
                    f"{self.window}-frame window (stride {self.stride}), attention-pooled by the policy")
        return f"`{self.output}` ({self.dim}-d) of a {self.window}-frame window (stride {self.stride})"


def window_indices(t: int, n: int, stride: int = 1) -> torch.Tensor:
    """Row s: frames of the window the stream gives at step s, oldest first: s - (n-1-j)*stride, padded at
    episode start with the first frame of s's stream (s mod stride)."""
    steps = torch.arange(t).unsqueeze(1)                                     # (T, 1)
    offsets = (torch.arange(n).unsqueeze(0) - (n - 1)) * stride              # (1, n): -(n-1)*stride .. 0
    return torch.maximum(steps + offsets, steps % stride)                    # (T, n)


# --- identities ------------------------------------------------------------------------------------
def frame_identity(net) -> dict:
    """What determines a frozen network's frame features: its weights and, when not eager, the runtime that
    ran them (an eager identity is unchanged from before runtimes existed, so old cells are still found)."""
    from roboact.backbones.runtime import runtime_identity

    spec = net.spec()
    return {"net": spec, "fingerprint": weights_fingerprint(spec),
            **runtime_identity(getattr(net, "runtime", "eager"))}


def weights_fingerprint(spec: dict) -> list:
    """Cheap stand-in for hashing big weight files: (name, size, mtime) of the files a spec points to."""
    path = spec.get("path")
    if not path or not Path(path).exists():
        return []
    p = Path(path)
    files = [p] if p.is_file() else sorted(x for x in p.iterdir() if x.is_file())
    return [[f.name, f.stat().st_size, int(f.stat().st_mtime)] for f in files]


def checkpoint_digest(folder: str) -> str:
    """sha256 of a RoboAct checkpoint's config.json + model.safetensors (small: heads only)."""
    from roboact.utils.io import sha256_file

    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        h.update(sha256_file(Path(folder) / name).encode())
    return h.hexdigest()


# --- rows and loaders ------------------------------------------------------------------------------
@dataclass
class RowSpec:
    """One row of the tables: a name and where its encoder comes from."""

    name: str
    kind: Literal["roboact", "backbone", "clip", "r3m", "mpi"]
    path: str | None = None          # checkpoint folder (roboact), weights folder/file (clip, r3m, mpi)
    # One checkpoint per pretraining seed (`--model NAME=D0,D1,...`): policy seed i uses seed_paths[i].
    seed_paths: tuple[str, ...] = ()
    # What the policy sees, when not the run's default: a backbone row's "frame" (default) or "tokens", a
    # RoboAct row's one of OUTPUTS (default: EncoderSettings.output). So one run can hold both backbone rows.
    output: str | None = None

    def __post_init__(self) -> None:
        self.seed_paths = tuple(self.seed_paths)
        if self.seed_paths and self.kind != "roboact":
            raise PolicyError(f"row {self.name!r}: only RoboAct-CLIP rows take one checkpoint per seed")
        if self.seed_paths and not self.path:
            self.path = self.seed_paths[0]
        if not isinstance(self.name, str) or not self.name.strip():
            raise PolicyError(f"row name must be a non-empty string, got {self.name!r}")
        if self.kind not in KINDS:
            raise PolicyError(f"row {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "roboact" and not self.path:
            raise PolicyError(f"row {self.name!r}: a RoboAct-CLIP row needs a checkpoint folder")
        allowed = {"roboact": OUTPUTS, "backbone": BACKBONE_OUTPUTS}.get(self.kind, ())
        if self.output is not None and self.output not in allowed:
            raise PolicyError(f"row {self.name!r}: output must be one of {allowed} for a {self.kind} row, got "
                              f"{self.output!r}" if allowed else
                              f"row {self.name!r}: a {self.kind} row sees the current frame; it takes no output")

    def for_seed(self, seed: int) -> "RowSpec":
        """The row as policy seed `seed` sees it: its own pretraining seed's checkpoint when it has several."""
        if not self.seed_paths:
            return self
        return dataclasses.replace(self, path=self.seed_paths[seed], seed_paths=())

    @property
    def slug(self) -> str:
        return slugify(self.name)


def slugify(name: str) -> str:
    """A row's folder name under cells/ and videos/ (48 characters of its name, lower case, dashes)."""
    s = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return "-".join(x for x in s.split("-") if x)[:48] or "row"


@dataclass
class EncoderSettings:
    """What every row shares: the frozen backbone (same for the backbone row and every checkpoint) and
    which RoboAct output the policy sees."""

    backbone: str = "lite0-minilm"
    backbone_path: str | None = None
    output: str = "fused"            # RoboAct rows' input (a row's own `output` wins)
    window: int | None = None        # window of frames; default: the checkpoint's n_frames (backbone tokens: 16)
    stride: int = 1                  # control steps between the window's frames (1: consecutive frames)
    # Where the frozen networks run. Not part of any cache or cell key: it changes only float rounding.
    # The BC policy itself (a 256-wide MLP) stays on the CPU, next to the simulator.
    device: str = "cpu"
    # How the frozen image tower runs (roboact.backbones.runtime); the resolved runtime IS in the cell keys.
    runtime: str = "default"

    def __post_init__(self) -> None:
        from roboact.utils.device import device_problem

        from roboact.backbones import BackboneError
        from roboact.backbones.runtime import resolve_runtime

        problem = device_problem(self.device)
        if problem:
            raise PolicyError(f"device: {problem}")
        try:
            resolve_runtime(self.runtime, self.device)
        except BackboneError as e:
            raise PolicyError(f"runtime: {e}") from None
        if self.output not in OUTPUTS:
            raise PolicyError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        if self.window is not None and self.window < 2:
            raise PolicyError(f"window must be >= 2 frames, got {self.window}")
        if self.stride < 1:
            raise PolicyError(f"stride must be >= 1, got {self.stride}")


def load_frozen_backbone(settings: EncoderSettings):
    from roboact.backbones import load_backbone

    kwargs = {"load_text": False} if settings.backbone == "lite0-minilm" else {}
    return load_backbone(settings.backbone, path=settings.backbone_path, device=settings.device,
                         runtime=settings.runtime, **kwargs)


def check_checkpoint(path: str, settings: EncoderSettings):
    """(checkpoint folder, its config) for a folder or run folder (roboact.models.checkpoints), or a
    PolicyError when it is missing, unreadable or made with another backbone than the benchmark's (--backbone,
    --backbone-path: every row shares one frozen backbone)."""
    from roboact.models.checkpoints import CheckpointError, check_backbone, find_checkpoint
    from roboact.models.encoder import load_config

    try:
        folder, why = find_checkpoint(path)
        if folder is None:
            raise CheckpointError(f"{path}: not a RoboAct-CLIP checkpoint folder ({why}); pass the folder "
                                  "`roboact train` writes (or its run folder, whose final/ is used)")
        cfg = load_config(folder)
        check_backbone(cfg, settings.backbone, settings.backbone_path, where=f"{path}: checkpoint")
    except CheckpointError as e:
        raise PolicyError(str(e)) from None
    return folder, cfg


def load_roboact(spec: RowSpec, settings: EncoderSettings) -> RoboActObsEncoder:
    from roboact.models.encoder import CheckpointError, RoboActEncoder

    folder, _ = check_checkpoint(spec.path, settings)
    try:
        enc = RoboActEncoder.from_pretrained(folder, backbone=load_frozen_backbone(settings), device=settings.device)
    except CheckpointError as e:
        raise PolicyError(str(e)) from None
    return RoboActObsEncoder(enc, str(folder), spec.name, spec.output or settings.output, settings.window,
                             settings.stride)


def backbone_window(window: int | None) -> int:
    """The backbone `tokens` row's window: --window, else RoboAct-CLIP's default n (16, the paper's)."""
    from roboact.models.config import RoboActConfig

    return window or RoboActConfig.n_frames


def load_backbone_row(spec: RowSpec, settings: EncoderSettings) -> FrozenObsEncoder:
    net = load_frozen_backbone(settings)
    if (spec.output or "frame") == "tokens":
        return FrameWindowObsEncoder(net, spec.name, backbone_window(settings.window), settings.stride)
    return FrameObsEncoder(net, spec.name)


def load_clip(path: str | None, device: str = "cpu", runtime: str = "default") -> FrameObsEncoder:
    from roboact.backbones import BackboneError, load_backbone
    from roboact.backbones.hf_clip import DEFAULT_CLIP, clip_weights_present

    if path is None and not clip_weights_present(DEFAULT_CLIP):
        raise EncoderUnavailable("not run: no weights (pass --clip /dir/with/clip; "
                                 f"{DEFAULT_CLIP} is not in the local Hugging Face cache)")
    try:
        return FrameObsEncoder(load_backbone("hf-clip", path=path or DEFAULT_CLIP, device=device,
                                             runtime=runtime), "CLIP")
    except BackboneError as e:
        raise PolicyError(f"real CLIP row: {e}") from None


def load_r3m_row(path: str | None, device: str = "cpu") -> FrameObsEncoder:
    from roboact.policy.r3m import R3MError, load_r3m

    if path is None:
        raise EncoderUnavailable("not run: no weights (pass --r3m /dir/with/model.pt)")
    try:
        return FrameObsEncoder(load_r3m(path).to(device), "R3M")
    except R3MError as e:
        raise PolicyError(f"R3M row: {e}") from None


def load_mpi(path: str | None) -> FrozenObsEncoder:
    """MPI's representation is its own ViT conditioned on a DistilBERT language embedding, released only with
    MPI's model code (github.com/OpenDriveLab/MPI); that code is not vendored here, so we check the folder
    and report the row as not supported rather than approximate it."""
    if path is None:
        raise EncoderUnavailable("not run: no weights (pass --mpi /dir/with/MPI-*.pt and its .json)")
    p = Path(path)
    pts, jsons = sorted(p.glob("*.pt")) if p.is_dir() else [], sorted(p.glob("*.json")) if p.is_dir() else []
    if not pts or not jsons:
        raise PolicyError(f"{p}: not an MPI checkpoint folder (expected a *.pt state dict and its *.json config)")
    raise EncoderUnavailable(f"not run: not supported (MPI checkpoint found at {pts[0]}, but its ViT + "
                             "DistilBERT encoder needs MPI's own model code, which roboact does not vendor)")


def build_encoder(spec: RowSpec, settings: EncoderSettings) -> FrozenObsEncoder:
    """Build a row's encoder; `EncoderUnavailable` for baselines without weights, `PolicyError` for bad input."""
    if spec.kind == "roboact":
        return load_roboact(spec, settings)
    if spec.kind == "backbone":
        return load_backbone_row(spec, settings)
    if spec.kind == "clip":
        return load_clip(spec.path, settings.device, settings.runtime)
    if spec.kind == "r3m":
        return load_r3m_row(spec.path, settings.device)
    return load_mpi(spec.path)


def set_threads(n: int) -> None:
    """Torch intra-op threads for this process (0: leave torch's default)."""
    if n > 0:
        torch.set_num_threads(n)
