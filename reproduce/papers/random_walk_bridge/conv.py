"""The family of Figs 4 (VGG, fig4.py) and 5 (ResNet, fig5.py): nodes, GGD and deflection vs depth, at init and
during SGD training.

Every node is found exactly (layer by layer, `engine`); the init panels use raw and normalized outputs, the
training panels normalized outputs (SPEC-000-002.md D12). MNIST is zero-padded to 32 x 32.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from ... import plotting
from ...claims import Claim, Sums, below, need
from ...config import ReproError, setting
from ...core.device import DTYPES
from . import path_stats as ps
from .common import (
    ENGINE_HELP,
    ENGINES,
    PREPROCESS,
    REAL,
    SYNTHETIC,
    DataSettings,
    accuracy,
    checkpoints,
    data,
    measure_path,
    on,
    pair_seconds,
    pairs,
    pooled_by,
    probe,
    resize,
    sgd_checkpoints,
    spread,
    step_seconds,
)
from .models import AUTHORS_VGG, RESNET, VGG, WRN_DEPTHS, make, make_authors
from .piecewise import relu_count


@dataclass(frozen=True)
class ConvConfig(DataSettings):
    arch: ClassVar[str] = ""   # "vgg" (Fig 4) or "resnet" (Fig 5); a class constant, not a setting
    datasets: tuple[str, ...] = setting(("mnist", "cifar10"), stated=True, size=True,
                                        choices=REAL + SYNTHETIC,
                                        help="init panels (a-c), one curve each (paper: mnist, cifar10, cifar100)")
    family: str = setting("authors", stated=False, choices=("authors", "standard"),
                          help="authors: their VGG CxL3 (avg pools, no BN) / pre-activation WRN-d-1 at 28 x 28 "
                               "(OFFICIAL-CODE-000-001.md); standard: VGG-11..19 / He et al.'s CIFAR ResNet-18..152")
    preprocess: str = setting("authors", stated=False, choices=PREPROCESS,
                              help="authors: 28x28, per-pixel standardization, ||x|| = sqrt(D) (their code); "
                                   "pixel_standardize / standardize / pixel_center / raw01: see fig2")
    networks: int = setting(3, stated=True, size=True,
                            help="networks per depth at init, one sweep point each (paper 100)")
    pairs_per_net: int = setting(1, stated=False, size=True, help="pairs per network at init (paper profile 10)")
    width: float = setting(1.0, stated=False, size=True, help="channel multiplier (1 = the standard widths)")
    engine: str = setting("layerwise", stated=False, choices=ENGINES, help=ENGINE_HELP)
    grid: int = setting(256, stated=False, size=True, help="initial bisection grid points (engine=bisect)")
    batch: int = setting(128, stated=False, size=True, help="path points (pending intervals, layerwise chunk) per pass")
    dtype: str = setting("float64", stated=False, choices=("float32", "float64"),
                         help="float32 uses the looser verification tolerance 1e-4 (SPEC-000-002.md §1.3)")
    image_size: int = setting(28, stated=False, size=True,
                              help="input resolution: 28 (the authors'); family=standard VGG needs 32 (five 2x2 pools)")
    train: bool = setting(True, stated=True, size=True, help="also run the training panels (d-f)")
    steps: int = setting(3910, stated=False, size=True, help="SGD steps (3910 = 10 epochs of CIFAR at batch 128, the "
                                                               "paper profile; issue 36: train as long as the budget "
                                                               "allows at one depth)")
    momentum: float = setting(0.9, stated=False, help="SGD momentum")
    batch_train: int = setting(128, stated=False, help="SGD minibatch")
    n_pairs: int = setting(3, stated=False, size=True, help="fixed pairs measured at every training checkpoint, the "
                                                            "units of the training claims (paper profile 20)")
    n_checkpoints: int = setting(3, stated=False, size=True, low=0,
                                 help="log-spaced checkpoints (plus 0; 3 over 3910 steps: 0, 1, 62, 3910)")






def build(cfg: ConvConfig, depth: int, name: str, g: torch.Generator, x_calib: torch.Tensor):
    """The family's network for `name`'s shape, initialized, BN statistics from x_calib, in eval mode."""
    if cfg.family == "authors":
        return make_authors(cfg.arch, depth, name, g, x_calib, width=cfg.width)
    return make(cfg.arch, depth, name, g, x_calib, width=cfg.width, pool=getattr(cfg, "pool", "max"),
                bn=getattr(cfg, "bn", False))


def images(name: str, cfg: ConvConfig, root, seed: int):
    """Train and pair splits as (N, C, S, S) float32, S = image_size (MNIST zero-padded when S > 28)."""
    (x, y), (xp, yp) = data(name, cfg, root, seed)
    pad = (cfg.image_size - 28) // 2
    prep = lambda t: resize(torch.nn.functional.pad(t, (pad,) * 4) if t.shape[-1] == 28 and pad > 0 else t,  # noqa: E731
                            cfg.image_size)
    return (prep(x), y), (prep(xp), yp)


FAMILY_DEPTHS = {("vgg", "authors"): AUTHORS_VGG, ("vgg", "standard"): VGG,
                 ("resnet", "authors"): WRN_DEPTHS, ("resnet", "standard"): RESNET}


def depth_choices(arch: str) -> tuple[int, ...]:
    """Every depth of both families of `arch` (authors' first): the choices of the depth settings."""
    return tuple(dict.fromkeys(d for fam in ("authors", "standard") for d in FAMILY_DEPTHS[arch, fam]))


def conv_grid(cfg: ConvConfig) -> list[dict]:
    allowed = FAMILY_DEPTHS[cfg.arch, cfg.family]
    if bad := [d for d in cfg.depths if d not in allowed]:
        raise ReproError(f"depths {bad} are not in family={cfg.family} (choose from {', '.join(map(str, allowed))})")
    if cfg.arch == "vgg" and cfg.family == "standard" and cfg.image_size != 32:
        raise ReproError("fig4: family=standard VGG needs 32 x 32 inputs (five 2 x 2 pools): --set image_size=32")
    pts = [{"part": "init", "dataset": ds, "depth": L, "net": n}
           for ds in cfg.datasets for L in sorted(cfg.depths) for n in range(cfg.networks)]
    if bad := [d for d in cfg.train_depths if d not in allowed]:
        raise ReproError(f"train_depths {bad} are not in family={cfg.family} (choose from "
                         f"{', '.join(map(str, allowed))})")
    train = [{"part": "train", "dataset": cfg.train_dataset, "depth": L} for L in sorted(cfg.train_depths)]
    return pts + (train if cfg.train else [])


def conv_compute(cfg: ConvConfig, point: dict, ctx) -> pd.DataFrame:
    name, depth, dt = point["dataset"], point["depth"], ctx.dtype(cfg.dtype)
    (x, y), (xp, yp) = images(name, cfg, ctx.data_root, ctx.seed_for("data", per_point=False))
    ypc = yp                                   # pairs are drawn on the host: the same on every device
    x, y = on(ctx.device, x, y)
    xp, yp = (x, y) if cfg.pairs_from == "train" else on(ctx.device, xp, yp)
    sub = spread(len(y), 5000).to(x.device)          # gathered once: BN calibration (first 2000), accuracy
    x_acc, y_acc = x[sub], y[sub]
    x_cal = x if cfg.family == "authors" else x_acc[:2000]     # authors: BN pass on random training batches
    rows, measure = [], lambda net, a, b: measure_path(net, a, b, grid=cfg.grid, batch=cfg.batch,
                                                                  engine=cfg.engine)
    if point["part"] == "init":
        n = point["net"]                     # one network per point (its seed is the same as keyed by net alone)
        g = ctx.rng("init-and-pairs", device=torch.device("cpu"), net=n)
        net = build(cfg, depth, name, g, x_cal).to(dt)
        n_relu = relu_count(net, xp[:1].to(dt))
        for p, (i, j) in enumerate(pairs(ypc, cfg.pairs_per_net, cfg.pair_type, g).tolist()):
            rows.append({"net": n, "pair": p, "step": 0, "N_relu": n_relu,
                         **measure(net, xp[i].to(dt), xp[j].to(dt))})
            ctx.tick(f"pair {p + 1}/{cfg.pairs_per_net}")
        return pd.DataFrame(rows).assign(**point)
    g = ctx.rng("init-and-sgd", device=torch.device("cpu"))
    net = build(cfg, depth, name, g, x_cal)
    idx = pairs(ypc, cfg.n_pairs, cfg.pair_type, ctx.rng("pairs", device=torch.device("cpu"), per_point=False))
    n_relu = relu_count(net, xp[:1])

    def at(step, net):
        acc, m = accuracy(net, x_acc, y_acc), net.to(dt)
        for p, (i, j) in enumerate(idx.tolist()):
            rows.append({"net": 0, "pair": p, "step": step, "N_relu": n_relu, "train_acc": acc,
                         **measure(m, xp[i].to(dt), xp[j].to(dt))})
        net.float()
    sgd_checkpoints(net, x, y, steps=cfg.steps, lr=cfg.lr, momentum=cfg.momentum, batch=cfg.batch_train,
                    at=checkpoints(cfg.steps, cfg.n_checkpoints), g=g, on_checkpoint=at, tick=ctx.tick)
    return pd.DataFrame(rows).assign(**point)


def conv_cost(cfg: ConvConfig, device: torch.device) -> dict:
    """--dry-run: every exact path measurement and SGD step, timed on this device on a standardized synthetic pair
    at the configured width (pairs at the shallowest and deepest depth by `pair_seconds`, interpolated in depth)."""
    name = "synthetic-cifar10" if cfg.arch == "vgg" else "synthetic-cifar100"
    (x, y), dt = probe(name, cfg.image_size, device), DTYPES[cfg.dtype]
    x0, x1, g = x[0].to(dt), x[1].to(dt), lambda: torch.Generator().manual_seed(0)  # noqa: E731
    trained = set(cfg.train_depths) if cfg.train else set()
    depths = sorted(set(cfg.depths) | trained)
    ends = sorted({depths[0], depths[-1]})
    fit = {L: pair_seconds(build(cfg, L, name, g(), x).to(dt), x0, x1, grid=cfg.grid, batch=cfg.batch,
                           engine=cfg.engine) for L in ends}
    per_pair = {L: float(np.interp(L, ends, [fit[e][0] for e in ends])) for L in depths}
    n = {L: len(cfg.datasets) * cfg.networks * cfg.pairs_per_net * (L in cfg.depths)
         + (len(checkpoints(cfg.steps, cfg.n_checkpoints)) * cfg.n_pairs if L in trained else 0) for L in depths}
    steps = sum(cfg.steps * step_seconds(build(cfg, L, name, g(), x), x[:cfg.batch_train], y[:cfg.batch_train])
                for L in sorted(trained))
    taus = ", ".join(f"{fit[e][1]:.2g} ({fit[e][2]} nodes)" for e in ends)
    seconds = sum(n[L] * per_pair[L] for L in depths) + steps
    return {"runs": sum(n.values()), "unit": "exact path measurements", "hours": seconds / 3600,
            "basis": f"a standardized synthetic pair at width {cfg.width:g}, timed on a fraction of the path "
                     f"at depths {ends}: {taus}, plus {cfg.steps if cfg.train else 0} SGD steps per trained depth "
                     "timed at the same width"}


def summary(df: pd.DataFrame) -> pd.DataFrame:
    keys = ["part", "dataset", "depth", "step"]
    s = pooled_by(df, keys, prefix="norm_").merge(pooled_by(df, keys), on=keys, suffixes=("", "_raw"))
    extra = df.groupby(keys).agg(K_relu=("K_relu", "mean"), N_relu=("N_relu", "first"),
                                 unresolved=("unresolved", "sum")).reset_index()
    return s.merge(extra, on=keys)


def conv_plot(df: pd.DataFrame, cfg: ConvConfig):
    s = summary(df)
    fig, axes = plotting.subplots(2, 3, figsize=(14, 7.5), squeeze=False)
    init = s[s.part == "init"]
    for i, (name, g) in enumerate(init.groupby("dataset", sort=False)):
        lab = name if name in REAL else f"{name} (stand-in)"
        axes[0, 0].plot(g["depth"], g["K_relu"], "o-", color=f"C{i}", label=lab)
        axes[0, 0].plot(g["depth"], g["N_relu"] / 2, ":", color=f"C{i}", lw=1)
        axes[0, 1].plot(g["depth"], g["ggd_mid"], "o-", color=f"C{i}", label=f"{lab} normalized")
        axes[0, 1].plot(g["depth"], g["ggd_mid_raw"], "x--", color=f"C{i}", lw=1, label=f"{lab} raw")
        axes[0, 2].plot(g["depth"], g["deflection_mid"], "o-", color=f"C{i}", label=f"{lab} normalized")
        axes[0, 2].plot(g["depth"], g["deflection_mid_raw"], "x--", color=f"C{i}", lw=1, label=f"{lab} raw")
    titles = ("(a) nodes K_relu at init (dotted N_relu/2)", "(b) GGD at init", "(c) deflection at init")
    for ax, t in zip(axes[0], titles):
        ax.set(xlabel="layers", title=t, yscale="log")
        ax.legend(fontsize=6)
    tr = s[s.part == "train"]
    for i, (depth, g) in enumerate(tr.groupby("depth")):
        x = np.maximum(g["step"], 0.5)
        for ax, col in zip(axes[1], ("K_relu", "ggd_mid", "deflection_mid")):
            ax.plot(x, g[col], "o-", ms=3, color=f"C{i}", label=f"depth {depth}")
    name = tr["dataset"].iloc[0] if len(tr) else "-"
    titles = ("(d) nodes", "(e) GGD at k = K/2 (normalized)", "(f) deflection at k = K/2 (normalized)")
    for ax, t in zip(axes[1], titles):
        ax.set(xscale="log", xlabel=f"SGD step on {name} (0 drawn at 0.5)", title=t)
        if len(tr):
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "training panels not run\n(--set train=true)", ha="center", va="center",
                    transform=ax.transAxes, color="grey")
    fig.tight_layout()
    return fig


