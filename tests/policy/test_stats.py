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


# t_{0.975, df} from scipy.stats.t.ppf(0.975, df) (scipy 1.17.1), kept here so the check runs without scipy
EXACT_T975 = {31: 2.039513446396408, 35: 2.030107928250343, 40: 2.021075390306273, 60: 2.0002978220142604,
              120: 1.9799304050824402, 1000: 1.9623390808264083}


def test_beyond_the_table_the_expansion_is_within_2e_6_of_the_exact_quantile():
    # Every interval with more than 30 seeds scales with this number; an error in one term of the
    # expansion moves it by 1e-5 to 2e-4, invisible at the table's looser tolerance above.
    for df, exact in EXACT_T975.items():
        assert t_quantile_975(df) == pytest.approx(exact, abs=2e-6), df
    assert t_quantile_975(30) == T975[-1]          # up to 30 the table itself, not the expansion
    with pytest.raises(ValueError, match="degrees of freedom must be >= 1, got 0"):
        t_quantile_975(0)


def test_interval_dict_and_empty_or_single_seed_cells():
    d = t_interval([50.0, 70.0, 90.0]).to_dict()    # what the JSON reports store
    assert set(d) == {"mean", "low", "high", "n", "std", "half_width", "method"}
    assert d["half_width"] == pytest.approx(4.3027 * 20 / math.sqrt(3), rel=1e-4)
    assert d["method"] == "95% Student-t over seeds" and d["n"] == 3
    empty = t_interval([])
    assert math.isnan(empty.mean) and empty.fmt() == "-" and empty.to_dict()["half_width"] is None
    assert t_interval([40.0]).n == 1


def test_lead_needs_the_margin_and_intervals_apart():
    from roboact.utils.stats import lead

    a, b = t_interval([80.0, 82.0, 84.0]), t_interval([70.0, 72.0, 74.0])   # half-widths 4.97: 77.03 > 76.97
    got = lead(a, b, 5.0)
    assert got == {"lead": pytest.approx(10.0), "intervals_apart": True, "margin": 5.0, "met": True}
    assert lead(a.to_dict(), b.to_dict(), 5.0) == got                      # as the reports store them
    assert lead(a, b, 10.0)["met"] and not lead(a, b, 10.01)["met"]         # the margin is inclusive
    wide = t_interval([70.0, 82.0, 94.0])                                   # same mean as a, overlapping b
    assert lead(wide, b, 5.0) == {"lead": pytest.approx(10.0), "intervals_apart": False, "margin": 5.0,
                                  "met": False}
    assert not lead(b, a, 5.0)["met"] and lead(b, a, 5.0)["lead"] == pytest.approx(-10.0)
    one = t_interval([95.0])                                                # one seed: no interval, never met
    assert lead(one, b, 5.0)["intervals_apart"] is False and not lead(one, b, 5.0)["met"]
