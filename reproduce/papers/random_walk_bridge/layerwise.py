"""Exact break points layer by layer, at about one forward pass per node (the fast engine; breakpoints.py holds the
two references it must equal node for node).

Between two consecutive break points of layers < l, every value entering PL layer l is affine in t. So, given the
exact values at the nodes found so far (and at the path's ends), a ReLU of layer l switches inside an interval
exactly when its input changes sign between the interval's ends, at the linear interpolation point, and a max-pool
window switches where the upper envelope of its (affine) entries changes hands. Every value in flight (a residual
branch included) is affine there too, so the state at a new node is the interpolation of its neighbours' states:
no forward pass is repeated. A node costs the forward pass from its own layer to the output. Points are processed
depth-first in chunks of consecutive t, so memory holds one chunk per layer, not every node of a layer.

The network is run as a *plan*: affine stages on a state tuple (the tensor entering the next PL layer, then any
tensors a residual branch carries) separated by PL layers, which act on state[0]. `plan(model)` builds it for
nn.Sequential stacks of affine modules, PLReLU, PLMaxPool and modules with a `plan()` method (the residual blocks).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .breakpoints import Nodes, _end_tol
from .piecewise import PLMaxPool, PLReLU, windows

Step = tuple[str, object]   # ("affine", fn(state) -> state) | ("relu", None) | ("pool", PLMaxPool)


def _first(mod: nn.Module) -> Callable:
    return lambda s: (mod(s[0]), *s[1:])


def plan(model: nn.Module) -> list[Step]:
    """The model as affine stages and PL layers in call order; TypeError for a model that cannot be planned."""
    if hasattr(model, "plan"):
        return model.plan()
    if isinstance(model, PLReLU):
        return [("relu", None)]
    if isinstance(model, PLMaxPool):
        return [("pool", model)]
    if isinstance(model, nn.Sequential):
        return [step for child in model for step in plan(child)]
    if isinstance(model, (nn.Linear, nn.Conv2d, nn.Flatten, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Identity,
                          nn.Dropout, nn.modules.batchnorm._BatchNorm)):
        if isinstance(model, nn.modules.batchnorm._BatchNorm) and model.training:
            raise ValueError("BatchNorm must be in eval mode for path measurements (SPEC-000-002.md §1.3)")
        return [("affine", _first(model))]
    raise TypeError(f"no layer-by-layer plan for {type(model).__name__}")


def plannable(model: nn.Module) -> bool:
    """Whether `plan(model)` succeeds."""
    try:
        plan(model)
    except TypeError:
        return False
    return True


def _relu_events(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Strict sign changes of z (n, U) between consecutive points: interval (E,), unit (E,), fraction s in (0, 1) (E,).

    A value leaving or reaching exactly 0 (a ReLU fed only by switched-off units) changes no sign: no node."""
    za, zb = z[:-1], z[1:]
    k, u = torch.nonzero(((za > 0) & (zb < 0)) | ((za < 0) & (zb > 0)), as_tuple=True)
    a, b = za[k, u], zb[k, u]
    return k, u, a / (a - b)


