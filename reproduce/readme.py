"""The README's figure table, generated from the registry (`repro list --markdown`, `make readme`)."""
from __future__ import annotations

import sys
from pathlib import Path

from . import registry, runtimes
from .layout import outputs

BEGIN, END = "<!-- BEGIN FIGURE TABLE (make readme) -->", "<!-- END FIGURE TABLE -->"


def markdown_table() -> str:
    """One row per registered figure: command, output files, runtime per preset (measured where measured)."""
    figs, table = registry.figures(), runtimes.load()
    lines = ["| paper | figure | command | outputs (default preset) | smoke | default | paper |",
             "|---|---|---|---|---|---|---|"]
    for p in registry.PAPERS:
        mine = [f for f in figs if f.paper == p.name]
        for f in mine:
            o = outputs(f, Path("."), "default")
            cells = " | ".join(runtimes.cell(f, k, table) for k in registry.PRESETS)
            lines.append(f"| {p.name} ({p.alias}) | {f.key}: {f.title} | `repro {p.alias} {f.key}` | "
                         f"`{o.csv}`, `{o.png}` (+ `.pdf`, `.meta.json`) | {cells} |")
        if not mine:
            lines.append(f"| {p.name} ({p.alias}) | not implemented yet | | | | | |")
    return "\n".join(lines + ["", totals(figs, table)])


def totals(figs: list[registry.Figure], table) -> str:
    """The measured totals per preset on the CPU (sums of data/runtimes.csv wall times), naming what is unmeasured."""
    parts = []
    for preset in ("smoke", "default"):
        rows = [runtimes.measured(f, preset, "cpu", table) for f in figs]
        got = [r for r in rows if r is not None]
        if not got:
            parts.append(f"{preset}: not measured")
            continue
        names = [f"{registry.paper(f.paper).alias} {f.key}" for f in figs]
        cost = {n: runtimes.scratch(r) for n, r in zip(names, rows) if r is not None}
        longest = [f"{k} {runtimes.duration(cost[k])}" for k in sorted(cost, key=cost.get, reverse=True)[:3]]
        absent = [n for n, r in zip(names, rows) if r is None]
        short = [f"{n} ({runtimes.untimed(r)} runs)" for n, r in zip(names, rows) if r and runtimes.untimed(r)]
        parts.append(f"{preset}: {'at least ' if short else ''}{runtimes.duration(sum(cost.values()))} of CPU for "
                     f"{len(got)} of {len(figs)} figures, one after another"
                     + (f", longest {', '.join(longest)}" if preset == "default" else "")
                     + (f" (not measured: {', '.join(absent)})" if absent else "")
                     + (f" (without the reused runs made before run times were recorded: {', '.join(short)})"
                        if short else ""))
    return "Measured totals from scratch (data/runtimes.csv: each figure's points' own compute times, plus the " \
        "cached training runs it reused that no figure's points made, where its last run recorded them all, else its " \
        "wall time per computed point times its points, on the 2-core CPU): " + \
        "; ".join(parts) + "."


def update(text: str) -> str:
    """Replace the table between the markers in `text`."""
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{markdown_table()}\n{END}{tail}"


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    path.write_text(update(path.read_text()))
