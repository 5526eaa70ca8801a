"""Closed-form tangent kernels of the paper's two dense nets (eq. 43 shallow, eq. 48 bottleneck) and its heads.

Kernel layout: K[(i, c), (j, c')] = <grad_w f_c(x_i), grad_w f_c'(x_j)>, flattened with index i*C + c,
so K has shape (N*C, N*C) (a leading seed dimension R where noted).
"""
from __future__ import annotations

import math

import torch

Params = dict[str, torch.Tensor]


def _kron_eye(k: torch.Tensor, c: int) -> torch.Tensor:
    """(..., N, N) -> (..., NC, NC) with entry [(i,a),(j,b)] = k[i,j] * [a == b]."""
    eye = torch.eye(c, dtype=k.dtype, device=k.device)
    return (k[..., :, None, :, None] * eye[:, None, :]).flatten(-4, -3).flatten(-2, -1)


def _repeat(k: torch.Tensor, c: int) -> torch.Tensor:
    """(..., N, N) -> (..., NC, NC) with entry [(i,a),(j,b)] = k[i,j]."""
    return k.repeat_interleave(c, dim=-2).repeat_interleave(c, dim=-1)


def shallow_forward(p: Params, x: torch.Tensor) -> torch.Tensor:
    """Eq. 43 batched over seeds: w, b (R, m), V (R, C, m); x (N,) -> f (R, N, C)."""
    h = x[None, :, None] * p["w"][:, None, :] + p["b"][:, None, :]
    return h.clamp_min(0) @ p["V"].transpose(1, 2) / math.sqrt(p["w"].shape[1])


def ntk_shallow(p: Params, x: torch.Tensor, chunk: int = 1 << 16) -> torch.Tensor:
    """Closed-form kernel of eq. 43, f = V relu(w x + b) / sqrt(m), batched over seeds.

    p: w (R, m), b (R, m), V (R, C, m); x (N,). Returns K (R, NC, NC). Memory O(R N C chunk).
    """
    w, b, v = p["w"], p["b"], p["V"]
    r, c, m = v.shape
    n = x.shape[0]
    k_a = x.new_zeros(r, n, n)
    k_d = x.new_zeros(r, n * c, n * c)
    for s in range(0, m, chunk):
        h = x[None, :, None] * w[:, None, s:s + chunk] + b[:, None, s:s + chunk]      # (R, N, mc)
        a, d = h.clamp_min(0), (h > 0).to(h.dtype)
        k_a += a @ a.transpose(1, 2)
        dv = (d[:, :, None, :] * v[:, None, :, s:s + chunk]).flatten(1, 2)              # (R, NC, mc)
        k_d += dv @ dv.transpose(1, 2)
    xx = _repeat(x[:, None] * x[None, :] + 1, c)
    return (_kron_eye(k_a, c) + k_d * xx) / m


def ntk_shallow_scan(p: Params, x: torch.Tensor) -> torch.Tensor:
    """Eq. 43's kernel in O(m log m + N^2 C^2) for scalar inputs, batched over seeds: (R, NC, NC).

    Unit k is active at x iff x > t_k (w_k > 0) or x < t_k (w_k < 0), t_k = -b_k / w_k. So the units
    active at both x_i and x_j are those with t_k < min(x_i, x_j) (w > 0) or t_k > max(x_i, x_j) (w < 0),
    and every sum over them is a prefix sum over the sorted thresholds, read off by searchsorted.
    """
    w, b, v = p["w"], p["b"], p["V"]
    r, c, m = v.shape
    n = x.shape[0]
    per_unit = torch.cat([(v[:, :, None, :] * v[:, None, :, :]).flatten(1, 2),            # (R, C*C + 3, m)
                          torch.stack([w * w, w * b, b * b], 1)], 1).transpose(1, 2)     # -> (R, m, Q)
    xs, order = x.sort()
    xs = xs.expand(r, n).contiguous()
    t = -b / w
    sums = []
    for sign in (1, -1):   # bin every unit by where its threshold falls among the sorted inputs, then cumsum
        pu = per_unit * (w * sign > 0).to(x.dtype)[..., None]                             # only this sign counts
        bins = torch.searchsorted(xs, torch.nan_to_num(t, posinf=1e300, neginf=-1e300), right=sign > 0)
        acc = per_unit.new_zeros(r, n + 1, per_unit.shape[2]).scatter_add_(1, bins[..., None].expand_as(pu), pu)
        cum = acc.cumsum(1)                                                               # (R, N+1, Q)
        at_sorted = cum[:, :n] if sign > 0 else cum[:, -1:] - cum[:, :n]                  # t < x  |  t > x
        sums.append(at_sorted[:, torch.argsort(order)])                                   # back to x's order
    const = (per_unit * ((w == 0) & (b > 0)).to(x.dtype)[..., None]).sum(1)[:, None, None]      # (R, 1, 1, Q)
    le = (x[:, None] <= x[None, :])[None, :, :, None]                                   # (1, N, N, 1)
    lo, hi = sums[0][:, :, None], sums[1][:, :, None]                                   # value at x_i
    both = (torch.where(le, lo, lo.transpose(1, 2)) + torch.where(le, hi.transpose(1, 2), hi) + const)
    vv, (ww, wb, bb) = both[..., : c * c].unflatten(-1, (c, c)), both[..., c * c:].unbind(-1)   # (R,N,N,C,C)
    xi, xj = x[:, None], x[None, :]
    k_a = xi * xj * ww + (xi + xj) * wb + bb                                            # (R, N, N)
    k_d = vv * (xi * xj + 1)[None, :, :, None, None]
    return (_kron_eye(k_a, c) + k_d.permute(0, 1, 3, 2, 4).reshape(r, n * c, n * c)) / m


