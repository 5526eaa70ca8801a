"""Claims: a paper's statements as measures over a figure's CSV, judged with their uncertainty.

A claim is a measure (a statistic of the CSV, e.g. the mean over networks of a deviation, or a log-log slope of
per-width means) plus a bound. The CSV keeps one row (or block of rows) per independent unit (seed, network,
pair, run); the verdict comes from a seeded cluster bootstrap over those units:

- PASS when the whole confidence interval lies inside the bound,
- FAIL when it lies wholly outside,
- INCONCLUSIVE when it straddles the bound, when there are too few units, or when the CSV lacks what the
  claim needs; the `cause` says which.

`exact=True` marks a deterministic check (an identity, a solver residual, a count of NaNs): no resampling, the
interval is the value itself.

A measure that reads the CSV only through per-group sums (`sums=Sums(keys, cols)`) takes a `Totals`: every copy's
sums are its unit counts times the units' own sums, one matrix product for all draws (same draws, same values).
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
LEVEL, DRAWS = 0.95, 400


class Inconclusive(Exception):
    """Raised by a measure when the CSV lacks what the claim needs (e.g. a smoke run with fewer widths)."""


def need(condition: bool, why: str) -> None:
    """Raise Inconclusive(why) unless `condition`."""
    if not condition:
        raise Inconclusive(why)


def _num(x: float) -> str:
    return f"{x:.4g}"


@dataclass(frozen=True)
class Bound:
    """An interval [lo, hi] (either end may be infinite) the measure must lie in; renders its own text."""
    lo: float = -math.inf
    hi: float = math.inf
    what: str = ""       # what the measure is, e.g. "(RMS deviation from the chord / RMS change)"

    def text(self) -> str:
        if math.isinf(self.lo):
            core = f"<= {_num(self.hi)}"
        elif math.isinf(self.hi):
            core = f">= {_num(self.lo)}"
        else:
            core = f"in [{_num(self.lo)}, {_num(self.hi)}]"
        return f"{core} {self.what}".strip()

    def contains(self, x: float) -> bool:
        return self.lo <= x <= self.hi

    def judge(self, low: float, high: float) -> str:
        """PASS when [low, high] lies inside, FAIL when wholly outside, INCONCLUSIVE when it straddles an end."""
        if self.lo <= low and high <= self.hi:
            return PASS
        if high < self.lo or low > self.hi:
            return FAIL
        return INCONCLUSIVE


def below(x: float, what: str = "") -> Bound:
    """measure <= x."""
    return Bound(hi=x, what=what)


def above(x: float, what: str = "") -> Bound:
    """measure >= x."""
    return Bound(lo=x, what=what)


def between(lo: float, hi: float, what: str = "") -> Bound:
    """lo <= measure <= hi."""
    return Bound(lo, hi, what)


@dataclass(frozen=True)
class Sums:
    """What a `Totals` measure reads: the sums of `cols` (and the row count "n") per group of `keys`."""
    keys: tuple[str, ...]
    cols: tuple[str, ...]


@dataclass(frozen=True)
class Totals:
    """Per-group sums for a stack of B copies of a CSV: `groups` (G rows: the keys, sorted), `values` (B, G, C + 1):
    the `Sums.cols` then the row count "n". `t[name]` -> (B, G)."""
    groups: pd.DataFrame
    names: tuple[str, ...]
    values: np.ndarray

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[..., self.names.index(name)]


def slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of each row of y (B, G) against x (G,): (B,) (a Totals measure's log-log slope)."""
    dx = np.asarray(x, float) - np.mean(x)
    return (y - y.mean(axis=-1, keepdims=True)) @ dx / (dx @ dx)


