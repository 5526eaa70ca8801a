"""`repro report`: the reproduction report, one static page (figures/index.html) and its Markdown twin
(figures/README.md), built from the CSVs, meta.json files and claims alone: no figure is recomputed.

It answers, paper by paper: which claims hold (PASS / FAIL / INCONCLUSIVE, spelled out, not only coloured), at what
scale, and what differs from the paper. Every registered figure appears once, in one of these states:
current, stale (the code that computes it changed since it was made), other preset (its meta.json names another
preset), unreadable (meta.json cannot be read), missing (with the command that makes it, what it needs and its cost).
Building returns text; the CLI writes it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from . import datasets, layout, registry, runner, runtimes
from . import provenance as prov
from .claims import FAIL, INCONCLUSIVE, PASS
from .registry import Figure, Preset, parse_preset
from .runtimes import duration

VERDICTS = (PASS, FAIL, INCONCLUSIVE)
STATES = ("current", "stale", "other preset", "unreadable", "missing")


@dataclass
class Entry:
    """One registered figure as the report shows it."""
    fig: Figure
    state: str                                              # one of STATES
    why: str = ""                                           # stale / other preset / unreadable / missing: in words
    meta: dict | None = None
    claims: list[dict] = field(default_factory=list)        # rows of `verification.verify`'s table
    links: dict[str, str] = field(default_factory=dict)     # png, pdf, csv, meta.json -> path from the report folder
    command: str = ""
    needs: list[str] = field(default_factory=list)          # missing: datasets and device it needs
    cost: str = ""                                          # missing: --dry-run estimate (or the registered runtime)

    @property
    def name(self) -> str:
        return f"{self.fig.paper} {self.fig.key}"

    @property
    def anchor(self) -> str:
        return f"{self.fig.paper}-{self.fig.key}"


def report_dir(out: Path, preset: str | Preset) -> Path:
    """figures/ for the default preset, figures/<preset>/ otherwise (where the figures themselves are)."""
    return out / "figures" / layout.preset_dir(preset)


def command(fig: Figure, preset: str) -> str:
    """The command that makes a figure at a preset."""
    alias = registry.paper(fig.paper).alias
    return f"repro {alias} {fig.key}" + ("" if preset == Preset.default.value else f" --preset {preset}")


def differences(fig: Figure, meta: dict) -> list[str]:
    """What differs from the paper, from meta.json: reduced sizes, changed settings, stand-in data, CPU instead of
    GPU, notes the points left, and the NOT STATED choices (last: the longest)."""
    out = [f"{k}: {v}" for k, v in (meta.get("reduced") or {}).items()]
    if meta.get("overrides"):
        out.append("settings changed from the preset: " + ", ".join(meta["overrides"]))
    cfg = meta.get("config") or {}
    stand_in = sorted({v for c in cfg.values() for v in (c["value"] if isinstance(c.get("value"), list)
                                                         else [c.get("value")])
                       if isinstance(v, str) and v.startswith("synthetic")})
    if stand_in:
        out.append("stand-in data (synthetic, not the paper's dataset): " + ", ".join(stand_in))
    if meta.get("device") == "cpu" and meta.get("preset") in fig.gpu_presets:
        out.append("run on a CPU: this preset is sized for a GPU")
    out += _point_notes(meta.get("point_notes") or [])
    chosen = [f"{k} = {_value(c['value'])}" for k, c in cfg.items() if c.get("source") == "not_stated"]
    if chosen:
        out.append("NOT STATED in the paper, chosen here: " + "; ".join(chosen))
    return out


def _point_notes(notes: list[dict]) -> list[str]:
    """One line per distinct note text, at the settings its points share ("note at {'depth': 16} (12 points): ..."),
    so a note every run leaves (a network's parameter count) is listed once per network, not once per run."""
    groups: dict[str, list] = {}
    for note in notes:
        text = "; ".join(f"{k}: {v}" for k, v in note.items() if k != "point")
        groups.setdefault(text, []).append(note.get("point"))
    out = []
    for text, points in groups.items():
        if len(points) == 1 or not all(isinstance(p, dict) for p in points):
            out += [f"note at {p}: {text}" for p in points]
            continue
        shared = {k: v for k, v in points[0].items() if all(k in p and p[k] == v for p in points[1:])}
        out.append(f"note at {shared or 'every point'} ({len(points)} points): {text}")
    return out


def _value(v) -> str:
    return ", ".join(map(str, v)) if isinstance(v, list) else str(v)


def _commit_date(sha: str | None) -> str:
    return (prov.git_out("show", "-s", "--format=%cI", sha) or "") if sha else ""


def provenance(meta: dict) -> str:
    """Command, device, commit, date and wall time in one line."""
    command, sha = prov.made_by(meta)
    git = meta.get("git") or {}
    date = meta.get("date") or (_commit_date(git.get("sha")) + " (commit date)" if git.get("sha") else "?")
    dev = meta.get("device", "?") + (f" ({meta['device_name']})" if meta.get("device_name") else "")
    wall = meta.get("wall_time_s")
    cached = meta.get("points_from_cache") or 0
    return (f"{command} | {dev} | git {sha} | {date} | wall {duration(wall)}"
            + (f" ({cached} of {meta.get('grid_points')} points from the cache)" if cached else ""))


def collect(out: Path, preset: str, table: pd.DataFrame, cost: Callable[[Figure], str] | None = None,
            unreadable: dict[tuple[str, str], str] | None = None) -> list[Entry]:
    """Every registered figure's entry. table: `verification.verify`'s claim rows; cost(fig) -> text for a missing
    figure (default: its measured runtime, data/runtimes.csv); unreadable: {(paper, key): why} of the CSVs
    verify could not read."""
    unreadable = unreadable or {}
    here = report_dir(out, preset)
    entries = []
    for fig in registry.figures():
        paths = layout.outputs(fig, out, preset)
        rows = table[(table["paper"] == fig.paper) & (table["figure"] == fig.key)].to_dict("records")
        e = Entry(fig, "current", claims=rows, command=command(fig, preset))
        e.links = {k: Path(os.path.relpath(p, here)).as_posix() for k, p in paths.files().items() if p.exists()}
        e.links.update({f"ladder {p.stem.split('-ladder-')[1]}": Path(os.path.relpath(p, here)).as_posix()
                        for p in sorted(paths.png.parent.glob(f"{fig.key}-ladder-*.png"))})
        if not paths.csv.exists():
            cfg = runner.prepare(fig, preset, [])
            e.state = "missing"
            offline = {n: "not available offline" not in datasets.info(n).note for n in fig.needs(cfg)}
            e.needs = [*(n if ok else _provide(n) for n, ok in offline.items()),
                       *(["a GPU"] if preset in fig.gpu_presets else [])]
            e.cost = cost(fig) if cost else runtimes.cell(fig, preset)
            e.why = "not made yet"
        else:
            try:
                e.meta = json.loads(paths.meta.read_text())
            except (OSError, ValueError) as exc:
                e.state, e.why = "unreadable", f"{paths.meta.name} cannot be read ({type(exc).__name__})"
            else:
                if (fig.paper, fig.key) in unreadable:
                    e.state, e.why = "unreadable", unreadable[fig.paper, fig.key]
                elif e.meta.get("preset") != preset:
                    e.state, e.why = "other preset", f"its meta.json says preset {e.meta.get('preset')!r}"
                elif why := prov.staleness(fig, e.meta):
                    e.state, e.why = "stale", why + "; rerun to refresh (numbers may differ)"
        entries.append(e)
    return entries


def is_check(r: dict) -> bool:
    """A row of our run's own checks (not the paper's claims)."""
    return r.get("kind") == "check"


def counts(entries: list[Entry], checks: bool = False) -> dict[str, int]:
    """Verdicts of the paper's claims (or, with `checks`, of our own checks) over the current entries."""
    c = dict.fromkeys(VERDICTS, 0)
    for e in entries:
        if e.state != "current":
            continue
        for r in e.claims:
            if is_check(r) == checks:
                c[r["verdict"]] = c.get(r["verdict"], 0) + 1
    return c


REASONS = (("check", "a check of our run failed"), ("too few units", "too few units"),
           ("straddles", "the interval straddles the bound"), ("undefined on", "the measure is undefined on "
                                                                               "resamples"))


def reason(cause: str) -> str:
    """Why a claim is undecided, in one of a few words (for the per-paper answer)."""
    cause = cause if isinstance(cause, str) else ""
    return next((said for key, said in REASONS if key in cause), "the run lacks what the claim needs")


@dataclass
class Answer:
    """One paper's answer from its current figures: claims that hold, that do not hold here, that are undecided
    (by reason); figures stale (with command and cost) or missing (with what they need)."""
    holds: list[str] = field(default_factory=list)
    fails: list[str] = field(default_factory=list)
    undecided: dict[str, list[str]] = field(default_factory=dict)
    stale: list[Entry] = field(default_factory=list)
    missing: list[Entry] = field(default_factory=list)


def answer(es: list[Entry]) -> Answer:
    """The paper's answer (see Answer), claims named `figN id`."""
    a = Answer()
    for e in es:
        if e.state == "missing":
            a.missing.append(e)
        elif e.state != "current":
            a.stale.append(e)
        else:
            for r in e.claims:
                if is_check(r):
                    continue
                name = f"{e.fig.key} {r['id']}"
                if r["verdict"] == PASS:
                    a.holds.append(name)
                elif r["verdict"] == FAIL:
                    a.fails.append(name)
                else:
                    a.undecided.setdefault(reason(r.get("cause")), []).append(name)
    return a


def _grouped(names: list[str]) -> str:
    """'fig2 (F2-a, F2-b); fig3 (F3-a)' from ['fig2 F2-a', 'fig2 F2-b', 'fig3 F3-a']."""
    by: dict[str, list[str]] = {}
    for n in names:
        fig, cid = n.split(" ", 1)
        by.setdefault(fig, []).append(cid)
    return "; ".join(f"{fig} ({', '.join(ids)})" for fig, ids in by.items()) or "none"


def answer_lines(a: Answer) -> list[tuple[str, str]]:
    """(label, text) lines of a paper's answer, plain text."""
    lines = [("holds", f"{len(a.holds)}: {_grouped(a.holds)}" if a.holds else "none"),
             ("does not hold here", f"{len(a.fails)}: {_grouped(a.fails)}" if a.fails else "none")]
    n = sum(map(len, a.undecided.values()))
    lines.append(("undecided", f"{n}: " + " | ".join(f"{why} ({len(v)}): {_grouped(v)}"
                                                     for why, v in a.undecided.items()) if n else "none"))
    if a.stale:
        lines.append(("not counted (stale or unreadable)", "; ".join(
            f"{e.fig.key} (rerun `{prov.made_by(e.meta)[0] if e.meta else e.command}`" + _last_run(e) + ")"
            for e in a.stale)))
    if a.missing:   # figures that need the same and cost the same, in one group
        groups: dict[str, list[Entry]] = {}
        for e in a.missing:
            groups.setdefault(_to_make(e), []).append(e)
        lines.append(("not made", "; ".join(
            f"{', '.join(e.fig.key for e in es)} (`{es[0].command}`" + (" etc." if len(es) > 1 else "") + f"{need})"
            for need, es in groups.items())))
    return lines


def _last_run(e: Entry) -> str:
    """'; its last run took 12 min' (for k of n points where it reused the rest; or that it reused cached work)."""
    if not e.meta:
        return ""
    wall, done, total = (e.meta.get(k) for k in ("wall_time_s", "points_computed", "grid_points"))
    if done == 0 or (isinstance(wall, (int, float)) and wall < 1):
        return "; its last run reused cached work (see its source figure's cost)"
    part = f" for {done} of its {total} points (the rest cached)" if isinstance(done, int) and \
        isinstance(total, int) and done < total else ""
    return f"; its last run took {duration(wall)}{part}"


SMOKE_NOTE = ("Smoke preset: tiny sizes on stand-in data, run to test the code. Its verdicts test the code, not the "
              "papers; the papers' answers are in the default-preset report (figures/README.md).")


def _provide(name: str) -> str:
    """One line: how a user makes dataset `name` available."""
    d = datasets.info(name)
    return (f"{d.name} ({d.note + ': ' if d.note else ''}`repro data fetch {d.name}` where online, or its "
            f"{d.tv_marker.split('/')[0]} folder under the data root, --data-root / REPRO_DATA)")


def _to_make(e: Entry) -> str:
    """What a missing figure needs and costs, after its command (plain text)."""
    return (f"; needs {', '.join(e.needs)}" if e.needs else "") + (f"; cost: {e.cost}" if e.cost else "")


def _by_paper(entries: list[Entry]) -> list[tuple[registry.Paper, list[Entry]]]:
    return [(p, [e for e in entries if e.fig.paper == p.name]) for p in registry.PAPERS
            if any(e.fig.paper == p.name for e in entries)]


def _number(x) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return ""
    if x != x:
        return ""
    return f"{x:.3g}"


def _interval(r: dict) -> str:
    lo, hi = _number(r.get("ci_low")), _number(r.get("ci_high"))
    return f"[{lo}, {hi}]" if lo and hi else ""


def _units(r: dict) -> str:
    try:
        return str(int(float(r.get("units"))))
    except (TypeError, ValueError):
        return ""


def _cause(r: dict) -> str:
    """The one-line cause of a FAIL or INCONCLUSIVE ('' for a PASS or none given)."""
    cause = r.get("cause")
    return cause if isinstance(cause, str) and r["verdict"] != PASS else ""


def _summary_rows(entries: list[Entry]) -> list[dict]:
    rows = []
    for p, es in _by_paper(entries):
        c, k = counts(es), counts(es, checks=True)
        made = [e for e in es if e.state != "missing"]
        rows.append({"paper": p.name, "alias": p.alias, "made": len(made), "total": len(es),
                     "current": sum(e.state == "current" for e in es),
                     "stale": sum(e.state not in ("current", "missing") for e in es),   # stale, unreadable, other
                     **c, "checks_failed": k[FAIL], "missing": [e for e in es if e.state == "missing"]})
    return rows


# ------------------------------------------------------------------------------------------------------ Markdown

def markdown(entries: list[Entry], preset: str) -> str:
    """The report as Markdown (figures/README.md: a forge renders the folder as the report)."""
    c, k = counts(entries), counts(entries, checks=True)
    current = sum(e.state == "current" for e in entries)
    lines = [f"# Reproduction report ({preset} preset)", ""]
    if preset == Preset.smoke.value:
        lines += [f"**{SMOKE_NOTE}**", ""]
    lines += ["## The answer, paper by paper", "",
              "From current figures only (a stale figure's numbers may have changed; it is listed apart with the "
              "command that refreshes it). Claim ids are those of the tables below.", ""]
    for p, es in _by_paper(entries):
        lines.append(f"- **{p.name}** (`{p.alias}`): " + "; ".join(
            f"**{label}**: {_md_cell(text)}" for label, text in answer_lines(answer(es))))
    lines += ["", "Built by `repro report` from the CSVs, meta.json files and claims in this checkout (nothing "
              "recomputed). Verdicts: PASS = the claim's measure is inside the bound at the measure's confidence, "
              "FAIL = outside it, INCONCLUSIVE = the interval straddles the bound or the data cannot decide. "
              "Every bound names its source. Checks are tests of our own run (convergence, solver residuals, "
              "exactness); they are not the paper's claims and are not counted with them, and a failed check makes "
              "the claims it affects INCONCLUSIVE.", "",
              f"**The papers' claims, current figures ({current} of {len(entries)}): {c[PASS]} PASS, {c[FAIL]} FAIL, "
              f"{c[INCONCLUSIVE]} INCONCLUSIVE.** Our checks: {k[PASS]} PASS, {k[FAIL]} FAIL, "
              f"{k[INCONCLUSIVE]} INCONCLUSIVE.", "",
              "| paper | figures made | current | stale or unreadable | PASS | FAIL | INCONCLUSIVE | checks failed "
              "| missing |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in _summary_rows(entries):
        miss = ", ".join(f"[{e.fig.key}](#{e.anchor})" for e in r["missing"]) or "-"
        lines.append(f"| [{r['paper']}](#{r['paper']}) (`{r['alias']}`) | {r['made']} / {r['total']} | {r['current']} "
                     f"| {r['stale']} | {r[PASS]} | {r[FAIL]} | {r[INCONCLUSIVE]} | {r['checks_failed']} | {miss} |")
    for p, es in _by_paper(entries):
        lines += ["", f"## {p.name}", "", f"*{p.title}* (`{p.file}`)", ""]
        for e in es:
            lines += _markdown_entry(e)
    return "\n".join(lines).rstrip() + "\n"


def _claim_groups(e: Entry) -> list[tuple[str, list[dict]]]:
    """The paper's claims, then our checks (each only when there are some)."""
    groups = [("The paper's claims", [r for r in e.claims if not is_check(r)]),
              ("Checks of our run (not the paper's claims)", [r for r in e.claims if is_check(r)])]
    return [(t, rows) for t, rows in groups if rows]


def _source(r: dict) -> str:
    s = r.get("bound_source")
    return s if isinstance(s, str) else ""


def _md_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _markdown_entry(e: Entry) -> list[str]:
    out = [f"<a id=\"{e.anchor}\"></a>", f"### {e.fig.key}: {e.fig.title}", ""]
    if e.state == "missing":
        out += [f"**MISSING** ({e.why}). Make it with `{e.command}`{_to_make(e)}.", ""]
        return out
    if e.state != "current":
        out += [f"**{e.state.upper()}**: {e.why}.", ""]
    if "png" in e.links:
        out += [f"![{e.name}]({e.links['png']})", ""]
    out += [" · ".join(f"[{k}]({v})" for k, v in e.links.items() if k != "png" and not k.startswith("ladder")), ""]
    for k, v in e.links.items():   # scale ladders (`repro ladder`): each claim against one setting
        if k.startswith("ladder"):
            out += [f"Scale {k} (`repro ladder`): each claim's value at every rung, its bound dashed.", "",
                    f"![{e.name} {k}]({v})", ""]
    for title, rows in _claim_groups(e):
        out += [f"{title}:", "",
                "| id | statement | value | interval | units | bound | bound's source | verdict | cause |",
                "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            out.append("| " + " | ".join(_md_cell(x) for x in (
                r["id"], r["text"], _number(r["value"]), _interval(r), _units(r), r.get("threshold", ""),
                _source(r), f"**{r['verdict']}**", _cause(r))) + " |")
        out.append("")
    if e.meta:
        diff = differences(e.fig, e.meta)
        if diff:
            out += ["Differs from the paper:", ""] + [f"- {_md_cell(d)}" for d in diff] + [""]
        flag = runtimes.slower(e.fig, e.meta)
        out += [f"<sub>{_md_cell(provenance(e.meta))}</sub>", ""] + ([f"**Slow**: {flag}.", ""] if flag else [])
    return out


# ---------------------------------------------------------------------------------------------------------- HTML


def build(out: Path, preset: str, table: pd.DataFrame, cost: Callable[[Figure], str] | None = None,
          unreadable: dict[tuple[str, str], str] | None = None) -> tuple[list[Entry], str, str]:
    """Entries, HTML and Markdown of the report for `preset` under `out` (`unreadable`: verify's skipped CSVs)."""
    preset = parse_preset(preset).value
    entries = collect(out, preset, table, cost, unreadable)
    from .report_html import render_html  # the page imports this module's pieces
    return entries, render_html(entries, preset), markdown(entries, preset)
