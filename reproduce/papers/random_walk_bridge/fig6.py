"""Figure 6: pair margin PM vs pair fluctuation PF during SGD (SPEC-000-002.md D13).

Panels: MLP/MNIST, VGG C8L3/CIFAR-10, ResNet34 (the authors' WRN-34-1)/CIFAR-100."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ... import plotting
from ...claims import Claim, Sums, above, need
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
    n_pairs: int = setting(1000, stated=False, size=True, help="fixed training pairs (pair_type: the paper's text)")
    authors_pairs: int = setting(128, stated=False, size=True, low=0,
                                 help="same-class training pairs as the authors' code draws them (OFFICIAL-CODE §1.2: "
                                      "128), measured beside the paper's pairs; 0: none")
    pf_grid: int = setting(17, stated=False, size=True, low=3,
                           help="t grid of the authors' PF (max over t of the true-class deviation from the chord; "
                                "their code: 1000 points)")
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


def true_class_fluctuation(net, x0: torch.Tensor, x1: torch.Tensor, y: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
    """The authors' pair fluctuation (OFFICIAL-CODE-000-001.md §1.3): max over the t grid (G,) of
    |u_y(t) - [(1 - t) u_y(0) + t u_y(1)]|, u = f / ||f|| (our normalisation), y the pairs' class; x0, x1 (P, ...),
    y (P,) -> (P,)."""
    u = []
    for t in ts.tolist():
        xt = x0 + t * (x1 - x0)
        f = torch.cat([net(xt[i:i + 500]) for i in range(0, len(xt), 500)]).double()
        u.append((f / f.norm(dim=-1, keepdim=True)).gather(1, y[:, None])[:, 0])
    u, t = torch.stack(u, 1), ts.to(u[0])          # (P, G)
    return (u - (u[:, :1] + t * (u[:, -1:] - u[:, :1]))).abs().max(1).values


def fig6_compute(cfg: Fig6Config, point: dict, ctx) -> pd.DataFrame:
    name, (arch, _) = point["dataset"], ARCHS[point["panel"]]
    (x, y), (xv, yv) = data(name, DataSettings(cfg.preprocess, "test", cfg.pair_type), ctx.data_root,
                            ctx.seed_for("data", per_point=False))
    x, xv = (conv_input(t, arch, cfg.family) for t in (x, xv))
    host = torch.device("cpu")
    yp_host = y if cfg.pairs_from == "train" else yv
    sets = {"paper": pairs(yp_host, cfg.n_pairs, cfg.pair_type, ctx.rng("pairs", device=host, per_point=False))}
    if cfg.authors_pairs:   # the authors' code: same-class training pairs
        sets["authors"] = pairs(y, cfg.authors_pairs, "same_class", ctx.rng("authors-pairs", device=host,
                                                                              per_point=False))
    x, y, xv, yv = on(ctx.device, x, y, xv, yv)
    sub = spread(len(y), 10000).to(x.device)         # gathered once: BN calibration (first 2000), accuracy
    x_acc, y_acc = x[sub], y[sub]
    g = ctx.rng("init-and-sgd", device=host)
    net = panel_net(point["panel"], name, g, x, x_acc[:2000], cfg)
    ends = {}
    for key, idx in sets.items():
        xp, yp = (xv, yv) if key == "paper" and cfg.pairs_from == "test" else (x, y)
        idx = idx.to(x.device)
        ends[key] = (xp[idx[:, 0]], xp[idx[:, 1]], yp[idx[:, 0]], yp[idx[:, 1]])
    ts = torch.linspace(0, 1, cfg.pf_grid, dtype=torch.float64)
    parts = []

    def at(step, net):
        acc = {"step": step, "train_acc": accuracy(net, x_acc, y_acc), "val_acc": accuracy(net, xv, yv)}
        with torch.no_grad():
            for key, (x0, x1, y0, y1) in ends.items():
                f0, fh, f1 = (torch.cat([net(t[i:i + 500]) for i in range(0, len(t), 500)]).double()
                              for t in (x0, (x0 + x1) / 2, x1))
                r = {k: v.cpu().numpy() for k, v in ps.pair_margin_fluctuation(f0, fh, f1, y0, y1).items()}
                if key == "authors":
                    r["PF_true_max"] = true_class_fluctuation(net, x0, x1, y0, ts).cpu().numpy()
                parts.append(pd.DataFrame({**acc, "pair_set": key, "pair": np.arange(len(y0)), **r}))
    sgd_checkpoints(net, x, y, steps=cfg.steps, lr=point["lr"], momentum=cfg.momentum, batch=cfg.batch,
                    at=checkpoints(cfg.steps, cfg.n_checkpoints), g=g, on_checkpoint=at, tick=ctx.tick)
    return pd.concat(parts, ignore_index=True).assign(panel=point["panel"], dataset=name)


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
        total += cfg.steps * step + n_ck * fwd * (3 * cfg.n_pairs + (3 + cfg.pf_grid) * cfg.authors_pairs + 20000)
    return {"runs": len(cfg.panels), "hours": total / 3600,
            "basis": f"SGD steps and forward passes timed on synthetic stand-ins (conv width {cfg.width:g}, "
                     f"MLP width {cfg.mlp_width})"}


def _means(df: pd.DataFrame) -> pd.DataFrame:
    """Per (panel, pair set, step): the means over pairs the plot draws (the claims read the pair rows)."""
    cols = [c for c in ("PM", "PF_mean", "PF_true_max", "val_acc") if c in df]
    return df.groupby(["panel", "dataset", "pair_set", "step"], sort=False)[cols].mean().reset_index()


def fig6_plot(df: pd.DataFrame, cfg: Fig6Config):
    m = _means(df)
    panels = list(dict.fromkeys(m["panel"]))
    fig, axes = plotting.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for ax, p in zip(axes[0], panels):
        g = m[(m.panel == p) & (m.pair_set == "paper")].sort_values("step")
        x = np.maximum(g["step"], 0.5)
        ax.plot(x, g["PM"], "o-", ms=3, label=f"pair margin PM ({cfg.pair_type} pairs)")
        ax.plot(x, g["PF_mean"], "s-", ms=3, label="pair fluctuation PF (t = 1/2, mean over c)")
        a = m[(m.panel == p) & (m.pair_set == "authors")].sort_values("step")
        if len(a):
            xa = np.maximum(a["step"], 0.5)
            ax.plot(xa, a["PM"], "o--", ms=2, color="C0", alpha=0.6, label="PM, same-class pairs (authors' code)")
            ax.plot(xa, a["PF_true_max"], "s--", ms=2, color="C1", alpha=0.6,
                    label="PF, true class, max over t (authors' code)")
        ax2 = ax.twinx()
        ax2.plot(x, g["val_acc"], ":", color="grey", label="validation accuracy")
        ax2.set_ylabel("validation accuracy", color="grey")
        name = g["dataset"].iloc[0]
        ax.set(xscale="log", xlabel="SGD step (0 drawn at 0.5)", ylabel="mean over pairs",
               title=f"{p} on {name}" + ("" if name in REAL else " (stand-in)"))
        ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    return fig


def _set(key: str):
    """reduce: the pair rows of one pair set (what the claims read)."""
    def pick(df):
        need("pair_set" in df and (df["pair_set"] == key).any(), f"no {key!r} pair rows in the CSV")
        return df[df["pair_set"] == key]
    return pick


def _ends(t, col):
    """Means over pairs of `col` at the first and the last checkpoint, (B,) each (claims.Totals grouped by step)."""
    need(len(t.groups) > 1, "fewer than two checkpoints")
    mean = t[col] / t["n"]
    return mean[:, 0], mean[:, -1]


def _rises(t):
    """Mean over pairs of PM(T) - PM(0) (one panel)."""
    p0, pt = _ends(t, "PM")
    return pt - p0


def _crossing(pf):
    def measure(t):
        """min(PF(0) - PM(0), PM(T) - PF(T)) of the means over pairs (one panel): > 0 when PM starts below PF and
        ends above it."""
        (m0, mt), (f0, ft) = _ends(t, "PM"), _ends(t, pf)
        return np.minimum(f0 - m0, mt - ft)
    return measure


def _first_crossing(pf):
    def info(df):
        m, parts = _means(df), []
        for p, g in m.groupby("panel", sort=False):
            g = g.sort_values("step")
            up = g[g["PM"] > g[pf]]
            parts.append(f"{p}: " + (f"first PM > PF at step {int(up['step'].iloc[0])} (val acc "
                                     f"{up['val_acc'].iloc[0]:.3f})" if len(up) else "never"))
        return "; ".join(parts)
    return info


_D13 = "SPEC-000-002.md §1.4 Fig 6 [C]: PM(T) > PM(0), PM(0) < PF(0) and PM(T) > PF(T)"
_AUTH = ("OFFICIAL-CODE-000-001.md §1.3 (PF = max over t of the true-class deviation, same-class training pairs) with "
         "SPEC-000-002.md §1.4 Fig 6 [C]'s predicate")
FIG6_CLAIMS = (   # units: pairs on the panel's one network; each panel judged on its own (cells)
    Claim("F6-rises", "Pair margin rises with training (the paper's pairs, PF at t = 1/2)", _rises,
          above(0, "(mean over pairs of PM(T) - PM(0), per panel)"), unit=("pair",), cells=("panel",),
          reduce=_set("paper"), source=_D13, sums=Sums(("step",), ("PM",))),
    Claim("F6-crossing", "Pair margin eventually exceeds pair fluctuation (the paper's pairs, PF at t = 1/2, mean "
          "over c)", _crossing("PF_mean"), above(0, "(min of PF(0) - PM(0) and PM(T) - PF(T), means over pairs, per "
                                                 "panel)"),
          info=_first_crossing("PF_mean"), unit=("pair",), cells=("panel",), reduce=_set("paper"), source=_D13,
          sums=Sums(("step",), ("PM", "PF_mean"))),
    Claim("F6-rises-authors", "Pair margin rises with training (the authors' same-class pairs)", _rises,
          above(0, "(mean over pairs of PM(T) - PM(0), per panel)"), unit=("pair",), cells=("panel",),
          reduce=_set("authors"), source=_AUTH, sums=Sums(("step",), ("PM",))),
    Claim("F6-crossing-authors", "Pair margin eventually exceeds pair fluctuation (the authors' code: same-class "
          "pairs, true-class PF, max over t)", _crossing("PF_true_max"),
          above(0, "(min of PF(0) - PM(0) and PM(T) - PF(T), means over pairs, per panel)"),
          info=_first_crossing("PF_true_max"), unit=("pair",), cells=("panel",), reduce=_set("authors"),
          source=_AUTH, sums=Sums(("step",), ("PM", "PF_true_max"))),
)

register(Figure(PAPER, "fig6", "Pair margin vs pair fluctuation during SGD", Fig6Config, fig6_grid, fig6_compute,
                fig6_plot, FIG6_CLAIMS, cost=fig6_cost,
                presets={"smoke": {"panels": ("mlp", "vgg"), "datasets": ("synthetic-mnist", "synthetic-cifar10"),
                                   "mlp_width": 100, "width": 1 / 16, "steps": 40, "n_pairs": 50, "authors_pairs": 20,
                                   "pf_grid": 5, "n_checkpoints": 3}},
                runtime={"smoke": "10 s",
                         "default": "about 2 h CPU on one thread (MLP + VGG panels, measured 114 min for the VGG "
                                    "panel; ResNet panel needs CIFAR-100 and a GPU)",
                         "paper": "not run yet"},
                gpu_presets=("default", "paper")))
