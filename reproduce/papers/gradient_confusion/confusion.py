"""Gradient confusion (paper 003): minibatch gradients, pairwise cosines and their summaries.

Cosines accumulate in float64; a zero gradient gives NaN (counted, excluded from the summaries).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn


def flat_grad(model: nn.Module, loss: torch.Tensor) -> torch.Tensor:
    """d loss / d every trainable parameter, flattened: (P,)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])


@contextmanager
def frozen_stats(model: nn.Module, train: bool = True) -> Iterator[nn.Module]:
    """Run `model` in train (batch statistics) or eval mode; on exit its buffers (BN running statistics) and
    its mode are what they were, so measuring never changes the training trajectory."""
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    was = model.training
    model.train(train)
    try:
        yield model
    finally:
        with torch.no_grad():
            for k, v in model.named_buffers():
                v.copy_(buffers[k])
        model.train(was)


def minibatch_grads(model: nn.Module, loss_fn: Callable, batches) -> torch.Tensor:
    """One flattened gradient per minibatch (x, y): (n_batches, P), BN in train mode with its statistics restored."""
    with frozen_stats(model):
        return torch.stack([flat_grad(model, loss_fn(model(x), y)) for x, y in batches])


def cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cos(a_k, b_k) in float64: (K,) for a, b (K, P); NaN where a gradient is 0."""
    a, b = a.double(), b.double()
    den = a.norm(dim=1) * b.norm(dim=1)
    return torch.where(den > 0, (a * b).sum(1) / den, torch.nan)


def all_pair_cosines(g: torch.Tensor) -> torch.Tensor:
    """cos(g_i, g_j) for all i < j: (n(n-1)/2,) for g (n, P)."""
    u = g.double() / g.double().norm(dim=1, keepdim=True)
    i, j = torch.triu_indices(len(g), len(g), 1)
    return (u @ u.T)[i, j]


def linreg_cosines(x: torch.Tensor, resid: torch.Tensor) -> torch.Tensor:
    """Exact per-sample cosines of f_i = (x_i^T w - y_i)^2 / 2: sign(r_i r_j) cos(x_i, x_j), all i < j: (n(n-1)/2,)."""
    u = x / x.norm(dim=1, keepdim=True)
    s = torch.sign(resid)
    i, j = torch.triu_indices(len(x), len(x), 1)
    return ((s[:, None] * u) @ (s[:, None] * u).T)[i, j]


def summary(c: torch.Tensor) -> dict[str, float]:
    """min, percentiles, mean, std and fraction negative of the finite cosines, and how many were NaN."""
    ok = c[torch.isfinite(c)].double()
    if not len(ok):
        return {"min": np.nan, "p05": np.nan, "p50": np.nan, "p95": np.nan, "mean": np.nan, "std": np.nan,
                "frac_negative": np.nan, "nan": int(len(c))}
    q = torch.quantile(ok, ok.new_tensor([0.05, 0.5, 0.95]))
    return {"min": float(ok.min()), "p05": float(q[0]), "p50": float(q[1]), "p95": float(q[2]),
            "mean": float(ok.mean()), "std": float(ok.std()) if len(ok) > 1 else np.nan, "frac_negative": float((ok <
            0).double().mean()),
            "nan": int(len(c) - len(ok))}


def kde(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Gaussian KDE with Scott's bandwidth sigma n^(-1/5) (scipy's default), evaluated on grid."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    h = v.std(ddof=1) * len(v) ** (-1 / 5)
    z = (grid[:, None] - v[None, :]) / h
    return np.exp(-0.5 * z**2).sum(1) / (len(v) * h * np.sqrt(2 * np.pi))
