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


def forward(U: torch.Tensor, V: torch.Tensor, x: torch.Tensor, block: int = 16) -> tuple[torch.Tensor, dict]:
    """f (B, n) of the m = 1 ResNet, and the saved tensors for `backward` (laid out (B, K, n)).

    Blocked forward substitution: sequential within `block` rows, one batched matmul per block for the rest.
    """
    k = V.shape[1]
    s = V[..., :-1] @ x.T                                                    # (B, K, n): v_l . h_1, then s_l
    m = V @ U.transpose(1, 2)                                                # (B, K, K): m[l, k] = v_l . u_k
    a = torch.empty_like(s)
    for j0 in range(0, k, block):
        j1 = min(j0 + block, k)
        for l in range(j0, j1):
            torch.clamp_min(s[:, l], 0, out=a[:, l])
            if l + 1 < j1:
                s[:, l + 1:j1].addcmul_(m[:, l + 1:j1, l, None], a[:, l, None, :])
        if j1 < k:
            s[:, j1:] += torch.bmm(m[:, j1:, j0:j1], a[:, j0:j1])
    return (U[:, None, :, -1] @ a)[:, 0], {"x": x, "m": m, "a": a}


def backward(U: torch.Tensor, V: torch.Tensor, saved: dict, df: torch.Tensor,
             block: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients (dU, dV), each (B, K, D), of sum(df * f) for df (B, n); blocked back substitution."""
    x, m, a = saved["x"], saved["m"], saved["a"]
    k = V.shape[1]
    ds = U[:, :, -1, None] * df[:, None, :]      # (B, K, n): via f directly; becomes dL/ds_l row by row
    active = (a > 0).to(a.dtype)                 # relu'(0) = 0, as autograd
    mt = m.transpose(1, 2)                       # mt[j, l] = v_l . u_j
    for j1 in range(k, 0, -block):
        j0 = max(j1 - block, 0)
        for l in reversed(range(j0, j1)):
            ds[:, l].mul_(active[:, l])
            if l > j0:
                ds[:, j0:l].addcmul_(m[:, l, j0:l, None], ds[:, l, None, :])
        if j0 > 0:
            ds[:, :j0] += torch.bmm(mt[:, :j0, j0:j1], ds[:, j0:j1])
    dm = (ds @ a.transpose(1, 2)).tril_(-1)                                  # (B, K, K)
    dv = dm @ U
    dv[..., :-1] += ds @ x
    du = dm.transpose(1, 2) @ V
    du[..., -1] += (a * df[:, None, :]).sum(-1)
    return du, dv


def path_norm(U: torch.Tensor, V: torch.Tensor, grad: bool = False):
    """||Theta||_P of (A.2), reduced by l1: |w|^T prod_l (I + |u_l||v_l|^T) |V0| 1, top block leftmost: (B,).

    With q_l = prod_{k<l}(...) |V0| 1 = q_0 + sum_{k<l} |u_k| c_k and c_l = |v_l| . q_l, the scalars c solve the
    unit lower-triangular system (I - tril(|V||U|^T, -1)) c = |V| q_0, so the norm q_0[D] + sum_l |u_l[D]| c_l
    costs one batched triangular solve. With grad=True also returns (dU, dV) (B, K, D) by the adjoint solve,
    using d|a|/da = sign(a) (0 at 0, as autograd).
    """
    au, av = U.abs(), V.abs()
    q0 = torch.ones_like(V[0, 0])
    q0[-1] = 0.0                                                   # |V0| 1 = (1, ..., 1, 0)
    # (B, K, K)
    a = torch.eye(V.shape[1], dtype=V.dtype, device=V.device) - torch.tril(av @ au.transpose(1, 2), diagonal=-1)
    p = (av @ q0)[..., None]                                       # (B, K, 1)
    c = torch.linalg.solve_triangular(a, p, upper=False, unitriangular=True)
    w = au[:, :, -1, None]                                         # (B, K, 1): |u_l[D]|
    norm = q0[-1] + (w * c).sum((1, 2))
    if not grad:
        return norm
    lam = torch.linalg.solve_triangular(a.transpose(1, 2), w, upper=True, unitriangular=True)   # A^-T w
    dm = torch.tril(lam @ c.transpose(1, 2), diagonal=-1)         # d norm / d (|v_l| . |u_k|)
    dav = dm @ au + lam * q0
    dau = dm.transpose(1, 2) @ av
    dau[..., -1] += c[..., 0]
    return norm, U.sign() * dau, V.sign() * dav
