import math

import pytest

from roboact.policy.stats import T975, t_interval, t_quantile_975


def test_t_interval_by_hand():
    iv = t_interval([50.0, 70.0, 90.0])          # mean 70, sd 20, t(0.975, 2) = 4.3027
    assert iv.mean == pytest.approx(70.0) and iv.std == pytest.approx(20.0)
    assert iv.half_width == pytest.approx(4.3027 * 20 / math.sqrt(3), rel=1e-4)
    assert iv.low == pytest.approx(70 - iv.half_width) and iv.n == 3
    assert iv.fmt() == "70.0 ± 49.7"
    assert t_interval([30.0, 30.0, 30.0]).half_width == 0.0


def test_one_seed_has_no_interval_and_nan_is_refused():
    iv = t_interval([40.0])
    assert (iv.mean, iv.low, iv.high) == (40.0, None, None) and iv.fmt() == "40.0 (1 seed)"
    assert t_interval([]).n == 0
    with pytest.raises(ValueError, match="NaN"):
        t_interval([1.0, float("nan")])


def test_t_quantiles_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in (*range(1, 31), 31, 40, 60, 120, 1000):
        assert t_quantile_975(df) == pytest.approx(float(stats.t.ppf(0.975, df)), abs=2e-4), df
    assert len(T975) == 30
