"""Running figures from the command line: validate every figure first, then run them locally (one progress bar
per figure, a heartbeat for logs) or on Ray, print the claims table; `--dry-run` prints settings and costs."""
from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path
from typing import Callable

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import cli_plan, layout, provenance, registry, runner
from . import datasets as data_mod
from . import executor as executor_mod
from .cli_options import check_out, console, err_console
from .config import ReproError, describe
from .report import reason
from .runtimes import duration

HEARTBEAT_S = 60.0



class _Display:
    """One progress display for a run, whatever the executor. On a terminal: an overall line (figures and points
    done, elapsed, the ETA) and a bar per figure (the running point's label, elapsed). In a
    log (no terminal): no bars; one plain line per finished point, and every HEARTBEAT_S seconds the overall line, one
    line per running point (its own elapsed time) and one per figure with points queued. The ETA counts the running
    points' expected time and divides by the points run at once (`slots`: 1 locally, a Ray cluster's CPUs or GPUs); a
    point costs the plan's estimate, or the mean of the figure's last points computed here where that is longer (a
    sweep's later points, wider or deeper, cost more; cached work makes early points cheap); a point past it is said so.

    Ray is handed every point at submission (`started` for each), so a point counts as running from when one of the
    `slots` frees for it, in submission order (Ray's own order for equal resources), and as queued before."""

    def __init__(self, progress: Progress, steps: list):
        self.progress, self.active, self.stop, self.t0 = progress, {}, threading.Event(), time.perf_counter()
        self.titles = {id(s.plan): s.title for s in steps}
        self.per = {s.title: (s.seconds / s.missing if s.missing and s.seconds is not None else None) for s in steps}
        self.left = {s.title: s.missing for s in steps}
        self.figures, self.points = len(steps), sum(s.missing for s in steps)
        self.inflight: dict[tuple[str, str], float | None] = {}   # (title, label) -> when it began running, or None
        self.took: dict[str, list[float]] = {}   # a figure's points computed here: seconds each, in finishing order
        self.said: dict[str, str] = {}     # a figure's last description (a running point's progress message)
        self.slots = 1                  # points run at once (a Ray cluster's CPUs or GPUs); the ETA divides by it
        self.slots_of: Callable[[], int] | None = None   # asked again at each point's start or end: a cluster grows
        self.overall = progress.add_task("", total=self.points or None) if steps else None
        if not progress.console.is_terminal:
            threading.Thread(target=self._heartbeat, daemon=True).start()

    def _fill(self) -> None:
        """Start the oldest queued points while a slot is free."""
        free = self.slots - sum(1 for began in self.inflight.values() if began is not None)
        for key, began in self.inflight.items():
            if free <= 0:
                break
            if began is None:
                self.inflight[key], free = time.perf_counter(), free - 1

    def _running(self, title: str) -> list[tuple[str, float]]:
        """The figure's running points: (label, seconds since it began)."""
        now = time.perf_counter()
        return [(label, now - began) for (t, label), began in list(self.inflight.items())
                if t == title and began is not None]

    def _eta(self) -> str:
        secs, unknown, late = 0.0, 0, []
        for title, left in self.left.items():
            per = self.per.get(title)
            if not left:
                continue
            recent = self.took.get(title, [])[-max(2, self.slots):]   # a sweep's next points cost like its last ones
            if recent:
                per = max(per or 0.0, sum(recent) / len(recent))
            if per is None:
                unknown += 1
                continue
            secs += left * per
            ran = [r for _, r in self._running(title)]
            secs -= sum(min(r, per) for r in ran)
            over = [r for r in ran if r > per]
            if len(over) == 1:
                late.append(f"{title}'s running point is past its estimate ({duration(over[0])} vs "
                            f"{duration(per)})")
            elif over:
                late.append(f"{title}: {len(over)} running points are past their estimate (longest "
                            f"{duration(max(over))} vs {duration(per)})")
        secs /= max(1, min(self.slots, sum(self.left.values())))
        if unknown and not any(self.per.values()):
            text = "ETA unknown (no estimate for these figures yet)"
        else:
            text = f"ETA about {duration(secs)}" + (f" + {unknown} figure(s) without an estimate"
                                                             if unknown else "")
        return "; ".join([text, *late])

    def line(self) -> str:
        """figures done / total, points done / total, elapsed, ETA."""
        done_f = sum(1 for t, left in self.left.items() if not left)
        done_p = self.points - sum(self.left.values())
        return (f"all: {done_f}/{self.figures} figures, {done_p}/{self.points} points, "
                f"{duration(time.perf_counter() - self.t0)} elapsed, {self._eta()}")

    def _refresh(self) -> None:
        if self.overall is not None:
            self.progress.update(self.overall, completed=self.points - sum(self.left.values()),
                                 description=self.line())

    def _log(self, text: str) -> None:
        """One plain log line: never wrapped, never read as markup (a ladder's "[key=value]" label is text)."""
        self.progress.console.print(text, highlight=False, soft_wrap=True, markup=False)

    def beat(self) -> list[str]:
        """The heartbeat's lines: the overall line, each running point, each figure's queued points."""
        lines = [self.line()] if self.overall is not None else []
        for title, (done, total) in list(self.active.items()):
            said = self.said.get(title, "")
            for label, ran in self._running(title):
                extra = said[len(label):] if said.startswith(label) and not said.endswith("(running)") else ""
                lines.append(f"{title} {done}/{total} still running {label}{extra} ({ran:.0f} s)")
            queued = sum(1 for (t, _), began in list(self.inflight.items()) if t == title and began is None)
            if queued:
                lines.append(f"{title} {done}/{total}: {queued} more point(s) queued for a free slot")
        return lines

    def _heartbeat(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            for text in self.beat():
                self._log(text)

    def bar(self, plan: runner.FigurePlan):
        """advance(description, n_done) for the plan's figure (`runner.drive`'s progress)."""
        title = self.titles.get(id(plan)) or f"{plan.fig.paper} {plan.fig.key}"
        total, t0 = len(plan.points), time.perf_counter()
        task, state = self.progress.add_task(title, total=total), {"done": 0}

        def advance(desc: str, n: int = 1) -> None:
            state["done"] += n
            self.progress.update(task, advance=n, description=f"{title} [dim]{escape(desc)}[/]")
            if desc.endswith(" (running)"):
                self.inflight[(title, desc.removesuffix(" (running)"))] = None
            elif n and desc != "cached":
                began = self.inflight.pop((title, desc.removesuffix(" (another run's)")), None)
                if began is not None and not desc.endswith(" (another run's)"):
                    self.took.setdefault(title, []).append(time.perf_counter() - began)
                if title in self.left:
                    self.left[title] = max(0, self.left[title] - n)
            self.said[title] = desc
            if self.slots_of is not None:
                self.slots = self.slots_of()
            self._fill()
            if n and not self.progress.console.is_terminal:
                self._log(f"{title} {state['done']}/{total} {desc} ({time.perf_counter() - t0:.0f} s)")
            if state["done"] >= total:
                self.active.pop(title, None)
                self.left[title] = 0
            else:
                self.active[title] = (state["done"], total)
            self._refresh()
        return advance


def _short(paper: str, key: str) -> str:
    return f"{registry.paper(paper).alias} {key}"



def _claims_table(rows: list[dict], title: str) -> Table:
    colors = {"PASS": "green", "FAIL": "red", "INCONCLUSIVE": "yellow"}
    table = Table(title=title, show_lines=False)
    for col in ("figure", "claim", "value [95% interval]", "units", "bound", "verdict"):
        table.add_column(col, overflow="fold")
    for r in rows:
        fmt = lambda v: "-" if v != v else f"{v:.4g}"  # noqa: E731
        value = fmt(r["value"]) + ("" if r["ci_low"] != r["ci_low"] or r["ci_low"] == r["ci_high"]
                                   else f"\n[{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]")
        cause = r["cause"] if isinstance(r["cause"], str) else ""
        verdict = f"[{colors[r['verdict']]}]{r['verdict']}[/]" + (f"\n[dim]{escape(cause)}[/]" if cause else "")
        kind = " [dim](check)[/]" if r.get("kind") == "check" else ""
        table.add_row(r["figure"], f"{escape(r['id'])}{kind}\n[dim]{escape(r['text'])}[/]", value, str(r["units"]),
                      escape(str(r["threshold"])), verdict)
    return table



def _claims_lines(rows: list[dict]) -> list[str]:
    """One line per figure: verdict counts, the claims that FAIL and the undecided ones with the first words of why."""
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["figure"], []).append(r)
    lines = []
    for fig, rs in by.items():
        parts = []
        for verdict in ("PASS", "FAIL", "INCONCLUSIVE"):
            hit = [r for r in rs if r["verdict"] == verdict]
            if not hit:
                continue
            said = [r["id"] + (f": {reason(r['cause'])}" if verdict == "INCONCLUSIVE" else "") for r in hit]
            more = f"; +{len(said) - 2} more" if len(said) > 2 else ""
            named = "" if verdict == "PASS" else " (" + "; ".join(said[:2]) + more + ")"
            parts.append(f"{len(hit)} {verdict}{named}")
        lines.append(f"{fig}: {', '.join(parts)}")
    return lines


