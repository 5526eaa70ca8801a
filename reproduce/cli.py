"""The `repro` command line: the only layer that prints (rich progress bars and tables)."""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from . import datasets as data_mod
from . import executor as executor_mod
from . import layout, provenance, registry, runner, verification
from . import report as report_mod
from .cli_data import data_app
from .cli_options import (
    Address,
    DataRoot,
    Device,
    DryRun,
    Executor,
    Force,
    Out,
    PaperOpt,
    PlotOnly,
    Preset,
    Promote,
    Seed,
    Sets,
    console,
    err_console,
    user_errors,
)
from .config import ReproError, describe
from .core.device import measurement_mode
from .io import write_csv, write_text
from .readme import markdown_table

warnings.filterwarnings("ignore", message=".*torch.jit.script.*is deprecated", category=FutureWarning)
app = typer.Typer(
    help="Reproduce the figures of five deep-learning-theory papers and check their claims.\n\n"
         "Examples: `repro list`, `repro figure 2 --paper norm`, `repro norm fig1 --preset smoke`, "
         "`repro all`, `repro verify`.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "token_normalize_func": str.lower})
app.add_typer(data_app, name="data")

HEARTBEAT_S = 60.0


def _progress_factory(progress: Progress, title: str):
    """Live bar on a terminal (the running point's label, elapsed time and ETA); in a log (no terminal) one plain
    line per finished point, and a heartbeat line every HEARTBEAT_S seconds while a point runs."""
    def start(total: int):
        task, t0, done, current = progress.add_task(title, total=total), time.perf_counter(), 0, ""
        stop = threading.Event()
        start.stops.append(stop)

        def heartbeat() -> None:
            while not stop.wait(HEARTBEAT_S):
                progress.console.print(f"{title} {done}/{total} still running {current} "
                                       f"({time.perf_counter() - t0:.0f} s)", highlight=False, soft_wrap=True)

        if not progress.console.is_terminal:
            threading.Thread(target=heartbeat, daemon=True).start()

        def advance(desc: str, n: int = 1) -> None:
            nonlocal done, current
            progress.update(task, advance=n, description=f"{title} [dim]{desc}[/]")
            done, current = done + n, desc
            if n and not progress.console.is_terminal:
                progress.console.print(f"{title} {done}/{total} {desc} ({time.perf_counter() - t0:.0f} s)",
                                       highlight=False, soft_wrap=True)
            if done >= total:
                stop.set()
        return advance
    start.stops = []   # set them all to end the heartbeats (a figure that failed half way)
    return start


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


def _check_out(out: Path) -> None:
    """--out must be a folder we can write to (or one we can create), checked before any work."""
    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if out.exists() and not out.is_dir():
        raise ReproError(f"--out {out} is a file, not a folder")
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise ReproError(f"--out {out}: {probe} is not a writable folder")


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
    _check_out(o.out)
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
    rows, done = [], []

    def warn(msg: str) -> None:
        console.print(f"[yellow]warning: {msg}[/]", highlight=False)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())
    if o.executor == "ray" and not o.plot_only and jobs:
        done = _run_ray(jobs, o, preset, dev, warn, columns)
        rows = [{"figure": _short(r.figure.paper, r.figure.key), **vars(c)} for r in done for c in r.claims]
        jobs = []
    with Progress(*columns, console=console, transient=False) as progress:
        for fig, cfg in jobs:
            bar = _progress_factory(progress, f"{fig.paper} {fig.key}")
            try:
                res = runner.run_figure(fig, preset=preset, overrides=o.sets, device=dev, cfg=cfg, seed=o.seed,
                                        out=o.out, data_root=o.data_root, force=o.force, plot_only=o.plot_only,
                                        promote=o.promote, warn=warn, progress=bar)
            except KeyboardInterrupt:
                progress.stop()
                kept = f" ({len(done)} figure(s) already written)" if done else ""
                err_console.print(f"interrupted in {fig.paper} {fig.key}: every finished sweep point is kept in "
                                  f"{layout.cache_dir(o.out)}; run the same command again to resume{kept}",
                                  highlight=False, soft_wrap=True)
                raise typer.Exit(130) from None
            finally:
                for stop in bar.stops:
                    stop.set()
            done.append(res)
            _figure_done(progress, res)
            rows += [{"figure": _short(fig.paper, fig.key), **vars(c)} for c in res.claims]
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


