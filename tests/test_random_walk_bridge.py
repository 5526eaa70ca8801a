"""Paper 000 at small sizes: the theory's sanity mode, the exact expectation of K, PM at init, claims that fail."""
import math
from pathlib import Path

import pytest
import torch

from reproduce import claims, registry
from reproduce.papers import random_walk_bridge as rwb
from reproduce.papers.random_walk_bridge import fig1, fig6
from reproduce.papers.random_walk_bridge.piecewise import PLReLU
from reproduce.runner import Context


def ctx(seed=0):
    return Context(torch.device("cpu"), seed, Path("nowhere"))


def test_gaussian_inputs_match_theorem_and_erratum_e1():
    """SPEC-000-002.md 000-fig2, [H] (b): X ~ N(0, I_d): K/m ~ 1/2, sigma^2 m d / 4 ~ 1 + 2/pi.

    GGD sqrt(d) ~ 0.905 (not 1: erratum E1 of §1.5)."""
    cfg = rwb.Fig2Config(datasets=("gaussian",), widths=(500,), networks=4, pairs_per_net=10)
    df = rwb.fig2_compute(cfg, {"dataset": "gaussian", "m": 500}, ctx())
    s = rwb.summary(df).iloc[0]
    d, m = 784, 500
    assert 0.48 <= s["K_mean"] / m <= 0.52
    assert 1.55 <= s["sigma"] ** 2 * m * d / 4 <= 1.72
    assert 0.86 <= s["ggd_mid"] * math.sqrt(d) <= 0.95


def test_node_count_follows_the_angle_and_the_half_claim_can_fail():
    """On non-centred data (raw pixels in [0, 1]) K = m E[theta]/pi holds and K = m/2 does not."""
    cfg = rwb.Fig2Config(datasets=("synthetic-mnist",), widths=(200, 800), networks=8, pairs_per_net=20,
                         preprocess="raw01")
    df = __import__("pandas").concat([rwb.fig2_compute(cfg, {"dataset": "synthetic-mnist", "m": m}, ctx())
                                      for m in (200, 800)])
    res = {c.id: claims.evaluate(c, df, draws=100) for c in registry.figure("bridge", "fig2").claims
           if c.id in ("F2-a-theta", "F2-a-half")}
    assert res["F2-a-theta"].verdict == claims.PASS and res["F2-a-theta"].value < 1, res["F2-a-theta"]
    assert res["F2-a-half"].verdict == claims.FAIL, res["F2-a-half"]


def test_pair_margin_is_negative_and_fluctuation_nonnegative_at_init():
    """SPEC-000-002.md 000-fig6, [H]: untrained 10-class nets have mean PM < 0 and PF >= 0."""
    cfg = fig6.Fig6Config(panels=("mlp",), datasets=("synthetic-mnist",), mlp_width=200, steps=1, n_pairs=200,
                          n_checkpoints=1)
    df = fig6.fig6_compute(cfg, fig6.fig6_grid(cfg)[0], ctx())
    d = df[(df.step == 0) & (df.pair_set == "paper")]
    assert len(d) == 200 and d["PM"].mean() < 0
    assert (d["PF_mean"] >= 0).all() and (d["PF_max"] >= d["PF_mean"]).all()
    a = df[(df.step == 0) & (df.pair_set == "authors")]
    assert len(a) == cfg.authors_pairs and (a["PF_true_max"] >= 0).all()


def test_true_class_fluctuation_matches_a_pair_by_pair_loop():
    """The authors' PF (max over t of the true-class deviation from the chord) against a naive loop."""
    g = torch.Generator().manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(5, 30), torch.nn.ReLU(), torch.nn.Linear(30, 4)).double()
    x0, x1 = torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randn(6, 5, generator=g, dtype=torch.float64)
    y, ts = torch.randint(4, (6,), generator=g), torch.linspace(0, 1, 9, dtype=torch.float64)
    with torch.no_grad():
        got = fig6.true_class_fluctuation(net, x0, x1, y, ts)
    for p in range(6):
        with torch.no_grad():
            u = [float(net(x0[p] + t * (x1[p] - x0[p]))[y[p]] / net(x0[p] + t * (x1[p] - x0[p])).norm()) for t in ts]
        want = max(abs(u[k] - ((1 - float(t)) * u[0] + float(t) * u[-1])) for k, t in enumerate(ts))
        assert abs(float(got[p]) - want) < 1e-12


def test_torchvision_resnet_converts_to_pl_layers():
    torchvision = pytest.importorskip("torchvision")
    net = fig1.torchvision_pl(torchvision.models.resnet18(weights=None, num_classes=3)).eval()
    x = torch.randn(2, 3, 32, 32)
    ref = torchvision.models.resnet18(weights=None, num_classes=3).eval()
    ref.load_state_dict(net.state_dict())
    torch.testing.assert_close(net(x), ref(x))
    assert not any(isinstance(m, torch.nn.ReLU) for m in net.modules())


