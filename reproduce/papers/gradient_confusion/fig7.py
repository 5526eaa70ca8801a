"""Fig 7: Depth, extra panels: CNN-beta-2 on CIFAR-10 (loss, test accuracy, min cosine per epoch)."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import like
from ...registry import register
from . import cifar_family as fam
from .cifar import CifarConfig


@dataclass(frozen=True)
class Fig7Config(CifarConfig):
    """Fig 2's settings: the run cache trains their runs once (Fig 2 and Fig 7 share them)."""

    dataset: str = like(CifarConfig, "dataset", "cifar10")
    variants: tuple[str, ...] = like(CifarConfig, "variants", ("cnn",))
    depths: tuple[int, ...] = like(CifarConfig, "depths", fam.DEPTHS)
    widths: tuple[int, ...] = like(CifarConfig, "widths", (2,))
    # 0.01 added below the family grid: at 0.03-0.3 the deep CNNs (22, 28) chose 0.03, the grid's edge (check
    # f-lr-inside); Figs 2, 4 and 7 share their CNN runs, so they search the same grid
    lrs: tuple[float, ...] = like(CifarConfig, "lrs", (0.01, 0.03, 0.1, 0.3))


def fig7_plot(df, cfg: Fig7Config):
    return fam.plot_extra(df)


register(fam.cifar_figure(
    "fig7", "Depth, extra panels: CNN-beta-2 on CIFAR-10 (loss, test accuracy, min cosine per epoch)",
    Fig7Config, fig7_plot, fam.DEPTH_EXTRA_CLAIMS,
    smoke=fam.SMOKE_DEPTH, paper=fam.DEPTHS_PAPER))
