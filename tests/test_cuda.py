"""On a CUDA machine (skipped elsewhere): every figure's smoke preset runs on the GPU, TF32 is really off, runs are
deterministic, and the GPU engines give the CPU's answers. Run by `make gpu-check` (tests/gpu_check.py), the first
thing to run on a GPU; with `-s` it prints each figure's GPU time and host-device synchronisations."""
import json
import time
import warnings

import pandas as pd
import pytest
import torch

from reproduce import registry, runner
from reproduce.papers.random_walk_bridge import breakpoints as bp
from reproduce.papers.random_walk_bridge import path_stats as ps
from reproduce.point import reproducible_mode

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
FIGS = [(f.paper, f.key) for f in registry.figures()]
CUDA = torch.device("cuda")
TWICE = [("gradient-confusion", "fig2"), ("random-walk-bridge", "fig5"), ("transition-to-linearity", "fig1")]


def _on_cpu_by_design(meta: dict) -> bool:
    """A figure whose points say they compute on the host (a toy faster there than on any GPU)."""
    return any(str(n.get("compute_device", "")).startswith("cpu") for n in meta.get("point_notes", []))


@pytest.mark.parametrize("paper,key", FIGS)
def test_smoke_every_figure_on_cuda(paper, key, tmp_path):
    fig = registry.figure(paper, key)
    start = time.perf_counter()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            res = runner.run_figure(fig, preset="smoke", device="cuda", out=tmp_path)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    syncs = sum("synchroniz" in str(w.message) for w in seen)
    print(f"\n{paper} {key}: {time.perf_counter() - start:.1f} s on {torch.cuda.get_device_name()}, "
          f"{syncs} host-device synchronisations warned")
    meta = json.loads(res.outputs.meta.read_text())
    assert meta["device"] == "cuda"
    assert meta["tf32"] == {"cuda_matmul": False, "cudnn": False, "float32_matmul_precision_highest": True}
    assert meta["determinism"]["deterministic_algorithms"] and meta["determinism"]["cudnn_deterministic"]
    assert len(pd.read_csv(res.outputs.csv)) > 0 and res.outputs.png.exists()
    if not _on_cpu_by_design(meta):
        assert meta["peak_memory"].get("cuda_max_allocated_mb", 0) > 0, "nothing was put on the GPU"


def test_tf32_is_really_off():
    """float32 matmul and convolution against float64: ~1e-6 relative in true float32, ~1e-3 under TF32."""
    reproducible_mode(CUDA)
    g = torch.Generator(device=CUDA).manual_seed(0)
    a, b = (torch.randn(512, 512, device=CUDA, generator=g) for _ in range(2))
    err = ((a @ b).double() - a.double() @ b.double()).norm() / (a.double() @ b.double()).norm()
    x, w = torch.randn(8, 64, 32, 32, device=CUDA, generator=g), torch.randn(64, 64, 3, 3, device=CUDA, generator=g)
    ref = torch.nn.functional.conv2d(x.double(), w.double(), padding=1)
    conv = (torch.nn.functional.conv2d(x, w, padding=1).double() - ref).norm() / ref.norm()
    print(f"\nfloat32 vs float64: matmul {float(err):.2e}, conv {float(conv):.2e} (TF32 would give ~1e-3)")
    assert err < 1e-5 and conv < 1e-5


@pytest.mark.parametrize("paper,key", TWICE)
def test_a_smoke_figure_twice_on_cuda_gives_the_same_bytes(paper, key, tmp_path):
    fig = registry.figure(paper, key)
    a = runner.run_figure(fig, preset="smoke", device="cuda", out=tmp_path / "a")
    b = runner.run_figure(fig, preset="smoke", device="cuda", out=tmp_path / "b")
    assert a.outputs.csv.read_bytes() == b.outputs.csv.read_bytes()


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
