"""Fig 2: test error vs depth, unregularized GD against the path-norm regularized model (Adam)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ... import plotting
from ...claims import Claim, need
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


def _reg_small(df):
    reg = _final(df, "test_error", kind="regularized")
    need(len(reg) > 0, "no regularized rows")
    d = int(df["d"].iloc[0])
    worst = float(reg.groupby("depth")["value"].median().max())
    bound = 0.01 / (4 * d)
    return worst, f"<= 0.01 x 1/(4d) = {bound:.3g} at every depth (median over seeds)", worst <= bound


def _reg_beats_unreg(df):
    reg = _final(df, "test_error", kind="regularized").groupby("depth")["value"].median()
    unreg = _final(df, "test_error", kind="unregularized").groupby("depth")["value"].median()
    deep = [L for L in reg.index if L >= 50 and L in unreg.index]
    need(len(deep) > 0, "needs depths >= 50")
    ratio = float(min(unreg[L] / reg[L] for L in deep))
    return ratio, ">= 10 (unregularized / regularized test error, every depth >= 50)", ratio >= 10


def _unreg_settles(df):
    unreg = _final(df, "test_error", kind="unregularized").groupby("depth")["value"].median().sort_index()
    need(len(unreg) >= 2, "needs >= 2 depths")
    a, b = unreg.iloc[-2], unreg.iloc[-1]
    rel = abs(b - a) / a
    return float(rel), f"<= 0.5 between the two largest depths, and value >= 1e-4 (value {b:.3g})", \
        rel <= 0.5 and b >= 1e-4


def _path_norm(df):
    pn = _final(df, "path_norm", kind="regularized")
    need(len(pn) > 0, "no path-norm rows")
    med = pn.groupby("depth")["value"].median()
    lo, hi = float(med.min()), float(med.max())
    return hi, f"in [0.8, 1.3] at every depth (range {lo:.3g}-{hi:.3g}; ||f*||_P = 1)", 0.8 <= lo and hi <= 1.3


FIG2_CLAIMS = (
    Claim("F2-1-regularized-small", "Regularized test error is consistently very small", _reg_small),
    Claim("F2-2-regularized-wins", "Regularized beats unregularized by 10x for deep nets", _reg_beats_unreg),
    Claim("F2-3-unregularized-settles", "Unregularized test error settles to a finite value with depth",
          _unreg_settles),
    Claim("F2-4-path-norm", "Regularized path norm is close to that of f* (= 1)", _path_norm),
)

register(Figure(PAPER, "fig2", "Test error vs depth: unregularized GD vs path-norm regularized (Adam)", Fig2Config,
                fig2_grid, fig2_compute, fig2_plot, FIG2_CLAIMS,
                presets={"smoke": {"depths": (2, 5, 10), "steps": 300, "seeds": 1, "lr_grid": (5.0,),
                                   "n_test": 500},
                         "paper": {"seeds": 10, "lr_grid": (0.625, 1.25, 2.5, 5.0, 10.0, 20.0)}},
                runtime={"smoke": "10 s", "default": "223 s CPU", "paper": "not run yet"}))
