"""`repro report` from smoke outputs: every figure once, verdict counts as `repro verify`, missing / stale / other
preset shown as such, and the page as a browser shows it (headless Chromium, skipped where there is none)."""
import json
import re
import shutil

import pandas as pd
import pytest
from browser import find_browser, open_page
from typer.testing import CliRunner

from reproduce import layout, provenance, registry, report
from reproduce.cli import app

pytestmark = pytest.mark.xdist_group("report")   # the module's report is made once, on one pytest-xdist worker
MADE = (("norm", "fig2"), ("norm", "fig3"), ("linearity", "fig1"))


def repro(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="session")   # once per worker (the module's tests share one pytest-xdist worker)
def made(tmp_path_factory, smoke):
    """A results folder with three smoke figures made (copied from the session's smoke runs) and the others missing,
    and its report."""
    out = smoke.copy_figures(MADE, tmp_path_factory.mktemp("report"))
    res = repro("report", "--preset", "smoke", "--no-costs", "--out", out)
    assert res.exit_code == 0, res.output
    return out


def _verdict_counts(text: str) -> tuple[int, int, int]:
    m = re.search(r"claims, current figures \(\d+ of \d+\): (\d+) PASS, (\d+) FAIL, (\d+) INCONCLUSIVE",
                  re.sub(r"<[^>]+>", "", text))
    assert m, "no verdict count line"
    return tuple(map(int, m.groups()))


def test_every_figure_once_with_the_verify_counts(made):
    folder = made / "figures" / "smoke"
    page, md = (folder / "index.html").read_text(), (folder / "README.md").read_text()
    for fig in registry.figures():
        anchor = f"{fig.paper}-{fig.key}"
        assert page.count(f'id="{anchor}"') == 1, anchor
        assert md.count(f'<a id="{anchor}"></a>') == 1, anchor
    res = repro("verify", "--preset", "smoke", "--out", made)
    assert res.exit_code == 0, res.output
    table = pd.read_csv(layout.claims_path(made, "smoke"))
    claims = table[table["kind"] == "claim"]                          # the papers' claims; checks apart
    expected = tuple(int((claims["verdict"] == v).sum()) for v in ("PASS", "FAIL", "INCONCLUSIVE"))
    assert sum(expected) > 0 and table["bound_source"].notna().all()
    assert _verdict_counts(page) == expected == _verdict_counts(md)
    for verdict in ("PASS", "FAIL", "INCONCLUSIVE"):   # each row (claim or check) spells its verdict
        assert md.count(f"| **{verdict}** |") == int((table["verdict"] == verdict).sum())
    assert md.index("Smoke preset") < md.index("The answer, paper by paper")   # smoke verdicts test the code


def test_made_and_missing_figures(made):
    md = (made / "figures" / "smoke" / "README.md").read_text()
    section = md.split('<a id="norm-preservation-fig2"></a>')[1].split("<a id=")[0]
    assert "![norm-preservation fig2](norm-preservation/fig2.png)" in section
    assert "(../../data/smoke/norm-preservation/fig2.csv)" in section and "Differs from the paper" in section
    assert "repro norm-preservation fig2 --preset smoke" in section          # provenance
    assert (made / "figures" / "smoke" / "norm-preservation" / "fig2.png").exists()
    missing = md.split('<a id="norm-preservation-fig1"></a>')[1].split("<a id=")[0]
    assert "**MISSING**" in missing and "`repro norm fig1 --preset smoke`" in missing
    needs = md.split('<a id="random-walk-bridge-fig4"></a>')[1].split("<a id=")[0]
    assert "repro bridge fig4 --preset smoke" in needs


