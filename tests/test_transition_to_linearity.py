"""Paper 004 at small sizes: data, kernel-change bookkeeping, the width trend, and claims that can fail."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from reproduce import claims, registry
from reproduce.papers import transition_to_linearity as lin
from reproduce.papers.transition_to_linearity import kernels
from reproduce.runner import Context


def ctx(seed=0):
    return Context(torch.device("cpu"), seed, Path("."))


def test_dataset_is_eq42_and_fixed():
    cfg = lin.Fig1Config()
    x, y = lin.dataset(cfg, torch.device("cpu"), torch.Generator().manual_seed(0))
    x2, y2 = lin.dataset(cfg, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert torch.equal(x, x2) and torch.equal(y, y2) and x.shape == (60,)
    for label, mean in ((0, 0.0), (1, 10.0), (2, -10.0)):
        assert abs(x[y == label].mean().item() - mean) < 1.0
    x3, _ = lin.dataset(lin.Fig1Config(), torch.device("cpu"), torch.Generator().manual_seed(1))
    assert not torch.equal(x, x3)


def test_kernel_changes_bookkeeping(gen):
    n, c = 4, 3
    p = {"w": torch.randn(2, 10, generator=gen, dtype=torch.float64),
         "b": torch.randn(2, 10, generator=gen, dtype=torch.float64),
         "V": torch.randn(2, c, 10, generator=gen, dtype=torch.float64)}
    k0 = kernels.ntk_shallow(p, torch.randn(n, generator=gen, dtype=torch.float64))
    for v, d in lin.kernel_changes(k0, k0, n, c).items():
        assert torch.all(d == 0), v
    for v, d in lin.kernel_changes(3 * k0, k0, n, c).items():
        torch.testing.assert_close(d, torch.full((2,), 2.0, dtype=torch.float64)), v


@pytest.mark.slow
def test_linear_kernel_moves_less_at_larger_width():
    """The paper's mechanism at small scale: Delta K of the linear-output kernel shrinks with width."""
    cfg = lin.Fig1Config(widths=(30, 3000), right_width=30, runs=3, max_steps=400, tasks=("ce",))
    df = pd.concat([lin.fig1_compute(cfg, {"task": "ce", "width": m}, ctx()) for m in (30, 3000)])
    sup = df[(df.quantity == "dK_sup") & (df.kernel == "full")].groupby(["series", "width"])["value"].mean()
    assert sup["linear", 3000] < 0.5 * sup["linear", 30]
    assert sup["softmax", 3000] > 5 * sup["linear", 3000]
    lr = df.drop_duplicates("run")["lr"]
    assert lr.between(1e-3, 1).all()  # c N / lambda_max is width-independent in scale


def _noise(run: int) -> float:
    """Four runs within +-3% of the value."""
    return 1 + 0.02 * (run - 1.5)


def _fig1_frame(lin_values, soft=2.0, swish=0.5):
    rows = []
    for run in range(4):
        for m, v in lin_values.items():
            for s, val in (("linear", v), ("softmax", soft), ("swish", swish)):
                for q in ("dK_sup", "dK_final"):
                    rows.append({"task": "swish" if s == "swish" else "ce", "width": m, "series": s, "run": run,
                                 "kernel": "full", "quantity": q, "step": np.nan, "value": val * _noise(run),
                                 "converged": True, "steps": 10, "final_loss": 0.0, "lr": 0.1})
    return pd.DataFrame(rows)


def _results(df):
    return {r.id: r for r in (claims.evaluate(c, df, draws=100) for c in registry.figure("linearity", "fig1").claims)}


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


def test_bottleneck_kernel_moves_less_with_a_wider_bottleneck():
    """Fig 2's mechanism at small scale, literal eq. 48: Delta K shrinks as m_b grows."""
    cfg = lin.Fig2Config(width=100, bottlenecks=(3, 100), scalings=("literal",), runs=2, max_steps=200, eval_every=50)
    df = pd.concat([lin.fig2_compute(cfg, pt, ctx()) for pt in lin.fig2_grid(cfg)])
    sup = df[(df.quantity == "dK_sup") & (df.kernel == "full")].groupby("mb")["value"].mean()
    assert sup[100] < 0.7 * sup[3]
    assert set(df["scaling"]) == {"literal"} and (df["width"] == 100).all()


