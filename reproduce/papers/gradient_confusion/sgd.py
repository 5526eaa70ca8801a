"""Minibatch SGD on device-resident data for R runs at once, and GPU augmentation (pad-crop-flip).

Plain SGD (no momentum, no weight decay), epochs of n // batch steps over a fresh permutation per run,
step drops x0.1 at fixed fractions of the steps, and a divergence detector. R = 1 for an nn.Module;
R > 1 for stacked independent runs whose parameters carry a leading run dimension.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch.nn import functional as F


def lr_factor(step: int, total: int, drops: Sequence[float] = (0.4, 0.8), factor: float = 0.1) -> float:
    """factor ** (number of drops at or before `step`); drops sit at floor(fraction * total)."""
    return factor ** sum(step >= math.floor(d * total) for d in drops)


def pad_reflect(x: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Reflect-pad uint8 images once: (N, C, H, W) -> (N, C, H + 2 pad, W + 2 pad) uint8."""
    return F.pad(x.float(), (pad,) * 4, mode="reflect").round().to(torch.uint8)


def crop_flip(xp: torch.Tensor, idx: torch.Tensor, size: int, gen: torch.Generator, flip: bool = True) -> torch.Tensor:
    """Random size x size crops (one offset per sample) and horizontal flips of xp[idx]: (B, C, size, size)."""
    b, c, h, w = len(idx), xp.shape[1], xp.shape[2], xp.shape[3]
    dev = xp.device
    oy = torch.randint(0, h - size + 1, (b,), generator=gen, device=dev)
    ox = torch.randint(0, w - size + 1, (b,), generator=gen, device=dev)
    ar = torch.arange(size, device=dev)
    rows, cols = (oy[:, None] + ar)[:, None, :, None], (ox[:, None] + ar)[:, None, None, :]
    out = xp[idx[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None], rows, cols]
    if flip:
        m = torch.rand(b, generator=gen, device=dev) < 0.5
        out = torch.where(m[:, None, None, None], out.flip(-1), out)
    return out


def sgd(params: list[torch.Tensor], loss_fn: Callable[[torch.Tensor], torch.Tensor], lr: torch.Tensor, *,
        n: int, batch: int, steps: int, gens: Sequence[torch.Generator], init_loss: torch.Tensor,
        stacked: bool, drops: Sequence[float] = (0.4, 0.8), diverge: float = 10.0,
        on_epoch: Callable[[int, torch.Tensor], None] | None = None,
        tick: Callable[[int], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Train in place. loss_fn(idx (R, batch)) -> per-run mean losses (R,); lr, init_loss (R,); gens: one per run
    (draws each run's permutation). A run dies when its epoch loss is NaN/Inf, or above diverge * init_loss for two
    consecutive epochs; dead runs get step 0. on_epoch(epoch, alive) runs after every epoch (1-based).
    Returns (mean minibatch loss per epoch (E, R), alive (R,))."""
    per_epoch = n // batch
    dev = lr.device
    alive = torch.ones_like(lr, dtype=torch.bool)
    strikes = torch.zeros_like(lr, dtype=torch.long)
    history, step = [], 0
    lr0 = None if stacked else float(lr[0])          # a Python float: no device sync per step
    for epoch in range(1, math.ceil(steps / per_epoch) + 1):
        perm = torch.stack([torch.randperm(n, generator=g, device=g.device) for g in gens]).to(dev)
        total, k = torch.zeros_like(lr), 0
        while k < per_epoch and step < steps:
            loss = loss_fn(perm[:, k * batch:(k + 1) * batch])
            grads = torch.autograd.grad(loss.sum(), params)
            with torch.no_grad():
                if stacked:
                    eta = lr * lr_factor(step, steps, drops) * alive
                    for p, g in zip(params, grads):
                        p.sub_(eta.view(-1, *([1] * (p.ndim - 1))) * g)
                else:
                    torch._foreach_add_(params, grads, alpha=-lr0 * lr_factor(step, steps, drops))
            total += loss.detach()
            k, step = k + 1, step + 1
            if tick is not None and step % 100 == 0:
                tick(step)
        mean = total / k
        finite = torch.isfinite(mean)
        strikes = torch.where(finite & (mean > diverge * init_loss), strikes + 1, torch.zeros_like(strikes))
        alive &= finite & (strikes < 2)
        history.append(mean)
        if on_epoch is not None:
            on_epoch(epoch, alive)
        if step >= steps or not bool(alive.any()):
            break
    return torch.stack(history), alive
