"""Running figures from the command line: validate every figure first, then run them locally (one progress bar
per figure, a heartbeat for logs) or on Ray, print the claims table; `--dry-run` prints settings and costs."""
from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from . import datasets as data_mod
from . import executor as executor_mod
from . import layout, provenance, registry, runner
from .cli_options import check_out, console, err_console
from .config import ReproError, describe

HEARTBEAT_S = 60.0



class _Display:
    """One progress display for a run, whatever the executor: a bar per figure (the running point's label, elapsed
    time, ETA) on a terminal; in a log (no terminal) one plain line per finished point, and every HEARTBEAT_S
    seconds one line per figure that has points in flight."""

    def __init__(self, progress: Progress):
        self.progress, self.active, self.stop = progress, {}, threading.Event()
        if not progress.console.is_terminal:
            threading.Thread(target=self._heartbeat, daemon=True).start()

    def _heartbeat(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            for title, (done, total, current, t0) in list(self.active.items()):
                self.progress.console.print(f"{title} {done}/{total} still running {current} "
                                            f"({time.perf_counter() - t0:.0f} s)", highlight=False, soft_wrap=True)

    def bar(self, plan: runner.FigurePlan):
        """advance(description, n_done) for the plan's figure (`runner.drive`'s progress)."""
        title, total, t0 = f"{plan.fig.paper} {plan.fig.key}", len(plan.points), time.perf_counter()
        task, state = self.progress.add_task(title, total=total), {"done": 0}

        def advance(desc: str, n: int = 1) -> None:
            state["done"] += n
            self.progress.update(task, advance=n, description=f"{title} [dim]{desc}[/]")
            if n and not self.progress.console.is_terminal:
                line = f"{title} {state['done']}/{total} {desc} ({time.perf_counter() - t0:.0f} s)"
                self.progress.console.print(line, highlight=False, soft_wrap=True)
            if state["done"] >= total:
                self.active.pop(title, None)
            else:
                self.active[title] = (state["done"], total, desc, t0)
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



def _run_many(figs: list[registry.Figure], o: RunOptions, skip_missing: bool = False) -> None:
    preset = registry.parse_preset(o.preset).value
    executor_mod.check_name(o.executor)
    dev = runner.pick_device(o.device)
    root = data_mod.data_root(o.data_root, o.out)
    check_out(o.out)
    jobs, skipped, checked = [], [], []
    for fig in figs:  # validate everything first: bad input writes nothing
        cfg = runner.prepare(fig, preset, o.sets)
        runner.check_memory(fig, cfg, dev)
        checked.append((fig, cfg))
    if skip_missing and not o.plot_only:
        _unpack_missing({n for fig, cfg in checked for n in fig.needs(cfg)}, root)
    for fig, cfg in checked:
        missing = [n for n in fig.needs(cfg) if data_mod.locate(n, root) is None]
        if missing and skip_missing and not o.plot_only:
            skipped.append(f"skipped {fig.paper} {fig.key}: dataset {', '.join(missing)} not found under {root} "
                           "(see `repro data status`)")
        elif skip_missing and not o.plot_only and preset in fig.gpu_presets and dev.type == "cpu":
            skipped.append(f"skipped {fig.paper} {fig.key}: the {preset} preset needs a GPU; run "
                           f"`repro {_short(fig.paper, fig.key)} --preset {preset}` to force it on the CPU")
        else:
            jobs.append((fig, cfg))
    for line in skipped:
        console.print(f"[yellow]{line}[/]", highlight=False)
    def warn(msg: str) -> None:
        console.print(f"[yellow]warning: {msg}[/]", highlight=False)

    if o.plot_only:
        done = [runner.replot(fig, preset=preset, overrides=o.sets, cfg=cfg, seed=o.seed, out=o.out, promote=o.promote)
                for fig, cfg in jobs]
    else:
        done = _execute(jobs, o, preset, dev, warn)
    rows = [{"figure": _short(r.figure.paper, r.figure.key), **vars(c)} for r in done for c in r.claims]
    if rows:
        console.print(_claims_table(rows, f"claims ({preset} preset)"))
    if skip_missing:
        console.print(f"{len(done)} figure(s) made, {len(skipped)} skipped (see the lines above)", highlight=False)
    variants = [r for r in done if r.variant]
    if variants:
        console.print(f"variant result (--set/--seed), written beside the canonical one: {variants[0].outputs.csv}"
                      f"{' and others' if len(variants) > 1 else ''}; add --promote to make it the figure's result",
                      highlight=False, soft_wrap=True)



def _figure_done(progress: Progress, res: runner.RunResult) -> None:
    """One line per written figure: points computed and cached, wall time, outputs."""
    progress.console.print(f"[dim]{res.figure.paper} {res.figure.key}: {res.computed} computed, {res.cached} cached, "
                           f"{res.wall_s:.1f} s -> {res.outputs.csv}, {res.outputs.png}[/]")



def _execute(jobs: list, o: RunOptions, preset: str, dev, warn) -> list[runner.RunResult]:
    """plan -> drive -> finish on the chosen executor: locally one figure after another, on Ray every uncached point
    of every figure at once (a figure is written as soon as its last point lands). One display, one Ctrl-C rule
    (exit 130, every finished point kept); points that raise on Ray are listed at the end (exit 1)."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())
    ex, done, failures = None, [], []
    groups = [jobs] if o.executor == "ray" else [[job] for job in jobs]
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            display = _Display(progress)
            try:
                for group in groups:
                    plans = [runner.plan_figure(fig, preset=preset, overrides=o.sets, device=dev, cfg=cfg,
                                                seed=o.seed, out=o.out, data_root=o.data_root, force=o.force,
                                                promote=o.promote, warn=warn) for fig, cfg in group]
                    if ex is None and any(p.missing for p in plans):
                        ex = executor_mod.make(o.executor, o.address, warn)
                    written, failed = runner.drive(ex, plans, force=o.force, progress=display.bar,
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
            est = fig.cost(cfg, dev)
        console.print(f"{_short(fig.paper, fig.key)} ({preset}): {est['runs']} {est.get('unit', 'training runs')}; "
                      f"from {est['basis']} on {dev} -> estimated {est['hours']:.3g} {dev.type.upper()}-hours on "
                      "this device (sequential, no early abort)")
        if slots:
            wall = est["hours"] / min(slots, points)
            console.print(f"  on the Ray cluster: {points} points over {slots} {dev.type.upper()} slots -> about "
                          f"{wall:.3g} h wall if its devices match this one")



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
