"""Fig 10: Width: CNN-16-l on CIFAR-100 (final loss, min cosine, KDE)."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import like
from ...registry import register
from . import cifar_family as fam
from .cifar import CifarConfig


@dataclass(frozen=True)
class Fig10Config(CifarConfig):
    dataset: str = like(CifarConfig, "dataset", "cifar100")
    variants: tuple[str, ...] = like(CifarConfig, "variants", ("cnn",))
    depths: tuple[int, ...] = like(CifarConfig, "depths", (16,))
    widths: tuple[int, ...] = like(CifarConfig, "widths", fam.WIDTHS)


def fig10_plot(df, cfg: Fig10Config):
    return fam.plot_sweep(df, False, 0.10)


register(fam.cifar_figure(
    "fig10", "Width: CNN-16-l on CIFAR-100 (final loss, min cosine, KDE)",
    Fig10Config, fig10_plot, fam.CIFAR100_WIDTH_CLAIMS,
    smoke=fam.SMOKE_WIDTH, paper=fam.WIDTHS_PAPER))
