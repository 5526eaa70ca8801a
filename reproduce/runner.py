"""The runner: config -> cached sweep -> CSV + meta.json -> plot -> claims."""
from __future__ import annotations

import dataclasses
import json
import os
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
from .config import ReproError, describe, resolve, stable_hash
from .core import data as data_mod
from .core.device import DTYPES, generator, measurement_mode, point_seed, resolve_device
from .io import save_figure, write_csv, write_json
from . import registry
from .registry import Figure

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


def outputs(fig: Figure, out: Path, preset: str) -> Outputs:
    """data/<paper>/figN.csv for the default preset, data/<preset>/<paper>/figN.csv otherwise."""
    sub = Path(fig.paper) if preset == "default" else Path(preset) / fig.paper
    data = out / "data" / sub
    return Outputs(data / f"{fig.key}.csv", data / f"{fig.key}.meta.json",
                   out / "figures" / sub / f"{fig.key}.png")


def claims_path(out: Path, preset: str) -> Path:
    return out / "data" / ("claims.csv" if preset == "default" else f"{preset}/claims.csv")


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
    if not sha and os.environ.get("REPRO_GIT_SHA"):  # a copy without .git (tools/device.sh): the sender's revision
        sha, _, dirty = os.environ["REPRO_GIT_SHA"].partition("+")
        return {"sha": sha, "dirty": dirty == "dirty", "from": "REPRO_GIT_SHA"}
    return {"sha": sha or None, "dirty": bool(run("status", "--porcelain", "--untracked-files=no", "--", ".", ":!data", ":!figures")) if sha else None}


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


def plot_from_csv(fig: Figure, csv: Path, png: Path) -> list[Path]:
    """The plot reads only the CSV (and stamps the provenance line from the meta.json beside it)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    mpl_fig = fig.plot(pd.read_csv(csv))
    meta = csv.with_suffix(".meta.json")
    if meta.exists():
        mpl_fig.text(0.0, -0.01, provenance(json.loads(meta.read_text())), fontsize=6, color="grey", ha="left",
                     va="top", transform=mpl_fig.transFigure)
    try:
        return save_figure(mpl_fig, png)
    finally:
        plt.close(mpl_fig)


def config_datasets(cfg) -> list[str]:
    """Datasets named by config fields called *dataset* / *datasets* (per-run choices, e.g. a synthetic stand-in)."""
    out = []
    for f in dataclasses.fields(cfg):
        if "dataset" in f.name:
            val = getattr(cfg, f.name)
            out += [v for v in (val if isinstance(val, tuple) else (val,)) if v in data_mod.DATASETS]
    return out


def prepare(fig: Figure, preset: str, overrides: Sequence[str], device: str):
    """Validate every input before anything is written: returns (cfg, torch device)."""
    cfg = resolve(fig.config, fig.preset(preset), overrides)
    return cfg, resolve_device(device)


def run_figure(fig: Figure, *, preset: str = "default", overrides: Sequence[str] = (), device: str = "auto",
               seed: int = 0, out: Path = Path("."), data_root: Path | None = None, force: bool = False,
               plot_only: bool = False, progress: Callable | None = None) -> RunResult:
    """Run one figure end to end. `progress(total)` returns advance(description, n_done) or None."""
    cfg, dev = prepare(fig, preset, overrides, device)
    paths = outputs(fig, out, preset)
    root = data_mod.data_root(data_root, out)
    if plot_only:
        if not paths.csv.exists():
            raise ReproError(f"--plot-only: {paths.csv} does not exist; run the figure first")
        plot_from_csv(fig, paths.csv, paths.png)
        return RunResult(fig, paths, evaluate_claims(fig, paths.csv))
    named = [n for n in fig.needs(cfg) if n in data_mod.DATASETS] if fig.needs else config_datasets(cfg)
    for name in (*fig.datasets, *named):
        data_mod.require(name, root)

    measurement_mode()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    start = time.perf_counter()
    points = fig.grid(cfg)
    version, git = code_version(fig), _git()   # both taken before any work: the code that ran
    cache_dir = out / "data" / ".cache"
    advance = progress(len(points)) if progress else None
    frames, notes, computed, cached = [], [], 0, 0
    resolved = describe(cfg)
    for point in points:
        label = ", ".join(f"{k}={v}" for k, v in point.items())
        key = stable_hash([fig.paper, fig.key, resolved, point, seed, dev.type, version])
        cache = cache_dir / key / "point.csv"
        if cache.exists() and not force:
            frame, cached = pd.read_csv(cache), cached + 1
            info = json.loads(cache.with_name("point.json").read_text())
        else:
            ctx = Context(dev, seed, generator(dev, point_seed(seed, point)), root, cache_dir=cache_dir,
                          version=version)
            if advance:
                ctx.tick = lambda msg, label=label: advance(f"{label} {msg}", 0)
            frame = fig.compute(cfg, point, ctx)
            if "seed" not in frame:
                frame.insert(0, "seed", seed)
            info = {"figure": f"{fig.paper}/{fig.key}", "point": point, "seed": seed, "notes": ctx.notes}
            write_json(info, cache.with_name("point.json"))
            write_csv(frame, cache)  # written last: its presence marks the point as finished
            frame, computed = pd.read_csv(cache), computed + 1  # identical dtypes whether cached or not
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
        "device": dev.type, "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine(),
        "dtype": getattr(cfg, "dtype", "float32"), "torch": torch.__version__, "cuda": torch.version.cuda,
        "tf32": False,
        "python": platform.python_version(), "git": git, "code_version": version,
        "wall_time_s": round(wall, 2), "peak_memory": _peak_memory(dev),
        "point_notes": notes, "datasets": list(fig.datasets), "data_root": str(root) if fig.datasets else None,
    }
    write_json(meta, paths.meta)
    plot_from_csv(fig, paths.csv, paths.png)
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
