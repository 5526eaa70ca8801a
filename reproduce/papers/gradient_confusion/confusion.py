"""Gradient confusion (paper 003): minibatch gradients, pairwise cosines and their summaries.

Cosines accumulate in float64; a zero gradient gives NaN (counted, excluded from the summaries).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn


def param_grads(model: nn.Module, loss: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """d loss / d each trainable parameter, in its own shape."""
    return torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad])


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


def minibatch_grads(model: nn.Module, loss_fn: Callable, batches) -> list[torch.Tensor]:
    """One gradient per minibatch (x, y), kept per parameter tensor: [(n_batches, *shape)], BN in train mode with
    its statistics restored. Nothing is concatenated, so the measurement never holds a second copy of every
    gradient (nor a float64 one)."""
    with frozen_stats(model):
        per_batch = [param_grads(model, loss_fn(model(x), y)) for x, y in batches]
    return [torch.stack(g) for g in zip(*per_batch)]


def _rows(g) -> list[torch.Tensor]:
    """A gradient batch as per-tensor row blocks [(K, p_t)]: a (K, P) tensor is one block."""
    return [t.reshape(len(t), -1) for t in ([g] if torch.is_tensor(g) else g)]


def _dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """sum_t <a_t[k], b_t[k]> accumulated in float64, one tensor at a time: (K,)."""
    return sum((x.double() * y.double()).sum(1) for x, y in zip(a, b))


def cosines(a, b) -> torch.Tensor:
    """Row-wise cos(a_k, b_k) in float64 for a, b (K, P) or per-tensor lists [(K, ...)]: (K,); NaN where a gradient
    is 0. Dot products and norms are reduced per tensor in float64 (the float64 copy is one tensor at a time)."""
    a, b = _rows(a), _rows(b)
    den = _dot(a, a).sqrt() * _dot(b, b).sqrt()
    return torch.where(den > 0, _dot(a, b) / den, torch.nan)


def all_pair_cosines(g) -> torch.Tensor:
    """cos(g_i, g_j) for all i < j: (n(n-1)/2,) for g (n, P) or a per-tensor list [(n, ...)]; the Gram matrix is
    accumulated per tensor in float64."""
    rows = _rows(g)
    gram = sum(t.double() @ t.double().T for t in rows)
    norm = gram.diagonal().sqrt()
    i, j = torch.triu_indices(len(gram), len(gram), 1)
    return (gram / (norm[:, None] * norm[None, :]))[i, j]


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
