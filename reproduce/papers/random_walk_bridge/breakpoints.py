"""Every break point of a piecewise-linear network on the segment X(t) = (1 - t) X0 + t X1, exactly.

See ../shared/papers/SPEC-000-002.md §1.3.

Two algorithms that must agree: `region_walk` (reference: hold the pattern, jump to the nearest crossing, flip)
and `bisect` (batched: patterns on a grid; an interval is one node when the first exits from its two ends meet;
everything else is bisected). `slopes` gives the exact R_k on every interval (the linear part under the
interval's pattern, at its midpoint; never finite differences). `two_layer` is the closed form for
1-hidden-layer MLPs; `grid_count` the authors' grid estimate. Inputs x0, x1 carry no batch dimension; t in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .piecewise import along, flat_pattern, flat_values

INF = float("inf")


@dataclass
class Nodes:
    """Break points sorted by t: t (K,), layer (K,) index of the PL layer, relu (K,) bool (False: max-pool)."""
    t: torch.Tensor
    layer: torch.Tensor
    relu: torch.Tensor
    unresolved: int = 0
    f: torch.Tensor | None = None       # (K, c) outputs at the nodes, where the engine has them exactly (layerwise)
    R: torch.Tensor | None = None       # (K+1, c) slopes on the intervals (layerwise), as `slopes` gives them
    f_mid: torch.Tensor | None = None   # (K+1, c) outputs at the interval midpoints (layerwise)


def _layout(tr) -> list[tuple[str, int, int, int, int]]:
    """Per PL layer: kind, code offset, code count, value offset, values per code."""
    out, co, vo = [], 0, 0
    for kind, z in zip(tr.kinds, tr.z):
        n_codes, per = (z.shape[1], 1) if kind == "relu" else (z.shape[1], z.shape[2])
        out.append((kind, co, n_codes, vo, per))
        co, vo = co + n_codes, vo + n_codes * per
    return out


def _pack(ts, layers, kinds) -> Nodes:
    t = torch.tensor(ts, dtype=torch.float64)
    order = torch.argsort(t, stable=True)
    return Nodes(t[order], torch.tensor(layers, dtype=torch.long)[order],
                 torch.tensor([k == "relu" for k in kinds], dtype=torch.bool)[order])


def _end_tol(dtype: torch.dtype) -> float:
    """End zones [0, tol], [1 - tol, 1]: a switch there is a tie at X0 or X1 (e.g. equal pixels), no interior node.

    Both algorithms measure t in [tol, 1 - tol]. In float64, 1e-9 resolves ties that diverge at relative rate 1e-7
    (MNIST's background ties a pool window at X0 whose entries separate at slope 1e-4: equal in float64 to t ~
    1e-12)."""
    return 1e-9 if dtype == torch.float64 else 1e-5


def _dead(z, d) -> bool:
    """Exactly 0 with slope 0. A ReLU whose input is identically 0 on its inactive side gates nothing, so its code
    change is no node; a pool leaving such an entry (a switched-off ReLU) is the ReLU's node, not a new one."""
    return bool(z == 0) and bool(d == 0)


