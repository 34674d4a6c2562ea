"""The ridge probe behind every study table: its two forms agree, and it measures what it claims."""
import pytest
import torch

from roboact.policy.probes import best_ridge_r2, ridge_r2, ridge_r2_path


def _linear(n: int, d: int, noise: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    w = torch.randn(d, 3, generator=g, dtype=torch.float64)
    y = x @ w + 5.0 + noise * torch.randn(n, 3, generator=g, dtype=torch.float64)
    return x, y


def test_primal_and_dual_forms_give_the_same_r2():
    # 40 training rows, 60 features: ridge_r2 takes the dual form; compare it with the primal solution
    # computed directly on the same rows.
    x, y = _linear(60, 60, 0.5)
    x_tr, y_tr, x_te, y_te = x[:40], y[:40], x[40:], y[40:]
    dual = ridge_r2(x_tr, y_tr, x_te, y_te, 10.0)
    mu, sd = x_tr.mean(0), x_tr.std(0)
    a, b = (x_tr - mu) / sd, (x_te - mu) / sd
    w = torch.linalg.solve(a.T @ a + 10.0 * torch.eye(60, dtype=a.dtype), a.T @ (y_tr - y_tr.mean(0)))
    pred = b @ w + y_tr.mean(0)
    r2 = (1 - ((y_te - pred) ** 2).sum(0) / ((y_te - y_te.mean(0)) ** 2).sum(0)).mean()
    assert dual == pytest.approx(float(r2), abs=1e-9)


def test_intercept_is_not_penalised():
    # A constant offset of 1000 must not cost anything: heavy penalty, yet the mean is predicted exactly.
    x, y = _linear(200, 4, 0.0)
    r_small = ridge_r2(x[:150], y[:150] + 1000, x[150:], y[150:] + 1000, 1e-3)
    assert r_small == pytest.approx(1.0, abs=1e-6)
    r_huge = ridge_r2(x[:150], y[:150] + 1000, x[150:], y[150:] + 1000, 1e9)
    assert -0.2 < r_huge < 0.05        # weights shrunk to ~0: predicts the training mean, R^2 ~ 0, not -1e6


def test_r2_tracks_what_the_input_keeps():
    x, y = _linear(300, 8, 0.0)
    full = best_ridge_r2(x[:200], y[:200], x[200:], y[200:])
    half = best_ridge_r2(x[:200, :4], y[:200], x[200:, :4], y[200:])   # half the causes dropped
    noise = best_ridge_r2(torch.randn(200, 8, dtype=torch.float64), y[:200],
                          torch.randn(100, 8, dtype=torch.float64), y[200:])
    assert full > 0.99
    assert 0.2 < half < 0.8
    assert noise < 0.1


@pytest.mark.parametrize("bad", [dict(lam=0.0), dict(n_tr=1)])
def test_bad_probe_input_is_refused(bad):
    x, y = _linear(10, 3, 0.1)
    n_tr = bad.get("n_tr", 8)
    with pytest.raises(ValueError, match="ridge"):
        ridge_r2(x[:n_tr], y[:n_tr], x[8:], y[8:], bad.get("lam", 1.0))


def test_one_decomposition_serves_the_whole_grid():
    # primal (d < n) and dual (d > n) paths against single-penalty direct solves
    for n, d in ((120, 10), (30, 90)):
        x, y = _linear(n + 20, d, 0.3, seed=d)
        path = ridge_r2_path(x[:n], y[:n], x[n:], y[n:], (0.5, 50.0, 5e4))
        for lam, r2 in zip((0.5, 50.0, 5e4), path):
            mu, sd = x[:n].mean(0), x[:n].std(0)
            a, b = (x[:n] - mu) / sd, (x[n:] - mu) / sd
            w = torch.linalg.solve(a.T @ a + lam * torch.eye(d, dtype=a.dtype), a.T @ (y[:n] - y[:n].mean(0)))
            pred = b @ w + y[:n].mean(0)
            ref = (1 - ((y[n:] - pred) ** 2).sum(0) / ((y[n:] - y[n:].mean(0)) ** 2).sum(0)).mean()
            assert r2 == pytest.approx(float(ref), abs=1e-8)
