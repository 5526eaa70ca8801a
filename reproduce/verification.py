"""Claims from CSVs: read a figure's CSV (refusing a damaged one), evaluate its claims, write data/claims.csv."""
from __future__ import annotations

import csv as csvlib
import dataclasses
import io
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



def verify(figs: Sequence[Figure], out: Path, preset: str) -> tuple[pd.DataFrame, dict[tuple[str, str], str]]:
    """Evaluate the claims of every figure whose CSV exists; write data/claims.csv. A CSV that cannot be read does
    not stop the others: returns (claim rows, {(paper, figure): why its CSV was skipped})."""
    rows, unreadable = [], {}
    for fig in figs:
        csv = outputs(fig, out, preset).csv
        if not csv.exists():
            continue
        try:
            df = read_result(csv)
        except ReproError as exc:
            unreadable[fig.paper, fig.key] = str(exc)
            continue
        for r in evaluate_claims(fig, df, preset):
            rows.append({"paper": fig.paper, "figure": fig.key, **dataclasses.asdict(r)})
    cols = ["paper", "figure"] + [f.name for f in dataclasses.fields(claims_mod.ClaimResult)]
    table = pd.DataFrame(rows, columns=cols)
    if rows:
        write_csv(table, claims_path(out, preset))
    return table, unreadable
