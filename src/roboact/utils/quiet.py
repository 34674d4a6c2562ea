"""Keep third-party loaders quiet while roboact builds a model for a library call.

`roboact.load(...)` and the backbones it builds are library calls: they print nothing unless asked.
transformers and sentence-transformers, left alone, print a "Loading weights" progress bar, a hub progress bar
and banner or INFO lines on every load. `quiet_loading()` turns those off for the duration of the load and puts
back exactly the settings the user had, so a user who enabled transformers' progress bars or logging keeps them.
"""
from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Iterator

# Loggers that talk while a model loads (INFO banners, warnings about config keys); transformers' own logger is
# set through its verbosity switch, which also covers the handler it installs.
LOGGERS = ("sentence_transformers", "huggingface_hub", "openvino")


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """No third-party progress bar or log line below ERROR inside; every setting restored on exit."""
    restore: list = []
    try:
        restore.append(_quiet_hub())           # first: transformers' switch flips the hub's too
        restore.append(_quiet_transformers())
        for name in LOGGERS:
            restore.append(_quiet_logger(logging.getLogger(name)))
        yield
    finally:
        for undo in reversed(restore):
            if undo is not None:
                undo()


def _quiet_transformers():
    try:
        from transformers.utils import logging as tlog
    except ImportError:
        return None
    verbosity, bars = tlog.get_verbosity(), tlog.is_progress_bar_enabled()
    tlog.set_verbosity_error()
    if bars:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tlog.disable_progress_bar()

    def undo() -> None:
        tlog.set_verbosity(verbosity)
        if bars:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tlog.enable_progress_bar()
    return undo


def _quiet_hub():
    """huggingface_hub's own bars (downloads) are a switch apart from transformers' flag, and turning
    transformers' back on turns the hub's on too: put the hub's back as it was, last."""
    try:
        from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    except ImportError:
        return None
    was_disabled = are_progress_bars_disabled()
    with warnings.catch_warnings():             # the hub warns when HF_HUB_DISABLE_PROGRESS_BARS pins them
        warnings.simplefilter("ignore")
        disable_progress_bars()

    def undo() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (disable_progress_bars if was_disabled else enable_progress_bars)()
    return undo


def _quiet_logger(logger: logging.Logger):
    level = logger.level
    logger.setLevel(max(logging.ERROR, level))
    return lambda: logger.setLevel(level)


__all__ = ["LOGGERS", "quiet_loading"]
