"""`repro bench linearity`: the eq. 43 tangent kernel by four engines on the same inputs.

closed (per-layer closed form, matmuls) vs closed-scan (prefix sums over sorted ReLU thresholds) vs jacobian
(J_p J_p^T one parameter tensor at a time) vs columns (vjp then jvp, no Jacobian) vs the plain torch.func
baseline (vmap(jacrev) over samples, then einsum).
"""
from __future__ import annotations

import math

import pandas as pd
import torch
from torch.func import jacrev, vmap

from ...core import ntk
from ...core.device import free_memory
from ...core.timing import measure
from ...registry import register_bench
from . import kernels
from .common import DataSettings, dataset

SIZES = (1_000, 10_000, 100_000)


def baseline_ntk(f_single, q: dict, x: torch.Tensor) -> torch.Tensor:
    """The torch.func recipe: per-sample Jacobians by vmap(jacrev), contracted with einsum -> (NC, NC)."""
    jac = vmap(jacrev(f_single), (None, 0))(q, x)                       # {name: (N, C, *shape)}
    k = sum(torch.einsum("iaf,jbf->iajb", j.flatten(2), j.flatten(2)) for j in jac.values())
    return k.flatten(2, 3).flatten(0, 1)


def bench(device: torch.device, sizes: tuple[int, ...] | None = None, repeats: int = 3) -> pd.DataFrame:
    """Wall time, peak memory and max |K - K_closed| per engine and width m; float64, N = 60, C = 3."""
    cfg = DataSettings()
    x, _ = dataset(cfg, device, torch.Generator().manual_seed(cfg.data_seed))
    n, c, rows = cfg.n_data, 3, []
    for m in sizes or SIZES:
        g = torch.Generator(device=device).manual_seed(m)
        q = {k: torch.randn(*sh, generator=g, dtype=x.dtype, device=device)
             for k, sh in (("w", (m,)), ("b", (m,)), ("V", (c, m)))}
        batched = {k: v[None] for k, v in q.items()}
        f = lambda p: kernels.shallow_forward({k: v[None] for k, v in p.items()}, x)[0]  # noqa: E731
        def f_single(p, xi):
            return kernels.shallow_forward({k: v[None] for k, v in p.items()}, xi[None])[0, 0]
        jac_bytes = n * c * m * (2 + c) * x.element_size()
        engines = {"closed": lambda: kernels.ntk_shallow(batched, x)[0],
                   "closed-scan": lambda: kernels.ntk_shallow_scan(batched, x)[0],
                   "jacobian": lambda: ntk.ntk_jacobian(f, q),
                   "columns": lambda: ntk.ntk_columns(f, q, chunk=30),
                   "vmap(jacrev) baseline": lambda: baseline_ntk(f_single, q, x)}
        ref = None
        for name, fn in engines.items():
            if not name.startswith("closed") and 4 * jac_bytes > free_memory(device):
                rows.append({"width": m, "method": name, "seconds": math.nan, "peak_mib": math.nan,
                             "max_abs_diff": math.nan, "note": "skipped: Jacobian does not fit in memory"})
                continue
            sec, mib, k = measure(fn, device, repeats if m < 100_000 else 1)
            ref = k if ref is None else ref
            rows.append({"width": m, "method": name, "seconds": sec, "peak_mib": mib,
                         "max_abs_diff": float((k - ref).abs().max()), "note": ""})
    df = pd.DataFrame(rows)
    base = df[df.method == "vmap(jacrev) baseline"].set_index("width")["seconds"]
    df["speedup_vs_baseline"] = base.reindex(df["width"]).to_numpy() / df["seconds"]
    return df.assign(device=str(device), dtype=str(x.dtype).removeprefix("torch."), n=n, c=c)


register_bench("transition-to-linearity", bench)
