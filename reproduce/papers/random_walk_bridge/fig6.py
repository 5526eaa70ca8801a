"""Figure 6: pair margin PM vs pair fluctuation PF during SGD (SPEC-000-002.md D13).

Panels: MLP/MNIST, VGG C8L3/CIFAR-10, ResNet34 (the authors' WRN-34-1)/CIFAR-100."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ... import plotting
from ...claims import Claim, above, need
from ...config import ReproError, setting
from ...registry import Figure, register
from . import path_stats as ps
from .common import (
    PAPER,
    REAL,
    SHAPES,
    SYNTHETIC,
    DataSettings,
    accuracy,
    checkpoints,
    data,
    mlp,
    on,
    pairs,
    resize,
    seconds,
    sgd_checkpoints,
    spread,
    step_seconds,
    synthetic,
)
from .models import make, make_authors

ARCHS = {"mlp": ("mlp", 2), "vgg": ("vgg", 8), "resnet": ("resnet", 34)}   # family=authors: C8L3, WRN-34-1
STANDARD = {"vgg": 11, "resnet": 34}                                         # family=standard: VGG-11, ResNet-34


@dataclass(frozen=True)
class Fig6Config(DataSettings):
    panels: tuple[str, ...] = setting(("mlp", "vgg", "resnet"), stated=True, size=True, choices=tuple(ARCHS),
                                      help="(a) 2-layer MLP, (b) VGG C8L3, (c) ResNet34")
    family: str = setting("authors", stated=False, choices=("authors", "standard"),
                          help="conv panels: authors = their C8L3 (avg pools, no BN) and WRN-34-1 at 28 x 28; "
                               "standard = VGG-11 and He et al.'s ResNet-34 at 32 x 32")
    datasets: tuple[str, ...] = setting(("mnist", "cifar10", "cifar100"), stated=True, size=True,
                                        choices=REAL + SYNTHETIC, help="one per panel, in the same order")
    mlp_width: int = setting(1000, stated=False, size=True, help="hidden units of the 2-layer MLP")
    width: float = setting(1.0, stated=False, size=True, help="channel multiplier of the conv nets")
    steps: int = setting(3910, stated=False, size=True, help="SGD steps (10 CIFAR epochs at batch 128)")
    lrs: tuple[float, ...] = setting((0.01, 0.01, 0.05), stated=False, help="per panel, as figs 3/4/5")
    momentum: float = setting(0.9, stated=False, help="SGD momentum")
    batch: int = setting(128, stated=False, help="SGD minibatch")
    n_pairs: int = setting(1000, stated=False, size=True, help="fixed training pairs")
    n_checkpoints: int = setting(12, stated=False, size=True, low=0, help="log-spaced checkpoints (plus 0)")


def conv_input(x: torch.Tensor, arch: str, family: str) -> torch.Tensor:
    """Images for the panel's network: the authors' conv nets take 28 x 28 (CIFAR resized), the standard ones 32 x 32
    (MNIST zero-padded); the MLP takes them as they are."""
    if arch == "mlp":
        return x
    if family == "authors":
        return resize(x, 28)
    return torch.nn.functional.pad(x, (2, 2, 2, 2)) if x.shape[-1] == 28 else x


def panel_net(panel: str, name: str, g: torch.Generator, x: torch.Tensor, x_cal: torch.Tensor, cfg: Fig6Config):
    """The panel's network on x's device: the MLP, or the family's conv net (BN statistics from x / x_cal)."""
    arch, depth = ARCHS[panel]
    if arch == "mlp":
        c = SHAPES[name.removeprefix("synthetic-")][3]
        return mlp(x[0].numel(), cfg.mlp_width, c, generator=g, dtype=torch.float32).to(x.device)
    if cfg.family == "authors":
        return make_authors(arch, depth, name, g, x, width=cfg.width)
    return make(arch, STANDARD[arch], name, g, x_cal, width=cfg.width)


def fig6_grid(cfg: Fig6Config) -> list[dict]:
    if len(cfg.datasets) != len(cfg.panels):
        raise ReproError(f"fig6: {len(cfg.panels)} panels but {len(cfg.datasets)} datasets; give one dataset per panel")
    return [{"panel": p, "dataset": d, "lr": cfg.lrs[list(ARCHS).index(p)]} for p, d in zip(cfg.panels, cfg.datasets)]


def fig6_compute(cfg: Fig6Config, point: dict, ctx) -> pd.DataFrame:
    name, (arch, _) = point["dataset"], ARCHS[point["panel"]]
    (x, y), (xv, yv) = data(name, DataSettings(cfg.preprocess, "test", cfg.pair_type), ctx.data_root, ctx.seed)
    x, xv = (conv_input(t, arch, cfg.family) for t in (x, xv))
    idx = pairs(y if cfg.pairs_from == "train" else yv, cfg.n_pairs, cfg.pair_type,
                ctx.rng("pairs", device=torch.device("cpu"), per_point=False))   # drawn on the host
    x, y, xv, yv = on(ctx.device, x, y, xv, yv)
    sub = spread(len(y), 10000).to(x.device)         # gathered once: BN calibration (first 2000), accuracy
    x_acc, y_acc = x[sub], y[sub]
    xp, yp = (x, y) if cfg.pairs_from == "train" else (xv, yv)
    g = ctx.rng("init-and-sgd", device=torch.device("cpu"))
    net = panel_net(point["panel"], name, g, x, x_acc[:2000], cfg)
    x0, x1, y0, y1 = xp[idx[:, 0]], xp[idx[:, 1]], yp[idx[:, 0]], yp[idx[:, 1]]
    rows = []

    def at(step, net):
        f0, fh, f1 = (torch.cat([net(t[i:i + 500]) for i in range(0, len(t), 500)]) for t in (x0, (x0 + x1) / 2, x1))
        r = ps.pair_margin_fluctuation(f0.double(), fh.double(), f1.double(), y0, y1)
        rows.append({"step": step, **{k: float(v.mean()) for k, v in r.items()},
                     "PM_sem": float(r["PM"].std() / len(y0) ** 0.5),
                     "train_acc": accuracy(net, x_acc, y_acc), "val_acc": accuracy(net, xv, yv)})
    sgd_checkpoints(net, x, y, steps=cfg.steps, lr=point["lr"], momentum=cfg.momentum, batch=cfg.batch,
                    at=checkpoints(cfg.steps, cfg.n_checkpoints), g=g, on_checkpoint=at, tick=ctx.tick)
    return pd.DataFrame(rows).assign(panel=point["panel"], dataset=name)


