"""Scale ladders (`repro ladder`): one figure at several values ("rungs") of one scale setting, to tell whether a
claim that fails at our reduced scale is closing its gap as the run grows toward the paper's settings.

Each rung is the figure run with `--set key=value` as a variant (never the canonical result), through the point
cache, so a killed ladder resumes where it stopped. The ladder writes `data/<paper>/figN-ladder-<key>.csv` (every
claim's value, interval and verdict at every rung, and the ladder's verdict per claim) and a plot of each claim
against the rung with its bound and the paper's value of the setting marked.

The rungs climb in the order they are given (steps=2000,4000,8000; stop_loss=0.01,0.001,0.0001 climbs down toward
the paper's 1e-4): "first" and "last" below follow that order, not the size of the value.

Ladder verdicts per claim, from the rungs' values and their distance to the bound ("margin": how far inside the
bound, negative outside):
- holds at every rung: PASS at each;
- inside the bound at every rung: the value meets the bound at each, but some rung is not a PASS (its interval
  reaches outside, or a check of the run failed);
- moves toward the bound: the margin grows from the first to the last rung by more than the last rung's interval
  half-width and the last rung is not a PASS; with a log-linear fit of the margin against the rung that crosses 0
  beyond the last rung, that rung is given, marked as an extrapolation;
- moves away: the margin shrinks by more than that;
- fails at every rung: FAIL at each, without a trend beyond the noise;
- otherwise undecided.
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from . import claims as claims_mod
from . import layout, plotting, runner
from .config import ReproError, parse_value
from .io import write_csv
from .registry import Figure
from .verification import read_result

HOLDS, INSIDE, TOWARD, AWAY, FAILS, UNDECIDED = ("holds at every rung", "inside the bound at every rung",
                                                 "moves toward the bound", "moves away", "fails at every rung",
                                                 "undecided")


def split_sets(fig: Figure, sets: Sequence[str]) -> tuple[str, list[str], list[str]]:
    """(ladder key, its rung values as given, the other --set overrides): the ladder key is the one setting given
    several values separated by "/" (depths=50/100/300; a list setting's rung may hold commas), or a scalar
    setting given several comma-separated values (steps=2000,8000)."""
    fields = {f.name: f for f in dataclasses.fields(fig.config)}
    key, rungs, fixed = None, [], []
    for s in sets:
        k, _, v = s.partition("=")
        k = k.strip()
        if k not in fields:
            raise ReproError(f"--set {k}: {fig.paper} {fig.key} has no setting {k!r}")
        scalar = not str(fields[k].type).startswith("tuple")
        parts = [p.strip() for p in v.split("/" if "/" in v or not scalar else ",") if p.strip()]
        if len(parts) > 1:
            if key is not None:
                raise ReproError(f"a ladder climbs one setting; got {key} and {k}")
            key, rungs = k, parts
        else:
            fixed.append(s)
    if key is None:
        raise ReproError("name the rungs: --set key=v1,v2,... or key=v1/v2/... (one setting, two or more values)")
    for v in rungs:
        parse_value(fig.config, key, v)     # a bad value is a one-line error before anything runs
    return key, rungs, fixed


def rung_number(value) -> float:
    """A rung's position on the plot's axis: the value, or the largest of a list setting's values."""
    return float(max(value) if isinstance(value, tuple) else value)


def ladder_path(out: Path, fig: Figure, key: str, preset: str) -> Path:
    """data/<paper>/figN-ladder-<key>.csv (under data/<preset>/ for a preset other than default)."""
    return layout.outputs(fig, out, preset).csv.with_name(f"{fig.key}-ladder-{key}.csv")


def margin(value: float, lo: float, hi: float) -> float:
    """How far `value` lies inside [lo, hi] (negative: outside), on the measure's own scale."""
    return min(value - lo, hi - value)


def verdict(rungs: Sequence[float], values: Sequence[float], lows: Sequence[float], highs: Sequence[float],
            bound: tuple[float, float], verdicts: Sequence[str]) -> tuple[str, float]:
    """(ladder verdict, extrapolated rung where the bound would be crossed or NaN) for one claim; rungs in climb
    order (increasing or decreasing)."""
    lo, hi = bound
    m = np.array([margin(v, lo, hi) for v in values], float)
    ok = np.isfinite(m)
    if all(v == claims_mod.PASS for v in verdicts):
        return HOLDS, math.nan
    if ok.sum() < 2:
        return UNDECIDED, math.nan
    if ok.all() and (m >= 0).all():
        return INSIDE, math.nan
    x = np.log(np.asarray(rungs, float)[ok])
    m = m[ok]
    last = int(np.flatnonzero(ok)[-1])
    noise = (highs[last] - lows[last]) / 2 if np.isfinite(highs[last] - lows[last]) else 0.0
    change = m[-1] - m[0]
    if change > noise and verdicts[last] != claims_mod.PASS:
        b, a = np.polyfit(x, m, 1)
        z = -a / b if b != 0 else math.nan          # log of the rung where the fitted margin reaches 0
        beyond = z > x[-1] if x[-1] > x[0] else z < x[-1]   # past the last rung, climbing on
        return TOWARD, math.exp(z) if beyond and abs(z) < 700 else math.nan   # a crossing past e^700: none to say
    if change < -noise:
        return AWAY, math.nan
    if all(v == claims_mod.FAIL for v in verdicts):
        return FAILS, math.nan
    return UNDECIDED, math.nan


def _step(r) -> str:
    """'100: 0.5 PASS' for one rung of a ladder CSV; a rung without a value says why ('no value (needs ...)')."""
    if pd.notna(r.value):
        return f"{r.rung:g}: {r.value:.3g} {r.verdict}"
    why = getattr(r, "cause", "")
    return f"{r.rung:g}: no value" + (f" ({why})" if isinstance(why, str) and why else "")


def causes(csv: Path) -> dict[str, list[str]]:
    """Per claim id, what its scale ladders (figN-ladder-<key>.csv beside the figure's CSV, `repro ladder`) say, one
    clause each: the rungs' values and the ladder's verdict."""
    said: dict[str, list[str]] = {}
    for path in sorted(csv.parent.glob(f"{csv.stem}-ladder-*.csv")):
        try:
            t = pd.read_csv(path)
        except (OSError, ValueError):
            continue
        for cid, g in t.sort_values("climb").groupby("claim", sort=False):
            key, verdict = g["setting"].iloc[0], g["ladder"].iloc[0]
            steps = ", ".join(_step(r) for r in g.itertuples())
            cross = g["crossing_extrapolated"].iloc[0]
            where = f"; extrapolated to cross the bound at {key} ~ {cross:.3g}" if pd.notna(cross) else ""
            if verdict == TOWARD:
                text = f"reduced scale: moves toward the bound along {key} ({steps}){where}"
            elif verdict == HOLDS:
                text = f"reduced scale: holds at every rung of {key} ({steps})"
            elif verdict == INSIDE:
                text = f"inside the bound at every rung of {key}, not decided at some ({steps})"
            elif verdict in (AWAY, FAILS) and g["kind"].iloc[0] == "check":   # a check judges our runs, not the paper
                text = f"our runs: {verdict} along {key} ({steps})"
            elif verdict in (AWAY, FAILS):
                text = (f"not our scale: {verdict} along {key} ({steps}); the paper does not hold here as far as "
                        f"{key} = {g.rung.iloc[-1]:g}")
            else:
                text = f"the {key} ladder is undecided ({steps})"
            said.setdefault(cid, []).append(text)
    return said


def with_ladder(r: claims_mod.ClaimResult, ladders: dict[str, list[str]]) -> claims_mod.ClaimResult:
    """A FAIL or INCONCLUSIVE with its ladders' findings appended to its cause."""
    if r.verdict == claims_mod.PASS or r.id not in ladders:
        return r
    return dataclasses.replace(r, cause="; ".join([c for c in [r.cause] if c] + ladders[r.id]))


def _bound(claim: claims_mod.Claim, df: pd.DataFrame) -> tuple[float, float]:
    b = claim.bound(df) if callable(claim.bound) else claim.bound
    return b.lo, b.hi


def table(fig: Figure, key: str, results: list[tuple[str, Path, list[claims_mod.ClaimResult]]],
          out: Path = Path(".")) -> pd.DataFrame:
    """One row per (rung, claim): value, interval, bound, verdict, the rung's CSV (relative to `out`, so a committed
    ladder names files of the checkout); then each claim's ladder verdict. A claim with no value at any rung (what the
    ladder's settings leave out, e.g. the panels other than the one climbed) is left out."""
    rows = []
    by_id = {c.id: c for c in fig.claims}
    for climb, (rung, csv, res) in enumerate(results):
        df = read_result(csv)
        for r in res:
            lo, hi = _bound(by_id[r.id], df)
            rows.append({"setting": key, "rung": float(rung), "climb": climb, "claim": r.id, "text": r.text,
                         "kind": r.kind,
                         "value": r.value, "ci_low": r.ci_low, "ci_high": r.ci_high, "units": r.units,
                         "bound_lo": lo, "bound_hi": hi, "verdict": r.verdict, "cause": r.cause,
                         "margin": margin(r.value, lo, hi),
                         "csv": Path(os.path.relpath(csv, out)).as_posix()})
    t = pd.DataFrame(rows)
    per_claim = []
    for cid, g in t.groupby("claim", sort=False):
        if not g.value.notna().any():   # not measured at these settings (a panel the ladder's --set leaves out)
            continue
        g = g.sort_values("climb")
        v, cross = verdict(g.rung.tolist(), g.value.tolist(), g.ci_low.tolist(), g.ci_high.tolist(),
                           (g.bound_lo.iloc[-1], g.bound_hi.iloc[-1]), g.verdict.tolist())
        per_claim.append(g.assign(ladder=v, crossing_extrapolated=cross))
    return pd.concat(per_claim, ignore_index=True)


def plot(t: pd.DataFrame, fig: Figure, key: str, paper_value) -> object:
    """Each claim's value (interval) against the rung, its bound dashed, the paper's value of the setting dotted; a
    rung without a value is marked "no value" (its reason is in the ladder CSV's cause column)."""
    ids = list(dict.fromkeys(t.claim))
    cols = min(4, len(ids))
    rows = -(-len(ids) // cols)
    mpl, axes = plotting.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, cid in zip(axes.flat, ids):
        g = t[t.claim == cid].sort_values("climb")
        err = np.vstack([g.value - g.ci_low, g.ci_high - g.value]).clip(min=0)
        ax.errorbar(g.rung, g.value, yerr=np.nan_to_num(err), fmt="o-", ms=4, capsize=3)
        for r in g.rung[g.value.isna()]:      # a rung where the claim has no value: said there, not left blank
            ax.annotate("no value", (r, 0.5), xycoords=("data", "axes fraction"), ha="center", fontsize=7,
                        color="grey", rotation=90)
        for b in (g.bound_lo.iloc[-1], g.bound_hi.iloc[-1]):
            if np.isfinite(b):
                ax.axhline(b, color="C3", ls="--", lw=1)
        if paper_value is not None:
            ax.axvline(rung_number(paper_value), color="grey", ls=":", lw=1)
        if (g.rung > 0).all():
            ax.set_xscale("log")
        ax.set_xticks(g.rung, [f"{r:g}" for r in g.rung])
        ax.minorticks_off()
        ax.set_title(f"{cid}: {g.ladder.iloc[0]}", fontsize=8)
        ax.set_xlabel(key)
    for ax in list(axes.flat)[len(ids):]:
        ax.set_visible(False)
    shown = ",".join(map(str, paper_value)) if isinstance(paper_value, tuple) else paper_value
    note = f"; paper {key} = {shown} (dotted)" if paper_value is not None else ""
    mpl.suptitle(f"{fig.paper} {fig.key}: claims against {key} (dashed: bound{note})", fontsize=9)
    mpl.tight_layout()
    return mpl


def rungs(fig: Figure, sets: Sequence[str]) -> tuple[str, list[tuple[str, list[str]]]]:
    """(ladder key, [(rung label "key=value", that rung's --set overrides)]): the fixed overrides and the rung's."""
    key, values, fixed = split_sets(fig, sets)
    return key, [(f"{key}={v}", [*fixed, f"{key}={v}"]) for v in values]


def write(fig: Figure, sets: Sequence[str], results: Sequence[runner.RunResult], *, preset: str = "default",
          out: Path = Path(".")) -> tuple[Path, pd.DataFrame]:
    """From every rung's result (in rung order): the ladder CSV and its plot; (CSV path, table)."""
    key, values, _ = split_sets(fig, sets)
    t = table(fig, key, [(rung_number(parse_value(fig.config, key, v)), res.outputs.csv, res.claims)
                         for v, res in zip(values, results)], out)
    path = ladder_path(out, fig, key, preset)
    write_csv(t, path)
    paper_value = getattr(runner.prepare(fig, "paper", []), key, None)
    png = layout.outputs(fig, out, preset).png.with_name(f"{fig.key}-ladder-{key}.png")
    plotting.save(plot(t, fig, key, paper_value), png, footer=f"repro ladder {fig.paper} {fig.key} " +
                  " ".join(f"--set {s}" for s in sets) + (f" --preset {preset}" if preset != "default" else ""))
    return path, t


def run(fig: Figure, sets: Sequence[str], *, preset: str = "default", device="auto", out: Path = Path("."),
        data_root: Path | None = None, rung_done: Callable[[str, runner.RunResult], None] = lambda v, r: None
        ) -> tuple[Path, pd.DataFrame]:
    """Run every rung here, one after another (cached points are reused), then `write`; (CSV path, table). The
    command line runs the rungs through its display and executor (cli_run.run_rungs) instead."""
    _, plan = rungs(fig, sets)
    results = []
    for label, overrides in plan:
        res = runner.run_figure(fig, preset=preset, overrides=overrides, device=device, out=out, data_root=data_root)
        assert res.variant is not None, "a ladder rung is always a variant"
        rung_done(label.partition("=")[2], res)
        results.append(res)
    return write(fig, sets, results, preset=preset, out=out)
