"""Paper 004 (Liu, Zhu, Belkin): transition to linearity, and where it fails.

Claims checked (SPEC-003-004 Part B), each against this tool's own CSVs:
- Fig 1: with a linear output layer (eq. 43, NTK parameterisation) the relative change of the tangent
  kernel during full-batch GD, Delta K, decreases with width like 1/sqrt(m); with a softmax output (same
  trajectory) or a swish output (own trajectory) Delta K stays Theta(1) at every width.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..claims import Claim, need
from ..config import setting
from ..core import ntk
from ..core.device import generator, point_seed
from ..core.gd import batched_gd, eval_schedule
from ..registry import Figure, register

PAPER = "transition-to-linearity"
SERIES = {"ce": ("linear", "softmax"), "swish": ("swish",)}
VARIANTS = ("full", "per_output", "trace")


@dataclass(frozen=True)
class TrainSettings:
    """Data (eq. 42), GD and precision, shared by the figures."""
    n_data: int = setting(60, stated=True, help="eq. 42: y ~ U{0,1,2}, x|y ~ N(0|10|-10, 1)")
    data_seed: int = setting(0, stated=False, help="one dataset for all widths, runs and tasks")
    runs: int = setting(3, stated=False, size=True, help="independent inits, batched (paper: 10)")
    stop_loss: float = setting(1e-2, stated=False, size=True, help="stop a run at loss < this (paper: 1e-4)")
    max_steps: int = setting(10_000, stated=False, size=True, help="GD step cap; unconverged runs are flagged")
    lr: float = setting(0.0, stated=False, help="GD step size; 0 = c N / lambda_max(K(w0)) per run")
    lr_c_ce: float = setting(2.0, stated=False, help="c of the step rule for cross-entropy")
    lr_c_mse: float = setting(0.5, stated=False, help="c of the step rule for swish-MSE")
    eval_every: int = setting(20, stated=False, size=True,
                              help="kernel every step to 100, every k to 1e4, then every 10k")
    dtype: str = setting("float64", stated=False, choices=("float64", "float32"),
                         help="parameters and kernels (TF32 is always off)")


@dataclass(frozen=True)
class Fig1Config(TrainSettings):
    widths: tuple[int, ...] = setting((30, 100, 1000, 10_000), stated=False, size=True,
                                      help="paper: 30, 1e2, ..., 1e6")
    right_width: int = setting(10_000, stated=True, size=True, help="width of the Delta K(t) panel")
    tasks: tuple[str, ...] = setting(("ce", "swish"), stated=True, choices=("ce", "swish"),
                                     help="ce: f and softmax(f) on one trajectory; swish: swish(f) with MSE")
    bias_init: str = setting("normal", stated=False, choices=("normal", "zero"), help="b of eq. 43")
    swish_beta: float = setting(0.1, stated=True, help="eq. 45")


def dataset(cfg: TrainSettings, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 42, drawn on the CPU from `data_seed` so every device sees the same points: x (N,), y (N,)."""
    g = generator(torch.device("cpu"), cfg.data_seed)
    y = torch.randint(3, (cfg.n_data,), generator=g)
    x = torch.randn(cfg.n_data, generator=g, dtype=torch.float64) + torch.tensor([0.0, 10.0, -10.0])[y].double()
    return x.to(device, getattr(torch, cfg.dtype)), y.to(device)


def kernel_changes(k: torch.Tensor, k0: torch.Tensor, n: int, c: int) -> dict[str, torch.Tensor]:
    """Delta K per run (R,) for the full NC x NC kernel, per output block (mean over c), and the trace kernel."""
    blocks = lambda t: t.unflatten(-1, (n, c)).unflatten(-3, (n, c)).diagonal(dim1=-3, dim2=-1)  # noqa: E731
    b, b0 = blocks(k), blocks(k0)                                                   # (R, N, N, C)
    per = (torch.linalg.vector_norm(b - b0, dim=(1, 2)) / torch.linalg.vector_norm(b0, dim=(1, 2))).mean(-1)
    tr, tr0 = b.sum(-1), b0.sum(-1)
    return {"full": ntk.relative_change(k, k0), "per_output": per, "trace": ntk.relative_change(tr, tr0)}


