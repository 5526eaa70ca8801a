"""Fig 1: in linear regression with N = 100 Gaussian samples, the over-parameterized model (d = 120) trains
  to ~0 loss with SGD while the under-parameterized one (d = 80) stops at the least-squares floor; per-sample
  gradients are less confused (cosines concentrate around 0, std ratio ~ sqrt(80/120)) when d = 120.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ... import plotting
from ...claims import Claim, above, below, between, need
from ...config import setting
from ...registry import Figure, register
from . import confusion as conf
from .common import PAPER


@dataclass(frozen=True)
class Fig1Config:
    dims: tuple[int, ...] = setting((80, 120), stated=True, help="d: under- and over-parameterized (N = 100)")
    n: int = setting(100, stated=True, help="samples")
    runs: int = setting(3, stated=True, size=True, help="independent runs")
    epochs: int = setting(300, stated=False, size=True, help="epochs of N single-sample SGD steps")
    lr: float = setting(0.5, stated=False, help="SGD step; x ~ N(0, I/d) makes alpha ||x||^2 ~ 0.5")
    target: str = setting("noise", stated=False, choices=("noise", "planted"),
                          help="noise: y ~ N(0, 1) independent of x (d = 80 keeps a floor); planted: y = x^T w*")


def fig1_grid(cfg: Fig1Config) -> list[dict]:
    return [{"d": d} for d in cfg.dims]


def fig1_compute(cfg: Fig1Config, point: dict, ctx) -> pd.DataFrame:
    d, n, r = point["d"], cfg.n, cfg.runs
    ctx.notes["compute_device"] = "cpu: a toy of scalar SGD steps, faster on the host than on any GPU"
    g = ctx.rng("data-and-order", device=torch.device("cpu"))
    x = torch.randn(r, n, d, generator=g, dtype=torch.float64) / math.sqrt(d)
    y = (torch.randn(r, n, generator=g, dtype=torch.float64) if cfg.target == "noise"
         else (x @ torch.randn(r, d, 1, generator=g, dtype=torch.float64))[..., 0])
    w = torch.zeros(r, d, dtype=torch.float64)
    rows, runs = [], torch.arange(r)
    lstsq = torch.linalg.lstsq(x, y[..., None]).solution[..., 0]
    best = 0.5 * ((x @ lstsq[..., None])[..., 0] - y).pow(2).mean(1)

    def log(epoch):
        resid = (x @ w[..., None])[..., 0] - y
        loss = 0.5 * resid.pow(2).mean(1)
        for k in range(r):
            s = conf.summary(conf.linreg_cosines(x[k], resid[k]))
            rows.extend({"run": k, "epoch": epoch, "quantity": q, "value": v} for q, v in
                        (("loss", float(loss[k])), ("min_cos", s["min"]), ("std_cos", s["std"]),
                        ("frac_negative", s["frac_negative"]), ("lstsq_loss", float(best[k]))))
    log(0)
    for epoch in range(1, cfg.epochs + 1):
        order = torch.argsort(torch.rand(r, n, generator=g), dim=1)       # without replacement, per run
        for step in range(n):
            xi = x[runs, order[:, step]]
            resid = (xi * w).sum(1) - y[runs, order[:, step]]
            w -= cfg.lr * resid[:, None] * xi
        log(epoch)
    resid = (x @ w[..., None])[..., 0] - y
    for k in range(r):
        rows += [{"run": k, "epoch": cfg.epochs, "quantity": "cos_end", "value": float(c)}
                 for c in conf.linreg_cosines(x[k], resid[k])]
    return pd.DataFrame(rows).assign(d=d)


def fig1_plot(df: pd.DataFrame, cfg: Fig1Config):
    fig, axes = plotting.subplots(1, 3, figsize=(14, 3.8))
    grid = np.linspace(-1, 1, 512)
    for i, (d, g) in enumerate(df.groupby("d")):
        for ax, q in zip(axes[:2], ("loss", "min_cos")):
            s = g[g.quantity == q].groupby("epoch")["value"].agg(["mean", "std"])
            plotting.fill(ax, s.index, s["mean"], s["std"], f"C{i}", label=f"d = {d}")
        axes[2].plot(grid, conf.kde(g[g.quantity == "cos_end"]["value"].to_numpy(), grid), color=f"C{i}",
                     label=f"d = {d}")
    axes[0].set(yscale="log", xlabel="epoch", ylabel="training loss F(w)", title="(a) loss (mean ± std over runs)")
    axes[1].set(xlabel="epoch", ylabel="min pairwise cosine", title="(b) worst-case gradient confusion")
    axes[2].set(xlabel="pairwise gradient cosine at the end", ylabel="density (KDE)", title="(c) all pairs, all runs")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _final(df, q):
    last = df[(df.quantity == q) & (df.epoch == df.epoch.max())]
    need(set(last["d"]) >= {80, 120} or len(set(last["d"])) >= 2, "needs two dims")
    return last.groupby("d")["value"].mean()


def _over_fits(df):
    f = _final(df, "loss")
    return float(f[f.index.max()] / f[f.index.min()])


def _under_floor(df):
    last = df[df.epoch == df.epoch.max()]
    sel = last[last.d == last["d"].min()].pivot_table(index="run", columns="quantity", values="value")
    return float((sel["loss"] / sel["lstsq_loss"]).mean())


def _std_ratio(df):
    end = df[df.quantity == "cos_end"].groupby("d")["value"].std()
    need(len(end) >= 2, "needs two dims")
    return float(end[end.index.max()] / end[end.index.min()])


def _min_cos(df):
    f = _final(df, "min_cos")
    return float(f[f.index.max()] - f[f.index.min()])


RUN = dict(unit=("run",))
_F = "SPEC-003-004.md §A.5 Fig. 1"
FIG1_CLAIMS = (
    Claim("F1-a-over-fits", "Over-parameterized linear regression trains to ~0 loss; under-parameterized does not",
          _over_fits, below(0.01, "(final loss d = 120 / d = 80)"),
          source=f"{_F} `P003-F1-a`: final loss(d=120) < 0.01 x final loss(d=80)", **RUN),
    Claim("F1-b-under-floor", "The under-parameterized model stops at its least-squares floor", _under_floor,
          between(0.95, 1.5, "(final loss / least-squares optimum, d = 80, mean over runs)"),
          source=f"{_F} `P003-F1-b`: final loss(d=80) in [0.95, 1.5] x the least-squares optimum", **RUN),
    Claim("F1-c-concentrated", "Cosines concentrate around 0 when over-parameterized (std ratio ~ sqrt(80/120))",
          _std_ratio, between(0.72, 0.92, "(std of the final cosines, d = 120 / d = 80; theory 0.816)"),
          source=f"{_F} `P003-F1-c`: std ratio in [0.72, 0.92] (theory sqrt(80/120) = 0.816)", **RUN),
    Claim("F1-d-less-confused", "Less worst-case confusion when over-parameterized", _min_cos,
          above(0, "(mean final min cosine, d = 120 minus d = 80)"),
          source=f"{_F} `P003-F1-d`: mean over runs of min cosine, d = 120 > d = 80", **RUN),
)

register(Figure(PAPER, "fig1", "Linear regression: over- vs under-parameterized, loss and gradient cosines", Fig1Config,
                fig1_grid, fig1_compute, fig1_plot, FIG1_CLAIMS,
                presets={"smoke": {"epochs": 100}, "paper": {}},
                runtime={"smoke": "5 s", "default": "22 s CPU", "paper": "as default"}))
