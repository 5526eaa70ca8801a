"""Statistics of the slopes along an input path (SPEC-000-002.md D8-D13): gaps, bridge deviation, deflection, margins.

Per pair: node positions t (K,) and slopes R (K+1, c) (R_k on the interval after node k). `pair_stats` reduces
one pair to sums that pool across pairs; `pooled` turns those sums into sigma-hat, K-bar, GGD_mid and deflection.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ...claims import Sums


def normalize_slopes(f: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Slopes of f/||f||: (I - f~ f~^T) R / ||f||, row by row; f, R (N, c)."""
    n = f.norm(dim=-1, keepdim=True)
    u = f / n
    return (R - u * (u * R).sum(-1, keepdim=True)) / n


def deflections(t: torch.Tensor, R: torch.Tensor) -> dict[str, torch.Tensor]:
    """SPEC-000-002.md D11 at the node midpoint k* = floor(K/2): chord at t-hat (default), index form k*/K, and literal
    D(1/2): (c,) each."""
    k = len(t)
    ks = k // 2
    edges = torch.cat([t.new_zeros(1), t, t.new_ones(1)])
    chord = R[-1] - R[0]
    t_hat = (edges[ks] + edges[ks + 1]) / 2
    half = int(torch.searchsorted(t, t.new_tensor(0.5)))   # interval holding t = 1/2
    return {"mid": R[ks] - R[0] - t_hat * chord,
            "index": R[ks] - R[0] - (ks / k if k else 0.0) * chord,
            "half": R[half] - R[0] - 0.5 * chord}


def pair_stats(t: torch.Tensor, R: torch.Tensor, gaps: torch.Tensor | None = None) -> dict[str, float]:
    """Poolable sums for one pair: K, sum of Y^2 and Y over nodes x outputs, sum over outputs of D^2 (3 forms)."""
    y = R[1:] - R[:-1] if gaps is None else gaps
    d = deflections(t, R)
    return {"K": len(t), "c": R.shape[1], "gap_sq": float((y ** 2).sum()), "gap_sum": float(y.sum()),
            **{f"defl_{k}_sq": float((v ** 2).sum()) for k, v in d.items()}}


def pooled(rows) -> dict[str, float]:
    """SPEC-000-002.md D10/D11 pooled over pairs (rows: dicts or a DataFrame of `pair_stats`).

    Returns sigma, mu, K-bar, GGD_mid and the deflections."""
    get = (lambda k: rows[k].to_numpy()) if hasattr(rows, "to_numpy") else (lambda k: [r[k] for r in rows])
    K, c = [float(x) for x in get("K")], [float(x) for x in get("c")]
    n_pairs, total_k, comps = len(K), sum(K), c[0] if c else 1.0
    sigma2 = sum(get("gap_sq")) / (comps * total_k) if total_k else math.nan
    kbar = total_k / n_pairs if n_pairs else math.nan
    ks = math.floor(kbar / 2)
    ggd = math.sqrt(sigma2 * ks * (1 - ks / kbar)) if kbar > 0 else math.nan
    out = {"K_mean": kbar, "sigma": math.sqrt(sigma2),
           "mu": sum(get("gap_sum")) / (comps * total_k) if total_k else math.nan,
           "ggd_mid": ggd, "ggd_half": 0.5 * math.sqrt(sum(get("gap_sq")) / (n_pairs * comps))}
    for form in ("mid", "index", "half"):
        out[f"deflection_{form}"] = math.sqrt(sum(get(f"defl_{form}_sq")) / (n_pairs * comps))
    return out


def sums_for_claims(keys: tuple[str, ...], prefix: str = "", extra: tuple[str, ...] = ()) -> Sums:
    """The `pair_stats` sums `pooled_for_claims` reads (with `prefix`: the normalized output's), per group of keys."""
    forms = tuple(f"{prefix}defl_{k}_sq" for k in ("mid", "index", "half"))
    return Sums(keys, ("K", "c", f"{prefix}gap_sq", f"{prefix}gap_sum") + forms + extra)


def pooled_for_claims(t, prefix: str = "") -> dict[str, np.ndarray]:
    """`pooled` on claims.Totals of `sums_for_claims` (B copies x G groups of pairs): the same statistics, (B, G)."""
    n, total_k = t["n"], t["K"]
    comps, kbar = t["c"] / n, total_k / n
    sigma2 = t[f"{prefix}gap_sq"] / (comps * total_k)
    ks = np.floor(kbar / 2)
    out = {"K_mean": kbar, "sigma": np.sqrt(sigma2), "mu": t[f"{prefix}gap_sum"] / (comps * total_k),
           "ggd_mid": np.where(kbar > 0, np.sqrt(sigma2 * ks * (1 - ks / kbar)), math.nan),
           "ggd_half": 0.5 * np.sqrt(t[f"{prefix}gap_sq"] / (n * comps))}
    for form in ("mid", "index", "half"):
        out[f"deflection_{form}"] = np.sqrt(t[f"{prefix}defl_{form}_sq"] / (n * comps))
    return out


def pair_margin_fluctuation(f0: torch.Tensor, fh: torch.Tensor, f1: torch.Tensor, y0: torch.Tensor,
                            y1: torch.Tensor) -> dict[str, torch.Tensor]:
    """SPEC-000-002.md D13 on normalized outputs: PM (P,), and PF (P,) as mean / max / l2 over the c components."""
    n0, nh, n1 = (f / f.norm(dim=-1, keepdim=True) for f in (f0, fh, f1))

    def margin(f, y):
        own = f.gather(1, y[:, None])[:, 0]
        other = f.scatter(1, y[:, None], -math.inf).max(1).values
        return own - other
    pf = ((n0 + n1) / 2 - nh).abs()
    return {"PM": (margin(n0, y0) + margin(n1, y1)) / 2, "PF_mean": pf.mean(1), "PF_max": pf.max(1).values,
            "PF_l2": pf.norm(dim=1)}
