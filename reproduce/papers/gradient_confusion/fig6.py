"""Fig 6: MLP-beta-l on MNIST, final loss and min gradient cosine vs width (8 panels)."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import setting
from ...registry import Figure, register
from .common import PAPER
from .mlp import PAPER_SIZES, SMOKE, MlpConfig, family_claims, mlp_compute, mlp_cost, mlp_grid, mlp_memory, mlp_plot


@dataclass(frozen=True)
class Fig6Config(MlpConfig):
    depths: tuple[int, ...] = setting((50,), stated=True, size=True,
                                      help="beta; default 50: of depths 20, 50, 100 the shallowest where tanh at "
                                           "width 10 stays untrainable (final loss 1.84 > 0.5 ln 10 at every lr; at "
                                           "20 it trains to 1.08-1.17, test accuracy 0.62-0.68)")
    widths: tuple[int, ...] = setting((10, 30, 100), stated=True, size=True,
                                      help="l; width 300 and 1000 are left to the paper preset on a CPU")


register(Figure(PAPER, "fig6", "MLP-beta-l on MNIST: final loss and min gradient cosine vs width (8 panels)",
                Fig6Config, mlp_grid, mlp_compute, mlp_plot, family_claims("width", -1, 10),
                presets={"smoke": {**SMOKE, "depths": (6,), "widths": (8, 32)},
                         "paper": {**PAPER_SIZES, "depths": (300,), "widths": (10, 30, 100, 300, 1000)}},
                runtime={"smoke": "10 s", "default": "about 45 min CPU", "paper": "see --dry-run"}, cost=mlp_cost,
                memory=mlp_memory,
                gpu_presets=("paper",)))
