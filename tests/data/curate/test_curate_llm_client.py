"""The LLM annotator against a local chat-completions server that misbehaves on purpose."""
from __future__ import annotations

import logging

import pytest

from roboact.data.curate.annotate_llm import LLMAnnotator, LLMAuthError, LLMConfig
from roboact.data.curate.annotation import Action, Annotation, AnnotationFailure, judge
from roboact.data.curate.llm_cache import LLMCacheError, LLMCache
from roboact.utils.config import ConfigError
from tests.data.curate.fake_llm import FakeChatServer, answer

OPEN = answer(("open", "drawer"))


def make(server, tmp_path, sleeps=None, **kw) -> LLMAnnotator:
    cfg = LLMConfig(base_url=server.base_url, model="fake-r1", api_key=kw.pop("api_key", "k"),
                    timeout_s=kw.pop("timeout_s", 0.3), backoff_s=0.001, max_backoff_s=0.01, **kw)
    sleep = sleeps.append if sleeps is not None else (lambda s: None)
    return LLMAnnotator(cfg, LLMCache(tmp_path / "cache.sqlite"), progress=False, sleep=sleep)


def test_retries_429_5xx_timeout_and_garbage_body_then_answers(tmp_path):
    # the timeout is well above a loaded machine's reply time and the hang well above the timeout: under load a
    # 0.3 s timeout once cut the 429 reply itself short, so the first sleep was backoff, not Retry-After's 0
    script = {"Open the drawer": [("status", 429, 0), ("status", 503), ("hang", 3.0),
                                  ("body", b"<html>bad gateway</html>")]}
    sleeps: list[float] = []
    with FakeChatServer({"Open the drawer": OPEN}, script) as server:
        ann = make(server, tmp_path, sleeps, max_retries=5, timeout_s=1.5)
        out = ann.annotate_all(["Open the drawer"])
    assert out["Open the drawer"].actions == (Action("open", "drawer"),)
    assert server.requests["Open the drawer"] == 5
    assert sleeps[0] == 0.0                      # Retry-After: 0 is honoured
    assert ann.stats["retried"] == 4 and ann.stats["answered"] == 1


def test_reasoning_preamble_and_invalid_json_are_survived(tmp_path):
    fenced = f"<think>The text says press... maybe {{two}}?</think>\nSure!\n```json\n{answer(('press', 'button'))}\n```"
    script = {"Press the button": [("content", "I think there is one action: press {button")]}
    with FakeChatServer({"Press the button": fenced}, script) as server:
        ann = make(server, tmp_path)
        out = ann.annotate_all(["Press the button"])
    assert out["Press the button"].actions == (Action("press", "button"),)
    assert ann.stats["bad_answers"] == 1 and server.total == 2


def test_answer_never_json_is_rejected_with_reason_and_not_cached(tmp_path):
    with FakeChatServer({"Wipe the table": "I would rather not answer in JSON."}) as server:
        out = make(server, tmp_path, max_retries=2).annotate_all(["Wipe the table"])
        fail = out["Wipe the table"]
        assert isinstance(fail, AnnotationFailure) and not fail.pending
        assert fail.code == "llm_unparseable" and "no JSON object" in fail.reason and "3 tries" in fail.reason
        make(server, tmp_path, max_retries=0).annotate_all(["Wipe the table"])
    assert server.total == 4                     # failures are asked again on a rerun


def test_two_actions_answer_is_a_multi_action_rejection(tmp_path):
    two = answer(("pick up", "cup"), ("place", "cup"))
    with FakeChatServer({"Pick up the cup and place it": two}) as server:
        out = make(server, tmp_path).annotate_all(["Pick up the cup and place it"])
    verdict = judge(out["Pick up the cup and place it"])
    assert not verdict.accepted and verdict.code == "multi_action" and "pick up cup; place cup" in verdict.reason