def fig1_grid(cfg: Fig1Config) -> list[dict]:
    widths = sorted(set(cfg.widths) | {cfg.right_width})
    return [{"task": t, "width": m} for t in cfg.tasks for m in widths]


def fig1_compute(cfg: Fig1Config, point: dict, ctx) -> pd.DataFrame:
    task, m, dev, dt = point["task"], point["width"], ctx.device, ctx.dtype(cfg.dtype)
    x, y = dataset(cfg, dev)
    n, c, r = cfg.n_data, 3, cfg.runs
    g = generator(dev, point_seed(ctx.seed, {"width": m}))  # same inits for both tasks at a width
    p = {"w": torch.randn(r, m, generator=g, dtype=dt, device=dev),
         "b": torch.randn(r, m, generator=g, dtype=dt, device=dev) * (cfg.bias_init == "normal"),
         "V": torch.randn(r, c, m, generator=g, dtype=dt, device=dev)}
    onehot = torch.nn.functional.one_hot(y, c).to(dt)

    def loss_fn(q):
        f = ntk.shallow_forward(q, x)
        if task == "ce":
            return torch.nn.functional.cross_entropy(f.transpose(1, 2), y.expand(r, n), reduction="none").mean(1)
        return ((ntk.swish(f, cfg.swish_beta) - onehot) ** 2).sum(-1).mean(-1)

    def kernels(q, k):
        """Tracked kernels from the logit kernel k of parameters q."""
        f = ntk.shallow_forward(q, x)
        if task == "ce":
            return {"linear": k, "softmax": ntk.softmax_kernel(k, f)}
        return {"swish": ntk.swish_kernel(k, f, cfg.swish_beta)}

    lr_c = cfg.lr_c_ce if task == "ce" else cfg.lr_c_mse
    ctx.notes.update(kernel_method=ntk.plan(n * c, m * (2 + c), True, ntk.free_memory(dev)))
    tracked = train_tracking(cfg, ctx, p, loss_fn, lambda q: ntk.ntk_shallow(q, x), kernels, lr_c,
                             trace=m == cfg.right_width)
    rows = tracked_rows(cfg, tracked)
    return pd.DataFrame(rows).assign(task=task, width=m)[["task", "width", *rows[0]]]


def train_tracking(cfg: TrainSettings, ctx, p: dict, loss_fn, logit_kernel, derived, lr_c: float,
                   trace: bool) -> dict:
    """Full-batch GD from p, tracking Delta K of every kernel in derived(q, logit_kernel(q)) -> {series: (R, NC, NC)}.

    The step size is lr_c N / lambda_max(logit kernel at init) per run, unless cfg.lr > 0.
    Returns sup and final Delta K per series and variant (R,), the Delta K(t) trace if asked, and the
    GD outcome (final losses, steps, lr).
    """
    n, c = cfg.n_data, 3
    k_init = logit_kernel(p)
    k0 = derived(p, k_init)
    lam = torch.linalg.eigvalsh(k_init).amax(-1)
    lr = torch.full_like(lam, cfg.lr) if cfg.lr > 0 else lr_c * n / lam
    sup = {s: {v: torch.zeros_like(lam) for v in VARIANTS} for s in k0}
    last, rows = {}, []

    def on_eval(step, q, losses):
        for s, k in derived(q, logit_kernel(q)).items():
            for v, d in kernel_changes(k, k0[s], n, c).items():
                sup[s][v] = torch.maximum(sup[s][v], d)
                last[(s, v)] = d
                if v == "full" and trace:
                    rows.extend({"series": s, "run": i, "step": step, "value": val}
                                for i, val in enumerate(d.tolist()))

    _, losses, steps = batched_gd(p, loss_fn, lr, stop_loss=cfg.stop_loss, max_steps=cfg.max_steps, on_eval=on_eval,
                                  schedule=lambda t: eval_schedule(t, cfg.eval_every),
                                  tick=lambda t: ctx.tick(f"step {t}"))
    return {"sup": sup, "last": last, "trace": rows, "losses": losses, "steps": steps, "lr": lr}


