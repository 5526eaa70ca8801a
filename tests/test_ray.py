"""--executor ray on a local Ray instance (2 CPUs, 127.0.0.1 only): the same bytes as --executor local."""
import dataclasses
import os

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"     # read when Ray is imported: a local instance on 127.0.0.1

import pytest  # noqa: E402
import torch  # noqa: E402
import typer  # noqa: E402
from test_cli import files_under, repro  # noqa: E402
from test_faults import a_second_run_waits_for_a_held_point  # noqa: E402

from reproduce import cli_run, executor, registry, runner  # noqa: E402
from reproduce.config import ReproError  # noqa: E402

ray = pytest.importorskip("ray")
# one local Ray instance: these tests share one pytest-xdist worker; starting Ray and its workers takes seconds, so
# they run in `make test`, not `make test-fast`
pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.slow]

SMOKE = [("norm", "fig2"), ("skip", "fig1"), ("linearity", "fig1"), ("bridge", "fig2"), ("confusion", "fig1")]


@pytest.fixture(scope="module")
def cluster():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        assert "node:127.0.0.1" in ray.cluster_resources()
        yield ray
    finally:
        ray.shutdown()


@pytest.mark.parametrize("paper,key", SMOKE)
def test_a_smoke_figure_on_ray_is_byte_identical_to_local(cluster, tmp_path, paper, key):
    fig = registry.figure(paper, key)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # as a 1-CPU task: the same threads give the same rounding
    try:
        local = repro(paper, key, "--preset", "smoke", "--device", "cpu", "--out", tmp_path / "local")
    finally:
        torch.set_num_threads(threads)
    on_ray = repro(paper, key, "--preset", "smoke", "--device", "cpu", "--out", tmp_path / "ray", "--executor", "ray")
    assert local.exit_code == 0 and on_ray.exit_code == 0, on_ray.output
    rel = f"data/smoke/{fig.paper}/{fig.key}.csv"
    assert (tmp_path / "local" / rel).read_bytes() == (tmp_path / "ray" / rel).read_bytes()
    assert ray.is_initialized()      # a session the caller opened stays open


def test_a_point_that_raises_is_listed_and_the_others_complete(cluster, tmp_path):
    good = registry.figure("norm", "fig2")
    base = registry.figure("norm", "fig1")
    first = base.grid(runner.prepare(base, "smoke", []))[0]

    def compute(cfg, point, ctx):
        if point == first:
            raise ValueError("boom at the first point")
        return base.compute(cfg, point, ctx)
    bad = dataclasses.replace(base, compute=compute)
    with pytest.raises(typer.Exit) as exit_info:
        cli_run._run_many([bad, good], cli_run.RunOptions("smoke", "cpu", out=tmp_path, executor="ray"))
    assert exit_info.value.exit_code == 1
    assert (tmp_path / "data/smoke/norm-preservation/fig2.csv").exists()
    assert not (tmp_path / "data/smoke/norm-preservation/fig1.csv").exists()
    assert runner.plan_figure(bad, preset="smoke", device="cpu", out=tmp_path).missing == [0]  # the rest cached


def test_a_gpu_point_on_a_cpu_cluster_fails_at_once(cluster):
    with pytest.raises(ReproError, match="GPU"):
        executor.RayExecutor().check(needs_gpu=True)


def test_a_refused_connection_names_token_authentication(monkeypatch):
    def refuse(**kwargs):
        raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379")
    monkeypatch.setattr(executor, "_check_reachable", lambda address: None)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    with pytest.raises(ReproError, match="RAY_AUTH_MODE=token") as err:
        executor.RayExecutor(address="10.0.0.1:6379")
    assert "\n" not in str(err.value)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")       # already told: no hint, Ray's own reason only
    with pytest.raises(ReproError) as err:
        executor.RayExecutor(address="10.0.0.1:6379")
    assert "RAY_AUTH_MODE" not in str(err.value)


def test_an_unreachable_address_exits_2_and_writes_nothing(tmp_path):
    res = repro("norm", "fig1", "--preset", "smoke", "--out", tmp_path, "--executor", "ray",
                "--address", "127.0.0.1:1")
    assert res.exit_code == 2 and "no Ray cluster at 127.0.0.1:1" in res.output
    assert files_under(tmp_path) == []
    res = repro("norm", "fig1", "--preset", "smoke", "--out", tmp_path, "--executor", "dask")
    assert res.exit_code == 2 and files_under(tmp_path) == []


def test_a_worker_killed_mid_task_is_retried_with_the_same_numbers(cluster, tmp_path):
    base = registry.figure("norm", "fig2")
    marker = tmp_path / "killed-once"

    def compute(cfg, point, ctx):
        if not marker.exists():
            marker.write_text("x")
            os._exit(1)               # the worker process dies; Ray retries the task elsewhere
        return base.compute(cfg, point, ctx)
    dying = dataclasses.replace(base, compute=compute)
    cli_run._run_many([dying], cli_run.RunOptions("smoke", "cpu", out=tmp_path / "ray", executor="ray"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cli_run._run_many([base], cli_run.RunOptions("smoke", "cpu", out=tmp_path / "local"))
    finally:
        torch.set_num_threads(threads)
    rel = "data/smoke/norm-preservation/fig2.csv"
    assert marker.exists() and (tmp_path / "ray" / rel).read_bytes() == (tmp_path / "local" / rel).read_bytes()


def test_a_killed_driver_resumes_from_every_finished_point(cluster, tmp_path, monkeypatch):
    fig = registry.figure("norm", "fig1")
    total = len(fig.grid(runner.prepare(fig, "smoke", [])))
    stored, store = [], runner.store_point

    def store_then_die(plan, i, frame, info):
        store(plan, i, frame, info)
        stored.append(i)
        if len(stored) == 2:
            raise KeyboardInterrupt
    monkeypatch.setattr(runner, "store_point", store_then_die)
    with pytest.raises(typer.Exit) as exit_info:
        cli_run._run_many([fig], cli_run.RunOptions("smoke", "cpu", out=tmp_path, executor="ray"))
    assert exit_info.value.exit_code == 130
    assert not (tmp_path / "data/smoke/norm-preservation/fig1.csv").exists()
    monkeypatch.setattr(runner, "store_point", store)
    plan = runner.plan_figure(fig, preset="smoke", device="cpu", out=tmp_path)
    assert len(plan.missing) == total - 2
    res = repro("norm", "fig1", "--preset", "smoke", "--device", "cpu", "--out", tmp_path, "--executor", "ray")
    assert res.exit_code == 0 and f"{total - 2} computed, 2 cached" in " ".join(res.output.split())


def test_dry_run_on_ray_prints_the_cluster_and_the_wall_time(cluster, tmp_path):
    res = repro("confusion", "fig5", "--preset", "smoke", "--dry-run", "--executor", "ray", "--device", "cpu",
                "--out", tmp_path)
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and "Ray cluster: 2 CPUs, 0 GPUs" in text and "over 2 CPU slots" in text
    assert files_under(tmp_path) == []


def test_a_second_ray_run_waits_for_a_point_another_run_computes(cluster, tmp_path):
    ex = executor.RayExecutor()
    try:
        res = a_second_run_waits_for_a_held_point(ex, tmp_path)
    finally:
        ex.close()
    assert res.outputs.csv.exists() and ray.is_initialized()
