"""Paper 004 at small sizes: data, kernel-change bookkeeping, the width trend, and claims that can fail."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from reproduce import claims, registry
from reproduce.core import ntk
from reproduce.papers import transition_to_linearity as lin
from reproduce.runner import Context


def ctx(seed=0):
    g = torch.Generator()
    g.manual_seed(seed)
    return Context(torch.device("cpu"), seed, g, Path("."))


def test_dataset_is_eq42_and_fixed():
    cfg = lin.Fig1Config()
    x, y = lin.dataset(cfg, torch.device("cpu"))
    x2, y2 = lin.dataset(cfg, torch.device("cpu"))
    assert torch.equal(x, x2) and torch.equal(y, y2) and x.shape == (60,)
    for label, mean in ((0, 0.0), (1, 10.0), (2, -10.0)):
        assert abs(x[y == label].mean().item() - mean) < 1.0
    x3, _ = lin.dataset(lin.Fig1Config(data_seed=1), torch.device("cpu"))
    assert not torch.equal(x, x3)


def test_kernel_changes_bookkeeping(gen):
    n, c = 4, 3
    p = {"w": torch.randn(2, 10, generator=gen, dtype=torch.float64),
         "b": torch.randn(2, 10, generator=gen, dtype=torch.float64),
         "V": torch.randn(2, c, 10, generator=gen, dtype=torch.float64)}
    k0 = ntk.ntk_shallow(p, torch.randn(n, generator=gen, dtype=torch.float64))
    for v, d in lin.kernel_changes(k0, k0, n, c).items():
        assert torch.all(d == 0), v
    for v, d in lin.kernel_changes(3 * k0, k0, n, c).items():
        torch.testing.assert_close(d, torch.full((2,), 2.0, dtype=torch.float64)), v


def test_linear_kernel_moves_less_at_larger_width():
    """The paper's mechanism at small scale: Delta K of the linear-output kernel shrinks with width."""
    cfg = lin.Fig1Config(widths=(30, 3000), right_width=30, runs=3, max_steps=400, tasks=("ce",))
    df = pd.concat([lin.fig1_compute(cfg, {"task": "ce", "width": m}, ctx()) for m in (30, 3000)])
    sup = df[(df.quantity == "dK_sup") & (df.kernel == "full")].groupby(["series", "width"])["value"].mean()
    assert sup["linear", 3000] < 0.5 * sup["linear", 30]
    assert sup["softmax", 3000] > 5 * sup["linear", 3000]
    lr = df.drop_duplicates("run")["lr"]
    assert lr.between(1e-3, 1).all()  # c N / lambda_max is width-independent in scale


def _fig1_frame(lin_values, soft=2.0, swish=0.5):
    rows = []
    for m, v in lin_values.items():
        for s, val in (("linear", v), ("softmax", soft), ("swish", swish)):
            rows.append({"task": "swish" if s == "swish" else "ce", "width": m, "series": s, "run": 0,
                         "kernel": "full", "quantity": "dK_sup", "step": np.nan, "value": val,
                         "converged": True, "steps": 10, "final_loss": 0.0, "lr": 0.1})
    return pd.DataFrame(rows)


def _results(df):
    return {r.id: r for r in (claims.evaluate(c, df) for c in registry.figure("linearity", "fig1").claims)}


def test_fig1_claims_pass_on_the_paper_shape_and_fail_on_the_opposite():
    good = _results(_fig1_frame({30: 0.8, 100: 0.4, 1000: 0.12, 10000: 0.04}))
    assert good["F1-a-linear-decreases"].verdict == claims.PASS
    assert good["F1-b-linear-slope"].verdict == claims.PASS
    assert good["F1-b-linear-slope"].value == pytest.approx(-0.5, abs=0.05)
    assert good["F1-e-gap"].verdict == claims.PASS
    assert good["F1-f-right-panel"].verdict == claims.INCONCLUSIVE
    bad = _results(_fig1_frame({30: 0.01, 100: 0.05, 1000: 0.2, 10000: 0.9}, soft=0.1))
    assert bad["F1-a-linear-decreases"].verdict == claims.FAIL
    assert bad["F1-b-linear-slope"].verdict == claims.FAIL
    assert bad["F1-c-nonlinear-large"].verdict == claims.FAIL
    assert bad["F1-e-gap"].verdict == claims.FAIL
