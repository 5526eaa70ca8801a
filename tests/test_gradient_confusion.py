"""Paper 003 core: minibatch gradients, cosines, measurement that does not perturb training; the Fig 1 toy."""
import math
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from reproduce import claims, registry
from reproduce.core import confusion as conf
from reproduce.papers import gradient_confusion as gc
from reproduce.runner import Context

D = torch.float64


def small_net(gen):
    torch.manual_seed(int(torch.randint(1 << 30, (1,), generator=gen)))
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3)).to(D)


def test_minibatch_grads_equal_a_plain_autograd_loop_and_leave_bn_stats_alone(gen):
    net = small_net(gen)
    batches = [(torch.randn(5, 6, generator=gen, dtype=D), torch.randint(0, 3, (5,), generator=gen)) for _ in range(4)]
    before = {k: v.clone() for k, v in net.named_buffers()}
    g = conf.minibatch_grads(net, nn.functional.cross_entropy, batches)
    for k, v in net.named_buffers():
        assert torch.equal(v, before[k]), k
    for b, (x, y) in enumerate(batches):
        net.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        ref = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
        torch.testing.assert_close(g[b], ref, rtol=1e-12, atol=1e-14)
        for k, v in net.named_buffers():   # restore what this reference pass changed
            v.copy_(before[k])


def test_cosines_symmetric_unit_diagonal_and_pairwise_match(gen):
    g = torch.randn(6, 20, generator=gen, dtype=D)
    u = g / g.norm(dim=1, keepdim=True)
    m = u @ u.T
    torch.testing.assert_close(m, m.T)
    torch.testing.assert_close(m.diagonal(), torch.ones(6, dtype=D))
    pairs = conf.all_pair_cosines(g)
    naive = torch.tensor([float(g[i] @ g[j] / (g[i].norm() * g[j].norm())) for i in range(6) for j in range(i + 1, 6)],
                         dtype=D)
    torch.testing.assert_close(pairs, naive)
    torch.testing.assert_close(conf.cosines(g[:3], g[3:]), torch.stack([m[0, 3], m[1, 4], m[2, 5]]))
    assert torch.isnan(conf.cosines(torch.zeros(1, 20), g[:1]))[0]


def test_linear_regression_cosines_are_exact(gen):
    x, w, y = torch.randn(7, 4, generator=gen, dtype=D), torch.randn(4, generator=gen, dtype=D), torch.randn(7, generator=gen, dtype=D)
    r = x @ w - y
    torch.testing.assert_close(conf.linreg_cosines(x, r), conf.all_pair_cosines(r[:, None] * x))


def test_measuring_does_not_change_training(gen):
    def run(measure):
        g = torch.Generator().manual_seed(3)
        net = small_net(torch.Generator().manual_seed(1))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        x, y = torch.randn(64, 6, generator=g, dtype=D), torch.randint(0, 3, (64,), generator=g)
        mg = torch.Generator().manual_seed(9)   # measurement has its own generator
        losses = []
        for step in range(20):
            idx = torch.randint(64, (8,), generator=g)
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
            if measure and step % 5 == 0:
                b = [(x[i], y[i]) for i in torch.randint(64, (4, 8), generator=mg)]
                conf.minibatch_grads(net, nn.functional.cross_entropy, b)
        return losses
    assert run(True) == run(False)


def test_fig1_claims_hold_and_can_fail():
    g = torch.Generator().manual_seed(0)
    ctx = Context(torch.device("cpu"), 0, g, Path("."))
    cfg = gc.Fig1Config(epochs=150)
    df = pd.concat([gc.fig1_compute(cfg, p, ctx) for p in gc.fig1_grid(cfg)])
    res = {r.id: r for r in (claims.evaluate(c, df) for c in registry.figure("confusion", "fig1").claims)}
    assert all(r.verdict == claims.PASS for r in res.values()), res
    # with a planted linear target both models interpolate: the over- vs under-parameterized contrast must fail
    cfg = gc.Fig1Config(epochs=150, target="planted")
    df = pd.concat([gc.fig1_compute(cfg, p, ctx) for p in gc.fig1_grid(cfg)])
    assert claims.evaluate(registry.figure("confusion", "fig1").claims[0], df).verdict == claims.FAIL
    assert math.isfinite(df["value"].iloc[0])
