"""The family of Figs 5 (fig5.py, depth) and 6 (fig6.py, width): MLP-beta-l on MNIST.

Identity / tanh activations, Glorot / LeCun init, depth and width sweeps.

Every (activation, init, lr, run) of one (depth, width) trains in one stacked model (core.stacked_mlp), which
is exactly independent training; 1000 (paper) minibatch pairs measure gradient confusion at the end.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch

from ... import datasets as data_mod
from ... import plotting
from ...claims import Claim, above, below, need
from ...config import setting
from ...core.timing import measure
from ...plotting import band, int_ticks, log_y
from . import confusion as conf
from . import sgd as sgd_mod
from . import stacked_mlp
from .common import lean, point_stats, rho_bound, rho_measure, select, summary_rows, sweep_axis

KEYS = ["act", "init", "depth", "width"]
PAPER_LRS = (1.0, 0.1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


@dataclass(frozen=True)
class MlpConfig:
    dataset: str = setting("mnist", stated=True, size=True, choices=("mnist", "synthetic-mnist"),
                           help="MNIST; synthetic-mnist is a labelled stand-in of the same shape (smoke only)")
    acts: tuple[str, ...] = setting(("identity", "tanh"), stated=True, choices=("identity", "tanh"),
                                    help="hidden activation (linear NN or tanh)")
    inits: tuple[str, ...] = setting(("glorot", "lecun"), stated=True, choices=("glorot", "lecun"),
                                     help="Glorot N(0, 2/(fan_in+fan_out)) or LeCun N(0, 1/fan_in), plain normal")
    depths: tuple[int, ...] = setting((3, 10, 30, 100), stated=True, size=True,
                                      help="beta hidden layers (paper 3..1000; default stops at 100 for a 2-core CPU)")
    widths: tuple[int, ...] = setting((100,), stated=True, size=True, help="l units per hidden layer")
    lrs: tuple[float, ...] = setting((1e-4, 1e-3, 1e-2, 1e-1, 1.0), stated=True, size=True,
                                     help="lr grid; default: the paper's five values 1e-4 ... 1 (1e-5 and 1e-6 are "
                                          "never selected; with 1e-3 ... 0.1 half the points sat at an edge)")
    runs: int = setting(3, stated=True, size=True,
                        help="independent runs per (model, lr): the claims' units (3 is the fewest that can be judged)")
    steps: int = setting(2000, stated=True, size=True, help="SGD iterations at constant lr (paper 40000)")
    pairs: int = setting(200, stated=True, size=True, help="minibatch pairs measured at the end (paper 1000)")
    batch: int = setting(128, stated=True, help="SGD and measurement batch size")
    train_size: int = setting(40000, stated=True, size=True, help="training split (fixed permutation, seed 0)")
    valid_frac: float = setting(0.8, stated=True, help="an lr needs this fraction of its runs valid (8 of 10)")
    stack: int = setting(64, stated=False, size=True, help="most runs trained together in one stacked model")
    rho_slack: float = setting(0.2, stated=True, size=True, low=0,
                               help="rank-correlation bounds moved this far towards 0 "
                                    "(0.2 at reduced scale, SPEC-003-004.md §A.8)")


def mnist(cfg: MlpConfig, root, device, subset_seed: int) -> tuple[torch.Tensor, ...]:
    """(x_train (N, 784), y_train, x_test, y_test) on device: x/255, standardised with the training split's stats."""
    if cfg.dataset == "synthetic-mnist":
        x, y = data_mod.synthetic((1, 28, 28), 10, 3000, 0)
        xt, yt = data_mod.synthetic((1, 28, 28), 10, 500, 1)
    else:
        x, y = data_mod.to_device("mnist", root, torch.device("cpu"))
        xt, yt = data_mod.to_device("mnist", root, torch.device("cpu"), train=False)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(subset_seed))[:cfg.train_size]
    x, y = x[perm].reshape(len(perm), -1), y[perm]
    mean, std = x.mean(), x.std()
    return tuple(t.to(device) for t in ((x - mean) / std, y, (xt.reshape(len(xt), -1) - mean) / std, yt))


