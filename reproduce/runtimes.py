"""Measured runtimes: each figure's wall time per preset and device, collected from the meta.json files of a
results folder into data/runtimes.csv (committed; `repro runtimes`). The plan of a run, `repro list` and the
README table read them, so no runtime is a hand-written string."""
from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import pandas as pd

from . import registry
from .io import write_csv
from .layout import outputs

COLUMNS = ["paper", "figure", "preset", "device", "device_name", "points", "points_computed", "wall_s", "per_point_s",
           "scratch_s", "untimed_runs", "date", "git"]


def duration(s) -> str:
    """Seconds in words: 40 s, 12 min, 3.5 h ('?' when unknown)."""
    if not isinstance(s, (int, float)) or not math.isfinite(s):
        return "?"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"


def per_point(meta: dict) -> float | None:
    """Wall seconds per computed point of the run a meta.json records (None: it computed nothing, or no record)."""
    try:
        computed, wall = int(meta["points_computed"]), float(meta["wall_time_s"])
    except (KeyError, TypeError, ValueError):
        return None
    return wall / computed if computed > 0 else None


def scratch(row: dict) -> float:
    """A figure's CPU seconds from scratch: the sum of its points' own compute times where every point recorded one
    (a run shared with another figure counts where it was computed), else wall time per computed point x points."""
    s = row.get("scratch_s")
    return float(s) if isinstance(s, (int, float)) and math.isfinite(s) else \
        float(row["per_point_s"]) * float(row["points"])


def untimed(row: dict) -> int:
    """How many reused runs a row's from-scratch time leaves out (made before run times were recorded)."""
    try:
        n = float(row.get("untimed_runs"))   # numpy ints and floats alike; blank (NaN, NA) in older rows
    except (TypeError, ValueError):
        return 0
    return int(n) if math.isfinite(n) else 0


def _orphans(metas: dict[str, dict]) -> dict[str, dict[str, float | None]]:
    """Per figure (registry order), the reused runs that no figure's points computed (their cost is in no point's
    time: made by points since re-keyed): each attributed once, to the first figure that reuses it."""
    made = {n for m in metas.values() for n in ((m.get("points_seconds") or {}).get("runs_computed") or {})}
    out, seen = {}, set()
    for key, meta in metas.items():
        reused = (meta.get("points_seconds") or {}).get("runs_reused") or {}
        out[key] = {n: s for n, s in reused.items() if n not in made and n not in seen}
        seen |= set(out[key])
    return out


def path(root: Path = registry.ROOT) -> Path:
    """data/runtimes.csv under `root` (the checkout by default)."""
    return root / "data" / "runtimes.csv"


def collect(out: Path) -> pd.DataFrame:
    """One row per canonical result under `out` (every preset) whose run computed points: its measured wall time,
    and its from-scratch seconds (its points' own times plus the runs it reused that no figure's points made)."""
    rows = []
    for preset in registry.PRESETS:
        metas = {}
        for fig in registry.figures():
            try:
                metas[fig.key, fig.paper] = (fig, json.loads(outputs(fig, out, preset).meta.read_text()))
            except (OSError, ValueError):
                continue
        orphans = _orphans({k: m for k, (_, m) in metas.items()})
        for key, (fig, meta) in metas.items():
            per = per_point(meta)
            if per is None:
                continue
            timed = meta.get("points_seconds") or {}   # from scratch: known only where every point was timed
            extra = orphans[key]
            whole = timed["sum"] + sum(s for s in extra.values() if s is not None) \
                if timed.get("points_timed") == meta.get("grid_points") else math.nan
            rows.append({"paper": fig.paper, "figure": fig.key, "preset": preset, "device": meta.get("device"),
                         "device_name": meta.get("device_name"), "points": meta.get("grid_points"),
                         "points_computed": meta["points_computed"], "wall_s": round(float(meta["wall_time_s"]), 1),
                         "per_point_s": round(per, 2), "scratch_s": round(whole, 1),
                         "untimed_runs": sum(s is None for s in extra.values()),
                         "date": str(meta.get("date", ""))[:10],
                         "git": (meta.get("git") or {}).get("sha", "")[:7]})
    return pd.DataFrame(rows, columns=COLUMNS)


