"""The plan a run prints before any work: each figure with its points (to compute / cached) and an estimated time on
this machine, the figures skipped (why, and the command that would run them), and the total.

An estimate comes from the figure's last measured run in this results folder (its meta.json: wall time per computed
point, on the same device type), else from the committed measurements (data/runtimes.csv, `repro runtimes`), else
from its cost model (a few timed steps on this device; `--dry-run` and presets other than smoke); a figure with none
says so. No estimate comes from a hand-written string.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import torch

from . import layout, registry, runner, runtimes
from .cli_options import console


@dataclass
class Step:
    """One figure of the plan."""
    fig: registry.Figure
    cfg: object
    total: int                  # grid points
    cached: int                 # of them, already in the point cache
    seconds: float | None       # estimated time for the points to compute (None: no estimate)
    basis: str                  # where the estimate comes from, in words

    @property
    def missing(self) -> int:
        return self.total - self.cached


def duration(s: float | None) -> str:
    """Seconds in words: 40 s, 12 min, 3.5 h ('?' when unknown)."""
    if s is None or not math.isfinite(s):
        return "?"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"


def _from_meta(meta_path, dev: torch.device) -> tuple[float | None, str]:
    """Seconds per computed point of the figure's last run on this device type, from its meta.json."""
    try:
        meta = json.loads(meta_path.read_text())
        per = float(meta["wall_time_s"]) / int(meta["points_computed"])
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return None, ""
    if meta.get("device") != dev.type:
        return None, ""
    return per, f"its last run here ({meta.get('date', '?')[:10]}: {duration(meta['wall_time_s'])} for " \
                f"{meta['points_computed']} points)"


def step(fig: registry.Figure, cfg, preset: str, overrides, seed: int, dev: torch.device, out, timing: bool,
         data_root=None) -> Step:
    """The plan of one figure: its points, how many are cached, and the estimate for the rest."""
    plan = runner.plan_figure(fig, preset=preset, overrides=overrides, device=dev, cfg=cfg, seed=seed, out=out,
                              data_root=data_root)
    total, cached = len(plan.points), len(plan.frames)
    missing = total - cached
    if not missing:
        return Step(fig, cfg, total, cached, 0.0, "every point cached")
    per, basis = _from_meta(layout.outputs(fig, out, preset, plan.variant).meta, dev)
    if per is not None:
        return Step(fig, cfg, total, cached, per * missing, basis)
    row = runtimes.measured(fig, preset, dev.type)
    if row is not None and plan.variant is None:
        return Step(fig, cfg, total, cached, float(row["per_point_s"]) * missing,
                    f"data/runtimes.csv ({runtimes.describe(row)}, {row['device_name']})")
    if fig.cost is not None and timing:
        est = fig.cost(cfg, dev)
        hours = est.get("hours", math.nan)
        if math.isfinite(hours):
            return Step(fig, cfg, total, cached, hours * 3600 * missing / total,
                        f"its cost model ({est['basis']})")
    return Step(fig, cfg, total, cached, None, "no estimate yet: never run here, no cost model")


def make(jobs: list, preset: str, overrides, seed: int, dev: torch.device, out, timing: bool,
         data_root=None) -> list[Step]:
    """The plan of every job (figure, config), timing cost models when `timing`."""
    steps = []
    with console.status("planning: cached points and estimates") as status:
        for fig, cfg in jobs:
            status.update(f"planning {registry.paper(fig.paper).alias} {fig.key}")
            steps.append(step(fig, cfg, preset, overrides, seed, dev, out, timing, data_root))
    return steps


def show(steps: list[Step], skipped: list[str], dev: torch.device) -> None:
    """Print the plan: one line per figure, one per skipped figure, and the total."""
    console.print(f"plan ({len(steps)} figure(s) to make, {len(skipped)} skipped):", highlight=False)
    for s in steps:
        name = f"{registry.paper(s.fig.paper).alias} {s.fig.key}"
        what = f"{s.missing} of {s.total} points to compute" if s.missing else f"all {s.total} points cached"
        when = f", about {duration(s.seconds)} from {s.basis}" if s.missing and s.seconds is not None else \
            (f", {s.basis}" if s.missing else "")
        console.print(f"  {name}: {what}{when}", highlight=False, markup=False, soft_wrap=True)
    for line in skipped:
        console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    known = [s.seconds for s in steps if s.seconds is not None]
    unknown = [s for s in steps if s.seconds is None]
    points = sum(s.missing for s in steps)
    timed = f"about {duration(sum(known))} on {dev.type}, one point after another" if known else "no estimate"
    console.print(f"total: {points} points to compute, {sum(s.cached for s in steps)} cached; {timed}"
                  + (f", plus {len(unknown)} figure(s) without an estimate" if unknown and known else ""),
                  highlight=False, soft_wrap=True)
