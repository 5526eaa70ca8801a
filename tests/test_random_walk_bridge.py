"""Paper 000 at small sizes: the theory's sanity mode, the exact expectation of K, PM at init, claims that fail."""
import math
from pathlib import Path

import pytest
import torch

from reproduce import claims, registry
from reproduce.papers import random_walk_bridge as rwb
from reproduce.papers.random_walk_bridge import fig1, fig6
from reproduce.runner import Context


def ctx(seed=0):
    g = torch.Generator()
    g.manual_seed(seed)
    return Context(torch.device("cpu"), seed, g, Path("nowhere"))


def test_gaussian_inputs_match_theorem_and_erratum_e1():
    """[H] fig2(b): X ~ N(0, I_d): K/m ~ 1/2, sigma^2 m d / 4 ~ 1 + 2/pi, GGD sqrt(d) ~ 0.905 (not 1, E1)."""
    cfg = rwb.Fig2Config(datasets=("gaussian",), widths=(500,), networks=4, pairs_per_net=10)
    df = rwb.fig2_compute(cfg, {"dataset": "gaussian", "m": 500}, ctx())
    s = rwb.summary(df).iloc[0]
    d, m = 784, 500
    assert 0.48 <= s["K_mean"] / m <= 0.52
    assert 1.55 <= s["sigma"] ** 2 * m * d / 4 <= 1.72
    assert 0.86 <= s["ggd_mid"] * math.sqrt(d) <= 0.95


def test_node_count_follows_the_angle_and_the_half_claim_can_fail():
    """On non-centred data (raw pixels in [0, 1]) K = m E[theta]/pi holds and K = m/2 does not."""
    cfg = rwb.Fig2Config(datasets=("synthetic-mnist",), widths=(200, 800), networks=3, pairs_per_net=10,
                         preprocess="raw01")
    df = __import__("pandas").concat([rwb.fig2_compute(cfg, {"dataset": "synthetic-mnist", "m": m}, ctx())
                                      for m in (200, 800)])
    res = {r.id: r for r in (claims.evaluate(c, df) for c in registry.figure("bridge", "fig2").claims)}
    assert res["F2-a-theta"].verdict == claims.PASS
    assert res["F2-a-half"].verdict == claims.FAIL, res["F2-a-half"]


def test_pair_margin_is_negative_and_fluctuation_nonnegative_at_init():
    """[H] fig6: untrained 10-class nets have mean PM < 0 and PF >= 0."""
    cfg = fig6.Fig6Config(panels=("mlp",), datasets=("synthetic-mnist",), mlp_width=200, steps=1, n_pairs=200,
                          n_checkpoints=1)
    df = fig6.fig6_compute(cfg, fig6.fig6_grid(cfg)[0], ctx())
    row = df[df.step == 0].iloc[0]
    assert row["PM"] < 0 and row["PF_mean"] >= 0 and row["PF_max"] >= row["PF_mean"]


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
