"""Faults a user meets: damaged caches, bad input, concurrent and killed runs, offline data (one line, exit 2,
nothing written; a damaged cache entry is recomputed, never trusted)."""
import dataclasses
import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from test_cli import files_under, repro

from reproduce import cache, executor, point, registry, runner
from reproduce import datasets as data_mod

ROOT = Path(__file__).resolve().parents[1]


def one_line_error(res) -> bool:
    lines = res.output.strip().splitlines()
    return res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in res.output


def points(out: Path) -> list[Path]:
    return sorted((out / "data" / ".cache").glob("*/point.csv"))


@pytest.mark.parametrize("damage", ["truncate", "garble", "no-checksum"])
def test_a_damaged_cache_point_is_recomputed_with_a_warning(tmp_path, damage):
    args = ("norm", "fig1", "--preset", "smoke", "--out", tmp_path)
    assert repro(*args).exit_code == 0
    csv = tmp_path / "data/smoke/norm-preservation/fig1.csv"
    good = csv.read_bytes()
    point = points(tmp_path)[0]
    if damage == "truncate":
        point.write_text(point.read_text().splitlines()[0] + "\n-1\n")
    elif damage == "garble":
        text = point.read_text()
        point.write_text(text.replace("0.", "9.", 1))                  # same length, other number
    else:
        point.with_suffix(".json").unlink()
    res = repro(*args)
    assert res.exit_code == 0, res.output
    assert "warning: cache entry" in res.output and "recomputed" in res.output
    assert "1 computed" in res.output
    assert csv.read_bytes() == good