def tracked_rows(cfg: TrainSettings, t: dict) -> list[dict]:
    """Long-format rows (series, run, kernel, quantity, step, value, GD outcome) from train_tracking."""
    sup, last, losses, steps, lr = t["sup"], t["last"], t["losses"], t["steps"], t["lr"]
    rows = [{"series": s, "run": i, "kernel": v, "quantity": q, "step": np.nan, "value": float(val[i]),
             "converged": bool(losses[i] < cfg.stop_loss), "steps": int(steps[i]), "final_loss": float(losses[i]),
             "lr": float(lr[i])}
            for s in sup for v in VARIANTS for q, val in (("dK_sup", sup[s][v]), ("dK_final", last[(s, v)]))
            for i in range(len(lr))]
    return rows + [{**r, "kernel": "full", "quantity": "dK_t"} for r in t["trace"]]



@dataclass(frozen=True)
class Fig2Config(TrainSettings):
    width: int = setting(2000, stated=False, size=True, help="m of the two wide hidden layers (paper: 1e4)")
    bottlenecks: tuple[int, ...] = setting((3, 10, 50, 100, 500), stated=False, size=True,
                                           help="m_b (paper: 3, 5, 10, 50, 100, 500, 1000)")
    scalings: tuple[str, ...] = setting(("literal", "ntk"), stated=False, choices=("literal", "ntk"),
                                        help="literal: eq. 48 as printed; ntk: an extra 1/sqrt(m_b) before W3")
    bneck_bias: str = setting("first", stated=False, choices=("first", "none"),
                              help="eq. 48 prints no bias, which makes the stop loss unreachable; first: b1 ~ N(0,1)")


def fig2_grid(cfg: Fig2Config) -> list[dict]:
    return [{"scaling": s, "mb": mb} for s in cfg.scalings for mb in sorted(cfg.bottlenecks)]


def fig2_compute(cfg: Fig2Config, point: dict, ctx) -> pd.DataFrame:
    scale, mb, m, dev, dt = point["scaling"], point["mb"], cfg.width, ctx.device, ctx.dtype(cfg.dtype)
    x, y = dataset(cfg, dev)
    n, c, r = cfg.n_data, 3, cfg.runs
    g = generator(dev, point_seed(ctx.seed, {"mb": mb}))  # same inits for both scalings at an m_b
    shapes = {"W1": (m,), "b1": (m,), "W2": (mb, m), "W3": (m, mb), "W4": (c, m)}
    if cfg.bneck_bias == "none":
        del shapes["b1"]
        ctx.notes.update(warning="bneck_bias=none: a bias-free ReLU net is positively homogeneous in x, "
                                 "so the stop loss cannot be reached (SPEC B.2)")
    p = {k: torch.randn(r, *sh, generator=g, dtype=dt, device=dev) for k, sh in shapes.items()}

    def loss_fn(q):
        f = ntk.bottleneck_forward(q, x, scale)["f"]
        return torch.nn.functional.cross_entropy(f.transpose(1, 2), y.expand(r, n), reduction="none").mean(1)

    ctx.notes.update(kernel_method=ntk.plan(n * c, sum(math.prod(sh) for sh in shapes.values()), True,
                                            ntk.free_memory(dev)))
    tracked = train_tracking(cfg, ctx, p, loss_fn, lambda q: ntk.ntk_bottleneck(q, x, scale),
                             lambda q, k: {"linear": k}, cfg.lr_c_ce, trace=False)
    rows = tracked_rows(cfg, tracked)
    return pd.DataFrame(rows).assign(scaling=scale, mb=mb, width=m)[["scaling", "mb", "width", *rows[0]]]


