"""Class-name text features for zero-shot factor classification, from names alone.

The text branches (paper eq. 2) were trained on whole captions, never on a bare word such as "push", so
encoding "push" alone would ask the text MLPs about inputs they never saw. Instead each class is
described by every caption the vocabulary can produce with it: for factor f and class c, the prototype
is the mean over all captions `atomic_caption(s, a, o)` of the full subject x action x object grid that
have f = c, of the (L2-normalised) text-branch feature f, L2-normalised again. This is CLIP's prompt
ensembling with the other two factors marginalised out uniformly. It uses only the vocabulary's names
(no clip, no label statistics), and every name gets the same number of prompts per other-factor value,
so no class is favoured by how often it occurs in the data. Grid captions include pairs never seen in
training: for those the text tower generalises or it does not; that is what is being measured.
"""
from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from roboact.data.captions import atomic_caption
from roboact.models.config import FACTORS


def vocab_grid(subjects: list[str], actions: list[str], objects: list[str]) -> tuple[list[str], torch.Tensor]:
    """Every (subject, action, object) caption of the vocabulary, and its ids (G, 3) in FACTORS order."""
    ids = list(itertools.product(range(len(subjects)), range(len(actions)), range(len(objects))))
    captions = [atomic_caption(subjects[s], actions[a], objects[o]) for s, a, o in ids]
    return captions, torch.tensor(ids, dtype=torch.long).reshape(-1, 3)


def class_prototypes(branch_feats: torch.Tensor, class_ids: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Mean of normalised rows (G, D) per class id (G,) -> (K, D), L2-normalised; every class needs a row."""
    counts = torch.bincount(class_ids, minlength=n_classes)                     # (K,)
    if len(counts) > n_classes or (counts == 0).any():
        raise ValueError(f"class ids must cover 0..{n_classes - 1} exactly, got counts {counts.tolist()}")
    x = F.normalize(branch_feats.float(), dim=-1)                               # (G, D)
    sums = torch.zeros(n_classes, x.shape[1]).index_add_(0, class_ids, x)       # (K, D)
    return F.normalize(sums / counts[:, None], dim=-1)


@torch.no_grad()
def zero_shot_classifiers(model, grid_text_feats: torch.Tensor, grid_ids: torch.Tensor,
                          n_classes: dict[str, int], batch: int = 1024) -> dict[str, torch.Tensor]:
    """Prototypes (K_f, D) per factor from the frozen text-tower features of the grid captions (G, d_text),
    through `model`'s text MLPs."""
    dev = next(model.parameters()).device
    parts: dict[str, list[torch.Tensor]] = {f: [] for f in FACTORS}
    for i in range(0, len(grid_text_feats), batch):
        out = model.encode_text_features(grid_text_feats[i:i + batch].to(dev, torch.float32))
        for f in FACTORS:
            parts[f].append(out[f].float().cpu())                               # (b, D)
    return {f: class_prototypes(torch.cat(parts[f]), grid_ids[:, j], n_classes[f])
            for j, f in enumerate(FACTORS)}