def _print_claims(rows: list[dict], title: str) -> None:
    """The claims table on a terminal; in a log one line per figure (`repro verify` on a terminal, or
    data/claims.csv after it, has every row)."""
    if console.is_terminal:
        console.print(_claims_table(rows, title))
        return
    console.print(f"{title}, one line per figure (every row: `repro verify`, data/claims.csv):", highlight=False)
    for line in _claims_lines(rows):
        console.print(f"  {line}", highlight=False, markup=False)


@dataclasses.dataclass
class RunOptions:
    """The options every run command shares."""
    preset: str = "default"
    device: str = "auto"
    seed: int = 0
    sets: list[str] = dataclasses.field(default_factory=list)
    out: Path = Path(".")
    data_root: Path | None = None
    force: bool = False
    plot_only: bool = False
    promote: bool = False
    executor: str = "local"
    address: str | None = None



def _unpack_missing(names: set[str], root: Path) -> None:
    """`repro all`: unpack, once, the missing datasets that the offline folder (../shared/datasets) holds."""
    src = data_mod.offline_source()
    for name in sorted(names):
        if data_mod.locate(name, root) is None and data_mod.offline(name, src):
            with console.status(f"unpacking {name} from {src}"):
                console.print(data_mod.unpack(name, src, root), highlight=False)



