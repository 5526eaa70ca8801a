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
    widths: tuple[int, ...] = like(CifarConfig, "widths", fam.WIDTHS)


def fig8_plot(df, cfg: Fig8Config):
    return fam.plot_extra(df)


register(fam.cifar_figure(
    "fig8", "Width, extra panels: CNN-16-l on CIFAR-10 (loss, test accuracy, min cosine per epoch)",
    Fig8Config, fig8_plot, fam.WIDTH_EXTRA_CLAIMS,
    smoke=fam.SMOKE_WIDTH, paper=fam.WIDTHS_PAPER))
