"""Tangent-kernel engines, derived kernels, Hessian norm and batched GD against naive references (float64)."""
import math

import pytest
import torch

from reproduce.core import ntk
from reproduce.core.gd import batched_gd
from reproduce.core.hessian import hessian_norm, hessian_norms
from reproduce.papers.transition_to_linearity import kernels

D = torch.float64


def shallow(gen, r, c, m):
    return {"w": torch.randn(r, m, generator=gen, dtype=D), "b": torch.randn(r, m, generator=gen, dtype=D),
            "V": torch.randn(r, c, m, generator=gen, dtype=D)}


def f43(x, m):
    return lambda q: (x[:, None] * q["w"][None, :] + q["b"][None, :]).clamp_min(0) @ q["V"].T / math.sqrt(m)


def naive_kernel(f, p):
    """J J^T from a full autograd Jacobian over the flattened parameters."""
    names = list(p)
    flat = torch.cat([p[k].reshape(-1) for k in names])
    def g(z):
        parts = torch.split(z, [p[k].numel() for k in names])
        return f({k: t.reshape(p[k].shape) for k, t in zip(names, parts)}).reshape(-1)
    j = torch.autograd.functional.jacobian(g, flat)
    return j @ j.T


@pytest.mark.parametrize("m", [5, 30])
def test_shallow_closed_form_matches_both_generic_engines(gen, m):
    x = torch.randn(6, generator=gen, dtype=D) * 5
    p = shallow(gen, 2, 3, m)
    x[3] = x[1]                                   # a tie between two inputs
    p["w"][0, 0] = 0.0                            # a unit with w = 0 (active everywhere iff b > 0)
    p["b"][0, 0] = 1.0
    p["b"][1, 1] = -p["w"][1, 1] * x[2]           # a threshold exactly at an input (ReLU'(0) = 0)
    k, k_scan = kernels.ntk_shallow(p, x, chunk=4), kernels.ntk_shallow_scan(p, x)
    for r in range(2):
        q = {n: t[r] for n, t in p.items()}
        ref = naive_kernel(f43(x, m), q)
        for other in (k[r], k_scan[r], ntk.ntk_jacobian(f43(x, m), q), ntk.ntk_columns(f43(x, m), q, chunk=5)):
            assert (other - ref).abs().max() <= 1e-10 * ref.abs().max()


@pytest.mark.parametrize("scale", ["literal", "ntk"])
@pytest.mark.parametrize("bias", [True, False])
def test_bottleneck_closed_form_matches_autograd(gen, scale, bias):
    m, mb, c = 7, 3, 3
    x = torch.randn(5, generator=gen, dtype=D) * 5
    p = {"W1": torch.randn(1, m, generator=gen, dtype=D), "b1": torch.randn(1, m, generator=gen, dtype=D),
         "W2": torch.randn(1, mb, m, generator=gen, dtype=D), "W3": torch.randn(1, m, mb, generator=gen, dtype=D),
         "W4": torch.randn(1, c, m, generator=gen, dtype=D)}
    if not bias:
        p.pop("b1")
    k = kernels.ntk_bottleneck(p, x, scale)[0]
    ref = naive_kernel(lambda q: kernels.bottleneck_forward(q, x, scale)["f"][0], p)
    assert (k - ref).abs().max() <= 1e-10 * ref.abs().max()
    assert (ntk.ntk_columns(lambda q: kernels.bottleneck_forward(q, x, scale)["f"][0], p) - ref).abs().max() \
        <= 1e-10 * ref.abs().max()


def test_generic_engines_on_a_small_mlp(gen):
    x = torch.randn(4, 3, generator=gen, dtype=D)
    p = {"A": torch.randn(6, 3, generator=gen, dtype=D), "B": torch.randn(2, 6, generator=gen, dtype=D)}
    f = lambda q: torch.tanh(x @ q["A"].T) @ q["B"].T  # noqa: E731
    ref = naive_kernel(f, p)
    assert (ntk.ntk_jacobian(f, p, chunk=3) - ref).abs().max() <= 1e-10 * ref.abs().max()
    assert (ntk.ntk_columns(f, p, chunk=3) - ref).abs().max() <= 1e-10 * ref.abs().max()


def test_kernel_symmetric_psd(gen):
    x = torch.randn(8, generator=gen, dtype=D) * 5
    k = kernels.ntk_shallow(shallow(gen, 1, 3, 40), x)[0]
    torch.testing.assert_close(k, k.T)
    assert torch.linalg.eigvalsh(k).min() >= -1e-10 * k.abs().max()


