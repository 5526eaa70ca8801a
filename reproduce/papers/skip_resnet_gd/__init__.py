"""Paper 002 (E, Ma, Wang, Wu): GD on a deep ResNet with skip connections vs its random-feature twin.

Claims checked (../shared/papers/SPEC-000-002.md §3), each against this tool's own CSVs:
- Fig 1: GD drives the training loss of the m = 1 ResNet (A.1) to ~0 at every depth, and for deep nets its
  trajectory is close to that of the compositional random-feature model (the same net with V frozen).
- Fig 2: the unregularized GD solution's test error settles at a finite value as depth grows, while the
  path-norm-regularized model (A.2, lambda = 0.005, Adam) keeps a very small test error at every depth.
"""
from . import fig1, fig2
from .common import adam_direction, data, depth_buckets, init, train
from .fig1 import Fig1Config, fig1_compute
from .fig2 import Fig2Config, fig2_compute

__all__ = ["Fig1Config", "Fig2Config", "adam_direction", "data", "depth_buckets", "fig1", "fig1_compute", "fig2",
           "fig2_compute", "init", "train"]
