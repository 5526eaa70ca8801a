"""Fig 2: tightness of the Lemma 2 / Lemma 5 width bounds against the measured distortion."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ... import plotting
from ...claims import Claim, Sums, above, below, need
from ...config import setting
from ...core.init import gaussian_weight
from ...registry import Figure, register
from .common import INIT_RULES, PAPER, NetSettings, _ratios, net_bytes, with_nets


@dataclass(frozen=True)
class Fig2Config(NetSettings):
    widths: tuple[int, ...] = setting(tuple(range(500, 4001, 500)), stated=True, size=True,
                                      help="widths of the empirical points (the paper: 500 to 4000; step ours)")
    n_samples: int = setting(2000, stated=True, size=True)
    delta: float = setting(0.05, stated=True, help="failure probability of the bound")
    theory_step: int = setting(50, stated=False, size=True, help="width step of the theory curve")
    setup: str = setting("two-layer", stated=False, choices=("two-layer", "direct-lemma"),
                         help="two-layer: eps_fwd at layer 1, eps_bwd for W_1 of a 2-layer net; "
                              "direct-lemma: ReLU(Ru) and (Ru)*z sampled as in Lemmas 2/5")
    theory: str = setting("lemma", stated=False, choices=("lemma", "code"),
                          help="lemma: invert 2 exp(-m g(eps)) = delta; code: authors' (1+4/m ln(4NL/delta))^L - 1")
    code_depth: int = setting(10, stated=False, help="L of the authors' code curve (theory=code only)")


def g_chernoff(eps: float) -> float:
    """Exponent of Lemmas 2/5: g(eps) = eps/4 + log(2 / (1 + sqrt(1 + eps)))."""
    return eps / 4 + math.log(2 / (1 + math.sqrt(1 + eps)))


def theory_eps(m: int, delta: float) -> float:
    """Squared-norm distortion eps solving 2 exp(-m g(eps)) = delta (NaN if no eps < 1 does)."""
    target = math.log(2 / delta) / m
    lo, hi = 1e-12, 1 - 1e-12
    if g_chernoff(hi) < target:
        return math.nan
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if g_chernoff(mid) < target else (lo, mid)
    return (lo + hi) / 2


def code_theory_eps(m: int, delta: float, n: int, depth: int) -> float:
    """The authors' bound_comparison.py curve: (1 + 4/m ln(4 N L / delta))^L - 1."""
    return (1 + 4 / m * math.log(4 * n * depth / delta)) ** depth - 1


def fig2_grid(cfg: Fig2Config) -> list[dict]:
    return with_nets([{"width": m} for m in cfg.widths], cfg) + [{"theory": cfg.theory}]


def _fig2_theory(cfg: Fig2Config) -> pd.DataFrame:
    lo, hi = min(cfg.widths), max(cfg.widths)
    grid = sorted(set(range(lo, hi + 1, max(cfg.theory_step, 1))) | set(cfg.widths))
    rows = []
    for m in grid:
        if cfg.theory == "lemma":
            sq = theory_eps(m, cfg.delta)
            values = {"squared": sq, "unsquared": 1 - math.sqrt(1 - sq)}
        else:
            c = code_theory_eps(m, cfg.delta, cfg.n_samples, cfg.code_depth)
            values = {"squared": c, "unsquared": c}
        rows += [{"series": "theory", "direction": d, "convention": k, "width": m, "mean": v, "std": 0.0}
                 for d in ("forward", "backward") for k, v in values.items()]
    return pd.DataFrame(rows)


def fig2_compute(cfg: Fig2Config, point: dict, ctx) -> pd.DataFrame:
    if "theory" in point:
        return _fig2_theory(cfg)
    m, n = point["width"], cfg.n_samples
    if cfg.setup == "two-layer":
        fwd, bwd = _ratios(cfg, [cfg.input_dim, m, m], INIT_RULES[("he", cfg.he_mode)], n, ctx)
        ratios = {"forward": fwd[:, 0], "backward": bwd[:, 0]}  # layer 1: ||dl/da_1|| / ||delta||
    else:
        kw = dict(generator=ctx.rng("two-layer"), dtype=ctx.dtype(cfg.dtype), device=ctx.device)
        u = torch.randn(n, cfg.input_dim, **kw)
        r1, r2 = (gaussian_weight("he_fan_out", m, cfg.input_dim, **kw) for _ in range(2))
        z = torch.rand(n, m, **kw) < 0.5
        ratios = {"forward": (torch.relu(u @ r1.T).norm(dim=1) / u.norm(dim=1)).cpu().numpy(),
                  "backward": (((u @ r2.T) * z).norm(dim=1) / u.norm(dim=1)).cpu().numpy()}
    rows = []
    for d, r in ratios.items():
        for k, eps in (("squared", np.abs(1 - r**2)), ("unsquared", np.abs(1 - r))):
            rows.append({"series": "empirical", "direction": d, "convention": k, "width": m, "net": point["net"],
                         "mean": float(eps.mean()), "std": float(eps.std())})
    return pd.DataFrame(rows)


