"""Fig 8: Width, extra panels: CNN-16-l on CIFAR-10 (loss, test accuracy, min cosine per epoch)."""
from __future__ import annotations

from dataclasses import dataclass

from ...registry import register
from . import cifar_family as fam
from .fig3 import Fig3Config


@dataclass(frozen=True)
class Fig8Config(Fig3Config):
    """The runs of Fig 3 (same settings, shared run cache)."""


def fig8_plot(df, cfg: Fig8Config):
    return fam.plot_extra(df)


register(fam.cifar_figure(
    "fig8", "Width, extra panels: CNN-16-l on CIFAR-10 (loss, test accuracy, min cosine per epoch)",
    Fig8Config, fig8_plot, fam.WIDTH_EXTRA,
    smoke=fam.SMOKE_WIDTH, paper=fam.WIDTHS_PAPER, runtime=fam.GPU))