def _run_ray(jobs: list, o: RunOptions, preset: str, dev, warn, columns) -> list[runner.RunResult]:
    """Every uncached point of every job as one Ray task, submitted together; a figure is written as soon as its
    last point lands. Points that raise are listed at the end (exit 1); the others go on."""
    plans = [runner.plan_figure(fig, preset=preset, overrides=o.sets, device=dev, cfg=cfg, seed=o.seed, out=o.out,
                                data_root=o.data_root, force=o.force, promote=o.promote, warn=warn)
             for fig, cfg in jobs]
    total = sum(len(p.missing) for p in plans)
    ex = executor_mod.RayExecutor(o.address) if total else None
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            bar = progress.add_task(f"{total} points on Ray", total=total)
            done, failures = executor_mod.drive(ex, plans, lambda: progress.advance(bar),
                                                lambda res: _figure_done(progress, res))
    except KeyboardInterrupt:
        err_console.print(f"interrupted: every finished sweep point is kept in {layout.cache_dir(o.out)}; run the "
                          "same command again to resume", highlight=False, soft_wrap=True)
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


@app.command("figure")
def figure_cmd(number: Annotated[str, typer.Argument(help="figure number (2, fig2) or table1")],
               paper: Annotated[str, typer.Option("--paper", "-P", help="paper name or alias")],
               preset: Preset = "default", device: Device = "auto", seed: Seed = 0, set_: Sets = None,
               out: Out = Path("."), data_root: DataRoot = None, plot_only: PlotOnly = False,
               force: Force = False, dry_run: DryRun = False, promote: Promote = False,
               executor: Executor = "local", address: Address = None) -> None:
    """Compute one figure: CSV + meta.json + PNG/PDF, then check its claims.

    With --set or --seed the result is a variant written beside the canonical one (--promote replaces it)."""
    with user_errors():
        if dry_run:
            return _dry_run([registry.figure(paper, number)], preset, device, set_, executor, address)
        _run_many([registry.figure(paper, number)],
                  RunOptions(preset, device, seed, set_ or [], out, data_root, force, plot_only, promote, executor,
                             address))


@app.command("all")
def all_cmd(paper: PaperOpt = None, preset: Preset = "default", device: Device = "auto", seed: Seed = 0,
            set_: Sets = None, out: Out = Path("."), data_root: DataRoot = None, plot_only: PlotOnly = False,
            force: Force = False, promote: Promote = False, executor: Executor = "local",
            address: Address = None) -> None:
    """Compute every registered figure (of one paper with --paper).

    Figures whose datasets are missing, or whose preset needs a GPU on a CPU-only machine, are skipped with one
    line each; a summary ends the run."""
    with user_errors():
        _run_many(registry.figures(paper),
                  RunOptions(preset, device, seed, set_ or [], out, data_root, force, plot_only, promote, executor,
                             address),
                  skip_missing=True)


@app.command("verify")
def verify_cmd(paper: PaperOpt = None, preset: Preset = "default", out: Out = Path(".")) -> None:
    """Check every claim against the CSVs present; write data/claims.csv (all papers present)."""
    with user_errors():
        preset = registry.parse_preset(preset).value
        wanted = {f.paper for f in registry.figures(paper)}
        table = verification.verify(registry.figures(), out, preset)  # claims.csv always covers every paper present
        table = table[table["paper"].isin(wanted)]
        if table.empty:
            raise ReproError(f"no results for the {preset} preset under {out / 'data'}; run `repro all` first")
        rows = [{**r, "figure": _short(r["paper"], r["figure"])} for r in table.to_dict("records")]
        console.print(_claims_table(rows, f"claims ({preset} preset)"))
        kinds = table["kind"] if "kind" in table else pd.Series("claim", index=table.index)
        said = [f"{what}: " + ", ".join(f"{k} {v}" for k, v in sorted(part["verdict"].value_counts().items()))
                for what, part in (("claims", table[kinds == "claim"]), ("our checks", table[kinds == "check"]))
                if len(part)]
        console.print("; ".join(said), f"-> {layout.claims_path(out, preset)}")


