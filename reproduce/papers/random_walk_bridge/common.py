"""Paper 000 shared pieces: data and preprocessing, input pairs, the plain MLP, SGD with checkpoints, pair rows."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ... import datasets as data_mod
from ...config import ReproError, setting
from ...core.timing import seconds
from . import path_stats as ps
from .piecewise import PLReLU

PAPER = "random-walk-bridge"
SHAPES = {"mnist": (1, 28, 28, 10), "cifar10": (3, 32, 32, 10), "cifar100": (3, 32, 32, 100)}
REAL = tuple(SHAPES)
SYNTHETIC = tuple(f"synthetic-{n}" for n in SHAPES)
PREPROCESS = ("pixel_standardize", "standardize", "pixel_center", "raw01", "authors")


@dataclass(frozen=True)
class DataSettings:
    preprocess: str = setting("pixel_standardize", stated=False, choices=PREPROCESS,
                              help="pixel_standardize: per-pixel train mean/std (the authors' code); "
                                   "standardize: per-channel train mean/std; pixel_center: per-pixel mean removed; "
                                   "raw01: pixels in [0,1]; authors: 28x28 (antialiased bicubic for their Lanczos), "
                                   "per-pixel standardization, then ||x|| = sqrt(D)")
    pairs_from: str = setting("train", stated=True, choices=("train", "test"),
                              help="where X0, X1 are drawn (SPEC-000-002.md §1.5, E3)")
    pair_type: str = setting("random", stated=False, choices=("random", "same_class"),
                             help="random: X0 != X1 uniformly (SPEC-000-002.md D5); same_class: the authors' code")


def synthetic(name: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A labelled stand-in with the real shape (core.data.synthetic)."""
    c_, h, w, c = SHAPES[name.removeprefix("synthetic-")]
    return data_mod.synthetic((c_, h, w), c, n, seed)


def probe(name: str, image_size: int, device: torch.device, n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardized synthetic stand-in images for timing (--dry-run): on ReLU nets they give node counts like real
    standardized images (VGG-11 at width 1/16: 5119 vs 5986 on a CIFAR-10 pair); unstandardized ones far fewer."""
    x, y = synthetic("synthetic-" + name.removeprefix("synthetic-"), n, 0)
    return resize(preprocess(x, x, "standardize"), image_size).to(device), y.to(device)


def load(name: str, root, train: bool, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, C, H, W) float32 in [0, 1] and labels, real or synthetic."""
    if name.startswith("synthetic-"):
        return synthetic(name, 2000 if train else 500, seed + (0 if train else 1))
    x, y = data_mod.load(name, root, train)
    return x.float().div_(255), y


def preprocess(x: torch.Tensor, ref: torch.Tensor, how: str) -> torch.Tensor:
    """Apply `how` to x with statistics from the training images ref (both (N, C, H, W) in [0, 1])."""
    if how == "raw01":
        return x
    if how == "pixel_center":
        return x - ref.mean(0, keepdim=True)
    if how == "standardize":
        return (x - ref.mean((0, 2, 3), keepdim=True)) / ref.std((0, 2, 3), keepdim=True)
    if how == "pixel_standardize":   # the authors' per-pixel statistics (+1e-5: MNIST's border pixels are constant)
        return (x - ref.mean(0, keepdim=True)) / (ref.std(0, keepdim=True) + 1e-5)
    if x.shape[-1] != 28:  # authors: 28 x 28, per-pixel standardization, then ||x|| = sqrt(D)
        x, ref = (torch.nn.functional.interpolate(t, size=(28, 28), mode="bicubic", antialias=True) for t in (x, ref))
    x = (x - ref.mean(0, keepdim=True)) / (ref.std(0, keepdim=True) + 1e-5)
    return x * math.sqrt(x[0].numel()) / x.flatten(1).norm(dim=1).view(-1, 1, 1, 1)


@functools.lru_cache(maxsize=1)   # grid points of one figure share the loaded, preprocessed split (read-only)
def data(name: str, cfg: DataSettings, root, seed: int = 0):
    """Preprocessed train split (x, y) and the split pairs come from, float32.

    gaussian: N(0, I) 'images' (1, 28, 28)."""
    if name == "gaussian":
        g = torch.Generator().manual_seed(seed)
        x, y = torch.randn(4000, 1, 28, 28, generator=g), torch.randint(0, 10, (4000,), generator=g)
        return (x, y), (x, y)
    xtr, ytr = load(name, root, True, seed)
    out_tr = (preprocess(xtr, xtr, cfg.preprocess), ytr)
    if cfg.pairs_from == "train":
        return out_tr, out_tr
    xte, yte = load(name, root, False, seed)
    return out_tr, (preprocess(xte, xtr, cfg.preprocess), yte)


def spread(n_total: int, n: int) -> torch.Tensor:
    """n fixed indices over the whole split (a seed-0 permutation's first n): the CIFAR folders load class by class,
    so x[:n] would hold one or two classes (BN calibration, training accuracy)."""
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(0))[:min(n, n_total)]


