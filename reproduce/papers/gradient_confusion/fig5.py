"""Fig 5: MLP-beta-100 on MNIST, final loss and min gradient cosine vs depth (8 panels)."""
from __future__ import annotations

from dataclasses import dataclass

from ...registry import Figure, register
from .common import PAPER
from .mlp import PAPER_SIZES, SMOKE, MlpConfig, family_claims, mlp_compute, mlp_cost, mlp_grid, mlp_memory, mlp_plot


@dataclass(frozen=True)
class Fig5Config(MlpConfig):
    """The depth sweep: MlpConfig's defaults (width 100, depths 3 ... 100)."""


register(Figure(PAPER, "fig5", "MLP-beta-100 on MNIST: final loss and min gradient cosine vs depth (8 panels)",
                Fig5Config, mlp_grid, mlp_compute, mlp_plot, family_claims("depth", 1, 1000),
                presets={"smoke": {**SMOKE, "depths": (3, 10, 30), "widths": (16,)},
                         "paper": {**PAPER_SIZES, "depths": (3, 10, 30, 100, 300, 1000)}},
                runtime={"smoke": "10 s", "default": "about 70 min CPU (estimate)", "paper": "see --dry-run"},
                cost=mlp_cost, memory=mlp_memory,
                gpu_presets=("paper",)))
