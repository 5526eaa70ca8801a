"""CIFAR runs for Figs 2-4 and 7-15: CNN/WRN-beta-l (optional BN / skips), plain SGD, per-epoch gradient confusion.

One grid point = one training run (variant, depth, width, lr, run; the grid and cost model are cifar_family.py's),
cached by its spec (`run_spec`) under data/.cache/runs and keyed by the code of this module and what it imports
(provenance.run_files), so figures that share runs (2/4/7/11, 3/8, ...) train them once and an edit of a plot, a
grid or a figure file retrains none. Data live on the device as uint8 tensors,
reflect-padded once; crops, flips and normalisation happen per batch on the device.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch.nn import functional as F

from ... import datasets as data_mod
from ...config import setting
from . import confusion as conf
from . import convnets
from . import sgd as sgd_mod
from .common import cached_run, summary_rows

KEYS = ["variant", "depth", "width"]
VARIANTS = {"cnn": (False, False), "cnn-bn": (True, False), "wrn": (False, True), "wrn-bn": (True, True)}
LABELS = {"cnn": "no BN, no skip", "cnn-bn": "with BN, no skip", "wrn": "no BN, with skip", "wrn-bn": "with BN & skip"}
MEAN, STD = (125.3, 123.0, 113.9), (63.0, 62.1, 66.7)   # ZK per-channel statistics (0..255 scale)
PAPER_LRS = (10.0, 3.0, 1.0, 0.3, 0.1, 0.03, 0.01, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5)
DATASETS = ("cifar10", "cifar100", "synthetic-cifar10", "synthetic-cifar100")


@dataclass(frozen=True)
class CifarConfig:
    dataset: str = setting("cifar10", stated=True, size=True, choices=DATASETS,
                           help="CIFAR-10/100; synthetic-* are labelled stand-ins of the same layout (smoke only)")
    variants: tuple[str, ...] = setting(("cnn",), stated=True, choices=tuple(VARIANTS),
                                        help="cnn: no BN, no skip; cnn-bn; wrn: no BN, with skip; wrn-bn")
    depths: tuple[int, ...] = setting((16, 22, 28, 34, 40), stated=True, size=True, help="beta = 6 beta_r + 4")
    widths: tuple[int, ...] = setting((2,), stated=True, size=True, help="width factor l (groups 16l, 32l, 64l)")
    lrs: tuple[float, ...] = setting((0.03, 0.1, 0.3), stated=True, size=True,
                                     help="initial lr grid, the best final loss of each network is kept "
                                          "(paper: 12 values 10 ... 3e-5)")
    wrn_lrs: tuple[float, ...] = setting((0.001, 0.003, 0.01), stated=False, size=True,
                                         help="lr grid of the no-BN residual nets ('wrn'): their initial logits are "
                                              "huge (SPEC §A.7.5; loss ~280 at depth 52), lr >= 0.01 diverges there "
                                              "(paper: one 12-value grid for all)")
    lr_picks: tuple[str, ...] = setting((), stated=True, size=True, empty="none",
                                        help="variant-depth-width=lr: that network searches only lr and its "
                                             "neighbour on each side of the paper's 12-value grid (a grid around "
                                             "the best value of a pilot over the full grid); the others, and all "
                                             "with 'none', search lrs / wrn_lrs (paper: the full grid for every "
                                             "network)")
    runs: int = setting(3, stated=True, size=True,
                        help="independent runs per (model, lr), the units of the claims (paper 5; >= 3 to judge)")
    epochs: int = setting(32, stated=True, size=True, help="epochs; lr x0.1 at 40% and 80% of the steps (paper 200)")
    train_size: int = setting(4000, stated=True, size=True,
                              help="training images (paper 40000 = first 40000 of a fixed seed-0 permutation)")
    pairs: int = setting(10, stated=True, size=True, help="minibatch pairs per measurement (paper 100)")
    measure_every: int = setting(8, stated=False, size=True,
                                 help="measure confusion every k epochs and at the last (paper 1)")
    batch: int = setting(128, stated=True, size=True, help="SGD and measurement batch size")
    base: int = setting(16, stated=True, size=True, help="stem channels (paper 16; smoke 4)")
    image_size: int = setting(16, stated=True, size=True, choices=(8, 16, 32),
                              help="image side: CIFAR (32) averaged down over 2x2 blocks below 32, synthetic stand-ins "
                                   "drawn at it; the crop pads by a side / 8 (4 pixels at 32)")
    augment: bool = setting(True, stated=True, help="4-pixel reflect pad + random crop + horizontal flip")
    confusion_mode: str = setting("pairs", stated=False, choices=("pairs", "allpairs"),
                                  help="pairs: `pairs` independent pairs of disjoint minibatches; allpairs: `pairs` "
                                       "minibatches and all their pairwise cosines (the other reading of A.2)")
    confusion_aug: str = setting("train", stated=False, choices=("train", "none"),
                                 help="augmentation of the measured minibatches (train: what SGD sees)")
    msra_mode: str = setting("fan_out", stated=False, choices=("fan_out", "fan_in"), help="ZK MSRinit fan mode")
    valid_frac: float = setting(0.8, stated=True, help="an lr needs this fraction of its runs valid (4 of 5)")
    rho_slack: float = setting(0.2, stated=True, size=True, low=0,
                               help="rank-correlation bounds moved this far towards 0 "
                                    "(0.2 at reduced scale, SPEC-003-004.md §A.8)")


@functools.lru_cache(maxsize=1)
def _data(dataset: str, train_size: int, image_size: int, root: str, device: str, subset_seed: int):
    """(padded uint8 train (N, 3, 5S/4, 5S/4), y_train, normalised test (M, 3, S, S), y_test, classes) on device,
    S = image_size."""
    classes = 100 if "100" in dataset else 10
    if dataset.startswith("synthetic-"):
        (x, y), (xt, yt) = (data_mod.synthetic((3, image_size, image_size), classes, n, s)
                            for n, s in ((max(train_size, 256), 0), (256, 1)))
        x, xt = (x * 255).round().to(torch.uint8), (xt * 255).round().to(torch.uint8)
    else:
        (x, y), (xt, yt) = data_mod.load(dataset, Path(root), True), data_mod.load(dataset, Path(root), False)
        x, xt = downsample(x, image_size), downsample(xt, image_size)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(subset_seed))[:train_size]
    dev = torch.device(device)
    return (sgd_mod.pad_reflect(x[perm], image_size // 8).to(dev), y[perm].to(dev), normalize(xt.to(dev)),
            yt.to(dev), classes)


def downsample(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, 3, S, S) -> (N, 3, size, size) by averaging S/size x S/size blocks (rounded); unchanged at S."""
    k = x.shape[-1] // size
    return x if k == 1 else F.avg_pool2d(x.float(), k).round().to(torch.uint8)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float32, per-channel ZK mean/std."""
    m, s = _mean_std(x.device)
    return (x.float() - m) / s


@functools.lru_cache(maxsize=8)
def _mean_std(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-channel mean and std as (1, 3, 1, 1) tensors, made once per device (no host copy per step)."""
    return tuple(torch.tensor(v, device=device).view(1, 3, 1, 1) for v in (MEAN, STD))


