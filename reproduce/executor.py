"""Where uncached sweep points run: `local` (one after another in this process, `runner.run_figure`) or `ray`
(one Ray task per point, on a local Ray instance over this machine's CPUs and GPUs, or on a cluster).

A task computes its point with `runner.compute_point` and returns the frame and notes; only the driver writes the
point cache, the CSV, meta.json, the plot and the claims, so a result does not depend on the executor. No printing
here: the CLI reports what comes back.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Iterator

import torch

from .config import ReproError
from .runner import PointTask, compute_point

EXECUTORS = ("local", "ray")
ADDRESS_ENV = "REPRO_RAY_ADDRESS"
CONNECT_TIMEOUT_S = 3.0


def _remote_point(task: PointTask, cpus: int):
    """The Ray task: torch threads follow the task's CPUs."""
    torch.set_num_threads(max(1, int(cpus)))
    return compute_point(task)


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


@dataclass
class Failure:
    """A point that raised: its figure, its point label, and the error's first line."""
    figure: str
    point: str
    error: str


class RayExecutor:
    """Ray tasks, one per point. `address`: None starts a local instance (127.0.0.1 only) that `close` stops; an
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
                ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                         log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ReproError(f"cannot connect to the Ray cluster at {address}: "
                                 f"{str(exc).splitlines()[0]}") from None
        self.remote = ray.remote(_remote_point)

    def resources(self) -> dict:
        """The cluster's total resources (CPU, GPU, memory, node:...)."""
        return self.ray.cluster_resources()

    def check(self, needs_gpu: bool) -> None:
        """A point that asks for a GPU on a cluster without one fails now instead of waiting forever."""
        if needs_gpu and not self.resources().get("GPU"):
            raise ReproError("the points ask for a GPU (--device cuda) but the Ray cluster has none; "
                             "use --device cpu or add GPU nodes")

    def run(self, tasks: list[tuple[object, PointTask, dict]]) -> Iterator[tuple[object, object]]:
        """Submit every (tag, task, resources) at once; yield (tag, (frame, info)) or (tag, Failure) as they land.

        resources: {"cpus": n, "gpus": fraction, "memory": bytes}. A dead worker is retried by Ray (3 times); an
        exception in the point's code is not retried."""
        pending = {}
        for tag, task, res in tasks:
            opts = {"num_cpus": res.get("cpus", 1), "num_gpus": res.get("gpus", 0), "max_retries": 3}
            if res.get("memory"):
                opts["memory"] = res["memory"]
            pending[self.remote.options(**opts).remote(task, opts["num_cpus"])] = (tag, task)
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
