"""Finding checkpoints and checking they fit a backbone: the one resolver behind `roboact.load`, `roboact eval`
and `roboact policy`, and the one parser of their `--model NAME=DIR[,DIR...]`.

A checkpoint is a folder with config.json + model.safetensors (written by `save_pretrained`). Users name one
by that folder, by the run folder `roboact train` wrote (its `final/` is used), by a name under the model
store ($ROBOACT_HOME/models, default ~/.cache/roboact/models), or by a Hugging Face Hub repo id `org/name`
that is neither (roboact.models.hub: its local cache first, the Hub only when online).
"""
from __future__ import annotations

import os
from pathlib import Path

from roboact.models import hub

CONFIG_NAME = "config.json"


class CheckpointError(ValueError):
    """A checkpoint folder is missing, corrupted or inconsistent with its config; names the file."""


def model_store() -> Path:
    return Path(os.environ.get("ROBOACT_HOME", Path.home() / ".cache" / "roboact")) / "models"


def candidates(path_or_name: str | os.PathLike) -> list[Path]:
    """Where a name may point, in the order tried: the folder, its `final/`, the same in the model store."""
    p = Path(path_or_name)
    places = [p] + ([] if p.is_absolute() else [model_store() / str(path_or_name)])
    return [c for base in places for c in (base, base / "final")]


def find_checkpoint(path_or_name: str | os.PathLike) -> tuple[Path | None, str]:
    """(checkpoint folder, "") or (None, why not): for callers that report a missing model as "not run"."""
    for cand in candidates(path_or_name):
        if (cand / CONFIG_NAME).is_file():
            return cand, ""
    p = Path(path_or_name)
    if not p.exists():
        store = model_store() / str(path_or_name)
        why = f"{p} does not exist" + (f" (nor {store})" if str(store) != str(p) else "")
        if not hub.is_repo_id(path_or_name):
            return None, why
        found = hub.find_on_hub(str(path_or_name))
        return (found.folder, "") if found.folder else (None, "; ".join([why, *found.tried]))
    steps = sorted((p / "checkpoints").glob("step_*")) if (p / "checkpoints").is_dir() else []
    if steps:
        return None, f"training unfinished: {p} has {steps[-1].name} but no final/"
    return None, f"no {CONFIG_NAME} in {p} or {p / 'final'}"


def resolve_checkpoint(path_or_name: str | os.PathLike) -> Path:
    """The checkpoint folder a user named, or CheckpointError saying what was tried and why it failed."""
    found, why = find_checkpoint(path_or_name)
    if found is None:
        places = [str(c) for c in candidates(path_or_name)]
        if hub.is_repo_id(path_or_name):
            places.append(str(hub.repo_cache_folder(str(path_or_name))))     # and the Hub, as `why` says
        raise CheckpointError(f"no roboact checkpoint named {str(path_or_name)!r} ({why}); looked in "
                              + ", ".join(places) + " (make one with `roboact train` or `roboact demo`, install "
                              "one with `roboact pretrain --recipe NAME`, or name a Hub repo id org/name)")
    return found


def check_backbone(cfg, name: str, path: str | None = None, image_dim: int | None = None,
                   text_dim: int | None = None, where: str = "checkpoint") -> None:
    """A checkpoint's heads fit a backbone only if it is the backbone they were trained on (same name, same
    weights folder when both name one) with the widths they expect. CheckpointError naming what differs."""
    if cfg.backbone != name:
        raise CheckpointError(f"{where} was trained on backbone {cfg.backbone!r}, not {name!r}; every row and "
                              "feature here must come from the backbone the heads were trained on")
    if path and cfg.backbone_path and Path(cfg.backbone_path).resolve() != Path(path).resolve():
        raise CheckpointError(f"{where} was trained on {cfg.backbone} weights at {cfg.backbone_path!r}, "
                              f"not {path!r}")
    for what, want, have in (("image", cfg.image_dim, image_dim), ("text", cfg.text_dim, text_dim)):
        if have is not None and want != have:
            raise CheckpointError(f"{where} expects {what} features of width {want}; backbone {name} gives {have}")


def parse_model_spec(spec: str) -> tuple[str, list[str]]:
    """'NAME=DIR' -> (NAME, [DIR]); 'NAME=D0,D1,D2' -> (NAME, [D0, D1, D2]): one table row whose checkpoints
    are the seeds of one pretraining (eval averages them; policy pairs pretraining seed i with policy seed i)."""
    name, sep, folders = spec.partition("=")
    if not sep or not name.strip() or not folders.strip():
        raise ValueError(f"--model {spec!r}: expected NAME=CHECKPOINT_DIR or NAME=DIR,DIR,... (one per seed)")
    parts = [f.strip() for f in folders.split(",")]
    if any(not f for f in parts):
        raise ValueError(f"--model {spec!r}: row {name.strip()!r} has an empty folder in its comma-separated list")
    return name.strip(), parts


__all__ = ["CheckpointError", "candidates", "check_backbone", "find_checkpoint", "model_store",
           "parse_model_spec", "resolve_checkpoint"]