def conv_datasets(cfg: ConvConfig) -> list[str]:
    """The init panels' datasets, and the training dataset only when the training panels run."""
    return [*cfg.datasets, *([cfg.train_dataset] if cfg.train else [])]


_KEYS = ("part", "dataset", "depth", "step")
_SUMS = Sums(_KEYS, tuple(dict.fromkeys(ps.sums_for_claims(_KEYS, "norm_").cols + ps.sums_for_claims(_KEYS).cols
                                        + ("K_relu", "N_relu"))))   # what `summary` pools, per (part, ..., step)


def _pooled(t) -> dict[str, np.ndarray]:
    """`summary`'s columns from claims.Totals of `_SUMS`: normalized pooled statistics, the raw ones (suffix _raw),
    K_relu (mean over pairs) and N_relu, (B, G) each."""
    raw = ps.pooled_for_claims(t)
    return {**ps.pooled_for_claims(t, "norm_"), **{f"{k}_raw": v for k, v in raw.items()},
            "K_relu": t["K_relu"] / t["n"], "N_relu": t["N_relu"] / t["n"]}


def _fraction(t):
    s = _pooled(t)
    return (s["K_relu"] / s["N_relu"]).max(axis=1)


def _linear(t):
    frac = (lambda s: s["K_relu"] / s["N_relu"])(_pooled(t))
    return np.max([frac[:, i].max(axis=1) / frac[:, i].min(axis=1)
                   for i in t.groups.groupby("dataset").indices.values()], axis=0)


