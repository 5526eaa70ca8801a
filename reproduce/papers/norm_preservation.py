"""Paper 001 (Arpit & Bengio): norm preservation in deep ReLU nets at He initialization.

Claims checked (SPEC-000-002 §2), each against this tool's own CSVs:
- Fig 1: with He init (variance 2/fan-out) ||h_i||/||x|| ~ 1 and ||dl/dW_i||_F / (||delta|| ||x||) ~ 1 at every
  layer, closer with width (std ~ 1/2 sqrt(5 i / m)); Glorot init shrinks both.
- Fig 2: the width bound of Lemma 2 / Lemma 5 (inverted at failure probability 0.05) over-estimates the
  measured distortion, by a factor 2-6, and the gap closes as width grows; forward and backward agree.
- Fig 3: with layer widths drawn from U(1000-v, 1000+v), the gradient-norm ratio drifts from 1 across layers
  as v grows, following sqrt(n_i / n_L).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..claims import Claim, need
from ..config import setting
from ..core.init import gaussian_weight
from ..core.relu_net import forward_backward_norms
from ..registry import Figure, register

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


@dataclass(frozen=True)
class Fig1Config(NetSettings):
    widths: tuple[int, ...] = setting((100, 500, 2000, 4060), stated=True, size=True,
                                      help="printed '4060' (maybe 4000); used as printed")
    inits: tuple[str, ...] = setting(("he", "glorot"), stated=True, choices=("he", "glorot"))
    depth: int = setting(10, stated=True, size=True, help="ReLU layers")
    n_samples: int = setting(2000, stated=True, size=True)
    glorot_variant: str = setting("xavier", stated=False, choices=("xavier", "code"),
                                  help="xavier: 2/(fan_in+fan_out); code: 1/fan_out (authors' code)")


@dataclass(frozen=True)
class Fig2Config(NetSettings):
    widths: tuple[int, ...] = setting(tuple(range(500, 4001, 500)), stated=False, size=True,
                                      help="widths of the empirical points (paper: 500 to 4000)")
    n_samples: int = setting(2000, stated=True, size=True)
    delta: float = setting(0.05, stated=True, help="failure probability of the bound")
    theory_step: int = setting(50, stated=False, size=True, help="width step of the theory curve")
    setup: str = setting("two-layer", stated=False, choices=("two-layer", "direct-lemma"),
                         help="two-layer: eps_fwd at layer 1, eps_bwd for W_1 of a 2-layer net; "
                              "direct-lemma: ReLU(Ru) and (Ru)*z sampled as in Lemmas 2/5")
    theory: str = setting("lemma", stated=False, choices=("lemma", "code"),
                          help="lemma: invert 2 exp(-m g(eps)) = delta; code: authors' (1+4/m ln(4NL/delta))^L - 1")
    code_depth: int = setting(10, stated=False, help="L of the authors' code curve (theory=code only)")


@dataclass(frozen=True)
class Fig3Config(NetSettings):
    variations: tuple[int, ...] = setting((1, 200, 500), stated=True, size=True, help="v in U(w-v, w+v)")
    base_width: int = setting(1000, stated=True, size=True)
    depth: int = setting(20, stated=True, size=True)
    n_samples: int = setting(1000, stated=True, size=True)


# ---------------------------------------------------------------- compute
def _inputs(cfg: NetSettings, n: int, ctx) -> tuple[torch.Tensor, torch.Tensor]:
    kw = dict(generator=ctx.generator, dtype=ctx.dtype(cfg.dtype), device=ctx.device)
    x = torch.randn(n, cfg.input_dim, **kw) if cfg.input_dist == "gaussian" else \
        torch.rand(n, cfg.input_dim, **kw) * 2 - 1
    if cfg.targets == "soft":
        u = torch.rand(n, cfg.n_classes, **kw)
        return x, u / u.sum(dim=1, keepdim=True)
    labels = torch.randint(cfg.n_classes, (n,), generator=ctx.generator, device=ctx.device)
    return x, torch.nn.functional.one_hot(labels, cfg.n_classes).to(x.dtype)


def _net(cfg: NetSettings, widths: list[int], rule: str, ctx) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Weights for layer widths [n_0, ..., n_L] under `rule`, and the softmax head."""
    kw = dict(generator=ctx.generator, dtype=ctx.dtype(cfg.dtype), device=ctx.device)
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


def fig1_grid(cfg: Fig1Config) -> list[dict]:
    return [{"init": init, "width": m} for init in cfg.inits for m in cfg.widths]


