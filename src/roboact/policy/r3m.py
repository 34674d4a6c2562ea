"""R3M's image encoder from its published checkpoint, without torchvision.

R3M (Nair et al., 2022) ships `model.pt` (+ `config.yaml`) per ResNet size; `torch.load(model.pt)["r3m"]`
is the state dict of `DataParallel(R3M)`, whose `convnet` is a torchvision ResNet with `fc = Identity`.
We rebuild that ResNet with torchvision's parameter names (so the state dict loads strictly), infer the
depth from the weights, and preprocess as R3M's `forward` does for non-224 inputs: [0, 255] -> [0, 1],
resize the short side to 256, centre-crop 224, ImageNet mean/std. Language heads (`lang_enc`,
`lang_rew`) are dropped. Loading never unpickles code (`weights_only=True`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# depth -> (block, blocks per stage), as torchvision.models.resnet
ARCHS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3)),
         101: ("bottleneck", (3, 4, 23, 3)), 152: ("bottleneck", (3, 8, 36, 3))}


class R3MError(ValueError):
    """An R3M checkpoint is missing, unreadable or not an R3M ResNet; names the file."""


def _downsample(cin: int, cout: int, stride: int) -> nn.Module | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _downsample(cin, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + idt)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1):
        super().__init__()  # torchvision's v1.5 layout: the stride sits on the 3x3 conv
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = _downsample(cin, planes * 4, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + idt)


class ResNetTrunk(nn.Module):
    """torchvision ResNet up to the global average pool (R3M's `convnet` with fc = Identity)."""

    def __init__(self, depth: int = 50):
        super().__init__()
        if depth not in ARCHS:
            raise R3MError(f"unsupported ResNet depth {depth}; R3M uses 18, 34 or 50")
        kind, counts = ARCHS[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.depth = depth
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), counts)):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, planes, 2 if (j == 0 and i > 0) else 1))
                cin = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.out_dim = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)    # (B, 64, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))       # (B, C, H/32, W/32)
        return x.mean(dim=(2, 3))                                        # (B, C)


def infer_depth(state: dict[str, torch.Tensor]) -> int:
    """ResNet depth from a trunk state dict (block type and blocks per stage)."""
    bottleneck = "layer1.0.conv3.weight" in state
    counts = tuple(len({k.split(".")[1] for k in state if k.startswith(f"layer{i}.")}) for i in range(1, 5))
    for depth, (kind, c) in ARCHS.items():
        if c == counts and (kind == "bottleneck") == bottleneck:
            return depth
    raise R3MError(f"weights are not a torchvision ResNet trunk (blocks per stage {counts}, "
                   f"{'bottleneck' if bottleneck else 'basic'} blocks)")


def trunk_state(ckpt: dict) -> dict[str, torch.Tensor]:
    """R3M snapshot -> trunk state dict: take ['r3m'], drop DataParallel's 'module.', keep 'convnet.*'."""
    state = ckpt.get("r3m", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise R3MError("checkpoint holds no state dict (expected a dict with an 'r3m' entry)")
    out = {}
    for k, v in state.items():
        k = k.removeprefix("module.")
        if k.startswith("convnet.") and isinstance(v, torch.Tensor):
            out[k.removeprefix("convnet.")] = v
    if not out:
        raise R3MError(f"no 'convnet.*' weights in the checkpoint (keys start: {sorted(state)[:3]})")
    return out


class R3MEncoder(nn.Module):
    """uint8 frames [N, H, W, 3] -> R3M embeddings [N, 2048] (ResNet-50; 512 for 18/34), on CPU."""

    name = "r3m"

    def __init__(self, trunk: ResNetTrunk, source: str = ""):
        super().__init__()
        self.trunk = trunk.eval()
        self.image_dim = trunk.out_dim
        self.source = source
        for p in self.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> "R3MEncoder":
        return super().train(False)  # frozen: BatchNorm statistics never move

    def spec(self) -> dict:
        return {"name": f"r3m-resnet{self.trunk.depth}", "path": self.source}

    def preprocess(self, frames_u8: torch.Tensor) -> torch.Tensor:
        x = frames_u8.permute(0, 3, 1, 2).float() / 255.0                   # (N, 3, H, W) in [0, 1]
        h, w = x.shape[-2:]
        scale = 256 / min(h, w)
        x = F.interpolate(x, size=(round(h * scale), round(w * scale)), mode="bilinear", antialias=True,
                          align_corners=False)
        top, left = (x.shape[-2] - 224) // 2, (x.shape[-1] - 224) // 2
        x = x[..., top:top + 224, left:left + 224]                          # (N, 3, 224, 224)
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return (x - mean) / std

    @torch.no_grad()
    def encode_images(self, frames: np.ndarray | torch.Tensor, batch_size: int = 16) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(frames)) if not isinstance(frames, torch.Tensor) else frames
        if x.ndim == 3:
            x = x.unsqueeze(0)
        if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 [N, H, W, 3], got {x.dtype} {tuple(x.shape)}")
        dev = next(self.parameters()).device                                  # preprocess on CPU, net wherever it is
        outs = [self.trunk(self.preprocess(x[i:i + batch_size]).to(dev)).float().cpu()
                for i in range(0, len(x), batch_size)]
        return torch.cat(outs)                                                # (N, image_dim), on CPU


def checkpoint_file(path: str | os.PathLike) -> Path:
    """R3M's folder (holding model.pt, as `load_r3m` downloads it) or the .pt file itself."""
    p = Path(path)
    f = p / "model.pt" if p.is_dir() else p
    if not f.is_file():
        raise R3MError(f"{f}: R3M checkpoint not found (pass the folder holding model.pt, or the file)")
    return f


def load_r3m(path: str | os.PathLike) -> R3MEncoder:
    f = checkpoint_file(path)
    try:
        ckpt = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, pickle of arbitrary objects (refused), not a torch file
        raise R3MError(f"{f}: cannot read as a weights-only torch checkpoint: {type(e).__name__}: {e}") from None
    try:
        state = trunk_state(ckpt)
        trunk = ResNetTrunk(infer_depth(state))
        trunk.load_state_dict(state, strict=True)
    except R3MError as e:
        raise R3MError(f"{f}: {e}") from None
    except RuntimeError as e:  # shape or key mismatch
        raise R3MError(f"{f}: weights do not fit a torchvision ResNet: {e}") from None
    return R3MEncoder(trunk, source=str(f))
