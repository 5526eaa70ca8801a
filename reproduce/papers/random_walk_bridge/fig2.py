"""Figure 2: 2-layer MLPs at initialization vs width m: nodes, gradient gap deviation, deflection (closed form)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ... import plotting
from ...claims import Claim, below, between, need
from ...config import setting
from ...registry import Figure, register
from . import breakpoints as bp
from . import path_stats as ps
from .common import PAPER, REAL, SHAPES, SYNTHETIC, DataSettings, data, pairs, pooled_by


@dataclass(frozen=True)
class Fig2Config(DataSettings):
    datasets: tuple[str, ...] = setting(("mnist", "cifar10", "cifar100"), stated=True, size=True,
                                        choices=REAL + SYNTHETIC + ("gaussian",),
                                        help="one curve each; cifar100 is not available offline (drop it with "
                                             "--set datasets=mnist,cifar10); synthetic-*: labelled stand-ins; "
                                             "gaussian: X ~ N(0, I_784), the theory's sanity mode")
    widths: tuple[int, ...] = setting((100, 200, 500, 1000, 2000, 4000), stated=False, size=True, help="m")
    networks: int = setting(10, stated=True, size=True, help="independent networks per m (the claims' units)")
    pairs_per_net: int = setting(10, stated=False, size=True, help="pairs per network")
    dtype: str = setting("float64", stated=False, choices=("float64",), help="weights and break points (closed form)")


def fig2_grid(cfg: Fig2Config) -> list[dict]:
    return [{"dataset": ds, "m": m} for ds in cfg.datasets for m in sorted(cfg.widths)]


def fig2_compute(cfg: Fig2Config, point: dict, ctx) -> pd.DataFrame:
    name, m = point["dataset"], point["m"]
    _, (x, y) = data(name, DataSettings(cfg.preprocess, cfg.pairs_from, cfg.pair_type), ctx.data_root, ctx.seed)
    x = x.flatten(1)
    c = 10 if name == "gaussian" else SHAPES[name.removeprefix("synthetic-")][3]
    d, rows = x.shape[1], []
    for net in range(cfg.networks):
        pg = ctx.rng("pairs", device=torch.device("cpu"), per_point=False, dataset=name, net=net)  # same for all m
        idx = pairs(y, cfg.pairs_per_net, cfg.pair_type, pg)
        g = ctx.rng("init", device=torch.device("cpu"), net=net)
        w1 = (torch.randn(m, d, generator=g, dtype=torch.float64) * math.sqrt(2 / d)).to(ctx.device)
        w2 = (torch.randn(c, m, generator=g, dtype=torch.float64) * math.sqrt(2 / m)).to(ctx.device)
        for p, (i, j) in enumerate(idx.tolist()):
            x0, x1 = x[i].double().to(ctx.device), x[j].double().to(ctx.device)
            t, R = bp.two_layer(w1, w2, x0, x1)
            cos = float(x0 @ x1 / (x0.norm() * x1.norm()))
            rows.append({"net": net, "pair": p, "theta": math.acos(max(-1.0, min(1.0, cos))), **ps.pair_stats(t, R)})
        ctx.tick(f"network {net + 1}/{cfg.networks}")
    return pd.DataFrame(rows).assign(dataset=name, m=m, d=d)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    s = pooled_by(df, ["dataset", "m"])
    extra = df.groupby(["dataset", "m"]).agg(d=("d", "first"),
                                             theta_pi=("theta", lambda v: float(np.mean(v)) / math.pi),
                                             K_se=("K", lambda v: float(np.std(v, ddof=1) / math.sqrt(len(v)))))
    return s.merge(extra.reset_index(), on=["dataset", "m"])


def fig2_plot(df: pd.DataFrame, cfg: Fig2Config):
    s = summary(df)
    fig, axes = plotting.subplots(1, 3, figsize=(14, 4))
    for i, (name, g) in enumerate(s.groupby("dataset", sort=False)):
        col, d = f"C{i}", int(g["d"].iloc[0])
        label = name if name in REAL else f"{name} (stand-in)" if name != "gaussian" else "N(0, I) inputs"
        axes[0].plot(g["m"], g["K_mean"], "o-", color=col, label=label)
        axes[0].plot(g["m"], g["m"] * g["theta_pi"], ":", color=col, lw=1)
        axes[1].plot(g["m"], g["ggd_mid"], "o-", color=col, label=label)
        axes[1].axhline(1 / math.sqrt(d), color=col, ls=":", lw=1)
        axes[1].axhline(math.sqrt((1 + 2 / math.pi) / (2 * d)), color=col, ls="--", lw=1)
        axes[2].plot(g["m"], g["deflection_mid"], "o-", color=col, label=f"{label}: midpoint")
        axes[2].plot(g["m"], g["deflection_half"], "x:", color=col, lw=1, label=f"{label}: D(1/2)")
    m = np.array(sorted(s["m"].unique()), float)
    axes[0].plot(m, m / 2, "k--", lw=1, label="m/2 (dotted: m E[theta]/pi)")
    axes[0].set(xscale="log", yscale="log", xlabel="hidden units m", ylabel="mean number of nodes K", title="(a) nodes")
    axes[1].set(xscale="log", yscale="log", xlabel="hidden units m", ylabel="GGD at k = K/2",
                title="(b) gradient gap deviation\n(dotted 1/sqrt(d), paper; dashed 0.905/sqrt(d), SPEC E1)")
    axes[2].set(xscale="log", yscale="log", xlabel="hidden units m", ylabel="deflection",
                title="(c) gradient deflection")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _per_dataset(df, fn) -> dict[str, float]:
    """fn(summary rows of one real dataset) per dataset."""
    s = summary(df)
    s = s[s.dataset != "gaussian"]
    need(len(s) > 0, "no dataset rows")
    return {k: float(fn(g)) for k, g in s.groupby("dataset", sort=False)}


def _worst(fn):
    """Measure: the worst (largest) over real datasets and widths of fn(summary rows of one dataset)."""
    return lambda df: max(_per_dataset(df, fn).values())


def _listed(fn):
    """Info: fn per dataset, e.g. 'mnist 0.0996, cifar10 0.0081'."""
    return lambda df: ", ".join(f"{k} {v:.3g}" for k, v in _per_dataset(df, fn).items())


def _flat(col):
    return lambda g: g[col].max() / g[col].min()


def _close(g):
    r = g["deflection_mid"] / g["ggd_mid"]
    return np.maximum(r, 1 / r).max()


def _variants(g):
    return max((g[f"deflection_{k}"] / g["deflection_mid"] - 1).abs().max() for k in ("index", "half"))


NET = dict(unit=("net",))
FIG2_CLAIMS = (
    Claim("F2-a-half", "Number of nodes is about half the hidden units: |K/m - 1/2| <= 0.05",
          _worst(lambda g: (g["K_mean"] / g["m"] - 0.5).abs().max()), below(0.05, "(worst dataset and m)"),
          info=_listed(lambda g: g["theta_pi"].mean()), **NET),
    Claim("F2-a-theta", "Exact expectation: K = m E[theta]/pi (Theorem 3.1's mean, any preprocessing)",
          _worst(lambda g: ((g["K_mean"] - g["m"] * g["theta_pi"]).abs() / g["m"]).max()),
          below(0.01, "(|K - m E[theta]/pi| / m, worst dataset and m)"), **NET),
    Claim("F2-b-small", "Gradient gap deviation << 1 (< 0.1)", _worst(lambda g: g["ggd_mid"].max()),
          below(0.1, "(largest GGD over m)"), info=_listed(lambda g: g["ggd_mid"].max()), **NET),
    Claim("F2-b-flat", "GGD hardly varies with m (max/min <= 1.2)", _worst(_flat("ggd_mid")), below(1.2), **NET),
    Claim("F2-b-sqrt-d", "GGD is about 1/sqrt(d): GGD sqrt(d) in [0.5, 1.2]",
          _worst(lambda g: (g["ggd_mid"] * np.sqrt(g["d"])).mean()), between(0.5, 1.2, "(largest over datasets)"),
          info=_listed(lambda g: (g["ggd_mid"] * np.sqrt(g["d"])).mean()), **NET),
    Claim("F2-c-small", "Gradient deflection << 1 (< 0.1)", _worst(lambda g: g["deflection_mid"].max()),
          below(0.1, "(largest deflection over m)"), **NET),
    Claim("F2-c-flat", "Deflection hardly varies with m (max/min <= 1.2)", _worst(_flat("deflection_mid")),
          below(1.2), **NET),
    Claim("F2-c-close", "Deflection is close to GGD: deflection / GGD in [0.8, 1.25] at every m", _worst(_close),
          below(1.25, "(max of ratio, 1/ratio)"), **NET),
    Claim("F2-c-variants", "Midpoint, index-form and D(1/2) deflections agree within 10%", _worst(_variants),
          below(0.1), **NET),
)

register(Figure(PAPER, "fig2", "2-layer MLPs at init vs width: nodes, gradient gap deviation, deflection", Fig2Config,
                fig2_grid, fig2_compute, fig2_plot, FIG2_CLAIMS,
                presets={"smoke": {"datasets": ("synthetic-mnist", "synthetic-cifar10"), "widths": (50, 200),
                                   "networks": 3, "pairs_per_net": 3},
                         "paper": {"widths": (1000, 2000, 3000, 4000, 5000), "networks": 100}},
                runtime={"smoke": "5 s", "default": "21 s CPU (no CIFAR-100)", "paper": "not run yet"}))