def _small_init(col):
    return lambda t: np.fmax.reduce(_pooled(t)[col], axis=1)


def _by_depth(t):
    """Per training depth: its groups' positions in step order."""
    return list(t.groups.groupby("depth").indices.values())


def _nodes_stable(t):
    k = _pooled(t)["K_relu"]
    return np.max([np.abs(np.log(k[:, i[-1]] / k[:, i[0]])) for i in _by_depth(t)], axis=0)


def _small_train(t):
    s = _pooled(t)
    return np.fmax.reduce(np.fmax(s["ggd_mid"], s["deflection_mid"]), axis=1)


def _random_at_end(t):
    s, ends = _pooled(t), [i[-1] for i in _by_depth(t)]
    d, ggd = s["deflection_mid_raw"][:, ends], s["ggd_mid_raw"][:, ends]
    need(bool((d[0] > 0).all() and (ggd[0] > 0).all()), "a final deflection or GGD is 0 (fewer than 2 nodes)")
    return np.where((d > 0) & (ggd > 0), np.abs(np.log(d / ggd)), np.nan).max(axis=1)


def _exact(df):
    return float(df["unresolved"].sum())


def _part(name: str):
    """reduce: the rows of one part (init or train)."""
    def pick(df):
        need((df["part"] == name).any(), f"no {name} rows" + (" (train=false)" if name == "train" else ""))
        return df[df["part"] == name]
    return pick


