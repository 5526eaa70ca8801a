"""Fig 2: Depth: CNN-beta-2 on CIFAR-10 (loss curves, min cosine, KDE)."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import like
from ...registry import register
from . import cifar_family as fam
from .cifar import CifarConfig


@dataclass(frozen=True)
class Fig2Config(CifarConfig):
    dataset: str = like(CifarConfig, "dataset", "cifar10")
    variants: tuple[str, ...] = like(CifarConfig, "variants", ("cnn",))
    depths: tuple[int, ...] = like(CifarConfig, "depths", fam.DEPTHS)
    widths: tuple[int, ...] = like(CifarConfig, "widths", (2,))


def fig2_plot(df, cfg: Fig2Config):
    return fam.plot_sweep(df, True, 0.4)


register(fam.cifar_figure(
    "fig2", "Depth: CNN-beta-2 on CIFAR-10 (loss curves, min cosine, KDE)",
    Fig2Config, fig2_plot, fam.DEPTH_CLAIMS,
    smoke=fam.SMOKE_DEPTH, paper=fam.DEPTHS_PAPER))
