"""The runner: config -> plan (cached points) -> drive (the missing points on an executor, one locking rule) ->
CSV + meta.json -> plot -> claims."""
from __future__ import annotations

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
from .core.device import free_memory, resolve_device, tf32_flags
from .core.timing import host_peak_kb, reset_host_peak
from .executor import Failure, LocalExecutor
from .io import write_csv, write_json
from .layout import Outputs, cache_dir, outputs, variant_tag
from .point import Context, PointTask, compute_point, determinism_flags, device_key, reproducible_mode  # noqa: F401  (Context: the

# compute functions' argument)
from .provenance import _git, code_version, provenance, reductions, shared_version
from .registry import Figure, Preset, parse_preset
from .verification import evaluate_claims, read_result


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
    """The one place a --device name becomes a torch.device (a bad name, missing CUDA or a GPU index this machine
    does not have is a ReproError)."""
    try:
        dev = resolve_device(name)
    except (ValueError, RuntimeError) as exc:    # torch.device("cuda:x") raises RuntimeError
        raise ReproError(str(exc).splitlines()[0]) from None
    count = torch.cuda.device_count() if dev.type == "cuda" else 0
    if dev.type == "cuda" and dev.index is not None and not 0 <= dev.index < count:
        raise ReproError(f"--device {name}: this machine has {count} CUDA device{'s' * (count != 1)} "
                         f"(cuda:0{f' ... cuda:{count - 1}' if count > 1 else ''})")
    return dev


def timed_cost(fig: Figure, cfg, dev: torch.device) -> dict:
    """The figure's cost model (`--dry-run`, `report --costs`), timed in the mode its points run in (TF32 off,
    deterministic kernels on CUDA)."""
    reproducible_mode(dev)
    return fig.cost(cfg, dev)


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


def reusable_cuda_bytes(dev: torch.device) -> int:
    """CUDA memory this process's caching allocator holds but no tensor uses: free to the next run (the driver
    reports it as used); 0 on a CPU."""
    if dev.type != "cuda":
        return 0
    return max(0, torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev))


def check_memory(fig: Figure, cfg, dev: torch.device) -> None:
    """Refuse, before any work, a config whose estimated peak allocation exceeds the device's free memory."""
    if fig.memory is None:
        return
    need, what = fig.memory(cfg)
    free = free_memory(dev) + reusable_cuda_bytes(dev)
    if need > free:
        raise ReproError(f"{fig.paper} {fig.key}: this config needs about {need / 2**30:.3g} GiB ({what}) but "
                         f"{dev.type} has {free / 2**30:.3g} GiB free; choose smaller sizes with --set")


def prepare(fig: Figure, preset: str | Preset, overrides: Sequence[str]):
    """The figure's config: its defaults, the preset's sizes, then the overrides (bad input is a ReproError)."""
    return resolve(fig.config, fig.preset(preset), overrides)


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
    start: float = 0.0                   # when `drive` began this figure (its wall time counts from there)
    start_mb: float = 0.0                # the resident set then, in MiB

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
    reproducible_mode(dev)
    points = fig.grid(cfg)
    version, shared, git = code_version(fig), shared_version(fig), _git()   # before any work: the code that ran
    cache = cache_dir(out)
    resolved = describe(cfg)
    tasks, frames = [], {}
    for i, point in enumerate(points):
        label = ", ".join(f"{k}={v}" for k, v in point.items())
        key = stable_hash([fig.paper, fig.key, resolved, point, seed, device_key(dev), version])
        tasks.append(PointTask(fig, cfg, point, seed, str(dev), root, cache, version, label, cache / key / "point.csv",
                               shared))
        if not force:
            frame, info, problem = cache_mod.read(tasks[-1].entry, version)
            if frame is not None:
                frames[i] = (frame, info)
            elif problem:
                warn(f"cache entry {key} recomputed: {problem}")
    return FigurePlan(fig, cfg, preset, overrides, seed, dev, paths, root, variant, points, tasks, frames, version,
                      git)


def store_point(plan: FigurePlan, i: int, frame: pd.DataFrame, info: dict) -> None:
    """Write point i's cache entry (the driver only, holding the point's lock) and keep the frame as read back."""
    plan.frames[i] = (cache_mod.write(frame, plan.tasks[i].entry, info, plan.version), info)


def _take_cached(plan: FigurePlan, i: int) -> bool:
    """Point i's entry, if another run finished it since the plan was made."""
    frame, info, _ = cache_mod.read(plan.tasks[i].entry, plan.version)
    if frame is not None:
        plan.frames[i] = (frame, info)
    return frame is not None


