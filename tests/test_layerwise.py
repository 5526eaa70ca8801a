"""The layer-by-layer engine equals both reference algorithms node for node; the authors' Fig 4/5 networks."""
import pytest
import torch
from test_breakpoints import D, ends, mlp, padded_pool_net, pool_mlp, tiny_conv
from torch import nn

from reproduce.papers.random_walk_bridge import breakpoints as bp
from reproduce.papers.random_walk_bridge import layerwise as lw
from reproduce.papers.random_walk_bridge import mixed as mx
from reproduce.papers.random_walk_bridge import models
from reproduce.papers.random_walk_bridge.piecewise import PLMaxPool, PLReLU, relu_count


def same_nodes(a, b, atol=1e-10):
    assert len(a.t) == len(b.t) and a.unresolved == b.unresolved == 0
    torch.testing.assert_close(a.t, b.t, rtol=0, atol=atol)
    assert torch.equal(a.layer, b.layer) and torch.equal(a.relu, b.relu)


def same_slopes(net, x0, x1, fast):
    """The slopes and values the engine carried equal the jvp pass (`slopes`) on its own nodes."""
    ref = bp.slopes(net, x0, x1, fast.t)
    edges = torch.cat([torch.zeros(1, dtype=D), fast.t, torch.ones(1, dtype=D)])
    real = edges[1:] > edges[:-1]   # simultaneous switches leave zero-length intervals: no slope to compare
    for key, got, want in (("R", fast.R[real], ref["R"][real]), ("f_mid", fast.f_mid, ref["f_mid"]),
                           ("f_nodes", fast.f, ref["f_nodes"])):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9, msg=key)


def randomize_bn(net, gen):
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=gen), m.bias.normal_(0, 0.3, generator=gen)
                m.running_mean.normal_(0, 0.3, generator=gen), m.running_var.uniform_(0.5, 2, generator=gen)
    return net.eval()


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_equals_the_region_walk_and_bisection_on_mlps(gen, depth):
    net = mlp(10, 30, depth, 3, gen)
    x0, x1 = ends(gen, 10)
    fast = lw.layerwise(net, x0, x1, chunk=4)
    assert len(fast.t) > 8
    same_slopes(net, x0, x1, fast)
    same_nodes(fast, bp.region_walk(net, x0, x1))
    same_nodes(fast, bp.bisect(net, x0, x1, grid=8))


def test_conv_net_with_average_and_max_pooling_and_batch_norm(gen):
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), PLReLU(), nn.AvgPool2d(2),
                        nn.Conv2d(4, 6, 3, padding=1), PLReLU(), PLMaxPool(2), nn.Flatten(), nn.Linear(24, 3)).to(D)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(generator=gen)
    randomize_bn(net, gen)
    x0, x1 = ends(gen, 2, 8, 8)
    fast = lw.layerwise(net, x0, x1, chunk=16)
    assert (~fast.relu).sum() > 0 and fast.relu.sum() > 20
    same_slopes(net, x0, x1, fast)
    same_nodes(fast, bp.region_walk(net, x0, x1))
    net2 = tiny_conv(torch.Generator().manual_seed(3))
    same_nodes(lw.layerwise(net2, x0, x1), bp.bisect(net2, x0, x1, grid=16))


def test_pre_activation_wrn_and_post_activation_resnet_blocks_with_eval_bn(gen):
    for net in (models.wrn(10, 2, 3, width=0.25), models.resnet(18, 2, 3, width=1 / 16)):
        net = randomize_bn(models.he_init(net, gen), gen).to(D)
        x0, x1 = ends(gen, 2, 8, 8)
        fast = lw.layerwise(net, x0, x1)
        assert len(fast.t) > 50
        same_slopes(net, x0, x1, fast)
        same_nodes(fast, bp.bisect(net, x0, x1, grid=32), atol=1e-9)