def _fig2_frame(values_by_scaling, converged=True):
    return pd.DataFrame([{"scaling": s, "mb": mb, "width": 100, "series": "linear", "run": run, "kernel": "full",
                          "quantity": "dK_sup", "step": np.nan, "value": v * _noise(run), "converged": converged,
                          "steps": 5, "final_loss": 0.0, "lr": 0.1}
                         for run in range(4) for s, vals in values_by_scaling.items() for mb, v in vals.items()])


def test_fig2_claims_follow_the_data():
    ideal = {mb: 1.2 / np.sqrt(mb) for mb in (3, 10, 50, 100, 500)}
    res = {r.id: r for r in (claims.evaluate(c, _fig2_frame({"literal": ideal, "ntk": ideal}))
                             for c in registry.figure("linearity", "fig2").claims)}
    assert res["F2-b-slope-literal"].value == pytest.approx(-0.5)
    assert res["F2-d-fit-residual"].value == pytest.approx(0.0, abs=1e-12)   # the same factor on every point
    assert lin.fit_inverse_sqrt(np.array(list(ideal)), np.array(list(ideal.values()))) == pytest.approx(1.2)
    assert all(r.verdict == claims.PASS for r in res.values())
    flat = {mb: 0.05 for mb in (3, 10, 50, 100, 500)}
    res = {r.id: r for r in (claims.evaluate(c, _fig2_frame({"literal": flat}, converged=False))
                             for c in registry.figure("linearity", "fig2").claims)}
    assert res["F2-b-slope-literal"].verdict == claims.FAIL
    assert res["F2-c-narrow-changes"].verdict == claims.FAIL
    assert res["F2-e-converged"].verdict == claims.FAIL
    assert res["F2-a-decreases-ntk"].verdict == claims.INCONCLUSIVE


def test_table1_linear_hessian_matches_closed_form():
    """Every measured eq. 43 Hessian norm equals sqrt(1 + x^2) / sqrt(m) (SPEC-003-004.md §B.5), from the CSV rows."""
    cfg = lin.Table1Config(widths=(50,), runs=2)
    df = lin.table1_compute(cfg, {"model": "linear", "width": 50}, ctx())
    h = df[df.quantity == "hessian_norm"]
    assert len(h) == 2 * 6 * 3 and sorted(h["probe"].unique().tolist()) == sorted(set(h["probe"]))
    np.testing.assert_allclose(h["value"], np.sqrt(1 + h["x"] ** 2) / np.sqrt(50), rtol=1e-6)
    k = df[df.quantity == "ntk_diag"]["value"]
    assert len(k) == 2 and (k > 0).all()


@pytest.mark.slow
def test_table1_nonlinear_outputs_do_not_decay():
    """Softmax / swish / bottleneck Hessians stay O(1) while the linear one drops by sqrt(10)."""
    cfg = lin.Table1Config(widths=(100, 1000), runs=1, power_iters=60)
    df = pd.concat([lin.table1_compute(cfg, pt, ctx()) for pt in lin.table1_grid(cfg)])
    sm = lin.table1_summary(df).set_index(["model", "width"])["h"]
    assert sm["linear", 1000] / sm["linear", 100] == pytest.approx(10 ** -0.5, rel=1e-3)
    for mdl in ("swish", "bottleneck"):
        assert sm[mdl, 1000] / sm[mdl, 100] > 0.5, mdl
    assert sm["bottleneck", 1000] > 10 * sm["linear", 1000]


def test_table1_claims_fail_when_the_linear_hessian_does_not_decay():
    df = pd.DataFrame([{"model": mdl, "width": m, "run": run, "probe": 0, "x": 1.0, "output": 0,
                        "quantity": q, "value": v * _noise(run), "residual": 0.0, "iterations": 1}
                       for run in range(4) for mdl in lin.TABLE1_MODELS for m in (100, 1000, 10000)
                       for q, v in (("hessian_norm", 1.0 if mdl == "linear" else 3.0 / np.sqrt(m)),
                                    ("ntk_diag", 2.0))])
    res = {r.id: r for r in (claims.evaluate(c, df, draws=100) for c in registry.figure("linearity", "table1").claims)}
    assert res["T1-a-linear-hessian"].verdict == claims.FAIL
    assert res["T1-b-swish-hessian-flat"].verdict == claims.FAIL
    assert res["T1-c-linear-ntk-constant"].verdict == claims.PASS
