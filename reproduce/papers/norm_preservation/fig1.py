"""Fig 1: norm ratios per layer at initialization, He vs Glorot, at four widths."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ... import plotting
from ...claims import Claim, Sums, below, between, need, slope
from ...config import setting
from ...registry import Figure, register
from .common import INIT_RULES, PAPER, NetSettings, _layer_rows, _ratios, _sel, net_bytes, per_net_claims, with_nets


@dataclass(frozen=True)
class Fig1Config(NetSettings):
    widths: tuple[int, ...] = setting((100, 500, 2000, 4060), stated=True, size=True,
                                      help="printed '4060' (maybe 4000); used as printed")
    inits: tuple[str, ...] = setting(("he", "glorot"), stated=True, choices=("he", "glorot"))
    depth: int = setting(10, stated=True, size=True, help="ReLU layers")
    n_samples: int = setting(2000, stated=True, size=True)
    glorot_variant: str = setting("xavier", stated=False, choices=("xavier", "code"),
                                  help="xavier: 2/(fan_in+fan_out); code: 1/fan_out (authors' code)")


def fig1_grid(cfg: Fig1Config) -> list[dict]:
    return with_nets([{"init": init, "width": m} for init in cfg.inits for m in cfg.widths], cfg)


def fig1_compute(cfg: Fig1Config, point: dict, ctx) -> pd.DataFrame:
    variant = cfg.he_mode if point["init"] == "he" else cfg.glorot_variant
    rule = INIT_RULES[(point["init"], variant)]
    m = point["width"]
    fwd, bwd = _ratios(cfg, [cfg.input_dim] + [m] * cfg.depth, rule, cfg.n_samples, ctx)
    return pd.DataFrame(_layer_rows(fwd, bwd, init=point["init"], rule=rule, width=m, net=point["net"]))


def fig1_plot(df: pd.DataFrame, cfg: Fig1Config):
    fig, axes = plotting.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    nets = df["net"].nunique()
    df = df[df["net"] == 0]
    widths = sorted(df["width"].unique())
    colors = dict(zip(widths, plotting.colors(len(widths))))
    for ax, q, label in ((axes[0], "forward", r"$\|h_i\| / \|x\|$"),
                         (axes[1], "backward", r"$\|\partial\ell/\partial W_i\|_F / (\|\delta\|\,\|x\|)$")):
        for (init, m), s in df[df["quantity"] == q].groupby(["init", "width"]):
            ax.errorbar(s["layer"], s["mean"], yerr=s["std"], color=colors[m], capsize=2,
                        ls="-" if init == "he" else "--", marker="o" if init == "he" else "s", ms=3,
                        label=f"{'He' if init == 'he' else 'Glorot'}, m={m}")
        ax.axhline(1, color="gray", lw=0.6)
        ax.set(xlabel="layer index i", ylabel=label, title=f"{q} pass")
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle(f"Norm ratios per layer at initialization ({int(df['layer'].max())} ReLU layers; "
                 f"network 0 of {nets}, bars: std over inputs)")
    return fig


def _he_mean(q: str, m: int, tol: float) -> Claim:
    per = per_net_claims(lambda g: (g["mean"] - 1).abs().max(), lambda df: _sel(df, init="he", quantity=q, width=m),
                         f"no He width {m} in this run")
    return Claim(f"he-{q}-mean-m{m}", f"He, {q}: max_i |mean ratio_i - 1| <= {tol} at m={m}",
                 bound=below(tol, "(mean over networks of max_i |mean_i - 1|)"), **per,
                 source="SPEC-000-002.md §2.3 001-fig1 [C]: He max_i |mean_i - 1| <= 0.15 / 0.10 / 0.08 at m = 500 / "
                        "2000 / 4060 (paper 001 §4.1: 'roughly 1 ... better with larger width')")


_STD = Sums(("width", "layer"), ("std",))   # claims read the mean std per (width, layer) over networks


def _std_slope(q: str) -> Claim:
    def measure(t):
        widths = t.groups["width"].unique()
        need(len(widths) >= 2, "needs >= 2 He widths")
        log_std = np.log(t["std"] / t["n"]).reshape(len(t["n"]), len(widths), -1)   # (B, width, layer)
        return slope(np.log(widths.astype(float)), log_std.mean(axis=2))
    return Claim(f"he-{q}-std-decreases", f"He, {q}: std_i decreases with width (log-log slope of the std, "
                 "averaged over layers, theory -1/2)", measure, below(0, "(slope of log std vs log m)"),
                 unit=("net",), reduce=lambda df: _sel(df, init="he", quantity=q), sums=_STD,
                 source="SPEC-000-002.md §2.3 001-fig1 [C]: std decreases with width at every layer (a negative "
                        "slope; theory -1/2)")


def _std_scale_rows(df):
    """reduce: the He forward rows at widths >= 500."""
    s = _sel(df, init="he", quantity="forward")
    s = s[s["width"] >= 500]
    need(len(s) > 0, "no He width >= 500")
    return s


def _std_scale(t):
    theory = 0.5 * np.sqrt(5 * t.groups["layer"].to_numpy(float) / t.groups["width"].to_numpy(float))
    return np.exp(np.log(t["std"] / t["n"] / theory).mean(axis=1))


def _glorot_max(q: str, last_only: bool, tol: float) -> Claim:
    def rows(df):
        s = _sel(df, init="glorot", quantity=q)
        return s[s["layer"] == s["layer"].max()] if last_only else s
    where = "at the last layer" if last_only else "at every layer"
    return Claim(f"glorot-{q}-{'last' if last_only else 'all'}", f"Glorot, {q}: mean ratio < {tol} {where}",
                 bound=below(tol, "(mean over networks of the largest mean ratio)"),
                 **per_net_claims(lambda g: g["mean"].max(), rows, "no Glorot rows"),
                 source="SPEC-000-002.md §2.3 001-fig1 [C]: Glorot forward mean at layer 10 < 0.1, backward mean < 0.2 "
                        "at all layers (paper 001 §4.1: 'Glorot initialization fails at preserving' the norms)")


FIG1_CLAIMS = (
    *(_he_mean(q, m, tol) for q in ("forward", "backward") for m, tol in ((500, 0.15), (2000, 0.10), (4060, 0.08))),
    Claim("he-forward-std-scale", "He, forward: std_i ~ 1/2 sqrt(5i/m) (m >= 500): geometric mean of the ratio",
          _std_scale, between(0.5, 1.3, "(std_i / (1/2 sqrt(5i/m)), geometric mean over layers and widths)"),
          unit=("net",), reduce=_std_scale_rows, sums=_STD,
          source="SPEC-000-002.md §2.3 001-fig1 [C]: std_i within [0.5, 1.3] x 1/2 sqrt(5i/m)"),
    _std_slope("forward"), _std_slope("backward"),
    _glorot_max("forward", True, 0.1), _glorot_max("backward", False, 0.2),
)

register(Figure(PAPER, "fig1", "Norm ratios per layer at init, He vs Glorot", Fig1Config,
                fig1_grid, fig1_compute, fig1_plot, FIG1_CLAIMS,
                memory=lambda cfg: net_bytes(cfg, [cfg.input_dim] + [max(cfg.widths)] * cfg.depth, cfg.n_samples),
                presets={"smoke": {"widths": (50, 100), "n_samples": 100, "input_dim": 50, "networks": 3}},
                runtime={"smoke": "4 s", "default": "4 min CPU", "paper": "4 min CPU"}))
