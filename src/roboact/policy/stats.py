"""The seed-interval helpers moved to `roboact.utils.stats` (the encoder evaluation uses them too);
re-exported here so policy code and its tests keep their imports."""
from roboact.utils.stats import T975, Z975, Interval, t_interval, t_quantile_975

__all__ = ["T975", "Z975", "Interval", "t_interval", "t_quantile_975"]
