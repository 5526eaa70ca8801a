"""One sweep point: what a compute function gets (`Context`), what a worker needs (`PointTask`) and how it is
computed (`compute_point`), the same in this process (local executor) and in a Ray worker."""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from . import cache
from .config import ReproError
from .core.device import DTYPES, generator, measurement_mode, point_seed, tf32_flags
from .registry import Figure

CUBLAS_WORKSPACE = ":4096:8"   # what deterministic cuBLAS needs (read when CUDA starts; set before any CUDA work)


def reproducible_mode(device: torch.device) -> None:
    """Measurement mode (TF32 off) and, on CUDA, deterministic kernels: cuDNN deterministic without autotuning,
    torch's deterministic algorithms (a warning where an op has none), deterministic cuBLAS. A CPU is left as it is
    (its kernels are deterministic already; CPU results stay byte for byte what they were)."""
    measurement_mode()
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)


def determinism_flags() -> dict:
    """The determinism switches as torch reports them now (recorded in meta.json beside the TF32 flags)."""
    return {"deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
            "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}


def device_key(dev: torch.device) -> str:
    """What of the device keys a cached point or run: the type on a CPU (keys as before), the GPU model on CUDA
    (random streams and kernels differ between GPU models, so their results never mix in one CSV)."""
    return f"cuda/{torch.cuda.get_device_name(dev)}" if dev.type == "cuda" else dev.type


@dataclass
class Context:
    """What a compute function gets besides its config and grid point."""
    device: torch.device
    seed: int                 # the base seed (the CSV's `seed` column, cache keys); draws come from rng/seed_for
    data_root: Path
    tick: Callable[[str], None] = lambda msg: None  # optional progress text for long points
    warn: Callable[[str], None] = lambda msg: None  # one-line warnings (e.g. a cache entry recomputed)
    notes: dict = dataclasses.field(default_factory=dict)  # per-point facts for meta.json (e.g. method chosen)
    cache_dir: Path | None = None  # data/.cache: runs shared between figures are cached under it by the paper
    version: str = ""              # code version (part of every cache key)
    shared_version: str = ""       # version of what the paper's figures share (keys runs cached under cache_dir)
    point: dict = dataclasses.field(default_factory=dict)  # the grid point being computed

    @property
    def device_key(self) -> str:
        """The device as cache keys name it (device_key)."""
        return device_key(self.device)

    def seed_for(self, purpose: str, *, per_point: bool = True, **keys) -> int:
        """The one door for randomness: a seed from the base seed, the point (unless per_point=False: draws
        shared by every point, e.g. a fixed training subset) and what it is for."""
        return point_seed(self.seed, {**(self.point if per_point else {}), **keys, "purpose": purpose})

    def rng(self, purpose: str, *, device: torch.device | None = None, per_point: bool = True,
            **keys) -> torch.Generator:
        """A torch.Generator on `device` (default: the run's) seeded by `seed_for`."""
        return generator(device or self.device, self.seed_for(purpose, per_point=per_point, **keys))

    def dtype(self, name: str) -> torch.dtype:
        return DTYPES[name]


@dataclass
class PointTask:
    """One sweep point to compute: everything a worker needs."""
    fig: Figure
    cfg: object
    point: dict
    seed: int
    device: str
    data_root: Path
    cache: Path
    version: str
    label: str
    entry: Path                  # the point's cache entry (written by the driver)
    shared_version: str = ""     # keys what the paper's figures share (provenance.shared_version)


def compute_point(task: PointTask, warn: Callable[[str], None] = lambda msg: None,
                  tick: Callable[[str], None] | None = None) -> tuple[pd.DataFrame, dict]:
    """Compute one sweep point: (frame with a seed column, info for its cache entry). Runs in the driver (local
    executor) or in a worker (ray); ReproError for running out of memory."""
    fig, dev = task.fig, torch.device(task.device)
    reproducible_mode(dev)
    ctx = Context(dev, task.seed, task.data_root,
                  cache_dir=task.cache, version=task.version, shared_version=task.shared_version, warn=warn,
                  point=task.point)
    if tick:
        ctx.tick = tick
    start = time.perf_counter()
    cache.take_ledger()   # what the point itself reads or computes (shared runs) is noted from here on
    try:
        frame = fig.compute(task.cfg, task.point, ctx)
    except (MemoryError, torch.OutOfMemoryError) as exc:
        raise ReproError(f"{fig.paper} {fig.key} ran out of memory at {task.label} ({type(exc).__name__}); "
                         "choose smaller sizes with --set") from None
    except RuntimeError as exc:
        if "allocate" not in str(exc):
            raise
        raise ReproError(f"{fig.paper} {fig.key} ran out of memory at {task.label} "
                         f"({str(exc).splitlines()[0][:160]}); choose smaller sizes with --set") from None
    if "seed" not in frame:
        frame.insert(0, "seed", task.seed)
    # read where the point ran (a Ray GPU task has a fresh worker: its CUDA peak is the task's; locally, the figure's)
    where = {"tf32": tf32_flags(), "determinism": determinism_flags()}
    if dev.type == "cuda":
        where["cuda_max_allocated_mb"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
    info = {"figure": f"{fig.paper}/{fig.key}", "point": task.point, "seed": task.seed, "notes": ctx.notes,
            "ran_with": where, "seconds": round(time.perf_counter() - start, 2)}
    ledger = cache.take_ledger()
    if ledger:   # shared entries (runs): those computed are inside "seconds"; those reused were paid for elsewhere
        info["runs"] = {"computed": {n: s for n, s, made in ledger if made},
                        "reused": {n: s for n, s, made in ledger if not made}}
    return frame, info


