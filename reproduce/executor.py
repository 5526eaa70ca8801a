"""Where uncached sweep points run: `local` (one after another in this process) or `ray` (one Ray task per point,
on a local Ray instance over this machine's CPUs and GPUs, or on a cluster). Both have one interface, `run(tasks)`,
and one loop drives them (`runner.drive`).

A task computes its point with `point.compute_point` and returns the frame and notes; only the driver writes the
point cache, the CSV, meta.json, the plot and the claims, so a result does not depend on the executor. No printing
here: the CLI reports what comes back.
"""
from __future__ import annotations

import dataclasses
import os
import socket
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from .config import ReproError
from .point import PointTask, compute_point

EXECUTORS = ("local", "ray")
ADDRESS_ENV = "REPRO_RAY_ADDRESS"
CONNECT_TIMEOUT_S = 3.0


def check_name(name: str) -> None:
    """An unknown --executor is a one-line error (exit 2) in every command, before any work."""
    if name not in EXECUTORS:
        raise ReproError(f"unknown executor {name!r}; choose from {', '.join(EXECUTORS)}")


def worker_device(name: str) -> str:
    """The device a Ray worker computes on: Ray shows a GPU task only its own GPU(s), renumbered from 0, so a
    driver's `cuda:N` names another GPU there; the task's GPU is `cuda` (cuda:0)."""
    return "cuda" if name.startswith("cuda") else name


def _remote_point(task: PointTask, cpus: int):
    """The Ray task: torch threads follow the task's CPUs; computes on the GPU Ray gave it."""
    torch.set_num_threads(max(1, int(cpus)))
    return compute_point(dataclasses.replace(task, device=worker_device(task.device)))


def task_options(res: dict) -> tuple[bool, dict]:
    """(GPU task?, Ray options) for a point's resources {"cpus", "gpus", "memory"}."""
    opts = {"num_cpus": res.get("cpus", 1), "num_gpus": res.get("gpus", 0), "max_retries": 3}
    if res.get("memory"):
        opts["memory"] = res["memory"]
    return opts["num_gpus"] > 0, opts


def _check_reachable(address: str) -> None:
    """A host:port address must accept a connection within CONNECT_TIMEOUT_S (Ray itself would wait much longer)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return   # "auto" and other forms: Ray resolves them
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ReproError(f"no Ray cluster at {address} ({exc.strerror or exc}); start one with `ray start --head` "
                         "or leave out --address for a local one") from None


def _auth_hint(address: str | None) -> str:
    """Why a reachable host:port may still refuse us: since Ray 2.59 `ray start` turns on token authentication, which
    a driver given an explicit address uses only when told to (found connecting to a `ray start --head` of Ray 2.60)."""
    if not address or address == "auto" or os.environ.get("RAY_AUTH_MODE") == "token":
        return ""
    return (" (a cluster with token authentication, the default of `ray start` since Ray 2.59, needs "
            "RAY_AUTH_MODE=token here and its token: RAY_AUTH_TOKEN, or ~/.ray/auth_token as `ray get-auth-token` "
            "prints it)")


@dataclass
class Failure:
    """A point that raised: its figure, its point label, and the error's first line."""
    figure: str
    point: str
    error: str


Tag = object
Started = Callable[[Tag], None]
Ticked = Callable[[Tag, str], None]
Claim = Callable[[Tag], bool]


class LocalExecutor:
    """The points one after another in this process, in the order given. An error in a point's code propagates (its
    traceback is the user's to read); `warn(line)` gets the points' one-line warnings."""

    def __init__(self, warn: Callable[[str], None] = lambda msg: None):
        self.warn = warn

    def slots(self, device: torch.device) -> int:
        """One point at a time."""
        return 1

    def check(self, needs_gpu: bool) -> None:
        """Nothing to check: `--device` was resolved on this machine."""

    def run(self, tasks: list[tuple[Tag, PointTask, dict]], started: Started = lambda tag: None,
            tick: Ticked = lambda tag, msg: None, claim: Claim = lambda tag: True) -> Iterator[tuple[Tag, object]]:
        """Yield (tag, (frame, info)) for each (tag, task, resources), computing each as it is asked for; a task
        whose `claim(tag)` is False (another run has it) is skipped."""
        for tag, task, _ in tasks:
            if not claim(tag):
                continue
            started(tag)
            yield tag, compute_point(task, self.warn, lambda msg, tag=tag: tick(tag, msg))

    def close(self) -> None:
        """Nothing to release."""


