"""Paper 003 core: minibatch gradients, cosines, measurement that does not perturb training; the Fig 1 toy."""
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from reproduce import claims, registry
from reproduce.config import ReproError, parse_value
from reproduce.papers import gradient_confusion as gc
from reproduce.papers.gradient_confusion import confusion as conf
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
        for t, p in zip(g, net.parameters(), strict=True):
            torch.testing.assert_close(t[b], p.grad, rtol=1e-12, atol=1e-14)
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


def test_per_tensor_float64_cosines_equal_the_flat_float64_ones():
    """The measurement reduces each parameter tensor in float64 (no concatenated or float64 copy of every gradient):
    equal to cosines of the concatenated gradients in float64 to 1e-12, for float32 gradients as the runs give."""
    gen = torch.Generator().manual_seed(3)
    shapes = [(7, 5), (5,), (3, 2, 4), (1,)]
    parts = [torch.randn(6, *s, generator=gen) for s in shapes]            # float32, 6 gradients
    flat = torch.cat([t.reshape(6, -1) for t in parts], 1).double()
    u = flat / flat.norm(dim=1, keepdim=True)
    full = u @ u.T
    i, j = torch.triu_indices(6, 6, 1)
    torch.testing.assert_close(conf.all_pair_cosines(parts), full[i, j], rtol=0, atol=1e-12)
    torch.testing.assert_close(conf.cosines([t[:3] for t in parts], [t[3:] for t in parts]),
                               torch.stack([full[0, 3], full[1, 4], full[2, 5]]), rtol=0, atol=1e-12)
    assert conf.cosines(parts, parts).dtype == torch.float64


def test_linear_regression_cosines_are_exact(gen):
    x = torch.randn(7, 4, generator=gen, dtype=D)
    w, y = torch.randn(4, generator=gen, dtype=D), torch.randn(7, generator=gen, dtype=D)
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
            losses.append(float(loss.detach()))
            if measure and step % 5 == 0:
                b = [(x[i], y[i]) for i in torch.randint(64, (4, 8), generator=mg)]
                conf.minibatch_grads(net, nn.functional.cross_entropy, b)
        return losses
    assert run(True) == run(False)


@pytest.mark.slow
def test_fig1_claims_hold_and_can_fail():
    def ctx(point):
        return Context(torch.device("cpu"), 0, Path("."), point=point)

    cfg = gc.Fig1Config(epochs=300)
    df = pd.concat([gc.fig1_compute(cfg, p, ctx(p)) for p in gc.fig1_grid(cfg)])
    res = {r.id: r for r in (claims.evaluate(c, df, draws=100) for c in registry.figure("confusion", "fig1").claims)}
    # three runs: the min-cosine difference (F1-d) may straddle 0, the rest is decided
    assert all(r.verdict == claims.PASS for k, r in res.items() if k != "F1-d-less-confused"), res
    assert res["F1-d-less-confused"].verdict != claims.FAIL and res["F1-d-less-confused"].value > 0
    # with a planted linear target both models interpolate: the over- vs under-parameterized contrast must fail
    cfg = gc.Fig1Config(epochs=150, target="planted")
    df = pd.concat([gc.fig1_compute(cfg, p, ctx(p)) for p in gc.fig1_grid(cfg)])
    assert claims.evaluate(registry.figure("confusion", "fig1").claims[0], df).verdict == claims.FAIL
    assert math.isfinite(df["value"].iloc[0])


# ---- core pieces of the CIFAR and MLP figures -------------------------------------------------------------------
from reproduce.papers.gradient_confusion import cifar, common, convnets, stacked_mlp  # noqa: E402
from reproduce.papers.gradient_confusion import sgd as sgd_mod  # noqa: E402


@pytest.mark.parametrize("variant", list(cifar.VARIANTS))
@pytest.mark.parametrize("depth,width", [(10, 1), (16, 2), (22, 3)])
def test_architecture_parameter_counts_match_the_formula(variant, depth, width):
    bn, skip = cifar.VARIANTS[variant]
    net = convnets.make(depth, width, bn=bn, skip=skip, classes=100, base=4)
    assert sum(p.numel() for p in net.parameters()) == convnets.param_count(depth, width, bn=bn, skip=skip,
                                                                          classes=100, base=4)
    convs = sum(isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) for m in net.modules())
    assert convs + 1 == depth - 2          # weight layers: 1 + 6 beta_r convs + 1 FC = beta - 2
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 100)


