"""quiet_loading: third-party bars and log lines off inside, the user's own settings back afterwards."""
from __future__ import annotations

import logging

import pytest

from roboact.utils.quiet import LOGGERS, quiet_loading

tlog = pytest.importorskip("transformers.utils.logging")
hub = pytest.importorskip("huggingface_hub.utils")


@pytest.fixture
def user_settings():
    """A user who turned everything on (bars, INFO logs); put back whatever the session had after the test."""
    verbosity, bars, hub_off = tlog.get_verbosity(), tlog.is_progress_bar_enabled(), hub.are_progress_bars_disabled()
    levels = {n: logging.getLogger(n).level for n in LOGGERS}
    tlog.enable_progress_bar()
    tlog.set_verbosity_info()
    logging.getLogger("sentence_transformers").setLevel(logging.DEBUG)
    yield
    tlog.set_verbosity(verbosity)
    (tlog.enable_progress_bar if bars else tlog.disable_progress_bar)()
    (hub.disable_progress_bars if hub_off else hub.enable_progress_bars)()
    for n, level in levels.items():
        logging.getLogger(n).setLevel(level)


def test_silences_bars_and_logs_inside(user_settings, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    with quiet_loading():
        assert not tlog.is_progress_bar_enabled() and hub.are_progress_bars_disabled()
        for _ in tlog.tqdm(range(3), desc="Loading weights"):
            pass
        tlog.get_logger("transformers.modeling_utils").warning("a banner")
        for name in LOGGERS:
            logging.getLogger(name).warning("Load pretrained SentenceTransformer")
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert [r.getMessage() for r in caplog.records] == []


def test_restores_the_users_settings(user_settings):
    with quiet_loading():
        pass
    assert tlog.is_progress_bar_enabled() and not hub.are_progress_bars_disabled()
    assert tlog.get_verbosity() == logging.INFO
    assert logging.getLogger("sentence_transformers").level == logging.DEBUG
    # and after an error inside, too; with the hub's bars off on their own, they stay off
    hub.disable_progress_bars()
    with pytest.raises(RuntimeError), quiet_loading():
        raise RuntimeError("load failed")
    assert hub.are_progress_bars_disabled() and tlog.get_verbosity() == logging.INFO
    assert logging.getLogger("sentence_transformers").level == logging.DEBUG