def fig6_cost(cfg: Fig6Config, device: torch.device) -> dict:
    """--dry-run: per panel, SGD steps and the checkpoint passes (3 points per pair, 10k train + 10k validation images
    for the accuracies), timed on this device at the configured widths on a synthetic stand-in."""
    total, n_ck = 0.0, len(checkpoints(cfg.steps, cfg.n_checkpoints))
    for panel, ds in zip(cfg.panels, cfg.datasets):
        (arch, _), name = ARCHS[panel], "synthetic-" + ds.removeprefix("synthetic-")
        x, y = synthetic(name, 512, 0)
        x = conv_input(x, arch, cfg.family)
        x, y, g = x.to(device), y.to(device), torch.Generator().manual_seed(0)
        net = panel_net(panel, name, g, x, x, cfg)
        step = step_seconds(net, x[:cfg.batch], y[:cfg.batch])
        with torch.no_grad():
            fwd = seconds(lambda: net.eval()(x), device) / len(x)
        total += cfg.steps * step + n_ck * fwd * (3 * cfg.n_pairs + 20000)
    return {"runs": len(cfg.panels), "hours": total / 3600,
            "basis": f"SGD steps and forward passes timed on synthetic stand-ins (conv width {cfg.width:g}, "
                     f"MLP width {cfg.mlp_width})"}


def fig6_plot(df: pd.DataFrame, cfg: Fig6Config):
    panels = list(dict.fromkeys(df["panel"]))
    fig, axes = plotting.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for ax, p in zip(axes[0], panels):
        g = df[df.panel == p].sort_values("step")
        x = np.maximum(g["step"], 0.5)
        ax.plot(x, g["PM"], "o-", ms=3, label="pair margin PM")
        ax.plot(x, g["PF_mean"], "s-", ms=3, label="pair fluctuation PF (mean over c)")
        ax2 = ax.twinx()
        ax2.plot(x, g["val_acc"], ":", color="grey", label="validation accuracy")
        ax2.set_ylabel("validation accuracy", color="grey")
        name = g["dataset"].iloc[0]
        ax.set(xscale="log", xlabel="SGD step (0 drawn at 0.5)",
               title=f"{p} on {name}" + ("" if name in REAL else " (stand-in)"))
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def _ends(df):
    need(len(df) > 0, "no rows")
    return {p: g.sort_values("step") for p, g in df.groupby("panel", sort=False)}


def _rises(df):
    return float(min(g["PM"].iloc[-1] - g["PM"].iloc[0] for g in _ends(df).values()))


def _crossing(df):
    """min over panels of min(PF(0) - PM(0), PM(T) - PF(T)): > 0 when PM starts below PF and ends above it."""
    return float(min(min(g["PF_mean"].iloc[0] - g["PM"].iloc[0], g["PM"].iloc[-1] - g["PF_mean"].iloc[-1])
                     for g in _ends(df).values()))


def _first_crossing(df):
    parts = []
    for p, g in _ends(df).items():
        up = g[g["PM"] > g["PF_mean"]]
        parts.append(f"{p}: " + (f"first PM > PF at step {int(up['step'].iloc[0])} (val acc "
                                 f"{up['val_acc'].iloc[0]:.3f})" if len(up) else "never"))
    return "; ".join(parts)


FIG6_CLAIMS = (   # one network per panel: the unit count says so
    Claim("F6-rises", "Pair margin rises with training", _rises, above(0, "(PM(T) - PM(0), worst panel)"),
          unit=("panel",)),
    Claim("F6-crossing", "Pair margin eventually exceeds pair fluctuation", _crossing,
          above(0, "(min over panels of PF(0) - PM(0) and PM(T) - PF(T))"), info=_first_crossing, unit=("panel",)),
)

register(Figure(PAPER, "fig6", "Pair margin vs pair fluctuation during SGD", Fig6Config, fig6_grid, fig6_compute,
                fig6_plot, FIG6_CLAIMS, cost=fig6_cost,
                presets={"smoke": {"panels": ("mlp", "vgg"), "datasets": ("synthetic-mnist", "synthetic-cifar10"),
                                   "mlp_width": 100, "width": 1 / 16, "steps": 40, "n_pairs": 50, "n_checkpoints": 3}},
                runtime={"smoke": "10 s",
                         "default": "48 min CPU (MLP + VGG panels; ResNet panel needs CIFAR-100 and a GPU)",
                         "paper": "not run yet"},
                gpu_presets=("default", "paper")))
