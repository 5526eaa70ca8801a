"""The `repro` command line: the only layer that prints (rich progress bars and tables)."""
from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated, Optional

# Idle OpenMP threads sleep instead of spinning: on a busy machine (another run, a Ray worker) spinning threads fight
# for the cores, and small-tensor figures ran 8x slower (linearity fig1 at m = 100: 157 s vs 19 s beside two busy
# processes on 2 cores). Read once, when torch loads its OpenMP runtime; an OMP_WAIT_POLICY already set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pandas as pd
import torch
import typer
from rich.table import Table

from . import __version__, layout, registry, runner, verification
from . import executor as executor_mod
from . import ladder as ladder_mod
from . import report as report_mod
from . import runtimes as runtimes_mod
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
    check_out,
    console,
    err_console,
    user_errors,
)
from .cli_run import RunOptions, _claims_table, _dry_run, _plan_only, _run_many, _short, run_rungs
from .config import ReproError
from .io import write_csv, write_text
from .point import reproducible_mode
from .readme import markdown_table

warnings.filterwarnings("ignore", message=".*torch.jit.script.*is deprecated", category=FutureWarning)
app = typer.Typer(
    help="Reproduce the figures of five deep-learning-theory papers and check their claims.\n\n"
         "Examples: `repro list`, `repro figure 2 --paper norm`, `repro norm fig1 --preset smoke`, "
         "`repro all`, `repro verify`.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "token_normalize_func": str.lower})
app.add_typer(data_app, name="data")


def _version(value: bool) -> None:
    if value:
        print(f"repro {__version__} (torch {torch.__version__}, python {sys.version.split()[0]})")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="print the version and exit")] = False) -> None:
    """Reproduce the figures of five deep-learning-theory papers and check their claims."""


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
            force: Force = False, dry_run: DryRun = False, promote: Promote = False, executor: Executor = "local",
            address: Address = None) -> None:
    """Compute every registered figure (of one paper with --paper).

    First a plan: each figure's points (to compute / cached) with an estimate from its last run here or its cost
    model, the figures skipped (datasets missing, or a preset that needs a GPU on a CPU-only machine) and the total;
    --dry-run stops there. A summary ends the run."""
    with user_errors():
        o = RunOptions(preset, device, seed, set_ or [], out, data_root, force, plot_only, promote, executor, address)
        if dry_run:
            return _plan_only(registry.figures(paper), o)
        _run_many(registry.figures(paper), o, skip_missing=True)


@app.command("verify")
def verify_cmd(paper: PaperOpt = None, preset: Preset = "default", out: Out = Path("."),
               strict: Annotated[bool, typer.Option("--strict", help="exit 1 when a claim or check FAILs (for CI); "
                                                    "without it a FAIL is a finding and the exit code is 0")] = False
               ) -> None:
    """Check every claim against the CSVs present; write data/claims.csv (all papers present).

    A CSV that cannot be read is named and skipped, the others are checked, and the exit code is 1."""
    with user_errors():
        preset = registry.parse_preset(preset).value
        check_out(out)
        wanted = {f.paper for f in registry.figures(paper)}
        table, unreadable = verification.verify(registry.figures(), out, preset)  # claims.csv: every paper present
        table = table[table["paper"].isin(wanted)]
        unreadable = {k: v for k, v in unreadable.items() if k[0] in wanted}
        if table.empty and not unreadable:
            raise ReproError(f"no results for the {preset} preset under {out / 'data'}; run `repro all` first")
        rows = [{**r, "figure": _short(r["paper"], r["figure"])} for r in table.to_dict("records")]
        console.print(_claims_table(rows, f"claims ({preset} preset)"))
        kinds = table["kind"] if "kind" in table else pd.Series("claim", index=table.index)
        said = [f"{what}: " + ", ".join(f"{k} {v}" for k, v in sorted(part["verdict"].value_counts().items()))
                for what, part in (("claims", table[kinds == "claim"]), ("our checks", table[kinds == "check"]))
                if len(part)]
        console.print("; ".join(said), f"-> {layout.claims_path(out, preset)}")
        for (p, key), why in unreadable.items():
            err_console.print(f"skipped {_short(p, key)}: {why}", highlight=False, soft_wrap=True)
        if unreadable:
            raise typer.Exit(1)
        if strict and (table["verdict"] == "FAIL").any():
            err_console.print(f"--strict: {int((table['verdict'] == 'FAIL').sum())} claim(s) or check(s) FAIL",
                              highlight=False)
            raise typer.Exit(1)