def test_calibration_and_accuracy_subsets_span_every_class_of_a_class_sorted_split():
    from reproduce.papers.random_walk_bridge.common import spread
    y = torch.arange(10).repeat_interleave(5000)          # the CIFAR-10 folders load class by class
    counts = y[spread(len(y), 2000)].bincount(minlength=10)
    assert counts.min() > 150 and len(spread(len(y), 10**6)) == len(y)
    assert torch.equal(spread(len(y), 2000), spread(len(y), 2000))


def test_dry_run_path_pieces_cover_the_path_and_stop_at_the_budget():
    """The cost model times `pieces` of the path: at tau = 1 they are its two halves (same nodes as the whole path);
    with no budget it stops at the first fraction, with an endless one it measures the whole path."""
    from reproduce.papers.random_walk_bridge import breakpoints as bp
    from reproduce.papers.random_walk_bridge.common import pair_seconds, pieces
    g = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 40), PLReLU(), torch.nn.Linear(40, 3)).double()
    x0, x1 = torch.randn(6, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
    whole = bp.bisect(net, x0, x1).t
    halves = [bp.bisect(net, a, b).t for a, b in pieces(x0, x1, 1.0)]
    assert len(whole) > 5 and sum(map(len, halves)) == len(whole)
    torch.testing.assert_close(torch.cat([halves[0] / 2, 0.5 + halves[1] / 2]), whole)
    short = pieces(x0, x1, 1 / 8)
    torch.testing.assert_close(short[0][1] - short[0][0], (x1 - x0) / 16)
    assert pair_seconds(net, x0, x1, grid=8, batch=16, budget=0.0)[1] == 2.0 ** -16
    assert pair_seconds(net, x0, x1, grid=8, batch=16, budget=math.inf)[1] == 1.0  # (or 8 budgets)


def test_conv_figures_sweep_one_point_per_network_and_default_to_three():
    """Figs 4/5: each init network is its own point (cached, resumable), >= 3 per cell by default, so the claims over
    (network, pair) units are decidable at the default preset; the training panels measure >= 3 pairs."""
    from reproduce.papers.random_walk_bridge.conv import conv_grid
    for name in ("fig4", "fig5"):
        cfg = registry.figure("bridge", name).config()
        assert cfg.networks >= 3 and cfg.n_pairs >= 3
        init = [p for p in conv_grid(cfg) if p["part"] == "init"]
        assert len(init) == len(cfg.datasets) * len(cfg.depths) * cfg.networks
        assert sorted({p["net"] for p in init}) == list(range(cfg.networks))


def test_the_claims_pooling_on_sums_equals_pooled_on_the_pair_rows():
    """path_stats.pooled_for_claims (claims.Totals of per-group sums) against path_stats.pooled (the plot's pair
    rows), per group, on random pairs of different node counts, raw and normalized."""
    import numpy as np
    import pandas as pd

    from reproduce.papers.random_walk_bridge import path_stats as ps
    g, rows = torch.Generator().manual_seed(3), []
    for m in (10, 20):
        for p in range(5):
            k = 3 + int(torch.randint(0, 8, (1,), generator=g))
            t, r = torch.rand(k, generator=g, dtype=torch.float64).sort().values, torch.randn(k + 1, 4, generator=g,
                                                                                              dtype=torch.float64)
            raw = ps.pair_stats(t, r)
            rows.append({"m": m, "pair": p, **raw, **{f"norm_{n}": v * 0.5 for n, v in raw.items() if n not in "Kc"}})
    df = pd.DataFrame(rows)
    for prefix in ("", "norm_"):
        sums = ps.sums_for_claims(("m",), prefix)
        t = claims.Totals(pd.DataFrame({"m": [10, 20]}), tuple(sums.cols) + ("n",),
                          np.stack([np.append(df[df.m == m][list(sums.cols)].sum().to_numpy(float), 5)
                                    for m in (10, 20)])[None])
        stacked = ps.pooled_for_claims(t, prefix)
        for j, m in enumerate((10, 20)):
            part = df[df.m == m].rename(columns={f"{prefix}{c}": c for c in ("gap_sq", "gap_sum", "defl_mid_sq",
                                                                              "defl_index_sq", "defl_half_sq")})
            for name, value in ps.pooled(part.loc[:, ~part.columns.duplicated(keep="last")]).items():
                assert stacked[name][0, j] == pytest.approx(value, rel=1e-12), (prefix, m, name)


def test_sgd_that_diverges_is_a_one_line_error_at_the_next_checkpoint():
    """The finiteness of the loss is read back at checkpoints, not every step; a diverged run still stops with an
    error, before any checkpoint sees its non-finite weights."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    x, y = torch.randn(32, 4) * 1e3, torch.randint(0, 3, (32,))
    seen = []
    with pytest.raises(rwb.common.ReproError, match="diverged before step 5"):
        rwb.common.sgd_checkpoints(net, x, y, steps=20, lr=1e30, momentum=0.9, batch=8, at=[0, 5, 20],
                                   g=torch.Generator().manual_seed(0), on_checkpoint=lambda s, n: seen.append(s))
    assert seen == [0]
