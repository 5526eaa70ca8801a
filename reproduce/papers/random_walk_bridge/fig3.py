"""Figure 3: 2-layer MLPs on MNIST during SGD: nodes, GGD and deflection of the normalized output at checkpoints."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ... import plotting
from ...claims import Claim, above, below, need, slope
from ...config import setting
from ...registry import Figure, register
from . import breakpoints as bp
from . import path_stats as ps
from .common import PAPER, DataSettings, accuracy, checkpoints, data, mlp, pairs, pooled_by, sgd_checkpoints, stats_from


@dataclass(frozen=True)
class TrainSettings(DataSettings):
    dataset: str = setting("mnist", stated=True, size=True, choices=("mnist", "synthetic-mnist"),
                           help="synthetic-mnist: a labelled stand-in (smoke)")
    steps: int = setting(10000, stated=False, size=True,
                         help="SGD steps; 10000 x lr / (1 - momentum) = 1000 >= the authors' summed step size ~940 "
                              "(2500 epochs x 391 steps, lr warmed up 1e-5 -> 1e-3 over 200; OFFICIAL-CODE-000-001.md)")
    lr: float = setting(0.01, stated=False, help="SGD learning rate")
    momentum: float = setting(0.9, stated=False, help="the paper says momentum and vanilla SGD agree")
    batch: int = setting(128, stated=False, help="minibatch size")
    n_checkpoints: int = setting(10, stated=False, size=True, low=0, help="log-spaced checkpoints (plus 0)")
    train_dtype: str = setting("float32", stated=False, choices=("float32", "float64"),
                               help="training precision; every path measurement is float64")


@dataclass(frozen=True)
class Fig3Config(TrainSettings):
    widths: tuple[int, ...] = setting((100, 500, 2000), stated=False, size=True, help="m, one curve each")
    networks: int = setting(1, stated=False, size=True, help="networks per m (paper profile 5)")
    n_pairs: int = setting(100, stated=False, size=True, help="fixed training pairs, reused at every checkpoint")
    norm: str = setting("unit", stated=False, choices=("unit", "pair"),
                        help="unit: f/||f|| pointwise (SPEC-000-002.md D12); pair: f / mean(||f(X0)||, ||f(X1)||)")


def path_rows(w1: torch.Tensor, w2: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor, norm: str) -> dict:
    """Raw and normalized pair statistics of f = W2 relu(W1 x) on the segment x0 -> x1 (closed form, float64)."""
    t, R = bp.two_layer(w1, w2, x0, x1)
    f = lambda s: torch.relu((torch.outer(s, x1 - x0) + x0) @ w1.T) @ w2.T  # noqa: E731  f(X(s)): (S, c)
    edges = torch.cat([t.new_zeros(1), t, t.new_ones(1)])
    return stats_from(t, R, f((edges[1:] + edges[:-1]) / 2), f(t), f(edges[[0, -1]]), norm)


def fig3_grid(cfg: Fig3Config) -> list[dict]:
    return [{"m": m, "net": n} for m in sorted(cfg.widths) for n in range(cfg.networks)]


def fig3_compute(cfg: Fig3Config, point: dict, ctx) -> pd.DataFrame:
    (x, y), (xp, yp) = data(cfg.dataset, cfg, ctx.data_root, ctx.seed_for("data", per_point=False))
    idx = pairs(yp, cfg.n_pairs, cfg.pair_type, ctx.rng("pairs", device=torch.device("cpu"), per_point=False))
    x, y = x.flatten(1).to(ctx.device, ctx.dtype(cfg.train_dtype)), y.to(ctx.device)
    xp = xp.flatten(1).to(ctx.device, torch.float64)
    g = ctx.rng("init-and-sgd", device=torch.device("cpu"))
    net = mlp(x.shape[1], point["m"], 10, generator=g, dtype=x.dtype).to(ctx.device)
    rows = []

    def measure(step, net):
        w1, w2 = net[1].weight.double(), net[3].weight.double()
        acc = accuracy(net, x, y)
        for p, (i, j) in enumerate(idx.tolist()):
            rows.append({"step": step, "pair": p, "train_acc": acc, **path_rows(w1, w2, xp[i], xp[j], cfg.norm)})
    sgd_checkpoints(net, x, y, steps=cfg.steps, lr=cfg.lr, momentum=cfg.momentum, batch=cfg.batch,
                    at=checkpoints(cfg.steps, cfg.n_checkpoints), g=g, on_checkpoint=measure, tick=ctx.tick)
    return pd.DataFrame(rows).assign(m=point["m"], net=point["net"], dataset=cfg.dataset)


def summary(df: pd.DataFrame, prefix: str = "norm_") -> pd.DataFrame:
    """Pooled statistics per (m, step): of the normalized output (prefix 'norm_', the figure) or raw ('')."""
    s = pooled_by(df, ["m", "step"], prefix=prefix)
    return s.merge(df.groupby(["m", "step"])["train_acc"].mean().reset_index(), on=["m", "step"])


def ratio_by_pair(df: pd.DataFrame) -> pd.DataFrame:
    """Per (m, step, pair): deflection / GGD at k = K/2 of the raw output, each from that pair's statistics alone."""
    rows = [{"m": m, "step": st, "pair": p, "ratio": (lambda q: q["deflection_mid"] / q["ggd_mid"])(ps.pooled(g))}
            for (m, st, p), g in df.groupby(["m", "step", "pair"])]
    return pd.DataFrame(rows)


