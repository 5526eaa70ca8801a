"""The report as a web page (figures/index.html): the same entries and answer as the markdown, styled."""
from __future__ import annotations

import html

from . import runtimes
from .claims import FAIL, INCONCLUSIVE, PASS
from .registry import Preset
from .report import (
    SMOKE_NOTE,
    Entry,
    _by_paper,
    _cause,
    _claim_groups,
    _interval,
    _number,
    _source,
    _summary_rows,
    _to_make,
    _units,
    answer,
    answer_lines,
    counts,
    differences,
    provenance,
)

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
              "<table><tr><th>paper</th><th>figures made</th><th>current</th><th>stale or unreadable</th>"
              "<th>PASS</th><th>FAIL</th>"
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
        if flag := runtimes.slower(e.fig, e.meta):
            out.append(f"<p><strong>Slow</strong>: {_e(flag)}.</p>")
    out.append("</div>")
    return "\n".join(out)
