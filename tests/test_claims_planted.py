"""Planted results for every claim whose measure, bound or units changed: one frame that passes, one that fails."""
import math

import numpy as np
import pandas as pd
import pytest

from reproduce import claims, registry

pytestmark = pytest.mark.slow   # each bootstraps a figure's claims (seconds): `make test` runs them, test-fast not
RNG = np.random.default_rng(0)


def judge(alias: str, key: str, df: pd.DataFrame) -> dict[str, claims.ClaimResult]:
    """Every claim and check of a figure on a planted frame, by id."""
    return {r.id: r for r in claims.evaluate_all(registry.figure(alias, key).claims, df, draws=100)}


def verdicts(res: dict, *ids: str) -> list[str]:
    return [res[i].verdict for i in ids]


# ------------------------------------------------------------------------------------------- random-walk-bridge

def bridge_fig6(pm0: float, pm_end: dict, pf: float = 0.1, n: int = 40) -> pd.DataFrame:
    """Per-pair rows of two panels: PM from pm0 to pm_end[panel], PF about pf, both pair sets."""
    rows = []
    for panel, end in pm_end.items():
        for key in ("paper", "authors"):
            for step, pm in ((0, pm0), (10, (pm0 + end) / 2), (100, end)):
                for p in range(n):
                    noise = 0.05 * RNG.standard_normal(2)
                    rows.append({"step": step, "pair_set": key, "pair": p, "PM": pm + noise[0],
                                 "PF_mean": pf + noise[1], "PF_true_max": 2 * pf + noise[1], "val_acc": 0.5,
                                 "panel": panel, "dataset": "d"})
    return pd.DataFrame(rows)


def test_bridge_fig6_judges_each_panel_over_its_pairs():
    ok = judge("bridge", "fig6", bridge_fig6(-0.5, {"mlp": 0.5, "vgg": 0.4}))
    assert verdicts(ok, "F6-rises", "F6-crossing", "F6-rises-authors", "F6-crossing-authors") == ["PASS"] * 4
    assert ok["F6-rises"].units == 40 and ok["F6-rises"].ci_low <= ok["F6-rises"].value <= ok["F6-rises"].ci_high
    bad = judge("bridge", "fig6", bridge_fig6(-0.5, {"mlp": 0.5, "vgg": -0.6}))   # vgg's margin falls
    assert verdicts(bad, "F6-rises", "F6-crossing") == ["FAIL", "FAIL"]
    assert bad["F6-rises"].cell == "panel=vgg" and "panel=vgg" in bad["F6-rises"].cause


def bridge_fig1(nl: list[float], grad_rel: float = 1.0, unresolved: int = 0) -> pd.DataFrame:
    return pd.DataFrame([{"t": np.nan, "component": -1, "f": np.nan, "slope": np.nan, "K_relu": 100, "K_all": 100,
                          "unresolved": unresolved, "NL": v, "grad_rms": grad_rel, "grad_rel": grad_rel, "pair": k}
                         for k, v in enumerate(nl)])


def test_bridge_fig1_judges_over_pairs():
    ok = judge("bridge", "fig1", bridge_fig1([0.2, 0.25, 0.22, 0.18, 0.21]))
    assert verdicts(ok, "F1-a-near-linear", "F1-b-gradients-vary", "F1-exact") == ["PASS"] * 3
    bad = judge("bridge", "fig1", bridge_fig1([0.8, 0.9, 0.85, 0.95, 0.82], grad_rel=0.01))
    assert verdicts(bad, "F1-a-near-linear", "F1-b-gradients-vary") == ["FAIL", "FAIL"]
    unsettled = judge("bridge", "fig1", bridge_fig1([0.2, 0.25, 0.22, 0.18, 0.21], unresolved=1))
    assert unsettled["F1-exact"].verdict == "FAIL" and unsettled["F1-b-gradients-vary"].verdict == "INCONCLUSIVE"
    assert "check F1-exact" in unsettled["F1-b-gradients-vary"].cause


def bridge_fig2(k_over_m: float, theta_pi: float, widths=(100, 400), nets: int = 5) -> pd.DataFrame:
    rows = []
    for m in widths:
        for net in range(nets):
            for p in range(4):
                rows.append({"net": net, "pair": p, "theta": theta_pi * math.pi,
                             "K": round(k_over_m * m) + p % 2, "c": 10, "gap_sq": 0.001 * m, "gap_sum": 0.0,
                             "defl_mid_sq": 0.0005, "defl_index_sq": 0.0005, "defl_half_sq": 0.0005,
                             "dataset": "mnist", "m": m, "d": 784})
    return pd.DataFrame(rows)


