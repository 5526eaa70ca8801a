"""The house style of every figure: one pyplot entry point, mean +- std bands, log-scale error bars, PNG + PDF.

Plots read only the CSV (and the config rebuilt from the meta.json beside it); titles and labels come from
those, never from numbers an override could make false.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import ticker  # noqa: E402

from .io import atomic_path  # noqa: E402

STYLE = {"savefig.dpi": 150, "axes.titlesize": 10, "legend.fontsize": 7}


def subplots(*args, **kwargs):
    """plt.subplots in the house style."""
    with plt.rc_context(STYLE):
        return plt.subplots(*args, **kwargs)


def figure(**kwargs):
    """plt.figure in the house style."""
    with plt.rc_context(STYLE):
        return plt.figure(**kwargs)


def colors(n: int, cmap: str = "viridis") -> list:
    """n colours from a sequential colormap (dark to light, the lightest end left out)."""
    return list(plt.get_cmap(cmap)(np.linspace(0, 0.85, n)))


def band(ax, x, mean, std, label: str, color: str, hollow=None, **kw) -> None:
    """mean +- std as a line with error bars; points flagged in `hollow` drawn as open markers."""
    x, mean, std = np.asarray(x, float), np.asarray(mean, float), np.nan_to_num(np.asarray(std, float))
    ax.errorbar(x, mean, yerr=std, color=color, marker="o", capsize=3, label=label, **kw)
    if hollow is not None and np.any(hollow):
        h = np.asarray(hollow, bool)
        ax.plot(x[h], mean[h], "o", mfc="white", mec=color, ms=9, zorder=5)


def fill(ax, x, mean, std, color: str, label: str | None = None, alpha: float = 0.2, **kw) -> None:
    """mean as a line and mean +- std as a shaded band (a NaN std draws no band)."""
    x, mean, std = np.asarray(x, float), np.asarray(mean, float), np.nan_to_num(np.asarray(std, float))
    ax.plot(x, mean, color=color, label=label, **kw)
    ax.fill_between(x, mean - std, mean + std, color=color, alpha=alpha)


def log_errorbar(ax, x, mean, std, **kw) -> None:
    """Mean +- std on log axes (the lower bar clipped above zero)."""
    mean, std = np.asarray(mean, float), np.nan_to_num(np.asarray(std, float))
    ax.errorbar(x, mean, yerr=[np.minimum(std, 0.9 * mean), std], marker="o", capsize=3, **kw)


def int_ticks(ax, xs) -> None:
    """x ticks exactly at the swept values, labelled as integers, no minor ticks (also on log axes)."""
    xs = sorted(set(xs))
    ax.set_xticks(xs, [str(int(v)) for v in xs])
    ax.xaxis.set_minor_locator(ticker.NullLocator())


def log_y(ax) -> None:
    """Log y axis that labels minor ticks too, so a range inside one decade still has numbers."""
    ax.set_yscale("log")
    ax.yaxis.set_minor_formatter(ticker.LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.tick_params(axis="y", which="minor", labelsize=7)


def close_all() -> None:
    """Close every open figure (after a plot that failed half way)."""
    plt.close("all")


def save(fig, path_png: Path, footer: str | None = None) -> list[Path]:
    """Stamp `footer` (grey, under the axes), save as .png and .pdf side by side (atomically), close."""
    if footer:
        fig.text(0.0, -0.01, footer, fontsize=6, color="grey", ha="left", va="top", transform=fig.transFigure)
    written = []
    try:
        for ext in ("png", "pdf"):
            target = path_png.with_suffix(f".{ext}")
            with atomic_path(target) as tmp:
                fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight")
            written.append(target)
    finally:
        plt.close(fig)
    return written