def fig2_plot(df: pd.DataFrame, cfg: Fig2Config):
    fig, axes = plotting.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, d, lemma in ((axes[0], "forward", "Lemma 2"), (axes[1], "backward", "Lemma 5")):
        for k, color in (("squared", "C0"), ("unsquared", "C1")):
            th = df[(df.series == "theory") & (df.direction == d) & (df.convention == k)].sort_values("width")
            em = df[(df.series == "empirical") & (df.direction == d) & (df.convention == k)].sort_values("width")
            ax.plot(th["width"], th["mean"], color=color, label=f"theoretical ({k})")
            ax.plot(em["width"], em["mean"], "o", color=color, label=f"empirical mean ({k})")
        ax.set(xlabel="width m", ylabel=r"distortion $\epsilon$", title=f"{d} ({lemma}), $\\delta$={cfg.delta:g}")
        ax.legend(fontsize=7)
    fig.suptitle("Tightness of the width bound")
    return fig


def _fig2_pairs(t):
    """From claims.Totals of `_MEANS`: the (direction, convention, width) keys (P rows) where an empirical mean (over
    networks) and a theory value both exist, and those two, (B, P) each."""
    g, mean = t.groups.reset_index(drop=True), t["mean"] / t["n"]
    keys = ["direction", "convention", "width"]
    j = g[g.series == "empirical"].reset_index().merge(g[g.series == "theory"].reset_index(), on=keys,
                                                       suffixes=("", "_th"))
    em, th = mean[:, j["index"].to_numpy()], mean[:, j["index_th"].to_numpy()]
    need(len(j) > 0 and not np.isnan(th).any(), "no empirical widths with a finite theory value")
    return j[keys], em, th


def _gap_shrinks(t):
    keys, em, th = _fig2_pairs(t)
    need(keys["width"].nunique() >= 2, "needs >= 2 widths")
    gap = th - em
    return np.max([np.diff(gap[:, s.sort_values("width").index.to_numpy()], axis=1).max(axis=1)
                   for _, s in keys.groupby(["direction", "convention"])], axis=0)


def _fwd_bwd(t):
    g, mean = t.groups.reset_index(drop=True), t["mean"] / t["n"]
    em = g[g.series == "empirical"].reset_index()
    j = em[em.direction == "forward"].merge(em[em.direction == "backward"], on=["convention", "width"],
                                            suffixes=("_f", "_b"))
    need(len(j) > 0, "needs both directions")
    f, b = mean[:, j["index_f"].to_numpy()], mean[:, j["index_b"].to_numpy()]
    return (np.abs(b - f) / f).max(axis=1)


def _ratio(kind: str):
    def measure(t):
        _, em, th = _fig2_pairs(t)
        return getattr(th / em, kind)(axis=1)
    return measure


UNIT = dict(unit=("net",))
_MEANS = dict(sums=Sums(("series", "direction", "convention", "width"), ("mean",)))   # claims: mean eps per point
FIG2_CLAIMS = (
    Claim("theory-above-empirical", "Bound over-estimates: theory > empirical at every m (both conventions)",
          _ratio("min"), above(1, "(min over m of theory / mean empirical eps)"),
          source="paper 001 §4.2: 'our lower bound on width is an over-estimation'; SPEC-000-002.md §2.3 001-fig2 "
                 "[C]: theory > empirical at every m", **UNIT, **_MEANS),
    Claim("gap-shrinks", "Bound tighter for smaller eps: theory - empirical decreases with m", _gap_shrinks,
          below(0, "(largest step-to-step change of the gap)"),
          source="paper 001 §4.2: 'becomes tighter for smaller values of eps'; SPEC-000-002.md §2.3 001-fig2 [C]: the "
                 "gap decreases with m", **UNIT, **_MEANS),
    Claim("ratio-min", "theory/empirical >= 2 (spec range [2, 6])", _ratio("min"), above(2),
          source="SPEC-000-002.md §2.3 001-fig2 [C]: ratio theory/empirical in [2, 6] (simulated about 3.7-4.1)",
          **UNIT, **_MEANS),
    Claim("ratio-max", "theory/empirical <= 6 (spec range [2, 6])", _ratio("max"), below(6),
          source="SPEC-000-002.md §2.3 001-fig2 [C]: ratio theory/empirical in [2, 6] (simulated about 3.7-4.1)",
          **UNIT, **_MEANS),
    Claim("forward-backward-agree", "Forward and backward empirical eps agree within 15%", _fwd_bwd,
          below(0.15, "(max relative difference over m)"),
          source="SPEC-000-002.md §2.3 001-fig2 [C]: forward and backward empirical curves agree within 15% "
                 "(identical distributions)", **UNIT, **_MEANS),
)

register(Figure(PAPER, "fig2", "Tightness of the Lemma 2 / Lemma 5 width bounds", Fig2Config,
                fig2_grid, fig2_compute, fig2_plot, FIG2_CLAIMS,
                memory=lambda cfg: net_bytes(cfg, [cfg.input_dim] + [max(cfg.widths)] * 2, cfg.n_samples),
                presets={"smoke": {"widths": (100, 200), "n_samples": 200, "theory_step": 20, "networks": 3}},
                runtime={"smoke": "4 s", "default": "10 s CPU", "paper": "10 s CPU"}))
