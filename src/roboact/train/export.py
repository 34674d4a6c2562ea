"""`roboact export CKPT DIR`: a checkpoint as the folder a model hub expects, ready for `hf upload ORG/NAME DIR`.

    DIR/config.json            the checkpoint's config (RoboActConfig, backbone, training config), unchanged
    DIR/model.safetensors      the trained heads and feature banks, unchanged (safetensors: nothing to unpickle)
    DIR/README.md              model card: training data, configuration, measured scores (train/recipes.model_card)
    DIR/recipe.json, corpus.json   when the checkpoint was installed by `roboact pretrain --recipe`

`roboact.load(DIR)` loads the folder as it is, and `roboact.load("ORG/NAME")` once it is on the Hub (or in the
local Hugging Face cache). Scores in the card come from the checkpoint's own records (the validation metrics
`roboact train` logged at its step) and from a `--scores` JSON file the user measured, never from elsewhere.
"""
from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

from roboact.utils.io import atomic_path, atomic_write_text, read_json

WEIGHTS = ("config.json", "model.safetensors")
RECORDS = ("recipe.json", "corpus.json")            # written beside a model by `roboact pretrain` (install_model)


def read_scores(path: str | os.PathLike) -> list[dict]:
    """A user's scores file: {"metric": number} or {"section": {"metric": number}} -> model-card score blocks."""
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{path}: scores must be a non-empty JSON object of metric -> number "
                         "(or section -> {metric -> number})")
    flat = {k: v for k, v in data.items() if not isinstance(v, dict)}
    sections = [(f"{path}", flat)] if flat else []
    sections += [(f"{path}: {k}", v) for k, v in data.items() if isinstance(v, dict)]
    blocks = []
    for source, metrics in sections:
        for k, v in metrics.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{source}: score {k!r} must be a finite number, got {v!r}")
        blocks.append({"source": source, "metrics": {k: float(v) for k, v in metrics.items()}})
    return blocks


def export_checkpoint(ckpt: str | os.PathLike, out_dir: str | os.PathLike, name: str | None = None,
                      scores_file: str | os.PathLike | None = None) -> Path:
    """Write `out_dir` (created if needed; other files in it, e.g. a .git, are left alone). The checkpoint is
    loaded once first, so a corrupted one is refused before anything is written."""
    from roboact.models.checkpoints import resolve_checkpoint
    from roboact.models.encoder import load_heads
    from roboact.models.hub import is_repo_id
    from roboact.train.recipes import corpus_record, model_card, validation_scores

    src = resolve_checkpoint(ckpt)
    load_heads(src)                                              # CheckpointError naming the bad file
    out = Path(out_dir)
    if out.resolve() == src.resolve():
        raise ValueError(f"export: {out} is the checkpoint folder itself; give another folder")
    user_scores = read_scores(scores_file) if scores_file else []   # a bad file fails before anything is written
    records = {f: read_json(src / f) for f in RECORDS if (src / f).is_file()}
    train = read_json(src / "config.json").get("train")
    corpus = records.get("corpus.json") or _corpus_of(train, corpus_record)
    recipe = records.get("recipe.json")
    name = name or (recipe or {}).get("name") or out.resolve().name
    card = model_card(name, recipe=recipe, corpus=corpus, train=train, scores=validation_scores(src) + user_scores,
                      load_as=name if is_repo_id(name) else f"ORG/{name.rsplit('/', 1)[-1]}")
    out.mkdir(parents=True, exist_ok=True)
    for f in WEIGHTS + tuple(records):
        with atomic_path(out / f) as tmp:
            shutil.copyfile(src / f, tmp)
    atomic_write_text(out / "README.md", card)
    return out


def _corpus_of(train: dict | None, corpus_record) -> dict | None:
    """The corpus summary of a checkpoint trained by `roboact train`, when its manifest is still where the
    training config says (relative paths: from the current folder, as `roboact train` read them)."""
    manifest = ((train or {}).get("data") or {}).get("manifest")
    if manifest and Path(manifest).is_file():
        return corpus_record(Path(manifest))
    return None


__all__ = ["export_checkpoint", "read_scores"]