def padded_case(gen):
    """A conv net with zero biases on MNIST-like inputs: zero borders and a shared flat background."""
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, bias=False), PLReLU(), PLMaxPool(2), nn.Conv2d(3, 4, 3,
                        padding=1), PLReLU(), PLMaxPool(2), nn.Flatten(), nn.Linear(16, 8), PLReLU(),
                        nn.Linear(8, 2)).to(D)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(generator=gen)
        net[3].bias.zero_()
    x0, x1 = torch.zeros(1, 8, 8, dtype=D), torch.zeros(1, 8, 8, dtype=D)
    x0[0, 2:6, 2:5] = torch.rand(4, 3, generator=gen, dtype=D)
    x1[0, 3:6, 2:6] = torch.rand(3, 4, generator=gen, dtype=D)
    return net, x0, x1


def test_padded_mnist_like_inputs_with_exact_ties_both_directions(gen):
    """Zero borders and a shared flat background (equal pixels at both ends), zero biases: ReLUs and pool windows
    tied along the whole path or at one end are no nodes, for the engine as for the references."""
    net, x0, x1 = padded_case(gen)
    for a, b in ((x0, x1), (x1, x0)):
        fast = lw.layerwise(net, a, b, chunk=3)
        assert len(fast.t) > 5
        same_slopes(net, a, b, fast)
        same_nodes(fast, bp.region_walk(net, a, b))
        same_nodes(fast, bp.bisect(net, a, b, grid=8))
    tied = pool_mlp(gen)
    with torch.no_grad():
        tied[2].bias[:3] = 0
    z, r = torch.zeros(1, 4, 4, dtype=D), torch.randn(1, 4, 4, generator=gen, dtype=D)
    same_nodes(lw.layerwise(tied, z, r), bp.region_walk(tied, z, r))
    same_nodes(lw.layerwise(tied, r, z), bp.region_walk(tied, r, z))


def test_chunk_size_changes_nothing_and_slopes_agree(gen):
    net = mlp(10, 40, 4, 3, gen)
    x0, x1 = ends(gen, 10)
    small, big = lw.layerwise(net, x0, x1, chunk=2), lw.layerwise(net, x0, x1, chunk=10_000)
    same_nodes(small, big, atol=1e-12)   # batched products round differently per chunk: not bit for bit
    walk = bp.region_walk(net, x0, x1)
    torch.testing.assert_close(bp.slopes(net, x0, x1, small.t)["R"], bp.slopes(net, x0, x1, walk.t)["R"],
                               rtol=0, atol=1e-9)
    # the outputs the engine carried to every node equal a plain forward pass there
    direct = bp.slopes(net, x0, x1, small.t)
    given = bp.slopes(net, x0, x1, small.t, f_nodes=small.f)
    torch.testing.assert_close(given["f_nodes"], direct["f_nodes"], rtol=0, atol=1e-12)
    torch.testing.assert_close(given["f_ends"], direct["f_ends"], rtol=0, atol=1e-12)


def test_a_model_without_a_plan_is_a_type_error():
    class Odd(nn.Module):
        def forward(self, x):
            return x * 2
    assert not lw.plannable(nn.Sequential(nn.Linear(2, 2), Odd()))
    with pytest.raises(TypeError):
        lw.plan(Odd())


@pytest.mark.parametrize("convs,units", [(3, 89_856), (4, 102_400), (5, 127_488), (6, 177_664), (8, 202_752)])
def test_authors_vgg_relu_units(convs, units):
    assert relu_count(models.authors_vgg(convs, 3, 10), torch.zeros(1, 3, 28, 28)) == units


@pytest.mark.parametrize("depth", [10, 16, 22, 28, 34, 40])
def test_authors_wrn_relu_units_and_plan_equals_forward(depth, gen):
    n = (depth - 4) // 6
    net = models.wrn(depth, 1, 10)
    assert relu_count(net, torch.zeros(1, 1, 28, 28)) == 43_904 * n + 12_544
    net = randomize_bn(models.he_init(net, gen), gen)
    x = torch.randn(2, 1, 28, 28, generator=gen)
    state = (x,)
    with torch.no_grad():
        for kind, fn in lw.plan(net):
            state = fn(state) if kind == "affine" else (torch.relu(state[0]), *state[1:])
        torch.testing.assert_close(state[0], net(x))
    with pytest.raises(ValueError):
        models.wrn(12, 1, 10)


