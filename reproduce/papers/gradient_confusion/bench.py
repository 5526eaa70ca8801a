"""`repro bench confusion`: CIFAR-10 training throughput of CNN-16-2, CNN-40-2 and WRN-16-2 on this machine: our loop
(augmentation + SGD, what a figure runs) and a bare PyTorch loop on the same model and data, in float32 eager, in
channels-last memory format and under torch.compile (where it compiles), with 1 and 2 threads, at the paper's 32x32
and the CPU default's 16x16 images; and the cost of one confusion measurement."""
from __future__ import annotations

import math
import os

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
MODELS = (("CNN-16-2", "cnn", 16), ("CNN-40-2", "cnn", 40), ("WRN-16-2", "wrn", 16))
FORMATS = ("eager float32", "channels-last", "torch.compile")
IMAGE_SIZES = (32, 16)   # the paper's CIFAR and the CPU default preset's (cifar.CifarConfig.image_size)


def _net(variant: str, depth: int, classes: int, device: torch.device, fmt: str) -> torch.nn.Module:
    """A freshly initialised network (seed 0) in format `fmt`."""
    net = cifar.build(cifar.CifarConfig(), variant, depth, 2, classes, 0, device)
    if fmt == "channels-last":
        net = net.to(memory_format=torch.channels_last)
    return net


def _loops(net, xp, y, clean, steps: int, batch: int, device: torch.device, fmt: str):
    """(ours, bare): our SGD loop with augmentation and a bare torch.optim.SGD loop on pre-cropped images, both
    `steps` steps of `batch` images, inputs in the network's memory format."""
    params, g = list(net.parameters()), generator(device, 0)
    model = torch.compile(net) if fmt == "torch.compile" else net
    cast = (lambda t: t.contiguous(memory_format=torch.channels_last)) if fmt == "channels-last" else (lambda t: t)
    n = steps * batch

    def ours():
        loss_fn = lambda idx: F.cross_entropy(model(cast(cifar._images(xp, idx[0], g, True))), y[idx[0]]).unsqueeze(0)  # noqa
        sgd_mod.sgd(params, loss_fn, torch.tensor([1e-3], device=device), n=n, batch=batch, steps=steps, gens=[g],
                    init_loss=torch.tensor([1e9], device=device), stacked=False)

    opt = torch.optim.SGD(params, lr=1e-3)

    def bare():
        for k in range(steps):
            loss = F.cross_entropy(model(cast(clean[k * batch:(k + 1) * batch])), y[k * batch:(k + 1) * batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return ours, bare


def _formats(row: dict, variant: str, depth: int, classes: int, data, steps: int, batch: int,
             device: torch.device, repeats: int) -> list[dict]:
    """One row per memory format / compile mode of one model: ours and the bare loop, images per second."""
    xp, y, clean = data
    n, rows, eager_ours = steps * batch, [], math.nan
    for fmt in FORMATS:
        r = {**row, "format": fmt}
        try:
            net = _net(variant, depth, classes, device, fmt)
            ours, bare = _loops(net, xp, y, clean, steps, batch, device, fmt)
            if fmt == "torch.compile":
                ours(), bare()   # compile outside the timing
            t_ours, m_ours, _ = measure(ours, device, repeats)
            t_bare, _, _ = measure(bare, device, repeats)
        except Exception as exc:   # torch.compile needs a working C++ toolchain on a CPU
            rows.append({**r, "note": f"not available: {type(exc).__name__}: {str(exc)[:80]}"})
            continue
        eager_ours = t_ours if fmt == "eager float32" else eager_ours
        rows.append({**r, "ours_images_per_s": n / t_ours, "bare_images_per_s": n / t_bare,
                     "ours_vs_bare": t_bare / t_ours, "speedup_vs_eager": eager_ours / t_ours,
                     "peak_MiB": m_ours, "paper_epoch_s": t_ours / steps * (40000 // batch)})
    return rows


def bench(device: torch.device, sizes: tuple[int, ...] | None = None, repeats: int = 3) -> pd.DataFrame:
    """sizes = (steps timed per call,); default 100 on CUDA, 4 on CPU. Threads 1 and 2 on a CPU (what it has).
    Pairs timed for the confusion measurement: 100 on CUDA, 4 on CPU."""
    steps = (sizes or ((100,) if device.type == "cuda" else (4,)))[0]
    pairs = PAPER_PAIRS if device.type == "cuda" else 4
    root = data_mod.data_root()
    name = "cifar10" if data_mod.locate("cifar10", root) else "synthetic-cifar10"
    batch, n = 128, steps * 128
    threads_before = torch.get_num_threads()
    threads = sorted({1, min(2, os.cpu_count() or 1)}) if device.type == "cpu" else [threads_before]
    rows = []
    base = {"data": name, "batch": batch, "steps_timed": steps, "device": device.type}
    try:
        for size in IMAGE_SIZES:
            xp, y, _, _, classes = cifar._data(name, max(n, 2 * batch), size, str(root), str(device), 0)
            xp, y = xp[:max(n, 2 * batch)], y[:max(n, 2 * batch)]   # the loops use the first n; a pair needs 2 batches
            clean = cifar._images(xp, torch.arange(n, device=device), generator(device, 0), False)
            for t in threads:
                torch.set_num_threads(t)
                for model, variant, depth in MODELS:
                    rows += _formats({**base, "image": size, "model": model, "threads": t}, variant, depth, classes,
                                     (xp, y, clean), steps, batch, device, repeats)
        torch.set_num_threads(threads_before)
        net = _net("cnn", 16, classes, device, "eager float32")
        t_conf, m_conf, _ = measure(lambda: cifar.pair_cosines(net, xp, y, pairs, batch, generator(device, 1), True),
                                    device, repeats)
        rows.append({**base, "image": IMAGE_SIZES[-1], "model": "CNN-16-2", "threads": threads_before,
                     "format": f"confusion: {pairs} pairs",
                     "ours_images_per_s": 2 * batch * pairs / t_conf, "peak_MiB": m_conf,
                     "measure_100_pairs_s": t_conf / pairs * PAPER_PAIRS})
    finally:
        torch.set_num_threads(threads_before)
    return pd.DataFrame(rows)


register_bench("gradient-confusion", bench)