def test_paper_cnn_count_and_bad_depth():
    # CNN-16-2 without BN, CIFAR-10, by hand: stem 3*16*9+16; group widths 32, 64, 128 with 2 blocks each
    conv = lambda ci, co: ci * co * 9 + co  # noqa: E731
    hand = conv(3, 16) + conv(16, 32) + 3 * conv(32, 32) + conv(32, 64) + 3 * conv(64, 64) + conv(64, 128) \
        + 3 * conv(128, 128) + 128 * 10 + 10
    assert convnets.param_count(16, 2, bn=False, skip=False) == hand
    with pytest.raises(Exception, match="6\\*beta_r"):
        convnets.blocks_per_group(17)


def test_msra_fan_out_variance():
    net = convnets.make(16, 2, bn=False, skip=False, generator=torch.Generator().manual_seed(0))
    w = net.blocks[-1].conv2.weight
    assert abs(float(w.detach().var()) / (2 / (9 * w.shape[0])) - 1) < 0.02
    assert float(net.blocks[-1].conv2.bias.detach().abs().max()) == 0 and float(net.fc.bias.detach().abs().max()) == 0


def test_augmentation_keeps_shapes_and_labels(gen):
    n = 7
    x = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 8, 8).contiguous()   # image k is all k
    xp = sgd_mod.pad_reflect(x, 2)
    assert xp.shape == (n, 3, 12, 12)
    idx = torch.tensor([3, 0, 6, 6, 1])
    out = sgd_mod.crop_flip(xp, idx, 8, gen)
    assert out.shape == (5, 3, 8, 8) and out.dtype == torch.uint8
    for k, i in enumerate(idx):
        assert out[k].unique().tolist() == [int(i)]
    # on a textured image every crop is a window of the padded image, possibly mirrored
    tex = torch.randint(0, 255, (1, 3, 8, 8), generator=gen, dtype=torch.uint8)
    tp = sgd_mod.pad_reflect(tex, 2)
    windows = [tp[0, :, a:a + 8, b:b + 8] for a in range(5) for b in range(5)]
    for crop in sgd_mod.crop_flip(tp, torch.zeros(20, dtype=torch.long), 8, gen):
        assert any(torch.equal(crop, w) or torch.equal(crop, w.flip(-1)) for w in windows)


def test_lr_drops_at_40_and_80_percent():
    f = [sgd_mod.lr_factor(s, 100) for s in (0, 39, 40, 79, 80, 99)]
    assert f == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    assert sgd_mod.lr_factor(50, 100, drops=()) == 1


def _stack_train(specs, steps=25, dtype=D):
    x = torch.randn(300, 20, generator=torch.Generator().manual_seed(0), dtype=dtype)
    y = torch.randint(0, 10, (300,), generator=torch.Generator().manual_seed(1))
    params = stacked_mlp.init(3, 8, [s["init"] for s in specs], [s["seed"] for s in specs], d_in=20, dtype=dtype)
    tanh = torch.tensor([s["act"] == "tanh" for s in specs])
    lr = torch.tensor([s["lr"] for s in specs], dtype=dtype)
    gens = [torch.Generator().manual_seed(s["seed"] + 100) for s in specs]
    hist, alive = sgd_mod.sgd(params, lambda idx: stacked_mlp.losses(params, x[idx], y[idx], tanh), lr, n=300,
                              batch=32, steps=steps, gens=gens, init_loss=torch.full((len(specs),), 2.3, dtype=dtype),
                              stacked=True, drops=())
    return params, hist, alive


