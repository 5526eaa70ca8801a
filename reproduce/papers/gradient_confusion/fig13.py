"""Fig 13: Width: WRN-16-l (no BN) on CIFAR-10 (final loss, min cosine, KDE)."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import like
from ...registry import register
from . import cifar_family as fam
from .cifar import CifarConfig


@dataclass(frozen=True)
class Fig13Config(CifarConfig):
    dataset: str = like(CifarConfig, "dataset", "cifar10")
    variants: tuple[str, ...] = like(CifarConfig, "variants", ("wrn",))
    depths: tuple[int, ...] = like(CifarConfig, "depths", (16,))
    widths: tuple[int, ...] = like(CifarConfig, "widths", fam.WIDTHS)


def fig13_plot(df, cfg: Fig13Config):
    return fam.plot_sweep(df, False, 0.15)


register(fam.cifar_figure(
    "fig13", "Width: WRN-16-l (no BN) on CIFAR-10 (final loss, min cosine, KDE)",
    Fig13Config, fig13_plot, fam.WRN_WIDTH_CLAIMS,
    smoke=fam.SMOKE_WIDTH, paper=fam.WIDTHS_PAPER))
