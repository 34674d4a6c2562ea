"""Parsing LLM answers: reasoning text, fences, broken JSON; and the prompt."""
from __future__ import annotations

import pytest

from roboact.data.curate.annotation import Action
from roboact.data.curate.llm_answer import PAPER_PROMPT, AnswerFormatError, parse_answer, render_messages

GOOD = '{"num_actions": 1, "actions": [{"verb": "Opens", "object": "the middle drawer"}]}'


@pytest.mark.parametrize("content", [
    GOOD,
    f"<think>Two candidates: {{\"num_actions\": 2}}. No, one.</think>\n{GOOD}",
    f"Let me count the verbs {{like this}}.\n```json\n{GOOD}\n```\nDone.",
    "```\n{'num_actions': 1, 'actions': [{'verb': 'open', 'object': 'drawer'},]}\n```",      # python-ish
    '{num_actions: 1, actions: [{verb: "open", object: "drawer"}]}',                          # bare keys
    '{"num_actions": 1, "actions": [{"verb": "open", "object": "drawer',                      # cut off
    '{"num_actions": "1", "actions": {"verb": "open", "object": "drawer"}}',                   # loose types
    "reasoning without tags ... so the answer is {\"num_actions\":1,\"actions\":[{\"action\":\"open\","
    "\"objects\":[\"drawer\"]}]}",
])
def test_answers_that_survive(content):
    ann = parse_answer(content, "llm:m")
    assert ann.num_actions == 1 and ann.actions == (Action("open", "drawer"),)
    assert ann.annotator == "llm:m"


def test_last_object_wins_over_drafts_in_the_reasoning():
    content = ('First guess {"num_actions": 1, "actions": [{"verb": "open", "object": "door"}]} but wait, '
               'final: {"num_actions": 2, "actions": [{"verb": "open", "object": "door"}, '
               '{"verb": "close", "object": "door"}]}')
    assert parse_answer(content, "llm:m").num_actions == 2


@pytest.mark.parametrize("content, msg", [
    ("", "empty answer"),
    ("<think>only thoughts</think>", "empty answer"),
    ("I cannot help with that.", "no JSON object"),
    ('{"verbs": ["open"]}', "no JSON object"),
    ('{"num_actions": -1, "actions": []}', "non-negative"),
    ('{"num_actions": 1, "actions": "open the drawer", "x": }', "no JSON object"),
])
def test_unusable_answers_raise_clear_errors(content, msg):
    with pytest.raises(AnswerFormatError, match=msg):
        parse_answer(content, "llm:m")


def test_prompt_is_the_papers_plus_schema():
    msgs = render_messages("Open the drawer")
    user = msgs[-1]["content"]
    assert user.startswith(PAPER_PROMPT) and '"num_actions"' in user and user.endswith("Text: Open the drawer")
