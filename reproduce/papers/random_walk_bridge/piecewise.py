"""Piecewise-linear networks whose ReLU inputs and max-pool windows can be observed or frozen, with jvp slopes.

Models built from `PLReLU` and `PLMaxPool` behave as plain ReLU / max-pool networks. Inside `trace(...)` every
such layer records its input z (the ReLU pre-activations, or the values of every pool window); with `frozen=`
patterns the layers apply a fixed on/off mask (ReLU) or argmax (pool) instead, which makes the network affine in
its input (SPEC-000-002.md D2, §1.3). Linear, Conv2d, AvgPool, residual adds, Flatten and eval-mode BatchNorm
are affine. Directional derivatives are exact products through the indicator matrices (SPEC-000-002.md D6): a second
pass pushes v through the network's linear part (biases, BN shifts and running means set to zero) with the first
pass's pattern. This equals forward-mode AD (`torch.func.jvp`, pinned in the tests) at about the cost of one forward
pass.
A pattern is a list, one entry per PL layer in call order: bool masks (N, *z.shape[1:]) or argmax (N, C, H', W').
"""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

_TRACE: contextvars.ContextVar = contextvars.ContextVar("pl_trace", default=None)


class PLReLU(nn.Module):
    """ReLU that reports to the active `trace` (never in place)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        tr = _TRACE.get()
        return F.relu(z) if tr is None else tr.relu(z)


class PLMaxPool(nn.Module):
    """k x k max-pool (stride, padding as nn.MaxPool2d) that reports to the active `trace`."""

    def __init__(self, k: int = 2, stride: int | None = None, padding: int = 0):
        super().__init__()
        self.k, self.stride, self.padding = k, stride or k, padding

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        tr = _TRACE.get()
        return F.max_pool2d(z, self.k, self.stride, self.padding) if tr is None else tr.pool(z, self)


def windows(z: torch.Tensor, pool: PLMaxPool) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H', W', k*k): the pool windows (padding never wins: it is -inf)."""
    n, c, h, w = z.shape
    k, s, p = pool.k, pool.stride, pool.padding
    if s == k and p == 0 and h % k == 0 and w % k == 0:
        return z.reshape(n, c, h // k, k, w // k, k).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h // k, w // k, k * k)
    zp = F.pad(z, (p, p, p, p), value=float("-inf")) if p else z
    u = zp.unfold(2, k, s).unfold(3, k, s)                                    # (N, C, H', W', k, k)
    return u.reshape(*u.shape[:4], k * k)


@dataclass
class Trace:
    """What one traced forward pass saw, per PL layer in call order."""
    frozen: list | None = None
    kinds: list = field(default_factory=list)     # "relu" | "pool"
    z: list = field(default_factory=list)         # relu: (N, units); pool: (N, windows, k*k)
    zdot: list = field(default_factory=list)
    pattern: list = field(default_factory=list)   # relu: bool (N, ...); pool: argmax (N, C, H', W')

    def _record(self, kind, z):
        self.kinds.append(kind)
        self.z.append(z.detach())
        return z

    def relu(self, z):
        p = self._record("relu", z)
        mask = p > 0 if self.frozen is None else self.frozen[len(self.pattern)]
        self.pattern.append(mask)
        self.z[-1] = self.z[-1].flatten(1)
        return torch.where(mask, z, 0.0)

    def pool(self, z, pool):
        w = windows(z, pool)
        p = self._record("pool", w)
        idx = p.argmax(-1) if self.frozen is None else self.frozen[len(self.pattern)]
        self.pattern.append(idx)
        self.z[-1] = self.z[-1].flatten(1, -2)
        return torch.gather(w, -1, idx[..., None])[..., 0]


@contextlib.contextmanager
def trace(frozen: list | None = None):
    """Record (and optionally freeze) every PL layer of the forward passes run inside."""
    tr = Trace(frozen)
    token = _TRACE.set(tr)
    try:
        yield tr
    finally:
        _TRACE.reset(token)


def linear_part(model: nn.Module) -> dict[str, torch.Tensor]:
    """Overrides that remove every additive term: Linear/Conv biases, BN shifts and running means (eval BN)."""
    out = {}
    for name, mod in model.named_modules():
        pre = f"{name}." if name else ""
        if isinstance(mod, (nn.Linear, nn.Conv2d)) and mod.bias is not None:
            out[pre + "bias"] = torch.zeros_like(mod.bias)
        elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
            if mod.training:
                raise ValueError("BatchNorm must be in eval mode for path measurements (SPEC-000-002.md §1.3)")
            out[pre + "running_mean"] = torch.zeros_like(mod.running_mean)
            if mod.bias is not None:
                out[pre + "bias"] = torch.zeros_like(mod.bias)
    return out


def along(model: nn.Module, x0: torch.Tensor, v: torch.Tensor, ts: torch.Tensor,
          frozen: list | None = None) -> tuple[torch.Tensor, torch.Tensor, Trace]:
    """Outputs f(X(t)) (T, c), slopes d f(X(t))/dt = J v (T, c), and the trace, at X(t) = x0 + t v for ts (T,).

    x0, v: one input each (no batch dimension). Slopes are per unit t; divide by ||v|| for SPEC-000-002.md D6.
    The trace's zdot holds every recorded value's slope (the linear part applied to v under the same pattern).
    """
    shape = (len(ts),) + (1,) * x0.dim()
    x = x0[None] + ts.to(device=x0.device, dtype=x0.dtype).reshape(shape) * v[None]
    with torch.no_grad():
        with trace(frozen) as tr:
            f = model(x)
        with trace(tr.pattern) as tan:
            fdot = torch.func.functional_call(model, linear_part(model), (v[None].expand_as(x),))
    tr.zdot = tan.z
    return f, fdot, tr


def flat_pattern(tr: Trace) -> torch.Tensor:
    """(N, P) int64 codes: relu bits then pool argmaxes, for comparing patterns."""
    return torch.cat([p.flatten(1).long() for p in tr.pattern], 1)


def flat_values(tr: Trace) -> tuple[torch.Tensor, torch.Tensor]:
    """Every recorded value and its slope, concatenated: (N, U) each."""
    return torch.cat([z.flatten(1) for z in tr.z], 1), torch.cat([d.flatten(1) for d in tr.zdot], 1)


def relu_count(model: nn.Module, x: torch.Tensor) -> int:
    """N_relu: ReLU output elements of one input (1, ...)."""
    with torch.no_grad(), trace() as tr:
        model(x)
    return sum(z.shape[1] for z, k in zip(tr.z, tr.kinds) if k == "relu")
