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


def _median(quantity: str, kind: str):
    """Measure on one depth: the median over seeds of the final value."""
    return lambda df: float(_medians(df, quantity, kind).iloc[-1])


def _ratio_unreg_reg(df):
    """log10 of median unregularized / median regularized final test error (one depth)."""
    return float(np.log10(_median("test_error", "unregularized")(df) / _median("test_error", "regularized")(df)))


def _last(df):
    """reduce: the rows `_final` reads (chosen, not diverged, at the last step; every run has rows there), taken
    once instead of in every bootstrap copy."""
    return df[df.chosen & ~df.diverged & (df.step == df.step.max())]


def _at_least(L: int):
    """reduce: `_last`'s rows at depths >= L."""
    def pick(df):
        need((df["depth"] >= L).any(), f"needs depths >= {L}")
        return _last(df[df["depth"] >= L])
    return pick


def _two_largest(df) -> tuple[float, float]:
    unreg = _medians(df, "test_error", "unregularized")
    need(len(unreg) >= 2, "needs >= 2 depths")
    return float(unreg.iloc[-2]), float(unreg.iloc[-1])


def _settles(df):
    a, b = _two_largest(df)
    return abs(b - a) / a


_C = "SPEC-000-002.md §3.3 002-fig2 [C]"
UNIT = dict(unit=("run",))
_LAST = dict(reduce=_last)
FIG2_CLAIMS = (
    Claim("F2-1-regularized-small", "Regularized test error is consistently very small", _median("test_error",
                                                                                                 "regularized"),
          lambda df: below(0.01 / (4 * int(df["d"].iloc[0])), "(= 0.01 x 1/(4d); median over seeds)"),
          cells=("depth",), source=f"{_C}: regularized test error <= 0.01 x 1/(4d) at every depth", **UNIT, **_LAST),
    Claim("F2-2-regularized-wins", "Regularized beats unregularized by 10x for deep nets", _ratio_unreg_reg,
          above(1, "(log10 unregularized / regularized median test error)"), cells=("depth",),
          reduce=_at_least(50), source=f"{_C}: regularized < unregularized by a factor >= 10 at every depth >= 50",
          **UNIT),
    Claim("F2-3-unregularized-settles", "Unregularized test error settles to a finite value with depth",
          _settles, below(0.5, "(relative difference of the median unregularized test error at the two largest "
                               "depths)"),
          info=lambda df: "medians " + ", ".join(f"L={L}: {v:.3g}" for L, v in
                                                 _medians(df, "test_error", "unregularized").items()),
          source=f"{_C}: relative difference between the two largest depths <= 50%", **UNIT, **_LAST),
    Claim("F2-3b-unregularized-finite", "The unregularized test error it settles to is finite (not vanishing)",
          lambda df: min(_two_largest(df)), above(1e-4, "(median unregularized test error, two largest depths)"),
          source=f"{_C}: value >= 1e-4 there", **UNIT, **_LAST),
    Claim("F2-4-path-norm", "Regularized path norm is close to that of f* (= 1)", _median("path_norm", "regularized"),
          between(0.8, 1.3, "(median over seeds; ||f*||_P = 1)"), cells=("depth",),
          source=f"{_C}: regularized path norm expected about ||f*||_P = 1, within [0.8, 1.3]", **UNIT, **_LAST),
)

register(Figure(PAPER, "fig2", "Test error vs depth: unregularized GD vs path-norm regularized (Adam)", Fig2Config,
                fig2_grid, fig2_compute, fig2_plot, FIG2_CLAIMS,
                presets={"smoke": {"depths": (2, 5, 10), "steps": 300, "seeds": 3, "lr_grid": (5.0,),
                                   "n_test": 500},
                         "paper": {"seeds": 10, "lr_grid": (0.625, 1.25, 2.5, 5.0, 10.0, 20.0)}},
                runtime={"smoke": "10 s", "default": "223 s CPU", "paper": "not run yet"}))