def _pool_events(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hand-overs of the max in every window of w (n, W, kk) between consecutive points: interval, window, s in
    [0, 1) (E,) each.

    Entries are affine on each interval, so the max follows their upper envelope: from the argmax at the left end,
    jump to the entry that overtakes it first, until the right end. An argmax equal at both ends cannot change in
    between (the envelope is convex). A hand-over from an entry that is 0 at both ends (a switched-off ReLU) is the
    ReLU's node, not the pool's; padding (-inf) never wins."""
    arg = w.argmax(-1)
    k, win = torch.nonzero(arg[:-1] != arg[1:], as_tuple=True)
    ks, ws, ss = [], [], []
    if len(k):
        za, zb = w[k, win], w[k + 1, win]                                         # (E, kk)
        finite = torch.isfinite(za) & torch.isfinite(zb)
        rate = torch.where(finite, zb - za, 0.0)
        za = torch.where(finite, za, -torch.inf)
        j = arg[k, win]
        s0 = torch.zeros(len(k), dtype=w.dtype, device=w.device)
        live = torch.ones(len(k), dtype=torch.bool, device=w.device)
        for _ in range(w.shape[-1] - 1):
            zj, rj = za.gather(1, j[:, None]), rate.gather(1, j[:, None])
            ok = finite & (rate > rj)
            s = torch.where(ok, ((zj - za) / torch.where(ok, rate - rj, 1.0)).clamp_min(0), torch.inf)
            s = torch.maximum(s, s0[:, None]).masked_fill(~ok, torch.inf)
            best = s.min(1, keepdim=True).values
            # among entries overtaking at the same moment, the steepest stays on top
            nxt = torch.where(s == best, rate, -torch.inf).argmax(1)
            best = best[:, 0]
            live &= best < 1
            if not live.any():
                break
            dead = (za.gather(1, j[:, None])[:, 0] == 0) & (rj[:, 0] == 0)
            keep = live & ~dead
            ks.append(k[keep]), ws.append(win[keep]), ss.append(best[keep])
            j = torch.where(live, nxt, j)
            s0 = torch.where(live, best, s0)
    if not ks:
        e = torch.zeros(0, dtype=torch.long, device=w.device)
        return e, e, torch.zeros(0, dtype=w.dtype, device=w.device)
    return torch.cat(ks), torch.cat(ws), torch.cat(ss)


def _apply(kind: str, mod, z: torch.Tensor) -> torch.Tensor:
    if kind == "relu":
        return torch.relu(z)
    w = windows(z, mod)
    return w.max(-1).values


class _Walk:
    def __init__(self, steps: list[Step], chunk: int, end: float):
        self.steps, self.chunk, self.end = steps, chunk, end
        self.pl = [i for i, (kind, _) in enumerate(steps) if kind != "affine"]
        self.t, self.layer, self.relu = [], [], []
        self.out_t, self.out_f, self.out_d = [], [], []   # every point carried to the output: t, f, right slope
        self.offset: dict[int, tuple] = {}

    def _linear(self, i: int, tan: tuple) -> tuple:
        """The linear part of affine step i applied to tangents: fn(tan) - fn(0) (fn(0) once per step)."""
        fn = self.steps[i][1]
        if i not in self.offset:
            self.offset[i] = fn(tuple(torch.zeros_like(x[:1]) for x in tan))
        return tuple(a - b for a, b in zip(fn(tan), self.offset[i]))

    def run(self, i: int, ts: torch.Tensor, state: tuple, tan: tuple | None) -> None:
        """Carry points ts (n,) (host, float64, sorted) with their exact state from step i to the output, with tan:
        each state's slope in t on the interval to its right (the last point's is unknown here: its interval lies in
        the next chunk, where the point comes first)."""
        while i < len(self.steps) and self.steps[i][0] == "affine":
            state, tan = self.steps[i][1](state), tan and self._linear(i, tan)
            i += 1
        if i == len(self.steps):
            f = state[0].flatten(1)
            d = torch.full_like(f, torch.nan) if tan is None else tan[0].flatten(1)
            keep = len(ts) if ts[-1] == self.end else len(ts) - 1   # the chunk's last point comes first in the next
            self.out_t.append(ts[:keep]), self.out_f.append(f[:keep]), self.out_d.append(d[:keep])
            return
        kind, mod = self.steps[i]
        z = state[0]
        if kind == "relu":
            k, unit, s = _relu_events(z.flatten(1))
        else:
            k, unit, s = _pool_events(windows(z, mod).flatten(1, -2))
        layer = self.pl.index(i)
        k_h, s_h = k.cpu(), s.double().cpu()
        t_new = ts[k_h] + s_h * (ts[k_h + 1] - ts[k_h])
        if len(t_new):
            self.t.append(t_new), self.layer.append(torch.full((len(t_new),), layer))
            self.relu.append(torch.full((len(t_new),), kind == "relu"))
        # merged points: old point j -> (left j, s 0); new -> (interval k, s); one point per distinct (k, s)
        n = len(ts)
        key_k = torch.cat([torch.arange(n), k_h])
        key_s = torch.cat([torch.zeros(n, dtype=torch.float64), s_h])
        order = torch.argsort(key_s, stable=True)
        order = order[torch.argsort(key_k[order], stable=True)]             # by interval, then by s
        kk, ss = key_k[order], key_s[order]
        distinct = torch.ones(len(kk), dtype=torch.bool)
        distinct[1:] = (kk[1:] != kk[:-1]) | (ss[1:] != ss[:-1])
        kk, ss, src = kk[distinct], ss[distinct], order[distinct]
        zero_unit = torch.where(src >= n, src - n, -1)          # the unit switching at a new ReLU point: exactly 0
        t_all = torch.where(ss == 0, ts[kk], ts[kk] + ss * (ts[(kk + 1).clamp(max=n - 1)] - ts[kk]))
        m, c = len(kk), self.chunk
        starts = list(range(0, max(m - 1, 1), c)) if m > c else [0]
        for a in starts:
            b = min(m, a + c + 1) if m > c else m
            idx_l, idx_r = kk[a:b], (kk[a:b] + (ss[a:b] > 0).long()).clamp(max=n - 1)
            sd = ss[a:b].to(z.device, z.dtype)
            il, ir = idx_l.to(z.device), idx_r.to(z.device)
            part = []
            for x in state:
                shape = (-1,) + (1,) * (x.dim() - 1)
                xl = x[il]
                part.append(xl + sd.reshape(shape) * (x[ir] - xl))
            ptan = tan and [x[il] for x in tan]   # a sub-interval has the slope of the interval it splits
            if kind == "relu":
                zu = zero_unit[a:b]
                sel = torch.nonzero(zu >= 0)[:, 0]
                if len(sel):
                    flat = part[0].flatten(1)
                    flat[sel.to(z.device), unit[zu[sel].to(unit.device)].to(z.device)] = 0
                    part[0] = flat.reshape(part[0].shape)
            if ptan:   # slopes through the PL layer: its pattern at each sub-interval's midpoint
                zc, d = part[0], ptan[0]
                if kind == "relu":
                    d = torch.where((zc[:-1] + zc[1:]) / 2 > 0, d[:-1], 0.0)
                else:
                    pick = windows((zc[:-1] + zc[1:]) / 2, mod).argmax(-1, keepdim=True)
                    d = windows(d[:-1], mod).gather(-1, pick)[..., 0]
                ptan[0] = torch.cat([d, torch.zeros_like(d[:1])])   # the chunk's last point: unknown here
            part[0] = _apply(kind, mod, part[0])
            self.run(i + 1, t_all[a:b], tuple(part), ptan and tuple(ptan))


def layerwise(model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, chunk: int = 128, slopes: bool = True) -> Nodes:
    """Every break point of `model` on X(t) = (1 - t) x0 + t x1, t in the end-zone-trimmed [tol, 1 - tol], node for
    node as `breakpoints.region_walk` / `bisect`. x0, x1: one input each (no batch dimension); runs on their device
    and dtype. `chunk`: points carried together (memory ~ chunk x layers x the widest state). The outputs at the
    nodes come with them (Nodes.f, (K, c)): every node is carried to the output exactly; so do the slopes R (K+1, c),
    carried as tangents through each step's linear part under the pattern of each interval's midpoint (as `slopes`
    does by jvp), and the outputs at the interval midpoints f_mid (K+1, c); slopes=False skips them (about half the
    work)."""
    steps = plan(model)
    tol = _end_tol(x0.dtype)
    ts = torch.tensor([tol, 1 - tol], dtype=torch.float64)
    v = x1 - x0
    walk = _Walk(steps, chunk, float(ts[-1]))
    with torch.no_grad():
        x = x0[None] + ts.to(x0.device, x0.dtype).reshape((-1,) + (1,) * x0.dim()) * v[None]
        walk.run(0, ts, (x,), (v[None].expand_as(x).clone(),) if slopes else None)
    cat = (lambda parts, **kw: torch.cat(parts) if parts else torch.zeros(0, **kw))  # noqa: E731
    t, layer, relu = cat(walk.t, dtype=torch.float64), cat(walk.layer, dtype=torch.long), cat(walk.relu,
                                                                                               dtype=torch.bool)
    order = torch.argsort(t, stable=True)
    t = t[order]
    pt, pf, pd = torch.cat(walk.out_t), torch.cat(walk.out_f), torch.cat(walk.out_d)   # each point once
    by_t = torch.argsort(pt, stable=True)
    pt, pf, pd = pt[by_t], pf[by_t.to(pf.device)], pd[by_t.to(pd.device)]
    at = torch.searchsorted(pt, t).clamp(max=len(pt) - 1)
    if not torch.equal(pt[at], t):
        raise RuntimeError("layerwise: a node was not carried to the output")
    # interval k runs from edge k to edge k + 1 (edges 0, t, 1); its affine piece starts at point `left`
    left = torch.cat([torch.zeros(1, dtype=torch.long), at]).to(pd.device)
    edges = torch.cat([torch.zeros(1, dtype=torch.float64), t, torch.ones(1, dtype=torch.float64)])
    step = ((edges[1:] + edges[:-1]) / 2 - pt[left.cpu()]).to(pd.device, pd.dtype)[:, None]
    if not slopes:
        return Nodes(t, layer[order], relu[order], f=pf[at.to(pf.device)])
    return Nodes(t, layer[order], relu[order], f=pf[at.to(pf.device)], R=pd[left] / v.norm(),
                 f_mid=pf[left] + step * pd[left])
