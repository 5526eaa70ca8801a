"""Fig 2: test error vs depth, unregularized GD against the path-norm regularized model (Adam)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ... import plotting
from ...claims import Claim, above, below, between, need
from ...config import setting
from ...registry import Figure, register
from .common import PAPER, Settings, _final, depth_buckets, sweep


@dataclass(frozen=True)
class Fig2Config(Settings):
    depths: tuple[int, ...] = setting((2, 5, 10, 20, 50, 100), stated=False, size=True,
                                      help="L (L - 1 residual blocks)")
    lam: float = setting(0.005, stated=True, help="path-norm penalty lambda in J = R + lambda/sqrt(n) ||Theta||_P")
    adam_lr: float = setting(1e-3, stated=False, help="Adam step size, betas (0.9, 0.999)")


def fig2_grid(cfg: Fig2Config) -> list[dict]:
    return [{"depths": b} for b in depth_buckets(cfg.depths)]


def fig2_compute(cfg: Fig2Config, point: dict, ctx) -> pd.DataFrame:
    runs = [{"depth": L, "kind": "unregularized", "model": "nn", "lr_c": c, "seed": s}
            for L in point["depths"] for c in cfg.lr_grid for s in range(cfg.seeds)]
    runs += [{"depth": L, "kind": "regularized", "model": "nn", "lr_c": math.nan, "seed": s}
             for L in point["depths"] for s in range(cfg.seeds)]
    df = sweep(cfg, point["depths"], runs, [0, cfg.steps], ctx)
    return df[df.step == cfg.steps]


def fig2_plot(df: pd.DataFrame, cfg: Fig2Config):
    fig, (ax, axn) = plotting.subplots(1, 2, figsize=(10, 3.8))
    for kind, color in (("unregularized", "C0"), ("regularized", "C2")):
        sel = df[(df.kind == kind) & df.chosen & ~df.diverged]
        te = sel[sel.quantity == "test_error"].groupby("depth")["value"].agg(["median", "min", "max"])
        ax.errorbar(te.index, te["median"], yerr=[te["median"] - te["min"], te["max"] - te["median"]],
                    marker="o", capsize=3, color=color, label=kind)
    d = int(df["d"].iloc[0])
    ax.axhline(1 / (4 * d), color="grey", ls=":", lw=1, label=f"zero predictor 1/(4d), d = {d}")
    ax.set(xscale="log", yscale="log", xlabel="depth L", ylabel="test error (median, min-max over seeds)")
    ax.legend(fontsize=8)
    for kind, color in (("unregularized", "C0"), ("regularized", "C2")):
        sel = df[(df.kind == kind) & df.chosen & ~df.diverged & (df.quantity == "path_norm")]
        pn = sel.groupby("depth")["value"].agg(["median", "min", "max"])
        axn.errorbar(pn.index, pn["median"], yerr=[pn["median"] - pn["min"], pn["max"] - pn["median"]], marker="o",
                     capsize=3, color=color, label=kind)
    axn.axhline(1.0, color="grey", ls=":", lw=1, label=r"$\|f^*\|_P = 1$")
    axn.set(xscale="log", yscale="log", xlabel="depth L", ylabel=r"path norm $\|\Theta\|_P$",
            title="norm of the final solution")
    axn.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _medians(df, quantity: str, kind: str) -> pd.Series:
    """Median over seeds of the final value, per depth."""
    sel = _final(df, quantity, kind=kind)
    need(len(sel) > 0, f"no {kind} {quantity} rows")
    return sel.groupby("depth")["value"].median().sort_index()


def _reg_beats_unreg(df):
    reg, unreg = _medians(df, "test_error", "regularized"), _medians(df, "test_error", "unregularized")
    deep = [L for L in reg.index if L >= 50 and L in unreg.index]
    need(len(deep) > 0, "needs depths >= 50")
    return float(min(np.log10(unreg[L] / reg[L]) for L in deep))


def _unreg_slope(df):
    unreg = _medians(df, "test_error", "unregularized")
    unreg = unreg[unreg.index >= 20]
    need(len(unreg) >= 2, "needs >= 2 depths >= 20")
    return float(np.polyfit(np.log10(unreg.index.to_numpy(float)), np.log10(unreg.to_numpy()), 1)[0])


def _path_norm_worst(df):
    med = _medians(df, "path_norm", "regularized")
    return float(med.iloc[int(np.argmax(np.abs(np.log(med.to_numpy()))))])


UNIT = dict(unit=("run",))
FIG2_CLAIMS = (
    Claim("F2-1-regularized-small", "Regularized test error is consistently very small",
          lambda df: float(_medians(df, "test_error", "regularized").max()),
          lambda df: below(0.01 / (4 * int(df["d"].iloc[0])), "(= 0.01 x 1/(4d); worst depth, median over seeds)"),
          **UNIT),
    Claim("F2-2-regularized-wins", "Regularized beats unregularized by 10x for deep nets", _reg_beats_unreg,
          above(1, "(log10 unregularized / regularized test error, worst depth >= 50)"), **UNIT),
    Claim("F2-3-unregularized-settles", "Unregularized test error settles to a finite value with depth",
          _unreg_slope, between(-0.5, 0.5, "(log-log slope of the median unregularized test error over L >= 20)"),
          info=lambda df: "medians " + ", ".join(f"L={L}: {v:.3g}" for L, v in
                                                 _medians(df, "test_error", "unregularized").items()), **UNIT),
    Claim("F2-4-path-norm", "Regularized path norm is close to that of f* (= 1)", _path_norm_worst,
          between(0.8, 1.3, "(median over seeds at the depth farthest from 1; ||f*||_P = 1)"), **UNIT),
)

register(Figure(PAPER, "fig2", "Test error vs depth: unregularized GD vs path-norm regularized (Adam)", Fig2Config,
                fig2_grid, fig2_compute, fig2_plot, FIG2_CLAIMS,
                presets={"smoke": {"depths": (2, 5, 10), "steps": 300, "seeds": 3, "lr_grid": (5.0,),
                                   "n_test": 500},
                         "paper": {"seeds": 10, "lr_grid": (0.625, 1.25, 2.5, 5.0, 10.0, 20.0)}},
                runtime={"smoke": "10 s", "default": "223 s CPU", "paper": "not run yet"}))
