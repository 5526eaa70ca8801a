"""Fig 14: Width: WRN-16-l (no BN) on CIFAR-100 (final loss, min cosine, KDE)."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import like
from ...registry import register
from . import cifar_family as fam
from .cifar import CifarConfig


@dataclass(frozen=True)
class Fig14Config(CifarConfig):
    dataset: str = like(CifarConfig, "dataset", "cifar100")
    variants: tuple[str, ...] = like(CifarConfig, "variants", ("wrn",))
    depths: tuple[int, ...] = like(CifarConfig, "depths", (16,))
    widths: tuple[int, ...] = like(CifarConfig, "widths", fam.WIDTHS)


def fig14_plot(df, cfg: Fig14Config):
    return fam.plot_sweep(df, False, 0.15)


register(fam.cifar_figure(
    "fig14", "Width: WRN-16-l (no BN) on CIFAR-100 (final loss, min cosine, KDE)",
    Fig14Config, fig14_plot, fam.WRN_WIDTH_CLAIMS,
    smoke=fam.SMOKE_WIDTH, paper=fam.WIDTHS_PAPER))