@app.command("report")
def report_cmd(preset: Preset = "default", out: Out = Path("."), device: Device = "auto",
               costs: Annotated[bool, typer.Option("--costs/--no-costs", help="time each missing figure's --dry-run "
                                                   "cost on this device (else its registered runtime)")] = True
               ) -> None:
    """Write the reproduction report, figures/index.html and figures/README.md, from the CSVs, meta.json files and
    claims present (nothing is recomputed); the claims are checked as `repro verify` does (data/claims.csv)."""
    with user_errors():
        preset = registry.parse_preset(preset).value
        check_out(out)
        dev = runner.pick_device(device) if costs else None
        table, unreadable = verification.verify(registry.figures(), out, preset)

        def cost(fig: registry.Figure) -> str:
            if fig.cost is None:
                return runtimes_mod.cell(fig, preset)
            with console.status(f"--dry-run cost of {_short(fig.paper, fig.key)} on {dev}"):
                est = runner.timed_cost(fig, runner.prepare(fig, preset, []), dev)
            return (f"--dry-run: {est['runs']} {est.get('unit', 'training runs')}, about "
                    f"{report_mod.duration(est['hours'] * 3600)} on {dev} (measured: {runtimes_mod.cell(fig, preset)})")
        entries, page, md = report_mod.build(out, preset, table, cost if costs else None, unreadable)
        folder = report_mod.report_dir(out, preset)
        write_text(page, folder / "index.html")
        write_text(md, folder / "README.md")
        c, k = report_mod.counts(entries), report_mod.counts(entries, checks=True)
        states = {s: n for s in report_mod.STATES                 # current, stale and missing always named (0 stale)
                  if (n := sum(e.state == s for e in entries)) or s in ("current", "stale", "missing")}
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
        except (ValueError, OverflowError):
            raise ReproError(f"--sizes must be comma-separated numbers, got {sizes!r}") from None
        if size_list is not None and (not size_list or min(size_list) <= 0):
            raise ReproError(f"--sizes must be positive, got {sizes!r}")
        check_out(out)
        dev = runner.pick_device(device)
        reproducible_mode(dev)
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


@app.command("ladder")
def ladder_cmd(paper: Annotated[str, typer.Argument(help="paper name or alias")],
               fig: Annotated[str, typer.Argument(help="fig1, fig2, ... or table1")],
               set_: Sets = None, preset: Preset = "default", device: Device = "auto", out: Out = Path("."),
               data_root: DataRoot = None, dry_run: DryRun = False, executor: Executor = "local",
               address: Address = None) -> None:
    """Run a figure at several values of one scale setting (--set steps=2000,8000,40000; other --set values stay
    fixed), each rung a variant through the point cache, and say per claim whether it holds at every rung, fails at
    every rung, moves toward its bound (with the extrapolated crossing) or away: data/<paper>/figN-ladder-<key>.csv
    and its plot. First the plan (each rung's points to compute / cached, estimated time); --dry-run stops there."""
    with user_errors():
        f = registry.figure(paper, fig)
        key, rungs = ladder_mod.rungs(f, set_ or [])
        o = RunOptions(preset, device, 0, [], out, data_root, executor=executor, address=address)
        done = run_rungs(f, rungs, o, dry_run=dry_run)
        if dry_run:
            return
        path, t = ladder_mod.write(f, set_ or [], [res for _, res in done], preset=registry.parse_preset(preset).value,
                                 out=out)
        tab = Table("claim", *(f"{key}={v:g}" for v in t.sort_values("climb").rung.unique()), "ladder")
        for cid, g in t.groupby("claim", sort=False):
            g = g.sort_values("climb")
            tab.add_row(cid, *(f"{r.value:.4g} {r.verdict}" for r in g.itertuples()), g.ladder.iloc[0])
        console.print(tab)
        measured = set(t.claim)
        unmeasured = [c.id for c in f.claims if c.id not in measured]
        if unmeasured:
            console.print(f"not measured at these settings (no value at any rung): {', '.join(unmeasured)}")
        console.print(f"-> {path} (+ png, pdf)")


@app.command("runtimes")
def runtimes_cmd(out: Out = Path("."),
                 source: Annotated[Optional[Path], typer.Option("--from", help="results folder whose meta.json files "
                                                                 "to read (default: --out)")] = None) -> None:
    """Collect the measured wall time of every result (all presets) into data/runtimes.csv: the plan of a run,
    `repro list` and the README table read it."""
    with user_errors():
        check_out(out)
        table, where = runtimes_mod.write(source or out, out)
        console.print(f"{len(table)} measured runtimes -> {where}", highlight=False)


def _list_rows() -> list[dict]:
    """One dict per registered figure (and per paper without figures): what `repro list` shows."""
    figs, rows, measured = registry.figures(), [], runtimes_mod.load()
    for p in registry.PAPERS:
        mine = [f for f in figs if f.paper == p.name]
        for f in mine:
            rows.append({"paper": p.name, "alias": p.alias, "figure": f.key, "title": f.title,
                         "runtime": {k: runtimes_mod.cell(f, k, measured) for k in registry.PRESETS},
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
