"""The answer of an annotator for one instruction, and Algorithm 1's decision on it (lines 6-10).

Both annotators return an `Annotation` (how many actions, and a verb lemma + object for each) or an
`AnnotationFailure` (no answer: the reason says why, and `pending` says whether a rerun may still answer,
e.g. when the LLM request budget ran out). `judge` is the one place where "multiple actions" is decided.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, Union


@dataclass(frozen=True)
class Action:
    verb: str                 # lemma, e.g. "open", "pick up"
    object: str               # short noun phrase, e.g. "drawer", "tissue box"


@dataclass(frozen=True)
class Annotation:
    num_actions: int
    actions: tuple[Action, ...]
    annotator: str            # "rules" or "llm:<model>"
    note: str = ""            # what the annotator saw (e.g. "sequence word 'then'")


@dataclass(frozen=True)
class AnnotationFailure:
    code: str                 # a rejection code (llm_unparseable, llm_error) or "pending"
    reason: str
    pending: bool = False


Outcome = Union[Annotation, AnnotationFailure]


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    action: Action | None = None
    code: str = ""            # rejection code when not accepted
    reason: str = ""


class Annotator(Protocol):
    name: str

    def annotate_all(self, instructions: Sequence[str]) -> dict[str, Outcome]:
        """One outcome per distinct instruction; never raises for a single bad instruction."""

    def close(self) -> None:
        """Release caches/connections."""


def judge(ann: Annotation) -> Verdict:
    """Algorithm 1, lines 6-9: reject multi-action texts, else keep the single (verb, object)."""
    n = max(ann.num_actions, len(ann.actions))
    if n > 1:
        listed = "; ".join(f"{a.verb} {a.object}".strip() for a in ann.actions)
        detail = f" ({listed})" if listed else ""
        note = f" [{ann.note}]" if ann.note else ""
        return Verdict(False, code="multi_action", reason=f"{n} actions{detail}{note}")
    if n == 0 or not ann.actions:
        return Verdict(False, code="no_action", reason=f"no action found{' [' + ann.note + ']' if ann.note else ''}")
    act = ann.actions[0]
    if not act.verb:
        return Verdict(False, code="no_action", reason="no verb found")
    if not act.object:
        return Verdict(False, code="no_action", reason=f"no object found for verb '{act.verb}'")
    return Verdict(True, action=act)