def _resources(plan: FigurePlan) -> dict:
    """What one of the plan's points asks of an executor: CPUs, a GPU share (with --device cuda), memory."""
    res = {"cpus": 1, **plan.fig.resources}
    res["gpus"] = res.get("gpus", 1) if plan.device.type == "cuda" else 0
    return res


def drive(ex, plans: list[FigurePlan], *, force: bool = False, progress: Callable | None = None,
          on_figure: Callable[[RunResult], None] = lambda res: None) -> tuple[list[RunResult], list[Failure]]:
    """Compute every missing point of every plan on the executor `ex` (local or Ray: `executor.make`), store each
    as it lands, and finish a figure (`finish_figure`) when its last point is in.

    One locking rule for every executor: a point is computed only by the run that holds its cache lock, taken when
    its task starts (the local executor: one point at a time, so two local runs side by side share the work; Ray:
    at submission) and held until its entry is written. A point another run holds is skipped, then waited for once
    this run's own points are done and taken from the cache (or computed here if that run died first). `force`:
    recompute what was cached before this run started.
    `progress(plan)` returns advance(description, n_done) or None; on_figure(result) after each written figure.
    Returns the figures written and the points that failed (Ray; the local executor raises)."""
    start_mb, start = reset_peak_memory(plans[0].device) if plans else 0.0, time.perf_counter()
    for plan in plans:   # a plan made before earlier figures ran counts its own time and memory only
        plan.start, plan.start_mb = start, start_mb
    bars = [progress(p) if progress else None for p in plans]
    advance = lambda k, desc, n: bars[k] and bars[k](desc, n)   # noqa: E731
    for k, plan in enumerate(plans):
        if plan.frames:
            advance(k, "cached", len(plan.frames))
    done, failures, computed = [], [], [0] * len(plans)

    def finish(k: int) -> None:
        done.append(finish_figure(plans[k], computed[k]))
        on_figure(done[-1])
    for k, plan in enumerate(plans):
        if not plan.missing:
            finish(k)
    held, waiting, first = {}, [], True

    def claim(tag) -> bool:
        """Take point `tag`'s lock before its task starts; False when another run holds it (waited for later) or
        has finished it meanwhile (taken from the cache)."""
        k, i = tag
        lock = cache_mod.Lock(plans[k].tasks[i].entry.parent)
        if not lock.acquire(block=False):
            waiting.append((tag, lock))
            return False
        if not (force and first) and _take_cached(plans[k], i):
            lock.release()
            advance(k, f"{plans[k].tasks[i].label} (another run's)", 1)
            if not plans[k].missing:
                finish(k)
            return False
        held[tag] = lock
        return True

    started = lambda tag: advance(tag[0], f"{plans[tag[0]].tasks[tag[1]].label} (running)", 0)  # noqa: E731
    tick = lambda tag, msg: advance(tag[0], f"{plans[tag[0]].tasks[tag[1]].label} {msg}", 0)  # noqa: E731
    todo = [(k, i) for k, plan in enumerate(plans) for i in plan.missing]
    try:
        while todo:
            batch = [((k, i), plans[k].tasks[i], _resources(plans[k])) for k, i in todo]
            ex.check(any(res["gpus"] for _, _, res in batch))
            for (k, i), result in ex.run(batch, started, tick, claim):
                if isinstance(result, Failure):
                    failures.append(result)
                else:
                    store_point(plans[k], i, *result)
                    computed[k] += 1
                held.pop((k, i)).release()
                advance(k, plans[k].tasks[i].label, 1)
                if not isinstance(result, Failure) and not plans[k].missing:
                    finish(k)
            todo, first = [], False
            for tag, lock in waiting:   # the points other runs hold: each lands in the cache or comes back here
                lock.acquire()
                lock.release()
                todo.append(tag)
            waiting.clear()
    finally:
        for lock in [*held.values(), *(lock for _, lock in waiting)]:
            lock.release()
    return done, failures


def _ran_with(plan: FigurePlan) -> dict:
    """TF32 and determinism flags as the points that computed saw them (read in the worker: under Ray not this
    process), else this process's; with the largest CUDA peak a worker reported."""
    seen = [info["ran_with"] for _, info in plan.frames.values() if info.get("ran_with")]
    out = {"tf32": tf32_flags(), "determinism": determinism_flags()}
    for k in out:
        values = [w[k] for w in seen]
        if values:
            out[k] = values[0] if all(v == values[0] for v in values) else {"differs between points": values}
    peaks = [w["cuda_max_allocated_mb"] for w in seen if "cuda_max_allocated_mb" in w]
    if peaks:
        out["points_cuda_max_allocated_mb"] = max(peaks)
    return out


