"""Fig 15: BN x skip on CIFAR-100 (loss, min cosine, test accuracy vs depth)."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import like
from ...registry import register
from . import cifar_family as fam
from .cifar import VARIANTS, CifarConfig


@dataclass(frozen=True)
class Fig15Config(CifarConfig):
    dataset: str = like(CifarConfig, "dataset", "cifar100")
    variants: tuple[str, ...] = like(CifarConfig, "variants", tuple(VARIANTS))
    depths: tuple[int, ...] = like(CifarConfig, "depths", fam.VARIANT_DEPTHS)
    widths: tuple[int, ...] = like(CifarConfig, "widths", (2,))


def fig15_plot(df, cfg: Fig15Config):
    return fam.plot_variants(df)


register(fam.cifar_figure(
    "fig15", "BN x skip on CIFAR-100 (loss, min cosine, test accuracy vs depth)",
    Fig15Config, fig15_plot, fam.VARIANT_CLAIMS,
    smoke=fam.SMOKE_VARIANTS, paper={"depths": fam.ALL_DEPTHS}))
