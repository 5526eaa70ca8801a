"""Paper 001 (Arpit & Bengio): norm preservation in deep ReLU nets at He initialization.

Claims checked (../shared/papers/SPEC-000-002.md §2), each against this tool's own CSVs:
- Fig 1: with He init (variance 2/fan-out) ||h_i||/||x|| ~ 1 and ||dl/dW_i||_F / (||delta|| ||x||) ~ 1 at every
  layer, closer with width (std ~ 1/2 sqrt(5 i / m)); Glorot init shrinks both.
- Fig 2: the width bound of Lemma 2 / Lemma 5 (inverted at failure probability 0.05) over-estimates the
  measured distortion, by a factor 2-6, and the gap closes as width grows; forward and backward agree.
- Fig 3: with layer widths drawn from U(1000-v, 1000+v), the gradient-norm ratio drifts from 1 across layers
  as v grows, following sqrt(n_i / n_L).
"""
from . import fig1, fig2, fig3
from .common import _ratios
from .fig1 import Fig1Config, fig1_compute
from .fig2 import Fig2Config, code_theory_eps, fig2_compute, g_chernoff, theory_eps
from .fig3 import Fig3Config, fig3_compute

__all__ = ["fig1", "fig2", "fig3", "_ratios", "Fig1Config", "fig1_compute", "Fig2Config", "code_theory_eps",
           "fig2_compute", "g_chernoff", "theory_eps", "Fig3Config", "fig3_compute"]