def test_bridge_fig2_half_and_the_exact_expectation_check():
    ok = judge("bridge", "fig2", bridge_fig2(0.5, 0.5))
    assert verdicts(ok, "F2-a-half", "F2-a-theta") == ["PASS", "PASS"]
    not_centred = judge("bridge", "fig2", bridge_fig2(0.3, 0.3))      # K = m E[theta]/pi holds, K = m/2 does not
    assert verdicts(not_centred, "F2-a-half", "F2-a-theta") == ["FAIL", "PASS"]
    miscounted = judge("bridge", "fig2", bridge_fig2(0.3, 0.5))       # our node count is off: the check fails
    assert miscounted["F2-a-theta"].verdict == "FAIL" and miscounted["F2-a-theta"].kind == "check"
    assert miscounted["F2-a-half"].verdict == "INCONCLUSIVE" and "FAIL set aside" in miscounted["F2-a-half"].cause


# ------------------------------------------------------------------------------------------- norm-preservation

def norm_fig3(small: tuple[float, float], large: tuple[float, float], nets: int = 4) -> pd.DataFrame:
    """(mean, std) of the ratio at every layer for v = 1 and v = 500."""
    rows = []
    for v, (mean, std) in ((1, small), (500, large)):
        for net in range(nets):
            for layer in range(1, 6):
                rows.append({"v": v, "net": net, "width": 1000, "width_last": 1000, "layer": layer,
                             "quantity": "backward", "mean": mean * (1 + 0.01 * RNG.standard_normal()),
                             "std": std * (1 + 0.01 * RNG.standard_normal())})
    return pd.DataFrame(rows)


def test_norm_fig3_compares_the_spread_relative_to_the_mean():
    ok = judge("norm", "fig3", norm_fig3((1.0, 0.05), (1.0, 0.2)))
    assert ok["small-v-smaller-std"].verdict == "PASS"
    # a smaller absolute std at v = 1, but a larger one relative to its mean: the statement does not hold
    bad = judge("norm", "fig3", norm_fig3((0.5, 0.1), (2.0, 0.2)))
    assert bad["small-v-smaller-std"].verdict == "FAIL"


# ---------------------------------------------------------------------------------------------- skip-resnet-gd

def skip_fig2(unreg: dict[int, float], reg: float = 1e-6) -> pd.DataFrame:
    rows = []
    for depth, err in unreg.items():
        for run in range(5):
            for kind, q, v in (("unregularized", "test_error", err), ("regularized", "test_error", reg),
                               ("regularized", "path_norm", 1.0)):
                rows.append({"depth": depth, "kind": kind, "model": "nn", "run": run, "step": 10, "quantity": q,
                             "value": v * (1 + 0.01 * RNG.standard_normal()), "diverged": False, "d": 10,
                             "chosen": True})
    return pd.DataFrame(rows)


def test_skip_fig2_settles_by_the_spec_predicate():
    ok = judge("skip", "fig2", skip_fig2({20: 0.02, 50: 0.01, 100: 0.011}))
    assert verdicts(ok, "F2-1-regularized-small", "F2-2-regularized-wins", "F2-3-unregularized-settles",
                    "F2-3b-unregularized-finite", "F2-4-path-norm") == ["PASS"] * 5
    bad = judge("skip", "fig2", skip_fig2({20: 0.02, 50: 2e-6, 100: 6e-6}))
    assert verdicts(bad, "F2-2-regularized-wins", "F2-3-unregularized-settles",
                    "F2-3b-unregularized-finite") == ["FAIL"] * 3
    assert bad["F2-2-regularized-wins"].cell == "depth=50"


def skip_fig1(gap_decades: float, at: float) -> pd.DataFrame:
    """Depth-100 curves R(t) = 10^-t (nn) and the rf curve off by gap_decades once R < at R(0)."""
    rows = []
    for run in range(5):
        for model in ("nn", "rf"):
            for step in range(13):
                v = 10.0 ** -step
                if model == "rf" and v < at:
                    v *= 10 ** gap_decades
                rows.append({"depth": 100, "kind": "unregularized", "model": model, "run": run, "step": step,
                             "quantity": "train_loss", "value": v, "diverged": False, "chosen": True})
            rows.append({"depth": 100, "kind": "unregularized", "model": model, "run": run, "step": 12,
                         "quantity": "test_error", "value": 0.01, "diverged": False, "chosen": True})
    return pd.DataFrame(rows)