class RayExecutor:
    """Ray tasks, one per point, all in flight at once. `address`: None starts a local instance (127.0.0.1 only)
    that `close` stops, even where a `ray start` cluster runs on this machine (Ray alone would join that one); an
    already open Ray session is used as it is."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")   # read at import: a local instance binds to
        try:                                                               # 127.0.0.1 only
            import ray
        except ImportError:
            raise ReproError("--executor ray needs Ray: pip install -e '.[ray]' (or `make setup`)") from None
        self.ray = ray
        address = address or os.environ.get(ADDRESS_ENV) or None
        if address:
            _check_reachable(address)
        self.owned = not ray.is_initialized()   # a Ray session opened by the caller (a test, a notebook) stays open
        if self.owned:
            try:
                ray.init(address=address or "local", num_cpus=None if address else num_cpus, include_dashboard=False,
                         log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ReproError(f"cannot connect to the Ray cluster at {address}: "
                                 f"{str(exc).splitlines()[0]}{_auth_hint(address)}") from None
        self.remote = ray.remote(_remote_point)
        # a GPU task gets a fresh worker (max_calls=1): Ray reuses a worker between GPU tasks only when num_gpus is
        # not in the decorator, and a reused worker keeps the GPU and CUDA memory of the task before
        self.remote_gpu = ray.remote(max_calls=1)(_remote_point)

    def resources(self) -> dict:
        """The cluster's total resources (CPU, GPU, memory, node:...)."""
        return self.ray.cluster_resources()

    def slots(self, device: torch.device) -> int:
        """How many points run at once: the cluster's GPUs for CUDA points, else its CPUs."""
        return max(1, int(self.resources().get("GPU" if device.type == "cuda" else "CPU", 0)))

    def check(self, needs_gpu: bool) -> None:
        """A point that asks for a GPU on a cluster without one fails now instead of waiting forever."""
        if needs_gpu and not self.resources().get("GPU"):
            raise ReproError("the points ask for a GPU (--device cuda) but the Ray cluster has none; "
                             "use --device cpu or add GPU nodes")

    def run(self, tasks: list[tuple[Tag, PointTask, dict]], started: Started = lambda tag: None,
            tick: Ticked = lambda tag, msg: None, claim: Claim = lambda tag: True) -> Iterator[tuple[Tag, object]]:
        """Submit every (tag, task, resources) whose `claim(tag)` holds, at once (`started(tag)` for each); yield
        (tag, (frame, info)) or (tag, Failure) as they land. Workers send no ticks.

        resources: {"cpus": n, "gpus": fraction, "memory": bytes}. A dead worker is retried by Ray (3 times); an
        exception in the point's code is not retried."""
        pending = {}
        for tag, task, res in tasks:
            if not claim(tag):
                continue
            gpu, opts = task_options(res)
            remote = self.remote_gpu if gpu else self.remote
            pending[remote.options(**opts).remote(task, opts["num_cpus"])] = (tag, task)
            started(tag)
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            for ref in done:
                tag, task = pending.pop(ref)
                try:
                    yield tag, self.ray.get(ref)
                except Exception as exc:   # noqa: BLE001  (the point's own error, wrapped by Ray)
                    cause = getattr(exc, "cause", None) or exc
                    text = str(cause).strip()
                    line = f"{type(cause).__name__}: {text.splitlines()[-1] if text else ''}"
                    yield tag, Failure(f"{task.fig.paper} {task.fig.key}", task.label, line[:300])

    def close(self) -> None:
        """Leave Ray as found: disconnect if this executor connected (a cluster it joined keeps running)."""
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()


def make(name: str, address: str | None = None, warn: Callable[[str], None] = lambda msg: None):
    """The executor an --executor name selects (an unknown name is a ReproError)."""
    check_name(name)
    return RayExecutor(address) if name == "ray" else LocalExecutor(warn)


def scale_bench(device, sizes: tuple[int, ...] | None = None, repeats: int = 1):
    """`repro bench scale`: norm-preservation Fig 2 at the default preset (41 small CPU points), locally with one
    torch thread, then on a local Ray instance of `sizes[0]` (default 2) single-threaded workers, side by side in
    one run into a temporary folder: wall times, speedup, Ray's overhead per task, identical CSVs."""
    import tempfile
    import time
    from pathlib import Path

    import pandas as pd

    from . import registry, runner
    fig, workers = registry.figure("norm", "fig2"), (sizes or (2,))[0]
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            start = time.perf_counter()
            local = runner.run_figure(fig, device=cpu, out=Path(tmp) / "local")
            local_s = time.perf_counter() - start
        finally:
            torch.set_num_threads(threads)
        start = time.perf_counter()
        ex = RayExecutor(num_cpus=workers)
        try:
            started_s = time.perf_counter() - start
            plan = runner.plan_figure(fig, device=cpu, out=Path(tmp) / "ray")
            (res,), failures = runner.drive(ex, [plan])
        finally:
            ex.close()
        ray_s = time.perf_counter() - start
        same = local.outputs.csv.read_bytes() == res.outputs.csv.read_bytes()
    n = len(plan.points)
    return pd.DataFrame([
        {"executor": "local (1 thread)", "workers": 1, "points": n, "wall_s": local_s, "speedup": 1.0},
        {"executor": f"ray ({workers} x 1 thread)", "workers": workers, "points": n, "wall_s": ray_s,
         "ray_start_s": started_s, "speedup": local_s / ray_s,
         "overhead_per_task_s": (ray_s * workers - local_s) / n, "identical_csv": same,
         "failed": len(failures)}])
