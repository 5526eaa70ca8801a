"""On a CUDA machine (skipped elsewhere): every figure's smoke preset runs on the GPU, and the GPU engines give the
CPU's answers. The first thing to run when a GPU is lent: `python -m pytest -q tests/test_cuda.py`."""
import json

import pandas as pd
import pytest
import torch

from reproduce import registry, runner
from reproduce.papers.random_walk_bridge import breakpoints as bp
from reproduce.papers.random_walk_bridge import path_stats as ps

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
FIGS = [(f.paper, f.key) for f in registry.figures()]
CUDA = torch.device("cuda")


@pytest.mark.parametrize("paper,key", FIGS)
def test_smoke_every_figure_on_cuda(paper, key, tmp_path):
    fig = registry.figure(paper, key)
    res = runner.run_figure(fig, preset="smoke", device="cuda", out=tmp_path)
    meta = json.loads(res.outputs.meta.read_text())
    assert meta["device"] == "cuda"
    assert meta["tf32"] == {"cuda_matmul": False, "cudnn": False, "float32_matmul_precision_highest": True}
    assert len(pd.read_csv(res.outputs.csv)) > 0 and res.outputs.png.exists()
    assert meta["peak_memory"].get("cuda_max_allocated_mb", 0) > 0, "nothing was put on the GPU"


def test_bisection_on_cuda_equals_the_region_walk_on_cpu(gen):
    from test_breakpoints import ends, tiny_conv
    net = tiny_conv(gen)
    x0, x1 = ends(gen, 2, 8, 8)
    w = bp.region_walk(net, x0, x1)
    b = bp.bisect(net.to(CUDA), x0.to(CUDA), x1.to(CUDA), grid=16)
    assert len(w.t) == len(b.t) > 0 and b.unresolved == 0
    torch.testing.assert_close(w.t, b.t.cpu(), rtol=0, atol=1e-10)
    assert torch.equal(w.relu, b.relu.cpu())
    s = bp.slopes(net, x0.to(CUDA), x1.to(CUDA), b.t)
    assert s["R"].shape == (len(b.t) + 1, 3)
    assert bp.grid_count(net, x0.to(CUDA), x1.to(CUDA), points=200) <= int(w.relu.sum())


def test_path_statistics_on_cuda_equal_cpu(gen):
    t = torch.sort(torch.rand(9, generator=gen, dtype=torch.float64)).values
    R = torch.randn(10, 4, generator=gen, dtype=torch.float64)
    assert ps.pair_stats(t.to(CUDA), R.to(CUDA)) == pytest.approx(ps.pair_stats(t, R), rel=1e-12)
