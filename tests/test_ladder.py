"""Scale ladders: the four verdicts on planted rungs, and a ladder over a smoke figure (variants only, resumable)."""
import dataclasses
import math

import pandas as pd
import pytest
from typer.testing import CliRunner

from reproduce import claims, ladder, layout, registry
from reproduce.cli import app
from reproduce.config import ReproError

P, F, I = claims.PASS, claims.FAIL, claims.INCONCLUSIVE
RUNGS = [1000, 4000, 16000]


def test_each_ladder_verdict_from_planted_rungs():
    below_one = (-math.inf, 1.0)                     # the claim: measure <= 1
    same = dict(lows=[0.0] * 3, highs=[0.0] * 3)
    assert ladder.verdict(RUNGS, [0.2, 0.5, 0.9], bound=below_one, verdicts=[P, P, P], **same)[0] == ladder.HOLDS
    v, cross = ladder.verdict(RUNGS, [4.0, 3.0, 2.0], [3.8, 2.8, 1.9], [4.2, 3.2, 2.1], below_one, [F, F, F])
    assert v == ladder.TOWARD and cross == pytest.approx(64000, rel=1e-6)   # margin -3, -2, -1: +1 per x4
    assert ladder.verdict(RUNGS, [2.0, 3.0, 4.0], [1.9, 2.9, 3.9], [2.1, 3.1, 4.1], below_one,
                          [F, F, F])[0] == ladder.AWAY
    assert ladder.verdict(RUNGS, [2.0, 2.05, 1.98], [1.8, 1.8, 1.8], [2.2, 2.2, 2.2], below_one,
                          [F, F, F])[0] == ladder.FAILS
    assert ladder.verdict(RUNGS, [1.0, 1.0, 1.0], [0.5] * 3, [1.5] * 3, below_one, [I, I, I])[0] == ladder.INSIDE
    assert ladder.verdict(RUNGS, [1.2, 0.8, 1.1], [0.5] * 3, [1.5] * 3, below_one, [I, I, I])[0] == ladder.UNDECIDED
    v, cross = ladder.verdict(RUNGS, [4.0, 3.9995, 3.999], [3.9989] * 3, [3.9991] * 3, below_one, [F, F, F])
    assert v == ladder.TOWARD and math.isnan(cross)      # creeping toward it: the fit crosses past any number
    # a ladder may climb down toward the paper's value (stop loss 1e-2 -> 1e-4): first and last follow the climb
    down = [1e-2, 1e-3, 1e-4]
    v, cross = ladder.verdict(down, [4.0, 3.0, 2.0], [3.8, 2.8, 1.9], [4.2, 3.2, 2.1], below_one, [F, F, F])
    assert v == ladder.TOWARD and cross == pytest.approx(1e-5, rel=1e-6)   # margin -3, -2, -1: +1 per /10
    assert ladder.verdict(down, [2.0, 3.0, 4.0], [1.9, 2.9, 3.9], [2.1, 3.1, 4.1], below_one,
                          [F, F, F])[0] == ladder.AWAY


def test_a_ladder_names_one_scalar_setting_with_several_values():
    fig = registry.figure("confusion", "fig1")
    assert ladder.split_sets(fig, ["epochs=10,20", "lr=0.1"]) == ("epochs", ["10", "20"], ["lr=0.1"])
    assert ladder.split_sets(fig, ["dims=80,120/40,60", "epochs=5"]) == ("dims", ["80,120", "40,60"], ["epochs=5"])
    assert ladder.rung_number((40, 60)) == 60 and ladder.rung_number(0.5) == 0.5
    for bad in (["epochs=10"], ["nope=1,2"], ["epochs=10,x"], ["epochs=1,2", "lr=0.1,0.2"], ["dims=80,120"]):
        with pytest.raises(ReproError):
            ladder.split_sets(fig, bad)


@pytest.mark.slow
def test_a_ladder_writes_variants_only_and_resumes_from_the_cache(tmp_path):
    fig = registry.figure("confusion", "fig1")
    seen = []
    path, t = ladder.run(fig, ["epochs=10,20"], preset="smoke", device="cpu", out=tmp_path,
                         rung_done=lambda v, res: seen.append((v, res.computed)))
    assert [c for _, c in seen] == [2, 2] and path.exists() and path.with_suffix(".csv").name.endswith("epochs.csv")
    assert not (tmp_path / "data" / "smoke" / "gradient-confusion" / "fig1.csv").exists()   # never the canonical
    assert set(t.claim) == {c.id for c in fig.claims} and set(t.rung) == {10.0, 20.0}
    assert t.groupby("claim").ladder.nunique().eq(1).all()
    assert t.csv.str.startswith("data/smoke/gradient-confusion/variants/fig1-").all()   # relative to --out
    # a claim with no value at any rung (a panel the ladder's --set leaves out) gets no ladder verdict
    gone, rungs = "F1-a-over-fits", []
    for rung, csv in t.groupby("rung").csv.first().items():
        res = claims.evaluate_all(fig.claims, pd.read_csv(tmp_path / csv))
        rungs.append((rung, tmp_path / csv, [dataclasses.replace(r, value=math.nan) if r.id == gone else r
                                             for r in res]))
    assert set(ladder.table(fig, "epochs", rungs, tmp_path).claim) == set(t.claim) - {gone}
    # the command line: the plan names each rung and what its cache holds; in a log one line per finished point
    args = ["ladder", "confusion", "fig1", "--preset", "smoke", "--set", "epochs=10,20,30", "--out", str(tmp_path)]
    plan = CliRunner().invoke(app, [*args, "--dry-run"])
    assert plan.exit_code == 0, plan.output
    assert "fig1 [epochs=10]: all 2 points cached" in plan.output and "fig1 [epochs=20]: all 2 points cached" in \
        plan.output and "fig1 [epochs=30]: 2 of 2 points to compute" in plan.output
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "gradient-confusion fig1 [epochs=30] 2/2" in res.output and "[epochs=10] 2/2 cached" in res.output
    assert "fig1-ladder-epochs.csv" in res.output
    assert pd.read_csv(path).rung.nunique() == 3
    said = ladder.causes(layout.outputs(fig, tmp_path, "smoke").csv)   # the cause column reads it
    assert set(said) == {c.id for c in fig.claims} and all("epochs" in s[0] and "(10: " in s[0] for s in said.values())
    planted = claims.ClaimResult("F1-a-over-fits", "t", 1.0, 0.5, 1.5, 3, "<= 0.01", claims.FAIL, "outside")
    assert ladder.with_ladder(planted, said).cause.startswith("outside; ")
    assert ladder.with_ladder(dataclasses.replace(planted, verdict=claims.PASS), said).cause == "outside"


