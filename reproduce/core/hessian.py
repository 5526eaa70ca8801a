"""Spectral norm of a model-output Hessian by Hessian-vector products and power iteration."""
from __future__ import annotations

from typing import Callable

import torch
from torch.func import grad, jvp


def hvp(f: Callable[[torch.Tensor], torch.Tensor], w: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """H v for scalar f at flat w (P,), forward-over-reverse: jvp of grad f."""
    return jvp(grad(f), (w,), (v,))[1]


def hessian_norm(f: Callable[[torch.Tensor], torch.Tensor], w: torch.Tensor, *, iters: int = 200,
                 tol: float = 1e-6, generator: torch.Generator | None = None) -> tuple[float, float, int]:
    """||H||_2 = max |eigenvalue| of the Hessian of scalar f at w (P,), by power iteration.

    The estimate is ||H v|| (not v^T H v, which vanishes for a +-lambda spectrum). Returns
    (norm, residual ||H^2 v - norm^2 v|| / norm^2, iterations used).
    """
    v = torch.randn(w.shape, generator=generator, dtype=w.dtype, device=w.device)
    v = v / v.norm()
    est, it = 0.0, 0
    for it in range(1, iters + 1):
        hv = hvp(f, w, v)
        new = hv.norm().item()
        if new == 0.0:
            return 0.0, 0.0, it
        v = hv / new
        if abs(new - est) <= tol * new:
            est = new
            break
        est = new
    h2v = hvp(f, w, hvp(f, w, v))
    return est, (h2v - est**2 * v).norm().item() / est**2, it
