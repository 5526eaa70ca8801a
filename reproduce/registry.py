"""The registry: the five papers, and every figure a paper module registers."""
from __future__ import annotations

import dataclasses
import enum
import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from .claims import Claim
from .config import ReproError, size_fields
from .datasets import DATASETS


class Preset(str, enum.Enum):
    """Sizes of a run: `smoke` (seconds, CI), `default` (every trend, reduced scale), `paper` (the paper's own)."""
    smoke = "smoke"
    default = "default"
    paper = "paper"


PRESETS = tuple(p.value for p in Preset)


def parse_preset(name: str | Preset) -> Preset:
    """The one place a preset name is validated."""
    try:
        return Preset(name.strip().lower() if isinstance(name, str) else name)
    except ValueError:
        raise ReproError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


@dataclass(frozen=True)
class Paper:
    name: str
    alias: str
    file: str
    title: str
    module: str  # module under reproduce.papers, or "" while not implemented


PAPERS = (
    Paper("random-walk-bridge", "bridge", "000_b77dcdb4ba5df8f8.txt",
          "Kubo et al. 2019, Implicit Regularization in Over-parameterized Neural Networks", "random_walk_bridge"),
    Paper("norm-preservation", "norm", "001_e874af01c674c307.txt",
          "Arpit & Bengio 2019, Benefits of Over-parameterization at Initialization in Deep ReLU Networks",
          "norm_preservation"),
    Paper("skip-resnet-gd", "skip", "002_ece33ef9414b6592.txt",
          "E, Ma, Wang, Wu 2019, GD for a Deep Neural Network Model with Skip-connections", "skip_resnet_gd"),
    Paper("gradient-confusion", "confusion", "003_a26379e51a4bac06.txt",
          "The Effect of Neural Net Architecture on Gradient Confusion & Training Performance", "gradient_confusion"),
    Paper("transition-to-linearity", "linearity", "004_b58240c665b1ac88.txt",
          "Liu, Zhu, Belkin 2020, On the linearity of large non-linear models", "transition_to_linearity"),
)


def dataset_fields(cfg: Any) -> list[str]:
    """Values of every config field whose name contains 'dataset' (one value or a tuple of them)."""
    out: list[str] = []
    for f in dataclasses.fields(cfg):
        if "dataset" in f.name:
            val = getattr(cfg, f.name)
            out += list(val) if isinstance(val, tuple) else [val]
    return out


@dataclass(frozen=True)
class Figure:
    """One figure (or table): config class + sweep grid + compute + plot + claims.

    - `config`: frozen dataclass; its defaults are the `default` preset.
    - `grid(cfg)`: list of independent points (dicts of JSON values), each computed and cached on its own.
    - `compute(cfg, point, ctx)`: long-format DataFrame for one point.
    - `plot(df)`: matplotlib Figure drawn from the CSV alone.
    - `cost(cfg, device)`: optional estimate printed by `--dry-run` before anything trains.
    - `presets`: size overrides for `smoke` and `paper` (`default` is the dataclass defaults).
    - `datasets(cfg)`: the datasets this config reads (default: the values of every field named *dataset*);
      `needs(cfg)` keeps the real ones, for `repro all` and `repro <paper> figN` alike.
    - `memory(cfg)`: optional estimate of the peak allocation; a run that cannot fit is refused before it starts.
    - `source`: the figure's file (where its config class is defined).
    """
    paper: str
    key: str
    title: str
    config: type
    grid: Callable[[Any], list[dict]]
    compute: Callable[[Any, dict, Any], pd.DataFrame]
    plot: Callable[[pd.DataFrame], Any]
    claims: tuple[Claim, ...] = ()
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    datasets: Callable[[Any], Sequence[str]] = dataset_fields
    runtime: Mapping[str, str] = field(default_factory=dict)
    gpu_presets: tuple[str, ...] = ()  # presets too big for a CPU: `repro all` skips them there (one line each)
    cost: Callable[[Any, Any], dict] | None = None  # cost(cfg, device) -> {"runs", "hours", ...} for --dry-run
    memory: Callable[[Any], tuple[int, str]] | None = None  # memory(cfg) -> (peak bytes estimate, what holds them)
    resources: Mapping[str, float] = field(default_factory=dict)  # per point on Ray: cpus, gpus (fraction), memory

    def preset(self, name: str | Preset) -> Mapping[str, Any]:
        return self.presets.get(parse_preset(name).value, {})

    @property
    def source(self) -> str:
        """The figure's file: where its config class is defined (every figure states its own)."""
        path = Path(sys.modules[self.config.__module__].__file__).resolve()
        return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)

    def needs(self, cfg: Any) -> list[str]:
        """The real datasets (not synthetic stand-ins) this config reads, without repeats, in order."""
        return list(dict.fromkeys(n for n in self.datasets(cfg) if n in DATASETS))


_FIGURES: dict[tuple[str, str], Figure] = {}
BENCHES: dict[str, Callable[..., pd.DataFrame]] = {}
ROOT = Path(__file__).resolve().parents[1]


def register_bench(paper: str, fn: Callable[..., pd.DataFrame]) -> None:
    """fn(device, sizes: tuple[int, ...] | None, repeats: int) -> tidy DataFrame of measurements (`repro bench`)."""
    BENCHES[paper] = fn


def register(fig: Figure) -> Figure:
    """Add a figure; presets may only touch fields declared as sizes."""
    allowed = size_fields(fig.config)
    names = {f.name for f in dataclasses.fields(fig.config)}
    for preset, values in fig.presets.items():
        bad = set(values) - allowed
        if preset not in PRESETS or bad or not set(values) <= names:
            raise ValueError(f"{fig.paper} {fig.key}: preset {preset!r} overrides non-size fields {sorted(bad)}")
    _FIGURES[(fig.paper, fig.key)] = fig
    return fig


def _load_all() -> None:
    for p in PAPERS:
        if p.module:
            importlib.import_module(f"reproduce.papers.{p.module}")


def paper(name: str) -> Paper:
    """Look a paper up by name or alias, case-insensitively."""
    low = name.strip().lower()
    for p in PAPERS:
        if low in (p.name, p.alias):
            return p
    known = ", ".join(f"{p.name} ({p.alias})" for p in PAPERS)
    raise ReproError(f"unknown paper {name!r}; known: {known}")


def figures(paper_name: str | None = None) -> list[Figure]:
    """Registered figures, in paper order then figure order; optionally of one paper."""
    _load_all()
    order = [p.name for p in PAPERS]
    figs = sorted(_FIGURES.values(), key=lambda f: (order.index(f.paper), _key_order(f.key)))
    if paper_name is not None:
        p = paper(paper_name)
        figs = [f for f in figs if f.paper == p.name]
        if not figs:
            raise ReproError(f"paper {p.name!r} has no implemented figures yet")
    return figs


def _key_order(key: str) -> tuple[str, int]:
    digits = "".join(ch for ch in key if ch.isdigit())
    return (key.rstrip("0123456789"), int(digits or 0))


def normalize_key(fig: str) -> str:
    """'2', 'fig2', 'Fig2', 'figure2' -> 'fig2'; 'table1' stays."""
    low = fig.strip().lower().replace("figure", "fig")
    return f"fig{low}" if low.isdigit() else low


def figure(paper_name: str, fig: str) -> Figure:
    """Look one figure up; unknown paper or figure is a ReproError."""
    figs = figures(paper_name)
    key = normalize_key(fig)
    for f in figs:
        if f.key == key:
            return f
    raise ReproError(f"{figs[0].paper} has no figure {fig!r}; available: {', '.join(f.key for f in figs)}")