@pytest.mark.slow
def test_a_damaged_shared_training_run_is_retrained(tmp_path):
    args = ("confusion", "fig3", "--preset", "smoke", "--out", tmp_path)
    assert repro(*args).exit_code == 0
    csv = tmp_path / "data/smoke/gradient-confusion/fig3.csv"
    good = csv.read_bytes()
    for p in points(tmp_path):             # the figure's points must come from the run cache again
        p.unlink()
    run = sorted((tmp_path / "data/.cache/runs").glob("*/run.csv"))[0]
    run.write_text(run.read_text()[: len(run.read_text()) // 2])
    res = repro(*args)
    assert res.exit_code == 0, res.output
    assert "warning: cache entry" in res.output and csv.read_bytes() == good


@pytest.mark.slow
def test_figures_that_share_training_runs_train_them_once(tmp_path):
    def runs():
        return {p: p.stat().st_mtime_ns for p in (tmp_path / "data/.cache/runs").glob("*/run.csv")}

    assert repro("confusion", "fig2", "--preset", "smoke", "--out", tmp_path).exit_code == 0
    trained = runs()
    res = repro("confusion", "fig7", "--preset", "smoke", "--out", tmp_path)   # Fig 7 = Fig 2's runs, other plots
    assert res.exit_code == 0, res.output
    assert trained and runs() == trained


@pytest.mark.parametrize("args", [
    ["norm", "fig1", "--set", "widths=0"],
    ["norm", "fig1", "--set", "widths=100000000"],
    ["norm", "fig3", "--set", "n_samples=0"],
    ["bridge", "fig2", "--set", "widths=-5"],
])
def test_bad_sizes_are_refused_before_any_work(tmp_path, args):
    res = repro(*args, "--preset", "smoke", "--out", tmp_path)
    assert one_line_error(res), res.output
    assert files_under(tmp_path) == []


def test_out_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    res = repro("norm", "fig1", "--preset", "smoke", "--out", target)
    assert one_line_error(res) and "is a file" in res.output
    assert files_under(tmp_path) == [target]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_out_that_is_not_writable_is_refused(tmp_path):
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o555)
    res = repro("norm", "fig1", "--preset", "smoke", "--out", locked / "out")
    assert one_line_error(res) and "not a writable folder" in res.output


def idx(path: Path, dims: list[int], payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    head = bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    path.write_bytes(head + payload)


def fake_mnist(raw: Path, n: int = 20, truncate: bool = False) -> None:
    idx(raw / "train-images-idx3-ubyte", [n, 28, 28], bytes(n * 784 - (100 if truncate else 0)))
    idx(raw / "train-labels-idx1-ubyte", [n], bytes(i % 10 for i in range(n)))
    idx(raw / "t10k-images-idx3-ubyte", [n, 28, 28], bytes(n * 784))
    idx(raw / "t10k-labels-idx1-ubyte", [n], bytes(i % 10 for i in range(n)))


def test_a_truncated_dataset_file_is_named(tmp_path):
    fake_mnist(tmp_path / "data-root" / "MNIST" / "raw", truncate=True)
    res = repro("bridge", "fig3", "--data-root", tmp_path / "data-root", "--out", tmp_path / "out")
    assert one_line_error(res), res.output
    assert "train-images-idx3-ubyte" in res.output and "repro data unpack" in res.output
    assert files_under(tmp_path / "out") == []


@pytest.mark.parametrize("damage", ["missing-column", "cut-mid-row", "empty"])
def test_plot_only_on_a_bad_csv_keeps_the_old_figure(tmp_path, damage):
    assert repro("norm", "fig1", "--preset", "smoke", "--out", tmp_path).exit_code == 0
    csv = tmp_path / "data/smoke/norm-preservation/fig1.csv"
    png = tmp_path / "figures/smoke/norm-preservation/fig1.png"
    before = png.read_bytes()
    if damage == "missing-column":
        pd.read_csv(csv).drop(columns=["quantity"]).to_csv(csv, index=False)
    elif damage == "cut-mid-row":
        csv.write_bytes(csv.read_bytes()[:-7])
    else:
        csv.write_text("")
    res = repro("norm", "fig1", "--preset", "smoke", "--plot-only", "--out", tmp_path)
    assert one_line_error(res), res.output
    assert png.read_bytes() == before


def run_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "reproduce.cli", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_two_runs_side_by_side_compute_each_point_once(tmp_path, smoke):
    args = ("linearity", "table1", "--preset", "smoke", "--device", "cpu", "--out", str(tmp_path / "shared"))
    a, b = run_cli(*args), run_cli(*args)
    outs = [p.communicate(timeout=600)[0] for p in (a, b)]
    assert a.returncode == b.returncode == 0, outs
    fig = registry.figure("linearity", "table1")
    total = len(fig.grid(runner.prepare(fig, "smoke", [])))
    computed = [int(o.split(" computed")[0].rsplit(" ", 1)[-1]) for o in outs]
    assert sum(computed) == total, outs
    assert smoke.run("linearity", "table1").exit_code == 0      # the session's clean smoke run
    rel = "data/smoke/transition-to-linearity/table1.csv"
    assert (tmp_path / "shared" / rel).read_bytes() == (smoke.out / rel).read_bytes()


def a_second_run_waits_for_a_held_point(ex, out: Path):
    """Another run holds point 0's lock (it is computing it): this run computes every other point, waits for point 0
    without computing it, and takes it from the cache once the other run has written it. Returns its result."""
    fig = registry.figure("norm", "fig2")
    plan = runner.plan_figure(fig, preset="smoke", device="cpu", out=out)
    other = cache.Lock(plan.tasks[0].entry.parent)
    assert other.acquire(block=False)
    result = {}
    driver = threading.Thread(target=lambda: result.setdefault("r", runner.drive(ex, [plan])))
    driver.start()
    deadline = time.time() + 300
    while len(plan.frames) < len(plan.points) - 1 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert driver.is_alive() and 0 not in plan.frames and len(plan.frames) == len(plan.points) - 1
    frame, info = point.compute_point(plan.tasks[0])        # the other run finishes point 0
    cache.write(frame, plan.tasks[0].entry, info, plan.version)
    other.release()
    driver.join(300)
    (res,), failures = result["r"]
    assert not failures and res.computed == len(plan.points) - 1 and res.cached == 1
    return res


def test_a_second_local_run_waits_for_a_point_another_run_computes(tmp_path):
    res = a_second_run_waits_for_a_held_point(executor.LocalExecutor(), tmp_path / "shared")
    clean = runner.run_figure(res.figure, preset="smoke", device="cpu", out=tmp_path / "clean")
    assert res.outputs.csv.read_bytes() == clean.outputs.csv.read_bytes()


@pytest.mark.slow
def test_kill_9_then_rerun_gives_the_same_csv(tmp_path, smoke):
    args = ["linearity", "fig2", "--preset", "smoke", "--device", "cpu"]
    assert smoke.run("linearity", "fig2").exit_code == 0         # the session's clean smoke run
    killed = run_cli(*args, "--out", str(tmp_path / "k"))
    deadline = time.time() + 300
    while not list((tmp_path / "k" / "data" / ".cache").glob("*/point.json")) and time.time() < deadline:
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    rerun = run_cli(*args, "--out", str(tmp_path / "k"))
    out = rerun.communicate(timeout=600)[0]
    assert rerun.returncode == 0 and " cached" in out and " 0 cached" not in out, out
    rel = "data/smoke/transition-to-linearity/fig2.csv"
    assert (tmp_path / "k" / rel).read_bytes() == (smoke.out / rel).read_bytes()


def offline_folder(path: Path) -> Path:
    """A miniature ../shared/datasets: fake MNIST idx files, gzipped, with SHA256SUMS."""
    fake_mnist(path / "plain")
    lines = []
    for f in sorted((path / "plain").iterdir()):
        gz = path / "MNIST" / "raw" / f"{f.name}.gz"
        gz.parent.mkdir(parents=True, exist_ok=True)
        gz.write_bytes(gzip.compress(f.read_bytes()))
        lines.append(f"{hashlib.sha256(gz.read_bytes()).hexdigest()}  MNIST/raw/{gz.name}")
    (path / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return path


def test_data_unpack_takes_only_what_figures_read_and_checks_sums(tmp_path):
    src = offline_folder(tmp_path / "offline")
    res = repro("data", "unpack", "--from", src, "--data-root", tmp_path / "root")
    assert res.exit_code == 0, res.output
    assert data_mod.locate("mnist", tmp_path / "root") == "torchvision"
    data_mod.check_files("mnist", tmp_path / "root")
    assert sorted(p.name for p in (tmp_path / "root").rglob("*") if p.is_file()) == sorted(
        p.name for p in (src / "plain").iterdir())
    gz = src / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:-1])
    res = repro("data", "unpack", "--from", src, "--data-root", tmp_path / "root2")
    assert one_line_error(res) and "SHA256SUMS" in res.output
    assert one_line_error(repro("data", "unpack", "--from", tmp_path / "nowhere"))


def test_repro_all_unpacks_missing_offline_data_first(tmp_path, monkeypatch):
    src = offline_folder(tmp_path / "offline")
    monkeypatch.setattr(data_mod, "offline_source", lambda explicit=None: src)
    fig = dataclasses.replace(registry.figure("norm", "fig1"), datasets=lambda cfg: ["mnist"])
    monkeypatch.setattr(registry, "figures", lambda paper=None: [fig])
    res = repro("all", "--preset", "smoke", "--data-root", tmp_path / "root", "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert "unpacked mnist" in res.output and "1 figure(s) made, 0 skipped" in res.output
    meta = json.loads((tmp_path / "out/data/smoke/norm-preservation/fig1.meta.json").read_text())
    assert meta["datasets"] == ["mnist"]


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT.parent / "shared" / "datasets").is_dir(), reason="needs ../shared beside the checkout")
def test_make_all_on_a_fresh_clone_runs_every_figure(tmp_path, smoke):
    """The Makefile, the unpack, every figure's plot and claims, the summary line, on a clone of HEAD; its points come
    from the session's smoke runs (copied cache: the clone recomputes only what its committed code changes)."""
    import shutil
    smoke.run_all()
    clone = tmp_path / "work" / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    # a clone may carry a committed resume cache (data/.cache, force-added): merge into it
    shutil.copytree(smoke.out / "data" / ".cache", clone / "data" / ".cache", dirs_exist_ok=True)
    (tmp_path / "work" / "shared").symlink_to(ROOT.parent / "shared")
    venv = Path(sys.executable).parents[1]       # this venv, running the clone's code (PYTHONPATH), not rebuilt
    env = {**os.environ, "PYTHONPATH": str(clone), "CI": "true"}
    env.pop("REPRO_DATA", None)
    logs = tmp_path / "make.out", tmp_path / "make.err"
    with open(logs[0], "w") as out, open(logs[1], "w") as err:
        proc = subprocess.Popen(["make", "-C", str(clone), "all", "PRESET=smoke", f"VENV={venv}", "-o",
                                 f"{venv}/bin/repro"], env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)   # the rusage of make and what it ran, not of this test session
        proc.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = logs[0].read_text(), logs[1].read_text()
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    figs = registry.figures()
    assert f"{len(figs)} figure(s) made, 0 skipped" in stdout
    for fig in figs:
        assert (clone / "data" / "smoke" / fig.paper / f"{fig.key}.csv").is_file(), fig.key
    # the largest process of the run (here: every smoke figure in one process, ~570 MB of it importing torch) stays
    # under the ceiling
    assert usage.ru_maxrss < 1.5 * 2**20, f"a smoke run peaked at {usage.ru_maxrss / 1024:.0f} MB"