def fig1_compute(cfg: Fig1Config, point: dict, ctx) -> pd.DataFrame:
    variant = cfg.he_mode if point["init"] == "he" else cfg.glorot_variant
    rule = INIT_RULES[(point["init"], variant)]
    m = point["width"]
    fwd, bwd = _ratios(cfg, [cfg.input_dim] + [m] * cfg.depth, rule, cfg.n_samples, ctx)
    return pd.DataFrame(_layer_rows(fwd, bwd, init=point["init"], rule=rule, width=m))


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
    return [{"width": m} for m in cfg.widths] + [{"theory": cfg.theory}]


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
        kw = dict(generator=ctx.generator, dtype=ctx.dtype(cfg.dtype), device=ctx.device)
        u = torch.randn(n, cfg.input_dim, **kw)
        r1, r2 = (gaussian_weight("he_fan_out", m, cfg.input_dim, **kw) for _ in range(2))
        z = torch.rand(n, m, **kw) < 0.5
        ratios = {"forward": (torch.relu(u @ r1.T).norm(dim=1) / u.norm(dim=1)).cpu().numpy(),
                  "backward": (((u @ r2.T) * z).norm(dim=1) / u.norm(dim=1)).cpu().numpy()}
    rows = []
    for d, r in ratios.items():
        for k, eps in (("squared", np.abs(1 - r**2)), ("unsquared", np.abs(1 - r))):
            rows.append({"series": "empirical", "direction": d, "convention": k, "width": m,
                         "mean": float(eps.mean()), "std": float(eps.std())})
    return pd.DataFrame(rows)


def fig3_grid(cfg: Fig3Config) -> list[dict]:
    return [{"v": v} for v in cfg.variations]


def fig3_compute(cfg: Fig3Config, point: dict, ctx) -> pd.DataFrame:
    v = point["v"]
    lo = max(cfg.base_width - v, 1)
    hidden = torch.randint(lo, cfg.base_width + v + 1, (cfg.depth,), generator=ctx.generator,
                           device=ctx.device).tolist()
    fwd, bwd = _ratios(cfg, [cfg.input_dim] + hidden, INIT_RULES[("he", cfg.he_mode)], cfg.n_samples, ctx)
    df = pd.DataFrame(_layer_rows(fwd, bwd, v=v))
    df.insert(2, "width", [hidden[i - 1] for i in df["layer"]])
    df.insert(3, "width_last", hidden[-1])
    return df


# ---------------------------------------------------------------- plots
def _plt():
    import matplotlib.pyplot as plt
    return plt


def fig1_plot(df: pd.DataFrame):
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    widths = sorted(df["width"].unique())
    colors = dict(zip(widths, plt.cm.viridis(np.linspace(0, 0.85, len(widths)))))
    for ax, q, label in ((axes[0], "forward", r"$\|h_i\| / \|x\|$"),
                         (axes[1], "backward", r"$\|\partial\ell/\partial W_i\|_F / (\|\delta\|\,\|x\|)$")):
        for (init, m), s in df[df["quantity"] == q].groupby(["init", "width"]):
            ax.errorbar(s["layer"], s["mean"], yerr=s["std"], color=colors[m], capsize=2,
                        ls="-" if init == "he" else "--", marker="o" if init == "he" else "s", ms=3,
                        label=f"{'He' if init == 'he' else 'Glorot'}, m={m}")
        ax.axhline(1, color="gray", lw=0.6)
        ax.set(xlabel="layer index i", ylabel=label, title=f"{q} pass")
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle("Norm ratios per layer at initialization (10 ReLU layers)")
    return fig


def fig2_plot(df: pd.DataFrame):
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, d, lemma in ((axes[0], "forward", "Lemma 2"), (axes[1], "backward", "Lemma 5")):
        for k, color in (("squared", "C0"), ("unsquared", "C1")):
            th = df[(df.series == "theory") & (df.direction == d) & (df.convention == k)].sort_values("width")
            em = df[(df.series == "empirical") & (df.direction == d) & (df.convention == k)].sort_values("width")
            ax.plot(th["width"], th["mean"], color=color, label=f"theoretical ({k})")
            ax.plot(em["width"], em["mean"], "o", color=color, label=f"empirical mean ({k})")
        ax.set(xlabel="width m", ylabel=r"distortion $\epsilon$", title=f"{d} ({lemma}), $\\delta$=0.05")
        ax.legend(fontsize=7)
    fig.suptitle("Tightness of the width bound")
    return fig