def test_skip_fig1_curves_compared_above_the_convergence_floor():
    assert judge("skip", "fig1", skip_fig1(2.0, 1e-8))["F1-2-deep-close"].verdict == "PASS"   # apart only when flat
    assert judge("skip", "fig1", skip_fig1(1.0, 1e-2))["F1-2-deep-close"].verdict == "FAIL"


# ------------------------------------------------------------------------------------- transition-to-linearity

def linearity_fig2(power: float, converged: bool = True) -> pd.DataFrame:
    rows = []
    for sc in ("literal", "ntk"):
        for mb in (3, 10, 30, 100, 300):
            for run in range(4):
                rows.append({"scaling": sc, "mb": mb, "run": run, "kernel": "full", "quantity": "dK_sup",
                             "value": 2 * mb ** power * (1 + 0.02 * RNG.standard_normal()), "converged": converged})
    return pd.DataFrame(rows)


def test_linearity_fig2_decrease_is_a_slope_with_an_interval():
    ok = judge("linearity", "fig2", linearity_fig2(-0.5))
    assert verdicts(ok, "F2-a-decreases-literal", "F2-a-decreases-ntk", "F2-b-slope-literal",
                    "F2-e-converged") == ["PASS"] * 4
    r = ok["F2-a-decreases-literal"]
    assert r.ci_low <= r.value <= r.ci_high and abs(r.value + 0.5) < 0.05
    bad = judge("linearity", "fig2", linearity_fig2(0.5))
    assert verdicts(bad, "F2-a-decreases-literal", "F2-a-decreases-ntk") == ["FAIL", "FAIL"]
    unconverged = judge("linearity", "fig2", linearity_fig2(-0.5, converged=False))
    assert unconverged["F2-e-converged"].verdict == "FAIL"
    assert unconverged["F2-a-decreases-literal"].verdict == "INCONCLUSIVE"


def table1(h_power: float, k_spread: float) -> pd.DataFrame:
    rows = []
    for model in ("linear", "softmax", "swish", "bottleneck"):
        for i, m in enumerate((100, 1000, 10000)):
            for run in range(5):
                hp = -0.5 if model == "linear" else h_power
                rows.append({"model": model, "width": m, "run": run, "quantity": "hessian_norm",
                             "value": m ** hp * (1 + 0.01 * RNG.standard_normal()), "residual": 0.001})
                rows.append({"model": model, "width": m, "run": run, "quantity": "ntk_diag",
                             "value": k_spread ** i * (1 + 0.01 * RNG.standard_normal()), "residual": np.nan})
    return pd.DataFrame(rows)


def test_table1_uses_the_spec_bounds():
    ok = judge("linearity", "table1", table1(0.0, 1.0))
    ids = ("T1-a-linear-hessian", "T1-b-softmax-hessian-flat", "T1-c-softmax-ntk-constant", "T1-d-power-iteration")
    assert verdicts(ok, *ids) == ["PASS"] * 4
    bad = judge("linearity", "table1", table1(-0.5, 3.0))   # 1/sqrt(m) Hessian decay, NTK x3 per decade
    assert verdicts(bad, "T1-b-softmax-hessian-flat", "T1-c-softmax-ntk-constant") == ["FAIL", "FAIL"]


def linearity_fig1(conv_swish: bool) -> pd.DataFrame:
    rows = []
    for series, task in (("linear", "ce"), ("softmax", "ce"), ("swish", "swish")):
        for m in (30, 100, 1000, 10000):
            for run in range(5):
                v = (m ** -0.5 if series == "linear" else 1.0) * (1 + 0.02 * RNG.standard_normal())
                conv = conv_swish or series != "swish"
                for q in ("dK_sup", "dK_final"):
                    rows.append({"task": task, "width": m, "series": series, "run": run, "kernel": "full",
                                 "quantity": q, "step": 100, "value": v, "converged": conv})
    return pd.DataFrame(rows)


def test_linearity_fig1_unconverged_swish_sets_aside_its_claims():
    ok = judge("linearity", "fig1", linearity_fig1(True))
    assert verdicts(ok, "F1-a-linear-decreases", "F1-c-nonlinear-large", "F1-g-converged-swish") == ["PASS"] * 3
    bad = judge("linearity", "fig1", linearity_fig1(False))
    assert bad["F1-g-converged-swish"].verdict == "FAIL" and bad["F1-g-converged"].verdict == "PASS"
    assert bad["F1-c-nonlinear-large"].verdict == "INCONCLUSIVE" and "check F1-g-converged-swish" in \
        bad["F1-c-nonlinear-large"].cause
    assert bad["F1-a-linear-decreases"].verdict == "PASS"        # the linear runs converged
