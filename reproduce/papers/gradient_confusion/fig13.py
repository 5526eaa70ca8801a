"""Fig 13: Width: WRN-16-l (no BN) on CIFAR-10 (final loss, min cosine, KDE)."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import like
from ...registry import register
from . import cifar_family as fam
from .fig3 import Fig3Config


@dataclass(frozen=True)
class Fig13Config(Fig3Config):
    variants: tuple[str, ...] = like(Fig3Config, "variants", ("wrn",))


def fig13_plot(df, cfg: Fig13Config):
    return fam.plot_sweep(df, False, 0.15)


register(fam.cifar_figure(
    "fig13", "Width: WRN-16-l (no BN) on CIFAR-10 (final loss, min cosine, KDE)",
    Fig13Config, fig13_plot, fam.WRN_WIDTH,
    smoke=fam.SMOKE_WIDTH, paper=fam.WIDTHS_PAPER, runtime=fam.GPU))
