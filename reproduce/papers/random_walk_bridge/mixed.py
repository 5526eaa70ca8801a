"""Exact break points from a float32 bulk pass verified in float64 (the float64 answer, node for node).

1. The layer-by-layer engine runs on a float32 copy of the network: candidate nodes, each within ~1e-7 of a true
   one, possibly merged, missing or spurious where nodes lie closer than float32 resolves.
2. Seeds: the path's (float64) ends and the midpoint between consecutive candidates. One batched float64 forward
   pass with tangents at every seed gives its activation pattern and the affine piece it lies in.
3. Each interval between consecutive seeds is settled in float64 without any tolerance of our own:
   - same pattern at both ends and no switch under the left end's affine piece before the right end: no node;
   - exactly one unit differs, its pre-activation changes sign strictly (or its pool window hands over strictly),
     and the first switch from the left end meets the last switch from the right end (to RESOLUTION in t):
     exactly one node, there, of that unit's layer;
   - anything else (several nodes, ties, dead zeros, a unit switching twice) is handed to the float64
     layer-by-layer engine on that sub-segment, which is exact.
So the answer is always float64's; float32 only decides how much of the path is verified at one forward with
tangents per node instead of refined. No slopes: `breakpoints.slopes` gives them on the nodes.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .breakpoints import Nodes, _end_tol, _evaluate, _first_exit, _layout
from .layerwise import layerwise

# Two switches closer than this in t are not told apart: the float64 rounding of a crossing time computed through a
# deep network reaches 3.5e-13 (C8L3 at width 1/4, t on a sub-segment 1/100 of the path); the closest distinct
# nodes measured at full width are 4e-10 apart.
RESOLUTION = 1e-12


def candidates(model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    """The float32 engine's node times (K,) float64, sorted, on a float32 copy of `model`."""
    low = copy.deepcopy(model).float()
    return layerwise(low, x0.float(), x1.float(), chunk=chunk, slopes=False).t


def _tables(layout, device: torch.device) -> dict[str, torch.Tensor]:
    """Per PL layer (L,): first code, first value, values per code, whether it is a ReLU."""
    return {"starts": torch.tensor([lay[1] for lay in layout], device=device),
            "vstart": torch.tensor([lay[3] for lay in layout], device=device),
            "per": torch.tensor([lay[4] for lay in layout], device=device),
            "is_relu": torch.tensor([lay[0] == "relu" for lay in layout], device=device)}


def _settle(layout, tab: dict, ts: torch.Tensor, codes, z, d) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For the intervals between consecutive seeds ts (n,) with their patterns, values and slopes (n, .): verdict
    (n-1,) long (0 no node, 1 one node, -1 refine), node time (n-1,) float64 and PL layer (n-1,) of the switch."""
    a, b = ts[:-1], ts[1:]
    dev = z.device
    ad, bd = a.to(dev, z.dtype), b.to(dev, z.dtype)
    e_a = _first_exit(layout, codes[:-1], z[:-1], d[:-1])
    e_b = _first_exit(layout, codes[1:], z[1:], -d[1:])
    diff = codes[1:] != codes[:-1]
    n_diff, u = diff.sum(1), diff.long().argmax(1)
    none = (n_diff == 0) & (e_a > bd - ad)
    t_l, t_r = ad + e_a, bd - e_b
    one = (n_diff == 1) & (t_l > ad) & (t_l < bd) & ((t_l - t_r).abs() <= RESOLUTION)
    starts, vstart, per = tab["starts"], tab["vstart"], tab["per"]
    li = torch.searchsorted(starts, u, right=True) - 1
    rows = torch.arange(len(u), device=dev)
    za, zb = z[:-1], z[1:]
    q = vstart[li] + (u - starts[li])                                    # a ReLU's value
    relu_live = za[rows, q] * zb[rows, q] < 0                           # a strict sign change
    base = vstart[li] + (u - starts[li]) * per[li]                      # a pool window's first entry
    old, new = base + codes[:-1][rows, u], base + codes[1:][rows, u]
    pool_live = (za[rows, old] > za[rows, new]) & (zb[rows, new] > zb[rows, old])
    one &= torch.where(tab["is_relu"][li], relu_live, pool_live)
    verdict = torch.where(none, 0, torch.where(one, 1, -1))
    return verdict.cpu(), t_l.double().cpu(), li.cpu()


def _runs(mask: torch.Tensor) -> list[tuple[int, int]]:
    """Maximal runs [i, j) of True in a 1-d bool tensor."""
    idx = torch.nonzero(mask)[:, 0].tolist()
    runs: list[tuple[int, int]] = []
    for i in idx:
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def mixed(model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, batch: int = 64, chunk: int = 128,
          stats: dict | None = None) -> Nodes:
    """Every break point of the float64 `model` on X(t) = (1 - t) x0 + t x1, t in [tol, 1 - tol], node for node as
    `layerwise` / `breakpoints.region_walk` in float64, from float32 candidates verified in float64 (module doc).
    x0, x1: one float64 input each. `batch`: seeds per float64 pass. `stats`, when given, receives the candidate
    count and how many seed intervals were verified and refined."""
    if x0.dtype != torch.float64:
        raise ValueError("mixed: the answer is float64's; give float64 inputs and network")
    tol = _end_tol(torch.float64)
    t32 = candidates(model, x0, x1, chunk)
    mids = (t32[1:] + t32[:-1]) / 2
    ends = torch.tensor([tol, 1 - tol], dtype=torch.float64)
    seeds = torch.unique(torch.cat([ends[:1], mids[(mids > tol) & (mids < 1 - tol)], ends[1:]]))
    v = x1 - x0
    verdicts, times, layers, layout, tab = [], [], [], None, {}
    with torch.no_grad():
        for i in range(0, len(seeds) - 1, batch):
            ts = seeds[i:i + batch + 1]
            codes, z, d, tr = _evaluate(model, x0, v, ts, batch + 1)
            if layout is None:
                layout = _layout(tr)
                tab = _tables(layout, z.device)
            verdict, t, li = _settle(layout, tab, ts, codes, z, d)
            verdicts.append(verdict), times.append(t), layers.append(li)
    verdict, t, li = torch.cat(verdicts), torch.cat(times), torch.cat(layers)
    found = verdict == 1
    out_t, out_layer, out_relu = [t[found]], [li[found]], [tab["is_relu"].cpu()[li[found]]]
    runs = _runs(verdict < 0)
    for i, j in runs:   # consecutive unsettled intervals: one float64 sub-segment, mapped back to t
        a, b = float(seeds[i]), float(seeds[j])
        sub = layerwise(model, x0 + a * v, x0 + b * v, chunk=chunk, slopes=False)
        out_t.append(a + sub.t * (b - a)), out_layer.append(sub.layer), out_relu.append(sub.relu)
    t, layer, relu = torch.cat(out_t), torch.cat(out_layer), torch.cat(out_relu)
    order = torch.argsort(t, stable=True)
    if stats is not None:
        stats.update(candidates=len(t32), intervals=len(verdict), verified=int((verdict >= 0).sum()),
                     refined=int((verdict < 0).sum()), refined_segments=len(runs))
    return Nodes(t[order], layer[order], relu[order])