def fig3_plot(df: pd.DataFrame):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for v, s in df[df["quantity"] == "backward"].groupby("v"):
        ax.errorbar(s["layer"], s["mean"], yerr=s["std"], capsize=2, marker="o", ms=3,
                    label=f"He - width variation {v}")
    ax.axhline(1, color="gray", lw=0.6)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set(xlabel="layer index i", ylabel=r"$\|\partial\ell/\partial W_i\|_F / (\|\delta\|\,\|x\|)$",
           title="Non-uniform width vs gradient-norm equality (20 layers)")
    ax.legend(fontsize=8)
    return fig


# ---------------------------------------------------------------- claims
def _sel(df: pd.DataFrame, **kw) -> pd.DataFrame:
    for k, v in kw.items():
        df = df[df[k] == v]
    return df


def _he_mean(q: str, m: int, tol: float) -> Claim:
    def check(df):
        s = _sel(df, init="he", quantity=q, width=m)
        need(len(s) > 0, f"no He width {m} in this run")
        return float((s["mean"] - 1).abs().max()), f"<= {tol}", (s["mean"] - 1).abs().max() <= tol
    return Claim(f"he-{q}-mean-m{m}", f"He, {q}: max_i |mean ratio_i - 1| <= {tol} at m={m}", check)


def _std_decreases(q: str) -> Claim:
    def check(df):
        s = _sel(df, init="he", quantity=q).pivot_table(index="layer", columns="width", values="std")
        need(s.shape[1] >= 2, "needs >= 2 He widths")
        bad = int((np.diff(s.to_numpy(), axis=1) >= 0).sum())
        return bad, "= 0 violations", bad == 0
    return Claim(f"he-{q}-std-decreases", f"He, {q}: std_i decreases with width at every layer", check)


def _std_scale(df):
    s = _sel(df, init="he", quantity="forward")
    s = s[s["width"] >= 500]
    need(len(s) > 0, "no He width >= 500")
    r = s["std"] / (0.5 * np.sqrt(5 * s["layer"] / s["width"]))
    worst = r.iloc[int(np.argmax(np.abs(np.log(r))))]
    return float(worst), "in [0.5, 1.3]", bool(r.between(0.5, 1.3).all())


def _glorot_max(q: str, last_only: bool, tol: float) -> Claim:
    def check(df):
        s = _sel(df, init="glorot", quantity=q)
        if last_only:
            s = s[s["layer"] == s["layer"].max()]
        need(len(s) > 0, "no Glorot rows")
        return float(s["mean"].max()), f"< {tol}", s["mean"].max() < tol
    where = "at the last layer" if last_only else "at every layer"
    return Claim(f"glorot-{q}-{'last' if last_only else 'all'}", f"Glorot, {q}: mean ratio < {tol} {where}", check)


FIG1_CLAIMS = (
    *(_he_mean(q, m, tol) for q in ("forward", "backward") for m, tol in ((500, 0.15), (2000, 0.10), (4060, 0.08))),
    Claim("he-forward-std-scale", "He, forward: std_i / (1/2 sqrt(5i/m)) in [0.5, 1.3] (m >= 500); value = worst",
          _std_scale),
    _std_decreases("forward"), _std_decreases("backward"),
    _glorot_max("forward", True, 0.1), _glorot_max("backward", False, 0.2),
)


def _fig2_pairs(df: pd.DataFrame) -> pd.DataFrame:
    """Empirical rows joined with the theory value at the same (direction, convention, width)."""
    em, th = _sel(df, series="empirical"), _sel(df, series="theory")
    j = em.merge(th, on=["direction", "convention", "width"], suffixes=("", "_th"))
    need(len(j) > 0 and j["mean_th"].notna().all(), "no empirical widths with a finite theory value")
    return j.assign(ratio=j["mean_th"] / j["mean"], gap=j["mean_th"] - j["mean"])


def _gap_shrinks(df):
    j = _fig2_pairs(df)
    need(j["width"].nunique() >= 2, "needs >= 2 widths")
    inc = max(np.diff(s.sort_values("width")["gap"]).max() for _, s in j.groupby(["direction", "convention"]))
    return float(inc), "< 0 (largest step-to-step change of the gap)", inc < 0


def _fwd_bwd(df):
    em = _sel(df, series="empirical").pivot_table(index=["convention", "width"], columns="direction", values="mean")
    need({"forward", "backward"} <= set(em.columns), "needs both directions")
    rel = ((em["backward"] - em["forward"]).abs() / em["forward"]).max()
    return float(rel), "<= 0.15 (max relative difference)", rel <= 0.15


