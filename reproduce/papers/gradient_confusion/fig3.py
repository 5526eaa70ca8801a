"""Fig 3: Width: CNN-16-l on CIFAR-10 (loss curves, min cosine, KDE)."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import like
from ...registry import register
from . import cifar_family as fam
from .cifar import CifarConfig


@dataclass(frozen=True)
class Fig3Config(CifarConfig):
    dataset: str = like(CifarConfig, "dataset", "cifar10")
    variants: tuple[str, ...] = like(CifarConfig, "variants", ("cnn",))
    depths: tuple[int, ...] = like(CifarConfig, "depths", (16,))
    # 1, 2, 3 rather than the family's WIDTHS (2, 3, 4): the same 3x span as the paper's 2 ... 6 at half the CPU cost
    # (a run costs ~ width^2), width 2 shared with the depth sweep; Figs 3, 8 and 13 search it alike
    widths: tuple[int, ...] = like(CifarConfig, "widths", (1, 2, 3))


def fig3_plot(df, cfg: Fig3Config):
    return fam.plot_sweep(df, True, 0.15)


register(fam.cifar_figure(
    "fig3", "Width: CNN-16-l on CIFAR-10 (loss curves, min cosine, KDE)",
    Fig3Config, fig3_plot, fam.WIDTH_CLAIMS,
    smoke=fam.SMOKE_WIDTH, paper=fam.WIDTHS_PAPER))
