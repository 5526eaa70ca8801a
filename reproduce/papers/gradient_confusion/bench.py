"""`repro bench confusion`: CIFAR-10 CNN-16-2 training throughput, our loop vs a bare loop, and the measurement cost."""
from __future__ import annotations

import pandas as pd
import torch
from torch.nn import functional as F

from ... import datasets as data_mod
from ...core.device import generator
from ...core.timing import measure
from ...registry import register_bench
from . import cifar
from . import sgd as sgd_mod

PAPER_PAIRS = 100


def bench(device: torch.device, sizes: tuple[int, ...] | None = None, repeats: int = 3) -> pd.DataFrame:
    """sizes = (steps timed per call,); default 100 on CUDA, 4 on CPU. Pairs timed: 100 on CUDA, 4 on CPU."""
    steps = (sizes or ((100,) if device.type == "cuda" else (4,)))[0]
    pairs = PAPER_PAIRS if device.type == "cuda" else 4
    root = data_mod.data_root()
    name = "cifar10" if data_mod.locate("cifar10", root) else "synthetic-cifar10"
    batch, n = 128, steps * 128
    xp, y, _, _, classes = cifar._data(name, max(n, 2 * batch), 32, str(root), str(device), 0)
    xp, y = xp[:n], y[:n]
    net = cifar.build(cifar.CifarConfig(), "cnn", 16, 2, classes, 0, device)
    params = list(net.parameters())
    g = generator(device, 0)

    def ours():
        loss_fn = lambda idx: F.cross_entropy(net(cifar._images(xp, idx[0], g, True)), y[idx[0]]).unsqueeze(0)  # noqa
        sgd_mod.sgd(params, loss_fn, torch.tensor([1e-3], device=device), n=n, batch=batch, steps=steps, gens=[g],
                    init_loss=torch.tensor([1e9], device=device), stacked=False)

    clean = cifar._images(xp, torch.arange(n, device=device), g, False)   # pre-cropped, normalised, no augmentation
    opt = torch.optim.SGD(params, lr=1e-3)

    def bare():
        for k in range(steps):
            loss = F.cross_entropy(net(clean[k * batch:(k + 1) * batch]), y[k * batch:(k + 1) * batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def confusion():
        cifar.pair_cosines(net, xp, y, pairs, batch, generator(device, 1), True)

    t_ours, m_ours, _ = measure(ours, device, repeats)
    t_bare, m_bare, _ = measure(bare, device, repeats)
    t_conf, m_conf, _ = measure(confusion, device, repeats)
    epoch_s = t_ours / steps * (40000 // batch)                       # a paper epoch: 312 steps on 40k images
    paper_measure_s = t_conf / pairs * PAPER_PAIRS
    base = {"model": "CNN-16-2", "data": name, "batch": batch, "steps_timed": steps}
    return pd.DataFrame([
        {**base, "what": "our loop (augment + SGD)", "wall_s": t_ours, "images_per_s": n / t_ours,
         "vs_bare": t_bare / t_ours, "peak_MiB": m_ours},
        {**base, "what": "bare loop (no augment, torch.optim.SGD)", "wall_s": t_bare, "images_per_s": n / t_bare,
         "vs_bare": 1.0, "peak_MiB": m_bare},
        {**base, "what": f"confusion: {pairs} pairs", "wall_s": t_conf, "images_per_s": 2 * batch * pairs / t_conf,
         "vs_bare": float("nan"), "peak_MiB": m_conf,
         "paper_epoch_s": epoch_s, "measure_100_pairs_s": paper_measure_s,
         "measure_fraction_of_epoch": paper_measure_s / epoch_s},
    ])


register_bench("gradient-confusion", bench)
