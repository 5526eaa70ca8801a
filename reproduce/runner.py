"""The runner: config -> cached sweep -> CSV + meta.json -> plot -> claims."""
from __future__ import annotations

import dataclasses
import json
import platform
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd
import torch

from . import claims as claims_mod
from . import datasets as data_mod
from . import plotting, registry
from .config import ReproError, describe, from_values, resolve, stable_hash
from .core.device import DTYPES, generator, measurement_mode, point_seed, resolve_device, tf32_flags
from .io import write_csv, write_json
from .registry import Figure, Preset, parse_preset

PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass
class Context:
    """What a compute function gets besides its config and grid point."""
    device: torch.device
    seed: int                 # the run's base seed (the CSV's `seed` column)
    generator: torch.Generator  # seeded from (seed, point): independent of sweep order
    data_root: Path
    tick: Callable[[str], None] = lambda msg: None  # optional progress text for long points
    notes: dict = dataclasses.field(default_factory=dict)  # per-point facts for meta.json (e.g. method chosen)
    cache_dir: Path | None = None  # data/.cache: runs shared between figures are cached under it by the paper
    version: str = ""              # code version (part of every cache key)

    def dtype(self, name: str) -> torch.dtype:
        return DTYPES[name]


@dataclass
class Outputs:
    csv: Path
    meta: Path
    png: Path


@dataclass
class RunResult:
    figure: Figure
    outputs: Outputs
    claims: list[claims_mod.ClaimResult]
    computed: int = 0
    cached: int = 0
    wall_s: float = 0.0


def _preset_dir(preset: str | Preset) -> Path:
    """'' for the default preset (data/<paper>/...), '<preset>' otherwise (data/smoke/<paper>/...)."""
    p = parse_preset(preset)
    return Path() if p is Preset.default else Path(p.value)


def outputs(fig: Figure, out: Path, preset: str | Preset) -> Outputs:
    """data/<paper>/figN.csv for the default preset, data/<preset>/<paper>/figN.csv otherwise."""
    sub = _preset_dir(preset) / fig.paper
    data = out / "data" / sub
    return Outputs(data / f"{fig.key}.csv", data / f"{fig.key}.meta.json",
                   out / "figures" / sub / f"{fig.key}.png")


def claims_path(out: Path, preset: str | Preset) -> Path:
    """data/claims.csv for the default preset, data/<preset>/claims.csv otherwise."""
    return out / "data" / _preset_dir(preset) / "claims.csv"


def bench_path(out: Path, paper: str) -> Path:
    """data/bench/<paper>.csv."""
    return out / "data" / "bench" / f"{paper}.csv"


def cache_dir(out: Path) -> Path:
    """data/.cache: one folder per finished sweep point, and runs shared between figures."""
    return out / "data" / ".cache"


def pick_device(name: str) -> torch.device:
    """The one place a --device name becomes a torch.device (a bad name or missing CUDA is a ReproError)."""
    try:
        return resolve_device(name)
    except ValueError as exc:
        raise ReproError(str(exc)) from None


def code_version(fig: Figure) -> str:
    """Hash of the paper module and core sources: a code change invalidates cached points."""
    files = sorted((PACKAGE_DIR / "core").glob("*.py"))
    module = PACKAGE_DIR / "papers" / registry.paper(fig.paper).module
    files += sorted(module.glob("*.py")) if module.is_dir() else [module.with_suffix(".py")]
    return stable_hash([f.read_bytes().hex() for f in files])


