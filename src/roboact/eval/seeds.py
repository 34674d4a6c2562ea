"""One table row from several training seeds: every metric becomes the mean over seeds with a 95%
Student-t interval (roboact.utils.stats), because one seed of a small model on a small split can land
far from another (docs/eval.md, caveats) and a difference between rows means little without that spread.
"""
from __future__ import annotations

import math

from roboact.utils.stats import t_interval


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def aggregate_seeds(per_seed: list[dict]) -> tuple[dict, dict]:
    """(means, intervals) of per-seed metric dicts.

    means[k]: the mean over the seeds where k has a finite value (None if none has; the single value when
    one seed is given). intervals[k] (only with >= 2 seeds): mean, low, high, half_width, std, n, over the
    seeds with a value. A seed lacking a value is skipped rather than counted as 0, and `n` says so.
    """
    if not per_seed:
        raise ValueError("aggregate_seeds needs at least one seed's metrics")
    keys = list(dict.fromkeys(k for m in per_seed for k in m))
    if len(per_seed) == 1:
        return {k: per_seed[0].get(k) for k in keys}, {}
    means, intervals = {}, {}
    for k in keys:
        vals = [float(m[k]) for m in per_seed if _finite(m.get(k))]
        if not vals:
            means[k] = None
            continue
        iv = t_interval(vals)
        means[k] = iv.mean
        intervals[k] = {"mean": iv.mean, "low": iv.low, "high": iv.high, "half_width": iv.half_width,
                        "std": iv.std, "n": iv.n}
    return means, intervals


def format_cell(mean, interval: dict | None, digits: int = 3) -> str:
    """'0.512 ± 0.034' for a multi-seed value, '0.512' for a single one, '–' when missing."""
    if mean is None or (isinstance(mean, float) and not math.isfinite(mean)):
        return "–"
    if not interval or interval.get("half_width") is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {interval['half_width']:.{digits}f}"
