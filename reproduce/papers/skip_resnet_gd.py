"""Paper 002 (E, Ma, Wang, Wu): GD on a deep ResNet with skip connections vs its random-feature twin.

Claims checked (SPEC-000-002 §3), each against this tool's own CSVs:
- Fig 1: GD drives the training loss of the m = 1 ResNet (A.1) to ~0 at every depth, and for deep nets its
  trajectory is close to that of the compositional random-feature model (the same net with V frozen).
- Fig 2: the unregularized GD solution's test error settles at a finite value as depth grows, while the
  path-norm-regularized model (A.2, lambda = 0.005, Adam) keeps a very small test error at every depth.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..claims import Claim, need
from ..config import setting
from ..core import skip_resnet as sr
from ..core.device import generator, point_seed
from ..registry import Figure, register

PAPER = "skip-resnet-gd"


@dataclass(frozen=True)
class Settings:
    """Data, GD protocol and precision shared by both figures."""
    d: int = setting(10, stated=False, help="input dimension; x ~ Uniform(S^{d-1})")
    n_train: int = setting(100, stated=False, help="training samples")
    n_test: int = setting(10_000, stated=False, size=True, help="fresh samples for the test error")
    data_seed: int = setting(0, stated=False, help="one train/test draw for every run")
    steps: int = setting(20_000, stated=False, size=True, help="full-batch GD iterations")
    seeds: int = setting(3, stated=False, size=True, help="init seeds per depth and step size")
    lr_grid: tuple[float, ...] = setting((1.25, 2.5, 5.0, 10.0), stated=False, size=True,
                                         help="step sizes c / L; the one with the lowest mean final test error "
                                              "of nn is kept for both models (the paper tunes on test)")
    n_evals: int = setting(40, stated=False, size=True, help="log-spaced evaluation steps")


@dataclass(frozen=True)
class Fig1Config(Settings):
    depths: tuple[int, ...] = setting((2, 10, 100), stated=True, size=True, help="L (L - 1 residual blocks)")


@dataclass(frozen=True)
class Fig2Config(Settings):
    depths: tuple[int, ...] = setting((2, 5, 10, 20, 50, 100), stated=False, size=True)
    lam: float = setting(0.005, stated=True, help="path-norm penalty lambda in J = R + lambda/sqrt(n) ||Theta||_P")
    adam_lr: float = setting(1e-3, stated=False, help="Adam step size, betas (0.9, 0.999)")


def sphere(n: int, d: int, g: torch.Generator) -> torch.Tensor:
    """n points uniform on S^{d-1}: (n, d)."""
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    return x / x.norm(dim=1, keepdim=True)


def data(cfg: Settings) -> tuple[torch.Tensor, ...]:
    """x_train (n, d), y_train (n,), x_test, y_test; y = max(x_1, 0)."""
    g = generator(torch.device("cpu"), cfg.data_seed)
    xtr, xte = sphere(cfg.n_train, cfg.d, g), sphere(cfg.n_test, cfg.d, g)
    return xtr, xtr[:, 0].clamp_min(0), xte, xte[:, 0].clamp_min(0)


def eval_steps(steps: int, n: int) -> list[int]:
    """0, 1, 2 and log-spaced steps up to `steps`."""
    return sorted({0, 1, 2, steps, *np.unique(np.geomspace(1, steps, n).astype(int)).tolist()})


def risk(U, V, x, y, chunk: int = 2000) -> torch.Tensor:
    """(1/2) mean (f - y)^2 per run: (B,)."""
    total = sum(((sr.forward(U, V, x[i:i + chunk])[0] - y[i:i + chunk]) ** 2).sum(-1)
                for i in range(0, len(x), chunk))
    return total / (2 * len(x))


def init(cfg: Settings, depth: int, seeds: int, base_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """U = 0, V ~ N(0, 1) (m = 1), one generator per seed so nn and rf share V: (seeds, L-1, d+1) each."""
    vs = [torch.randn(depth - 1, cfg.d + 1, generator=generator(torch.device("cpu"), point_seed(base_seed, {"s": s})),
                      dtype=torch.float64) for s in range(seeds)]
    v = torch.stack(vs)
    return torch.zeros_like(v), v


def adam_step(p, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8) -> None:
    """One Adam update in place (elementwise, so runs stacked in one tensor stay independent)."""
    m.mul_(b1).add_(g, alpha=1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    p.sub_(lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps))


def train(U, V, xtr, ytr, xte, yte, *, steps, evals, lr=None, train_v=None, lam=0.0, adam_lr=None, tick=None):
    """Full-batch GD (per-run lr (B,), V frozen where train_v is False) or Adam on R + lam/sqrt(n) ||Theta||_P.

    Returns one record per evaluation step: step, train loss (B,), test error (B,), path norm (B,).
    """
    n = len(ytr)
    U, V = U.clone(), V.clone()  # plain tensors: gradients are hand-written (core.skip_resnet.backward)
    vmask = train_v.to(V.dtype)[:, None, None] if train_v is not None else torch.ones_like(V[:, :1, :1])
    moments = [torch.zeros_like(U), torch.zeros_like(U), torch.zeros_like(V), torch.zeros_like(V)]
    out, want = [], set(evals)
    for t in range(steps + 1):
        f, saved = sr.forward(U, V, xtr)
        loss = ((f - ytr) ** 2).sum(-1) / (2 * n)
        if t in want:
            out.append({"step": t, "train": loss.clone(), "test": risk(U, V, xte, yte), "path_norm": sr.path_norm(U, V)})
        if t == steps:
            break
        du, dv = sr.backward(U, V, saved, (f - ytr) / n)
        if adam_lr is None:
            U -= lr[:, None, None] * du
            V -= lr[:, None, None] * dv * vmask
        else:
            if lam:
                _, pu, pv = sr.path_norm(U, V, grad=True)
                du, dv = du + lam / math.sqrt(n) * pu, dv + lam / math.sqrt(n) * pv
            adam_step(U, du, *moments[:2], t + 1, adam_lr)
            adam_step(V, dv * vmask, *moments[2:], t + 1, adam_lr)
        if tick is not None and (t + 1) % 1000 == 0:
            tick(t + 1)
    return out


def _gd_grid(cfg: Settings, depth: int, models: tuple[str, ...], evals: list[int], ctx) -> pd.DataFrame:
    """Every (model, lr, seed) run of one depth in one batch; marks divergence and the chosen lr."""
    xtr, ytr, xte, yte = data(cfg)
    u0, v0 = init(cfg, depth, cfg.seeds, ctx.seed)
    combos = [(mdl, c, s) for mdl in models for c in cfg.lr_grid for s in range(cfg.seeds)]
    U, V = u0[[s for *_, s in combos]], v0[[s for *_, s in combos]]
    lr = torch.tensor([c / depth for _, c, _ in combos], dtype=torch.float64)
    train_v = torch.tensor([mdl == "nn" for mdl, _, _ in combos])
    recs = train(U, V, xtr, ytr, xte, yte, steps=cfg.steps, evals=evals, lr=lr, train_v=train_v,
                 tick=lambda t: ctx.tick(f"L={depth} step {t}"))
    first, last = recs[0]["train"], recs[-1]["train"]
    diverged = ~torch.isfinite(last) | (last > first)
    rows = [{"model": mdl, "lr_c": c, "lr": c / depth, "run": s, "step": r["step"], "quantity": q,
             "value": float(r[key][i]), "diverged": bool(diverged[i])}
            for r in recs for i, (mdl, c, s) in enumerate(combos)
            for q, key in (("train_loss", "train"), ("test_error", "test"))]
    df = pd.DataFrame(rows)
    final = df[(df.step == cfg.steps) & (df.quantity == "test_error") & (df.model == "nn") & ~df.diverged]
    best = final.groupby("lr_c")["value"].mean().idxmin() if len(final) else math.nan
    return df.assign(chosen=df["lr_c"] == best, depth=depth, d=cfg.d)


def fig1_grid(cfg: Fig1Config) -> list[dict]:
    return [{"depth": L} for L in sorted(cfg.depths)]


def fig1_compute(cfg: Fig1Config, point: dict, ctx) -> pd.DataFrame:
    return _gd_grid(cfg, point["depth"], ("nn", "rf"), eval_steps(cfg.steps, cfg.n_evals), ctx)


def fig2_grid(cfg: Fig2Config) -> list[dict]:
    return [{"depth": L, "kind": k} for L in sorted(cfg.depths) for k in ("unregularized", "regularized")]


def fig2_compute(cfg: Fig2Config, point: dict, ctx) -> pd.DataFrame:
    depth = point["depth"]
    if point["kind"] == "unregularized":
        df = _gd_grid(cfg, depth, ("nn",), [0, cfg.steps], ctx)
        return df[df.step == cfg.steps].assign(kind="unregularized")
    xtr, ytr, xte, yte = data(cfg)
    U, V = init(cfg, depth, cfg.seeds, ctx.seed)
    recs = train(U, V, xtr, ytr, xte, yte, steps=cfg.steps, evals=[0, cfg.steps], lam=cfg.lam,
                 adam_lr=cfg.adam_lr, tick=lambda t: ctx.tick(f"L={depth} Adam step {t}"))
    r = recs[-1]
    rows = [{"model": "nn", "lr_c": math.nan, "lr": cfg.adam_lr, "run": s, "step": r["step"], "quantity": q,
             "value": float(r[key][s]), "diverged": not bool(torch.isfinite(r["train"][s])), "chosen": True}
            for s in range(cfg.seeds) for q, key in (("train_loss", "train"), ("test_error", "test"),
                                                     ("path_norm", "path_norm"))]
    return pd.DataFrame(rows).assign(depth=depth, kind="regularized", d=cfg.d)


# ---------------------------------------------------------------- plots
def fig1_plot(df: pd.DataFrame):
    import matplotlib.pyplot as plt
    depths = sorted(df["depth"].unique())
    fig, axes = plt.subplots(1, len(depths), figsize=(4.2 * len(depths), 3.8), squeeze=False)
    for ax, L in zip(axes[0], depths):
        sel = df[(df.depth == L) & df.chosen & ~df.diverged]
        for mdl, color in (("nn", "C0"), ("rf", "C3")):
            for q, style in (("train_loss", "-"), ("test_error", "--")):
                m = sel[(sel.model == mdl) & (sel.quantity == q)].groupby("step")["value"].median()
                ax.plot(np.maximum(m.index, 0.8), m.to_numpy(), style, color=color, label=f"{mdl} {q.replace('_', ' ')}")
        lr = sel["lr"].iloc[0] if len(sel) else math.nan
        ax.set(xscale="log", yscale="log", xlabel="GD iteration", title=f"depth L = {L} (lr {lr:.3g})")
    axes[0][0].set_ylabel("loss (median over seeds)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def fig2_plot(df: pd.DataFrame):
    import matplotlib.pyplot as plt
    fig, (ax, axn) = plt.subplots(1, 2, figsize=(10, 3.8))
    for kind, color in (("unregularized", "C0"), ("regularized", "C2")):
        sel = df[(df.kind == kind) & df.chosen & ~df.diverged]
        te = sel[sel.quantity == "test_error"].groupby("depth")["value"].agg(["median", "min", "max"])
        ax.errorbar(te.index, te["median"], yerr=[te["median"] - te["min"], te["max"] - te["median"]],
                    marker="o", capsize=3, color=color, label=kind)
    d = int(df["d"].iloc[0])
    ax.axhline(1 / (4 * d), color="grey", ls=":", lw=1, label=f"zero predictor 1/(4d), d = {d}")
    ax.set(xscale="log", yscale="log", xlabel="depth L", ylabel="test error (median, min-max over seeds)")
    ax.legend(fontsize=8)
    pn = df[(df.kind == "regularized") & (df.quantity == "path_norm")].groupby("depth")["value"].agg(["median", "min", "max"])
    axn.errorbar(pn.index, pn["median"], yerr=[pn["median"] - pn["min"], pn["max"] - pn["median"]], marker="o",
                 capsize=3, color="C2")
    axn.axhline(1.0, color="grey", ls=":", lw=1, label=r"$\|f^*\|_P = 1$")
    axn.set(xscale="log", xlabel="depth L", ylabel=r"path norm $\|\Theta\|_P$", title="regularized solution")
    axn.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- claims
def _final(df: pd.DataFrame, quantity: str, **where) -> pd.DataFrame:
    sel = df[df.chosen & ~df.diverged & (df.quantity == quantity) & (df.step == df.step.max())]
    for k, v in where.items():
        sel = sel[sel[k] == v]
    return sel


def _converges(df):
    worst = []
    for L in (10, 100):
        sel = df[df.chosen & ~df.diverged & (df.quantity == "train_loss") & (df.model == "nn") & (df.depth == L)]
        need(len(sel) > 0, f"needs depth {L}")
        first = sel[sel.step == 0].groupby("run")["value"].first()
        last = sel[sel.step == sel.step.max()].groupby("run")["value"].first()
        worst.append(float((last / first).median()))
    return max(worst), "<= 1e-6 (median over seeds of R(T)/R(0), worse of L = 10, 100)", max(worst) <= 1e-6


def _curves(df, L):
    sel = df[df.chosen & ~df.diverged & (df.quantity == "train_loss") & (df.depth == L)]
    need(len(sel) > 0, f"needs depth {L}")
    return {m: sel[sel.model == m].groupby("step")["value"].median() for m in ("nn", "rf")}


def _close_deep(df):
    L = int(df["depth"].max())
    need(L >= 50, "needs a deep net (L >= 50)")
    c = _curves(df, L)
    gap = float((np.log10(c["nn"]) - np.log10(c["rf"])).abs().max())
    te = {m: _final(df, "test_error", depth=L, model=m)["value"].median() for m in ("nn", "rf")}
    rel = abs(te["nn"] - te["rf"]) / te["nn"]
    return gap, f"<= 0.3 decades at L = {L}, and final test errors within 10% (rel. diff {rel:.3g})", \
        gap <= 0.3 and rel <= 0.1


def _gap_shrinks(df):
    depths = sorted(df["depth"].unique())
    need(len(depths) >= 2, "needs >= 2 depths")
    gaps = []
    for L in depths:
        c = _curves(df, L)
        gaps.append(abs(math.log10(c["rf"].iloc[-1] / c["nn"].iloc[-1])))
    ok = all(b < a for a, b in zip(gaps, gaps[1:]))
    return gaps[-1], "strictly decreasing |log10(R_rf(T)/R_nn(T))| over depths (" + \
        ", ".join(f"{g:.2f}" for g in gaps) + ")", ok


def _shallow_gap(df):
    need(2 in set(df["depth"]), "needs depth 2")
    c = _curves(df, 2)
    ratio = float(c["rf"].iloc[-1] / c["nn"].iloc[-1])
    return ratio, ">= 10 at L = 2 (median R_rf(T) / median R_nn(T))", ratio >= 10


FIG1_CLAIMS = (
    Claim("F1-1-converges", "GD reaches a global minimum: training loss falls by 1e6 (L = 10, 100)", _converges),
    Claim("F1-2-deep-close", "Deep net: nn and rf training curves and test errors coincide", _close_deep),
    Claim("F1-3-gap-shrinks", "The nn-rf gap in final training loss shrinks with depth", _gap_shrinks),
    Claim("F1-4-shallow-differs", "Depth 2: the random-feature model cannot fit (R_rf >= 10 R_nn)", _shallow_gap),
)


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

register(Figure(PAPER, "fig1", "GD time history: ResNet (nn) vs compositional random features (rf)", Fig1Config,
                fig1_grid, fig1_compute, fig1_plot, FIG1_CLAIMS,
                presets={"smoke": {"depths": (2, 5, 10), "steps": 300, "seeds": 1, "lr_grid": (5.0,),
                                   "n_test": 500, "n_evals": 10},
                         "paper": {"seeds": 10, "lr_grid": (0.625, 1.25, 2.5, 5.0, 10.0, 20.0)}},
                runtime={"smoke": "10 s", "default": "not run yet (>10 min CPU)", "paper": "not run yet"}))
register(Figure(PAPER, "fig2", "Test error vs depth: unregularized GD vs path-norm regularized (Adam)", Fig2Config,
                fig2_grid, fig2_compute, fig2_plot, FIG2_CLAIMS,
                presets={"smoke": {"depths": (2, 5, 10), "steps": 300, "seeds": 1, "lr_grid": (5.0,),
                                   "n_test": 500},
                         "paper": {"seeds": 10, "lr_grid": (0.625, 1.25, 2.5, 5.0, 10.0, 20.0)}},
                runtime={"smoke": "10 s", "default": "not run yet (>10 min CPU)", "paper": "not run yet"}))
