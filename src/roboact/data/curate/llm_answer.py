"""The prompt sent to the LLM and the parsing of its answer into an `Annotation`.

The prompt is the paper's sentence (Algorithm 1, line 5) followed by a JSON answer schema, so answers can
be read by a program. Reasoning models still wrap the JSON in prose, `<think>` blocks or code fences, and
sometimes break it (single quotes, trailing commas, a missing closing brace when the answer is cut off);
`parse_answer` takes the last JSON object that carries an action count, repairing what it safely can.
"""
from __future__ import annotations

import json
import re

from roboact.data.curate.annotation import Action, Annotation
from roboact.data.curate.vocab import normalize_object, normalize_verb

PAPER_PROMPT = ("Please identify how many actions are described in the following text, along with the "
                "relevant verbs and objects.")
ANSWER_SCHEMA = ('Answer with one JSON object and nothing else, of the form {"num_actions": <integer>, '
                 '"actions": [{"verb": "<verb in base form, with its particle if phrasal, e.g. pick up>", '
                 '"object": "<the object acted on, as a short noun phrase>"}]}, one entry per action in order.')
PROMPT_TEMPLATE = PAPER_PROMPT + "\n" + ANSWER_SCHEMA + "\n\nText: {instruction}"
SYSTEM_PROMPT = "You annotate instructions given to a robot manipulator."


class AnswerFormatError(ValueError):
    """The answer holds no usable JSON object; the message quotes its start."""


def render_messages(instruction: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": PROMPT_TEMPLATE.replace("{instruction}", instruction)}]


def parse_answer(content: str, annotator: str) -> Annotation:
    """Last JSON object with 'num_actions' or 'actions' in the answer -> Annotation (labels normalised)."""
    text = _strip_reasoning(content or "")
    if not text.strip():
        raise AnswerFormatError("empty answer")
    for candidate in _candidates(text):
        obj = _loads_lenient(candidate)
        if isinstance(obj, dict) and ("num_actions" in obj or "actions" in obj):
            return _to_annotation(obj, annotator)
    snippet = " ".join(text.split())[:160]
    raise AnswerFormatError(f"no JSON object with 'num_actions' in the answer: {snippet!r}")


def _strip_reasoning(content: str) -> str:
    """Drop <think>...</think> blocks; an unclosed block ends at the last '</think>' if any."""
    text = re.sub(r"<think>.*?</think>", " ", content, flags=re.S | re.I)
    if "</think>" in text.lower():
        text = text[text.lower().rindex("</think>") + len("</think>"):]
    return text


def _candidates(text: str) -> list[str]:
    """JSON-looking objects, most likely first: inside code fences (last first), then anywhere (last first)."""
    fenced = re.findall(r"```[a-zA-Z]*\s*(.*?)(?:```|$)", text, flags=re.S)
    out: list[str] = []
    for block in reversed(fenced):
        out.extend(reversed(_balanced_objects(block)))
    out.extend(reversed(_balanced_objects(text)))
    return out


def _balanced_objects(text: str) -> list[str]:
    """Top-level {...} spans; an object still open at the end is closed (answer cut off mid-way)."""
    spans: list[str] = []
    closers: list[str] = []       # expected closing brackets of the open object, innermost last
    start, in_str, escaped = -1, False, False
    for i, ch in enumerate(text):
        if in_str:                # inside a JSON string: only an unescaped quote ends it
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"' and closers:
            in_str = True
        elif ch == "{" or (ch == "[" and closers):
            start = i if not closers else start
            closers.append("}" if ch == "{" else "]")
        elif closers and ch == closers[-1]:
            closers.pop()
            if not closers:
                spans.append(text[start:i + 1])
    if closers:
        tail = text[start:].rstrip().rstrip(",") + ('"' if in_str else "")
        spans.append(tail + "".join(reversed(closers)))
    return spans


def _loads_lenient(s: str):
    try:
        return json.loads(s)
    except json.JSONDecodeError:
        pass
    t = s.replace("\u201c", '"').replace("\u201d", '"').replace("\u2018", "'").replace("\u2019", "'")
    if '"' not in t:
        t = t.replace("'", '"')
    t = re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", re.sub(r"\bNone\b", "null", t)))
    t = re.sub(r'([{,]\s*)([A-Za-z_][A-Za-z0-9_]*)\s*:', r'\1"\2":', t)
    t = re.sub(r",\s*([}\]])", r"\1", t)
    try:
        return json.loads(t)
    except json.JSONDecodeError:
        return None


def _to_annotation(obj: dict, annotator: str) -> Annotation:
    raw = obj.get("actions", [])
    raw = [raw] if isinstance(raw, (dict, str)) else raw
    if not isinstance(raw, list):
        raise AnswerFormatError(f"'actions' must be a list, got {type(raw).__name__}")
    actions = tuple(_to_action(a) for a in raw)
    num = obj.get("num_actions", len(actions))
    if isinstance(num, str) and num.strip().isdigit():
        num = int(num.strip())
    if isinstance(num, bool) or not isinstance(num, int) or num < 0:
        raise AnswerFormatError(f"'num_actions' must be a non-negative integer, got {num!r}")
    return Annotation(num_actions=num, actions=actions, annotator=annotator)


def _to_action(a) -> Action:
    if isinstance(a, str):
        return Action(normalize_verb(a), "")
    if not isinstance(a, dict):
        raise AnswerFormatError(f"an action must be an object, got {a!r}")
    verb = a.get("verb") or a.get("action") or ""
    obj = a.get("object") or a.get("objects") or a.get("target") or ""
    if isinstance(obj, list):
        obj = obj[0] if obj else ""
    return Action(normalize_verb(str(verb)), normalize_object(str(obj)))