@dataclass(frozen=True)
class Claim:
    """`measure(df)` -> float on the CSV (or a bootstrap resample of its units); `bound` (or `bound(df)`, when
    it depends on a setting stored in the CSV) decides. `unit`: the columns whose distinct values are the
    independent units; `strata`: columns within which units are resampled (independent networks per width);
    `info(df)`: optional context appended to the threshold text (e.g. per-dataset values)."""
    id: str
    text: str
    measure: Callable[[pd.DataFrame], float]
    bound: Bound | Callable[[pd.DataFrame], Bound]
    unit: tuple[str, ...] = ("seed",)
    strata: tuple[str, ...] = ()
    exact: bool = False
    min_units: int = 3
    info: Callable[[pd.DataFrame], str] | None = None
    reduce: Callable[[pd.DataFrame], pd.DataFrame] | None = None   # rows the measure reads, taken once (speed)
    source: str = ""          # where the bound comes from: paper (file, section), spec, derivation, or "chosen: ..."
    kind: str = "claim"       # "claim": the paper's statement; "check": our own run's health (not the paper's)
    cells: tuple[str, ...] = ()    # "in every cell": each cell (e.g. dataset, m) judged on its own interval
    affects: tuple[str, ...] = ()  # a check: the claims it makes INCONCLUSIVE when it fails (empty: every claim)
    sums: Sums | None = None       # set: `measure(Totals) -> (B,)` reads only these sums (the stacked bootstrap)


@dataclass(frozen=True)
class ClaimResult:
    id: str
    text: str
    value: float
    ci_low: float
    ci_high: float
    units: int
    threshold: str
    verdict: str
    cause: str = ""
    draws: int = 0            # bootstrap resamples behind the interval (0: not resampled)
    bound_source: str = ""    # Claim.source
    kind: str = "claim"       # Claim.kind
    cell: str = ""            # per-cell claims: the cell that decides the verdict (the worst, or a failing one)


def _clusters(df: pd.DataFrame, unit: Sequence[str], strata: Sequence[str]
              ) -> tuple[list[list[np.ndarray]], np.ndarray]:
    """Row positions of every unit, grouped by stratum ([[rows of unit 1, rows of unit 2, ...], ...]), and the
    shared rows (no unit value, e.g. a theory curve), which every resample keeps."""
    keys = list(strata) + list(unit)
    shared = df[list(unit)].isna().all(axis=1).to_numpy()
    codes = df.groupby(keys, sort=True, dropna=False).ngroup().to_numpy().copy()
    codes[shared] = -1
    order = np.argsort(codes, kind="stable")
    order = order[codes[order] >= 0]
    rows = np.split(order, np.flatnonzero(np.diff(codes[order])) + 1) if len(order) else []
    if not strata:
        return [rows], np.flatnonzero(shared)
    scodes = df.groupby(list(strata), sort=True, dropna=False).ngroup().to_numpy()
    out: dict[int, list[np.ndarray]] = {}
    for r in rows:
        out.setdefault(int(scodes[r[0]]), []).append(r)
    return [out[k] for k in sorted(out)], np.flatnonzero(shared)


def _draw(clusters: list[list[np.ndarray]], rng: np.random.Generator) -> tuple[tuple[int, ...], ...]:
    """One bootstrap draw: per stratum, its units' indices drawn with replacement, sorted (the multiset drawn)."""
    return tuple(tuple(np.sort(rng.integers(0, len(s), len(s))).tolist()) for s in clusters)


def _resample(df: pd.DataFrame, clusters: list[list[np.ndarray]], shared: np.ndarray, unit: Sequence[str],
              draw: tuple[tuple[int, ...], ...]) -> pd.DataFrame:
    """The bootstrap copy of one draw: the drawn units' rows, each draw of a unit a new unit id."""
    parts, ids = [shared], [np.full(len(shared), -1)]
    for stratum, picks in zip(clusters, draw):
        for j in picks:
            parts.append(stratum[j])
            ids.append(np.full(len(stratum[j]), len(ids)))
    out = df.iloc[np.concatenate(parts)]
    new = np.concatenate(ids).astype(float)
    new[: len(shared)] = np.nan
    return out.assign(**{unit[0]: new})