@app.command("report")
def report_cmd(preset: Preset = "default", out: Out = Path("."), device: Device = "auto",
               costs: Annotated[bool, typer.Option("--costs/--no-costs", help="time each missing figure's --dry-run "
                                                   "cost on this device (else its registered runtime)")] = True
               ) -> None:
    """Write the reproduction report, figures/index.html and figures/README.md, from the CSVs, meta.json files and
    claims present (nothing is recomputed); the claims are checked as `repro verify` does (data/claims.csv)."""
    with user_errors():
        preset = registry.parse_preset(preset).value
        table = verification.verify(registry.figures(), out, preset)
        dev = runner.pick_device(device) if costs else None

        def cost(fig: registry.Figure) -> str:
            if fig.cost is None:
                return fig.runtime.get(preset, "")
            with console.status(f"--dry-run cost of {_short(fig.paper, fig.key)} on {dev}"):
                est = fig.cost(runner.prepare(fig, preset, []), dev)
            return (f"--dry-run: {est['runs']} {est.get('unit', 'training runs')}, about "
                    f"{report_mod.duration(est['hours'] * 3600)} on {dev} (registered: {fig.runtime.get(preset, '?')})")
        entries, page, md = report_mod.build(out, preset, table, cost if costs else None)
        folder = report_mod.report_dir(out, preset)
        write_text(page, folder / "index.html")
        write_text(md, folder / "README.md")
        c, k = report_mod.counts(entries), report_mod.counts(entries, checks=True)
        states = pd.Series([e.state for e in entries]).value_counts().to_dict()
        console.print(f"{len(entries)} figures ({', '.join(f'{v} {k}' for k, v in states.items())}); the papers' "
                      f"claims on current figures {', '.join(f'{k}: {v}' for k, v in c.items())}; our checks "
                      f"{', '.join(f'{k}: {v}' for k, v in k.items())} -> {folder / 'index.html'}, "
                      f"{folder / 'README.md'}", highlight=False, soft_wrap=True)


@app.command("bench")
def bench_cmd(paper: Annotated[Optional[str], typer.Argument(help="paper name or alias, or `scale` (local vs "
                                                               "Ray executor; default: every paper with a "
                                                               "benchmark)")] = None,
              device: Device = "auto",
              sizes: Annotated[Optional[str], typer.Option("--sizes", help="comma-separated sizes, e.g. "
                                                           "1000,10000 (default: the benchmark's own)")] = None,
              repeats: Annotated[int, typer.Option("--repeats", min=1, help="timed calls; the best counts")] = 3,
              out: Out = Path(".")) -> None:
    """Time alternative implementations on the same inputs; print a table, write data/bench/<paper>.csv."""
    with user_errors():
        registry.figures()  # imports every implemented paper, which registers its benchmark
        benches = registry.BENCHES
        benches.setdefault("scale", executor_mod.scale_bench)   # the executors' benchmark, not a paper's
        names = ([paper] if paper in benches else [registry.paper(paper).name]) if paper else \
            [p.name for p in registry.PAPERS if p.name in benches]
        missing = [n for n in names if n not in benches]
        if missing:
            raise ReproError(f"no benchmark for {missing[0]}; available: {', '.join(benches) or 'none'}")
        try:
            size_list = tuple(int(float(s)) for s in sizes.split(",")) if sizes else None
        except ValueError:
            raise ReproError(f"--sizes must be comma-separated numbers, got {sizes!r}") from None
        dev = runner.pick_device(device)
        measurement_mode()
        for name in names:
            with console.status(f"benchmarking {name} on {dev}"):
                df = benches[name](dev, size_list, repeats)
            const = [c for c in df.columns if df[c].nunique(dropna=False) == 1 and c != "note"]
            shown = df.drop(columns=const)
            table = Table(title=f"{name} benchmark: " + ", ".join(f"{c}={df[c].iloc[0]}" for c in const))
            for col in shown.columns:
                table.add_column(col, justify="right" if pd.api.types.is_numeric_dtype(shown[col]) else "left")
            for row in shown.itertuples(index=False):
                table.add_row(*(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row))
            console.print(table)
            path = layout.bench_path(out, name)
            write_csv(df, path)
            console.print(f"-> {path}")


