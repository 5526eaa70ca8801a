"""Fig 12: Depth: WRN-beta-2 (no BN) on CIFAR-100 (final loss, min cosine, KDE)."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import like
from ...registry import register
from . import cifar_family as fam
from .fig11 import Fig11Config


@dataclass(frozen=True)
class Fig12Config(Fig11Config):
    dataset: str = like(Fig11Config, "dataset", "cifar100")


def fig12_plot(df, cfg: Fig12Config):
    return fam.plot_sweep(df, False, 0.4)


register(fam.cifar_figure(
    "fig12", "Depth: WRN-beta-2 (no BN) on CIFAR-100 (final loss, min cosine, KDE)",
    Fig12Config, fig12_plot, fam.WRN_DEPTH,
    smoke=fam.SMOKE_DEPTH, paper={"depths": fam.ALL_DEPTHS}, runtime=fam.GPU))
