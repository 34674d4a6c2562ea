"""Offline rule-based annotator (the default): counts the actions of an instruction and extracts the
verb lemma and object of each, without any network access.

An action is a known manipulation verb standing where a clause can start: at the beginning, after clause
punctuation, or after a connective ("and", "then", "please", "before", ...). Conjunction, comma and
"then" splits are therefore counted through the verbs they introduce, so "salt and pepper" (no verb after
"and") stays one action while "pick up the cup and place it" is two. A sequence word ("then",
"afterwards", "after that", a clause-initial "first"/"next"/"finally") marks the text as multi-action
even when the second verb is not in the vocabulary. When no verb stands at a clause start, the first
known verb anywhere is taken ("the robot opens the drawer", "use the gripper to open the drawer").

The rules are conservative about unknown verbs: a text whose only verb is not in `vocab._VERBS` is
rejected as "no action" rather than guessed.
"""
from __future__ import annotations

from typing import Sequence

from roboact.data.curate.annotation import Action, Annotation, Outcome
from roboact.data.curate.vocab import PARTICLES, PHRASAL, lemma, object_label, tokenize

_PUNCT = frozenset({",", ";", ".", "!", "?", ":"})
_OPENERS = _PUNCT | {"and", "then", "please", "first", "next", "finally", "afterwards", "also", "before",
                     "after", "or", "lastly", "subsequently", "now"}
_ADVERBS = frozenset({"slowly", "gently", "carefully", "quickly", "firmly", "just", "fully", "partially",
                      "partly", "completely", "simply", "then"})
_SEQUENCE_ANYWHERE = ("then", "afterwards", "subsequently", "lastly")
_SEQUENCE_PHRASES = (("after", "that"), ("followed", "by"), ("and", "then"))
_SEQUENCE_AT_CLAUSE_START = frozenset({"first", "firstly", "next", "finally", "second", "secondly"})
# Words that end a noun phrase (prepositions, connectives, adverbs of manner/direction).
_NP_STOP = _PUNCT | PARTICLES | {
    "and", "or", "then", "to", "into", "onto", "from", "with", "at", "of", "for", "by", "inside", "under",
    "above", "below", "behind", "beside", "between", "toward", "towards", "through", "across", "along",
    "until", "using", "so", "that", "which", "while", "before", "after", "clockwise", "counterclockwise",
    "anticlockwise", "slowly", "gently", "carefully", "quickly", "horizontally", "vertically", "forward",
    "forwards", "backward", "backwards", "upward", "upwards", "downward", "downwards", "again", "twice",
    "once", "completely", "fully", "halfway", "there", "here", "as", "if", "without", "about", "around",
    "near", "next", "against", "within", "please"}
_PRONOUNS = frozenset({"it", "them", "this", "that", "these", "those", "one"})


class RuleAnnotator:
    name = "rules"

    def annotate_all(self, instructions: Sequence[str]) -> dict[str, Outcome]:
        return {text: annotate(text) for text in dict.fromkeys(instructions)}

    def close(self) -> None:
        pass


def annotate(text: str) -> Annotation:
    tokens = tokenize(text)
    slots = _verb_slots(tokens)
    note = ""
    if not slots:
        slots = _first_verb_anywhere(tokens)
        note = "verb not at a clause start" if slots else "no known manipulation verb"
    actions = _resolve_pronouns([_action_at(tokens, i) for i in slots])
    n = len(actions)
    marker = _sequence_marker(tokens)
    if marker and n < 2 and n > 0:
        n, note = 2, f"sequence word '{marker}'"
    return Annotation(num_actions=n, actions=actions, annotator="rules", note=note)


def _resolve_pronouns(actions: list[Action]) -> tuple[Action, ...]:
    """'pick up the cup and place it' -> the second object is 'cup' (only for the rejection reason)."""
    out: list[Action] = []
    for a in actions:
        if not a.object and out and out[-1].object:
            a = Action(a.verb, out[-1].object)
        out.append(a)
    return tuple(out)


def _verb_slots(tokens: list[str]) -> list[int]:
    """Indices of known verbs that open a clause (optionally after one adverb)."""
    slots = []
    for i, tok in enumerate(tokens):
        if lemma(tok) is None:
            continue
        prev = tokens[i - 1] if i > 0 else None
        if prev in _ADVERBS and (i < 2 or tokens[i - 2] in _OPENERS):
            prev = None
        if prev is None or prev in _OPENERS:
            slots.append(i)
    return slots


def _first_verb_anywhere(tokens: list[str]) -> list[int]:
    for i, tok in enumerate(tokens):
        if lemma(tok) is not None and (i == 0 or tokens[i - 1] not in {"the", "a", "an"}):
            return [i]
    return []


def _sequence_marker(tokens: list[str]) -> str:
    for i, tok in enumerate(tokens):
        if tok in _SEQUENCE_ANYWHERE:
            return tok
        if tok in _SEQUENCE_AT_CLAUSE_START and (i == 0 or tokens[i - 1] in _PUNCT | {"and"}):
            return tok
        for a, b in _SEQUENCE_PHRASES:
            if tok == a and i + 1 < len(tokens) and tokens[i + 1] == b:
                return f"{a} {b}"
    return ""


def _action_at(tokens: list[str], i: int) -> Action:
    """Verb lemma at tokens[i] (with its particle, before or after the object) and the object after it."""
    verb = lemma(tokens[i]) or tokens[i]
    j = i + 1
    if j < len(tokens) and (verb, tokens[j]) in PHRASAL:
        verb, j = f"{verb} {tokens[j]}", j + 1
    words, end = _noun_phrase(tokens, j)
    # split phrasal verb: "turn the light on" (particle right after the object, then the clause ends)
    if " " not in verb and end < len(tokens) and (verb, tokens[end]) in PHRASAL:
        after = tokens[end + 1] if end + 1 < len(tokens) else None
        if after is None or after in _OPENERS:
            verb = f"{verb} {tokens[end]}"
    obj = "" if (len(words) == 1 and words[0] in _PRONOUNS) else object_label(words)
    return Action(verb=verb, object=obj)


def _noun_phrase(tokens: list[str], j: int) -> tuple[list[str], int]:
    words = []
    while j < len(tokens) and tokens[j] not in _NP_STOP and not (words and lemma(tokens[j]) and _after_np(tokens, j)):
        words.append(tokens[j])
        j += 1
    return words, j


def _after_np(tokens: list[str], j: int) -> bool:
    """A verb form right after a noun, followed by a determiner, starts a new clause ('... cup place the lid')."""
    return j + 1 < len(tokens) and tokens[j + 1] in {"the", "a", "an", "it", "them"}