def bottleneck_forward(p: Params, x: torch.Tensor, scale: str = "literal") -> dict[str, torch.Tensor]:
    """Eq. 48 with first-layer bias, batched over seeds; returns the intermediate tensors and f (R, N, C).

    p: W1 (R, m), b1 (R, m) or absent, W2 (R, mb, m), W3 (R, m, mb), W4 (R, C, m); x (N,).
    scale: 'literal' (as printed) or 'ntk' (an extra 1/sqrt(mb) in front of W3).
    """
    m, s = p["W2"].shape[2], bottleneck_scale(p, scale)
    pre1 = x[None, :, None] * p["W1"][:, None, :] + (p["b1"][:, None, :] if "b1" in p else 0)
    a1 = pre1.clamp_min(0)
    z = a1 @ p["W2"].transpose(1, 2) / math.sqrt(m)                                   # (R, N, mb)
    h3 = s * z @ p["W3"].transpose(1, 2)                                               # (R, N, m)
    a3 = h3.clamp_min(0)
    f = a3 @ p["W4"].transpose(1, 2) / math.sqrt(m)
    return {"pre1": pre1, "a1": a1, "z": z, "h3": h3, "a3": a3, "f": f}


def bottleneck_scale(p: Params, scale: str) -> float:
    """Factor in front of W3: 1 (eq. 48 as printed) or 1/sqrt(mb) ('ntk')."""
    if scale not in ("literal", "ntk"):
        raise ValueError(f"unknown bottleneck scale {scale!r}")
    return 1.0 if scale == "literal" else 1 / math.sqrt(p["W2"].shape[1])


def ntk_bottleneck(p: Params, x: torch.Tensor, scale: str = "literal") -> torch.Tensor:
    """Closed-form kernel of eq. 48 (first-layer bias optional), batched over seeds: (R, NC, NC)."""
    t = bottleneck_forward(p, x, scale)
    s, m = bottleneck_scale(p, scale), p["W2"].shape[2]
    w4 = p["W4"]
    r, c, _ = w4.shape
    d3, d1 = (t["h3"] > 0).to(x.dtype), (t["pre1"] > 0).to(x.dtype)
    u = (w4[:, None, :, :] * d3[:, :, None, :]).flatten(1, 2) / math.sqrt(m)          # (R, NC, m) df/dh3
    g = s * u @ p["W3"]                                                                # (R, NC, mb) df/dz
    q = (g @ p["W2"] / math.sqrt(m)) * d1.repeat_interleave(c, dim=1)                  # (R, NC, m) df/dpre1
    zz = _repeat(t["z"] @ t["z"].transpose(1, 2), c)
    aa = _repeat(t["a1"] @ t["a1"].transpose(1, 2), c)
    xx = _repeat(x[:, None] * x[None, :] + (1.0 if "b1" in p else 0.0), c)
    k = _kron_eye(t["a3"] @ t["a3"].transpose(1, 2), c) / m
    return k + (u @ u.transpose(1, 2)) * zz * s**2 + (g @ g.transpose(1, 2)) * aa / m + (q @ q.transpose(1, 2)) * xx


def softmax_kernel(k: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Kernel of softmax(f) from the logit kernel: D_i K_ij D_j with D_i = diag(p_i) - p_i p_i^T.

    k: (..., NC, NC); logits: (..., N, C).
    """
    pr = torch.softmax(logits, dim=-1)
    d = torch.diag_embed(pr) - pr[..., :, None] * pr[..., None, :]                  # (..., N, C, C)
    n, c = logits.shape[-2:]
    kb = k.unflatten(-1, (n, c)).unflatten(-3, (n, c))                                 # (..., N, C, N, C)
    out = torch.einsum("...iac,...icjd,...jbd->...iajb", d, kb, d)
    return out.flatten(-2, -1).flatten(-3, -2)


def swish(z: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    """z * sigmoid(beta z) (eq. 45 uses beta = 0.1)."""
    return z * torch.sigmoid(beta * z)


def swish_grad(z: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    """d/dz of z * sigmoid(beta z)."""
    s = torch.sigmoid(beta * z)
    return s + beta * z * s * (1 - s)


def swish_kernel(k: torch.Tensor, logits: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    """Kernel of swish(f) (elementwise): (d d^T) * K with d = swish'(f) flattened."""
    d = swish_grad(logits, beta).flatten(-2, -1)
    return d[..., :, None] * k * d[..., None, :]