def test_stale_and_other_preset_are_shown_as_such(made, tmp_path):
    out = tmp_path / "r"
    shutil.copytree(made / "data", out / "data")
    shutil.copytree(made / "figures", out / "figures")
    meta_path = out / "data" / "smoke" / "norm-preservation" / "fig2.meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "code_version": "0" * 16, "git": {"sha": None, "dirty": None}}))
    other = out / "data" / "smoke" / "norm-preservation" / "fig3.meta.json"
    other.write_text(json.dumps({**json.loads(other.read_text()), "preset": "paper"}))
    assert repro("report", "--preset", "smoke", "--no-costs", "--out", out).exit_code == 0
    md = (out / "figures" / "smoke" / "README.md").read_text()
    assert "**STALE**: made by code version 0000000000000000" in md
    assert "**OTHER PRESET**: its meta.json says preset 'paper'" in md
    page = (out / "figures" / "smoke" / "index.html").read_text()
    assert page.count(">STALE<") == 1 and page.count(">OTHER PRESET<") == 1


def test_staleness_follows_the_files_that_compute_a_figure():
    fig = registry.figure("norm", "fig1")
    files = {p.name for p in provenance.compute_files(fig)}
    assert "fig1.py" in files and "fig2.py" not in files           # another figure's file is not this one's code
    assert provenance.staleness(fig, {"code_version": provenance.code_version(fig)}) is None
    assert "code version" in provenance.staleness(fig, {"code_version": "x"})
    # the code version (the cache key's) hashes the same files: another figure of the paper has its own
    assert provenance.code_version(fig) != provenance.code_version(registry.figure("norm", "fig2"))
    # ...while runs that figures share (paper 003's Figs 2 and 7) are keyed by the code they share
    fig2, fig7 = registry.figure("confusion", "fig2"), registry.figure("confusion", "fig7")
    assert provenance.shared_version(fig2) == provenance.shared_version(fig7)
    assert provenance.code_version(fig2) != provenance.code_version(fig7)
    shared = {f.name for f in provenance.compute_files(fig2)}
    assert {"cifar.py", "cifar_family.py", "convnets.py"} <= shared and "bench.py" not in shared   # a benchmark
    assert "mlp.py" not in shared          # nor the MLP figures' modules: editing them keeps the CIFAR runs cached
    runs = {f.name for f in provenance.run_files(fig2)}   # the runs' key: the module that computes them and below
    assert {"cifar.py", "convnets.py", "sgd.py"} <= runs and not {"cifar_family.py", "fig2.py", "fig4.py"} & runs


def _planted(fig, state, rows, meta=None):
    from reproduce import report
    return report.Entry(fig, state, claims=rows, meta=meta, command=report.command(fig, "default"))


def _row(cid, verdict, cause="", kind="claim"):
    return {"id": cid, "text": f"statement {cid}", "value": 0.5, "ci_low": 0.4, "ci_high": 0.6, "units": 3,
            "threshold": "<= 1", "bound_source": "spec", "verdict": verdict, "cause": cause, "kind": kind}


def test_the_answer_per_paper_from_planted_results():
    """One line per paper: holds / does not hold / undecided with the reason, from current figures only; checks are
    not the paper's claims; a stale figure is listed apart with its rerun command."""
    from reproduce import report, report_html
    f1, f2, f3 = (registry.figure("norm", k) for k in ("fig1", "fig2", "fig3"))
    entries = [_planted(f1, "current", [_row("a", "PASS"), _row("b", "FAIL"),
                                        _row("c", "INCONCLUSIVE", "too few units to judge: 1 net"),
                                        _row("d", "INCONCLUSIVE", "FAIL set aside; check k failed"),
                                        _row("k", "FAIL", kind="check")]),
               _planted(f2, "stale", [_row("x", "PASS")], meta={"paper": "norm-preservation", "figure": "fig2",
                                                               "preset": "default", "overrides": ["widths=500"],
                                                               "wall_time_s": 10.0, "points_computed": 1,
                                                               "grid_points": 13}),
               _planted(f3, "missing", [])]
    a = report.answer(entries)
    assert a.holds == ["fig1 a"] and a.fails == ["fig1 b"]
    assert a.undecided == {"too few units": ["fig1 c"], "a check of our run failed": ["fig1 d"]}
    md = report.markdown(entries, "default")
    line = next(x for x in md.splitlines() if x.startswith("- **norm-preservation**"))
    assert "**holds**: 1: fig1 (a)" in line and "**does not hold here**: 1: fig1 (b)" in line
    assert "too few units (1): fig1 (c)" in line and "a check of our run failed (1): fig1 (d)" in line
    assert "fig2 (rerun `repro norm-preservation fig2 --preset default --set widths=500 --promote`" in line
    assert "its last run took 10 s for 1 of its 13 points (the rest cached)" in line   # not the figure's cost
    assert "**not made**: fig3" in line
    assert "claims, current figures (1 of 3): 1 PASS, 1 FAIL, 2 INCONCLUSIVE" in md   # the stale x and check k apart
    assert "Our checks: 0 PASS, 1 FAIL" in md
    page = report_html.render_html(entries, "default")
    assert page.index("The answer, paper by paper") < page.index("<table>")
    entries[1].state = "unreadable"     # an unreadable figure counts with the stale ones, never as current
    row = next(r for r in report._summary_rows(entries) if r["paper"] == "norm-preservation")
    assert (row["made"], row["current"], row["stale"]) == (2, 1, 1)
    assert "not counted (stale or unreadable)" in report.markdown(entries, "default")


