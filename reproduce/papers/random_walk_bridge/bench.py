"""`repro bench bridge`: exact nodes on one VGG-11 path at init.

Region walk vs verified bisection vs the authors' 1000-point grid."""
from __future__ import annotations

import pandas as pd
import torch

from ... import datasets as data_mod
from ...core.timing import measure
from ...registry import register_bench
from . import breakpoints as bp
from .common import DataSettings, data, pairs, spread
from .models import make
from .piecewise import relu_count

SIZES = (16, 8)   # VGG-11 channel divisors on CPU (1 = the full 64..512 widths; GPU)


def bench(device: torch.device, sizes: tuple[int, ...] | None = None, repeats: int = 1) -> pd.DataFrame:
    """One CIFAR-10 pair (synthetic stand-in without the data) per size; float64; nodes, wall time, grid misses."""
    root = data_mod.data_root()
    name = "cifar10" if data_mod.locate("cifar10", root) else "synthetic-cifar10"
    (x, y), _ = data(name, DataSettings(), root)
    g = torch.Generator().manual_seed(0)
    i, j = pairs(y, 1, "random", g)[0].tolist()
    rows = []
    for div in sizes or ((1,) if device.type == "cuda" else SIZES):
        net = make("vgg", 11, name, torch.Generator().manual_seed(div), x[spread(len(y), 500)],
                   width=1 / div).double().to(device)
        x0, x1 = x[i].double().to(device), x[j].double().to(device)
        n_relu = relu_count(net, x0[None])
        engines = {"bisection": lambda: bp.bisect(net, x0, x1, grid=256, batch=128),
                   "region walk": lambda: bp.region_walk(net, x0, x1),
                   "grid 1000": lambda: bp.grid_count(net, x0, x1, 1000)}
        out = {}
        for eng, fn in engines.items():
            wall, mib, out[eng] = measure(fn, device, repeats)
            rows.append({"vgg11_width": f"1/{div}", "N_relu": n_relu, "engine": eng, "wall_s": wall, "peak_MiB": mib})
        exact = int(out["region walk"].relu.sum())
        same = len(out["bisection"].t) == len(out["region walk"].t) and \
            bool((out["bisection"].t - out["region walk"].t).abs().max() <= 1e-9) if len(out["bisection"].t) else True
        for r in rows[-3:]:
            res = out[r["engine"]]
            found = res if r["engine"] == "grid 1000" else int(res.relu.sum())
            r.update(K_relu=found, K_all=None if r["engine"] == "grid 1000" else len(res.t), grid_missed=exact - found,
                     bisection_equals_walk=same,
                     speedup_vs_walk=rows[-2]["wall_s"] / r["wall_s"], data=name)
    return pd.DataFrame(rows)


register_bench("random-walk-bridge", bench)