def _git() -> dict:
    def run(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=PACKAGE_DIR, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    sha = run("rev-parse", "HEAD")
    dirty = run("status", "--porcelain", "--untracked-files=no", "--", ".", ":!data", ":!figures")
    return {"sha": sha or None, "dirty": bool(dirty) if sha else None}


def _peak_memory(device: torch.device) -> dict:
    peak = {"host_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if device.type == "cuda":
        peak["cuda_max_allocated_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return peak


def evaluate_claims(fig: Figure, csv: Path) -> list[claims_mod.ClaimResult]:
    """Claims read only the CSV."""
    df = pd.read_csv(csv)
    return [claims_mod.evaluate(c, df) for c in fig.claims]


def provenance(meta: dict) -> str:
    """One line under every figure: the command that made it (preset and overrides), the device and the commit."""
    sets = "".join(f" --set {o}" for o in meta.get("overrides", []))
    git = meta.get("git") or {}
    sha = (git.get("sha") or "?")[:7] + ("+dirty" if git.get("dirty") else "")
    return (f"repro {meta['paper']} {meta['figure']} --preset {meta['preset']}{sets}  |  {meta.get('device', '?')}"
            f"  |  git {sha}")


def plot_from_csv(fig: Figure, csv: Path, png: Path, cfg=None) -> list[Path]:
    """The plot reads only the CSV, and the config and provenance line from the meta.json beside it."""
    meta_path = csv.with_suffix(".meta.json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
    if meta is not None:
        cfg = from_values(fig.config, {k: v["value"] for k, v in meta["config"].items()})
    mpl_fig = fig.plot(pd.read_csv(csv), cfg)
    return plotting.save(mpl_fig, png, footer=provenance(meta) if meta else None)


def prepare(fig: Figure, preset: str | Preset, overrides: Sequence[str]):
    """The figure's config: its defaults, the preset's sizes, then the overrides (bad input is a ReproError)."""
    return resolve(fig.config, fig.preset(preset), overrides)


def run_figure(fig: Figure, *, preset: str | Preset = "default", overrides: Sequence[str] = (),
               device: str | torch.device = "auto", cfg=None, seed: int = 0, out: Path = Path("."),
               data_root: Path | None = None, force: bool = False, plot_only: bool = False,
               progress: Callable | None = None) -> RunResult:
    """Run one figure end to end. `cfg` and a torch `device`, when given, are used as resolved by the caller.

    `progress(total)` returns advance(description, n_done) or None.
    """
    preset = parse_preset(preset).value
    cfg = prepare(fig, preset, overrides) if cfg is None else cfg
    dev = device if isinstance(device, torch.device) else pick_device(device)
    paths = outputs(fig, out, preset)
    root = data_mod.data_root(data_root, out)
    if plot_only:
        if not paths.csv.exists():
            raise ReproError(f"--plot-only: {paths.csv} does not exist; run the figure first")
        plot_from_csv(fig, paths.csv, paths.png, cfg)
        return RunResult(fig, paths, evaluate_claims(fig, paths.csv))
    needed = fig.needs(cfg)
    for name in needed:
        data_mod.require(name, root)

    measurement_mode()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    start = time.perf_counter()
    points = fig.grid(cfg)
    version, git = code_version(fig), _git()   # both taken before any work: the code that ran
    cache = cache_dir(out)
    advance = progress(len(points)) if progress else None
    frames, notes, computed, cached = [], [], 0, 0
    resolved = describe(cfg)
    for point in points:
        label = ", ".join(f"{k}={v}" for k, v in point.items())
        key = stable_hash([fig.paper, fig.key, resolved, point, seed, dev.type, version])
        point_csv = cache / key / "point.csv"
        if point_csv.exists() and not force:
            frame, cached = pd.read_csv(point_csv), cached + 1
            info = json.loads(point_csv.with_name("point.json").read_text())
        else:
            ctx = Context(dev, seed, generator(dev, point_seed(seed, point)), root, cache_dir=cache,
                          version=version)
            if advance:
                ctx.tick = lambda msg, label=label: advance(f"{label} {msg}", 0)
            frame = fig.compute(cfg, point, ctx)
            if "seed" not in frame:
                frame.insert(0, "seed", seed)
            info = {"figure": f"{fig.paper}/{fig.key}", "point": point, "seed": seed, "notes": ctx.notes}
            write_json(info, point_csv.with_name("point.json"))
            write_csv(frame, point_csv)  # written last: its presence marks the point as finished
            frame, computed = pd.read_csv(point_csv), computed + 1  # identical dtypes whether cached or not
        frames.append(frame)
        if info.get("notes"):
            notes.append({"point": point, **info["notes"]})
        if advance:
            advance(label, 1)
    df = pd.concat(frames, ignore_index=True)
    write_csv(df, paths.csv)
    wall = time.perf_counter() - start
    meta = {
        "paper": fig.paper, "figure": fig.key, "title": fig.title, "preset": preset,
        "config": resolved,
        "overrides": list(overrides), "seed": seed, "grid_points": len(points),
        "points_computed": computed, "points_from_cache": cached,
        "device": dev.type,
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda"
        else platform.processor() or platform.machine(),
        "dtype": getattr(cfg, "dtype", "float32"), "torch": torch.__version__, "cuda": torch.version.cuda,
        "tf32": tf32_flags(),
        "python": platform.python_version(), "git": git, "code_version": version,
        "wall_time_s": round(wall, 2), "peak_memory": _peak_memory(dev),
        "point_notes": notes, "datasets": needed, "data_root": str(root) if needed else None,
        "source": fig.source,
    }
    write_json(meta, paths.meta)
    plot_from_csv(fig, paths.csv, paths.png, cfg)
    return RunResult(fig, paths, evaluate_claims(fig, paths.csv), computed, cached, wall)


def verify(figs: Sequence[Figure], out: Path, preset: str) -> pd.DataFrame:
    """Evaluate the claims of every figure whose CSV exists; write data/claims.csv."""
    rows = []
    for fig in figs:
        csv = outputs(fig, out, preset).csv
        if not csv.exists():
            continue
        for r in evaluate_claims(fig, csv):
            rows.append({"paper": fig.paper, "figure": fig.key, **dataclasses.asdict(r)})
    table = pd.DataFrame(rows, columns=["paper", "figure", "id", "text", "value", "threshold", "verdict", "detail"])
    if rows:
        write_csv(table, claims_path(out, preset))
    return table