def claim_seed(claim_id: str, seed: int) -> int:
    """The bootstrap's seed: the base seed and the claim id (so claims do not share draws)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{claim_id}".encode()).digest()[:8], "little")


def bootstrap(df: pd.DataFrame, measure: Callable[[pd.DataFrame], float], unit: Sequence[str],
              strata: Sequence[str] = (), level: float = LEVEL, draws: int = DRAWS, seed: int = 0,
              clusters: tuple[list[list[np.ndarray]], np.ndarray] | None = None,
              stacked: Callable[[list], np.ndarray] | None = None) -> tuple[float, float, int]:
    """Percentile interval of `measure` over `draws` cluster-bootstrap copies of `df`; also the number of
    draws where the measure was undefined (a resample missing what it needs). `clusters`: _clusters(df, unit,
    strata) when the caller has it.

    A copy is determined by the multiset of units drawn in each stratum (a measure does not depend on the order or
    the ids of its units), so the measure runs once per distinct multiset: with 3 units there are 10, with 5 126,
    which makes the bootstrap of few-unit claims tens of times faster for the same draws and the same interval.
    `stacked`: the measure of a `sums` claim on a list of draws at once (`_stacked`), instead of `measure`."""
    clusters, shared = clusters or _clusters(df, unit, strata)
    if stacked is not None:
        rng = np.random.default_rng(seed)
        try:
            with np.errstate(all="ignore"):
                every = [float(v) for v in stacked([_draw(clusters, rng) for _ in range(draws)])]
        except (Inconclusive, LookupError, ValueError, ZeroDivisionError, FloatingPointError):
            every = [math.nan] * draws
    else:
        rng, seen, every = np.random.default_rng(seed), {}, []
        for _ in range(draws):
            draw = _draw(clusters, rng)
            if draw not in seen:
                try:
                    seen[draw] = float(measure(_resample(df, clusters, shared, unit, draw)))
                except (Inconclusive, LookupError, ValueError, ZeroDivisionError, FloatingPointError):
                    seen[draw] = math.nan   # this resample lacks what the measure needs (e.g. every drawn run diverged)
            every.append(seen[draw])
    values = [v for v in every if math.isfinite(v)]
    bad = len(every) - len(values)
    if not values:
        return math.nan, math.nan, bad
    a = (1 - level) / 2
    lo, hi = np.quantile(values, [a, 1 - a])
    return float(lo), float(hi), bad


def _unit_sums(df: pd.DataFrame, sums: Sums, clusters: list[list[np.ndarray]], shared: np.ndarray
               ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(groups (G rows), per-unit sums (U, G, C + 1), units in `clusters` order, the shared rows' sums (G, C + 1))."""
    grouped = df.groupby(list(sums.keys), sort=True, dropna=False)
    gid = grouped.ngroup().to_numpy()
    groups = grouped.size().reset_index()[list(sums.keys)]
    x = np.column_stack([df[list(sums.cols)].to_numpy(float), np.ones(len(df))])
    rows = [r for stratum in clusters for r in stratum]
    uid = np.full(len(df), -1)
    for u, r in enumerate(rows):
        uid[r] = u
    per_unit, own = np.zeros((len(rows), len(groups), x.shape[1])), uid >= 0
    np.add.at(per_unit, (uid[own], gid[own]), x[own])
    common = np.zeros((len(groups), x.shape[1]))
    np.add.at(common, gid[shared], x[shared])
    return groups, per_unit, common


def _stacked(df: pd.DataFrame, claim: Claim, clusters: list[list[np.ndarray]], shared: np.ndarray
             ) -> Callable[[list | None], np.ndarray]:
    """A `sums` claim's measure on draws -> (B,): on the whole CSV (None: B = 1) or on each bootstrap copy in a list
    of draws (the units' own sums are taken once, here)."""
    groups, per_unit, common = _unit_sums(df, claim.sums, clusters, shared)
    names = tuple(claim.sums.cols) + ("n",)
    offsets = np.cumsum([0] + [len(s) for s in clusters])[:-1]

    def measure(draws: list | None) -> np.ndarray:
        if draws is None:
            counts = np.ones((1, len(per_unit)))
        else:
            counts = np.zeros((len(draws), len(per_unit)))
            for b, draw in enumerate(draws):
                for off, picks in zip(offsets, draw):
                    np.add.at(counts[b], off + np.asarray(picks, dtype=int), 1)
        return np.asarray(claim.measure(Totals(groups, names, np.einsum("bu,ugc->bgc", counts, per_unit) + common)))
    return measure


