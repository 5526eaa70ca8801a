"""Fig 4: BN x skip: CNN/WRN-beta-2 on CIFAR-10 (loss, min cosine, test accuracy vs depth)."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import like
from ...registry import register
from . import cifar_family as fam
from .cifar import VARIANTS, CifarConfig


@dataclass(frozen=True)
class Fig4Config(CifarConfig):
    dataset: str = like(CifarConfig, "dataset", "cifar10")
    variants: tuple[str, ...] = like(CifarConfig, "variants", tuple(VARIANTS))
    depths: tuple[int, ...] = like(CifarConfig, "depths", fam.VARIANT_DEPTHS)
    widths: tuple[int, ...] = like(CifarConfig, "widths", (2,))


def fig4_plot(df, cfg: Fig4Config):
    return fam.plot_variants(df)


register(fam.cifar_figure(
    "fig4", "BN x skip: CNN/WRN-beta-2 on CIFAR-10 (loss, min cosine, test accuracy vs depth)",
    Fig4Config, fig4_plot, fam.VARIANT_CLAIMS + (fam.ACC_KEPT_CLAIMS,),
    smoke=fam.SMOKE_VARIANTS, paper={"depths": fam.ALL_DEPTHS}))
