"""`repro report`: the reproduction report, one static page (figures/index.html) and its Markdown twin
(figures/README.md), built from the CSVs, meta.json files and claims alone: no figure is recomputed.

It answers, paper by paper: which claims hold (PASS / FAIL / INCONCLUSIVE, spelled out, not only coloured), at what
scale, and what differs from the paper. Every registered figure appears once, in one of these states:
current, stale (the code that computes it changed since it was made), other preset (its meta.json names another
preset), unreadable (meta.json cannot be read), missing (with the command that makes it, what it needs and its cost).
Building returns text; the CLI writes it.
"""
from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from . import layout, registry, runner
from . import provenance as prov
from .claims import FAIL, INCONCLUSIVE, PASS
from .registry import Figure, Preset, parse_preset

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
    for note in meta.get("point_notes") or []:
        text = "; ".join(f"{k}: {v}" for k, v in note.items() if k != "point")
        out.append(f"note at {note.get('point')}: {text}")
    chosen = [f"{k} = {_value(c['value'])}" for k, c in cfg.items() if c.get("source") == "not_stated"]
    if chosen:
        out.append("NOT STATED in the paper, chosen here: " + "; ".join(chosen))
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


def duration(s) -> str:
    """Seconds in words: 40 s, 12 min, 3.5 h."""
    if not isinstance(s, (int, float)):
        return "?"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"


