"""What both figures share: the data on the sphere, the GD/Adam protocol, and the batched training sweep."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ...config import setting
from . import model as sr

PAPER = "skip-resnet-gd"


@dataclass(frozen=True)
class Settings:
    """Data, GD protocol and precision shared by both figures."""
    d: int = setting(10, stated=False, help="input dimension; x ~ Uniform(S^{d-1})")
    n_train: int = setting(100, stated=False, help="training samples")
    n_test: int = setting(10_000, stated=False, size=True, help="fresh samples for the test error")
    data_seed: int = setting(0, stated=False, help="one train/test draw for every run")
    steps: int = setting(20_000, stated=False, size=True, help="full-batch GD iterations")
    seeds: int = setting(5, stated=False, size=True, help="init seeds per depth and step size (the claims' units)")
    lr_grid: tuple[float, ...] = setting((1.25, 2.5, 5.0, 10.0), stated=False, size=True,
                                         help="step sizes c / L; the one with the lowest mean final test error "
                                              "of nn is kept for both models (the paper tunes on test)")
    tie_floor: float = setting(1e-24, stated=False,
                               help="final test errors below this count as equal when the step size is picked: "
                                    "float64 round-off of (1/2)(f - y)^2 is ~(eps |y|)^2 ~ 1e-33, so values below "
                                    "1e-24 (predictions exact to ~1e-12) are at the floor")
    n_evals: int = setting(40, stated=False, size=True, help="log-spaced evaluation steps")
    dtype: str = setting("float64", stated=False, choices=("float64",), help="compute precision (float64 throughout)")


def sphere(n: int, d: int, g: torch.Generator) -> torch.Tensor:
    """n points uniform on S^{d-1}: (n, d)."""
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    return x / x.norm(dim=1, keepdim=True)


def data(cfg: Settings, g: torch.Generator) -> tuple[torch.Tensor, ...]:
    """x_train (n, d), y_train (n,), x_test, y_test; y = max(x_1, 0); drawn from `g` (CPU)."""
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


def init(cfg: Settings, depth: int, gens: list[torch.Generator]) -> tuple[torch.Tensor, torch.Tensor]:
    """U = 0, V ~ N(0, 1) (m = 1), one CPU generator per seed so nn and rf share V: (seeds, L-1, d+1) each."""
    vs = [torch.randn(depth - 1, cfg.d + 1, generator=g, dtype=torch.float64) for g in gens]
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
    out, want, any_adam = [], set(evals), bool(adam.any())   # read once, not per step
    for t in range(steps + 1):
        f, saved = sr.forward(U, V, xtr)
        loss = ((f - ytr) ** 2).sum(-1) / (2 * n)
        if t in want:
            out.append({"step": t, "train": loss.clone(), "test": risk(U, V, xte, yte),
                        "path_norm": sr.path_norm(U, V)})
        if t == steps:
            break
        du, dv = sr.backward(U, V, saved, (f - ytr) / n)
        if pen is not None:
            _, pu, pv = sr.path_norm(U, V, grad=True)
            du, dv = du + pen * pu, dv + pen * pv
        if any_adam:
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


def pick_lr(final: pd.DataFrame, floor: float) -> float:
    """The step size (lr_c) kept for one depth, from its finite runs' final test errors (columns lr_c, value).

    The paper tunes on test error; a choice decided by round-off is not a choice, so every lr_c whose mean lies
    within one standard error of the best mean (Breiman's one-SE rule, with the best one's SE), or below `floor`
    when the best does too, ties with it; among ties the one with the most finite runs wins, then the largest lr_c.
    """
    g = final.groupby("lr_c")["value"]
    stats = pd.DataFrame({"mean": g.mean(), "se": g.sem().fillna(0.0), "n": g.size()})
    best = stats["mean"].idxmin()
    top = stats.loc[best, "mean"] + stats.loc[best, "se"]
    tied = stats[(stats["mean"] <= top) | ((stats["mean"] < floor) & (stats.loc[best, "mean"] < floor))]
    return float(max(tied.index, key=lambda c: (tied.loc[c, "n"], c)))


def sweep(cfg: Settings, depths, runs: list[dict], evals: list[int], ctx) -> pd.DataFrame:
    """Train every run {depth, kind, model, lr_c, seed} in one batch (padded to the deepest); tidy rows.

    kind "unregularized" is GD at lr = lr_c / L; "regularized" is Adam on the path-norm objective. The lr_c
    with the lowest mean final nn test error, ties broken by `pick_lr`, is marked `chosen` per depth (the paper
    tunes on test error).
    """
    dev = ctx.device
    cpu = torch.device("cpu")   # data and inits are drawn on the host, then moved
    xtr, ytr, xte, yte = (t.to(dev) for t in data(cfg, ctx.rng("data", device=cpu, per_point=False,
                                                                  data_seed=cfg.data_seed)))
    k = max(depths) - 1
    pad = lambda t, L: torch.nn.functional.pad(t, (0, 0, 0, k - (L - 1)))  # noqa: E731  blocks on top
    inits = {L: [pad(t, L) for t in init(cfg, L, [ctx.rng("init", device=cpu, per_point=False, run=s)
                                                   for s in range(cfg.seeds)])] for L in depths}
    U = torch.stack([inits[r["depth"]][0][r["seed"]] for r in runs]).to(dev)
    V = torch.stack([inits[r["depth"]][1][r["seed"]] for r in runs]).to(dev)
    reg = torch.tensor([r["kind"] == "regularized" for r in runs], device=dev)
    lr = torch.tensor([cfg.adam_lr if r["kind"] == "regularized" else r["lr_c"] / r["depth"] for r in runs],
                      dtype=torch.float64, device=dev)
    recs = train(U, V, xtr, ytr, xte, yte, steps=cfg.steps, evals=evals, lr=lr, adam=reg,
                 train_v=torch.tensor([r["model"] == "nn" for r in runs],
                                      device=dev), lam=reg * getattr(cfg, "lam", 0.0),
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
    pick = {L: pick_lr(g, cfg.tie_floor) for L, g in final.groupby("depth")}
    return df.assign(chosen=[kind == "regularized" or pick.get(L) == c for L, kind,
                             c in zip(df.depth, df.kind, df.lr_c)])


def _final(df: pd.DataFrame, quantity: str, **where) -> pd.DataFrame:
    sel = df[df.chosen & ~df.diverged & (df.quantity == quantity) & (df.step == df.step.max())]
    for k, v in where.items():
        sel = sel[sel[k] == v]
    return sel
