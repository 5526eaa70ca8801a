"""The runner: config -> cached sweep -> CSV + meta.json -> plot -> claims."""
from __future__ import annotations

import dataclasses
import json
import platform
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd
import torch

from . import cache as cache_mod
from . import claims as claims_mod
from . import datasets as data_mod
from . import plotting
from .config import ReproError, describe, from_values, resolve, stable_hash
from .core.device import DTYPES, free_memory, generator, measurement_mode, point_seed, resolve_device, tf32_flags
from .core.timing import host_peak_kb, reset_host_peak
from .io import write_csv, write_json
from .layout import Outputs, cache_dir, outputs, variant_tag
from .provenance import _git, code_version, provenance, reductions, shared_version
from .registry import Figure, Preset, parse_preset
from .verification import evaluate_claims, read_result


@dataclass
class Context:
    """What a compute function gets besides its config and grid point."""
    device: torch.device
    seed: int                 # the run's base seed (the CSV's `seed` column)
    generator: torch.Generator  # seeded from (seed, point): independent of sweep order
    data_root: Path
    tick: Callable[[str], None] = lambda msg: None  # optional progress text for long points
    warn: Callable[[str], None] = lambda msg: None  # one-line warnings (e.g. a cache entry recomputed)
    notes: dict = dataclasses.field(default_factory=dict)  # per-point facts for meta.json (e.g. method chosen)
    cache_dir: Path | None = None  # data/.cache: runs shared between figures are cached under it by the paper
    version: str = ""              # code version (part of every cache key)
    shared_version: str = ""       # version of what the paper's figures share (keys runs cached under cache_dir)
    point: dict = dataclasses.field(default_factory=dict)  # the grid point being computed

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
class RunResult:
    figure: Figure
    outputs: Outputs
    claims: list[claims_mod.ClaimResult]
    computed: int = 0
    cached: int = 0
    wall_s: float = 0.0
    variant: str | None = None   # set when overrides or a seed made this a variant of the canonical result


def pick_device(name: str) -> torch.device:
    """The one place a --device name becomes a torch.device (a bad name or missing CUDA is a ReproError)."""
    try:
        return resolve_device(name)
    except ValueError as exc:
        raise ReproError(str(exc)) from None


def reset_peak_memory(device: torch.device) -> float:
    """Start a figure's peak-memory count (the process's peak RSS on Linux, CUDA's peak allocation); returns the
    resident set in MiB at the start."""
    reset_host_peak()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    return round(host_peak_kb() / 1024, 1)


