"""Fig 8: Width, extra panels: CNN-16-l on CIFAR-10 (loss, test accuracy, min cosine per epoch)."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import like
from ...registry import register
from . import cifar_family as fam
from .cifar import CifarConfig


@dataclass(frozen=True)
class Fig8Config(CifarConfig):
    """Fig 3's settings: the run cache trains their runs once (Fig 3 and Fig 8 share them)."""

    dataset: str = like(CifarConfig, "dataset", "cifar10")
    variants: tuple[str, ...] = like(CifarConfig, "variants", ("cnn",))
    depths: tuple[int, ...] = like(CifarConfig, "depths", (16,))
    # 1, 2, 3 rather than the family's WIDTHS (2, 3, 4): the same 3x span as the paper's 2 ... 6 at half the CPU cost
    # (a run costs ~ width^2), width 2 shared with the depth sweep; Figs 3, 8 and 13 search it alike
    widths: tuple[int, ...] = like(CifarConfig, "widths", (1, 2, 3))


def fig8_plot(df, cfg: Fig8Config):
    return fam.plot_extra(df)


register(fam.cifar_figure(
    "fig8", "Width, extra panels: CNN-16-l on CIFAR-10 (loss, test accuracy, min cosine per epoch)",
    Fig8Config, fig8_plot, fam.WIDTH_EXTRA_CLAIMS,
    smoke=fam.SMOKE_WIDTH, paper=fam.WIDTHS_PAPER))