def _select(figs: list[registry.Figure], o: RunOptions, skip_missing: bool, unpack: bool = True):
    """Validate every figure first (bad input writes nothing), unpack missing offline datasets (`repro all`), and
    split the figures into jobs (figure, config) and skipped lines (why, and the command that would run it)."""
    preset = registry.parse_preset(o.preset).value
    executor_mod.check_name(o.executor)
    dev = runner.pick_device(o.device)
    root = data_mod.data_root(o.data_root, o.out)
    check_out(o.out)
    jobs, skipped, checked = [], [], []
    for fig in figs:
        cfg = runner.prepare(fig, preset, o.sets)
        runner.check_memory(fig, cfg, dev)
        checked.append((fig, cfg))
    if skip_missing and not o.plot_only and unpack:
        _unpack_missing({n for fig, cfg in checked for n in fig.needs(cfg)}, root)
    src = data_mod.offline_source()
    for fig, cfg in checked:
        missing = [n for n in fig.needs(cfg) if data_mod.locate(n, root) is None]
        if missing and skip_missing and not o.plot_only:
            offline = [n for n in missing if data_mod.offline(n, src)]
            hint = f"; `repro all` unpacks {', '.join(offline)} from {src} first" if offline and not unpack else ""
            skipped.append(f"skipped {_short(fig.paper, fig.key)}: dataset {', '.join(missing)} not found under "
                           f"{root} (see `repro data status`){hint}")
        elif skip_missing and not o.plot_only and preset in fig.gpu_presets and dev.type == "cpu":
            skipped.append(f"skipped {_short(fig.paper, fig.key)}: the {preset} preset needs a GPU; run "
                           f"`repro {_short(fig.paper, fig.key)} --preset {preset}` to force it on the CPU")
        else:
            jobs.append((fig, cfg))
    return preset, dev, jobs, skipped


def _plan_only(figs: list[registry.Figure], o: RunOptions) -> None:
    """`repro all --dry-run`: the plan (points, cached, estimates, skipped, total); nothing computed or written."""
    preset, dev, jobs, skipped = _select(figs, o, skip_missing=True, unpack=False)
    cli_plan.show(cli_plan.make(jobs, o, preset, dev, timing=True), skipped, dev, o.executor)


def _warn(msg: str) -> None:
    """A one-line warning (yellow on a terminal)."""
    console.print(f"[yellow]warning: {msg}[/]", highlight=False)


