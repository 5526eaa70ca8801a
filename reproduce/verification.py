"""Claims from CSVs: read a figure's CSV (refusing a damaged one), evaluate its claims, write data/claims.csv."""
from __future__ import annotations

import concurrent.futures
import csv as csvlib
import dataclasses
import io
import multiprocessing
import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from . import claims as claims_mod
from .config import ReproError
from .io import write_csv
from .layout import claims_path, outputs
from .registry import Figure, Preset, parse_preset


def read_result(csv: Path) -> pd.DataFrame:
    """A figure's CSV, refused (one-line ReproError) when it is cut off, ragged or unreadable."""
    try:
        text = csv.read_bytes().decode()
        rows = list(csvlib.reader(io.StringIO(text)))
    except (OSError, UnicodeDecodeError, csvlib.Error) as exc:
        raise ReproError(f"{csv} cannot be read ({type(exc).__name__}); rerun the figure") from None
    if not text.endswith("\n") or len(rows) < 2 or any(len(r) != len(rows[0]) for r in rows):
        raise ReproError(f"{csv} is cut off or ragged (a row with a different number of fields, or no rows); "
                         "rerun the figure")
    return pd.read_csv(io.StringIO(text))



def bootstrap_draws(preset: str | Preset) -> int:
    """Bootstrap draws per claim: fewer at the smoke preset (a plumbing check, seconds on CI), DRAWS otherwise."""
    return 100 if parse_preset(preset) is Preset.smoke else claims_mod.DRAWS



def evaluate_claims(fig: Figure, df: pd.DataFrame, preset: str | Preset) -> list[claims_mod.ClaimResult]:
    """Claims read only the CSV (`df` as `read_result` returns it)."""
    return claims_mod.evaluate_all(fig.claims, df, draws=bootstrap_draws(preset))



_FIGS: Sequence[Figure] = ()   # the figures a verify pool works on (read by forked workers)


def _figure_claims(i: int, out: Path, preset: str) -> tuple[list[dict], str | None]:
    """Claim rows of figure `_FIGS[i]`, or why its CSV could not be read (None: no CSV)."""
    fig = _FIGS[i]
    csv = outputs(fig, out, preset).csv
    if not csv.exists():
        return [], None
    try:
        df = read_result(csv)
    except ReproError as exc:
        return [], str(exc)
    return [{"paper": fig.paper, "figure": fig.key, **dataclasses.asdict(r)}
            for r in evaluate_claims(fig, df, preset)], None


def verify(figs: Sequence[Figure], out: Path, preset: str, workers: int | None = None
           ) -> tuple[pd.DataFrame, dict[tuple[str, str], str]]:
    """Evaluate the claims of every figure whose CSV exists; write data/claims.csv. A CSV that cannot be read does
    not stop the others: returns (claim rows, {(paper, figure): why its CSV was skipped}).

    Figures are checked in `workers` processes (default: one per CPU; forked, so they see `figs` as given); every
    claim's bootstrap is seeded by its id, so the rows are the same whatever the number of processes."""
    global _FIGS
    _FIGS = list(figs)
    workers = min(len(_FIGS), workers or os.cpu_count() or 1)
    jobs = range(len(_FIGS))
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            results = list(pool.map(_figure_claims, jobs, [out] * len(jobs), [preset] * len(jobs)))
    else:
        results = [_figure_claims(i, out, preset) for i in jobs]
    rows, unreadable = [], {}
    for fig, (fig_rows, problem) in zip(_FIGS, results):
        rows += fig_rows
        if problem:
            unreadable[fig.paper, fig.key] = problem
    cols = ["paper", "figure"] + [f.name for f in dataclasses.fields(claims_mod.ClaimResult)]
    table = pd.DataFrame(rows, columns=cols)
    if rows:
        write_csv(table, claims_path(out, preset))
    return table, unreadable