def merge(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """`new` rows replace `old` rows of the same (paper, figure, preset, device)."""
    key = ["paper", "figure", "preset", "device"]
    both = pd.concat([old, new], ignore_index=True) if len(old) else new
    return both.drop_duplicates(key, keep="last").sort_values(key, ignore_index=True).reindex(columns=COLUMNS)


def load(root: Path = registry.ROOT) -> pd.DataFrame:
    """The committed measurements (empty when absent or unreadable); read once per version of the file."""
    try:
        return _read(str(path(root)), path(root).stat().st_mtime_ns)
    except (OSError, ValueError):
        return pd.DataFrame(columns=COLUMNS)


@functools.lru_cache(maxsize=4)
def _read(file: str, mtime_ns: int) -> pd.DataFrame:
    return pd.read_csv(file)


def write(out: Path, root: Path) -> tuple[pd.DataFrame, Path]:
    """Collect `out`'s measurements into `root`/data/runtimes.csv (merged with what is there); returns both."""
    table = merge(load(root), collect(out))
    table["untimed_runs"] = table["untimed_runs"].astype("Int64")   # a count (blank in rows made before it existed)
    write_csv(table, path(root))
    return table, path(root)


def measured(fig: registry.Figure, preset: str, device: str, table: pd.DataFrame | None = None) -> dict | None:
    """The committed measurement of a figure at a preset on a device type, or None."""
    table = load() if table is None else table
    hit = table[(table.paper == fig.paper) & (table.figure == fig.key) & (table.preset == preset)
                & (table.device == device)]
    return None if hit.empty else hit.iloc[-1].to_dict()


def describe(row: dict | None) -> str:
    """'583 s cpu (2026-12-02)' for a table cell, led by the CPU time from scratch where the last run recorded it
    and it differs from that run's wall time (points or training runs reused from the cache); 'not measured' without
    a row."""
    if not row or not isinstance(row.get("wall_s"), (int, float)) or math.isnan(row["wall_s"]):
        return "not measured"
    wall, device, n = float(row["wall_s"]), row.get("device"), untimed(row)
    whole = "" if row.get("points_computed") == row.get("points") else \
        f" for {row.get('points_computed')} of {row.get('points')} points"
    text = f"{duration(wall)} {device}{whole}"
    s = scratch(row)
    recorded = isinstance(row.get("scratch_s"), (int, float)) and math.isfinite(row["scratch_s"])
    if recorded and (n or abs(s - wall) > max(60.0, 0.25 * s)):
        text = (f"{'at least ' if n else ''}{duration(s)} {device} from scratch"
                + (f" (without {n} reused runs made before run times were recorded)" if n else "")
                + f"; last run {duration(wall)}{whole}")
    date = row.get("date")
    return text + (f" ({date})" if isinstance(date, str) and date else "")


def slower(fig: registry.Figure, meta: dict, table: pd.DataFrame | None = None) -> str:
    """A flag when a result's run (its meta.json) took more than twice the committed measurement per point (same
    figure, preset and device type): the machine, the load or the code changed since; '' otherwise."""
    per = per_point(meta)
    row = measured(fig, meta.get("preset", ""), meta.get("device", ""), table)
    if per is None or row is None or not per > 2 * float(row["per_point_s"]):
        return ""
    return (f"its last run took {per / float(row['per_point_s']):.1f}x the measured time per point "
            f"({describe(row)}, data/runtimes.csv)")


def cell(fig: registry.Figure, preset: str, table: pd.DataFrame | None = None) -> str:
    """A measured runtime on the CPU (with its date), else the figure's own words marked as not measured."""
    row = measured(fig, preset, "cpu", table)
    if row is not None:
        return describe(row)
    said = fig.runtime.get(preset, "")
    return f"not measured{'; ' + said if said else ''}"