def test_stacked_mlp_runs_equal_separate_runs():
    specs = [{"act": "tanh", "init": "glorot", "lr": 0.1, "seed": 1},
             {"act": "identity", "init": "lecun", "lr": 0.03, "seed": 2},
             {"act": "tanh", "init": "lecun", "lr": 0.2, "seed": 3}]
    together, hist, _ = _stack_train(specs)
    for k, s in enumerate(specs):
        alone, h1, _ = _stack_train([s])
        for a, b in zip(together, alone):
            torch.testing.assert_close(a[k:k + 1], b, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(hist[:, k:k + 1], h1, rtol=1e-10, atol=1e-12)


def test_diverging_run_dies_without_touching_the_others():
    specs = [{"act": "identity", "init": "glorot", "lr": 50.0, "seed": 1}, {"act": "identity", "init": "glorot",
                                                                              "lr": 0.05, "seed": 1}]
    params, hist, alive = _stack_train(specs, steps=60)
    _, h1, a1 = _stack_train(specs[1:], steps=60)
    assert alive.tolist() == [False, True] and bool(a1[0])
    torch.testing.assert_close(hist[:len(h1), 1:], h1)


def _toy_runs(final, init=2.0):
    """A long-format CSV of 2 points x 2 lrs x 5 runs with given final losses (init loss `init`), CIFAR-10."""
    rows = []
    for (depth, lr), losses in final.items():
        for r, v in enumerate(losses):
            base = {"variant": "cnn", "depth": depth, "width": 2, "lr": lr, "run": r, "epoch": 3}
            alive = float(np.isfinite(v))
            rows += [{**base, "quantity": q, "value": val} for q, val in
                     (("init_loss", init), ("final_loss", v), ("alive", alive), ("test_acc", 0.5),
                      ("train_loss_full", v), ("min_cos", -0.1 * depth), ("std_cos", 0.1))]
    return pd.DataFrame(rows).assign(valid_frac=0.8, rho_slack=0.2, dataset="cifar10")


def test_lr_selection_rule_and_untrainable_points():
    nan = float("nan")
    df = _toy_runs({(16, 0.1): [0.1, 0.2, 0.1, 0.3, nan],      # 4 of 5 valid: eligible, mean 0.175
                    (16, 0.01): [0.5, 0.5, 0.5, 0.5, 0.5],     # eligible, worse
                    (40, 0.1): [0.05, nan, nan, 0.1, 0.1],     # only 3 valid: not eligible despite lowest loss
                    (40, 0.01): [2.5, 2.5, 2.5, 2.5, 1.0]})    # 1 valid (others above the initial loss)
    sel = common.select(df, cifar.KEYS).set_index("depth")
    assert sel.loc[16, "lr"] == 0.1 and sel.loc[16, "trainable"] and sel.loc[16, "n_valid"] == 4
    assert not sel.loc[40, "trainable"]
    p = common.point_stats(df, cifar.KEYS).set_index("depth")
    assert p.loc[16, "loss"] == pytest.approx(0.175) and p.loc[16, "runs"] == 4
    assert p.loc[40, "loss_shown"] == pytest.approx(2.0)     # untrainable: shown at its initial loss


def test_an_untrained_run_is_untrainable():
    """A run that ends within 1% of its initial loss did not train (CNN-40-2 at 2.3015 against ln 10 = 2.3026):
    its point is untrainable, leaves the rank checks and fails d-trainable."""
    df = _toy_runs({(16, 0.1): [0.1, 0.2, 0.1, 0.3, 0.2], (40, 0.1): [1.99, 1.985, 1.99, 1.99, 1.99]})
    sel = common.select(df, cifar.KEYS).set_index("depth")
    assert sel.loc[16, "trainable"] and not sel.loc[40, "trainable"]
    trained = _toy_runs({(16, 0.1): [0.1, 0.2, 0.1, 0.3, 0.2], (40, 0.1): [1.97] * 5})
    assert common.select(trained, cifar.KEYS).set_index("depth").loc[40, "trainable"]
    check = next(c for c in registry.figure("confusion", "fig2").claims if c.id == "d-trainable")
    assert claims.evaluate(check, df).verdict == claims.FAIL
    assert claims.evaluate(check, trained).verdict == claims.PASS


def test_a_run_collapsed_to_chance_is_reported():
    """A no-BN residual net starts at loss ~280; ending at ln 10 (predicting the class frequencies) is far below
    its initial loss but at chance: d-trainable fails on every CIFAR figure and names the point."""
    chance = float(np.log(10))
    collapsed = _toy_runs({(16, 0.1): [1.2, 1.3, 1.2, 1.25, 1.3], (52, 0.1): [chance] * 5}, init=280.0)
    learned = _toy_runs({(16, 0.1): [1.2, 1.3, 1.2, 1.25, 1.3], (52, 0.1): [0.98 * chance] * 5}, init=280.0)
    for fig in ("fig2", "fig4", "fig11", "fig13"):
        check = next(c for c in registry.figure("confusion", fig).claims if c.id == "d-trainable")
        bad = claims.evaluate(check, collapsed)
        assert bad.verdict == claims.FAIL and "cnn-52-2" in bad.threshold
        assert claims.evaluate(check, learned).verdict == claims.PASS


def test_gap_claim_needs_several_runs():
    gap = next(c for c in registry.figure("confusion", "fig2").claims if c.id == "b-gap")
    five = _toy_runs({(16, 0.1): [0.1] * 5, (40, 0.1): [0.2] * 5})   # min-cos -1.6 vs -4.0, std 0
    assert claims.evaluate(gap, five, draws=30).verdict == claims.PASS
    flipped = five.assign(value=np.where(five.quantity == "min_cos", -five.value, five.value))
    assert claims.evaluate(gap, flipped, draws=30).verdict == claims.FAIL
    one = _toy_runs({(16, 0.1): [0.1], (40, 0.1): [0.2]})            # a single run: no interval, no verdict
    assert claims.evaluate(gap, one.assign(valid_frac=1.0)).verdict == claims.INCONCLUSIVE


def test_measuring_does_not_perturb_cifar_training(tmp_path):
    cfg = cifar.CifarConfig(dataset="synthetic-cifar10", variants=("wrn-bn",), depths=(10,), widths=(1,), lrs=(0.05,),
                            runs=1, epochs=3, train_size=128, pairs=2, measure_every=1, batch=32, base=4,
                            image_size=16)
    ctx = Context(torch.device("cpu"), 0, tmp_path)
    spec = {"variant": "wrn-bn", "depth": 10, "width": 1, "lr": 0.05, "run": 0}
    a = cifar.train_run(cfg, spec, ctx)
    b = cifar.train_run(dataclasses.replace(cfg, measure_every=100, pairs=1), spec, ctx)
    la, lb = (d[d.quantity.isin(["loss", "final_loss", "test_acc"])]["value"].to_numpy() for d in (a, b))
    assert np.array_equal(la, lb)
    assert (a.quantity == "min_cos").sum() == 4 and (b.quantity == "min_cos").sum() == 2   # epochs 0..3 vs 0, 3
    assert ((a[a.quantity == "cos_end"]["value"].abs()) <= 1).all()


def test_allpairs_mode_gives_every_pair_of_the_minibatches(tmp_path):
    cfg = cifar.CifarConfig(dataset="synthetic-cifar10", image_size=16, train_size=256, base=4)
    xp, y, *_ = cifar._data(cfg.dataset, cfg.train_size, cfg.image_size, str(tmp_path), "cpu", 0)
    net = cifar.build(cfg, "cnn-bn", 10, 1, 10, 0, torch.device("cpu"))
    cos = cifar.pair_cosines(net, xp, y, 5, 16, torch.Generator().manual_seed(0), False, "allpairs")
    assert cos.shape == (10,) and bool((cos.abs() <= 1).all())
    # the same 5 minibatches by hand: one permutation, consecutive blocks of 16
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:80].split(16)
    g = conf.minibatch_grads(net, nn.functional.cross_entropy, [(cifar._images(xp, i, None, False), y[i]) for i in idx])
    torch.testing.assert_close(cos, conf.all_pair_cosines(g).cpu())


