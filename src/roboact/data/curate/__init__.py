"""Curation of video + instruction datasets into single-atomic-action clips (the paper's Algorithm 1).

`curate(CurateConfig(...))` runs the whole pipeline; `roboact curate` is its command line. See
docs/curate.md for the RH20T layout handled, the annotators and the outputs.
"""
from roboact.data.curate.pipeline import CurateConfig, CurateResult, curate

__all__ = ["CurateConfig", "CurateResult", "curate"]