def _list_rows() -> list[dict]:
    """One dict per registered figure (and per paper without figures): what `repro list` shows."""
    figs, rows = registry.figures(), []
    for p in registry.PAPERS:
        mine = [f for f in figs if f.paper == p.name]
        for f in mine:
            rows.append({"paper": p.name, "alias": p.alias, "figure": f.key, "title": f.title,
                         "runtime": {k: f.runtime.get(k, "?") for k in registry.PRESETS},
                         "data": f.needs(f.config()) or ["synthetic"], "source": f.source,
                         "command": f"repro {p.alias} {f.key}"})
        if not mine:
            rows.append({"paper": p.name, "alias": p.alias, "figure": None, "title": "not implemented yet",
                         "runtime": {}, "data": [], "source": "", "command": ""})
    return rows


@app.command("list")
def list_cmd(markdown: Annotated[bool, typer.Option("--markdown", help="print the README table")] = False,
             as_json: Annotated[bool, typer.Option("--json", help="print a JSON list, one object per figure")] = False
             ) -> None:
    """List papers and figures: titles, runtimes per preset, data needed (default preset), source file.

    On a terminal a table; piped, one tab-separated line per figure (greppable); --json for scripts.
    """
    if markdown:
        print(markdown_table())
        return
    rows = _list_rows()
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    if not console.is_terminal:
        for r in rows:
            runtimes = " / ".join(r["runtime"].values())
            print("\t".join([r["paper"], r["alias"], r["figure"] or "-", r["title"], runtimes,
                             ",".join(r["data"]), r["source"]]))
        return
    table = Table(title="repro figures")
    for col in ("paper", "figure", "title", "runtime smoke / default / paper", "data", "source"):
        table.add_column(col, overflow="fold", no_wrap=col in ("paper", "figure"))
    for r in rows:
        table.add_row(f"{r['paper']} ({r['alias']})", r["figure"] or "-", r["title"],
                      " / ".join(r["runtime"].values()), ", ".join(r["data"]), r["source"])
    console.print(table)


def _paper_command(p: registry.Paper, hidden: bool):
    def cmd(fig: Annotated[str, typer.Argument(help="fig1, fig2, ..., table1, or all")],
            preset: Preset = "default", device: Device = "auto", seed: Seed = 0, set_: Sets = None,
            out: Out = Path("."), data_root: DataRoot = None, plot_only: PlotOnly = False,
            force: Force = False, dry_run: DryRun = False, promote: Promote = False,
            executor: Executor = "local", address: Address = None) -> None:
        with user_errors():
            figs = registry.figures(p.name) if fig.lower() == "all" else [registry.figure(p.name, fig)]
            if dry_run:
                return _dry_run(figs, preset, device, set_, executor, address)
            _run_many(figs, RunOptions(preset, device, seed, set_ or [], out, data_root, force, plot_only, promote,
                                       executor, address))
    cmd.__doc__ = f"{p.title} (alias {p.alias}). Run one figure, or all."
    app.command(p.alias if hidden else p.name, hidden=hidden)(cmd)


for _p in registry.PAPERS:
    _paper_command(_p, hidden=False)
    _paper_command(_p, hidden=True)


def main() -> None:
    app(prog_name="repro")


if __name__ == "__main__":
    sys.exit(main())
