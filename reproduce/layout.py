"""Where results live: data/<paper>/figN.csv (+ meta.json), figures/<paper>/figN.png, variants beside them, the
point cache, claims.csv and benchmarks; one function per path."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .config import stable_hash
from .registry import Figure, Preset, parse_preset


@dataclass
class Outputs:
    csv: Path
    meta: Path
    png: Path

    def files(self) -> dict[str, Path]:
        """Every file of a written figure by kind: png, pdf (saved beside the png), csv, meta.json."""
        return {"png": self.png, "pdf": self.png.with_suffix(".pdf"), "csv": self.csv, "meta.json": self.meta}



def preset_dir(preset: str | Preset) -> Path:
    """'' for the default preset (data/<paper>/...), '<preset>' otherwise (data/smoke/<paper>/...)."""
    p = parse_preset(preset)
    return Path() if p is Preset.default else Path(p.value)



def outputs(fig: Figure, out: Path, preset: str | Preset, variant: str | None = None) -> Outputs:
    """data/<paper>/figN.csv for the default preset, data/<preset>/<paper>/figN.csv otherwise; a variant
    (overrides or a seed, not promoted) goes to .../<paper>/variants/figN-<variant>.csv instead."""
    sub = preset_dir(preset) / fig.paper
    name = fig.key
    if variant:
        sub, name = sub / "variants", f"{fig.key}-{variant}"
    data = out / "data" / sub
    return Outputs(data / f"{name}.csv", data / f"{name}.meta.json", out / "figures" / sub / f"{name}.png")



def variant_tag(overrides: Sequence[str], seed: int, cfg) -> str | None:
    """None for the canonical result (no overrides, seed 0), else a short tag naming the overridden settings and
    the seed: it hashes their values in the resolved `cfg`, so equal configs written differently (`width=1`,
    `width=1.0`, a setting given twice) share one tag."""
    if not overrides and seed == 0:
        return None
    keys = sorted({o.split("=", 1)[0].strip() for o in overrides})
    return stable_hash([{k: getattr(cfg, k) for k in keys}, seed])[:8]



def claims_path(out: Path, preset: str | Preset) -> Path:
    """data/claims.csv for the default preset, data/<preset>/claims.csv otherwise."""
    return out / "data" / preset_dir(preset) / "claims.csv"



def bench_path(out: Path, paper: str) -> Path:
    """data/bench/<paper>.csv."""
    return out / "data" / "bench" / f"{paper}.csv"



def cache_dir(out: Path) -> Path:
    """data/.cache: one folder per finished sweep point, and runs shared between figures."""
    return out / "data" / ".cache"
