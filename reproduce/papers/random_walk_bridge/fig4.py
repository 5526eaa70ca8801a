"""Fig 4: VGG nets vs depth: exact nodes, gradient gap deviation and deflection, at init and during SGD."""
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
class Fig4Config(ConvConfig):
    arch: ClassVar[str] = "vgg"
    depths: tuple[int, ...] = setting((3, 5, 8), stated=True, size=True, choices=depth_choices("vgg"),
                                      help="authors: conv layers of VGG C3L3 ... C8L3 (paper 3, 4, 5, 6, 8; the "
                                           "default keeps the shallowest, middle and deepest); standard: "
                                           "VGG-11/13/16/19")
    pool: str = setting("max", stated=False, choices=("max", "avg"), help="family=standard only (authors: avg)")
    bn: bool = setting(False, stated=False, help="family=standard only (original VGG has no BN; authors: none)")
    train_depths: tuple[int, ...] = setting((3,), stated=False, size=True,
                                            choices=depth_choices("vgg"),
                                            help="depths of the training panels (the authors' code: C3L3, C5L3, C8L3; "
                                                 "here the shallowest, trained 10 epochs: one full-width C8L3 SGD step "
                                                 "costs 4x a C3L3 one and its paths 5x)")
    train_dataset: str = setting("cifar10", stated=True, size=True, choices=("cifar10", "synthetic-cifar10"))
    lr: float = setting(0.01, stated=False, help="SGD learning rate (halve it by hand on divergence)")


register(Figure(PAPER, "fig4", "VGG nets vs depth: nodes, GGD, deflection at init and during training", Fig4Config,
                conv_grid, conv_compute, conv_plot, family_claims("F4"), cost=conv_cost, datasets=conv_datasets,
                # smoke: init panels only (the exact paths of trained VGGs take ~20 s and 200 MB more on a CPU);
                # fig5's smoke run covers the family's training code
                presets={"smoke": {**SMOKE, "depths": (3, 4), "train_depths": (3,),
                                   "train_dataset": "synthetic-cifar10", "train": False},
                         "paper": {"networks": 100, "pairs_per_net": 10, "datasets": ("mnist", "cifar10", "cifar100"),
                                   "depths": (3, 4, 5, 6, 8), "train_depths": (3, 5, 8),
                                   "steps": 3910, "n_pairs": 20, "n_checkpoints": 6}},
                runtime={"smoke": "12 s",
                         "default": "see --dry-run (full width: hours on a CPU)",
                         "paper": "not run yet"},
                gpu_presets=("default", "paper")))
