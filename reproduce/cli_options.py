"""What every `repro` command shares: the consoles, the option types, and one-line errors (exit 2)."""
from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer
from rich.console import Console

from .config import ReproError

console = Console(soft_wrap=True)      # a line longer than the terminal (or a log) is not broken inside words
err_console = Console(stderr=True, soft_wrap=True)



Preset = Annotated[str, typer.Option("--preset", "-p", help="smoke (seconds, CI; synthetic stand-in data, some "
                                     "training panels off) | default (every trend, reduced scale) | paper (the "
                                     "paper's own settings and the spec's claim tolerances); --dry-run shows them")]
Device = Annotated[str, typer.Option("--device", help="auto (cuda if available) | cpu | cuda")]
Seed = Annotated[int, typer.Option("--seed", help="base seed; each grid point derives its own from it "
                                    "(a seed other than 0 makes a variant unless --promote)")]
Sets = Annotated[Optional[list[str]], typer.Option("--set", "-s", help="override a setting: key=value "
                                                   "(lists comma-separated); repeatable; the result is a variant "
                                                   "written beside the canonical one unless --promote")]
Out = Annotated[Path, typer.Option("--out", help="root folder for data/ and figures/")]
DataRoot = Annotated[Optional[Path], typer.Option("--data-root", help="datasets folder "
                                                  "(default: $REPRO_DATA, else <out>/data/datasets)")]
PlotOnly = Annotated[bool, typer.Option("--plot-only", help="replot and re-check claims from the CSV")]
Force = Annotated[bool, typer.Option("--force", help="ignore cached sweep points and recompute")]
Promote = Annotated[bool, typer.Option("--promote", help="with --set or --seed: write the figure's canonical "
                                       "result (data/<paper>/figN.csv) instead of a variant beside it "
                                       "(data/<paper>/variants/figN-<tag>.csv)")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="print the run count and an estimated cost (from a "
                                      "measured step time on this device); train nothing, write nothing")]
Executor = Annotated[str, typer.Option("--executor", help="local (points one after another here) | ray (one Ray "
                                       "task per point: a local Ray instance over this machine's CPUs and GPUs, or "
                                       "the cluster at --address)")]
Address = Annotated[Optional[str], typer.Option("--address", help="Ray cluster address (host:port or auto; default "
                                                "$REPRO_RAY_ADDRESS, else a local instance)")]
PaperOpt = Annotated[Optional[str], typer.Option("--paper", "-P", help="paper name or alias, e.g. norm")]


def check_out(out: Path) -> None:
    """--out must be a folder we can write to, or one we can create: checked before any work by trying a file in
    it (or in its nearest existing parent), so /proc, a read-only mount or a file named as --out fail at once."""
    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if out.exists() and not out.is_dir():
        raise ReproError(f"--out {out} is a file, not a folder")
    if not probe.is_dir():
        raise ReproError(f"--out {out}: {probe} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise ReproError(f"--out {out}: cannot write in {probe} ({exc.strerror or exc})") from None


@contextmanager
def user_errors() -> Iterator[None]:
    """ReproError -> one line on stderr, exit code 2; an OSError from the file system (a disk that fills, a folder
    removed meanwhile) -> one line, exit 2; Ctrl-C -> one line saying nothing partial was written, exit 130 (a run
    that keeps finished points says so itself)."""
    try:
        yield
    except ReproError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    except OSError as exc:
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        err_console.print(f"[bold red]error:[/] cannot read or write{where}: {exc.strerror or exc}", highlight=False,
                          soft_wrap=True)
        raise typer.Exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted: files are written whole or not at all, so nothing partial was left",
                          highlight=False, soft_wrap=True)
        raise typer.Exit(130)
