"""Paper 003 (Sankararaman et al.): the effect of architecture on gradient confusion and training speed.

Claims checked (SPEC-003-004 Part A), each against this tool's own CSVs:
- Fig 1: over-parameterized linear regression trains to ~0 loss and its per-sample gradients are less confused.
- Figs 2, 7, 9, 11, 12 (depth): deeper CNN/WRN -> higher final training loss, more negative min gradient cosine,
  wider cosine distribution; Figs 3, 8, 10, 13, 14 (width): wider -> the opposite.
- Figs 4, 15: with BN and skip connections confusion stays low even at depth 100.
- Figs 5, 6: the same depth / width trends for linear and tanh MLPs on MNIST (Glorot and LeCun init).
Gradient confusion = pairwise cosines of minibatch gradients, measured on its own random generator.
"""
from . import bench, cifar, cifar_figs, common, fig1, mlp
from .fig1 import FIG1_CLAIMS, Fig1Config, fig1_compute, fig1_grid, fig1_plot

__all__ = ["bench", "cifar", "cifar_figs", "common", "fig1", "mlp", "FIG1_CLAIMS", "Fig1Config", "fig1_compute",
           "fig1_grid", "fig1_plot"]