def test_overlapping_padded_max_pool(gen):
    """torchvision-style 3x3 / stride 2 / padding 1 max-pool (padding never wins)."""
    net = padded_pool_net(gen)
    x0, x1 = ends(gen, 1, 8, 8)
    fast = lw.layerwise(net, x0, x1, chunk=8)
    assert (~fast.relu).sum() > 0
    same_nodes(fast, bp.region_walk(net, x0, x1))
    same_slopes(net, x0, x1, fast)


def mixed_equals_float64(net, x0, x1, **kw):
    """float32 bulk + float64 verification equals the float64 engines node for node; returns its stats."""
    stats = {}
    got = mx.mixed(net, x0, x1, stats=stats, **kw)
    same_nodes(got, lw.layerwise(net, x0, x1), atol=1e-12)
    same_nodes(got, bp.region_walk(net, x0, x1))
    return stats


def test_float32_bulk_with_float64_verification_gives_the_float64_answer(gen):
    nets = [(mlp(10, 60, 3, 3, gen), ends(gen, 10))]
    conv = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), PLReLU(), nn.AvgPool2d(2),
                         nn.Conv2d(4, 6, 3, padding=1), PLReLU(), PLMaxPool(2), nn.Flatten(), nn.Linear(24, 3)).to(D)
    with torch.no_grad():
        for p in conv.parameters():
            p.normal_(generator=gen)
    nets.append((randomize_bn(conv, gen), ends(gen, 2, 8, 8)))
    wrn = randomize_bn(models.he_init(models.wrn(10, 2, 3, width=0.25), gen), gen).to(D)
    nets.append((wrn, ends(gen, 2, 8, 8)))
    verified = 0
    for net, (x0, x1) in nets:
        stats = mixed_equals_float64(net, x0, x1, batch=7)
        assert stats["candidates"] > 20
        verified += stats["verified"]
    assert verified > 100   # the float64 check, not the fallback, settled most intervals


def test_mixed_precision_on_padded_inputs_with_exact_ties(gen):
    """Zero borders and a shared background: ties and dead zeros are refined in float64, never guessed."""
    net, x0, x1 = padded_case(gen)
    for a, b in ((x0, x1), (x1, x0)):
        mixed_equals_float64(net, a, b, batch=5)


def test_wrong_float32_candidates_are_caught_by_the_float64_check(gen, monkeypatch):
    """Candidates dropped, doubled, shifted past their neighbours or invented: the answer is still float64's."""
    net = mlp(10, 60, 3, 3, gen)
    x0, x1 = ends(gen, 10)
    true = lw.layerwise(net, x0, x1).t
    g = torch.Generator().manual_seed(1)
    bad = torch.cat([true[::3], true[1::3] + 1e-3 * torch.rand(len(true[1::3]), generator=g, dtype=D),
                     torch.rand(7, generator=g, dtype=D)]).clamp(1e-6, 1 - 1e-6).sort().values
    monkeypatch.setattr(mx, "candidates", lambda *a, **k: bad)
    stats = mixed_equals_float64(net, x0, x1, batch=4)
    assert stats["refined"] > 5 and stats["verified"] > 5
    monkeypatch.setattr(mx, "candidates", lambda *a, **k: torch.zeros(0, dtype=D))   # float32 found nothing
    assert mixed_equals_float64(net, x0, x1)["refined"] == 1


def test_mixed_precision_wants_float64_inputs(gen):
    net = mlp(4, 5, 2, 2, gen)
    x0, x1 = ends(gen, 4)
    with pytest.raises(ValueError):
        mx.mixed(net.float(), x0.float(), x1.float())
