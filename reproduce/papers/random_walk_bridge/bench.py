"""`repro bench bridge`: exact nodes on one path of the authors' VGG C8L3 (CIFAR-10, their preprocessing) at init.

Per width divisor (1 = full width, 202,752 ReLU units): one float64 forward pass; the layer-by-layer engine on the
whole path (wall, peak memory, cost per node / one forward); the layerwise engine, the region walk and the verified
bisection on the sub-segment t in [0.495, 0.505] (identical node lists, speedups), the float32 bulk pass with float64
verification there (mixed.py; refined_intervals: seed intervals float64 had to refine), and a whole measurement there
(nodes and slopes: layerwise with tangents vs bisection and the jvp pass); the authors' 1000-point grid on
the whole path: grid_minus_exact < 0 where it misses units switching twice between grid points, > 0 where it counts
units fed only by switched-off units (exactly 0, no node) as switches."""
from __future__ import annotations

import platform
from dataclasses import replace

import pandas as pd
import torch

from ... import datasets as data_mod
from ...core.timing import measure, once
from ...registry import register_bench
from . import breakpoints as bp
from . import layerwise as lw
from . import mixed as mx
from .common import DataSettings, data, exact_path, pairs
from .models import make_authors
from .piecewise import relu_count

SIZES = (1,)          # C8L3 channel divisors (1 = the authors' 64..256 channels, FC 1024)
SEGMENT = (0.495, 0.505)


def hardware(device: torch.device) -> str:
    """The device in words: the GPU's name, or the CPU model and torch's thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model}, {torch.get_num_threads()} torch threads"


def _same(a, b) -> bool:
    return len(a.t) == len(b.t) and (not len(a.t) or bool((a.t - b.t).abs().max() <= 1e-9)) and \
        torch.equal(a.layer, b.layer)


def bench(device: torch.device, sizes: tuple[int, ...] | None = None, repeats: int = 1) -> pd.DataFrame:
    """Rows: (width, engine, span) with wall_s, peak_MiB, nodes, ms_per_node, per_node_over_forward, speedup, same."""
    root = data_mod.data_root()
    name = "cifar10" if data_mod.locate("cifar10", root) else "synthetic-cifar10"
    (x, y), _ = data(name, replace(DataSettings(), preprocess="authors"), root)
    i, j = pairs(y, 1, "random", torch.Generator().manual_seed(0))[0].tolist()
    rows = []
    for div in sizes or SIZES:
        net = make_authors("vgg", 8, name, torch.Generator().manual_seed(div), x, width=1 / div).double().to(device)
        x0, x1 = x[i].double().to(device), x[j].double().to(device)
        common = {"width": f"1/{div}", "N_relu": relu_count(net, x0[None]), "data": name,
                  "hardware": hardware(device)}
        with torch.no_grad():
            fwd, _, _ = measure(lambda: net(x0[None]), device, max(repeats, 5))
            batch = x0[None].expand(128, *x0.shape).contiguous()
            fwd_b = measure(lambda: net(batch), device, repeats)[0] / 128
        rows.append({**common, "engine": "forward (1 image)", "span": "-", "wall_s": fwd})
        rows.append({**common, "engine": "forward (per image of 128)", "span": "-", "wall_s": fwd_b})
        wall, mib, whole = once(lambda: lw.layerwise(net, x0, x1, slopes=False), device)
        k = len(whole.t)
        rows.append({**common, "engine": "layerwise", "span": "whole path", "wall_s": wall, "peak_MiB": mib,
                     "nodes": k, "K_relu": int(whole.relu.sum()), "ms_per_node": 1e3 * wall / max(k, 1),
                     "per_node_over_forward": wall / max(k, 1) / fwd_b})
        a, b = (x0 + s * (x1 - x0) for s in SEGMENT)
        seg, checked = {}, {}
        span = f"t in [{SEGMENT[0]}, {SEGMENT[1]}]"
        for eng, fn in {"layerwise": lambda: lw.layerwise(net, a, b, slopes=False),
                        "region walk": lambda: bp.region_walk(net, a, b),
                        "bisection": lambda: bp.bisect(net, a, b, grid=16, batch=128),
                        "float32 + float64 check": lambda: mx.mixed(net, a, b, stats=checked)}.items():
            w, m, seg[eng] = once(fn, device)
            rows.append({**common, "engine": eng, "span": span, "wall_s": w,
                         "peak_MiB": m, "nodes": len(seg[eng].t), "ms_per_node": 1e3 * w / max(len(seg[eng].t), 1)})
        rows[-1]["refined_intervals"] = checked["refined"]
        for r in rows[-4:]:
            r.update(speedup_of_layerwise=r["wall_s"] / rows[-4]["wall_s"],
                     same_as_walk=_same(seg[r["engine"]], seg["region walk"]))
        # a whole measurement: nodes and slopes (carried as tangents vs the jvp pass after bisection)
        for eng, how in (("layerwise + slopes", "layerwise"), ("bisection + jvp slopes", "bisect")):
            w, m, (nodes, _) = once(lambda: exact_path(net, a, b, grid=16, batch=128, engine=how), device)
            rows.append({**common, "engine": eng, "span": span, "wall_s": w, "peak_MiB": m, "nodes": len(nodes.t),
                         "ms_per_node": 1e3 * w / max(len(nodes.t), 1)})
        rows[-1]["speedup_of_layerwise"] = rows[-1]["wall_s"] / rows[-2]["wall_s"]
        w, _, found = once(lambda: bp.grid_count(net, x0, x1, 1000), device)
        rows.append({**common, "engine": "grid 1000 (authors)", "span": "whole path", "wall_s": w,
                     "K_relu": found, "grid_minus_exact": found - int(whole.relu.sum())})
    return pd.DataFrame(rows)


register_bench("random-walk-bridge", bench)
