"""Fig 15: BN x skip on CIFAR-100 (loss, min cosine, test accuracy vs depth)."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import like
from ...registry import register
from . import cifar_family as fam
from .fig4 import Fig4Config


@dataclass(frozen=True)
class Fig15Config(Fig4Config):
    dataset: str = like(Fig4Config, "dataset", "cifar100")


def fig15_plot(df, cfg: Fig15Config):
    return fam.plot_variants(df)


register(fam.cifar_figure(
    "fig15", "BN x skip on CIFAR-100 (loss, min cosine, test accuracy vs depth)",
    Fig15Config, fig15_plot, fam.VARIANTS,
    smoke=fam.SMOKE_VARIANTS, paper={"depths": fam.ALL_DEPTHS}, runtime=fam.GPU))
