"""R independent MLPs stacked into one model: weights (R, out, in), one bmm per layer for all runs.

Runs never interact (disjoint parameters, per-run inputs), so the gradient of the sum of per-run losses is
every run's own gradient: training the stack is exactly training each run alone.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ...core.init import gaussian_weight


def init(depth: int, width: int, rules: list[str], seeds: list[int], *, d_in: int = 784, classes: int = 10,
         device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    """[W_0, b_0, ..., W_depth, b_depth] for MLP-depth-width (depth hidden layers, depth + 1 weight matrices):
    W_k (R, out, in) ~ N(0, variance(rules[r])) from a generator seeded with seeds[r]; biases 0."""
    dims = [d_in] + [width] * depth + [classes]
    per_run = []
    for rule, seed in zip(rules, seeds):
        g = torch.Generator().manual_seed(seed)
        per_run.append([gaussian_weight(rule, o, i, generator=g, dtype=dtype) for i, o in zip(dims[:-1], dims[1:])])
    params = []
    for k, (i, o) in enumerate(zip(dims[:-1], dims[1:])):
        params.append(torch.stack([w[k] for w in per_run]).to(device).requires_grad_(True))
        params.append(torch.zeros(len(rules), o, dtype=dtype, device=device, requires_grad=True))
    return params


def forward(params: list[torch.Tensor], x: torch.Tensor, tanh: torch.Tensor) -> torch.Tensor:
    """Logits (R, B, classes) for x (R, B, d_in); tanh (R,) bool picks tanh or identity hidden layers per run."""
    h, last = x, len(params) // 2 - 1
    mask = tanh.view(-1, 1, 1)
    for k in range(last + 1):
        h = torch.baddbmm(params[2 * k + 1].unsqueeze(1), h, params[2 * k].transpose(1, 2))
        if k < last:
            h = torch.where(mask, torch.tanh(h), h)
    return h


def losses(params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor, tanh: torch.Tensor) -> torch.Tensor:
    """Per-run mean cross-entropy (R,) for x (R, B, d_in), y (R, B)."""
    logits = forward(params, x, tanh)
    return F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1)