_C = "SPEC-000-002.md §1.4 000-fig4 [C] (fig5: 'same predicates')"
SMALL = "(an order of magnitude below 1; normalized output, worst depth and dataset)"
_INIT = dict(cells=("dataset", "depth"), reduce=_part("init"), sums=_SUMS)
_TRAIN = dict(cells=("depth",), reduce=_part("train"), sums=_SUMS)
CLAIMS = (
    Claim("a-half", "Nodes are half the hidden units or fewer", _fraction, below(0.55, "(K / N_relu at init)"),
          source=f"{_C} (a): K <= 0.55 N_relu for every depth and dataset ('half of the entire hidden units or "
                 "less')", **_INIT),
    Claim("a-linear", "Nodes grow linearly with depth (K / N_relu roughly constant over depths)", _linear,
          below(2, "(max / min over depths of K / N_relu)"), cells=("dataset",), reduce=_part("init"), sums=_SUMS,
          source=f"{_C} (a): K/N_relu max/min across depths <= 2"),
    Claim("b-small", "Gradient gap deviation << 1 at init", _small_init("ggd_mid"), below(0.1, SMALL),
          source=f"{_C} (b): normalized GGD < 0.1", **_INIT),
    Claim("c-small", "Gradient deflection << 1 at init", _small_init("deflection_mid"), below(0.1, SMALL),
          source=f"{_C} (c): normalized deflection < 0.1", **_INIT),
    Claim("d-stable", "Nodes change little during training", _nodes_stable,
          below(math.log(2), "(= log 2; |log K(T)/K(0)|)"), source=f"{_C} (d): K(T)/K(0) in [0.5, 2]", **_TRAIN),
    Claim("ef-small", "GGD and deflection stay << 1 during training", _small_train, below(0.1, SMALL),
          source=f"{_C} (e, f): < 0.1 throughout", **_TRAIN),
    Claim("end-random", "At the end networks tend to be random between samples (deflection ~ GGD)", _random_at_end,
          below(math.log(1.5), "(= log 1.5; |log(deflection / GGD)| of the raw output at T)"),
          source=f"{_C}: |log(defl/GGD)| at the final checkpoint <= log 1.5 (the spec's second condition, <= its "
                 "value at step 0 + 0.1, is not judged)", **_TRAIN),
    Claim("exact", "Every break point was verified (no unresolved intervals)", _exact,
          below(0, "(unresolved intervals)"), exact=True, kind="check",
          source="derivation: the exact engine settles every interval (SPEC-000-002.md §1.3); K counts only settled "
                 "nodes"),
)


def family_claims(prefix: str) -> tuple[Claim, ...]:
    """The family's claims with ids prefixed by the figure (F4-..., F5-...); units are (network, pair)."""
    return tuple(dataclasses.replace(c, id=f"{prefix}-{c.id}", unit=("net", "pair"),
                                     affects=tuple(f"{prefix}-{a}" for a in c.affects)) for c in CLAIMS)

SMOKE = {"datasets": ("synthetic-mnist", "synthetic-cifar10"), "networks": 1, "pairs_per_net": 1, "width": 1 / 64,
         "grid": 64, "steps": 20, "n_pairs": 1, "n_checkpoints": 1}
