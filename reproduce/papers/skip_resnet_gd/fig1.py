"""Fig 1: GD time history of the m = 1 ResNet (nn) against its compositional random-feature twin (rf)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ... import plotting
from ...claims import Claim, above, below, need
from ...config import setting
from ...registry import Figure, register
from .common import PAPER, Settings, _final, depth_buckets, eval_steps, sweep


@dataclass(frozen=True)
class Fig1Config(Settings):
    depths: tuple[int, ...] = setting((2, 10, 100), stated=True, size=True, help="L (L - 1 residual blocks)")


def fig1_grid(cfg: Fig1Config) -> list[dict]:
    return [{"depths": b} for b in depth_buckets(cfg.depths)]


def fig1_compute(cfg: Fig1Config, point: dict, ctx) -> pd.DataFrame:
    runs = [{"depth": L, "kind": "unregularized", "model": mdl, "lr_c": c, "seed": s}
            for L in point["depths"] for mdl in ("nn", "rf") for c in cfg.lr_grid for s in range(cfg.seeds)]
    return sweep(cfg, point["depths"], runs, eval_steps(cfg.steps, cfg.n_evals), ctx)


def fig1_plot(df: pd.DataFrame, cfg: Fig1Config):
    depths = sorted(df["depth"].unique())
    fig, axes = plotting.subplots(1, len(depths), figsize=(4.2 * len(depths), 3.8), squeeze=False)
    for ax, L in zip(axes[0], depths):
        sel = df[(df.depth == L) & df.chosen & ~df.diverged]
        for mdl, color in (("nn", "C0"), ("rf", "C3")):
            for q, style in (("train_loss", "-"), ("test_error", "--")):
                m = sel[(sel.model == mdl) & (sel.quantity == q)].groupby("step")["value"].median()
                ax.plot(np.maximum(m.index, 0.8), m.to_numpy(), style, color=color,
                        label=f"{mdl} {q.replace('_', ' ')}")
        lr = sel["lr"].iloc[0] if len(sel) else math.nan
        ax.set(xscale="log", yscale="log", xlabel="GD iteration", title=f"depth L = {L} (lr {lr:.3g})")
    axes[0][0].set_ylabel("loss (median over seeds)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _deep(df):
    """reduce: the depths claim (1) names (L >= 10)."""
    need((df["depth"] >= 10).any(), "needs a depth >= 10")
    return df[df["depth"] >= 10]


def _converges(df):
    """Mean over seeds of log10 R(T)/R(0) of the nn model (one depth)."""
    L = int(df["depth"].max())
    sel = df[df.chosen & ~df.diverged & (df.quantity == "train_loss") & (df.model == "nn") & (df.depth == L)]
    first = sel[sel.step == 0].groupby("run")["value"].first()
    last = sel[sel.step == sel.step.max()].groupby("run")["value"].first()
    return float(np.log10(last / first).mean())


def _curves(df, L):
    sel = df[df.chosen & ~df.diverged & (df.quantity == "train_loss") & (df.depth == L)]
    need(len(sel) > 0, f"needs depth {L}")
    return {m: sel[sel.model == m].groupby("step")["value"].median() for m in ("nn", "rf")}


def _close_deep(df):
    L = int(df["depth"].max())
    need(L >= 50, "needs a deep net (L >= 50)")
    c = _curves(df, L)
    floor = _FLOOR * float(c["nn"].iloc[0])   # below it both runs have converged by claim (1)'s criterion
    gap = float((np.log10(c["nn"].clip(lower=floor)) - np.log10(c["rf"].clip(lower=floor))).abs().max())
    te = {m: _final(df, "test_error", depth=L, model=m)["value"].median() for m in ("nn", "rf")}
    return max(gap / 0.3, abs(te["nn"] - te["rf"]) / te["nn"] / 0.1)


def _final_gaps(df) -> list[float]:
    depths = sorted(df["depth"].unique())
    need(len(depths) >= 2, "needs >= 2 depths")
    return [abs(math.log10(c["rf"].iloc[-1] / c["nn"].iloc[-1])) for c in (_curves(df, L) for L in depths)]


def _shallow_gap(df):
    need(2 in set(df["depth"]), "needs depth 2")
    c = _curves(df, 2)
    return float(np.log10(c["rf"].iloc[-1] / c["nn"].iloc[-1]))


_FLOOR = 1e-6   # claim (1)'s convergence: R(T) <= 1e-6 R(0)
_C = "SPEC-000-002.md §3.3 002-fig1 [C]"
UNIT = dict(unit=("run",))
FIG1_CLAIMS = (
    Claim("F1-1-converges", "GD converges to a global minimum: nn training loss falls by 1e6 (L = 10 and 100)",
          _converges, below(-6, "(mean over seeds of log10 R(T)/R(0), nn)"), cells=("depth",), reduce=_deep,
          source=f"{_C} (1): for L in {{10, 100}}, nn R(T)/R(0) <= 1e-6", **UNIT),
    Claim("F1-2-deep-close", "Deep net: nn and rf training curves and test errors coincide", _close_deep,
          below(1, "(max of: largest |log10 R_nn/R_rf| along training, both clipped at 1e-6 R(0), / 0.3 decades, "
                   "test-error rel. diff / 0.1; medians over seeds)"),
          source=f"{_C} (2): L = 100, max_t |log10 R_nn - log10 R_rf| <= 0.3 and test errors within 10%; the 1e-6 "
                 "R(0) floor is claim (1)'s convergence criterion (below it both curves are converged and flat)",
          **UNIT),
    Claim("F1-3-gap-shrinks", "The nn-rf gap in final training loss shrinks with depth",
          lambda df: float(np.diff(_final_gaps(df)).max()),
          below(0, "(largest change of |log10 R_rf(T)/R_nn(T)| from one depth to the next)"),
          info=lambda df: "gaps " + ", ".join(f"{g:.2f}" for g in _final_gaps(df)),
          source=f"{_C} (3): |log10(R_rf(T)/R_nn(T))| strictly decreasing over L = 2, 10, 100", **UNIT),
    Claim("F1-4-shallow-differs", "Depth 2: the random-feature model cannot fit (R_rf >= 10 R_nn)", _shallow_gap,
          above(1, "(log10 of median R_rf(T) / median R_nn(T) at L = 2)"),
          source=f"{_C} (4): L = 2, R_rf(T) >= 10 R_nn(T) (median over seeds)", **UNIT),
)

register(Figure(PAPER, "fig1", "GD time history: ResNet (nn) vs compositional random features (rf)", Fig1Config,
                fig1_grid, fig1_compute, fig1_plot, FIG1_CLAIMS,
                presets={"smoke": {"depths": (2, 5, 10), "steps": 300, "seeds": 3, "lr_grid": (5.0,),
                                   "n_test": 500, "n_evals": 10},
                         "paper": {"seeds": 10, "lr_grid": (0.625, 1.25, 2.5, 5.0, 10.0, 20.0)}},
                runtime={"smoke": "10 s", "default": "139 s CPU", "paper": "not run yet"}))