def region_walk(model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, max_nodes: int = 10**7) -> Nodes:
    """Reference algorithm: at t hold the pattern P, find the nearest crossing under P, flip it, repeat."""
    v, tol = x1 - x0, _end_tol(x0.dtype)
    *_, tr = along(model, x0, v, torch.full((1,), tol, dtype=x0.dtype))
    pattern = [p.clone() for p in tr.pattern]
    t, ts, layers, kinds = tol, [], [], []
    before, pending = None, []     # the trace valid just before t; ReLU flips at t awaiting the dead-zero check
    same_t = 64 * torch.finfo(x0.dtype).eps
    while len(ts) < max_nodes:
        *_, tr = along(model, x0, v, torch.tensor([t], dtype=x0.dtype), frozen=pattern)
        best = (INF, -1, -1)
        for i, (kind, z, d, pat) in enumerate(zip(tr.kinds, tr.z, tr.zdot, pattern)):
            if kind == "relu":
                toward = torch.where(pat.flatten(1), d < 0, d > 0)
                s = torch.where(toward, t + (-z / d).clamp_min(0), INF)
            else:
                idx = pat.flatten(1)[..., None]
                za, da = z.gather(-1, idx), d.gather(-1, idx)
                rate = d - da
                # padding: -inf
                s = torch.where((rate > 0) & torch.isfinite(z), t + ((za - z) / rate).clamp_min(0), INF)
            j = int(torch.argmin(s))
            if float(s.flatten()[j]) < best[0]:
                best = (float(s.flatten()[j]), i, j)
        t_next, i, j = best
        later = t_next > t + same_t     # switches closer than rounding are simultaneous
        if later and pending:           # every switch at t is done: keep the ReLU flips that gate a live input
            for li, u, on in pending:
                side = before if on else tr   # the inactive side: before t when switching on, after when off
                if t > tol and not _dead(side.z[li][0, u], side.zdot[li][0, u]):   # a switch at the start is no node
                    ts.append(t), layers.append(li), kinds.append("relu")
            pending = []
        if later:
            before = tr
        if t_next >= 1.0 - tol:   # a tie exactly at X1 (e.g. equal pixels) is no interior node
            return _pack(ts, layers, kinds)
        flat, t = pattern[i].view(-1), (t_next if later else t)
        if tr.kinds[i] == "relu":
            flat[j] = ~flat[j]
            pending.append((i, j, bool(flat[j])))
            continue
        kk = tr.z[i].shape[-1]
        old = int(flat[j // kk])
        flat[j // kk] = j % kk
        if t > tol and not _dead(tr.z[i][0, j // kk, old], tr.zdot[i][0, j // kk, old]):
            ts.append(t), layers.append(i), kinds.append(tr.kinds[i])
    raise RuntimeError(f"region walk: more than {max_nodes} nodes")


def _evaluate(model, x0, v, ts, batch):
    codes, zs, ds = [], [], []
    tr = None
    for i in range(0, len(ts), batch):
        f, fd, tr = along(model, x0, v, ts[i:i + batch])
        z, d = flat_values(tr)   # the outputs are verified too: a unit that flips twice may move nothing else
        codes.append(flat_pattern(tr)), zs.append(torch.cat([z, f], 1)), ds.append(torch.cat([d, fd], 1))
    return torch.cat(codes), torch.cat(zs), torch.cat(ds), tr


def _first_exit(layout, code: torch.Tensor, z: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Time until the first unit or pool window switches under the frozen patterns `code` (B, P): (B,).

    From a point inside a region the affine model is exact until that time, so if the first exit from a
    (forward) and from b (backward) happen at the same t, every switch in (a, b) happens at that t.
    """
    best = torch.full((len(z),), INF, dtype=z.dtype, device=z.device)
    for kind, co, n, vo, per in layout:
        zz, dd, cc = z[:, vo:vo + n * per], d[:, vo:vo + n * per], code[:, co:co + n]
        if kind == "relu":
            s = torch.where(torch.where(cc.bool(), dd < 0, dd > 0), (-zz / dd).clamp_min(0), INF)
        else:
            zz, dd = zz.reshape(-1, n, per), dd.reshape(-1, n, per)
            za, da = zz.gather(2, cc[..., None]), dd.gather(2, cc[..., None])
            rate = dd - da
            s = torch.where((rate > 0) & torch.isfinite(zz), ((za - zz) / rate).clamp_min(0), INF).flatten(1)
        best = torch.minimum(best, s.min(1).values)
    return best


def bisect(model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, grid: int = 64, batch: int = 256,
           rtol: float | None = None, min_len: float = 1e-12) -> Nodes:
    """Batched bisection with verification (SPEC-000-002.md §1.3): exact node list, `unresolved` counts give-ups (<
    min_len).

    Pending intervals are processed `batch` at a time, vectorized: patterns at both ends, first exits from both
    ends; an interval whose two first exits meet holds exactly one node (all its switches at that t); the rest
    are split at their midpoints, evaluated in one batched pass.
    """
    v = x1 - x0
    rtol = rtol if rtol is not None else (1e-9 if x0.dtype == torch.float64 else 1e-4)
    tol = _end_tol(x0.dtype)
    ts = torch.linspace(tol, 1 - tol, grid + 1, dtype=torch.float64)   # the end zones hold no interior node
    codes, z, d, tr = _evaluate(model, x0, v, ts, batch)
    layout = _layout(tr)
    starts = torch.tensor([lay[1] for lay in layout], device=codes.device)
    is_pool = torch.tensor([lay[0] == "pool" for lay in layout], device=codes.device)
    vstart = torch.tensor([lay[3] for lay in layout], device=codes.device)
    per = torch.tensor([lay[4] for lay in layout], device=codes.device)
    keep = torch.nonzero((codes[1:] != codes[:-1]).any(1))[:, 0]
    kc = keep.cpu()   # interval ends stay on the host in float64; patterns and values stay on the model's device
    stack = [(ts[kc], ts[kc + 1], codes[keep], z[keep], d[keep], codes[keep + 1], z[keep + 1], d[keep + 1])]
    out_t, out_layer, out_pool, unresolved = [], [], [], 0
    while stack:
        parts = [stack.pop()]
        while stack and sum(len(p[0]) for p in parts) + len(stack[-1][0]) <= batch:
            parts.append(stack.pop())
        chunk = parts[0] if len(parts) == 1 else tuple(torch.cat(cs) for cs in zip(*parts))
        if len(chunk[0]) > batch:
            stack.append(tuple(c[batch:] for c in chunk))
            chunk = tuple(c[:batch] for c in chunk)
        a, b, ca, za, da, cb, zb, db = chunk
        dev_a, dev_b = a.to(za.device, za.dtype), b.to(za.device, za.dtype)
        t_l = dev_a + _first_exit(layout, ca, za, da)
        t_r = dev_b - _first_exit(layout, cb, zb, -db)
        ok = ((t_l > dev_a) & (t_l < dev_b) & ((t_l - t_r).abs() <= rtol)).cpu()
        if ok.any():   # every switch in an accepted interval happens at its t_l: one node
            okd = ok.to(ca.device)
            ca_, cb_, za_, da_, zb_, db_ = ca[okd], cb[okd], za[okd], da[okd], zb[okd], db[okd]
            row, u = torch.nonzero(ca_ != cb_, as_tuple=True)
            li = torch.searchsorted(starts, u, right=True) - 1
            keep_ev, pool = torch.ones_like(u, dtype=torch.bool), is_pool[li]
            relu = ~pool
            if relu.any():   # a ReLU whose input is identically 0 on its inactive side gates nothing: no node
                ur, r, lr = u[relu], row[relu], li[relu]
                q = vstart[lr] + (ur - starts[lr])
                off_a = ca_[r, ur] == 0
                zi = torch.where(off_a, za_[r, q], zb_[r, q])
                di = torch.where(off_a, da_[r, q], db_[r, q])
                keep_ev[relu] = ~((zi == 0) & (di == 0))
            if pool.any():   # a pool switch between tied entries (a switched-off ReLU) is not a node of its own
                up, r, lp = u[pool], row[pool], li[pool]
                base = vstart[lp] + (up - starts[lp]) * per[lp]
                old, new = base + ca_[r, up], base + cb_[r, up]
                dead = (za_[r, old] == 0) & (da_[r, old] == 0)
                keep_ev[pool] = (zb_[r, new] > zb_[r, old]) & ~dead
            out_t.append(t_l[okd][row][keep_ev].cpu().double())
            out_layer.append(li[keep_ev].cpu()), out_pool.append(pool[keep_ev].cpu())
        rest = ~ok
        tiny = rest & ((b - a) < min_len)
        unresolved += int(tiny.sum())
        rest &= ~tiny
        if rest.any():
            lo, hi, r = a[rest], b[rest], rest.to(ca.device)
            mid = (lo + hi) / 2
            cm, zm, dm, _ = _evaluate(model, x0, v, mid, batch)
            left, right = (cm != ca[r]).any(1), (cm != cb[r]).any(1)
            lc, rc = left.cpu(), right.cpu()
            stack.append((mid[rc], hi[rc], cm[right], zm[right], dm[right], cb[r][right], zb[r][right], db[r][right]))
            stack.append((lo[lc], mid[lc], ca[r][left], za[r][left], da[r][left], cm[left], zm[left], dm[left]))
            stack = [c for c in stack if len(c[0])]
    t = torch.cat(out_t) if out_t else torch.zeros(0, dtype=torch.float64)
    layer = torch.cat(out_layer) if out_layer else torch.zeros(0, dtype=torch.long)
    pool = torch.cat(out_pool) if out_pool else torch.zeros(0, dtype=torch.bool)
    inside = (t > tol) & (t < 1 - tol)   # float32: t_l may round into an end zone (a tie at X0 or X1, no node)
    t, layer, pool = t[inside], layer[inside], pool[inside]
    order = torch.argsort(t, stable=True)
    return Nodes(t[order], layer[order], ~pool[order], unresolved)


def two_layer(w1: torch.Tensor, w2: torch.Tensor, x0: torch.Tensor,
              x1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed form for f = W2 relu(W1 x): nodes a/(a - b) where ab < 0, sorted (K,), and slopes R (K+1, c).

    a = W1 x0, b = W1 x1, s = W1 xi; R_0 = W2 diag(a > 0) s and the gap at unit i is W2[:, i] |s_i|.
    """
    a, b = w1 @ x0, w1 @ x1
    s = w1 @ ((x1 - x0) / (x1 - x0).norm())
    flip = torch.nonzero(a * b < 0)[:, 0]
    t, order = torch.sort(a[flip] / (a[flip] - b[flip]))
    units = flip[order]
    r0 = w2 @ ((a > 0).to(s.dtype) * s)
    gaps = (w2[:, units] * s[units].abs()).T                                   # (K, c)
    return t, torch.cat([r0[None], r0[None] + torch.cumsum(gaps, 0)])


def grid_count(model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, points: int = 1000,
               batch: int = 256) -> int:
    """The authors' estimate: ReLU units whose sign differs between consecutive points of a uniform grid."""
    ts = torch.linspace(0, 1, points, dtype=torch.float64)
    codes, *_, tr = _evaluate(model, x0, x1 - x0, ts, batch)
    relu = torch.cat([torch.full((lay[2],), lay[0] == "relu") for lay in _layout(tr)]).to(codes.device)
    return int((codes[1:] != codes[:-1])[:, relu].sum())


def slopes(model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, t_nodes: torch.Tensor,
           batch: int = 256, f_nodes: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """R_k = J(X(t)) xi on every interval (K+1, c) by jvp at interval midpoints.

    Also f at the nodes (K, c) and the ends (2, c); f_nodes, when given (the engine's exact values), is used as is
    and only the ends are evaluated."""
    v = x1 - x0
    edges = torch.cat([torch.zeros(1, dtype=torch.float64), t_nodes.to(torch.float64),
                       torch.ones(1, dtype=torch.float64)])
    mids = (edges[1:] + edges[:-1]) / 2
    if f_nodes is not None:
        edges = edges[[0, -1]]
    fs, fds, fe = [], [], []
    for i in range(0, len(mids), batch):
        f, fd, _ = along(model, x0, v, mids[i:i + batch])
        fs.append(f), fds.append(fd)
    shape = (-1,) + (1,) * x0.dim()
    with torch.no_grad():   # values at the nodes and ends need no slope: a plain forward pass
        for i in range(0, len(edges), batch):
            fe.append(model(x0[None] + edges[i:i + batch].to(x0.device, x0.dtype).reshape(shape) * v[None]))
    f, fd, f_edges = torch.cat(fs), torch.cat(fds), torch.cat(fe)
    return {"R": fd / v.norm(), "f_nodes": f_edges[1:-1] if f_nodes is None else f_nodes.to(f),
            "f_ends": f_edges[[0, -1]], "f_mid": f}