def _grads(params, x, y, tanh) -> tuple[torch.Tensor, ...]:
    """Per-run gradients of per-run losses on per-run batches x (R, B, 784), one per stacked parameter: (R, ...)."""
    return torch.autograd.grad(stacked_mlp.losses(params, x, y, tanh).sum(), params)


def _train_stack(cfg: MlpConfig, runs: list[dict], depth: int, width: int, data, ctx) -> list[dict]:
    x, y, xt, yt = data
    dev, n, r = x.device, len(x), len(runs)
    params = stacked_mlp.init(depth, width, [s["init"] for s in runs], [s["init_seed"] for s in runs], device=dev)
    tanh = torch.tensor([s["act"] == "tanh" for s in runs], device=dev)
    lr = torch.tensor([s["lr"] for s in runs], device=dev)
    gens = [torch.Generator(device=dev).manual_seed(s["data_seed"]) for s in runs]
    ref = torch.arange(min(n, 2000), device=dev).expand(r, -1)

    def full(xs, ys, what="loss"):
        with torch.no_grad():
            out = []
            for c in torch.arange(len(xs), device=dev).split(2000):
                logits = stacked_mlp.forward(params, xs[c].expand(r, -1, -1), tanh)
                out.append(torch.nn.functional.cross_entropy(logits.transpose(1, 2), ys[c].expand(r, -1),
                                                             reduction="none").sum(1) if what == "loss"
                           else (logits.argmax(-1) == ys[c]).sum(1).float())
            return torch.stack(out).sum(0) / len(xs)

    with torch.no_grad():
        init_loss = stacked_mlp.losses(params, x[ref], y[ref], tanh)
    history, alive = sgd_mod.sgd(params, lambda idx: stacked_mlp.losses(params, x[idx], y[idx], tanh), lr,
                                 n=n, batch=cfg.batch, steps=cfg.steps, gens=gens, init_loss=init_loss, stacked=True,
                                 drops=(), tick=lambda s: ctx.tick(f"depth {depth} width {width}: step {s}"))
    mg = [torch.Generator().manual_seed(s["measure_seed"]) for s in runs]
    cos = []
    for _ in range(cfg.pairs):
        idx = torch.stack([torch.randperm(n, generator=g)[:2 * cfg.batch] for g in mg]).to(dev)
        a, b = idx[:, :cfg.batch], idx[:, cfg.batch:]
        cos.append(conf.cosines(_grads(params, x[a], y[a], tanh), _grads(params, x[b], y[b], tanh)))
    cos = torch.stack(cos, 1).cpu()                                          # (R, pairs)
    scalars = {"init_loss": init_loss, "final_loss": history[-1], "train_loss_full": full(x, y),
               "test_acc": full(xt, yt, "acc"), "alive": alive.float()}
    rows, last = [], len(history)
    for k, s in enumerate(runs):
        base = {"act": s["act"], "init": s["init"], "depth": depth, "width": width, "lr": s["lr"], "run": s["run"]}
        rows += [{**base, "epoch": last, "quantity": q, "value": float(v[k])} for q, v in scalars.items()]
        rows += [{**base, "epoch": e + 1, "quantity": "loss", "value": float(history[e, k])} for e in range(last)]
        rows += [{**base, **row} for row in summary_rows(cos[k], last)]
        rows += [{**base, "epoch": last, "quantity": "cos_end", "value": float(c)} for c in cos[k]]
    return rows


def mlp_grid(cfg: MlpConfig) -> list[dict]:
    return [{"depth": d, "width": w} for d in cfg.depths for w in cfg.widths]


def mlp_compute(cfg: MlpConfig, point: dict, ctx) -> pd.DataFrame:
    """Train every (act, init, lr, run) of MLP-depth-width, stacked in chunks of cfg.stack; one row per quantity."""
    depth, width = point["depth"], point["width"]
    data = mnist(cfg, ctx.data_root, ctx.device, ctx.seed_for("train-subset", per_point=False))
    runs = []
    for r in range(cfg.runs):   # run r: one init draw (scaled per rule), one data order, one pair sample
        seeds = {k: ctx.seed_for(k, run=r) for k in ("init_seed", "data_seed", "measure_seed")}
        runs += [{"act": a, "init": i, "lr": lr, "run": r, **seeds}
                 for a in cfg.acts for i in cfg.inits for lr in cfg.lrs]
    rows = []
    for c in range(0, len(runs), cfg.stack):
        rows += _train_stack(cfg, runs[c:c + cfg.stack], depth, width, data, ctx)
    return pd.DataFrame(rows).assign(valid_frac=cfg.valid_frac, rho_slack=cfg.rho_slack,
                                     dataset=cfg.dataset)


