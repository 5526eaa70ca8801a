"""The exact break-point engine: closed form, two algorithms, jvp slopes, bridge theory.

The "[H] tests" 1-8 of ../shared/papers/SPEC-000-002.md §1.3."""
import math

import pytest
import torch
from torch import nn

from reproduce.papers.random_walk_bridge import breakpoints as bp
from reproduce.papers.random_walk_bridge import path_stats as ps
from reproduce.papers.random_walk_bridge.piecewise import PLMaxPool, PLReLU, along, flat_pattern

D = torch.float64


def mlp(d, m, depth, c, gen):
    dims = [d] + [m] * (depth - 1)
    layers = []
    for a, b in zip(dims, dims[1:]):
        lin = nn.Linear(a, b, bias=False)
        nn.init.normal_(lin.weight, std=math.sqrt(2 / a), generator=gen)
        layers += [lin, PLReLU()]
    head = nn.Linear(m, c, bias=False)
    nn.init.normal_(head.weight, std=math.sqrt(2 / m), generator=gen)
    return nn.Sequential(*layers, head).to(D)


def tiny_conv(gen):
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), PLReLU(), PLMaxPool(2),
                        nn.Conv2d(4, 4, 3, padding=1), PLReLU(), PLMaxPool(2), nn.Flatten(), nn.Linear(16, 3)).to(D)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(generator=gen)
        net[1].running_mean.normal_(generator=gen)
        net[1].running_var.uniform_(0.5, 2.0, generator=gen)
    return net.eval()


def ends(gen, *shape):
    return torch.randn(*shape, generator=gen, dtype=D), torch.randn(*shape, generator=gen, dtype=D)