def _run_many(figs: list[registry.Figure], o: RunOptions, skip_missing: bool = False) -> None:
    preset, dev, jobs, skipped = _select(figs, o, skip_missing)
    if o.plot_only:
        for line in skipped:
            console.print(f"[yellow]{line}[/]", highlight=False)
        done = [runner.replot(fig, preset=preset, overrides=o.sets, cfg=cfg, seed=o.seed, out=o.out, promote=o.promote)
                for fig, cfg in jobs]
    else:   # each figure planned once: the estimates behind the ETA (printed first beyond smoke), then driven
        timing = preset != "smoke"      # hours-long runs: a cost model's few timed steps buy the ETA
        steps = cli_plan.make(jobs, o, preset, dev, timing=timing, warn=_warn)
        if skip_missing or timing:
            cli_plan.show(steps, skipped, dev, o.executor)
        done = _execute(steps, o, _warn)
    rows = [{"figure": _short(r.figure.paper, r.figure.key), **vars(c)} for r in done for c in r.claims]
    if rows:
        _print_claims(rows, f"claims ({preset} preset)")
    if skip_missing:
        console.print(f"{len(done)} figure(s) made, {len(skipped)} skipped (see the lines above)", highlight=False)
    variants = [r for r in done if r.variant]
    if variants:
        console.print(f"variant result (--set/--seed), written beside the canonical one: {variants[0].outputs.csv}"
                      f"{' and others' if len(variants) > 1 else ''}; add --promote to make it the figure's result",
                      highlight=False, soft_wrap=True)



def _figure_done(progress: Progress, res: runner.RunResult) -> None:
    """One line per written figure: points computed and cached, wall time, its CSV (the PNG/PDF: figures/, alike)."""
    progress.console.print(f"[dim]{res.figure.paper} {res.figure.key}: {res.computed} computed, {res.cached} cached, "
                           f"{res.wall_s:.1f} s -> {escape(str(res.outputs.csv))} (+ png, pdf)[/]")