def fit_inverse_sqrt(mb: np.ndarray, dk: np.ndarray) -> float:
    """c of the line c / sqrt(m_b), least squares in log space: exp(mean(log dK + log(m_b) / 2))."""
    return float(np.exp(np.mean(np.log(dk) + 0.5 * np.log(mb))))

# ---------------------------------------------------------------- plot
def fig1_plot(df: pd.DataFrame):
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {"linear": "C0", "softmax": "C3", "swish": "C2"}
    labels = {"linear": "f (linear output)", "softmax": r"$\tilde f_1$ = softmax(f)", "swish": r"$\tilde f_2$ = swish(f)"}
    sup = df[(df.quantity == "dK_sup") & (df.kernel == "full")]
    for s, grp in sup.groupby("series"):
        st = grp.groupby("width")["value"].agg(["mean", "std"]).reset_index()
        std = st["std"].fillna(0)
        left.errorbar(st["width"], st["mean"], yerr=[np.minimum(std, 0.9 * st["mean"]), std], marker="o",
                      capsize=3, color=colors[s], label=labels[s])
    left.set(xscale="log", yscale="log", xlabel="width m", ylabel=r"$\Delta K$ (sup over training)",
             title="kernel change vs width (mean $\\pm$ std over runs)")
    left.legend(fontsize=8)
    tr = df[df.quantity == "dK_t"]
    for s, grp in tr.groupby("series"):
        right.plot(*grp[grp.run == 0][["step", "value"]].to_numpy().T, color=colors[s], lw=0.8, alpha=0.6)
        mean = grp.groupby("step")["value"].mean()
        right.plot(mean.index, mean.to_numpy(), color=colors[s], lw=2, label=f"{labels[s]} (mean; thin: run 0)")
    width = int(tr["width"].iloc[0]) if len(tr) else 0
    right.set(xlabel="GD step", ylabel=r"$\Delta K(t)$ (log scale)", yscale="log", title=f"m = {width}")
    right.legend(fontsize=8)
    return fig



def fig2_plot(df: pd.DataFrame):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4.2))
    sup = df[(df.quantity == "dK_sup") & (df.kernel == "full")]
    for i, (scale, grp) in enumerate(sup.groupby("scaling")):
        st = grp.groupby("mb")["value"].agg(["mean", "std"]).reset_index()
        std, color = st["std"].fillna(0), f"C{i}"
        slope = np.polyfit(np.log(st["mb"]), np.log(st["mean"]), 1)[0] if len(st) > 1 else np.nan
        ax.errorbar(st["mb"], st["mean"], yerr=[np.minimum(std, 0.9 * st["mean"]), std], marker="o", capsize=3,
                    color=color, label=f"eq. 48, {scale} scaling (slope {slope:.2f})")
        cst = fit_inverse_sqrt(st["mb"].to_numpy(float), st["mean"].to_numpy())
        grid = np.geomspace(st["mb"].min(), st["mb"].max(), 50)
        ax.plot(grid, cst / np.sqrt(grid), "--", color=color, lw=1, label=f"fit {cst:.2f}/$\\sqrt{{m_b}}$")
    m = int(sup["width"].iloc[0]) if len(sup) else 0
    ax.set(xscale="log", yscale="log", xlabel="bottleneck width $m_b$", ylabel=r"$\Delta K$ (logit kernel)",
           title=f"kernel change vs bottleneck width (m = {m}, mean $\\pm$ std)")
    ticks = sorted(sup["mb"].unique())
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.legend(fontsize=8)
    return fig

# ---------------------------------------------------------------- claims
def _sup_means(df: pd.DataFrame, series: str) -> pd.Series:
    s = df[(df.quantity == "dK_sup") & (df.kernel == "full") & (df.series == series)]
    need(len(s) > 0, f"no {series} rows")
    return s.groupby("width")["value"].mean()


