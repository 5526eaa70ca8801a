"""Fig 7: Depth, extra panels: CNN-beta-2 on CIFAR-10 (loss, test accuracy, min cosine per epoch)."""
from __future__ import annotations

from dataclasses import dataclass

from ...registry import register
from . import cifar_family as fam
from .fig2 import Fig2Config


@dataclass(frozen=True)
class Fig7Config(Fig2Config):
    """The runs of Fig 2 (same settings, shared run cache)."""


def fig7_plot(df, cfg: Fig7Config):
    return fam.plot_extra(df)


register(fam.cifar_figure(
    "fig7", "Depth, extra panels: CNN-beta-2 on CIFAR-10 (loss, test accuracy, min cosine per epoch)",
    Fig7Config, fig7_plot, fam.DEPTH_EXTRA,
    smoke=fam.SMOKE_DEPTH, paper={}, runtime=fam.CPU_LOOK))
