"""The CUDA paths, checked on a CPU where their behaviour shows without a GPU: device names, cache keys, Ray GPU
tasks and the determinism switches (tests/test_cuda.py runs them on a GPU)."""
import os

import pandas as pd
import pytest
import torch

from reproduce import executor, registry, runner
from reproduce.config import ReproError
from reproduce.point import determinism_flags, device_key, reproducible_mode


@pytest.fixture
def one_gpu(monkeypatch):
    """This machine as a 1-GPU CUDA machine, as far as device names go."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda dev=None: "NVIDIA Test GPU")


def test_a_gpu_index_the_machine_lacks_is_a_one_line_error(one_gpu):
    assert runner.pick_device("cuda:0") == torch.device("cuda:0")
    assert runner.pick_device("cuda") == torch.device("cuda")
    for bad in ("cuda:5", "cuda:1", "cuda:x"):
        with pytest.raises(ReproError) as err:
            runner.pick_device(bad)
        assert "\n" not in str(err.value)
    with pytest.raises(ReproError, match="1 CUDA device "):
        runner.pick_device("cuda:1")


def test_cpu_cache_keys_stay_the_device_type_and_cuda_keys_name_the_gpu(one_gpu):
    assert device_key(torch.device("cpu")) == "cpu"       # every cached CPU point keeps its key
    assert device_key(torch.device("cuda")) == "cuda/NVIDIA Test GPU"


def test_runs_shared_between_confusion_figures_are_keyed_by_the_gpu_model(one_gpu, tmp_path):
    """A CPU run keeps its cache folder (spec, seed, device type, shared code); a CUDA run's names the GPU model."""
    from reproduce.config import stable_hash
    from reproduce.papers.gradient_confusion.common import cached_run
    from reproduce.point import Context

    folders = {}
    for dev in ("cpu", "cuda"):
        ctx = Context(device=torch.device(dev), seed=0, data_root=tmp_path, cache_dir=tmp_path / dev,
                      shared_version="v")
        cached_run(ctx, {"run": 0}, lambda: pd.DataFrame({"value": [1.0]}))
        folders[dev] = [p.name for p in (tmp_path / dev / "runs").iterdir()]
    assert folders["cpu"] == [stable_hash([{"run": 0}, 0, "cpu", "v"])]
    assert folders["cuda"] == [stable_hash([{"run": 0}, 0, "cuda/NVIDIA Test GPU", "v"])]


def test_a_ray_gpu_task_gets_its_own_worker_and_computes_on_its_gpu():
    assert executor.worker_device("cuda:1") == executor.worker_device("cuda") == "cuda"
    assert executor.worker_device("cpu") == "cpu"
    gpu, opts = executor.task_options({"cpus": 1, "gpus": 0.5, "memory": 2**30})
    assert gpu and opts == {"num_cpus": 1, "num_gpus": 0.5, "max_retries": 3, "memory": 2**30}
    assert executor.task_options({"cpus": 2, "gpus": 0})[0] is False


def test_determinism_is_switched_on_for_cuda_only_and_recorded(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
              torch.backends.cudnn.benchmark)
    try:
        reproducible_mode(torch.device("cpu"))
        assert determinism_flags() == {"deterministic_algorithms": False, "cudnn_deterministic": False,
                                       "cudnn_benchmark": False, "cublas_workspace_config": None}
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        reproducible_mode(torch.device("cuda"))      # only switches: no CUDA call
        assert determinism_flags() == {"deterministic_algorithms": True, "cudnn_deterministic": True,
                                       "cudnn_benchmark": False, "cublas_workspace_config": ":4096:8"}
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1], before[2]


def test_memory_the_allocator_caches_counts_as_free(monkeypatch):
    """A figure refused for memory is refused against free memory plus this process's cached, unused CUDA blocks."""
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda dev=None: 6 * 2**30)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda dev=None: 2**30)
    assert runner.reusable_cuda_bytes(torch.device("cuda")) == 5 * 2**30
    assert runner.reusable_cuda_bytes(torch.device("cpu")) == 0
    fig = registry.figure("norm", "fig1")
    need = fig.memory(runner.prepare(fig, "default", []))[0]
    monkeypatch.setattr(runner, "free_memory", lambda dev: need - 2**30)      # short by 1 GiB, 5 GiB cached
    runner.check_memory(fig, runner.prepare(fig, "default", []), torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda dev=None: 2**30)
    with pytest.raises(ReproError, match="GiB free"):
        runner.check_memory(fig, runner.prepare(fig, "default", []), torch.device("cuda"))


def test_meta_records_the_flags_the_points_ran_with():
    """Under Ray the points run in workers: meta.json takes their TF32 / determinism flags and CUDA peak."""
    from types import SimpleNamespace
    on = {"tf32": {"cuda_matmul": False}, "determinism": {"cudnn_deterministic": True}, "cuda_max_allocated_mb": 7.0}
    other = {**on, "cuda_max_allocated_mb": 9.5}
    plan = SimpleNamespace(frames={0: (None, {"ran_with": on}), 1: (None, {"ran_with": other}), 2: (None, {})})
    got = runner._ran_with(plan)
    assert got["tf32"] == on["tf32"] and got["determinism"] == on["determinism"]
    assert got["points_cuda_max_allocated_mb"] == 9.5
    mixed = SimpleNamespace(frames={0: (None, {"ran_with": on}),
                                    1: (None, {"ran_with": {**on, "tf32": {"cuda_matmul": True}}})})
    assert "differs between points" in runner._ran_with(mixed)["tf32"]
    assert runner._ran_with(SimpleNamespace(frames={}))["determinism"] == determinism_flags()   # cached: driver's


def test_an_mlp_point_too_big_for_the_device_is_refused_before_training(monkeypatch):
    """Gradient confusion Fig 6 at the paper's size (depth 300, width 1000, 16 runs stacked) needs ~61 GiB (parameters
    and two float32 gradients per run; the cosines reduce one tensor at a time in float64, no concatenated copy):
    refused in one line on an 80 GB GPU before any step; stacking fewer runs fits."""
    fig = registry.figure("confusion", "fig6")
    need, what = fig.memory(runner.prepare(fig, "paper", []))
    assert 50 * 2**30 < need < 70 * 2**30 and "16 stacked MLP-300-1000" in what
    monkeypatch.setattr(runner, "free_memory", lambda dev: 80 * 10**9 - 20 * 2**30)   # an 80 GB GPU, 20 GiB in use
    with pytest.raises(ReproError, match="stack"):
        runner.check_memory(fig, runner.prepare(fig, "paper", []), torch.device("cpu"))
    runner.check_memory(fig, runner.prepare(fig, "paper", ["stack=4"]), torch.device("cpu"))
    small = registry.figure("confusion", "fig5")
    assert small.memory(runner.prepare(small, "default", []))[0] < 8 * 2**30     # the CPU default fits in 24 GiB


def test_linearity_fig1_at_a_million_units_is_sized_before_it_trains(monkeypatch):
    """Width 1e6 with 10 runs in float64: ~50 GiB, refused where less is free; the default preset fits a CPU."""
    fig = registry.figure("linearity", "fig1")
    need = fig.memory(runner.prepare(fig, "paper", []))[0]
    assert 20 * 2**30 < need < 80 * 2**30
    monkeypatch.setattr(runner, "free_memory", lambda dev: 16 * 2**30)
    with pytest.raises(ReproError, match="GiB free"):
        runner.check_memory(fig, runner.prepare(fig, "paper", []), torch.device("cuda"))
    runner.check_memory(fig, runner.prepare(fig, "default", []), torch.device("cpu"))
