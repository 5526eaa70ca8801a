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
from typing import Callable

import torch

from . import registry, runner, runtimes
from .cli_options import console
from .runtimes import duration


@dataclass
class Step:
    """One figure of the plan: its runner plan (config, cached points) and the estimate for the rest."""
    plan: runner.FigurePlan
    seconds: float | None       # estimated time for the points to compute (None: no estimate)
    basis: str                  # where the estimate comes from, in words
    label: str = ""             # what tells this run from others of the figure (a ladder's rung), shown after it

    @property
    def title(self) -> str:
        """How the plan and the progress display name it: paper, figure key, label."""
        return f"{self.fig.paper} {self.fig.key}" + (f" [{self.label}]" if self.label else "")

    @property
    def fig(self) -> registry.Figure:
        return self.plan.fig

    @property
    def total(self) -> int:
        return len(self.plan.points)

    @property
    def cached(self) -> int:
        return len(self.plan.frames)

    @property
    def missing(self) -> int:
        return len(self.plan.missing)


def _from_meta(meta_path, dev: torch.device) -> tuple[float | None, str, int]:
    """Seconds per computed point of the figure's last run on this device type, from its meta.json; its basis; how
    many points that run computed."""
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None, "", 0
    per = runtimes.per_point(meta)
    if per is None or meta.get("device") != dev.type:
        return None, "", 0
    return per, f"its last run here ({meta.get('date', '?')[:10]}: {duration(meta['wall_time_s'])} for " \
                f"{meta['points_computed']} points)", int(meta["points_computed"])


def estimate(plan: runner.FigurePlan, timing: bool) -> tuple[float | None, str]:
    """(seconds, basis) for the plan's missing points: its last run here, data/runtimes.csv, or its cost model. A past
    run that computed fewer than half as many points as are missing (e.g. one training point of a sweep whose other
    points were cached) says little about the rest: the cost model comes first then, where the figure has one."""
    fig, dev, missing = plan.fig, plan.device, len(plan.missing)
    if not missing:
        return 0.0, "every point cached"
    per, basis, computed = _from_meta(plan.paths.meta, dev)
    row = runtimes.measured(fig, plan.preset, dev.type) if per is None else None
    if row is not None and plan.variant is None:
        per, computed = float(row["per_point_s"]), int(row["points_computed"])
        basis = f"data/runtimes.csv ({runtimes.describe(row)}, {row['device_name']})"
    if per is not None and 2 * computed >= missing:
        return per * missing, basis
    if fig.cost is not None and timing:
        est = runner.timed_cost(fig, plan.cfg, dev)
        hours = est.get("hours", math.nan)
        if math.isfinite(hours):
            few = f"; not {basis}, which computed {computed} of the {missing} points now missing" \
                if per is not None else ""
            return hours * 3600 * missing / len(plan.points), f"its cost model ({est['basis']}){few}"
    if per is not None:
        return per * missing, basis
    return None, "no estimate yet: never run here, no cost model"


def make(jobs: list, o, preset: str, dev: torch.device, timing: bool,
         warn: Callable[[str], None] = lambda msg: None) -> list[Step]:
    """The plan of every job (figure, config) under the run options `o` (cli_run.RunOptions): each figure's runner
    plan, made once and then driven, and its estimate (timing cost models when `timing`)."""
    steps = []
    with console.status("planning: cached points and estimates") as status:
        for fig, cfg in jobs:
            status.update(f"planning {registry.paper(fig.paper).alias} {fig.key}")
            plan = runner.plan_figure(fig, preset=preset, overrides=o.sets, device=dev, cfg=cfg, seed=o.seed,
                                      out=o.out, data_root=o.data_root, force=o.force, promote=o.promote, warn=warn)
            steps.append(Step(plan, *estimate(plan, timing)))
    return steps


def show(steps: list[Step], skipped: list[str], dev: torch.device, executor: str = "local") -> None:
    """Print the plan: one line per figure, one per skipped figure, and the total (compute time one point after
    another; on Ray the live ETA divides it by the points that run at once)."""
    console.print(f"plan ({len(steps)} figure(s) to make, {len(skipped)} skipped):", highlight=False)
    for s in steps:
        name = f"{registry.paper(s.fig.paper).alias} {s.fig.key}" + (f" [{s.label}]" if s.label else "")
        what = f"{s.missing} of {s.total} points to compute" if s.missing else f"all {s.total} points cached"
        when = f", about {duration(s.seconds)} from {s.basis}" if s.missing and s.seconds is not None else \
            (f", {s.basis}" if s.missing else "")
        console.print(f"  {name}: {what}{when}", highlight=False, markup=False, soft_wrap=True)
    for line in skipped:
        console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    known = [s.seconds for s in steps if s.seconds is not None]
    unknown = [s for s in steps if s.seconds is None]
    points = sum(s.missing for s in steps)
    at_once = "; on Ray, divided by the points run at once (the live ETA)" if executor == "ray" else ""
    timed = f"about {duration(sum(known))} on {dev.type}, one point after another{at_once}" if known else "no estimate"
    console.print(f"total: {points} points to compute, {sum(s.cached for s in steps)} cached; {timed}"
                  + (f", plus {len(unknown)} figure(s) without an estimate" if unknown and known else ""),
                  highlight=False, soft_wrap=True)