def _runs(plan: FigurePlan) -> dict:
    """The shared entries (training runs) the points used, by cache folder: {"runs_computed": {name: seconds},
    "runs_reused": {name: seconds or None}}; a run computed by one of this figure's points counts as computed.
    Cached points report what they recorded when they were computed; empty for figures that share nothing."""
    made, used = {}, {}
    for _, info in plan.frames.values():
        runs = info.get("runs") or {}
        made.update(runs.get("computed") or {})
        used.update(runs.get("reused") or {})
    used = {n: s for n, s in used.items() if n not in made}
    return {"runs_computed": dict(sorted(made.items())), "runs_reused": dict(sorted(used.items()))} \
        if made or used else {}


def finish_figure(plan: FigurePlan, computed: int) -> RunResult:
    """Every point is in: write the CSV and meta.json, then plot and evaluate the claims from the CSV."""
    fig, cfg, paths = plan.fig, plan.cfg, plan.paths
    frames = [plan.frames[i][0] for i in range(len(plan.points))]
    notes = [{"point": plan.points[i], **plan.frames[i][1]["notes"]} for i in range(len(plan.points))
             if plan.frames[i][1].get("notes")]
    timed = [info["seconds"] for _, info in plan.frames.values() if isinstance(info.get("seconds"), (int, float))]
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
        **_ran_with(plan),
        "python": platform.python_version(), "git": plan.git, "code_version": plan.version,
        "wall_time_s": round(wall, 2),
        "points_seconds": {"sum": round(sum(timed), 1), "points_timed": len(timed), **_runs(plan)},
        "peak_memory": _peak_memory(dev, plan.start_mb),
        "point_notes": notes, "datasets": needed, "data_root": str(plan.root) if needed else None,
        "source": fig.source, "reduced": reductions(fig, cfg),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json(meta, paths.meta)
    df = read_result(paths.csv)   # the plot and the claims read what was written, once
    plot_from_csv(fig, paths.csv, df, paths.png, cfg)
    return RunResult(fig, paths, evaluate_claims(fig, df, plan.preset), computed, len(plan.points) - computed, wall,
                     plan.variant)


def replot(fig: Figure, *, preset: str | Preset = "default", overrides: Sequence[str] = (), cfg=None,
           seed: int = 0, out: Path = Path("."), promote: bool = False) -> RunResult:
    """--plot-only: plot the figure's existing CSV and evaluate its claims, computing nothing."""
    preset = parse_preset(preset).value
    cfg = prepare(fig, preset, overrides) if cfg is None else cfg
    variant = None if promote else variant_tag(overrides, seed, cfg)
    paths = outputs(fig, out, preset, variant)
    if not paths.csv.exists():
        raise ReproError(f"--plot-only: {paths.csv} does not exist; run the figure first")
    df = read_result(paths.csv)
    plot_from_csv(fig, paths.csv, df, paths.png, cfg, existing=True)
    return RunResult(fig, paths, evaluate_claims(fig, df, preset), variant=variant)


def run_figure(fig: Figure, *, preset: str | Preset = "default", overrides: Sequence[str] = (),
               device: str | torch.device = "auto", cfg=None, seed: int = 0, out: Path = Path("."),
               data_root: Path | None = None, force: bool = False, plot_only: bool = False, promote: bool = False,
               progress: Callable | None = None, warn: Callable[[str], None] = lambda msg: None) -> RunResult:
    """Run one figure end to end on the local executor (plan -> drive -> finish). `cfg` and a torch `device`, when
    given, are used as resolved by the caller.

    Overrides or a non-zero seed make a variant, written beside the canonical result unless `promote`.
    `progress(plan)` returns advance(description, n_done) or None; `warn(line)` gets one-line warnings.
    """
    if plot_only:
        return replot(fig, preset=preset, overrides=overrides, cfg=cfg, seed=seed, out=out, promote=promote)
    plan = plan_figure(fig, preset=preset, overrides=overrides, device=device, cfg=cfg, seed=seed, out=out,
                       data_root=data_root, force=force, promote=promote, warn=warn)
    (res,), _ = drive(LocalExecutor(warn), [plan], force=force, progress=progress)
    return res
