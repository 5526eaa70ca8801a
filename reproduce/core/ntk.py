"""Generic empirical tangent kernels: Jacobian contraction and vjp/jvp columns, and how to choose between them.

Kernel layout: K[(i, c), (j, c')] = <grad_w f_c(x_i), grad_w f_c'(x_j)>, flattened with index i*C + c,
so K has shape (N*C, N*C).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch.func import jacrev, jvp, vjp, vmap

Params = dict[str, torch.Tensor]


def ntk_jacobian(f: Callable[[Params], torch.Tensor], p: Params, chunk: int | None = None) -> torch.Tensor:
    """Generic kernel sum_p J_p J_p^T, one parameter tensor at a time. f(p) -> (N, C); returns (NC, NC)."""
    k = None
    for name in p:
        def f_one(t, name=name):
            return f({**p, name: t}).reshape(-1)
        jac = jacrev(f_one, chunk_size=chunk)(p[name]).reshape(-1, p[name].numel())   # (NC, P_name)
        k = jac @ jac.T if k is None else k + jac @ jac.T
    return k


def ntk_columns(f: Callable[[Params], torch.Tensor], p: Params, chunk: int = 16) -> torch.Tensor:
    """Generic kernel without a Jacobian in memory: column k = J (J^T e_k), a vjp then a jvp."""
    flat = lambda q: f(q).reshape(-1)  # noqa: E731
    out, pullback = vjp(flat, p)
    n = out.numel()
    eye = torch.eye(n, dtype=out.dtype, device=out.device)
    cols = []
    for s in range(0, n, chunk):
        tangents = vmap(pullback)(eye[s:s + chunk])[0]
        cols.append(vmap(lambda t: jvp(flat, (p,), (t,))[1])(tangents))
    return torch.cat(cols).T


def plan(n_outputs: int, n_params: int, closed_form: str | None, free_bytes: int, itemsize: int = 8) -> str:
    """Cheapest kernel method that fits: the closed form if there is one (its name), else 'jacobian' if
    three NC x P Jacobian blocks fit in free memory, else 'columns'."""
    if closed_form:
        return closed_form
    return "jacobian" if 3 * n_outputs * n_params * itemsize < free_bytes else "columns"


def relative_change(k: torch.Tensor, k0: torch.Tensor) -> torch.Tensor:
    """||K - K0||_F / ||K0||_F over the last two dims."""
    return torch.linalg.matrix_norm(k - k0) / torch.linalg.matrix_norm(k0)
