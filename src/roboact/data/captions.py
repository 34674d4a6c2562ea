"""Caption templates of the paper, in one place.

Algorithm 1 writes "Robot (or Human) [A] [O], Action is A, Object is O." and eq. 18 writes the recombined
caption as "{i} {j} the {k}, action is {j}". We conjugate the verb in the third person ("Robot opens
drawer") as in the paper's own examples; multi-word actions conjugate their first word ("turns on").
"""
from __future__ import annotations

_ES_ENDINGS = ("s", "sh", "ch", "x", "z", "o")


def third_person(verb: str) -> str:
    """'open' -> 'opens', 'push' -> 'pushes', 'turn on' -> 'turns on', 'carry' -> 'carries'."""
    words = verb.strip().split()
    if not words:
        raise ValueError("empty action")
    head = words[0]
    if head.endswith("y") and len(head) > 1 and head[-2] not in "aeiou":
        head = head[:-1] + "ies"
    elif head.endswith(_ES_ENDINGS):
        head = head + "es"
    else:
        head = head + "s"
    return " ".join([head, *words[1:]])


def _check(subject: str, action: str, obj: str) -> None:
    for name, v in (("subject", subject), ("action", action), ("object", obj)):
        if not isinstance(v, str) or not v.strip():
            raise ValueError(f"caption {name} must be a non-empty string, got {v!r}")


def atomic_caption(subject: str, action: str, obj: str) -> str:
    """Algorithm 1, line 10: 'Robot opens drawer, Action is open, Object is drawer.'"""
    _check(subject, action, obj)
    return f"{subject} {third_person(action)} {obj}, Action is {action}, Object is {obj}."


def recombined_caption(subject: str, action: str, obj: str) -> str:
    """Eq. 18: 'Robot opens the drawer, action is open.'"""
    _check(subject, action, obj)
    return f"{subject} {third_person(action)} the {obj}, action is {action}."
