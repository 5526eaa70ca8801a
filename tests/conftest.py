"""Shared fixtures: CPU, float64, fixed seeds."""
import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
os.environ.setdefault("COLUMNS", "200")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def gen():
    g = torch.Generator()
    g.manual_seed(1234)
    return g