def _spearman(df):
    s = _sup_means(df, "linear")
    need(len(s) >= 3, "needs >= 3 widths")
    rho = np.corrcoef(np.arange(len(s)), s.rank().to_numpy())[0, 1]
    return float(rho), "<= -0.9", rho <= -0.9


def _slope(df):
    s = _sup_means(df, "linear")
    s = s[s.index >= 100]
    need(len(s) >= 2, "needs >= 2 widths >= 100")
    slope = np.polyfit(np.log(s.index.to_numpy(float)), np.log(s.to_numpy()), 1)[0]
    return float(slope), "in [-1.0, -0.3] (theory -1/2)", -1.0 <= slope <= -0.3


def _nonlinear_floor(df):
    worst = min(_sup_means(df, "softmax").min() / 0.5, _sup_means(df, "swish").min() / 0.1)
    return float(worst), ">= 1 (min of dK_softmax/0.5 and dK_swish/0.1 over widths)", worst >= 1


def _no_decrease(df):
    ratios = []
    for s in ("softmax", "swish"):
        v = _sup_means(df, s)
        need(100 in v.index and v.index.max() > 100, "needs width 100 and a larger one")
        ratios.append(v.iloc[-1] / v.loc[100])
    return float(min(ratios)), ">= 0.5 (dK(m_max)/dK(100), worse of softmax, swish)", min(ratios) >= 0.5


def _largest_ratio(df):
    soft, lin = _sup_means(df, "softmax"), _sup_means(df, "linear")
    r = soft.iloc[-1] / lin.iloc[-1]
    return float(r), ">= 10 at the largest width", r >= 10


def _right_panel(df):
    tr = df[df.quantity == "dK_t"]
    need(len(tr) > 0, "no Delta K(t) rows")
    lin = tr[tr.series == "linear"]["value"].max()
    soft = tr[tr.series == "softmax"]
    soft_final = soft[soft.step == soft.step.max()]["value"].mean()
    ok = lin <= 0.1 and soft_final >= 0.5
    return float(lin), f"max_t dK_lin <= 0.1 and final dK_softmax >= 0.5 (final softmax = {soft_final:.3g})", ok


def _converged(df):
    s = df[(df.quantity == "dK_sup") & (df.kernel == "full")].drop_duplicates(["task", "width", "run"])
    frac = s["converged"].mean()
    return float(frac), ">= 0.8 of runs reach the stop loss", frac >= 0.8


FIG1_CLAIMS = (
    Claim("F1-a-linear-decreases", "Linear output: Delta K decreases with width (Spearman rho)", _spearman),
    Claim("F1-b-linear-slope", "Linear output: log-log slope of Delta K vs m (m >= 100)", _slope),
    Claim("F1-c-nonlinear-large", "Softmax Delta K >= 0.5 and swish Delta K >= 0.1 at every width", _nonlinear_floor),
    Claim("F1-d-nonlinear-flat", "Softmax and swish Delta K do not decrease with width", _no_decrease),
    Claim("F1-e-gap", "Largest width: Delta K softmax / Delta K linear >= 10", _largest_ratio),
    Claim("F1-f-right-panel", "m = right width: linear kernel stays put, softmax kernel changes", _right_panel),
    Claim("F1-g-converged", "Fraction of runs that reach the stop loss", _converged),
)


def _bneck_means(df: pd.DataFrame, scaling: str) -> pd.Series:
    s = df[(df.quantity == "dK_sup") & (df.kernel == "full") & (df.scaling == scaling)]
    need(len(s) > 0, f"no rows for the {scaling} scaling")
    return s.groupby("mb")["value"].mean()


def _bneck_spearman(scaling):
    def check(df):
        s = _bneck_means(df, scaling)
        need(len(s) >= 3, "needs >= 3 bottleneck widths")
        rho = np.corrcoef(np.arange(len(s)), s.rank().to_numpy())[0, 1]
        return float(rho), "<= -0.9", rho <= -0.9
    return check


