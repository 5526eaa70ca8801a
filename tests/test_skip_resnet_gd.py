"""Paper 002 at small sizes: the hand-written backward, hard invariants, and claims that can fail.

The invariants are the [H] items of ../shared/papers/SPEC-000-002.md §3."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from reproduce import claims, registry
from reproduce.papers import skip_resnet_gd as skip
from reproduce.papers.skip_resnet_gd import model as sr
from reproduce.papers.skip_resnet_gd.common import pick_lr
from reproduce.runner import Context

D = torch.float64


def ctx(seed=0):
    return Context(torch.device("cpu"), seed, Path("."))


@pytest.mark.parametrize("depth,block", [(7, 16), (12, 3), (12, 1)])
def test_fast_forward_backward_match_the_autograd_module(gen, depth, block):
    net = sr.SkipResNet(4, depth, runs=3, generator=gen)
    with torch.no_grad():
        net.U.normal_(generator=gen)
    x, y = torch.randn(9, 4, generator=gen, dtype=D), torch.randn(9, generator=gen, dtype=D)
    f = net(x)
    ((f - y) ** 2).sum().div(2).backward()
    U, V = net.U.detach()[..., 0], net.V.detach()[:, :, 0, :]
    f2, saved = sr.forward(U, V, x, block=block)
    du, dv = sr.backward(U, V, saved, f2 - y, block=block)
    torch.testing.assert_close(f2, f.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(du, net.U.grad[..., 0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(dv, net.V.grad[:, :, 0, :], rtol=1e-10, atol=1e-12)


def test_f_is_zero_at_init_and_v_gets_no_gradient(gen):
    cfg = skip.Fig1Config(n_test=50)
    U, V = skip.init(cfg, 6, [torch.Generator().manual_seed(s) for s in range(2)])
    xtr, ytr, *_ = skip.data(cfg, torch.Generator().manual_seed(0))
    f, saved = sr.forward(U, V, xtr)
    assert torch.all(f == 0)
    du, dv = sr.backward(U, V, saved, (f - ytr) / len(ytr))
    assert torch.all(dv == 0) and du.abs().max() > 0


def test_nn_and_rf_share_iterations_0_and_1_then_differ():
    cfg = skip.Fig1Config(n_test=50, steps=5, seeds=1, lr_grid=(5.0,))
    df = skip.fig1_compute(cfg, {"depths": [10]}, ctx())
    tr = df[df.quantity == "train_loss"].pivot_table(index="step", columns="model", values="value")
    assert tr.loc[0, "nn"] == tr.loc[0, "rf"] and tr.loc[1, "nn"] == tr.loc[1, "rf"]
    assert tr.loc[5, "nn"] != tr.loc[5, "rf"]


def test_path_norm_is_zero_at_init_and_one_for_the_exact_solution():
    cfg = skip.Fig1Config()
    U, V = skip.init(cfg, 5, [torch.Generator().manual_seed(s) for s in range(2)])
    assert torch.all(sr.path_norm(U, V) == 0)
    d = cfg.d
    U, V = torch.zeros(1, 4, d + 1, dtype=D), torch.zeros(1, 4, d + 1, dtype=D)
    V[0, 2, 0] = 1.0          # block 2: v = (e_1, 0), u = e_D
    U[0, 2, -1] = 1.0
    xtr, ytr, *_ = skip.data(cfg, torch.Generator().manual_seed(0))
    f, _ = sr.forward(U, V, xtr)
    torch.testing.assert_close(f[0], ytr)
    assert sr.path_norm(U, V).item() == pytest.approx(1.0)
    U[0, 2, -1] = 2.0         # the norm is not scale-blind
    assert sr.path_norm(U, V).item() == pytest.approx(2.0)


def test_batched_gd_equals_separate_runs():
    cfg = skip.Fig1Config(n_test=50)
    xtr, ytr, xte, yte = skip.data(cfg, torch.Generator().manual_seed(0))
    U, V = skip.init(cfg, 8, [torch.Generator().manual_seed(s) for s in range(3)])
    lr = torch.tensor([0.2, 0.5, 1.0], dtype=D)
    together = skip.train(U, V, xtr, ytr, xte, yte, steps=20, evals=[20], lr=lr, train_v=torch.ones(3, dtype=bool))
    for i in range(3):
        alone = skip.train(U[i:i + 1], V[i:i + 1], xtr, ytr, xte, yte, steps=20, evals=[20], lr=lr[i:i + 1],
                           train_v=torch.ones(1, dtype=bool))
        torch.testing.assert_close(alone[0]["train"][0], together[0]["train"][i], rtol=1e-12, atol=0)


def test_padded_mixed_depth_batch_equals_separate_runs():
    """Shallow runs padded with zero blocks, GD and regularized Adam in one batch, give their own trajectories."""
    cfg = skip.Fig2Config(n_test=50, steps=30, seeds=2, lr_grid=(2.5, 5.0))
    both = skip.fig2_compute(cfg, {"depths": [3, 5]}, ctx())
    for L in (3, 5):
        alone = skip.fig2_compute(cfg, {"depths": [L]}, ctx())
        sel = both[both.depth == L].reset_index(drop=True)
        assert len(sel) == len(alone) > 0 and set(sel.kind) == {"regularized", "unregularized"}
        np.testing.assert_allclose(sel["value"], alone["value"], rtol=1e-10, atol=1e-15)
        assert (sel["chosen"].to_numpy() == alone["chosen"].to_numpy()).all()


def test_depth_buckets():
    assert skip.depth_buckets((2, 5, 10, 20, 50, 100)) == [[50, 100], [10, 20], [5], [2]]
    assert skip.depth_buckets((2, 10, 100)) == [[100], [10], [2]]


def test_gd_reaches_zero_loss_at_depth_2_where_rf_cannot():
    """A hard-invariant check of SPEC-000-002.md §3.3, 002-fig1: at L = 2 nn fits f* (one neuron), rf plateaus."""
    cfg = skip.Fig1Config(n_test=200, steps=3000, seeds=1, lr_grid=(4.0,))
    df = skip.fig1_compute(cfg, {"depths": [2]}, ctx())
    final = df[(df.step == 3000) & (df.quantity == "train_loss")].set_index("model")["value"]
    assert final["nn"] < 1e-3 * final["rf"]


def _fig1_frame(nn_final, rf_final):
    rows = []
    for run in range(4):   # four seeds within 5% of each other
        for L in (2, 10, 100):
            for mdl, fin in (("nn", nn_final[L]), ("rf", rf_final[L])):
                for step, v in ((0, 0.02), (100, fin * (1 + 0.05 * run / 3))):
                    for q in ("train_loss", "test_error"):
                        rows.append({"model": mdl, "lr_c": 5.0, "lr": 5.0 / L, "run": run, "step": step,
                                     "quantity": q, "value": v, "diverged": False, "chosen": True, "depth": L,
                                     "d": 10})
    return pd.DataFrame(rows)


def test_fig1_claims_follow_the_data():
    good = _fig1_frame({2: 1e-30, 10: 1e-18, 100: 1e-10}, {2: 7e-3, 10: 1.5e-3, 100: 1.1e-10})
    res = {r.id: r for r in (claims.evaluate(c, good) for c in registry.figure("skip", "fig1").claims)}
    assert all(r.verdict == claims.PASS for r in res.values()), res
    bad = _fig1_frame({2: 1e-3, 10: 1e-3, 100: 1e-3}, {2: 1e-3, 10: 1e-2, 100: 1e-1})
    res = {r.id: r for r in (claims.evaluate(c, bad) for c in registry.figure("skip", "fig1").claims)}
    assert all(r.verdict == claims.FAIL for r in res.values()), res


def test_path_norm_gradient_matches_autograd(gen):
    U = torch.randn(2, 5, 4, generator=gen, dtype=D).requires_grad_(True)
    V = torch.randn(2, 5, 4, generator=gen, dtype=D).requires_grad_(True)
    norm, du, dv = sr.path_norm(U.detach(), V.detach(), grad=True)
    # naive reference: the printed product of matrices, reduced by l1
    ref = []
    for b in range(2):
        r = torch.zeros(4, dtype=D)
        r[-1] = 1.0
        for l in reversed(range(5)):
            r = r @ (torch.eye(4, dtype=D) + torch.outer(U[b, l].abs(), V[b, l].abs()))
        ref.append(r[:-1].sum())
    ref = torch.stack(ref)
    gu, gv = torch.autograd.grad(ref.sum(), [U, V])
    torch.testing.assert_close(norm, ref.detach(), rtol=1e-12, atol=0)
    torch.testing.assert_close(du, gu, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(dv, gv, rtol=1e-12, atol=1e-14)


def test_adam_step_matches_torch_adam(gen):
    p = torch.randn(3, 4, generator=gen, dtype=D)
    q = p.clone().requires_grad_(True)
    opt = torch.optim.Adam([q], lr=1e-2, betas=(0.9, 0.999), eps=1e-8)
    m, v = torch.zeros_like(p), torch.zeros_like(p)
    for t in range(1, 6):
        g = torch.randn(3, 4, generator=gen, dtype=D)
        p -= 1e-2 * skip.adam_direction(g, m, v, t)
        q.grad = g.clone()
        opt.step()
    torch.testing.assert_close(p, q.detach(), rtol=1e-12, atol=1e-14)


def test_pick_lr_ties_at_the_floor_and_within_one_se():
    """Round-off-level errors tie (most finite runs, then the largest lr wins); a clear winner is kept."""
    rows = lambda c, vals: [{"lr_c": c, "value": v} for v in vals]  # noqa: E731
    floor = pd.DataFrame(rows(1.25, [1e-17, 2e-17]) + rows(2.5, [3e-31, 1e-32, 2e-31])
                         + rows(5.0, [4e-34, 1e-34, 3e-34]) + rows(10.0, [1e-34, 2e-34]))
    assert pick_lr(floor, 1e-24) == 5.0          # 10.0 is best but lost a run; 1.25 is above the floor
    assert pick_lr(floor, 1e-40) == 10.0         # no floor: 10.0 is best and nothing lies within its SE
    clear = pd.DataFrame(rows(1.0, [1.0, 1.1, 0.9]) + rows(2.0, [0.5, 0.52, 0.48]))
    assert pick_lr(clear, 1e-24) == 2.0
    close = pd.DataFrame(rows(1.0, [0.50, 0.60, 0.40]) + rows(2.0, [0.49, 0.59, 0.39]))
    assert pick_lr(close, 1e-24) == 2.0          # within one SE of the best: largest lr
    close2 = pd.DataFrame(rows(1.0, [0.49, 0.59, 0.39]) + rows(2.0, [0.50, 0.60, 0.40]))
    assert pick_lr(close2, 1e-24) == 2.0         # same tie, the other one best: still the largest lr