def test_report_without_results_says_what_to_run(tmp_path):
    res = repro("report", "--preset", "smoke", "--no-costs", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    md = (tmp_path / "figures" / "smoke" / "README.md").read_text()
    assert _verdict_counts(md) == (0, 0, 0)
    assert md.count("**MISSING**") == len(registry.figures())
    n = len(registry.figures())      # the printed line names 0 stale rather than leaving it out
    assert f"{n} figures (0 current, 0 stale, {n} missing)" in " ".join(res.output.split())


@pytest.mark.skipif(find_browser() is None, reason="no Chromium on PATH (Debian: apt-get install chromium); "
                                                   ".ci/run installs it")
def test_the_page_in_a_real_browser(made, tmp_path):
    shot = tmp_path / "report.png"
    seen = open_page(made / "figures" / "smoke" / "index.html", shot)
    assert seen["title"] == "Reproduction report (smoke preset)"
    assert len(seen["images"]) == len(MADE)
    assert all(width > 0 for _, width in seen["images"]), seen["images"]
    assert seen["errors"] == []
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"screenshot: {shot}")


@pytest.mark.skipif(find_browser() is None, reason="no Chromium on PATH")
def test_the_browser_check_sees_a_broken_image(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><title>t</title></head><body><img src="nowhere.png"></body></html>')
    seen = open_page(page, tmp_path / "shot.png")
    assert seen["images"] == [("nowhere.png", 0)]
    assert seen["errors"], "a missing image is a console error"


def test_a_missing_figure_says_how_to_provide_a_dataset_not_offline(tmp_path):
    """CIFAR-100 is not in the offline copies: its missing figures carry the one-line way to provide it; the CIFAR-10
    figures run on the CPU at the default preset and need only their data."""
    entries = report.collect(tmp_path, "default", pd.DataFrame(columns=["paper", "figure"]), cost=lambda fig: "")
    by = {(e.fig.paper, e.fig.key): e for e in entries}
    fig9, fig3 = by[("gradient-confusion", "fig9")], by[("gradient-confusion", "fig3")]
    assert fig9.state == "missing" and len(fig9.needs) == 1 and "`repro data fetch cifar100`" in fig9.needs[0]
    assert fig3.needs == ["cifar10"]


def test_a_note_every_run_leaves_is_listed_once_per_network():
    """'Differs from the paper' folds the points' notes by text, at the settings their points share."""
    fig = registry.figure("confusion", "fig2")
    notes = [{"point": {"depth": d, "lr": lr, "run": r}, "parameters": 100 * d}
             for d in (16, 28) for lr in (0.1, 0.3) for r in range(3)]
    notes.append({"point": {"depth": 40, "lr": 0.1, "run": 0}, "parameters": 4000, "diverged": "yes"})
    lines = [line for line in report.differences(fig, {"point_notes": notes}) if line.startswith("note")]
    assert lines == ["note at {'depth': 16} (6 points): parameters: 1600",
                     "note at {'depth': 28} (6 points): parameters: 2800",
                     "note at {'depth': 40, 'lr': 0.1, 'run': 0}: parameters: 4000; diverged: yes"]
