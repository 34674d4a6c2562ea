"""The offline rule annotator and the shared verb/object vocabulary."""
from __future__ import annotations

import pytest

from roboact.data.curate.annotate_rules import RuleAnnotator, annotate
from roboact.data.curate.annotation import Action, Annotation, judge
from roboact.data.curate.vocab import lemma, normalize_object, normalize_verb


@pytest.mark.parametrize("text, verb, obj", [
    ("Open the drawer", "open", "drawer"),
    ("Open the middle drawer.", "open", "drawer"),
    ("Pick up the red block from the table", "pick up", "block"),
    ("Turn on the lamp", "turn on", "lamp"),
    ("Turn the lamp on.", "turn on", "lamp"),
    ("Turn the knob clockwise", "turn", "knob"),
    ("Put the cups in the sink", "put", "cup"),
    ("Put down the mug", "put down", "mug"),
    ("Plug the USB cable into the socket", "plug", "usb cable"),
    ("Plug in the charger", "plug in", "charger"),
    ("Pour water into the cup", "pour", "water"),
    ("Wipe the table with the sponge", "wipe", "table"),
    ("Insert the peg into the hole", "insert", "peg"),
    ("Slowly push the tissue box", "push", "tissue box"),
    ("Pressing the button", "press", "button"),
    ("Put the salt and pepper into the bowl", "put", "salt"),       # "and" without a verb: one action
    ("Move the block next to the cup", "move", "block"),             # "next" as a preposition
    ("The robot opens the fridge door", "open", "fridge door"),      # verb not at a clause start
    ("Use the gripper to open the drawer", "open", "drawer"),
])
def test_single_action_gives_lemma_and_object(text, verb, obj):
    verdict = judge(annotate(text))
    assert verdict.accepted, verdict.reason
    assert verdict.action == Action(verb, obj)


@pytest.mark.parametrize("text, n", [
    ("Pick up the cup and place it on the plate", 2),
    ("Open the drawer, then close it", 2),
    ("Open the drawer, close it", 2),
    ("Open the door; grab the ball", 2),
    ("First open the door. Next grab the ball", 2),
    ("Open the drawer, put the cup in it and close the drawer", 3),
    ("Pick up the cup then", 2),                      # sequence word with no second known verb
    ("Stack the blocks after that wave goodbye", 2),  # "after that" marks a sequence
])
def test_multi_action_is_counted_and_rejected(text, n):
    ann = annotate(text)
    assert ann.num_actions == n
    verdict = judge(ann)
    assert not verdict.accepted and verdict.code == "multi_action"
    assert f"{n} actions" in verdict.reason


@pytest.mark.parametrize("text, why", [
    ("Wave hello", "no action"),               # no verb from the vocabulary: not guessed
    ("Open it", "no object"),                  # a pronoun is not an object label
    ("Press", "no object"),
])
def test_texts_without_verb_or_object_are_rejected(text, why):
    verdict = judge(annotate(text))
    assert not verdict.accepted and verdict.code == "no_action"
    assert why in verdict.reason


def test_second_action_pronoun_resolves_to_previous_object_in_reason():
    assert annotate("Pick up the cup and place it on the plate").actions[1] == Action("place", "cup")


def test_annotate_all_returns_one_outcome_per_distinct_text():
    out = RuleAnnotator().annotate_all(["Open the drawer", "Open the drawer", "Press the button"])
    assert list(out) == ["Open the drawer", "Press the button"]


@pytest.mark.parametrize("form, want", [("putting", "put"), ("placed", "place"), ("carried", "carry"),
                                        ("taken", "take"), ("emptied", "empty"), ("hung", "hang"),
                                        ("putted", None), ("cupboard", None)])
def test_verb_forms(form, want):
    assert lemma(form) == want


def test_normalize_verb_and_object():
    assert normalize_verb("Picks up") == normalize_verb("pick_up") == normalize_verb("picking up") == "pick up"
    assert normalize_verb("to open") == "open"
    assert normalize_verb("Mop") == "mop"                       # unknown verbs are kept (LLM authority)
    assert normalize_object("the Middle Drawer") == "drawer"    # attribute words dropped
    assert normalize_object("a large tissue box") == "tissue box"
    assert normalize_object("cherries") == "cherry" and normalize_object("boxes") == "box"
    assert normalize_object("scissors") == "scissors"
    assert normalize_object("the") == ""


def test_judge_counts_the_larger_of_count_and_list():
    one_listed_two_counted = Annotation(2, (Action("open", "door"),), "llm:x")
    assert judge(one_listed_two_counted).code == "multi_action"
    assert judge(Annotation(0, (), "llm:x")).code == "no_action"