def _margin(bound: Bound, lo: float, hi: float) -> float:
    """How far [lo, hi] lies inside the bound (negative: outside); the worst cell has the smallest."""
    return min(bound.hi - hi, lo - bound.lo)


def evaluate(claim: Claim, df: pd.DataFrame, seed: int = 0, level: float = LEVEL,
             draws: int = DRAWS) -> ClaimResult:
    """Run one claim on a DataFrame read from the CSV. With `cells`, each cell is judged on its own interval:
    PASS when every cell passes, FAIL when one fails, else INCONCLUSIVE naming the undecided cell; the reported
    value and interval are those of the deciding cell (a failing one, else the worst)."""
    if not claim.cells:
        return _evaluate(claim, df, seed, level, draws)
    try:
        df = claim.reduce(df) if claim.reduce else df
        need(set(claim.cells) <= set(df.columns), f"the CSV has no column {'/'.join(claim.cells)}")
        need(len(df) > 0, "no rows")
    except Inconclusive as exc:
        why = str(exc)
        return _evaluate(dataclasses.replace(claim, cells=(), reduce=None, measure=lambda d: need(False, why)), df,
                         seed, level, draws)
    one = dataclasses.replace(claim, cells=(), reduce=None)
    shared = df[list(claim.unit)].isna().all(axis=1) if set(claim.unit) <= set(df.columns) else None
    results = []
    for key, part in df.groupby(list(claim.cells), sort=True, dropna=False):
        if shared is not None and shared.any():   # rows without a unit (a theory curve) belong to every cell
            part = pd.concat([part, df[shared & ~df.index.isin(part.index)]])
        name = ", ".join(f"{c}={v}" for c, v in zip(claim.cells, key if isinstance(key, tuple) else (key,)))
        results.append((name, _evaluate(one, part, seed, level, draws)))
    verdicts = [r.verdict for _, r in results]
    bound_of = claim.bound if isinstance(claim.bound, Bound) else None

    def worst(cands):
        """The cell whose interval (or value, where there is none) lies least inside the bound."""
        def margin(r):
            lo, hi = (r.ci_low, r.ci_high) if math.isfinite(r.ci_low) else (r.value, r.value)
            return _margin(bound_of, lo, hi) if math.isfinite(lo) else math.inf
        return cands[0] if bound_of is None or len(cands) == 1 else min(cands, key=lambda nr: margin(nr[1]))
    if FAIL in verdicts:
        name, r = worst([nr for nr in results if nr[1].verdict == FAIL])
        verdict, cause = FAIL, f"{name}: {r.cause}"
    elif all(v == PASS for v in verdicts):
        name, r = worst(results)
        verdict, cause = PASS, ""
    else:
        undecided = [nr for nr in results if nr[1].verdict != PASS]
        name, r = worst(undecided)
        others = f" (and {len(undecided) - 1} more cells)" if len(undecided) > 1 else ""
        verdict, cause = INCONCLUSIVE, f"{name}: {r.cause}{others}"
    per = "; ".join(f"{n}: {_num(x.value)}" for n, x in results)
    head = bound_of.text() if bound_of is not None and r.threshold.startswith(bound_of.text()) else r.threshold
    threshold = f"{head}, in every {'/'.join(claim.cells)} (worst shown); {per}{r.threshold[len(head):]}"
    return dataclasses.replace(r, verdict=verdict, cause=cause, threshold=threshold, cell=name)