def fig3_plot(df: pd.DataFrame, cfg: Fig3Config):
    s = summary(df)
    r = ratio_by_pair(df)
    fig, axes = plotting.subplots(1, 5, figsize=(21, 3.8))
    for i, (m, g) in enumerate(s.groupby("m")):
        x = np.maximum(g["step"], 0.5)
        for ax, col in zip(axes, ("K_mean", "ggd_mid", "deflection_mid", "train_acc")):
            ax.plot(x, g[col], "o-", ms=3, color=f"C{i}", label=f"m = {m}")
        q = r[r.m == m].groupby("step")["ratio"].quantile([0.25, 0.5, 0.75]).unstack()
        xq = np.maximum(q.index.to_numpy(float), 0.5)
        axes[4].fill_between(xq, q[0.25], q[0.75], color=f"C{i}", alpha=0.2, lw=0)
        axes[4].plot(xq, q[0.5], "o-", ms=3, color=f"C{i}", label=f"m = {m}")
    axes[4].axhline(1, color="k", lw=0.8, ls=":")
    name = df["dataset"].iloc[0]
    titles = ("(a) mean number of nodes", "(b) GGD at k = K/2 (normalized)", "(c) deflection at k = K/2 (normalized)",
              "training accuracy", "deflection / GGD per pair (raw output;\nmedian, quartiles over pairs; 1 = random)")
    for ax, title in zip(axes, titles):
        ax.set(xscale="log", xlabel="SGD step (0 drawn at 0.5)", title=title)
        ax.legend(fontsize=7)
    axes[1].set_yscale("log"), axes[2].set_yscale("log"), axes[4].set_yscale("log")
    fig.suptitle(f"2-layer MLPs on {name}" + ("" if name == "mnist" else " (synthetic stand-in)"), fontsize=10)
    fig.tight_layout()
    return fig


def _by_m(t):
    """(m, positions of its groups in step order) for claims.Totals grouped by (m, step)."""
    return [(m, g.index.to_numpy()) for m, g in t.groups.groupby("m", sort=True)]


def _settles(t):
    s, steps, worst = ps.pooled_for_claims(t, "norm_"), t.groups["step"].to_numpy(float), 0.0
    for _, i in _by_m(t):
        k0, kt = s["K_mean"][:, i[0]], s["K_mean"][:, i[-1]]
        half = s["K_mean"][:, i[int(np.argmin(np.abs(steps[i] - steps[i].max() / 2)))]]
        worst = np.maximum(worst, np.maximum(np.abs(np.log(kt / k0)) / math.log(1.5), np.abs(kt - half) / kt / 0.1))
    return worst


def _settles_info(df):
    parts = []
    for m, g in summary(df).groupby("m"):
        g = g.sort_values("step")
        parts.append(f"m={m}: K(T)/K(0) {g['K_mean'].iloc[-1] / g['K_mean'].iloc[0]:.2f}")
    return "; ".join(parts)


def _small(t):
    s = ps.pooled_for_claims(t, "norm_")
    return np.fmax.reduce(np.fmax(s["ggd_mid"], s["deflection_mid"]), axis=1)


