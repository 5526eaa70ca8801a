"""Paper 004 (Liu, Zhu, Belkin): transition to linearity, and where it fails.

Claims checked (../shared/papers/SPEC-003-004.md, Part B), each against this tool's own CSVs:
- Fig 1: with a linear output layer (eq. 43, NTK parameterisation) the relative change of the tangent
  kernel during full-batch GD, Delta K, decreases with width like 1/sqrt(m); with a softmax output (same
  trajectory) or a swish output (own trajectory) Delta K stays Theta(1) at every width.
- Fig 2: with a bottleneck of width m_b between two wide layers (eq. 48) Delta K is Theta(1/sqrt(m_b)):
  a narrow bottleneck keeps the kernel from being constant however wide the other layers are.
- Table 1: the model-output Hessian norm is O(1/sqrt(m)) with a linear output layer and O(1) with a
  softmax/swish output or a bottleneck, while the NTK is Theta(1) in every case (measured at init).
"""
from . import bench
from .common import DataSettings, TrainSettings, dataset, kernel_changes, loglog_slope, tracked_rows, train_tracking
from .fig1 import Fig1Config, fig1_compute, fig1_grid, fig1_plot
from .fig2 import Fig2Config, fig2_compute, fig2_grid, fig2_plot, fit_inverse_sqrt
from .table1 import TABLE1_MODELS, TABLE1_PAPER, Table1Config, table1_compute, table1_grid, table1_plot, table1_summary

__all__ = ["DataSettings", "TrainSettings", "dataset", "kernel_changes", "loglog_slope", "tracked_rows",
           "train_tracking", "Fig1Config", "fig1_compute", "fig1_grid", "fig1_plot", "Fig2Config", "fig2_compute",
           "fig2_grid", "fig2_plot", "fit_inverse_sqrt", "TABLE1_MODELS", "TABLE1_PAPER", "Table1Config",
           "table1_compute", "table1_grid", "table1_plot", "table1_summary", "bench"]
