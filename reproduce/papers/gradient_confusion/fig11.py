"""Fig 11: Depth: WRN-beta-2 (no BN) on CIFAR-10 (final loss, min cosine, KDE)."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import like
from ...registry import register
from . import cifar_family as fam
from .cifar import CifarConfig


@dataclass(frozen=True)
class Fig11Config(CifarConfig):
    dataset: str = like(CifarConfig, "dataset", "cifar10")
    variants: tuple[str, ...] = like(CifarConfig, "variants", ("wrn",))
    depths: tuple[int, ...] = like(CifarConfig, "depths", fam.WRN_DEPTHS)
    widths: tuple[int, ...] = like(CifarConfig, "widths", (2,))


def fig11_plot(df, cfg: Fig11Config):
    return fam.plot_sweep(df, False, 0.4)


register(fam.cifar_figure(
    "fig11", "Depth: WRN-beta-2 (no BN) on CIFAR-10 (final loss, min cosine, KDE)",
    Fig11Config, fig11_plot, fam.WRN_DEPTH_CLAIMS,
    smoke=fam.SMOKE_DEPTH, paper={"depths": fam.ALL_DEPTHS}))
