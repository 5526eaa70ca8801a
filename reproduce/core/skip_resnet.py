"""The m = 1 ResNet of E, Ma, Wang, Wu (A.1), batched over runs, with a hand-written backward.

h_1 = (x, 0) in R^D (D = d + 1); h_{l+1} = h_l + u_l relu(v_l . h_l) for K = L - 1 blocks; f = h_L[D-1].
With m = 1 every block adds a multiple of u_l, so the pre-activations obey
s_l = v_l . h_1 + sum_{k<l} (v_l . u_k) relu(s_k) and f = sum_k u_k[D-1] relu(s_k): the sequential part is a
triangular recursion on (B, n) scalars, and every parameter gradient is one batched matmul.
Shapes: x (n, d); U, V (B, K, D) (row l holds u_l, v_l); outputs (B, n).
"""
from __future__ import annotations

import math

import torch
from torch import nn


class SkipResNet(nn.Module):
    """Reference A.1 ResNet with width m (autograd), batched over B runs; U = 0, V ~ N(0, 1/m), w = e_D."""

    def __init__(self, d: int, depth: int, runs: int = 1, m: int = 1, *, generator: torch.Generator,
                 train_v: bool = True, dtype: torch.dtype = torch.float64):
        super().__init__()
        v = torch.randn(runs, depth - 1, m, d + 1, generator=generator, dtype=dtype) / math.sqrt(m)
        self.U = nn.Parameter(torch.zeros(runs, depth - 1, d + 1, m, dtype=dtype))
        self.V = nn.Parameter(v, requires_grad=train_v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (n, d) -> f (B, n)."""
        h = torch.nn.functional.pad(x, (0, 1))[None].expand(self.U.shape[0], -1, -1)
        for l in range(self.U.shape[1]):
            h = h + torch.relu(h @ self.V[:, l].transpose(1, 2)) @ self.U[:, l].transpose(1, 2)
        return h[..., -1]


def forward(U: torch.Tensor, V: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """f (B, n) of the m = 1 ResNet, and the saved tensors for `backward` (laid out (B, K, n))."""
    k = V.shape[1]
    p = V[..., :-1] @ x.T                                                    # (B, K, n): v_l . h_1
    m = V @ U.transpose(1, 2)                                                # (B, K, K): m[l, k] = v_l . u_k
    s = torch.empty_like(p)
    a = torch.zeros_like(p)
    s[:, 0] = p[:, 0]
    a[:, 0] = p[:, 0].clamp_min(0)
    for l in range(1, k):
        s[:, l] = p[:, l] + (m[:, l:l + 1, :l] @ a[:, :l])[:, 0]
        a[:, l] = s[:, l].clamp_min(0)
    return (U[:, None, :, -1] @ a)[:, 0], {"x": x, "m": m, "s": s, "a": a}


def backward(U: torch.Tensor, V: torch.Tensor, saved: dict, df: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients (dU, dV), each (B, K, D), of sum(df * f) for df (B, n)."""
    x, m, s, a = saved["x"], saved["m"], saved["s"], saved["a"]
    k = V.shape[1]
    direct = U[:, :, -1, None] * df[:, None, :]                              # (B, K, n): via f
    ds = torch.zeros_like(s)
    active = s > 0
    mt = m.transpose(1, 2).contiguous()                                      # mt[j, l] = v_l . u_j
    ds[:, -1] = direct[:, -1] * active[:, -1]
    for j in reversed(range(k - 1)):
        ds[:, j] = (direct[:, j] + (mt[:, j:j + 1, j + 1:] @ ds[:, j + 1:])[:, 0]) * active[:, j]
    dm = torch.tril(ds @ a.transpose(1, 2), diagonal=-1)                     # (B, K, K)
    dv = dm @ U
    dv[..., :-1] += ds @ x
    du = dm.transpose(1, 2) @ V
    du[..., -1] += (a * df[:, None, :]).sum(-1)
    return du, dv


def path_norm(U: torch.Tensor, V: torch.Tensor, grad: bool = False):
    """||Theta||_P of (A.2), reduced by l1: |w|^T prod_l (I + |u_l||v_l|^T) |V0| 1, top block leftmost: (B,).

    With grad=True also returns (dU, dV) (B, K, D), using d|a|/da = sign(a) (0 at 0, as autograd).
    """
    au, av = U.abs(), V.abs()
    b, k, d1 = V.shape
    q = V.new_zeros(b, k + 1, d1)                          # q_l = T_{l-1} ... T_0 |V0| 1
    q[:, 0, :-1] = 1.0
    for l in range(k):
        q[:, l + 1] = q[:, l] + au[:, l] * (av[:, l] * q[:, l]).sum(-1, keepdim=True)
    norm = q[:, k, -1]                                     # |w| = e_D
    if not grad:
        return norm
    r = V.new_zeros(b, k + 1, d1)                          # r_l = e_D^T T_{K-1} ... T_l
    r[:, k, -1] = 1.0
    for l in reversed(range(k)):
        r[:, l] = r[:, l + 1] + (r[:, l + 1] * au[:, l]).sum(-1, keepdim=True) * av[:, l]
    vq = (av * q[:, :k]).sum(-1, keepdim=True)             # (B, K, 1): |v_l| . q_l
    ru = (r[:, 1:] * au).sum(-1, keepdim=True)             # (B, K, 1): r_{l+1} . |u_l|
    return norm, U.sign() * r[:, 1:] * vq, V.sign() * ru * q[:, :k]
