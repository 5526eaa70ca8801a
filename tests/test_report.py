"""`repro report` from smoke outputs: every figure once, verdict counts as `repro verify`, missing / stale / other
preset shown as such, and the page as a browser shows it (headless Chromium, skipped where there is none)."""
import json
import re
import shutil

import pandas as pd
import pytest
from browser import find_browser, open_page
from typer.testing import CliRunner

from reproduce import registry, runner
from reproduce.cli import app

MADE = (("norm", "fig2"), ("norm", "fig3"), ("linearity", "fig1"))


def repro(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A results folder with three smoke figures made and the others missing, and its report."""
    out = tmp_path_factory.mktemp("report")
    for alias, key in MADE:
        res = repro(alias, key, "--preset", "smoke", "--device", "cpu", "--out", out)
        assert res.exit_code == 0, res.output
    res = repro("report", "--preset", "smoke", "--no-costs", "--out", out)
    assert res.exit_code == 0, res.output
    return out


def _verdict_counts(text: str) -> tuple[int, int, int]:
    m = re.search(r"Claims: (\d+) PASS, (\d+) FAIL, (\d+) INCONCLUSIVE", re.sub(r"<[^>]+>", "", text))
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
    table = pd.read_csv(runner.claims_path(made, "smoke"))
    expected = tuple(int((table["verdict"] == v).sum()) for v in ("PASS", "FAIL", "INCONCLUSIVE"))
    assert sum(expected) > 0
    assert _verdict_counts(page) == expected == _verdict_counts(md)
    for verdict, n in zip(("PASS", "FAIL", "INCONCLUSIVE"), expected):   # each claim row spells its verdict
        assert md.count(f"| **{verdict}** |") == n


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
    files = {p.name for p in runner.compute_files(fig)}
    assert "fig1.py" in files and "fig2.py" not in files           # another figure's file is not this one's code
    assert runner.staleness(fig, {"code_version": runner.code_version(fig)}) is None
    assert "code version" in runner.staleness(fig, {"code_version": "x"})
    # the code version (the cache key's) hashes the same files: another figure of the paper has its own
    assert runner.code_version(fig) != runner.code_version(registry.figure("norm", "fig2"))
    # ...while runs that figures share (paper 003's Figs 2 and 7) are keyed by the code they share
    fig2, fig7 = registry.figure("confusion", "fig2"), registry.figure("confusion", "fig7")
    assert runner.shared_version(fig2) == runner.shared_version(fig7)
    assert runner.code_version(fig2) != runner.code_version(fig7)


def test_report_without_results_says_what_to_run(tmp_path):
    res = repro("report", "--preset", "smoke", "--no-costs", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    md = (tmp_path / "figures" / "smoke" / "README.md").read_text()
    assert _verdict_counts(md) == (0, 0, 0)
    assert md.count("**MISSING**") == len(registry.figures())


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