def _images(xp: torch.Tensor, idx: torch.Tensor, gen: torch.Generator, augment: bool) -> torch.Tensor:
    """Normalised training images: random crop + flip, or the centre crop."""
    size = xp.shape[-1] * 4 // 5          # padded side = side + 2 * side / 8
    pad = (xp.shape[-1] - size) // 2
    if augment:
        return normalize(sgd_mod.crop_flip(xp, idx, size, gen))
    return normalize(xp[idx][..., pad:pad + size, pad:pad + size])


def _eval(net, x, y, train_mode: bool = False) -> tuple[float, float]:
    """(mean loss, accuracy) in chunks; train_mode uses batch statistics; BN buffers are left as they were."""
    loss = correct = 0.0
    with conf.frozen_stats(net, train_mode), torch.no_grad():
        for c in torch.arange(len(x), device=x.device).split(1000):
            out = net(x[c])
            loss += float(F.cross_entropy(out, y[c], reduction="sum"))
            correct += float((out.argmax(1) == y[c]).sum())
    return loss / len(x), correct / len(x)


def build(cfg, variant: str, depth: int, width: int, classes: int, seed: int, device) -> torch.nn.Module:
    """The network, initialised on the host from `seed` (ctx.seed_for("init", ...) in a run)."""
    bn, skip = VARIANTS[variant]
    g = torch.Generator().manual_seed(seed)
    return convnets.make(depth, width, bn=bn, skip=skip, classes=classes, base=cfg.base, msra_mode=cfg.msra_mode,
                         generator=g).to(device)