def test_a_list_setting_ladder_plots_against_its_largest_value():
    """depths=50/100/300: each rung sits at its largest value; the paper's list is marked at its largest too."""
    fig = registry.figure("confusion", "fig6")
    t = pd.DataFrame({"claim": ["a"] * 2, "rung": [50.0, 100.0], "climb": [0, 1], "value": [0.1, 0.2],
                      "ci_low": [0.0, 0.1],
                      "ci_high": [0.2, 0.3], "bound_lo": [0.0] * 2, "bound_hi": [math.inf] * 2,
                      "ladder": [ladder.HOLDS] * 2})
    figure = ladder.plot(t, fig, "depths", (300,))
    assert figure.axes[0].lines[-1].get_xdata()[0] == 300
    assert "depths = 300" in figure._suptitle.get_text()


def test_a_ladder_log_names_the_rung_in_its_heartbeat(tmp_path, monkeypatch, slow_heartbeat):
    """A rung's label "[key=value]" is text, not rich markup: the heartbeat of a rung in flight keeps it."""
    fig = slow_heartbeat(registry.figure("norm", "fig3"))
    monkeypatch.setattr(registry, "figure", lambda paper, key: fig)
    res = CliRunner().invoke(app, ["ladder", "norm", "fig3", "--preset", "smoke", "--set", "depth=3,4",
                                   "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert any("fig3 [depth=3]" in x and "still running" in x for x in res.output.splitlines()), res.output


def test_a_failing_check_along_a_ladder_speaks_of_our_runs_not_the_paper(tmp_path):
    rows = [{"setting": "steps", "rung": r, "climb": i, "claim": cid, "kind": kind, "value": v, "verdict": F,
             "ladder": ladder.AWAY, "crossing_extrapolated": math.nan}
            for cid, kind in (("c", "claim"), ("k", "check")) for i, (r, v) in enumerate(((10, 0.4), (20, 0.0)))]
    pd.DataFrame(rows).to_csv(tmp_path / "fig1-ladder-steps.csv", index=False)
    said = ladder.causes(tmp_path / "fig1.csv")
    assert said["c"][0].startswith("not our scale: moves away along steps (10: 0.4 FAIL, 20: 0 FAIL)")
    assert said["k"] == ["our runs: moves away along steps (10: 0.4 FAIL, 20: 0 FAIL)"]



def test_a_rung_without_a_value_says_why(tmp_path):
    """A rung where the claim has no value (its points did not train) names the claim's reason, not 'nan'."""
    rows = [{"setting": "depths", "rung": r, "climb": i, "claim": "a", "kind": "claim", "value": v, "verdict": verdict,
             "cause": cause, "ladder": ladder.UNDECIDED, "crossing_extrapolated": math.nan}
            for i, (r, v, verdict, cause) in enumerate(((50, 0.5, "INCONCLUSIVE", "straddles"),
                                                         (100, math.nan, "INCONCLUSIVE", "needs 3 trainable, has 1")))]
    pd.DataFrame(rows).to_csv(tmp_path / "fig6-ladder-depths.csv", index=False)
    assert ladder.causes(tmp_path / "fig6.csv")["a"] == [
        "the depths ladder is undecided (50: 0.5 INCONCLUSIVE, 100: no value (needs 3 trainable, has 1))"]


def test_a_rung_without_a_value_is_marked_on_the_plot():
    fig = registry.figure("confusion", "fig6")
    t = pd.DataFrame({"claim": ["a"] * 2, "rung": [50.0, 100.0], "climb": [0, 1], "value": [0.5, math.nan],
                      "ci_low": [0.4, math.nan], "ci_high": [0.6, math.nan], "bound_lo": [0.6] * 2,
                      "bound_hi": [math.inf] * 2, "ladder": [ladder.UNDECIDED] * 2})
    texts = [x.get_text() for x in ladder.plot(t, fig, "depths", (300,)).axes[0].texts]
    assert texts == ["no value"]