def _bneck_slope(scaling):
    def check(df):
        s = _bneck_means(df, scaling)
        need(len(s) >= 2, "needs >= 2 bottleneck widths")
        slope = np.polyfit(np.log(s.index.to_numpy(float)), np.log(s.to_numpy()), 1)[0]
        return float(slope), "in [-0.9, -0.3] (theory -1/2)", -0.9 <= slope <= -0.3
    return check


def _bneck_narrow(df):
    s = _bneck_means(df, "literal")
    need(3 in s.index, "needs m_b = 3")
    return float(s.loc[3]), ">= 0.1 at m_b = 3", s.loc[3] >= 0.1


def _bneck_fit(df):
    s = _bneck_means(df, "literal")
    need(len(s) >= 2, "needs >= 2 bottleneck widths")
    mb, dk = s.index.to_numpy(float), s.to_numpy()
    worst = float(np.abs(np.log(dk * np.sqrt(mb) / fit_inverse_sqrt(mb, dk))).max())
    return worst, "max |log(dK / fit)| <= log 3 = 1.10", worst <= math.log(3)


def _bneck_converged(df):
    s = df[(df.quantity == "dK_sup") & (df.kernel == "full")].drop_duplicates(["scaling", "mb", "run"])
    frac = s["converged"].mean()
    return float(frac), ">= 0.8 of runs reach the stop loss", frac >= 0.8


FIG2_CLAIMS = (
    Claim("F2-a-decreases-literal", "Bottleneck (eq. 48 literal): Delta K decreases with m_b (Spearman rho)",
          _bneck_spearman("literal")),
    Claim("F2-a-decreases-ntk", "Bottleneck (ntk scaling): Delta K decreases with m_b (Spearman rho)",
          _bneck_spearman("ntk")),
    Claim("F2-b-slope-literal", "Bottleneck (literal): log-log slope of Delta K vs m_b", _bneck_slope("literal")),
    Claim("F2-b-slope-ntk", "Bottleneck (ntk): log-log slope of Delta K vs m_b", _bneck_slope("ntk")),
    Claim("F2-c-narrow-changes", "Narrowest bottleneck m_b = 3 (literal): the kernel is not constant", _bneck_narrow),
    Claim("F2-d-fit-residual", "The fitted c/sqrt(m_b) line is within a factor 3 of every point (literal)",
          _bneck_fit),
    Claim("F2-e-converged", "Fraction of runs that reach the stop loss", _bneck_converged),
)

register(Figure(PAPER, "fig1", "Kernel change vs width: linear vs softmax vs swish output", Fig1Config,
                fig1_grid, fig1_compute, fig1_plot, FIG1_CLAIMS,
                presets={"smoke": {"widths": (30, 100, 300), "right_width": 300, "runs": 1, "max_steps": 1500},
                         "paper": {"widths": (30, 100, 1000, 10_000, 100_000, 1_000_000), "runs": 10,
                                   "stop_loss": 1e-4, "max_steps": 1_000_000}},
                runtime={"smoke": "9 s", "default": "4.5 min CPU", "paper": "~1 GPU-h (spec estimate)"}))

register(Figure(PAPER, "fig2", "Kernel change vs bottleneck width (eq. 48, literal and ntk scaling)", Fig2Config,
                fig2_grid, fig2_compute, fig2_plot, FIG2_CLAIMS,
                presets={"smoke": {"width": 300, "bottlenecks": (3, 10, 50), "runs": 1, "max_steps": 1500},
                         "paper": {"width": 10_000, "bottlenecks": (3, 5, 10, 50, 100, 500, 1000), "runs": 10,
                                   "stop_loss": 1e-4, "max_steps": 1_000_000}},
                runtime={"smoke": "10 s", "default": "15 min CPU", "paper": "~1-1.5 GPU-h per scaling (spec)"}))