def pair_cosines(net, xp: torch.Tensor, y: torch.Tensor, pairs: int, batch: int, gen: torch.Generator,
                 augment: bool, mode: str = "pairs") -> torch.Tensor:
    """pairs mode: cos(g(S_a), g(S_b)) for `pairs` pairs of disjoint minibatches drawn with `gen`: (pairs,);
    allpairs mode: `pairs` minibatches, disjoint while the split holds pairs * batch images, and all their cosines:
    (pairs (pairs - 1) / 2,)."""
    if mode == "allpairs":
        draws = -(-pairs * batch // len(y))
        perm = torch.cat([torch.randperm(len(y), generator=gen, device=y.device) for _ in range(draws)])
        idx = perm[:pairs * batch].split(batch)
        g = conf.minibatch_grads(net, F.cross_entropy, [(_images(xp, i, gen, augment), y[i]) for i in idx])
        return conf.all_pair_cosines(g).cpu()
    cos = []
    for _ in range(pairs):
        idx = torch.randperm(len(y), generator=gen, device=y.device)[:2 * batch]
        batches = [(_images(xp, i, gen, augment), y[i]) for i in idx.split(batch)]
        ga, gb = zip(*(t.split(1) for t in conf.minibatch_grads(net, F.cross_entropy, batches)))
        cos.append(conf.cosines(ga, gb)[0])
    return torch.stack(cos).cpu()


def train_run(cfg, spec: dict, ctx) -> pd.DataFrame:
    """One SGD run with per-epoch confusion: rows of loss per epoch, cosine summaries, scalars, final cosines."""
    dev = ctx.device
    xp, y, xt, yt, classes = _data(cfg.dataset, cfg.train_size, cfg.image_size, str(ctx.data_root), str(dev),
                                   ctx.seed_for("train-subset", per_point=False))
    run = spec["run"]   # shared between figures: every draw is keyed by the run's spec, not the figure's point
    init = ctx.seed_for("init", per_point=False, variant=spec["variant"], depth=spec["depth"], width=spec["width"],
                        run=run)
    net = build(cfg, spec["variant"], spec["depth"], spec["width"], classes, init, dev)
    params = [p for p in net.parameters() if p.requires_grad]
    g = ctx.rng("data", per_point=False, run=run)     # data order and augmentation: same for every lr and model
    n, rows = len(y), []
    clean = _images(xp, torch.arange(min(n, 1000), device=dev), g, False)
    init_loss = torch.tensor([_eval(net, clean, y[:len(clean)], train_mode=True)[0]], device=dev)

    def measure(epoch: int, alive=None) -> None:
        if epoch % cfg.measure_every and epoch != cfg.epochs and (alive is None or bool(alive.all())):
            return
        mg = ctx.rng("measure", per_point=False, run=run, epoch=epoch)   # never the training generator
        cos = pair_cosines(net, xp, y, cfg.pairs, cfg.batch, mg, cfg.confusion_aug == "train", cfg.confusion_mode)
        rows.extend(summary_rows(cos, epoch))
        if epoch == cfg.epochs or (alive is not None and not bool(alive.all())):
            rows.extend({"epoch": epoch, "quantity": "cos_end", "value": float(c)} for c in cos)

    def loss_fn(idx):
        return F.cross_entropy(net(_images(xp, idx[0], g, cfg.augment)), y[idx[0]]).unsqueeze(0)

    measure(0)
    history, alive = sgd_mod.sgd(params, loss_fn, torch.tensor([spec["lr"]], device=dev), n=n, batch=cfg.batch,
                                 steps=cfg.epochs * (n // cfg.batch), gens=[g], init_loss=init_loss, stacked=False,
                                 on_epoch=measure, tick=lambda s: ctx.tick(f"step {s}"))
    full, _ = _eval(net, _images(xp, torch.arange(n, device=dev), g, False), y)
    _, acc = _eval(net, xt, yt)
    rows += [{"epoch": e + 1, "quantity": "loss", "value": float(v)} for e, v in enumerate(history[:, 0])]
    rows += [{"epoch": len(history), "quantity": q, "value": v} for q, v in
             (("init_loss", float(init_loss[0])), ("final_loss", float(history[-1, 0])), ("train_loss_full", full),
              ("test_acc", acc), ("alive", float(alive[0])))]
    return pd.DataFrame(rows).assign(**{k: spec[k] for k in ("variant", "depth", "width", "lr", "run")})


SWEEP = ("variants", "depths", "widths", "lrs", "wrn_lrs", "lr_picks", "runs", "valid_frac", "rho_slack")


def run_spec(cfg, point: dict) -> dict:
    """What determines one training run: the config without the sweep's settings (which points exist, how they are
    judged), and the point; the key under which figures share the run."""
    return {**{k: v for k, v in dataclasses.asdict(cfg).items() if k not in SWEEP}, **point}


def compute(cfg, point: dict, ctx) -> pd.DataFrame:
    spec = run_spec(cfg, point)
    bn, skip = VARIANTS[point["variant"]]
    ctx.notes["parameters"] = convnets.param_count(point["depth"], point["width"], bn=bn, skip=skip, base=cfg.base,
                                                   classes=100 if "100" in cfg.dataset else 10)
    df = cached_run(ctx, spec, lambda: train_run(cfg, spec, ctx))
    return df.assign(valid_frac=cfg.valid_frac, rho_slack=cfg.rho_slack, dataset=cfg.dataset)