def test_two_layer_closed_form_equals_both_algorithms(gen):
    net = mlp(12, 60, 2, 4, gen)
    x0, x1 = ends(gen, 12)
    t, R = bp.two_layer(net[0].weight, net[2].weight, x0, x1)
    a, b = net[0].weight @ x0, net[0].weight @ x1
    assert len(t) == int((torch.sign(a) != torch.sign(b)).sum()) > 5
    for nodes in (bp.region_walk(net, x0, x1), bp.bisect(net, x0, x1, grid=4)):
        assert len(nodes.t) == len(t) and nodes.unresolved == 0
        torch.testing.assert_close(nodes.t, t, rtol=0, atol=1e-10)
    # closed-form slopes (R_0 plus cumulative gaps) equal the jvp slopes at interval midpoints: SPEC-000-002.md §1.3 [H]
    # test 2, telescoping
    torch.testing.assert_close(bp.slopes(net, x0, x1, t)["R"], R, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("depth", [3, 4])
def test_walk_and_bisection_agree_on_mlps(gen, depth):
    net = mlp(10, 30, depth, 3, gen)
    x0, x1 = ends(gen, 10)
    w, b = bp.region_walk(net, x0, x1), bp.bisect(net, x0, x1, grid=8)
    assert len(w.t) == len(b.t) > 20 and b.unresolved == 0
    torch.testing.assert_close(w.t, b.t, rtol=0, atol=1e-10)
    assert torch.equal(w.layer, b.layer)


def pool_mlp(gen):
    """2 x 2 max-pool on a (1, 4, 4) input, then a ReLU MLP: 4 pool windows, 8 hidden units."""
    net = nn.Sequential(PLMaxPool(2), nn.Flatten(), nn.Linear(4, 8), PLReLU(), nn.Linear(8, 2)).to(D)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(generator=gen)
    return net


def agree_both_ways(net, x0, x1, atol):
    """Walk and bisection give the same nodes on x0 -> x1 and x1 -> x0, with nothing unresolved."""
    for a, b in ((x0, x1), (x1, x0)):
        w, s = bp.region_walk(net, a, b), bp.bisect(net, a, b, grid=8)
        assert len(w.t) == len(s.t) > 0 and s.unresolved == 0
        torch.testing.assert_close(w.t, s.t, rtol=0, atol=atol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ties_at_the_ends_are_no_nodes_and_not_unresolved(gen, dtype):
    """A pool window and ReLUs tied exactly at X0 (x0 = 0, zero biases), as MNIST's flat background does: both
    algorithms agree, in both directions, and the tie is neither a node nor an unresolved interval."""
    net = pool_mlp(gen)
    with torch.no_grad():
        net[2].bias[:3] = 0
    x1, x0 = torch.randn(1, 4, 4, generator=gen, dtype=D), torch.zeros(1, 4, 4, dtype=D)
    agree_both_ways(net.to(dtype), x0.to(dtype), x1.to(dtype), atol=1e-10 if dtype == D else 1e-5)


def test_slowly_separating_ties_at_the_ends(gen):
    """Pool windows tied at X0 whose entries separate at slope 4e-5 stay equal in float64 up to t ~ 1e-12: the end
    zone covers them, so neither algorithm reports a node or an unresolved interval there, in either direction."""
    net = pool_mlp(gen)
    x0 = torch.full((1, 4, 4), 0.5104275612840804, dtype=D)
    x1 = x0 + torch.randn(1, 4, 4, generator=gen, dtype=D)
    for k in range(2):   # windows 0, 1: a 4-way tie at X0; one entry falls at slope ~4e-5, three stay constant
        x1[0, :2, 2 * k:2 * k + 2] = x0[0, 0, 0]
        x1[0, 0, 2 * k] = x0[0, 0, 0] - 4e-5 * (1 + 0.1 * k)
    agree_both_ways(net, x0, x1, atol=1e-10)


@pytest.mark.slow
def test_conv_net_with_max_pool_and_batch_norm_dense_grid_and_float32(gen):
    net = tiny_conv(gen)
    x0, x1 = ends(gen, 2, 8, 8)
    w, b = bp.region_walk(net, x0, x1), bp.bisect(net, x0, x1, grid=16)
    assert len(w.t) == len(b.t) and b.unresolved == 0 and (~w.relu).sum() > 0
    torch.testing.assert_close(w.t, b.t, rtol=0, atol=1e-10)
    assert torch.equal(w.layer, b.layer) and torch.equal(w.relu, b.relu)
    # SPEC-000-002.md §1.3 [H] test 7: brute force on a dense grid counts the same ReLU switches
    ts = torch.linspace(0, 1, 400_001, dtype=D)
    codes, relu_cols = [], None
    for i in range(0, len(ts), 50_000):
        *_, tr = along(net, x0, x1 - x0, ts[i:i + 50_000])
        codes.append(flat_pattern(tr))
        relu_cols = torch.cat([torch.full((p.flatten(1).shape[1],), k == "relu") for p, k in zip(tr.pattern, tr.kinds)])
    codes = torch.cat(codes)
    assert int((codes[1:] != codes[:-1])[:, relu_cols].sum()) == int(w.relu.sum())
    # float32 with the looser verification tolerance finds the same number of ReLU nodes within 1%
    b32 = bp.bisect(net.float(), x0.float(), x1.float(), grid=16)
    assert abs(int(b32.relu.sum()) - int(w.relu.sum())) <= max(1, 0.01 * int(w.relu.sum()))


def test_slopes_jvp_masked_product_integral_and_finite_differences(gen):
    net = mlp(8, 20, 3, 2, gen)
    x0, x1 = ends(gen, 8)
    v = x1 - x0
    nodes = bp.region_walk(net, x0, x1)
    s = bp.slopes(net, x0, x1, nodes.t)
    R, edges = s["R"], torch.cat([torch.zeros(1, dtype=D), nodes.t, torch.ones(1, dtype=D)])
    # SPEC-000-002.md §1.3 [H] test 3: integral
    torch.testing.assert_close(s["f_ends"][1] - s["f_ends"][0], v.norm() * (R * torch.diff(edges)[:, None]).sum(0),
                               rtol=1e-8, atol=1e-12)
    mids = (edges[1:] + edges[:-1]) / 2
    w1, w2, w3 = net[0].weight, net[2].weight, net[4].weight
    for k in range(len(mids)):
        x = x0 + mids[k] * v
        g1 = (w1 @ x > 0).to(D)
        g2 = (w2 @ (g1 * (w1 @ x)) > 0).to(D)
        masked = w3 @ (g2 * (w2 @ (g1 * (w1 @ (v / v.norm())))))       # §1.3 [H] test 4: W_L G W G W xi
        torch.testing.assert_close(R[k], masked, rtol=1e-10, atol=1e-12)
        h = (edges[k + 1] - edges[k]) / 4                                # §1.3 [H] test 5: finite differences inside
        fd = (net(x0 + (mids[k] + h) * v) - net(x0 + (mids[k] - h) * v)) / (2 * h * v.norm())
        torch.testing.assert_close(fd, R[k], rtol=1e-6, atol=1e-9)


def test_grid_estimate_is_a_lower_bound(gen):
    net = mlp(10, 30, 4, 3, gen)
    x0, x1 = ends(gen, 10)
    exact = int(bp.region_walk(net, x0, x1).relu.sum())
    assert bp.grid_count(net, x0, x1, 1000) <= exact
    assert bp.grid_count(net, x0, x1, 3) < exact


def test_random_walk_bridge_deviation_matches_theory(gen):
    """SPEC-000-002.md §1.3 [H] test 8: i.i.d. gaps -> RMS of T_{K/2} = sigma sqrt(K)/2 within 5%.

    `pooled` reproduces it from sums."""
    k, sigma, n = 400, 0.3, 4000
    z = torch.randn(n, k, generator=gen, dtype=D) * sigma
    s = torch.cumsum(z, 1)
    t_mid = s[:, k // 2 - 1] - 0.5 * s[:, -1]
    assert float(t_mid.pow(2).mean().sqrt()) == pytest.approx(0.5 * sigma * math.sqrt(k), rel=0.05)
    rows = [{"K": k, "c": 1, "gap_sq": float((zz ** 2).sum()), "gap_sum": float(zz.sum()), "defl_mid_sq": 0.0,
             "defl_index_sq": 0.0, "defl_half_sq": 0.0} for zz in z[:200]]
    out = ps.pooled(rows)
    assert out["sigma"] == pytest.approx(sigma, rel=0.02) and out["K_mean"] == k
    assert out["ggd_mid"] == pytest.approx(0.5 * out["sigma"] * math.sqrt(k), rel=1e-9)


def test_deflection_of_a_straight_line_is_zero_and_normalized_slopes_are_tangent(gen):
    t = torch.tensor([0.2, 0.5, 0.7], dtype=D)
    R = torch.ones(4, 2, dtype=D)
    assert all(float(v.abs().max()) == 0 for v in ps.deflections(t, R).values())
    f, r = ends(gen, 5, 3)
    rn = ps.normalize_slopes(f, r)
    torch.testing.assert_close((rn * f).sum(-1), torch.zeros(5, dtype=D), rtol=0, atol=1e-12)


def test_linear_part_slopes_equal_forward_mode_ad(gen):
    """The two-pass slopes (linear part under the frozen pattern) equal torch.func.jvp, biases and BN included."""
    net = tiny_conv(gen)
    x0, x1 = ends(gen, 2, 8, 8)
    ts = torch.rand(5, generator=gen, dtype=D)
    f, fdot, tr = along(net, x0, x1 - x0, ts)
    xs = x0[None] + ts[:, None, None, None] * (x1 - x0)[None]
    f_ad, fdot_ad = torch.func.jvp(net, (xs,), ((x1 - x0)[None].expand_as(xs),))
    torch.testing.assert_close(f, f_ad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fdot, fdot_ad, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError):
        along(net.train(), x0, x1 - x0, ts)


def padded_pool_net(gen):
    """Conv, ReLU, then a torchvision-style 3x3 / stride 2 / padding 1 max-pool on (1, 8, 8) inputs."""
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), PLReLU(), PLMaxPool(3, 2, 1), nn.Flatten(),
                        nn.Linear(48, 2)).to(D)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(generator=gen)
    return net


def test_overlapping_padded_max_pool_walk_equals_bisection(gen):
    """torchvision-style 3x3 / stride 2 / padding 1 max-pool: both algorithms give the same nodes."""
    net = padded_pool_net(gen)
    x0, x1 = ends(gen, 1, 8, 8)
    assert torch.equal(net(x0[None]), torch.nn.functional.max_pool2d(net[1](net[0](x0[None])), 3, 2, 1).flatten(1) @
    net[4].weight.T + net[4].bias)
    w, b = bp.region_walk(net, x0, x1), bp.bisect(net, x0, x1, grid=8)
    assert len(w.t) == len(b.t) > 10 and (~w.relu).sum() > 0 and b.unresolved == 0
    torch.testing.assert_close(w.t, b.t, rtol=0, atol=1e-10)
