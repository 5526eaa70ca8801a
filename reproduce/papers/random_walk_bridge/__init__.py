"""Paper 000 (Kubo, Banno, Manabe, Minoji): the gradient along an input path is a random walk bridge.

Claims checked (../shared/papers/SPEC-000-002.md §1), each against this tool's own CSVs:
- Fig 2: for 2-layer ReLU MLPs at He init, the number of break points (nodes) on the segment between two
  samples is about half the hidden units (exactly m E[theta]/pi), and the gradient gap deviation of the
  random-walk-bridge model and the measured gradient deflection are both << 1, flat in m, about 1/sqrt(d),
  and close to each other.
- Fig 3: during SGD on MNIST the node count settles quickly and both quantities stay << 1.
- Figs 4 (VGG) and 5 (ResNet): nodes are half the hidden units or fewer, growing with depth; GGD and
  deflection << 1 at init and during training.
- Fig 6: during training the pair margin comes to exceed the pair fluctuation.
- Fig 1: outputs and exact gradients along one path of a trained ResNet look like a random walk bridge.
Break points are enumerated exactly (breakpoints.py), slopes are jvp's inside intervals.
"""
from . import bench, conv, fig1, fig4, fig5, fig6, models
from .common import DataSettings, data, mlp, pairs, pooled_by, preprocess
from .fig2 import Fig2Config, fig2_compute, fig2_grid, fig2_plot, summary
from .fig3 import Fig3Config, fig3_compute, fig3_grid, fig3_plot, path_rows

__all__ = ["bench", "conv", "fig1", "fig4", "fig5", "fig6", "models", "DataSettings", "data", "mlp", "pairs",
           "pooled_by", "preprocess", "Fig2Config", "fig2_compute",
           "fig2_grid", "fig2_plot", "summary", "Fig3Config", "fig3_compute", "fig3_grid", "fig3_plot", "path_rows"]
