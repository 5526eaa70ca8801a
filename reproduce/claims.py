"""Claims: a paper's statements as predicates over a figure's CSV (never stored by hand)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import pandas as pd

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"


class Inconclusive(Exception):
    """Raised by a check when the CSV lacks what the claim needs (e.g. a smoke run with fewer widths)."""


@dataclass(frozen=True)
class Claim:
    """`check(df)` returns (value, threshold text, holds); raising Inconclusive gives INCONCLUSIVE."""
    id: str
    text: str
    check: Callable[[pd.DataFrame], tuple[float, str, bool]]


@dataclass(frozen=True)
class ClaimResult:
    id: str
    text: str
    value: float
    threshold: str
    verdict: str
    detail: str = ""


def evaluate(claim: Claim, df: pd.DataFrame) -> ClaimResult:
    """Run one claim on a DataFrame read from the CSV."""
    try:
        value, threshold, holds = claim.check(df)
    except Inconclusive as exc:
        return ClaimResult(claim.id, claim.text, math.nan, "", INCONCLUSIVE, str(exc))
    except KeyError as exc:   # a CSV from another version of the figure
        return ClaimResult(claim.id, claim.text, math.nan, "", INCONCLUSIVE, f"the CSV has no column {exc}")
    value = float(value)
    if math.isnan(value):
        return ClaimResult(claim.id, claim.text, value, threshold, INCONCLUSIVE, "value is NaN")
    return ClaimResult(claim.id, claim.text, value, threshold, PASS if holds else FAIL)


def need(condition: bool, why: str) -> None:
    """Raise Inconclusive(why) unless `condition`."""
    if not condition:
        raise Inconclusive(why)