def test_logs_get_a_heartbeat_and_ctrl_c_says_how_to_resume(tmp_path, monkeypatch, slow_heartbeat):
    fig = slow_heartbeat(registry.figure("norm", "fig3"))
    monkeypatch.setattr(registry, "figures", lambda paper=None: [fig])
    res = repro("all", "--preset", "smoke", "--out", tmp_path)
    assert res.exit_code == 0 and "still running v=" in res.output, res.output
    lines = res.output.splitlines()       # a log: the plan, one line per event, no bars, nothing wrapped
    assert lines[0].startswith("plan (1 figure(s) to make") and any(x.startswith("all: 0/1 figures") for x in lines)
    assert max(map(len, lines)) <= 200 and not any(c in res.output for c in "━┏└"), res.output
    assert any(x.startswith("  norm fig3: ") and "PASS" in x or "FAIL" in x for x in lines), res.output

    def interrupted(cfg, point, ctx):
        if point["v"] == 20:
            raise KeyboardInterrupt
        return fig.compute(cfg, point, ctx)

    monkeypatch.setattr(registry, "figures", lambda paper=None: [dataclasses.replace(fig, compute=interrupted)])
    res = repro("all", "--preset", "smoke", "--force", "--out", tmp_path / "i")
    assert res.exit_code == 130 and "run the same command again to resume" in res.output, res.output
    assert len(points(tmp_path / "i")) == 3            # the finished points (v = 1, three networks) were kept