def collect(out: Path, preset: str, table: pd.DataFrame,
            cost: Callable[[Figure], str] | None = None) -> list[Entry]:
    """Every registered figure's entry. table: `verification.verify`'s claim rows; cost(fig) -> text for a missing
    figure (default: the runtime the figure registers for the preset)."""
    here = report_dir(out, preset)
    entries = []
    for fig in registry.figures():
        paths = layout.outputs(fig, out, preset)
        rows = table[(table["paper"] == fig.paper) & (table["figure"] == fig.key)].to_dict("records")
        e = Entry(fig, "current", claims=rows, command=command(fig, preset))
        files = {"png": paths.png, "pdf": paths.png.with_suffix(".pdf"), "csv": paths.csv, "meta.json": paths.meta}
        e.links = {k: Path(os.path.relpath(p, here)).as_posix() for k, p in files.items() if p.exists()}
        if not paths.csv.exists():
            cfg = runner.prepare(fig, preset, [])
            e.state = "missing"
            e.needs = [*fig.needs(cfg), *(["a GPU"] if preset in fig.gpu_presets else [])]
            e.cost = cost(fig) if cost else fig.runtime.get(preset, "")
            e.why = "not made yet"
        else:
            try:
                e.meta = json.loads(paths.meta.read_text())
            except (OSError, ValueError) as exc:
                e.state, e.why = "unreadable", f"{paths.meta.name} cannot be read ({type(exc).__name__})"
            else:
                if e.meta.get("preset") != preset:
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
        lines.append(("not counted, stale", "; ".join(
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
    """'; its last run took 12 min' (or that it reused cached points) from meta.json."""
    if not e.meta:
        return ""
    wall = e.meta.get("wall_time_s")
    if e.meta.get("points_computed") == 0 or (isinstance(wall, (int, float)) and wall < 1):
        return "; its last run reused cached work (see its source figure's cost)"
    return f"; its last run took {duration(wall)}"


SMOKE_NOTE = ("Smoke preset: tiny sizes on stand-in data, run to test the code. Its verdicts test the code, not the "
              "papers; the papers' answers are in the default-preset report (figures/README.md).")


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
                     "current": sum(e.state == "current" for e in es), "stale": sum(e.state == "stale" for e in es),
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
              "| paper | figures made | current | stale | PASS | FAIL | INCONCLUSIVE | checks failed | missing |",
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
    out += [" · ".join(f"[{k}]({v})" for k, v in e.links.items() if k != "png"), ""]
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
        out += [f"<sub>{_md_cell(provenance(e.meta))}</sub>", ""]
    return out


# ---------------------------------------------------------------------------------------------------------- HTML

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1b1b; margin: 0 auto;
       max-width: 1100px; padding: 1em 1.5em; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 2px solid #ddd; } h3 { margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0; width: 100%; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .45em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
.v { font-weight: 700; padding: 0 .35em; border-radius: 3px; white-space: nowrap; }
.PASS { background: #d8f0d8; color: #0b5d0b; } .FAIL { background: #f8d7d7; color: #8b0000; }
.INCONCLUSIVE { background: #fdf0c8; color: #6b4e00; }
.state { font-weight: 700; padding: .1em .4em; border-radius: 3px; }
.stale, .other-preset, .unreadable { background: #fdf0c8; color: #6b4e00; }
.missing { background: #e8e8e8; color: #444; }
.prov { color: #555; font-size: .8em; font-family: ui-monospace, monospace; }
.src { color: #555; font-size: .9em; } .smoke { background: #fdf0c8; padding: .5em; }
ul.answer > li { margin-bottom: .6em; }
.links a { margin-right: 1em; } code { background: #f5f5f5; padding: 0 .2em; }
details { margin: .3em 0; } .figure { page-break-inside: avoid; }
@media print { body { max-width: none; font-size: 11px; } a { color: inherit; text-decoration: none; }
               h2 { page-break-before: always; } }
"""


def _e(text) -> str:
    return html.escape(str(text))


def _verdict(v: str) -> str:
    return f'<span class="v {_e(v)}">{_e(v)}</span>'


def render_html(entries: list[Entry], preset: str) -> str:
    """The report as one self-contained static page (inline CSS, no scripts, relative links only)."""
    c, k = counts(entries), counts(entries, checks=True)
    current = sum(e.state == "current" for e in entries)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>Reproduction report ({_e(preset)} preset)</title>", f"<style>{CSS}</style></head><body>",
             f"<h1>Reproduction report ({_e(preset)} preset)</h1>"]
    if preset == Preset.smoke.value:
        parts.append(f'<p class="smoke"><strong>{_e(SMOKE_NOTE)}</strong></p>')
    parts += ['<h2 id="answer">The answer, paper by paper</h2>',
              "<p>From current figures only (a stale figure's numbers may have changed; it is listed apart with the "
              "command that refreshes it).</p>", '<ul class="answer">']
    for p, es in _by_paper(entries):
        parts.append(f'<li><a href="#{_e(p.name)}"><strong>{_e(p.name)}</strong></a> (<code>{_e(p.alias)}</code>)'
                     "<ul>" + "".join(f"<li><strong>{_e(label)}</strong>: {_e(text)}</li>"
                                      for label, text in answer_lines(answer(es))) + "</ul></li>")
    parts += ["</ul>",
              "<p>Built by <code>repro report</code> from the CSVs, meta.json files and claims in this checkout "
              "(nothing recomputed). Verdicts: " + _verdict(PASS) + " the claim's measure is inside the bound at the "
              "measure's confidence; " + _verdict(FAIL) + " outside it; " + _verdict(INCONCLUSIVE) +
              " the interval straddles the bound or the data cannot decide. Every bound names its source. Checks "
              "test our own run (convergence, solver residuals, exactness); they are not the paper's claims and are "
              "not counted with them, and a failed check makes the claims it affects INCONCLUSIVE.</p>",
              f"<p><strong>The papers' claims, current figures ({current} of {len(entries)}): {c[PASS]} PASS, "
              f"{c[FAIL]} FAIL, {c[INCONCLUSIVE]} INCONCLUSIVE.</strong> Our checks: {k[PASS]} PASS, {k[FAIL]} FAIL, "
              f"{k[INCONCLUSIVE]} INCONCLUSIVE.</p>",
              "<table><tr><th>paper</th><th>figures made</th><th>current</th><th>stale</th><th>PASS</th><th>FAIL</th>"
              "<th>INCONCLUSIVE</th><th>checks failed</th><th>missing: command, needs, cost</th></tr>"]
    for r in _summary_rows(entries):
        miss = "<br>".join(f'<a href="#{_e(e.anchor)}">{_e(e.fig.key)}</a>: <code>{_e(e.command)}</code>'
                           f"{_e(_to_make(e))}" for e in r["missing"]) or "-"
        parts.append(f'<tr><td><a href="#{_e(r["paper"])}">{_e(r["paper"])}</a> (<code>{_e(r["alias"])}</code>)</td>'
                     f'<td class="num">{r["made"]} / {r["total"]}</td><td class="num">{r["current"]}</td>'
                     f'<td class="num">{r["stale"]}</td><td class="num">{r[PASS]}</td><td class="num">{r[FAIL]}</td>'
                     f'<td class="num">{r[INCONCLUSIVE]}</td><td class="num">{r["checks_failed"]}</td>'
                     f"<td>{miss}</td></tr>")
    parts.append("</table>")
    for p, es in _by_paper(entries):
        parts.append(f'<h2 id="{_e(p.name)}">{_e(p.name)}</h2>'
                     f'<p><em>{_e(p.title)}</em> (<code>{_e(p.file)}</code>)</p>')
        parts += [_html_entry(e) for e in es]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_entry(e: Entry) -> str:
    head = f'<div class="figure"><h3 id="{_e(e.anchor)}">{_e(e.fig.key)}: {_e(e.fig.title)}</h3>'
    state = f'<span class="state {e.state.replace(" ", "-")}">{_e(e.state.upper())}</span>'
    if e.state == "missing":
        return head + f"<p>{state} ({_e(e.why)}). Make it with <code>{_e(e.command)}</code>{_e(_to_make(e))}.</p></div>"
    out = [head]
    if e.state != "current":
        out.append(f"<p>{state}: {_e(e.why)}.</p>")
    if "png" in e.links:
        out.append(f'<a href="{_e(e.links["png"])}"><img src="{_e(e.links["png"])}" alt="{_e(e.name)}"></a>')
    out.append('<p class="links">' + "".join(f'<a href="{_e(v)}">{_e(k)}</a>' for k, v in e.links.items()
                                             if k != "png") + "</p>")
    for title, rows in _claim_groups(e):
        out.append(f"<p><strong>{_e(title)}</strong></p><table><tr><th>id</th><th>statement</th><th>value</th>"
                   "<th>interval</th><th>units</th><th>bound</th><th>bound's source</th><th>verdict</th><th>cause</th>"
                   "</tr>")
        for r in rows:
            out.append(f"<tr><td>{_e(r['id'])}</td><td>{_e(r['text'])}</td><td class='num'>{_number(r['value'])}"
                       f"</td><td class='num'>{_interval(r)}</td><td class='num'>{_units(r)}</td>"
                       f"<td>{_e(r.get('threshold', ''))}</td><td class='src'>{_e(_source(r))}</td>"
                       f"<td>{_verdict(r['verdict'])}</td><td>{_e(_cause(r))}</td></tr>")
        out.append("</table>")
    if e.meta:
        diff = differences(e.fig, e.meta)
        if diff:
            out.append("<details open><summary>Differs from the paper</summary><ul>"
                       + "".join(f"<li>{_e(d)}</li>" for d in diff) + "</ul></details>")
        out.append(f'<p class="prov">{_e(provenance(e.meta))}</p>')
    out.append("</div>")
    return "\n".join(out)


def build(out: Path, preset: str, table: pd.DataFrame, cost: Callable[[Figure], str] | None = None
          ) -> tuple[list[Entry], str, str]:
    """Entries, HTML and Markdown of the report for `preset` under `out`."""
    preset = parse_preset(preset).value
    entries = collect(out, preset, table, cost)
    return entries, render_html(entries, preset), markdown(entries, preset)
