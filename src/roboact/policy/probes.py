"""Ridge probes: how much of a target (expert action, object position, ...) a frozen policy input keeps.

Why here: issue 12 asks for a probe beside every row of the policy tables, so the fit that turns "the policy
did worse" into "the input lost the object's position" must be the same for every row. Rows differ a lot in
width (a 768-d `fused` vector, a 1,280-d frame feature, 16 x 1,280 concatenated backbone tokens), so the fit
switches to the dual (kernel) form whenever a row is wider than it has training rows: the same ridge
solution, but an n x n solve instead of a d x d one (20,480-d tokens would need a 3 GB, minutes-long solve).
"""
from __future__ import annotations

import torch

# Penalties tried for every row. Up to 1e5 because the widest inputs (20,480-d concatenated tokens) overfit
# at the smaller ones; a superset can only raise a row's best, and every row gets the same grid.
RIDGE_GRID = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5)


def ridge_r2_path(x_tr: torch.Tensor, y_tr: torch.Tensor, x_te: torch.Tensor, y_te: torch.Tensor,
                  lams: tuple[float, ...] = RIDGE_GRID) -> list[float]:
    """Held-out R^2 (averaged over target dims) of ridge regression on standardised inputs, intercept free,
    for each penalty in `lams`.

    Inputs are centred and scaled with the training rows' statistics and targets centred, so the intercept is
    the training mean and only the weights are penalised. One eigendecomposition serves every penalty: of
    A'A (primal) or, for inputs wider than their training rows, of AA' (dual); both give the same predictions.
    """
    if len(x_tr) < 2 or len(x_te) < 1:
        raise ValueError(f"ridge probe needs >= 2 training rows and >= 1 test row, got {len(x_tr)} and {len(x_te)}")
    if not lams or min(lams) <= 0:
        raise ValueError(f"ridge penalties must be > 0, got {lams}")
    x_tr, x_te, y_tr, y_te = (t.double() for t in (x_tr, x_te, y_tr, y_te))
    mu, sd = x_tr.mean(0), x_tr.std(0).clamp_min(1e-6)
    a, b = (x_tr - mu) / sd, (x_te - mu) / sd
    ym = y_tr.mean(0)
    yc = y_tr - ym
    n, d = a.shape
    if d <= n:     # w = (A'A + lam I)^-1 A'y
        s, v = torch.linalg.eigh(a.T @ a)
        proj, back = v.T @ (a.T @ yc), b @ v
    else:          # w = A'(AA' + lam I)^-1 y
        s, v = torch.linalg.eigh(a @ a.T)
        proj, back = v.T @ yc, (b @ a.T) @ v
    s = s.clamp_min(0)
    ss_tot = ((y_te - y_te.mean(0)) ** 2).sum(0).clamp_min(1e-12)
    out = []
    for lam in lams:
        pred = back @ (proj / (s + lam)[:, None]) + ym
        out.append(float((1 - ((y_te - pred) ** 2).sum(0) / ss_tot).mean()))
    return out


def ridge_r2(x_tr: torch.Tensor, y_tr: torch.Tensor, x_te: torch.Tensor, y_te: torch.Tensor,
             lam: float) -> float:
    """Held-out R^2 at one penalty (see `ridge_r2_path`)."""
    return ridge_r2_path(x_tr, y_tr, x_te, y_te, (lam,))[0]


def best_ridge_r2(x_tr: torch.Tensor, y_tr: torch.Tensor, x_te: torch.Tensor, y_te: torch.Tensor,
                  lams: tuple[float, ...] = RIDGE_GRID) -> float:
    """Best over a penalty grid, chosen on the held-out rows: an upper bound, the same for every row."""
    return max(ridge_r2_path(x_tr, y_tr, x_te, y_te, lams))