def _evaluate(claim: Claim, df: pd.DataFrame, seed: int = 0, level: float = LEVEL,
              draws: int = DRAWS) -> ClaimResult:
    """One claim on one frame (no cells)."""
    def result(value=math.nan, lo=math.nan, hi=math.nan, n=0, threshold="", verdict=INCONCLUSIVE, cause="", b=0):
        return ClaimResult(claim.id, claim.text, value, lo, hi, n, threshold, verdict, cause, b, claim.source,
                           claim.kind)
    try:
        df = claim.reduce(df) if claim.reduce else df
        bound = claim.bound(df) if callable(claim.bound) else claim.bound
        threshold = bound.text() + (f"; {claim.info(df)}" if claim.info else "")
        has_units = set(claim.unit) | set(claim.strata) <= set(df.columns)
        groups = _clusters(df, claim.unit, claim.strata) if has_units or not claim.exact else None
        stacked = None
        if claim.sums is not None:
            need(groups is not None, f"the CSV has no column {'/'.join(claim.unit)}")
            stacked = _stacked(df, claim, *groups)
            with np.errstate(all="ignore"):
                value = float(stacked(None)[0])
        else:
            value = float(claim.measure(df))
        sizes = [len(s) for s in groups[0]] or [0] if groups else [1]   # units per stratum
        n, smallest = sum(sizes), min(sizes)
    except Inconclusive as exc:
        return result(cause=str(exc))
    except KeyError as exc:   # a CSV from another version of the figure
        return result(cause=f"the CSV has no column {exc}")
    if math.isnan(value):
        return result(n=n, threshold=threshold, cause="the measure is NaN")
    if claim.exact:
        ok = bound.contains(value)
        return result(value, value, value, n, threshold, PASS if ok else FAIL,
                      "" if ok else f"{_num(value)} is outside the bound (deterministic check)")
    small = n < claim.min_units or (claim.strata and smallest < 2)
    if small:
        per = f", {smallest} in the smallest {'/'.join(claim.strata)}" if claim.strata else ""
        return result(value, n=n, threshold=threshold,
                      cause=f"too few units to judge: {n} {'/'.join(claim.unit)}{per} (needs {claim.min_units}"
                            f"{' and 2 per stratum' if claim.strata else ''})")
    lo, hi, bad = bootstrap(df, claim.measure, claim.unit, claim.strata, level, draws, claim_seed(claim.id, seed),
                            groups, stacked)
    if bad > draws // 10:
        return result(value, lo, hi, n, threshold,
                      cause=f"the measure is undefined on {bad} of {draws} bootstrap resamples", b=draws)
    verdict = bound.judge(lo, hi)
    cause = {PASS: "", FAIL: f"the {level:.0%} interval over {n} units lies outside the bound",
             INCONCLUSIVE: f"the {level:.0%} interval over {n} units straddles the bound"}[verdict]
    return result(value, lo, hi, n, threshold, verdict, cause, draws)


def evaluate_all(claims: Sequence[Claim], df: pd.DataFrame, seed: int = 0, draws: int = DRAWS) -> list[ClaimResult]:
    """Every claim and check of a figure (`evaluate`), then `set_aside`."""
    return set_aside(claims, [evaluate(c, df, seed, draws=draws) for c in claims])


def set_aside(claims: Sequence[Claim], out: Sequence[ClaimResult]) -> list[ClaimResult]:
    """A check that FAILs marks the claims it affects (all of them when its `affects` is empty) INCONCLUSIVE, naming
    the check: a run that failed its own check decides nothing there. `out`: the results of `claims`, in order."""
    out = list(out)
    failed = [(c, r) for c, r in zip(claims, out) if c.kind == "check" and r.verdict == FAIL]
    for i, (c, r) in enumerate(zip(claims, out)):
        if c.kind == "check":
            continue
        hits = [f"check {k.id} failed" + (f" ({kr.cause})" if kr.cause else "")
                for k, kr in failed if not k.affects or c.id in k.affects]
        if hits:
            was = f"{r.verdict} set aside" if r.verdict != INCONCLUSIVE else r.cause
            out[i] = dataclasses.replace(r, verdict=INCONCLUSIVE, cause="; ".join([was] + hits))
    return out