def _step_seconds(depth: int, width: int, runs: int, device: torch.device, steps: int = 3) -> float:
    """Measured seconds of one stacked SGD step (forward + backward + update) of `runs` MLP-depth-width."""
    params = stacked_mlp.init(depth, width, ["glorot"] * runs, list(range(runs)), device=device)
    x = torch.randn(runs, 128, 784, device=device)
    y = torch.randint(0, 10, (runs, 128), device=device)
    tanh = torch.ones(runs, dtype=torch.bool, device=device)

    def step():
        grads = torch.autograd.grad(stacked_mlp.losses(params, x, y, tanh).sum(), params)
        with torch.no_grad():
            torch._foreach_add_(params, grads, alpha=-1e-3)
    return measure(step, device, steps)[0]


def mlp_cost(cfg: MlpConfig, device: torch.device) -> dict:
    """Device-hours from two measured stacked steps: per layer a + b * width^2 (launch-bound + flop-bound)."""
    per_point = len(cfg.acts) * len(cfg.inits) * len(cfg.lrs) * cfg.runs
    r = min(cfg.stack, per_point)
    small, big = _step_seconds(8, 8, r, device) / 9, _step_seconds(8, 256, r, device) / 9
    b = max(big - small, 0.0) / 256 ** 2
    sec = sum(math.ceil(per_point / r) * (p["depth"] + 1) * (small + b * p["width"] ** 2) * (cfg.steps + 2 * cfg.pairs)
              for p in mlp_grid(cfg))
    return {"runs": per_point * len(mlp_grid(cfg)), "hours": sec / 3600,
            "basis": f"stacked steps of {r} runs timed at widths 8 and 256 (per layer {small * 1e3:.2g} ms + "
                     f"{b * 1e9:.2g} ns x width^2)"}


def mlp_memory(cfg: MlpConfig) -> tuple[int, str]:
    """Peak bytes of the largest point, reached at the cosine measurement: per stacked run the parameters and two
    float32 gradients (12 bytes per parameter), plus float64 copies of the largest tensor's two gradients and their
    product (the reduction goes one tensor at a time); plus the training activations and the data. A point the
    device cannot hold is refused before it trains."""
    depth, width = max(cfg.depths), max(cfg.widths)
    r = min(cfg.stack, len(cfg.acts) * len(cfg.inits) * len(cfg.lrs) * cfg.runs)
    params = 784 * width + (depth - 1) * width ** 2 + 10 * width + depth * width + 10
    largest = max(784, width) * width
    activations = 3 * 4 * cfg.batch * depth * width * r
    data = 4 * 784 * (cfg.train_size + 10000)
    return (12 * r * params + 24 * r * largest + activations + data,
            f"{r} stacked MLP-{depth}-{width} runs of {params:,} parameters and their gradients; --set stack=N "
            "stacks fewer")


def mlp_plot(df: pd.DataFrame, cfg: MlpConfig):
    x = sweep_axis(df)
    p = point_stats(df, KEYS)
    combos = [(a, i) for a in ("identity", "tanh") for i in ("glorot", "lecun") if ((p.act == a) & (p.init == i)).any()]
    fig, axes = plotting.subplots(2, len(combos), figsize=(3.6 * len(combos), 6.4), squeeze=False)
    stand_in = " [synthetic stand-in]" if str(df["dataset"].iloc[0]).startswith("synthetic") else ""
    other = "width" if x == "depth" else "depth"
    for j, (a, i) in enumerate(combos):
        s = p[(p.act == a) & (p.init == i)].sort_values(x)
        band(axes[0, j], s[x], s["loss_shown"], s["loss_std"], "selected lr", f"C{j}", hollow=~s["trainable"])
        for xv, yv, lr in zip(s[x], s["loss_shown"], s["lr"]):
            axes[0, j].annotate(f"lr {lr:g}", (xv, yv), textcoords="offset points", xytext=(4, -10), fontsize=6)
        band(axes[1, j], s[x], s["min_cos"], s["min_cos_std"], "selected lr", f"C{j}", hollow=~s["trainable"])
        name = "linear" if a == "identity" else "tanh"
        log_y(axes[0, j])
        axes[0, j].set(xscale="log", title=f"{name}, {i.capitalize()}: final training loss",
                       ylabel="final training loss")
        axes[1, j].set(xscale="log", xlabel=f"network {x}" + (" beta" if x == "depth" else " l"),
                       ylabel="min pairwise gradient cosine", title=f"{name}, {i.capitalize()}: min cosine")
        for ax in axes[:, j]:
            int_ticks(ax, s[x])
    fixed = [int(v) for v in sorted(df[other].unique())]
    fig.suptitle(f"MLP on MNIST{stand_in}: {x} sweep at {other} {fixed}; mean ± std over valid runs of the selected lr;"
                 " open marker = untrainable (initial loss shown)", fontsize=9)
    fig.tight_layout()
    return fig


