"""Paper 003 shared pieces: the run cache, CSV rows, learning-rate selection, series statistics, plot and claim helpers.

CSV (long format): the series keys (e.g. variant, depth, width), lr, run, epoch, quantity, value, plus the
constant columns valid_frac and rho_slack that the claims read. Per run the scalars init_loss, final_loss,
train_loss_full, test_acc and alive (1/0); per measured epoch min_cos, std_cos, frac_negative, p05, p50;
per epoch `loss` (mean minibatch loss); at the end one `cos_end` row per measured cosine.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pandas as pd

from ... import cache
from ...claims import above, below, need
from ...config import stable_hash
from . import confusion as conf

PAPER = "gradient-confusion"
SCALARS = ("init_loss", "final_loss", "train_loss_full", "test_acc", "alive")
TRAINED_BELOW = 0.99   # a run trained when its final loss is below 99% of its initial loss (not within 1% of it)


def cached_run(ctx, spec: dict, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """One training run cached by its full spec under data/.cache/runs, so figures that share runs reuse them.

    The entry is verified on read (reproduce.cache): a truncated or edited run is trained again, with a warning."""
    if ctx.cache_dir is None:
        return compute()
    version = ctx.shared_version   # the code the figures share, not one figure's own file
    folder = ctx.cache_dir / "runs" / stable_hash([spec, ctx.seed, ctx.device_key, version])   # GPU model on CUDA
    frame, _, _ = cache.cached(folder / "run.csv", version, lambda: (compute(), {"spec": spec}), warn=ctx.warn)
    return frame


def summary_rows(cos, epoch: int) -> list[dict]:
    """Rows (epoch, quantity, value) of one run's cosine summary at one epoch."""
    s = conf.summary(cos)
    return [{"epoch": epoch, "quantity": q, "value": s[k]} for q, k in
            (("min_cos", "min"), ("std_cos", "std"), ("frac_negative", "frac_negative"), ("p05", "p05"),
             ("p50", "p50"), ("nan_cos", "nan"))]


def _last_cosines(df: pd.DataFrame, idx: list[str]) -> pd.DataFrame:
    """The min_cos / std_cos rows of each run's last measured epoch."""
    cos = df[df.quantity.isin(("min_cos", "std_cos"))]
    return cos[cos.epoch == cos.groupby(idx)["epoch"].transform("max")]


def runs_table(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per run: the scalars, min/std of the last measured cosines, and valid = finished and clearly below
    its initial loss (SPEC-003-004.md §A.4; a run within 1% of its initial loss did not train)."""
    idx = keys + ["lr", "run"]
    t = df[df.quantity.isin(SCALARS)].set_index(idx + ["quantity"])["value"].unstack()
    last = _last_cosines(df, idx)
    t = t.join(last.set_index(idx + ["quantity"])["value"].unstack(), how="left")
    t["valid"] = (t["alive"] > 0) & (t["final_loss"] < TRAINED_BELOW * t["init_loss"])
    return t.reset_index()


def lean(df: pd.DataFrame, keys: list[str], final_cosines: bool = False) -> pd.DataFrame:
    """The rows runs_table and point_stats read: the per-run scalars and each run's last min/std cosine (and the
    final cosines when `final_cosines`): a claim's bootstrap resamples these instead of every epoch's rows."""
    keep = [df[df.quantity.isin(SCALARS + (("cos_end",) if final_cosines else ()))],
            _last_cosines(df, keys + ["lr", "run"])]
    return pd.concat(keep, ignore_index=True)


def select(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per series point: the lr with the lowest mean final loss over valid runs among lrs with enough valid runs
    (ceil(valid_frac * runs)); if none has, the point is untrainable and keeps the lr of lowest mean loss."""
    return _select(runs_table(df, keys), keys, float(df["valid_frac"].iloc[0]))


def _select(t: pd.DataFrame, keys: list[str], frac: float) -> pd.DataFrame:
    """select() on a runs_table."""
    grid = sorted(t["lr"].unique())
    by = keys + ["lr"]
    per_lr = t.groupby(by).agg(n=("valid", "size"), n_valid=("valid", "sum"))
    per_lr["loss"] = t[t.valid].groupby(by)["final_loss"].mean()
    per_lr["fin"] = t[np.isfinite(t.final_loss)].groupby(by)["final_loss"].mean()
    per_lr = per_lr.reset_index()
    per_lr["ok"] = (per_lr.n_valid >= np.ceil(frac * per_lr.n - 1e-9)) & per_lr.loss.notna()
    # rank: eligible lrs by their valid loss first, then (untrainable points) by the mean finite loss, then grid
    per_lr["key1"] = np.where(per_lr.ok, per_lr.loss, np.inf)
    per_lr["key2"] = per_lr.fin.fillna(np.inf)
    best = per_lr.sort_values(["key1", "key2", "lr"], kind="mergesort").groupby(keys, sort=True).head(1)
    out = best[keys + ["lr"]].assign(trainable=best.ok.to_numpy(), n_valid=best.n_valid.astype(int).to_numpy())
    out["lr_edge"] = (len(grid) > 2) & out.lr.isin((grid[0], grid[-1]))
    return out.sort_values(keys).reset_index(drop=True)


