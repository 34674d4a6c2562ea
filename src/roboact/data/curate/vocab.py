"""Manipulation vocabulary shared by both annotators: verb lemmas (phrasal ones included) and object labels.

Both the rule annotator and the LLM annotator pass their verbs and objects through `normalize_verb` and
`normalize_object`, so "Picks up", "picking up" and "pick_up" all become the lemma "pick up" and the
action/object classes of the curated corpus do not depend on which annotator labelled a clip.

Object labels are short noun phrases: the head noun plus at most one modifier that names a *kind* of thing
("tissue box", "water bottle"). Attribute words (colour, size, position, ordinal, state: "red", "small",
"left", "middle", "second", "empty") are dropped, because they tell instances apart within one scene — the
policy's job — rather than what kind of object is manipulated, so "the middle drawer" and "the top drawer"
both give "drawer". Plurals are singularised ("blocks" -> "block") with a small exception list.
"""
from __future__ import annotations

import re

from roboact.data.captions import third_person

# Base verbs; regular forms are generated, irregular ones listed in _IRREGULAR.
_VERBS = """
adjust align arrange assemble attach bend brush button carry chop clean click close connect cover cut
detach dip disconnect drag draw drop dump empty erase fetch fill flatten flip fold grab grasp grip hammer
hand hang hit hold hook insert knead knock latch lift load lock loosen lower mix move nail open paint peel
pick pinch place plug poke pour press pull push put raise release remove roll rotate rub scoop scrape
screw seal set shake shift shut slice slide sort spin spray squeeze stack stamp stick stir store stretch
swing sweep switch take tap tear throw tighten tilt toggle toss touch transfer turn twist type uncover
unfold unhook unlatch unload unlock unplug unscrew unstack unwrap unzip wash water wipe wrap wring write
zip
""".split()

_IRREGULAR: dict[str, tuple[str, ...]] = {
    "bend": ("bent",), "cut": ("cut",), "draw": ("drew", "drawn"), "hang": ("hung",), "hit": ("hit",),
    "hold": ("held",), "put": ("put",), "set": ("set",), "shake": ("shook", "shaken"),
    "shut": ("shut",), "spin": ("spun",), "stick": ("stuck",), "sweep": ("swept",), "swing": ("swung",),
    "take": ("took", "taken"), "tear": ("tore", "torn"), "throw": ("threw", "thrown"),
    "write": ("wrote", "written"), "wring": ("wrung",),
}
# Verbs whose final consonant doubles before -ing/-ed (cut -> cutting).
_DOUBLE = frozenset({"chop", "cut", "dip", "drag", "drop", "flip", "grab", "grip", "hit", "plug", "put", "rub",
                     "set", "shut", "spin", "stir", "tap", "unplug", "unwrap", "unzip", "wrap", "zip"})

PARTICLES = frozenset({"up", "down", "on", "off", "in", "out", "away", "back", "over"})
PHRASAL = frozenset({
    ("pick", "up"), ("put", "down"), ("set", "down"), ("put", "on"), ("put", "away"), ("put", "back"),
    ("turn", "on"), ("turn", "off"), ("turn", "over"), ("switch", "on"), ("switch", "off"),
    ("plug", "in"), ("take", "out"), ("take", "off"), ("lift", "up"), ("hang", "up"), ("pull", "out"),
    ("pull", "up"), ("pull", "down"), ("push", "in"), ("push", "down"), ("press", "down"),
    ("pour", "out"), ("wipe", "off"), ("clean", "up"), ("throw", "away"), ("knock", "over"),
    ("flip", "over"), ("fold", "up"), ("roll", "up"), ("screw", "in"),
})

_DETERMINERS = frozenset("""a an the this that these those its his her their my your our some any each
every all both another other one two three few several""".split())
_ATTRIBUTES = frozenset("""red green blue yellow orange purple pink black white grey gray brown golden
silver dark light big small large little tiny huge long short tall thin thick wide narrow heavy
left right top bottom middle center centre upper lower front back rear inner outer near far nearest
first second third fourth last other same different empty full open closed clean dirty new old
round square rectangular flat soft hard hot cold wet dry""".split())
_PLURAL_KEEP = frozenset({"scissors", "pliers", "tongs", "glasses", "lens", "chess", "grass", "series",
                          "species", "pants", "jeans", "shorts", "tweezers", "binoculars", "bus", "gas"})


def _forms(v: str) -> list[str]:
    """Base, 3rd person, -ing and past forms; irregular pasts replace the regular one ("put", not "putted")."""
    stem = v + v[-1] if v in _DOUBLE else (v[:-1] if v.endswith("e") and not v.endswith("ee") else v)
    if v in _IRREGULAR:
        past = list(_IRREGULAR[v])
    elif re.search(r"[^aeiou]y$", v):
        past = [v[:-1] + "ied"]
    else:
        past = [stem + "d" if stem.endswith("e") else stem + "ed"]
    return [v, third_person(v), stem + "ing", *past]


def _build_forms() -> dict[str, str]:
    forms: dict[str, str] = {}
    for v in _VERBS:
        for f in _forms(v):
            forms.setdefault(f, v)
    return forms


VERB_FORMS: dict[str, str] = _build_forms()
_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*|[,;.!?:]")


def tokenize(text: str) -> list[str]:
    """Lower-cased words (hyphen/apostrophe compounds kept) and clause punctuation as tokens."""
    return _TOKEN.findall(text.lower().replace("_", " ").replace("\u2019", "'"))


def lemma(word: str) -> str | None:
    return VERB_FORMS.get(word.lower())


def normalize_verb(verb: str) -> str:
    """'Picks up' -> 'pick up', 'to open' -> 'open', 'pick_up' -> 'pick up'; unknown verbs lower-cased."""
    words = [w for w in tokenize(verb) if w not in {",", ";", ".", "!", "?", ":"}]
    if words and words[0] == "to":
        words = words[1:]
    if not words:
        return ""
    head = lemma(words[0]) or words[0]
    if len(words) > 1 and words[1] in PARTICLES and (head, words[1]) in PHRASAL:
        return f"{head} {words[1]}"
    return head if lemma(words[0]) else " ".join(words[:2])


def singular(noun: str) -> str:
    if noun in _PLURAL_KEEP or len(noun) <= 3 or noun.endswith(("ss", "us", "is")):
        return noun
    if noun.endswith("ies"):
        return noun[:-3] + "y"
    if noun.endswith(("ches", "shes", "xes", "ses", "zes", "oes")):
        return noun[:-2]
    return noun[:-1] if noun.endswith("s") else noun


def object_label(words: list[str]) -> str:
    """Noun-phrase words (no determiners/prepositions) -> 'modifier head' or 'head'; see module doc."""
    kept = [w for w in words if w not in _DETERMINERS and w not in _ATTRIBUTES and not w.isdigit()]
    if not kept:
        return ""
    kept[-1] = singular(kept[-1])
    return " ".join(kept[-2:])


def normalize_object(obj: str) -> str:
    """'the Middle Drawer' -> 'drawer', 'a tissue box' -> 'tissue box', 'blocks' -> 'block'."""
    words = [w for w in tokenize(obj) if w not in {",", ";", ".", "!", "?", ":"}]
    return object_label(words)