def _close(t):
    s, steps = ps.pooled_for_claims(t), t.groups["step"].to_numpy()
    last = steps == steps.max()
    need(last.any(), "no final checkpoint")
    return np.fmax.reduce(np.abs(np.log(s["deflection_mid"][:, last] / s["ggd_mid"][:, last])), axis=1)


def _closing(t):
    s, steps = ps.pooled_for_claims(t), t.groups["step"].to_numpy(float)
    late = steps >= steps.max() / 100
    need(late.sum() >= 3, "needs 3 checkpoints in the last two decades of steps")
    gap = np.abs(np.log(s["deflection_mid"] / s["ggd_mid"]))
    slopes = []
    for _, i in _by_m(t):
        i = i[late[i]]
        slopes.append(slope(np.log10(steps[i]), gap[:, i]))
    return np.fmax.reduce(np.stack(slopes, axis=1), axis=1)


def _learns(df):
    s = summary(df)
    return float(s.sort_values("step").groupby("m")["train_acc"].agg(lambda a: a.iloc[-1] - a.iloc[0]).min())


_C = "SPEC-000-002.md §1.4 000-fig3 [C]"
PAIR = dict(unit=("pair",), cells=("m",))   # pairs drawn independently (intervals conditional on the network); per m
_NORM_SUMS = dict(sums=ps.sums_for_claims(("m", "step"), "norm_"))   # the measure reads pooled sums (claims.Sums)
FIG3_CLAIMS = (
    Claim("F3-a-settles", "Nodes converge fast and do not change significantly", _settles,
          below(1, "(max of |log K(T)/K(0)| / log 1.5 and |K(T) - K(T/2)| / K(T) / 0.1)"), info=_settles_info,
          source=f"{_C} (a): K(T)/K(0) in [0.67, 1.5] and |K(T) - K(T/2)|/K(T) <= 0.1", **PAIR, **_NORM_SUMS),
    Claim("F3-bc-hard", "GGD and deflection stay < 1 during training", _small,
          below(1, "(largest GGD or deflection of the normalized output over checkpoints)"),
          source=f"{_C} (b, c): hard bound < 1", **PAIR, **_NORM_SUMS),
    Claim("F3-bc-soft", "GGD and deflection stay << 1 (an order of magnitude below 1) during training", _small,
          below(0.1, "(largest GGD or deflection of the normalized output over checkpoints)"),
          source=f"{_C} (b, c): soft bound < 0.1", **PAIR, **_NORM_SUMS),
    Claim("F3-close", "After training, deflection and GGD are close", _close,
          below(math.log(1.5), "(= log 1.5; |log(deflection / GGD)| of the raw, piecewise-linear output at the final "
                               "checkpoint)"), source=f"{_C}: |log(defl/GGD)| <= log 1.5 at the final checkpoint",
          **PAIR, sums=ps.sums_for_claims(("m", "step"))),
    Claim("F3-closing", "Deflection and GGD draw together as training goes on", _closing,
          below(0, "(slope of |log(deflection / GGD)| of the raw output against log10 step over the last two decades "
                   "of steps, worst m)"),
          source=f"{_C}: after training deflection and GGD are close; issue 36: judged on the trend of the ratio "
                 "with training as well as its end (a gap that is closing has a negative slope)",
          **PAIR, sums=ps.sums_for_claims(("m", "step"))),
    Claim("F3-learns", "Training accuracy increases (sanity)", _learns,
          above(0.01, "(final minus initial training accuracy, worst m)"), exact=True, kind="check",
          affects=("F3-a-settles", "F3-close"),
          source=f"{_C}: 'training accuracy increases (sanity)'; 0.01 chosen: one point of accuracy"),
)

register(Figure(PAPER, "fig3", "2-layer MLPs during SGD on MNIST: nodes, GGD, deflection", Fig3Config,
                fig3_grid, fig3_compute, fig3_plot, FIG3_CLAIMS,
                presets={"smoke": {"dataset": "synthetic-mnist", "widths": (50, 200), "steps": 60, "n_pairs": 4,
                                   "n_checkpoints": 3},
                         "paper": {"widths": (1000, 3000, 5000, 7000, 9000), "networks": 5}},
                runtime={"smoke": "5 s", "default": "362 s CPU", "paper": "not run yet"}))
