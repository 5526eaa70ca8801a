"""Fig 14: Width: WRN-16-l (no BN) on CIFAR-100 (final loss, min cosine, KDE)."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import like
from ...registry import register
from . import cifar_family as fam
from .fig13 import Fig13Config


@dataclass(frozen=True)
class Fig14Config(Fig13Config):
    dataset: str = like(Fig13Config, "dataset", "cifar100")


def fig14_plot(df, cfg: Fig14Config):
    return fam.plot_sweep(df, False, 0.15)


register(fam.cifar_figure(
    "fig14", "Width: WRN-16-l (no BN) on CIFAR-100 (final loss, min cosine, KDE)",
    Fig14Config, fig14_plot, fam.WRN_WIDTH,
    smoke=fam.SMOKE_WIDTH, paper=fam.WIDTHS_PAPER, runtime=fam.GPU))
