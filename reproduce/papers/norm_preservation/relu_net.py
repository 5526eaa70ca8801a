"""Bias-free deep ReLU MLPs: per-sample activation and error norms, backpropagated by hand."""
from __future__ import annotations

import torch
from torch import nn


class ReluMLP(nn.Module):
    """h_l = ReLU(W_l h_{l-1}), l = 1..L, then logits = W_s h_L; no biases. Weights are given, not drawn."""

    def __init__(self, weights: list[torch.Tensor], head: torch.Tensor):
        super().__init__()
        self.layers = nn.ParameterList(nn.Parameter(w) for w in weights)
        self.head = nn.Parameter(head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for w in self.layers:
            x = torch.relu(x @ w.T)
        return x @ self.head.T


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample -sum_k y_k log softmax(z)_k; logits, targets (N, C) -> (N,)."""
    return -(targets * torch.log_softmax(logits, dim=1)).sum(dim=1)


def forward_backward_norms(weights: list[torch.Tensor], head: torch.Tensor, x: torch.Tensor,
                           targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Norms through the net of `ReluMLP` under per-sample soft cross-entropy.

    weights: L tensors W_l (n_l, n_{l-1}); head (C, n_L); x (N, n_0); targets (N, C), rows summing to 1.
    Returns h_norm (N, L+1) with ||h_l|| for l = 0..L, and g_norm (N, L) with ||dl/da_l|| for l = 1..L,
    so that ||dl/dW_l||_F = g_norm[:, l-1] * h_norm[:, l-1] and delta = dl/da_L is g_norm[:, -1].
    """
    h, h_norms, masks = x, [x.norm(dim=1)], []
    for w in weights:
        a = h @ w.T
        masks.append(a > 0)
        h = a.clamp_min(0)
        h_norms.append(h.norm(dim=1))
    dz = torch.softmax(h @ head.T, dim=1) - targets          # dl/dlogits
    g = (dz @ head) * masks[-1]                               # dl/da_L = delta
    g_norms = [g.norm(dim=1)]
    for l in range(len(weights) - 1, 0, -1):                  # dl/da_{l} from dl/da_{l+1}
        g = (g @ weights[l]) * masks[l - 1]
        g_norms.append(g.norm(dim=1))
    return torch.stack(h_norms, dim=1), torch.stack(g_norms[::-1], dim=1)
