"""Spectral norms of model-output Hessians by Hessian-vector products and power iteration."""
from __future__ import annotations

from typing import Callable

import torch
from torch.func import grad, jvp, vmap


def hvp(f: Callable[[torch.Tensor], torch.Tensor], w: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """H v for scalar f at flat w (P,), forward-over-reverse: jvp of grad f."""
    return jvp(grad(f), (w,), (v,))[1]


def hessian_norms(f: Callable[[torch.Tensor], torch.Tensor], w: torch.Tensor, *, iters: int = 200,
                  tol: float = 1e-6, generator: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """||H_k||_2 = max |eigenvalue| of the Hessian of every output f_k, f: (P,) -> (K,), at w (P,).

    Power iteration on all K Hessians at once (vmap over HVPs of e_k^T f). The estimate is ||H v||, not
    v^T H v, which vanishes for a +-lambda spectrum. Returns norms (K,), residuals
    ||H^2 v - norm^2 v|| / norm^2 (K,), and iterations used (K,).
    """
    k = f(w).numel()
    eye = torch.eye(k, dtype=w.dtype, device=w.device)
    batch_hvp = vmap(lambda v, e: hvp(lambda u: f(u).reshape(-1) @ e, w, v))
    v = torch.randn(k, *w.shape, generator=generator, dtype=w.dtype, device=w.device)
    v = v / v.norm(dim=1, keepdim=True)
    est = torch.zeros(k, dtype=w.dtype, device=w.device)
    done = torch.zeros(k, dtype=torch.bool, device=w.device)
    used = torch.zeros(k, dtype=torch.long, device=w.device)
    for it in range(1, iters + 1):
        hv = batch_hvp(v, eye)
        new = hv.norm(dim=1)
        v = torch.where(done[:, None] | (new[:, None] == 0), v, hv / new.clamp_min(1e-300)[:, None])
        conv = ((new - est).abs() <= tol * new) | (new == 0)
        est, used = torch.where(done, est, new), torch.where(done, used, it)
        done |= conv
        if bool(done.all()):
            break
    h2v = batch_hvp(batch_hvp(v, eye), eye)
    sq = (est**2).clamp_min(1e-300)[:, None]
    residual = torch.where(est > 0, (h2v - sq * v).norm(dim=1) / sq[:, 0], torch.zeros_like(est))
    return est, residual, used


def hessian_norm(f: Callable[[torch.Tensor], torch.Tensor], w: torch.Tensor, *, iters: int = 200,
                 tol: float = 1e-6, generator: torch.Generator | None = None) -> tuple[float, float, int]:
    """||H||_2 of scalar f at w (P,): hessian_norms for one output. Returns (norm, residual, iterations)."""
    norm, residual, used = hessian_norms(lambda u: f(u).reshape(1), w, iters=iters, tol=tol, generator=generator)
    return norm.item(), residual.item(), int(used.item())