def test_cache_means_a_rerun_never_asks_again_unless_the_model_changes(tmp_path):
    texts = ["Open the drawer", "Press the button"]
    with FakeChatServer({t: OPEN for t in texts}) as server:
        make(server, tmp_path).annotate_all(texts)
        assert server.total == 2
        again = make(server, tmp_path)
        out = again.annotate_all(texts + ["Open the drawer"])
        assert server.total == 2 and again.stats["cache_hits"] == 2
        assert all(isinstance(o, Annotation) for o in out.values())
        other = LLMAnnotator(LLMConfig(base_url=server.base_url, model="other-model", backoff_s=0),
                             LLMCache(tmp_path / "cache.sqlite"), progress=False)
        other.annotate_all(texts)
        assert server.total == 4


def test_budget_leaves_rows_pending_and_a_rerun_continues(tmp_path):
    texts = [f"Open drawer {i}" for i in range(4)]
    with FakeChatServer({t: OPEN for t in texts}) as server:
        first = make(server, tmp_path, max_requests=2, concurrency=1).annotate_all(texts)
        pending = [t for t, o in first.items() if isinstance(o, AnnotationFailure)]
        assert len(pending) == 2 and all(first[t].pending and first[t].reason == "pending: budget" for t in pending)
        assert server.total == 2
        second = make(server, tmp_path).annotate_all(texts)
        assert all(isinstance(o, Annotation) for o in second.values())
        assert server.total == 4                 # only the two pending ones were asked


def test_server_that_stays_down_leaves_pending_not_rejected(tmp_path):
    with FakeChatServer(script={"Open the drawer": [("status", 500)] * 3}) as server:
        out = make(server, tmp_path, max_retries=2).annotate_all(["Open the drawer"])
    fail = out["Open the drawer"]
    assert fail.pending and "llm unavailable" in fail.reason and "HTTP 500" in fail.reason


def test_request_refused_for_good_is_an_llm_error(tmp_path):
    with FakeChatServer(script={"Open the drawer": [("status", 400)]}) as server:
        out = make(server, tmp_path).annotate_all(["Open the drawer"])
    assert out["Open the drawer"].code == "llm_error" and "HTTP 400" in out["Open the drawer"].reason
    assert server.total == 1


def test_refused_key_stops_the_run_and_keeps_finished_answers(tmp_path):
    with FakeChatServer({"A open the drawer": OPEN}, {"B open the drawer": [("status", 401)]}) as server:
        with pytest.raises(LLMAuthError, match="refused the API key.*1 answers are kept"):
            make(server, tmp_path, concurrency=1).annotate_all(["A open the drawer", "B open the drawer",
                                                                 "C open the drawer"])
        assert server.requests["C open the drawer"] == 0
    assert len(LLMCache(tmp_path / "cache.sqlite")) == 1


def test_concurrency_is_bounded(tmp_path):
    texts = [f"Open drawer {i}" for i in range(6)]
    with FakeChatServer({t: OPEN for t in texts}, hold_s=0.1) as server:
        make(server, tmp_path, concurrency=3).annotate_all(texts)
    assert server.max_in_flight == 3


def test_key_is_sent_but_never_logged_or_shown(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeChatServer(script={"Open the drawer": [("status", 503)]}, answers={"Open the drawer": OPEN}) as server:
        ann = make(server, tmp_path, api_key="sk-SECRET-123")
        ann.annotate_all(["Open the drawer"])
    assert server.auth_headers == ["Bearer sk-SECRET-123"] * 2
    assert "sk-SECRET-123" not in caplog.text and "sk-SECRET-123" not in repr(ann.cfg)
    assert server.bodies[0]["model"] == "fake-r1"


def test_bad_config_and_corrupt_cache_give_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="llm.base_url"):
        LLMConfig(base_url="api.deepseek.com")
    with pytest.raises(ConfigError, match="llm.concurrency"):
        LLMConfig(concurrency=0)
    bad = tmp_path / "cache.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LLMCacheError, match="cache.sqlite: not a usable SQLite cache"):
        LLMCache(bad)