def chosen(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The rows of df that belong to the selected lr of each point and to its valid runs (all its runs when the
    point is untrainable), with a `trainable` column."""
    t = _chosen_runs(df, keys)
    return df.merge(t[keys + ["lr", "run", "trainable"]], on=keys + ["lr", "run"])


def _chosen_runs(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """runs_table rows of the chosen runs (see chosen()), with the selection's columns."""
    runs = runs_table(df, keys)
    t = runs.merge(_select(runs, keys, float(df["valid_frac"].iloc[0])), on=keys + ["lr"])
    return t[t.valid | ~t.trainable]


def point_stats(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per point at its selected lr: mean/std over runs of final loss, last min cosine, test accuracy; the std of
    the pooled final cosines; trainable; lr. Untrainable points report their mean initial loss as `loss_shown`."""
    t = _chosen_runs(df, keys)
    out = t.groupby(keys).agg(loss=("final_loss", "mean"), loss_std=("final_loss", "std"),
                              loss0=("init_loss", "mean"), min_cos=("min_cos", "mean"), min_cos_std=("min_cos", "std"),
                              acc=("test_acc", "mean"), acc_std=("test_acc", "std"), lr=("lr", "first"),
                              trainable=("trainable", "first"), lr_edge=("lr_edge", "first"), runs=("run", "size"))
    end = df[df.quantity == "cos_end"]
    end = end.merge(t[keys + ["lr", "run"]], on=keys + ["lr", "run"]) if len(end) else end
    out["pooled_std"] = end.groupby(keys)["value"].std() if len(end) else np.nan
    out["loss_shown"] = out["loss"].where(out["trainable"], out["loss0"])
    return out.reset_index()


def spearman(x, y) -> float:
    """Spearman rank correlation of two sequences (NaN with fewer than 3 points)."""
    x, y = pd.Series(list(x), dtype=float), pd.Series(list(y), dtype=float)
    return float(x.rank().corr(y.rank())) if len(x) >= 3 else math.nan   # Pearson of ranks (ties: average)


def strictly_monotone(y) -> str:
    """'increasing', 'decreasing' or 'no' (info next to a rho)."""
    d = np.diff(np.asarray(list(y), float))
    return "increasing" if (d > 0).all() else "decreasing" if (d < 0).all() else "no"


def rho_measure(keys: list[str], x: str | None, col: str, where: dict | None = None,
                points: Callable[[pd.DataFrame], pd.DataFrame] = point_stats):
    """Measure: Spearman rho(x, col) over the trainable points (optionally of one series); x None = sweep axis."""
    def measure(df):
        axis = x or sweep_axis(df)
        p = points(df, keys)
        for k, v in (where or {}).items():
            p = p[p[k] == v]
        p = p[p.trainable].sort_values(axis)
        need(len(p) >= 3, f"needs 3 trainable points of {axis}, has {len(p)}")
        return spearman(p[axis], p[col])
    return measure


def rho_bound(bound: float):
    """Bound for a rank correlation: rho >= bound (bound > 0) or rho <= bound, moved towards 0 by the CSV's
    rho_slack (0.2 at default scale, SPEC-003-004.md §A.8)."""
    def make(df):
        slack = float(df["rho_slack"].iloc[0])
        return above(bound - slack, "(Spearman rho)") if bound > 0 else below(bound + slack, "(Spearman rho)")
    return make


def sweep_axis(df: pd.DataFrame) -> str:
    """'depth' when the CSV sweeps depth, else 'width'."""
    return "depth" if df["depth"].nunique() > 1 else "width"


def kde_panel(ax, end: pd.DataFrame, series: str, span: float, label: Callable[[object], str]) -> None:
    """One KDE of the pooled final cosines per value of `series`, on 512 points over [-span, span] (the paper's
    panel range), widened to the largest |cosine| so no mass is cut off."""
    v = end["value"].abs()
    span = max(span, float(v.max()) if v.notna().any() else span)
    grid = np.linspace(-span, span, 512)
    for i, (s, g) in enumerate(end.groupby(series)):
        v = g["value"].to_numpy()
        if np.isfinite(v).sum() >= 2:
            ax.plot(grid, conf.kde(v, grid), color=f"C{i}", label=label(s))
    ax.set(xlabel="pairwise gradient cosine (end of training)", ylabel="density (KDE, pooled runs)")
    ax.legend(fontsize=7)


def kde_mass(df: pd.DataFrame) -> float:
    """Worst |integral - 1| of the per-series KDE over the cosines' range padded by 4 bandwidths."""
    worst = 0.0
    for _, g in df.groupby([c for c in df.columns if c not in ("value", "seed", "lr", "run", "epoch", "quantity",
                                                                  "valid_frac", "rho_slack", "trainable")]):
        v = g["value"].to_numpy()
        v = v[np.isfinite(v)]
        if len(v) < 2 or v.std() == 0:
            continue
        h = v.std(ddof=1) * len(v) ** (-1 / 5)
        grid = np.linspace(v.min() - 4 * h, v.max() + 4 * h, 2048)
        worst = max(worst, abs(float(np.trapezoid(conf.kde(v, grid), grid)) - 1))
    return worst