def _peak_memory(device: torch.device, start_mb: float) -> dict:
    peak = {"host_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "host_rss_start_mb": start_mb,                          # when this figure started
            "host_peak_rss_mb": round(host_peak_kb() / 1024, 1)}   # the largest since then
    if device.type == "cuda":
        peak["cuda_max_allocated_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return peak


def plot_from_csv(fig: Figure, csv: Path, df: pd.DataFrame, png: Path, cfg=None, existing: bool = False) -> list[Path]:
    """The plot reads only the CSV (`df`, as `read_result(csv)` returns it), and the config and provenance line from
    the meta.json beside it.

    `existing`: the CSV was not just written by this run (--plot-only); a CSV the plot cannot use is then a
    one-line ReproError, and the old PNG stays."""
    meta_path = csv.with_suffix(".meta.json")
    try:
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
        if meta is not None:
            cfg = from_values(fig.config, {k: v["value"] for k, v in meta["config"].items()})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReproError(f"{meta_path} cannot be read ({type(exc).__name__}: {exc}); rerun the figure") from None
    try:
        mpl_fig = fig.plot(df, cfg)
    except (KeyError, ValueError, IndexError, TypeError, AttributeError) as exc:
        if not existing:
            raise
        plotting.close_all()
        raise ReproError(f"{fig.paper} {fig.key}: {csv} cannot be plotted ({type(exc).__name__}: {exc}); the old "
                         "figure is kept; rerun the figure") from None
    return plotting.save(mpl_fig, png, footer=provenance(meta) if meta else None)


def check_memory(fig: Figure, cfg, dev: torch.device) -> None:
    """Refuse, before any work, a config whose estimated peak allocation exceeds the device's free memory."""
    if fig.memory is None:
        return
    need, what = fig.memory(cfg)
    free = free_memory(dev)
    if need > free:
        raise ReproError(f"{fig.paper} {fig.key}: this config needs about {need / 2**30:.3g} GiB ({what}) but "
                         f"{dev.type} has {free / 2**30:.3g} GiB free; choose smaller sizes with --set")


def prepare(fig: Figure, preset: str | Preset, overrides: Sequence[str]):
    """The figure's config: its defaults, the preset's sizes, then the overrides (bad input is a ReproError)."""
    return resolve(fig.config, fig.preset(preset), overrides)


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
    measurement_mode()
    ctx = Context(dev, task.seed, generator(dev, point_seed(task.seed, task.point)), task.data_root,
                  cache_dir=task.cache, version=task.version, shared_version=task.shared_version, warn=warn,
                  point=task.point)
    if tick:
        ctx.tick = tick
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
    return frame, {"figure": f"{fig.paper}/{fig.key}", "point": task.point, "seed": task.seed, "notes": ctx.notes}


@dataclass
class FigurePlan:
    """A figure's run before its uncached points are computed: what `finish_figure` needs."""
    fig: Figure
    cfg: object
    preset: str
    overrides: Sequence[str]
    seed: int
    device: torch.device
    paths: Outputs
    root: Path
    variant: str | None
    points: list[dict]
    tasks: list[PointTask]               # one per point, in grid order
    frames: dict[int, tuple[pd.DataFrame, dict]]   # point index -> (frame, info), from the cache so far
    version: str
    git: dict
    start: float
    start_mb: float

    @property
    def missing(self) -> list[int]:
        """Indices of the points still to compute."""
        return [i for i in range(len(self.points)) if i not in self.frames]


def plan_figure(fig: Figure, *, preset: str | Preset = "default", overrides: Sequence[str] = (),
                device: str | torch.device = "auto", cfg=None, seed: int = 0, out: Path = Path("."),
                data_root: Path | None = None, force: bool = False, promote: bool = False,
                warn: Callable[[str], None] = lambda msg: None) -> FigurePlan:
    """Resolve a figure's config, check its data and memory, and read its cached points (bad input: ReproError)."""
    preset = parse_preset(preset).value
    cfg = prepare(fig, preset, overrides) if cfg is None else cfg
    dev = device if isinstance(device, torch.device) else pick_device(device)
    variant = None if promote else variant_tag(overrides, seed, cfg)
    paths = outputs(fig, out, preset, variant)
    root = data_mod.data_root(data_root, out)
    for name in fig.needs(cfg):
        data_mod.require(name, root)
    check_memory(fig, cfg, dev)
    measurement_mode()
    start_mb = reset_peak_memory(dev)
    start = time.perf_counter()
    points = fig.grid(cfg)
    version, shared, git = code_version(fig), shared_version(fig), _git()   # before any work: the code that ran
    cache = cache_dir(out)
    resolved = describe(cfg)
    tasks, frames = [], {}
    for i, point in enumerate(points):
        label = ", ".join(f"{k}={v}" for k, v in point.items())
        key = stable_hash([fig.paper, fig.key, resolved, point, seed, dev.type, version])
        tasks.append(PointTask(fig, cfg, point, seed, str(dev), root, cache, version, label, cache / key / "point.csv",
                               shared))
        if not force:
            frame, info, problem = cache_mod.read(tasks[-1].entry, version)
            if frame is not None:
                frames[i] = (frame, info)
            elif problem:
                warn(f"cache entry {key} recomputed: {problem}")
    return FigurePlan(fig, cfg, preset, overrides, seed, dev, paths, root, variant, points, tasks, frames, version,
                      git, start, start_mb)


def store_point(plan: FigurePlan, i: int, frame: pd.DataFrame, info: dict) -> None:
    """Write point i's cache entry (the driver only) and keep the frame as read back."""
    entry = plan.tasks[i].entry
    with cache_mod.locked(entry.parent):
        plan.frames[i] = (cache_mod.write(frame, entry, info, plan.version), info)


def finish_figure(plan: FigurePlan, computed: int) -> RunResult:
    """Every point is in: write the CSV and meta.json, then plot and evaluate the claims from the CSV."""
    fig, cfg, paths = plan.fig, plan.cfg, plan.paths
    frames = [plan.frames[i][0] for i in range(len(plan.points))]
    notes = [{"point": plan.points[i], **plan.frames[i][1]["notes"]} for i in range(len(plan.points))
             if plan.frames[i][1].get("notes")]
    df = pd.concat(frames, ignore_index=True)
    write_csv(df, paths.csv)
    wall = time.perf_counter() - plan.start
    dev, needed = plan.device, fig.needs(cfg)
    meta = {
        "paper": fig.paper, "figure": fig.key, "title": fig.title, "preset": plan.preset,
        "config": describe(cfg),
        "overrides": list(plan.overrides), "seed": plan.seed, "variant": plan.variant,
        "grid_points": len(plan.points), "points_computed": computed, "points_from_cache": len(plan.points) - computed,
        "device": dev.type,
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda"
        else platform.processor() or platform.machine(),
        "dtype": getattr(cfg, "dtype", None), "torch": torch.__version__, "cuda": torch.version.cuda,
        "tf32": tf32_flags(),
        "python": platform.python_version(), "git": plan.git, "code_version": plan.version,
        "wall_time_s": round(wall, 2), "peak_memory": _peak_memory(dev, plan.start_mb),
        "point_notes": notes, "datasets": needed, "data_root": str(plan.root) if needed else None,
        "source": fig.source, "reduced": reductions(fig, cfg),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json(meta, paths.meta)
    df = read_result(paths.csv)   # the plot and the claims read what was written, once
    plot_from_csv(fig, paths.csv, df, paths.png, cfg)
    return RunResult(fig, paths, evaluate_claims(fig, df, plan.preset), computed, len(plan.points) - computed, wall,
                     plan.variant)


def run_figure(fig: Figure, *, preset: str | Preset = "default", overrides: Sequence[str] = (),
               device: str | torch.device = "auto", cfg=None, seed: int = 0, out: Path = Path("."),
               data_root: Path | None = None, force: bool = False, plot_only: bool = False, promote: bool = False,
               progress: Callable | None = None, warn: Callable[[str], None] = lambda msg: None) -> RunResult:
    """Run one figure end to end, its points one after another in this process. `cfg` and a torch `device`, when
    given, are used as resolved by the caller.

    Overrides or a non-zero seed make a variant, written beside the canonical result unless `promote`.
    `progress(total)` returns advance(description, n_done) or None; `warn(line)` gets one-line warnings.
    """
    if plot_only:
        preset = parse_preset(preset).value
        cfg = prepare(fig, preset, overrides) if cfg is None else cfg
        variant = None if promote else variant_tag(overrides, seed, cfg)
        paths = outputs(fig, out, preset, variant)
        if not paths.csv.exists():
            raise ReproError(f"--plot-only: {paths.csv} does not exist; run the figure first")
        df = read_result(paths.csv)
        plot_from_csv(fig, paths.csv, df, paths.png, cfg, existing=True)
        return RunResult(fig, paths, evaluate_claims(fig, df, preset), variant=variant)
    plan = plan_figure(fig, preset=preset, overrides=overrides, device=device, cfg=cfg, seed=seed, out=out,
                       data_root=data_root, force=force, promote=promote, warn=warn)
    advance = progress(len(plan.points)) if progress else None
    computed = 0
    for i, task in enumerate(plan.tasks):
        if i not in plan.frames:   # another process may have finished it meanwhile: the lock decides
            def compute(task=task):
                if advance:
                    advance(f"{task.label} (running)", 0)
                tick = (lambda msg: advance(f"{task.label} {msg}", 0)) if advance else None
                return compute_point(task, warn, tick)
            frame, info, fresh = cache_mod.cached(task.entry, plan.version, compute, force=force)   # plan warned
            plan.frames[i] = (frame, info)
            computed += fresh
        if advance:
            advance(task.label, 1)
    return finish_figure(plan, computed)


