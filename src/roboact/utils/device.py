"""One rule for `--device` everywhere (extract, eval, policy): cpu or cuda[:i], and a CUDA device must exist.

Checked when a config is loaded, so `--device cuda` on a machine without one stops at once with a message
that says what torch sees, instead of an assertion from deep inside torch half-way through a run.
"""
from __future__ import annotations

import re


def device_problem(device: str, allow_auto: bool = False) -> str | None:
    """None when `device` is usable here, else why not (for the config error naming the field)."""
    import torch

    if allow_auto and device == "auto":
        return None
    if device == "cpu":
        return None
    m = re.fullmatch(r"cuda(?::(\d+))?", str(device))
    if m is None:
        return f"must be {'auto, ' if allow_auto else ''}cpu or cuda[:i], got {device!r}"
    if not torch.cuda.is_available():
        return (f"{device!r} asked for, but torch {torch.__version__} sees no CUDA device here "
                f"(CUDA build: {torch.version.cuda or 'none'}); use cpu")
    if m.group(1) is not None and int(m.group(1)) >= torch.cuda.device_count():
        return f"{device!r} asked for, but torch sees {torch.cuda.device_count()} CUDA device(s)"
    return None