def _ratio_bound(kind: str):
    def check(df):
        r = _fig2_pairs(df)["ratio"]
        if kind == "above":
            return float(r.min()), "> 1 (min theory/empirical)", r.min() > 1
        if kind == "min":
            return float(r.min()), ">= 2", r.min() >= 2
        return float(r.max()), "<= 6", r.max() <= 6
    return check


FIG2_CLAIMS = (
    Claim("theory-above-empirical", "Bound over-estimates: theory > empirical at every m (both conventions)",
          _ratio_bound("above")),
    Claim("gap-shrinks", "Bound tighter for smaller eps: theory - empirical decreases with m", _gap_shrinks),
    Claim("ratio-min", "theory/empirical >= 2 (spec range [2, 6])", _ratio_bound("min")),
    Claim("ratio-max", "theory/empirical <= 6 (spec range [2, 6])", _ratio_bound("max")),
    Claim("forward-backward-agree", "Forward and backward empirical eps agree within 15%", _fwd_bwd),
)


def _fig3_stats(df: pd.DataFrame) -> pd.DataFrame:
    s = _sel(df, quantity="backward")
    need(s["v"].nunique() >= 2, "needs >= 2 width variations")
    return s.groupby("v").agg(spread=("mean", lambda x: x.max() - x.min()), std=("std", "mean"),
                              dev=("mean", lambda x: (x - 1).abs().max()))


def _corr(df):
    s = _sel(df, quantity="backward")
    s = s[s["v"] == s["v"].max()]
    need(len(s) > 2 and s["v"].max() > 1, "needs a run with v > 1")
    c = np.corrcoef(s["mean"], np.sqrt(s["width"] / s["width_last"]))[0, 1]
    return float(c), ">= 0.8", c >= 0.8


def _v_min_close(df):
    s = _sel(df, quantity="backward")
    need(len(s) > 0, "no rows")
    dev = (s[s["v"] == s["v"].min()]["mean"] - 1).abs().max()
    return float(dev), "<= 0.2", dev <= 0.2


def _spread_increases(df):
    bad = int((np.diff(_fig3_stats(df)["spread"]) <= 0).sum())
    return bad, "= 0 violations", bad == 0


def _spread_ratio(df):
    s = _fig3_stats(df)["spread"]
    return float(s.iloc[-1] / s.iloc[0]), ">= 2", s.iloc[-1] >= 2 * s.iloc[0]


def _std_ratio(df):
    s = _fig3_stats(df)["std"]
    return float(s.iloc[0] / s.iloc[-1]), "< 1", s.iloc[0] < s.iloc[-1]


FIG3_CLAIMS = (
    Claim("spread-increases", "Across-layer spread (max_i - min_i of the mean ratio) increases with v",
          _spread_increases),
    Claim("spread-ratio", "spread(largest v) >= 2 spread(smallest v)", _spread_ratio),
    Claim("follows-sqrt-width", "Largest v: corr_i(mean_i, sqrt(n_i/n_L)) >= 0.8", _corr),
    Claim("small-v-near-one", "Smallest v: max_i |mean_i - 1| <= 0.2", _v_min_close),
    Claim("small-v-smaller-std", "Smaller variance when v is small: mean std(smallest v) / mean std(largest v) < 1",
          _std_ratio),
)

register(Figure(PAPER, "fig1", "Norm ratios per layer, He vs Glorot (10 layers)", Fig1Config,
                fig1_grid, fig1_compute, fig1_plot, FIG1_CLAIMS,
                presets={"smoke": {"widths": (50, 100), "n_samples": 100, "input_dim": 50}},
                runtime={"smoke": "4 s", "default": "45 s CPU", "paper": "45 s CPU"}))
register(Figure(PAPER, "fig2", "Tightness of the Lemma 2 / Lemma 5 width bounds", Fig2Config,
                fig2_grid, fig2_compute, fig2_plot, FIG2_CLAIMS,
                presets={"smoke": {"widths": (100, 200), "n_samples": 200, "theory_step": 20}},
                runtime={"smoke": "4 s", "default": "10 s CPU", "paper": "10 s CPU"}))
register(Figure(PAPER, "fig3", "Non-uniform width vs gradient-norm equality (20 layers)", Fig3Config,
                fig3_grid, fig3_compute, fig3_plot, FIG3_CLAIMS,
                presets={"smoke": {"variations": (1, 20, 50), "base_width": 100, "n_samples": 100,
                                   "input_dim": 50}},
                runtime={"smoke": "4 s", "default": "5 s CPU", "paper": "5 s CPU"}))
