"""Paper 001 [H] invariants (../shared/papers/SPEC-000-002.md §2) at small sizes, and claims that can fail."""
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from reproduce import claims, registry
from reproduce.papers import norm_preservation as npres
from reproduce.runner import Context

SPEC_TABLE = {500: (0.3026, 0.1649), 1000: (0.2094, 0.1108), 1500: (0.1693, 0.0886), 2000: (0.1458, 0.0757),
              2500: (0.1298, 0.0672), 3000: (0.1182, 0.0609), 3500: (0.1092, 0.0562), 4000: (0.1019, 0.0523)}


def ctx(seed=0):
    return Context(torch.device("cpu"), seed, Path("."))


@pytest.mark.parametrize("m", sorted(SPEC_TABLE))
def test_theory_matches_spec_table(m):
    sq, unsq = SPEC_TABLE[m]
    eps = npres.theory_eps(m, 0.05)
    assert abs(eps - sq) < 1e-3
    assert abs((1 - math.sqrt(1 - eps)) - unsq) < 1e-3
    assert abs(npres.g_chernoff(eps) - math.log(40) / m) < 1e-12


def test_theory_curve_in_csv_matches_table():
    cfg = npres.Fig2Config(widths=(500, 4000))
    th = npres.fig2_compute(cfg, {"theory": "lemma"}, ctx())
    row = th[(th.width == 1000) & (th.convention == "squared") & (th.direction == "forward")]
    assert abs(row["mean"].item() - SPEC_TABLE[1000][0]) < 1e-3


def test_theory_undefined_below_60_and_code_variant():
    assert math.isnan(npres.theory_eps(50, 0.05))
    assert npres.code_theory_eps(500, 0.05, 2000, 10) == pytest.approx(1.951, abs=1e-3)  # authors' value
    assert npres.code_theory_eps(4000, 0.05, 2000, 10) == pytest.approx(0.152, abs=1e-3)


def test_he_first_layer_preserves_squared_norm():
    cfg = npres.Fig1Config()
    fwd, _ = npres._ratios(cfg, [500, 500], "he_fan_out", 2000, ctx())
    assert abs((fwd[:, 0] ** 2).mean() - 1) <= 0.02


def test_glorot_forward_decay_matches_formula():
    """Mean over 8 networks (one network at m=100 fluctuates by ~20% at layer 10)."""
    cfg = npres.Fig1Config(widths=(100,), inits=("glorot",), n_samples=500)
    dfs = [npres.fig1_compute(cfg, {"init": "glorot", "width": 100, "net": 0}, ctx(s)) for s in range(8)]
    f = pd.concat(dfs).query("quantity == 'forward'").groupby("layer")["mean"].mean()
    expected = math.sqrt(100 / 600) * 2.0 ** (-(f.index.to_numpy() - 1) / 2)
    assert np.all(np.abs(f.to_numpy() / expected - 1) < 0.15)


@pytest.mark.parametrize("setup", ["two-layer", "direct-lemma"])
def test_empirical_eps_matches_analytic(setup):
    m = 500
    cfg = npres.Fig2Config(widths=(m,), setup=setup)
    df = npres.fig2_compute(cfg, {"width": m, "net": 0}, ctx())
    sq = df[df.convention == "squared"].set_index("direction")["mean"]
    target = math.sqrt(10 / (math.pi * m))
    assert abs(sq["forward"] / target - 1) < 0.15
    assert abs(sq["backward"] / target - 1) < 0.15


def test_fig3_widths_within_range_and_last_layer_ratio():
    cfg = npres.Fig3Config(n_samples=20, input_dim=30, depth=5)
    df = npres.fig3_compute(cfg, {"v": 200, "net": 0}, ctx())
    assert df["width"].between(800, 1200).all()
    assert (df["width_last"] == df[df.layer == 5]["width"].iloc[0]).all()
    # at the last layer dl/da_L = delta, so the backward ratio is ||h_{L-1}|| / ||x||, the forward ratio one layer up
    b = df[(df.quantity == "backward") & (df.layer == 5)]["mean"].item()
    f = df[(df.quantity == "forward") & (df.layer == 4)]["mean"].item()
    assert b == pytest.approx(f, rel=1e-12)


def _results(fig_key, df):
    """Every claim of the figure on a planted frame (100 draws: the planted effects are far from every bound)."""
    return {r.id: r for r in (claims.evaluate(c, df, draws=100) for c in registry.figure("norm", fig_key).claims)}


def test_fig1_claims_fail_and_are_inconclusive_when_they_should():
    rows = [{"seed": 0, "net": k, "init": init, "width": m, "layer": i, "quantity": q, "mean": mean + 0.01 * k,
             "std": 0.5 * (5 * i / m) ** .5 * (1 + 0.01 * k)}
            for k in range(5) for init, mean in (("he", 1.3), ("glorot", 0.5)) for m in (500, 2000)
            for i in range(1, 11) for q in ("forward", "backward")]
    r = _results("fig1", pd.DataFrame(rows))
    assert r["he-forward-mean-m500"].verdict == claims.FAIL
    assert r["he-forward-mean-m500"].value == pytest.approx(0.32)
    assert r["he-forward-mean-m4060"].verdict == claims.INCONCLUSIVE
    assert r["glorot-forward-last"].verdict == claims.FAIL
    assert r["he-forward-std-scale"].verdict == claims.PASS
    assert r["he-forward-std-decreases"].verdict == claims.PASS


def test_fig2_claims_fail_when_theory_is_below():
    rows = [{"seed": 0, "net": k, "series": "empirical", "direction": d, "convention": c, "width": m,
             "mean": e * (1 + 0.01 * k), "std": 0}
            for k in range(5) for d in ("forward", "backward") for c in ("squared", "unsquared")
            for m, e in ((500, 0.1), (1000, 0.05))]
    rows += [{"seed": 0, "series": "theory", "direction": d, "convention": c, "width": m, "mean": t, "std": 0}
             for d in ("forward", "backward") for c in ("squared", "unsquared") for m, t in ((500, 0.05), (1000, 0.06))]
    r = _results("fig2", pd.DataFrame(rows))
    assert r["theory-above-empirical"].verdict == claims.FAIL
    assert r["gap-shrinks"].verdict == claims.FAIL
    assert r["forward-backward-agree"].verdict == claims.PASS
