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
    depths: tuple[int, ...] = setting((2, 5, 10, 20, 50, 100), stated=False, size=True,
                                      help="L (L - 1 residual blocks)")
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


def adam_direction(g, m, v, t, b1=0.9, b2=0.999, eps=1e-8) -> torch.Tensor:
    """Update the Adam moments in place and return the step direction (elementwise: stacked runs stay independent)."""
    m.mul_(b1).add_(g, alpha=1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    return (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)


def train(U, V, xtr, ytr, xte, yte, *, steps, evals, lr, train_v, adam=None, lam=None, tick=None):
    """Per run b: full-batch GD, or Adam where adam[b], on R + lam[b]/sqrt(n) ||Theta||_P; V frozen where ~train_v[b].

    lr, lam (B,) float; train_v, adam (B,) bool. Runs of different depths share a batch when the shallower
    ones are padded with U = V = 0 blocks at the top: those stay exactly zero (zero gradient, zero path norm).
    Returns one record per evaluation step: step, train loss (B,), test error (B,), path norm (B,).
    """
    n = len(ytr)
    U, V = U.clone(), V.clone()  # plain tensors: gradients are hand-written (core.skip_resnet.backward)
    adam = torch.zeros_like(train_v) if adam is None else adam
    col = lambda t: t.to(U.dtype)[:, None, None]  # noqa: E731  (B,) -> (B, 1, 1)
    lr_u, lr_v = col(lr), col(lr * train_v)
    use_adam, use_gd = col(adam), col(~adam)
    pen = None if lam is None or not bool((lam != 0).any()) else col(lam / math.sqrt(n))
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
        if pen is not None:
            _, pu, pv = sr.path_norm(U, V, grad=True)
            du, dv = du + pen * pu, dv + pen * pv
        if adam.any():
            du = use_gd * du + use_adam * adam_direction(du, *moments[:2], t + 1)
            dv = use_gd * dv + use_adam * adam_direction(dv, *moments[2:], t + 1)
        U -= lr_u * du
        V -= lr_v * dv
        if tick is not None and (t + 1) % 1000 == 0:
            tick(t + 1)
    return out


def depth_buckets(depths) -> list[list[int]]:
    """Depths grouped into batches whose deepest member is at most twice as deep as its shallowest."""
    out: list[list[int]] = []
    for L in sorted(depths, reverse=True):
        if out and 2 * L >= out[-1][0]:
            out[-1].append(L)
        else:
            out.append([L])
    return [sorted(b) for b in out]


def sweep(cfg: Settings, depths, runs: list[dict], evals: list[int], ctx) -> pd.DataFrame:
    """Train every run {depth, kind, model, lr_c, seed} in one batch (padded to the deepest); tidy rows.

    kind "unregularized" is GD at lr = lr_c / L; "regularized" is Adam on the path-norm objective. The lr_c
    with the lowest mean final nn test error is marked `chosen` per depth (the paper tunes on test error).
    """
    dev = ctx.device
    xtr, ytr, xte, yte = (t.to(dev) for t in data(cfg))   # data and inits are drawn on the host, then moved
    k = max(depths) - 1
    pad = lambda t, L: torch.nn.functional.pad(t, (0, 0, 0, k - (L - 1)))  # noqa: E731  blocks on top
    inits = {L: [pad(t, L) for t in init(cfg, L, cfg.seeds, ctx.seed)] for L in depths}
    U = torch.stack([inits[r["depth"]][0][r["seed"]] for r in runs]).to(dev)
    V = torch.stack([inits[r["depth"]][1][r["seed"]] for r in runs]).to(dev)
    reg = torch.tensor([r["kind"] == "regularized" for r in runs], device=dev)
    lr = torch.tensor([cfg.adam_lr if r["kind"] == "regularized" else r["lr_c"] / r["depth"] for r in runs],
                      dtype=torch.float64, device=dev)
    recs = train(U, V, xtr, ytr, xte, yte, steps=cfg.steps, evals=evals, lr=lr, adam=reg,
                 train_v=torch.tensor([r["model"] == "nn" for r in runs], device=dev), lam=reg * getattr(cfg, "lam", 0.0),
                 tick=lambda t: ctx.tick(f"step {t}"))
    recs = [{k: v.cpu() if torch.is_tensor(v) else v for k, v in rec.items()} for rec in recs]
    lr, reg = lr.cpu(), reg.cpu()
    first, last = recs[0]["train"], recs[-1]["train"]
    diverged = ~torch.isfinite(last) | ((last > first) & ~reg)
    df = pd.DataFrame([{**r, "lr": float(lr[i]), "step": rec["step"], "quantity": q, "value": float(rec[key][i]),
                        "diverged": bool(diverged[i])}
                       for rec in recs for i, r in enumerate(runs)
                       for q, key in (("train_loss", "train"), ("test_error", "test"), ("path_norm", "path_norm"))])
    df = df.rename(columns={"seed": "run"}).assign(d=cfg.d)
    final = df[(df.step == cfg.steps) & (df.quantity == "test_error") & (df.model == "nn") & ~df.diverged
               & (df.kind == "unregularized")]
    means = final.groupby(["depth", "lr_c"])["value"].mean()
    pick = {L: lrc for L, (_, lrc) in means.groupby(level=0).idxmin().items()}
    return df.assign(chosen=[kind == "regularized" or pick.get(L) == c for L, kind, c in zip(df.depth, df.kind, df.lr_c)])


def fig1_grid(cfg: Fig1Config) -> list[dict]:
    return [{"depths": b} for b in depth_buckets(cfg.depths)]


def fig1_compute(cfg: Fig1Config, point: dict, ctx) -> pd.DataFrame:
    runs = [{"depth": L, "kind": "unregularized", "model": mdl, "lr_c": c, "seed": s}
            for L in point["depths"] for mdl in ("nn", "rf") for c in cfg.lr_grid for s in range(cfg.seeds)]
    return sweep(cfg, point["depths"], runs, eval_steps(cfg.steps, cfg.n_evals), ctx)


def fig2_grid(cfg: Fig2Config) -> list[dict]:
    return [{"depths": b} for b in depth_buckets(cfg.depths)]


def fig2_compute(cfg: Fig2Config, point: dict, ctx) -> pd.DataFrame:
    runs = [{"depth": L, "kind": "unregularized", "model": "nn", "lr_c": c, "seed": s}
            for L in point["depths"] for c in cfg.lr_grid for s in range(cfg.seeds)]
    runs += [{"depth": L, "kind": "regularized", "model": "nn", "lr_c": math.nan, "seed": s}
             for L in point["depths"] for s in range(cfg.seeds)]
    df = sweep(cfg, point["depths"], runs, [0, cfg.steps], ctx)
    return df[df.step == cfg.steps]


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
                runtime={"smoke": "10 s", "default": "139 s CPU", "paper": "not run yet"}))
register(Figure(PAPER, "fig2", "Test error vs depth: unregularized GD vs path-norm regularized (Adam)", Fig2Config,
                fig2_grid, fig2_compute, fig2_plot, FIG2_CLAIMS,
                presets={"smoke": {"depths": (2, 5, 10), "steps": 300, "seeds": 1, "lr_grid": (5.0,),
                                   "n_test": 500},
                         "paper": {"seeds": 10, "lr_grid": (0.625, 1.25, 2.5, 5.0, 10.0, 20.0)}},
                runtime={"smoke": "10 s", "default": "223 s CPU", "paper": "not run yet"}))
