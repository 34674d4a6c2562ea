"""roboact: RoboAct-CLIP video-language encoders for robot actions.

    import roboact
    enc = roboact.load("path/to/checkpoint")        # frozen backbone + trained heads, eval mode, CPU
    out = enc.encode_video(frames)                   # {"subject", "action", "object", "fused"}
"""
from __future__ import annotations

__version__ = "0.1.0"


def load(path_or_name: str, device: str = "cpu", **kwargs):
    """Load a ready encoder (see `roboact.models.encoder.load`). Imported lazily to keep `import roboact` cheap."""
    from roboact.models.encoder import load as _load

    return _load(path_or_name, device=device, **kwargs)


__all__ = ["load", "__version__"]