def pairs(y: torch.Tensor, n: int, kind: str, g: torch.Generator) -> torch.Tensor:
    """(n, 2) index pairs with i != j; same_class draws both from one uniformly chosen class."""
    out = []
    while len(out) < n:
        i = int(torch.randint(len(y), (1,), generator=g))
        pool = torch.nonzero(y == y[i])[:, 0] if kind == "same_class" else None
        j = int(pool[torch.randint(len(pool), (1,), generator=g)]) if pool is not None else int(torch.randint(len(y),
        (1,), generator=g))
        if i != j:
            out.append((i, j))
    return torch.tensor(out)


def mlp(d: int, m: int, c: int, depth: int = 2, *, generator: torch.Generator, dtype=torch.float64) -> nn.Sequential:
    """SPEC-000-002.md D1/D3: bias-free ReLU MLP, depth - 1 hidden layers of width m, He init N(0, 2/fan_in)."""
    dims, layers = [d] + [m] * (depth - 1), []
    for a, b in zip(dims, dims[1:]):
        layers += [nn.Linear(a, b, bias=False), PLReLU()]
    layers.append(nn.Linear(dims[-1], c, bias=False))
    net = nn.Sequential(nn.Flatten(), *layers).to(dtype)
    with torch.no_grad():
        for mod in net:
            if isinstance(mod, nn.Linear):
                mod.weight.normal_(0, math.sqrt(2 / mod.in_features), generator=generator)
    return net


def checkpoints(steps: int, n: int = 10) -> list[int]:
    """0, then log-spaced steps up to `steps`."""
    return sorted({0, steps, *(np.unique(np.geomspace(1, steps, n).astype(int)).tolist() if steps else [])})


def sgd_checkpoints(net: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int, lr: float, momentum: float,
                    batch: int, at: list[int], g: torch.Generator, on_checkpoint, tick=None) -> None:
    """Plain minibatch SGD (+ momentum) on softmax cross-entropy; calls on_checkpoint(step, net) at the steps `at`."""
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    bad = None   # any non-finite loss so far, on the device: read back at checkpoints only (no sync per step)
    for step in range(steps + 1):
        if (step in at or step == steps) and bad is not None and bool(bad):
            raise ReproError(f"training diverged before step {step} (lr {lr}); lower the learning rate")
        if step in at:
            net.eval()
            with torch.no_grad():
                on_checkpoint(step, net)
        if step == steps:
            break
        net.train()
        idx = torch.randint(len(y), (batch,), generator=g)
        loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
        bad = ~torch.isfinite(loss.detach()) if bad is None else bad | ~torch.isfinite(loss.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if tick is not None and (step + 1) % 500 == 0:
            tick(f"SGD step {step + 1}")


def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 4096) -> float:
    with torch.no_grad():
        hits = sum(int((net(x[i:i + chunk]).argmax(1) == y[i:i + chunk]).sum()) for i in range(0, len(y), chunk))
    return hits / len(y)


def pooled_by(df: pd.DataFrame, keys: list[str], prefix: str = "") -> pd.DataFrame:
    """SPEC-000-002.md D10/D11 pooled over the pair rows of each group: one row per group with K_mean, sigma, ggd_mid,
    deflections."""
    cols = {"K": "K", "c": "c", "gap_sq": f"{prefix}gap_sq", "gap_sum": f"{prefix}gap_sum",
            **{f"defl_{k}_sq": f"{prefix}defl_{k}_sq" for k in ("mid", "index", "half")}}
    out = []
    for key, g in df.groupby(keys):
        out.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,))),
                    **ps.pooled(g[list(cols.values())].rename(columns={v: k for k, v in cols.items()}))})
    return pd.DataFrame(out)


def stats_from(t: torch.Tensor, R: torch.Tensor, f_mid: torch.Tensor, f_nodes: torch.Tensor, f_ends: torch.Tensor,
               norm: str = "unit") -> dict:
    """Raw and normalized (SPEC-000-002.md D12) pair statistics from nodes t (K,), slopes R (K+1, c) and f at
    mids/nodes/ends."""
    if norm == "unit":
        rn, gaps = ps.normalize_slopes(f_mid, R), ps.normalize_slopes(f_nodes, R[1:] - R[:-1])
    else:
        scale = f_ends.norm(dim=1).mean()
        rn, gaps = R / scale, (R[1:] - R[:-1]) / scale
    raw, normed = ps.pair_stats(t, R), ps.pair_stats(t, rn, gaps=gaps)
    return {**raw, **{f"norm_{k}": v for k, v in normed.items() if k not in ("K", "c")}}


