"""Paper 003 (Sankararaman et al.): the effect of architecture on gradient confusion and training speed.

Claims checked (../shared/papers/SPEC-003-004.md, Part A), each against this tool's own CSVs:
- Fig 1: over-parameterized linear regression trains to ~0 loss and its per-sample gradients are less confused.
- Figs 2, 7, 9, 11, 12 (depth): deeper CNN/WRN -> higher final training loss, more negative min gradient cosine,
  wider cosine distribution; Figs 3, 8, 10, 13, 14 (width): wider -> the opposite.
- Figs 4, 15: with BN and skip connections confusion stays low even at depth 100.
- Figs 5, 6: the same depth / width trends for linear and tanh MLPs on MNIST (Glorot and LeCun init).
Gradient confusion = pairwise cosines of minibatch gradients, measured on its own random generator.
Files: figN.py per figure; cifar.py (CIFAR runs) and cifar_family.py (their plots and claims); mlp.py (MNIST MLPs).
"""
from . import bench, fig1, fig2, fig3, fig4, fig5, fig6, fig7, fig8, fig9, fig10, fig11, fig12, fig13, fig14, fig15
from .fig1 import FIG1_CLAIMS, Fig1Config, fig1_compute, fig1_grid, fig1_plot

__all__ = ["FIG1_CLAIMS", "Fig1Config", "bench", "fig1", "fig1_compute", "fig1_grid", "fig1_plot", "fig2", "fig3",
           "fig4", "fig5", "fig6", "fig7", "fig8", "fig9", "fig10", "fig11", "fig12", "fig13", "fig14", "fig15"]