def test_cifar_downsampled_by_block_averages_with_the_crop_scaled():
    """16x16 CIFAR (the CPU default): each pixel is the rounded mean of a 2x2 block; training crops pad by side / 8
    (2 pixels at 16, 4 at 32) and come back at the image side; the centre crop is the image itself."""
    x = torch.randint(0, 256, (3, 3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    small = cifar.downsample(x, 16)
    assert small.shape == (3, 3, 16, 16) and small.dtype == torch.uint8
    assert int(small[1, 2, 3, 4]) == round(float(x[1, 2, 6:8, 8:10].float().mean()))
    assert torch.equal(cifar.downsample(x, 32), x)
    for img in (small, x):
        xp = sgd_mod.pad_reflect(img, img.shape[-1] // 8)
        g = torch.Generator().manual_seed(1)
        idx = torch.arange(3)
        assert cifar._images(xp, idx, g, True).shape == (3, 3, img.shape[-1], img.shape[-1])
        torch.testing.assert_close(cifar._images(xp, idx, g, False), cifar.normalize(img))


def test_the_throughput_bench_times_both_image_sizes(monkeypatch, tmp_path):
    """`repro bench confusion` (one model, eager only, one step here): ours and the bare loop at 32x32 and 16x16."""
    from reproduce.papers.gradient_confusion import bench
    monkeypatch.setattr(bench, "MODELS", (("CNN-16-2", "cnn", 16),))
    monkeypatch.setattr(bench, "FORMATS", ("eager float32",))
    monkeypatch.setenv("REPRO_DATA", str(tmp_path))            # no CIFAR here: the synthetic stand-in
    df = bench.bench(torch.device("cpu"), (1,), repeats=1)
    timed = df[df.format == "eager float32"]
    assert sorted(timed.image.unique()) == [16, 32] and (timed.ours_images_per_s > 0).all()
    assert np.isfinite(timed.ours_vs_bare).all() and (df.data == "synthetic-cifar10").all()


def test_fig4_gap_claim_reads_one_variant_at_two_depths():
    """Fig. 4 `b` at two depths: the gap of the variant named, the other variants' points ignored."""
    gap = next(c for c in registry.figure("confusion", "fig4").claims if c.id == "b-gap-cnn")
    cnn = _toy_runs({(16, 0.1): [0.1] * 5, (28, 0.1): [0.2] * 5})   # min-cos -1.6 vs -2.8: deeper more negative
    other = cnn.assign(variant="wrn", value=np.where(cnn.quantity == "min_cos", -cnn.value, cnn.value))
    res = claims.evaluate(gap, pd.concat([cnn, other]), draws=30)
    assert res.verdict == claims.PASS and res.value == pytest.approx(1.2)
    flipped = cnn.assign(value=np.where(cnn.quantity == "min_cos", -cnn.value, cnn.value))
    assert claims.evaluate(gap, pd.concat([flipped, other]), draws=30).verdict == claims.FAIL


def test_a_picked_network_searches_its_lr_and_the_neighbours_on_the_paper_grid():
    """lr_picks: the pick and one paper-grid value either side (fewer at the grid's end); other networks use lrs."""
    from reproduce.papers.gradient_confusion import cifar_family as fam
    from reproduce.papers.gradient_confusion.fig4 import Fig4Config
    cfg = dataclasses.replace(Fig4Config(), variants=("cnn", "cnn-bn"), depths=(16,), lr_picks=("cnn-bn-16-2=0.3",
                                                                                                 "wrn-16-2=10"))
    lrs = {(p["variant"], p["lr"]) for p in fam.grid(cfg)}
    assert sorted(lr for v, lr in lrs if v == "cnn-bn") == [0.1, 0.3, 1.0]
    assert sorted(lr for v, lr in lrs if v == "cnn") == sorted(cfg.lrs)          # not picked: the figure's grid
    assert fam.lr_grid(cfg, "wrn", 16, 2) == (3.0, 10.0)                          # the grid's top: one neighbour
    assert len(fam.grid(Fig4Config())) == 4 * 2 * 3 * 3                           # 4 variants, 2 depths, 3 lrs, 3 runs
    assert parse_value(Fig4Config, "lr_picks", "none") == ()                      # --set lr_picks=none: full grids
    for bad in ("cnn-16=0.1", "resnet-16-2=0.1", "cnn-16-2=0.2"):
        with pytest.raises(ReproError, match="lr_picks"):
            fam.grid(dataclasses.replace(cfg, lr_picks=(bad,)))


def test_figures_share_a_run_whatever_their_sweep_settings_and_count_it_once():
    """A run's spec leaves out the sweep's settings (lr_picks, lrs, ...), so Figs 2, 4 and 7 share their CNN runs;
    the cost model charges a shared run to the lowest-numbered figure (`make all` order)."""
    from reproduce.papers.gradient_confusion import cifar
    from reproduce.papers.gradient_confusion import cifar_family as fam
    from reproduce.papers.gradient_confusion.fig2 import Fig2Config
    from reproduce.papers.gradient_confusion.fig4 import Fig4Config
    point = {"variant": "cnn", "depth": 16, "width": 2, "lr": 0.1, "run": 0}
    assert cifar.run_spec(Fig2Config(), point) == cifar.run_spec(Fig4Config(), point)
    assert "lr_picks" not in cifar.run_spec(Fig4Config(), point)
    before7 = fam._made_before("fig7", registry.figure("confusion", "fig7").config())
    assert len(before7["fig2"]) == len(fam.grid(registry.figure("confusion", "fig7").config()))   # all of Fig 7's
    before4 = fam._made_before("fig4", Fig4Config())
    assert set(before4) == {"fig2", "fig3"}
    assert {json.loads(s)["variant"] for s in before4["fig2"]} == {"cnn"}           # BN and WRN runs are Fig 4's
    assert fam._made_before("fig4", dataclasses.replace(Fig4Config(), epochs=3)) == {}   # overrides: nothing shared
