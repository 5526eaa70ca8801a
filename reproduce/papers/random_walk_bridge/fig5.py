"""Fig 5: ResNets vs depth: exact nodes, gradient gap deviation and deflection, at init and during SGD."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...config import setting
from ...registry import Figure, register
from .common import PAPER
from .conv import (
    SMOKE,
    ConvConfig,
    conv_compute,
    conv_cost,
    conv_datasets,
    conv_grid,
    conv_plot,
    depth_choices,
    family_claims,
)


@dataclass(frozen=True)
class Fig5Config(ConvConfig):
    arch: ClassVar[str] = "resnet"
    # a full-width path costs ~ depth^2 (nodes and the forward per node both grow with depth): on one CPU thread
    # WRN-10-1 takes ~4 min, WRN-22-1 ~20 min, WRN-40-1 ~70 min, so the default stops at 22 (paper preset: 10-40)
    depths: tuple[int, ...] = setting((10, 16, 22), stated=True, size=True,
                                      choices=depth_choices("resnet"),
                                      help="authors: WRN-d-1 ('ResNet10 ... ResNet40', paper 10-40); standard: He et "
                                           "al.'s CIFAR ResNet-18/34 (basic) and 50/101/152 (bottleneck)")
    train_depths: tuple[int, ...] = setting((10,), stated=False, size=True,
                                            choices=depth_choices("resnet"),
                                            help="depths of the training panels (the authors' code: WRN-10/22/34-1)")
    train_dataset: str = setting("cifar10", stated=True, size=True,
                                 choices=("cifar100", "cifar10", "synthetic-cifar100", "synthetic-cifar10"),
                                 help="paper: CIFAR-100 (not available offline: CIFAR-10 here, labelled so)")
    lr: float = setting(0.05, stated=False, help="SGD learning rate")


register(Figure(PAPER, "fig5", "ResNets vs depth: nodes, GGD, deflection at init and during training (CIFAR-100)",
                Fig5Config, conv_grid, conv_compute, conv_plot, family_claims("F5"), cost=conv_cost,
                datasets=conv_datasets,
                presets={"smoke": {**SMOKE, "depths": (10, 16), "train_depths": (10,),
                                   "train_dataset": "synthetic-cifar100", "image_size": 8,
                                   "datasets": ("synthetic-mnist", "synthetic-cifar100")},
                         "paper": {"networks": 100, "pairs_per_net": 10, "train_dataset": "cifar100",
                                   "depths": (10, 16, 22, 28, 34, 40), "train_depths": (10, 22, 34),
                                   "datasets": ("mnist", "cifar10", "cifar100"), "steps": 3910, "n_pairs": 20,
                                   "n_checkpoints": 6}},
                runtime={"smoke": "30 s", "default": "see --dry-run (full width: hours on a CPU)",
                         "paper": "not run yet"},
                gpu_presets=("default", "paper")))
