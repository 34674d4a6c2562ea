"""The evaluation suites beyond the main table: time reversal, open-vocabulary composition and unseen
viewpoint. What each measures, how its clips are chosen and why a suite may not apply are decided here,
as pure functions of labels and tensors; the runner only feeds them each model's features.
"""
from __future__ import annotations

import torch

from roboact.data.opposites import OPPOSITE, REVERSIBLE_PAIRS
from roboact.eval.config import EVAL_SUITES
from roboact.eval.metrics import cosine_matrix

TITLES = {"standard": "Standard metrics", "reversal": "Time reversal",
          "openvocab": "Open-vocabulary composition", "viewpoint": "Unseen viewpoint"}


def two_way_accuracy(feats: torch.Tensor, class_feats: torch.Tensor, right: torch.Tensor,
                     wrong: torch.Tensor) -> float:
    """Fraction of clips (N, D) whose feature is more cosine-similar to class `right` than to class `wrong`
    (rows of class_feats (K, D)); an exact tie counts one half.

    Half, not "against the model" as in retrieval: with two candidates a tie is a coin flip, and it keeps
    the promise that an order-blind encoder scores exactly 0.5 on forward + reversed together.
    """
    if not (feats.shape[0] == right.shape[0] == wrong.shape[0]):
        raise ValueError(f"{feats.shape[0]} features, {right.shape[0]} right and {wrong.shape[0]} wrong labels")
    if len(right) == 0:
        return float("nan")
    s = cosine_matrix(feats, class_feats)                                        # (N, K)
    r, w = s.gather(1, right[:, None])[:, 0], s.gather(1, wrong[:, None])[:, 0]
    return float(((r > w).float() + 0.5 * (r == w).float()).mean())


def reversal_targets(actions: list[str], clip_actions: torch.Tensor) -> torch.Tensor:
    """(N,) action id of each clip's opposite, or -1 where the action has none in the vocabulary."""
    index = {a: i for i, a in enumerate(actions)}
    opp = [index.get(OPPOSITE.get(a, ""), -1) for a in actions]
    return torch.tensor(opp, dtype=torch.long)[clip_actions] if len(actions) else clip_actions.new_full((0,), -1)


def reversal_pairs_in(actions: list[str]) -> list[tuple[str, str]]:
    """The table's pairs whose two actions both occur in the vocabulary."""
    return [(a, b) for a, b in REVERSIBLE_PAIRS if a in actions and b in actions]


def unseen_cameras(eval_rows, train_rows) -> list[str]:
    """Cameras of the scored clips that no clip of the training split was filmed from."""
    return sorted({r.camera for r in eval_rows} - {r.camera for r in train_rows})


def applicability(data) -> dict[str, str]:
    """{suite: "" if it applies to `data`, else why not}."""
    why = dict.fromkeys(EVAL_SUITES, "")
    if not bool((data.reversal_opposite >= 0).any()):
        have = ", ".join(data.vocab.actions)
        why["reversal"] = (f"no scored clip has an action whose opposite is also in the vocabulary "
                           f"(reversible pairs: {', '.join('/'.join(p) for p in REVERSIBLE_PAIRS)}; actions: {have})")
    if not bool(data.heldout_mask.any()):
        why["openvocab"] = (f"no scored clip has an (action, object) pair absent from split "
                            f"{data.train_split!r} (make one with `roboact split MANIFEST --by compositional`)")
    if not data.unseen_cameras:
        why["viewpoint"] = (f"every camera of the scored split ({', '.join(data.eval_cameras) or 'none'}) also "
                            f"appears in split {data.train_split!r} (make one with "
                            f"`roboact split MANIFEST --by camera --cameras NAME`)")
    return why


def select_suites(requested: list[str] | None, why_not: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """(suites to run in report order, {suite: reason} for those not run).

    Unrequested suites (when a list is given) are "not selected"; with no list every applicable suite runs.
    A suite asked for by name that cannot apply is an error: the user expected numbers that cannot exist.
    """
    if requested is not None:
        bad = [s for s in requested if why_not[s]]
        if bad:
            raise ValueError(f"suite {bad[0]!r} cannot run on this data: {why_not[bad[0]]}")
        run = [s for s in EVAL_SUITES if s in requested]
        return run, {s: "not selected (--suites)" for s in EVAL_SUITES if s not in requested}
    return [s for s in EVAL_SUITES if not why_not[s]], {s: why_not[s] for s in EVAL_SUITES if why_not[s]}