def test_derived_kernels_match_autograd(gen):
    m = 9
    x = torch.randn(4, generator=gen, dtype=D) * 5
    q = {n: t[0] for n, t in shallow(gen, 1, 3, m).items()}
    k = kernels.ntk_shallow({n: t[None] for n, t in q.items()}, x)[0]
    logits = f43(x, m)(q)
    ref_soft = naive_kernel(lambda z: torch.softmax(f43(x, m)(z), dim=1), q)
    ref_swish = naive_kernel(lambda z: kernels.swish(f43(x, m)(z)), q)
    torch.testing.assert_close(kernels.softmax_kernel(k, logits), ref_soft, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(kernels.swish_kernel(k, logits), ref_swish, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("xv", [0.3, -2.0, 10.0])
def test_hessian_norm_of_eq43_is_exact(gen, xv):
    m, c = 50, 3
    q = {n: t[0] for n, t in shallow(gen, 1, c, m).items()}
    flat = torch.cat([q["w"], q["b"], q["V"].reshape(-1)])
    def f(z):
        w, b, v = torch.split(z, [m, m, c * m])
        return torch.relu(xv * w + b) @ v.reshape(c, m)[1] / math.sqrt(m)
    norm, residual, _ = hessian_norm(f, flat, generator=gen)
    assert norm == pytest.approx(math.sqrt(1 + xv**2) / math.sqrt(m), rel=1e-6)
    assert residual < 1e-6


def test_batched_gd_equals_separate_runs(gen):
    m, n = 20, 10
    x = torch.randn(n, generator=gen, dtype=D) * 3
    y = torch.randint(3, (n,), generator=gen)
    p = shallow(gen, 3, 3, m)
    lr = torch.tensor([0.05, 0.1, 0.02], dtype=D)

    def loss(q):
        h = x[None, :, None] * q["w"][:, None, :] + q["b"][:, None, :]
        logits = h.clamp_min(0) @ q["V"].transpose(1, 2) / math.sqrt(m)
        return torch.nn.functional.cross_entropy(logits.transpose(1, 2), y[None].expand(len(logits), n),
                                                 reduction="none").mean(1)
    seen = []
    joint, jl, js = batched_gd(p, loss, lr, stop_loss=0.3, max_steps=400, on_eval=lambda s, q, l: seen.append(s))
    assert seen[0] == 0 and seen[-1] == int(js.max())
    for r in range(3):
        one, ol, os_ = batched_gd({k: v[r:r + 1] for k, v in p.items()}, loss, lr[r:r + 1], stop_loss=0.3,
                                  max_steps=400)
        assert int(os_) == int(js[r])
        for k in p:
            torch.testing.assert_close(one[k][0], joint[k][r], rtol=1e-12, atol=1e-12)


def test_batched_hessian_norms_match_exact_and_dense(gen):
    """Every output's Hessian norm at once: eq. 43 closed form, and a dense torch.func.hessian reference."""
    m, c, xs = 40, 3, torch.tensor([0.3, -2.0, 10.0], dtype=D)
    q = {n: t[0] for n, t in shallow(gen, 1, c, m).items()}
    flat = torch.cat([q["w"], q["b"], q["V"].reshape(-1)])

    def f(z):
        w, b, v = torch.split(z, [m, m, c * m])
        return (torch.relu(xs[:, None] * w + b) @ v.reshape(c, m).T / math.sqrt(m)).reshape(-1)
    norms, residual, _ = hessian_norms(f, flat, generator=gen)
    exact = (torch.sqrt(1 + xs**2) / math.sqrt(m)).repeat_interleave(c)
    torch.testing.assert_close(norms, exact, rtol=1e-6, atol=0)
    assert residual.max() < 1e-6

    soft = lambda z: torch.softmax(f(z).reshape(3, c), dim=1).reshape(-1)  # noqa: E731
    norms, _, _ = hessian_norms(soft, flat, iters=2000, tol=1e-12, generator=gen)
    dense = torch.func.hessian(soft)(flat)                                         # (K, P, P)
    ref = torch.linalg.eigvalsh(dense).abs().amax(-1)
    torch.testing.assert_close(norms, ref, rtol=1e-6, atol=1e-12)


def test_planner_prefers_the_closed_form_then_what_fits():
    assert ntk.plan(180, 10**6, "closed-scan", 1) == "closed-scan"
    assert ntk.plan(180, 10**6, None, 10**12) == "jacobian"
    assert ntk.plan(180, 10**6, None, 10**6) == "columns"
