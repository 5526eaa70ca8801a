"""Full-batch gradient descent for R independent runs stacked along a leading seed dimension."""
from __future__ import annotations

from typing import Callable

import torch

Params = dict[str, torch.Tensor]


def eval_schedule(step: int, every: int = 10) -> bool:
    """Kernel-evaluation steps: every step to 100, every `every` to 10^4, then every 10 * `every`."""
    return step <= 100 or (step <= 10_000 and step % every == 0) or step % (10 * every) == 0


def batched_gd(params: Params, loss_fn: Callable[[Params], torch.Tensor], lr: torch.Tensor, *,
               stop_loss: float, max_steps: int, on_eval: Callable[[int, Params, torch.Tensor], None] | None = None,
               schedule: Callable[[int], bool] = eval_schedule, tick: Callable[[int], None] | None = None
               ) -> tuple[Params, torch.Tensor, torch.Tensor]:
    """GD on every run r: w_r <- w_r - lr_r grad L_r, until L_r < stop_loss (then frozen) or max_steps.

    params: tensors with leading dim R (disjoint per run, so grad of sum_r L_r is per-run GD);
    loss_fn(params) -> (R,); lr (R,). on_eval(step, params, losses) runs at scheduled steps, at step 0,
    and at the final step. Returns (params, final losses (R,), steps taken per run (R,)).
    """
    params = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    steps = torch.zeros_like(lr, dtype=torch.long)
    step = 0
    while True:
        loss = loss_fn(params)
        active = loss.detach() >= stop_loss
        if on_eval is not None and (schedule(step) or not active.any() or step == max_steps):
            with torch.no_grad():
                on_eval(step, {k: v.detach() for k, v in params.items()}, loss.detach())
        if not active.any() or step == max_steps:
            return {k: v.detach() for k, v in params.items()}, loss.detach(), steps
        grads = torch.autograd.grad(loss.sum(), list(params.values()))
        eta = lr * active
        with torch.no_grad():
            for p, g in zip(params.values(), grads):
                p -= eta.view(-1, *([1] * (p.ndim - 1))) * g
        steps += active
        step += 1
        if tick is not None and step % 1000 == 0:
            tick(step)
