"""Mean and 95% Student-t confidence interval over seeds, shared by every report that repeats training.

Lives here (not in one command's package) so that the policy success-rate tables and the encoder
evaluation compute their intervals the same way. With k seeds of per-seed values x_i:
mean ± t_{0.975, k-1} · s / sqrt(k), s the sample standard deviation (ddof = 1). Seeds are the unit of
replication (each trains its own model or policy); the clips or rollouts inside one seed are not
independent replications of training, so they are not counted. The interval is not clipped to the
metric's range; with one seed there is none. t quantiles: exact table for df <= 30, Cornish-Fisher
expansion beyond (error < 2e-6, tested), so scipy is not needed.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

# two-sided 95% (upper 0.975) Student-t quantiles, df = 1..30
T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
        2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
        2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)
Z975 = 1.959963984540054


def t_quantile_975(df: int) -> float:
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(T975):
        return T975[df - 1]
    z = Z975  # Cornish-Fisher expansion of the t quantile in 1/df
    return (z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3))


@dataclass
class Interval:
    mean: float
    low: float | None        # None with a single seed
    high: float | None
    n: int
    std: float | None

    @property
    def half_width(self) -> float | None:
        return None if self.low is None else (self.high - self.low) / 2

    def to_dict(self) -> dict:
        return {**asdict(self), "half_width": self.half_width, "method": "95% Student-t over seeds"}

    def fmt(self, digits: int = 1) -> str:
        if self.n == 0:
            return "-"
        if self.low is None:
            return f"{self.mean:.{digits}f} (1 seed)"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f}"


def t_interval(values: list[float]) -> Interval:
    """Mean and 95% t-interval of per-seed values (NaN-free)."""
    xs = [float(v) for v in values]
    if any(math.isnan(v) for v in xs):
        raise ValueError(f"t_interval got NaN among {xs}")
    n = len(xs)
    if n == 0:
        return Interval(float("nan"), None, None, 0, None)
    mean = sum(xs) / n
    if n == 1:
        return Interval(mean, None, None, 1, None)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    h = t_quantile_975(n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - h, mean + h, n, sd)


def lead(a: dict | Interval, b: dict | Interval, margin: float) -> dict:
    """Does `a` beat `b` by at least `margin` with the two intervals apart (a's low above b's high)? The test
    the study's goals state ("+5 points, intervals not overlapping"); without intervals (one seed) it is never
    met, because nothing says the gap is not noise."""
    a, b = (x.to_dict() if isinstance(x, Interval) else x for x in (a, b))
    gap = a["mean"] - b["mean"]
    apart = a.get("low") is not None and b.get("high") is not None and a["low"] > b["high"]
    return {"lead": gap, "intervals_apart": apart, "margin": margin, "met": gap >= margin and apart}
