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



_FIGS: Sequence[Figure] = ()   # the figures a verify pool works on, and their CSVs (read by forked workers)
_FRAMES: dict[int, pd.DataFrame] = {}


def _claim_result(i: int, j: int, preset: str) -> claims_mod.ClaimResult:
    """Claim j of figure `_FIGS[i]` on its CSV `_FRAMES[i]` (before any check sets it aside)."""
    return claims_mod.evaluate(_FIGS[i].claims[j], _FRAMES[i], draws=bootstrap_draws(preset))


def verify(figs: Sequence[Figure], out: Path, preset: str, workers: int | None = None
           ) -> tuple[pd.DataFrame, dict[tuple[str, str], str]]:
    """Evaluate the claims of every figure whose CSV exists; write data/claims.csv. A CSV that cannot be read does
    not stop the others: returns (claim rows, {(paper, figure): why its CSV was skipped}).

    The CSVs are read first; the claims are then evaluated one by one in `workers` processes (default: one per CPU;
    forked, so they see the frames as read), which keeps both CPUs busy to the end; every claim's bootstrap is seeded
    by its id, so the rows are the same whatever the number of processes."""
    from . import ladder as ladder_mod  # here: the ladder runs figures, which imports this module
    global _FIGS, _FRAMES
    _FIGS, _FRAMES, unreadable = list(figs), {}, {}
    for i, fig in enumerate(_FIGS):
        csv = outputs(fig, out, preset).csv
        if csv.exists():
            try:
                _FRAMES[i] = read_result(csv)
            except ReproError as exc:
                unreadable[fig.paper, fig.key] = str(exc)
    jobs = [(i, j) for i in _FRAMES for j in range(len(_FIGS[i].claims))]
    workers = min(len(jobs), workers or os.cpu_count() or 1)
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            results = list(pool.map(_claim_result, *zip(*jobs), [preset] * len(jobs)))
    else:
        results = [_claim_result(i, j, preset) for i, j in jobs]
    rows = []
    for i in _FRAMES:
        fig = _FIGS[i]
        mine = [r for (k, _), r in zip(jobs, results) if k == i]
        ladders = ladder_mod.causes(outputs(fig, out, preset).csv)
        rows += [{"paper": fig.paper, "figure": fig.key, **dataclasses.asdict(ladder_mod.with_ladder(r, ladders))}
                 for r in claims_mod.set_aside(fig.claims, mine)]
    cols = ["paper", "figure"] + [f.name for f in dataclasses.fields(claims_mod.ClaimResult)]
    table = pd.DataFrame(rows, columns=cols)
    if rows:
        write_csv(table, claims_path(out, preset))
    return table, unreadable