def _untrainable(at: int):
    def measure(df):
        x = sweep_axis(df)
        p = point_stats(df, KEYS)
        p = p[(p.act == "tanh") & (p[x] == at)]
        need(len(p) > 0, f"needs tanh at {x} = {at}")
        return float(p["loss_shown"].min())
    return measure


def _lr_edge(df):
    sel = select(df, KEYS)
    need(df["lr"].nunique() > 2, "needs an lr grid of 3 or more")
    return float(sel["lr_edge"].sum())


def family_claims(x: str, sign: int, hard_at: int) -> tuple[Claim, ...]:
    out, run = [], dict(unit=("run",), reduce=lambda df: lean(df, KEYS))
    spec = f"SPEC-003-004.md §A.5 Fig. {5 if x == 'depth' else 6}"
    slack = "; at the default preset the rho bound moves 0.2 towards 0 (SPEC-003-004.md §A.8 predicate scales)"
    for a in ("identity", "tanh"):
        for i in ("glorot", "lecun"):
            tag, where = f"{'linear' if a == 'identity' else 'tanh'}-{i}", {"act": a, "init": i}
            more = "deeper" if x == "depth" else "narrower"
            rel = "<=" if sign > 0 else ">="
            out.append(Claim(f"a-mincos-{tag}", f"{tag}: {more} -> more negative min gradient cosine",
                             rho_measure(KEYS, None, "min_cos", where), rho_bound(-0.8 * sign),
                             source=f"{spec} `a`: per (act, init) rho({x}, mean min-cos) {rel} "
                                    f"{-0.8 * sign:g}{slack}",
                             **run))
            rel = ">=" if sign > 0 else "<="
            out.append(Claim(f"b-loss-{tag}", f"{tag}: {more} -> higher final training loss",
                             rho_measure(KEYS, None, "loss", where), rho_bound(0.8 * sign),
                             source=f"{spec} `b`: per (act, init) rho({x}, final loss) {rel} {0.8 * sign:g}{slack}",
                             **run))
    out.append(Claim("c-tanh-untrainable", f"tanh MLP at {x} {hard_at} is effectively untrainable",
                     _untrainable(hard_at), above(0.5 * math.log(10), f"(= 0.5 ln 10; final loss of tanh at {x} "
                                                                       f"{hard_at}, better init)"),
                     source=f"{spec} `c`: tanh at {x} {hard_at} final loss >= 0.5 ln 10", **run))
    out.append(Claim("LR-edge", "the selected lr is never at the edge of the grid (our lr search)", _lr_edge,
                     below(0, "(points whose selected lr is the grid's smallest or largest)"), exact=True,
                     kind="check", source="derivation: a best lr at the grid's edge may lie outside it, so the point's "
                                          "'optimal' loss is not the optimum (SPEC-003-004.md §A.4: best lr per "
                                          "point)"))
    return tuple(out)

SMOKE = {"dataset": "synthetic-mnist", "steps": 60, "runs": 2, "lrs": (0.01, 0.1), "pairs": 10, "train_size": 2000}
PAPER_SIZES = {"lrs": PAPER_LRS, "runs": 10, "steps": 40000, "pairs": 1000, "rho_slack": 0.0, "stack": 16}
