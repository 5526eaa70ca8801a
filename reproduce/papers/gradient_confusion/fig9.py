"""Fig 9: Depth: CNN-beta-2 on CIFAR-100 (final loss, min cosine, KDE)."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import like
from ...registry import register
from . import cifar_family as fam
from .cifar import CifarConfig


@dataclass(frozen=True)
class Fig9Config(CifarConfig):
    dataset: str = like(CifarConfig, "dataset", "cifar100")
    variants: tuple[str, ...] = like(CifarConfig, "variants", ("cnn",))
    depths: tuple[int, ...] = like(CifarConfig, "depths", fam.DEPTHS)
    widths: tuple[int, ...] = like(CifarConfig, "widths", (2,))


def fig9_plot(df, cfg: Fig9Config):
    return fam.plot_sweep(df, False, 0.4)


register(fam.cifar_figure(
    "fig9", "Depth: CNN-beta-2 on CIFAR-100 (final loss, min cosine, KDE)",
    Fig9Config, fig9_plot, fam.DEPTH_CLAIMS,
    smoke=fam.SMOKE_DEPTH, paper=fam.DEPTHS_PAPER))