def _execute(steps: list, o: RunOptions, warn) -> list[runner.RunResult]:
    """drive -> finish the planned figures on the chosen executor: locally one figure after another, on Ray every
    uncached point of every figure at once (a figure is written as soon as its last point lands). One display, one
    Ctrl-C rule (exit 130, every finished point kept); points that raise on Ray are listed at the end (exit 1)."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    ex, done, failures = None, [], []
    plans = [s.plan for s in steps]
    groups = [plans] if o.executor == "ray" else [[plan] for plan in plans]
    try:
        with Progress(*columns, console=console, transient=False, disable=not console.is_terminal) as progress:
            display = _Display(progress, steps)
            try:
                for group in groups:
                    if ex is None and any(p.missing for p in group):
                        ex = executor_mod.make(o.executor, o.address, warn)
                        display.slots_of = lambda ex=ex: ex.slots(plans[0].device)
                        display.slots = display.slots_of()
                    written, failed = runner.drive(ex, group, force=o.force, progress=display.bar,
                                                   on_figure=lambda res: _figure_done(progress, res))
                    done, failures = done + written, failures + failed
            finally:
                display.stop.set()
    except KeyboardInterrupt:
        kept = f" ({len(done)} figure(s) already written)" if done else ""
        err_console.print(f"interrupted: every finished sweep point is kept in {layout.cache_dir(o.out)}; run the "
                          f"same command again to resume{kept}", highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    finally:
        if ex:
            ex.close()
    if failures:
        for f in failures:
            err_console.print(f"failed: {f.figure} at {f.point}: {f.error}", highlight=False, soft_wrap=True)
        err_console.print(f"{len(failures)} point(s) failed; {len(done)} figure(s) written; every finished point "
                          f"is cached in {layout.cache_dir(o.out)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    return done



def run_rungs(fig: registry.Figure, rungs: list[tuple[str, list[str]]], o: RunOptions, dry_run: bool = False
              ) -> list[tuple[str, runner.RunResult]]:
    """`repro ladder`: every rung (its label, its --set overrides) planned first (a bad one writes nothing), the plan
    printed (points to compute / cached, estimates), then run as one job on the chosen executor with the figure
    runs' display (on Ray every rung's points at once). (label, result) per rung; nothing run with `dry_run`."""
    preset = registry.parse_preset(o.preset).value
    executor_mod.check_name(o.executor)
    dev = runner.pick_device(o.device)
    check_out(o.out)
    cfgs = [runner.prepare(fig, preset, sets) for _, sets in rungs]
    for cfg in cfgs:
        runner.check_memory(fig, cfg, dev)

    steps = []
    for (label, sets), cfg in zip(rungs, cfgs):
        step, = cli_plan.make([(fig, cfg)], dataclasses.replace(o, sets=sets), preset, dev,
                              timing=dry_run or preset != "smoke", warn=_warn)
        step.label = label
        assert step.plan.variant is not None, "a ladder rung is always a variant"
        steps.append(step)
    cli_plan.show(steps, [], dev, o.executor)
    if dry_run:
        return []
    done = {res.variant: res for res in _execute(steps, o, _warn)}
    return [(label, done[s.plan.variant]) for (label, _), s in zip(rungs, steps)]


def _dry_run(figs: list[registry.Figure], preset: str, device: str, sets: list[str] | None,
             executor: str = "local", address: str | None = None) -> None:
    preset = registry.parse_preset(preset).value
    executor_mod.check_name(executor)
    dev = runner.pick_device(device)
    slots = None
    if executor == "ray":   # the cluster it sees: points run one per CPU (or per GPU with --device cuda)
        ex = executor_mod.RayExecutor(address)
        try:
            have = ex.resources()
        finally:
            ex.close()
        slots = int(have.get("GPU" if dev.type == "cuda" else "CPU", 0))
        console.print(f"Ray cluster: {int(have.get('CPU', 0))} CPUs, {int(have.get('GPU', 0))} GPUs, "
                      f"{sum(1 for k in have if k.startswith('node:') and k != 'node:__internal_head__')} node(s)")
        if not slots:
            raise ReproError(f"the Ray cluster has no {'GPU' if dev.type == 'cuda' else 'CPU'} to run points on")
    for fig in figs:
        cfg = runner.prepare(fig, preset, sets or [])
        points = len(fig.grid(cfg))
        _print_config(fig, cfg, sets or [])
        if fig.cost is None:
            console.print(f"{_short(fig.paper, fig.key)} ({preset}): {points} grid points; no cost model")
            continue
        with console.status(f"timing a few steps on {dev}"):
            est = runner.timed_cost(fig, cfg, dev)
        console.print(f"{_short(fig.paper, fig.key)} ({preset}): {est['runs']} {est.get('unit', 'training runs')}; "
                      f"from {est['basis']} on {dev} -> estimated {est['hours']:.3g} {dev.type.upper()}-hours on "
                      "this device (sequential, no early abort)")
        shared, new = est.get("shared") or {}, est.get("new_runs", est["runs"])
        if shared:
            made = ", ".join(f"{k} ({n})" for k, n in shared.items())
            console.print(f"  `make all` trains {est['runs'] - new} of these runs first for {made} (shared runs count "
                          f"once): it adds {new} runs, {est['new_hours']:.3g} {dev.type.upper()}-hours",
                          highlight=False)
        if slots:
            wall = est["hours"] / min(slots, points)
            console.print(f"  on the Ray cluster: {points} points over {slots} {dev.type.upper()} slots -> about "
                          f"{wall:.3g} h wall if its devices match this one")
        elif dev.type == "cpu":
            cores = os.cpu_count() or 1
            adds = f"; {est['new_hours'] / min(cores, max(new, 1)):.3g} h for the runs it adds" if shared else ""
            console.print(f"  with --executor ray on this machine's {cores} cores (one point per core): about "
                          f"{est['hours'] / min(cores, points):.3g} h wall{adds}", highlight=False)



def _print_config(fig: registry.Figure, cfg, sets: list[str]) -> None:
    """--dry-run: every resolved setting, one line each: value, stated or not, set here, reduced from the paper."""
    reduced, given = provenance.reductions(fig, cfg), {s.split("=", 1)[0].strip() for s in sets}
    console.print(f"{_short(fig.paper, fig.key)} settings (stated: the paper states it; not stated: our choice):",
                  highlight=False)
    for name, d in describe(cfg).items():
        value = ", ".join(map(str, d["value"])) if isinstance(d["value"], list) else str(d["value"])
        tags = [d["source"].replace("_", " ")] + (["--set"] if name in given else [])
        tags += [f"reduced: {reduced[name]}"] if name in reduced else []
        console.print(f"  {name} = {value}  ({'; '.join(tags)})", highlight=False, markup=False, soft_wrap=True)
