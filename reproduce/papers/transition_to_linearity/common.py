"""Paper 004 shared pieces: data (eq. 42), settings, GD with kernel tracking, fits."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ... import plotting
from ...claims import need
from ...config import setting
from ...core import ntk
from ...core.gd import batched_gd, eval_schedule

PAPER = "transition-to-linearity"
VARIANTS = ("full", "per_output", "trace")


@dataclass(frozen=True)
class DataSettings:
    """Data (eq. 42) and precision, shared by the figures and Table 1."""
    n_data: int = setting(60, stated=True, help="eq. 42: y ~ U{0,1,2}, x|y ~ N(0|10|-10, 1)")
    data_seed: int = setting(0, stated=False, help="one dataset for all widths, runs and tasks")
    dtype: str = setting("float64", stated=False, choices=("float64", "float32"),
                         help="parameters and kernels (TF32 is always off)")


@dataclass(frozen=True)
class TrainSettings(DataSettings):
    """Full-batch GD, shared by the figures."""
    runs: int = setting(3, stated=True, size=True, help="independent inits, batched (the claims' units)")
    stop_loss: float = setting(1e-2, stated=True, size=True, help="stop a run at loss < this")
    max_steps: int = setting(10_000, stated=False, size=True, help="GD step cap; unconverged runs are flagged")
    lr: float = setting(0.0, stated=False, help="GD step size; 0 = c N / lambda_max(K(w0)) per run")
    lr_c_ce: float = setting(2.0, stated=False, help="c of the step rule for cross-entropy")
    lr_c_mse: float = setting(0.5, stated=False, help="c of the step rule for swish-MSE")
    eval_every: int = setting(20, stated=False, size=True,
                              help="kernel every step to 100, every k to 1e4, then every 10k")


def data_rng(ctx, cfg: DataSettings) -> torch.Generator:
    """The dataset's generator (CPU): one draw per base seed and data_seed, shared by every point."""
    return ctx.rng("data", device=torch.device("cpu"), per_point=False, data_seed=cfg.data_seed)


def dataset(cfg: DataSettings, device: torch.device, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 42, drawn on the CPU from `data_seed` so every device sees the same points: x (N,), y (N,)."""
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


def loglog_slope(xs, ys) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float)), 1)[0])


def log_errorbar(ax, st: pd.DataFrame, x: str, **kw) -> None:
    """Mean +- std of the summary `st` against column `x` on log axes (plotting.log_errorbar)."""
    plotting.log_errorbar(ax, st[x], st["mean"], st["std"], **kw)


def dk_means(df: pd.DataFrame, by: str, quantity: str = "dK_sup", **where) -> pd.Series:
    """Mean over runs of Delta K (dK_sup: the sup over the evaluated steps; dK_final: at the last step) of the
    full kernel, indexed by `by`, for rows matching `where`."""
    s = df[(df.quantity == quantity) & (df.kernel == "full")]
    for k, v in where.items():
        s = s[s[k] == v]
    need(len(s) > 0, "no rows for " + ", ".join(f"{k}={v}" for k, v in where.items()))
    return s.groupby(by)["value"].mean()


def sup_runs(*series: str):
    """A claim's `reduce`: the dK_sup rows of the full kernel, one per run (of the given series, or all)."""
    def pick(df: pd.DataFrame) -> pd.DataFrame:
        s = df[(df.quantity == "dK_sup") & (df.kernel == "full")]
        s = s[s.series.isin(series)] if series else s
        need(len(s) > 0, f"no {'/'.join(series)} runs" if series else "no runs")
        return s
    return pick
