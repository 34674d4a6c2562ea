"""How an instruction reaches a multi-task policy: one conditioning vector per instruction.

LIBERO-Goal's ten tasks share one scene and the same initial layouts; only the instruction tells them apart,
so a multi-task policy is only as good as what it is told. Three ways, compared in the same table:

- `roboact-text`: the RoboAct-CLIP checkpoint's text branch, the paper's three text MLPs (eq. 2) on the
  frozen text tower: [subject; object; action] features (the text vector of eq. 23). Only a RoboAct row has
  one; on any other row the condition is reported as not run.
- `sentence`: the frozen backbone's own text tower (a plain sentence embedding, MiniLM for lite0-minilm): what
  a user without RoboAct-CLIP would reach for.
- `onehot`: the task's index among the training tasks, an upper reference that cannot generalise: an
  instruction outside the training set gets the zero vector (the table marks such tasks unseen).

Vectors are computed once per cell for the handful of instructions involved (a text tower per cell costs a
second), so nothing here runs per control step.
"""
from __future__ import annotations

import torch

from roboact.policy.suites import PolicyError

CONDITIONS = ("roboact-text", "sentence", "onehot")
LABELS = {"roboact-text": "RoboAct-CLIP text branch (subject/object/action MLPs)",
          "sentence": "backbone text tower (sentence embedding)",
          "onehot": "task one-hot (no generalisation)"}


def check_instruction(text: object, where: str) -> str:
    """An instruction must be a non-empty string (no stray whitespace-only or non-text values)."""
    if not isinstance(text, str) or not text.strip():
        raise PolicyError(f"{where}: instruction must be a non-empty string, got {text!r}")
    return " ".join(text.split())


def unavailable(condition: str, row_kind: str) -> str | None:
    """Why a (row, condition) pair cannot run, as the table prints it; None when it can."""
    if condition not in CONDITIONS:
        raise PolicyError(f"condition must be one of {CONDITIONS}, got {condition!r}")
    if condition == "roboact-text" and row_kind != "roboact":
        return "not run: only a RoboAct-CLIP checkpoint has the text branch"
    return None


def _text_backbone(settings):
    """The frozen backbone with its text tower (the policy's image rows load it image-only)."""
    from roboact.backbones import BackboneError, load_backbone

    kwargs = {"load_text": True} if settings.backbone == "lite0-minilm" else {}
    try:
        return load_backbone(settings.backbone, path=settings.backbone_path, **kwargs)
    except BackboneError as e:
        raise PolicyError(f"text tower of backbone {settings.backbone!r}: {e}") from None


@torch.no_grad()
def condition_vectors(condition: str, instructions: list[str], train_instructions: list[str], settings,
                      checkpoint: str | None = None) -> torch.Tensor:
    """[K, C] float32: one vector per instruction. `train_instructions` fixes the one-hot's order (and which
    instructions are seen); `checkpoint`: the RoboAct row's folder for `roboact-text`."""
    if unavailable(condition, "roboact" if checkpoint else "") is not None:
        raise PolicyError(f"condition {condition!r} needs a RoboAct-CLIP checkpoint")
    if condition == "onehot":
        index = {t: i for i, t in enumerate(train_instructions)}
        out = torch.zeros(len(instructions), len(train_instructions))
        for row, text in enumerate(instructions):
            if text in index:
                out[row, index[text]] = 1.0
        return out
    feats = _text_backbone(settings).encode_texts(list(instructions)).float()      # (K, d_text)
    if condition == "sentence":
        return feats
    from roboact.models.encoder import load_heads

    heads = load_heads(checkpoint).eval()
    dev = next(heads.parameters()).device
    return heads.encode_text_features(feats.to(dev))["fused"].float().cpu()       # (K, 3D)


def condition_identity(condition: str, train_instructions: list[str], settings,
                       checkpoint_digest: str | None = None) -> dict:
    """What determines the vectors (part of a multi-task cell's key)."""
    ident = {"condition": condition, "train_instructions": list(train_instructions)}
    if condition != "onehot":
        ident["text_backbone"] = [settings.backbone, settings.backbone_path]
    if condition == "roboact-text":
        ident["checkpoint"] = checkpoint_digest
    return ident