ENGINES = ("layerwise", "bisect", "walk")
ENGINE_HELP = ("exact break points: layerwise (fast; bisect for a model without a plan), bisect (verified batched "
               "bisection) or walk (region walk); all three give the same nodes")


def find_nodes(net: nn.Module, x0: torch.Tensor, x1: torch.Tensor, *, engine: str = "layerwise", grid: int = 256,
               batch: int = 128):
    """Every break point of net on x0 -> x1 by `engine` (ENGINES); `batch` is the layerwise chunk too."""
    from . import breakpoints as bp
    from . import layerwise as lw
    if engine == "layerwise" and lw.plannable(net):
        return lw.layerwise(net, x0, x1, chunk=batch)
    if engine == "walk":
        return bp.region_walk(net, x0, x1)
    return bp.bisect(net, x0, x1, grid=grid, batch=batch)


def exact_path(net: nn.Module, x0: torch.Tensor, x1: torch.Tensor, *, grid: int, batch: int,
               engine: str = "layerwise"):
    """Exact nodes (`find_nodes`) and, on the host in float64, the slopes R (K+1, c), outputs at the interval
    midpoints (K+1, c), at the nodes (K, c) and at the ends (2, c): from the engine where it carried them
    (layerwise), else by the jvp pass (`breakpoints.slopes`)."""
    from . import breakpoints as bp
    nodes = find_nodes(net, x0, x1, engine=engine, grid=grid, batch=batch)
    if nodes.R is None:
        s = bp.slopes(net, x0, x1, nodes.t, batch=batch)
    else:   # only the two ends remain
        with torch.no_grad():
            s = {"R": nodes.R, "f_mid": nodes.f_mid, "f_nodes": nodes.f, "f_ends": net(torch.stack([x0, x1]))}
    return nodes, {k: v.double().cpu() for k, v in s.items()}


def measure_path(net: nn.Module, x0: torch.Tensor, x1: torch.Tensor, *, grid: int, batch: int,
                 norm: str = "unit", engine: str = "layerwise") -> dict:
    """`exact_path` and `stats_from`. K counts every slope change, K_relu the ReLU ones."""
    nodes, s = exact_path(net, x0, x1, grid=grid, batch=batch, engine=engine)
    return {"K_relu": int(nodes.relu.sum()), "unresolved": nodes.unresolved,
            **stats_from(nodes.t, s["R"], s["f_mid"], s["f_nodes"], s["f_ends"], norm)}


def step_seconds(net: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 3) -> float:
    """Seconds per SGD step (momentum 0.9) of net on the batch (x, y), after one warm-up step; changes net."""
    opt = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net.train()(x), y).backward()
        opt.step()
    step()
    return seconds(lambda: [step() for _ in range(steps)], x.device) / steps


def pieces(x0: torch.Tensor, x1: torch.Tensor, tau: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Two pieces of the path x0 -> x1 around t = 1/4 and 3/4, each of length tau/2 (tau = 1: the two halves)."""
    return [(x0 + (c - tau / 4) * (x1 - x0), x0 + (c + tau / 4) * (x1 - x0)) for c in (0.25, 0.75)]


def pair_seconds(net: nn.Module, x0: torch.Tensor, x1: torch.Tensor, *, grid: int, batch: int, budget: float = 5.0,
                 min_nodes: int = 32, engine: str = "layerwise") -> tuple[float, float, int]:
    """Seconds of one exact path measurement (nodes and slopes) of net on x0 -> x1, at its own width: timed on the
    `pieces` covering a fraction tau of the path, tau doubling from 2^-16 until they take `budget` seconds and hold
    `min_nodes` nodes (or cover the whole path, or take 8 budgets), then scaled by 1/tau (nodes are spread along the
    path). Returns (seconds, tau, nodes in the pieces)."""
    tau, found = 2.0 ** -16, [0]

    def measure() -> None:
        found[0] = 0
        for a, b in pieces(x0, x1, tau):
            found[0] += len(exact_path(net, a, b, engine=engine, grid=max(2, round(grid * tau / 2)),
                                       batch=batch)[0].t)
    while True:
        t = seconds(measure, x0.device)
        if (t >= budget and found[0] >= min_nodes) or tau >= 1 or t >= 8 * budget:
            return t / tau, tau, found[0]
        tau = min(1.0, 2 * tau)


def on(device: torch.device, *ts: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The tensors moved to the run's device (data is loaded and cached on the host)."""
    return tuple(t.to(device) for t in ts)


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Images to size x size (antialiased bilinear); a no-op at their own size."""
    return x if x.shape[-1] == size else torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                                                           antialias=True)
