"""Fig 6: MLP-beta-l on MNIST, final loss and min gradient cosine vs width (8 panels)."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import setting
from ...registry import Figure, register
from .common import PAPER
from .mlp import PAPER_SIZES, SMOKE, MlpConfig, family_claims, mlp_compute, mlp_cost, mlp_grid, mlp_plot


@dataclass(frozen=True)
class Fig6Config(MlpConfig):
    depths: tuple[int, ...] = setting((20,), stated=True, size=True,
                                      help="beta (paper 300; default 20 so width 300 fits a 2-core CPU)")
    widths: tuple[int, ...] = setting((10, 30, 100, 300), stated=True, size=True,
                                      help="l (paper 10..1000)")


register(Figure(PAPER, "fig6", "MLP-beta-l on MNIST: final loss and min gradient cosine vs width (8 panels)",
                Fig6Config, mlp_grid, mlp_compute, mlp_plot, family_claims("width", -1, 10),
                presets={"smoke": {**SMOKE, "depths": (6,), "widths": (8, 32)},
                         "paper": {**PAPER_SIZES, "depths": (300,), "widths": (10, 30, 100, 300, 1000)}},
                runtime={"smoke": "10 s", "default": "29 min CPU", "paper": "see --dry-run"}, cost=mlp_cost,
                gpu_presets=("paper",)))
