"""What the three figures share: the net's settings, inputs and targets, weights, and per-layer norm ratios."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ...claims import Sums, need
from ...config import setting
from ...core.init import gaussian_weight
from .relu_net import forward_backward_norms

PAPER = "norm-preservation"
INIT_RULES = {("he", "fan_out"): "he_fan_out", ("he", "fan_in"): "he_fan_in",
              ("glorot", "xavier"): "glorot", ("glorot", "code"): "lecun_fan_out"}


@dataclass(frozen=True)
class NetSettings:
    """Settings shared by the three figures (inputs, targets, head, precision)."""
    input_dim: int = setting(500, stated=True, size=True, help="inputs in R^500")
    n_classes: int = setting(20, stated=True, help="targets in R^20, linear + softmax head")
    input_dist: str = setting("gaussian", stated=False, choices=("gaussian", "uniform"),
                              help="x ~ N(0, I) (authors' code) or U(-1, 1)^d")
    targets: str = setting("soft", stated=False, choices=("soft", "onehot"),
                           help="soft: u/sum(u), u ~ U(0,1)^20 (authors' code); onehot: uniform random class")
    head_variance: str = setting("1/m", stated=False, choices=("1/m", "1"),
                                 help="head W_s ~ N(0, 1/m) (spec) or N(0, 1) (authors' code)")
    he_mode: str = setting("fan_out", stated=False, choices=("fan_out", "fan_in"),
                           help="He variance 2/fan_out (theorems) or 2/fan_in (PyTorch default)")
    dtype: str = setting("float64", stated=False, choices=("float64", "float32"), help="compute precision")
    networks: int = setting(5, stated=False, size=True,
                            help="independent networks per point (the paper plots one; the figure shows network 0, "
                                 "the claims judge all of them)")


def _inputs(cfg: NetSettings, n: int, ctx) -> tuple[torch.Tensor, torch.Tensor]:
    g = ctx.rng("inputs")
    kw = dict(generator=g, dtype=ctx.dtype(cfg.dtype), device=ctx.device)
    x = torch.randn(n, cfg.input_dim, **kw) if cfg.input_dist == "gaussian" else \
        torch.rand(n, cfg.input_dim, **kw) * 2 - 1
    if cfg.targets == "soft":
        u = torch.rand(n, cfg.n_classes, **kw)
        return x, u / u.sum(dim=1, keepdim=True)
    labels = torch.randint(cfg.n_classes, (n,), generator=g, device=ctx.device)
    return x, torch.nn.functional.one_hot(labels, cfg.n_classes).to(x.dtype)


def _net(cfg: NetSettings, widths: list[int], rule: str, ctx) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Weights for layer widths [n_0, ..., n_L] under `rule`, and the softmax head."""
    kw = dict(generator=ctx.rng("weights"), dtype=ctx.dtype(cfg.dtype), device=ctx.device)
    weights = [gaussian_weight(rule, n_out, n_in, **kw) for n_in, n_out in zip(widths[:-1], widths[1:])]
    head = torch.randn(cfg.n_classes, widths[-1], **kw)
    if cfg.head_variance == "1/m":
        head = head / math.sqrt(widths[-1])
    return weights, head


def _ratios(cfg: NetSettings, widths: list[int], rule: str, n: int, ctx) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample forward ||h_i||/||x|| and backward ||dl/dW_i||/(||delta|| ||x||), each (N, L)."""
    x, y = _inputs(cfg, n, ctx)
    weights, head = _net(cfg, widths, rule, ctx)
    h, g = forward_backward_norms(weights, head, x, y)
    fwd = h[:, 1:] / h[:, :1]
    bwd = h[:, :-1] * g / (h[:, :1] * g[:, -1:])
    return fwd.cpu().numpy(), bwd.cpu().numpy()


def _layer_rows(fwd: np.ndarray, bwd: np.ndarray, **cols) -> list[dict]:
    return [{**cols, "layer": i + 1, "quantity": q, "mean": float(r[:, i].mean()), "std": float(r[:, i].std())}
            for q, r in (("forward", fwd), ("backward", bwd)) for i in range(r.shape[1])]


def with_nets(points: list[dict], cfg: NetSettings) -> list[dict]:
    """Every grid point once per network (`net` is part of the point, so each network has its own draws)."""
    return [{**p, "net": k} for p in points for k in range(cfg.networks)]


def per_net(df: pd.DataFrame, stat) -> float:
    """Mean over networks of `stat(rows of one network)`."""
    return float(np.mean([stat(g) for _, g in df.groupby("net")]))


def per_net_claims(stat, rows, why: str) -> dict:
    """Claim keywords for "the mean over networks of stat(one network's rows)" (`per_net` on `rows(df)`, Inconclusive
    with `why` when there are none): each network's value is a summed column (claims.Sums), so the bootstrap is one
    product of network counts and values."""
    def reduce(df):
        r = rows(df)
        need(len(r) > 0, why)
        nets = [(net, float(stat(g))) for net, g in r.groupby("net")]
        return pd.DataFrame({"net": [n for n, _ in nets], "stat": [v for _, v in nets], "all": 0})
    return dict(measure=lambda t: t["stat"][:, 0] / t["n"][:, 0], reduce=reduce, unit=("net",),
                sums=Sums(("all",), ("stat",)))


def _sel(df: pd.DataFrame, **kw) -> pd.DataFrame:
    for k, v in kw.items():
        df = df[df[k] == v]
    return df


def net_bytes(cfg: NetSettings, widths: list[int], n: int) -> tuple[int, str]:
    """Peak bytes of `_ratios` on widths [n_0, ..., n_L]: every weight at once plus a few (N, n_l) activations."""
    item = 8 if cfg.dtype == "float64" else 4
    weights = sum(a * b for a, b in zip(widths[:-1], widths[1:])) * item
    acts = n * max(widths) * (4 * item + len(widths))
    return weights + acts, f"{len(widths) - 1} weight matrices up to {max(widths)} x {max(widths)} and {n} samples"
