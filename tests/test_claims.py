"""The claim machinery on synthetic frames: each bound type lands PASS, FAIL and INCONCLUSIVE as built."""
import math

import numpy as np
import pandas as pd
import pytest

from reproduce import claims
from reproduce.claims import Claim, above, below, between


def units(values, unit="seed", **cols) -> pd.DataFrame:
    """One row per unit with the given values."""
    return pd.DataFrame({unit: range(len(values)), "v": values, **cols})


def mean_claim(bound, **kw) -> Claim:
    return Claim("c", "test", lambda d: d["v"].mean(), bound, **kw)


def spread(center: float, half: float, n: int = 20) -> list[float]:
    """n values centred on `center`, uniformly within +- half."""
    return list(center + np.linspace(-half, half, n))


@pytest.mark.parametrize("bound, inside, outside, across", [
    (below(1.0), 0.5, 1.5, 1.0),
    (above(1.0), 1.5, 0.5, 1.0),
    (between(1.0, 2.0), 1.5, 3.0, 2.0),
])
def test_each_bound_gives_each_verdict(bound, inside, outside, across):
    c = mean_claim(bound)
    assert claims.evaluate(c, units(spread(inside, 0.1))).verdict == claims.PASS
    assert claims.evaluate(c, units(spread(outside, 0.1))).verdict == claims.FAIL
    r = claims.evaluate(c, units(spread(across, 0.5)))
    assert r.verdict == claims.INCONCLUSIVE and "straddles" in r.cause
    assert r.ci_low < across < r.ci_high and r.units == 20


def test_the_interval_is_the_mean_uncertainty():
    rng = np.random.default_rng(0)
    v = rng.normal(1.0, 1.0, 400)
    r = claims.evaluate(mean_claim(below(10)), units(v))
    se = v.std(ddof=1) / math.sqrt(len(v))
    assert r.ci_low == pytest.approx(v.mean() - 1.96 * se, abs=0.3 * se)
    assert r.ci_high == pytest.approx(v.mean() + 1.96 * se, abs=0.3 * se)


def test_one_lucky_draw_does_not_decide():
    """Units that straddle the bound: the mean alone would pass, the verdict does not."""
    r = claims.evaluate(mean_claim(below(0.15)), units([0.136, 0.089, 0.182, 0.215]))
    assert r.value == pytest.approx(0.1555) and r.verdict == claims.INCONCLUSIVE
    r = claims.evaluate(mean_claim(below(0.16)), units([0.136, 0.089, 0.182, 0.215][:2]))
    assert r.verdict == claims.INCONCLUSIVE and "too few units" in r.cause


def test_bootstrap_is_deterministic_for_a_seed_and_differs_across_seeds():
    df = units(list(np.random.default_rng(1).normal(size=30)))
    c = mean_claim(below(5))
    a, b, other = claims.evaluate(c, df, seed=3), claims.evaluate(c, df, seed=3), claims.evaluate(c, df, seed=4)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert (a.ci_low, a.ci_high) != (other.ci_low, other.ci_high)


def test_units_are_resampled_whole():
    """Rows of one unit move together: a unit with many rows does not count as many units."""
    df = pd.DataFrame({"net": np.repeat(range(2), 50), "v": np.r_[np.zeros(50), np.ones(50)]})
    r = claims.evaluate(mean_claim(below(2), unit=("net",)), df)
    assert r.units == 2 and r.verdict == claims.INCONCLUSIVE and "too few units" in r.cause


def test_strata_keep_every_stratum_in_each_resample():
    """A slope over widths with independent networks per width: each resample has every width."""
    rng = np.random.default_rng(0)
    widths = [100, 400, 1600, 6400]
    rows = [(w, n, w ** -0.5 * (1 + 0.05 * rng.normal())) for w in widths for n in range(5)]
    df = pd.DataFrame(rows, columns=["width", "net", "v"])

    def slope(d):
        m = d.groupby("width")["v"].mean()
        claims.need(len(m) == len(widths), "a width is missing")
        return np.polyfit(np.log(m.index), np.log(m.values), 1)[0]

    c = Claim("s", "slope", slope, between(-0.55, -0.45), unit=("net",), strata=("width",))
    r = claims.evaluate(c, df)
    assert r.verdict == claims.PASS and r.units == 20
    assert claims.evaluate(Claim("s", "slope", slope, between(-0.3, 0), unit=("net",), strata=("width",)),
                           df).verdict == claims.FAIL


def test_exact_checks_and_missing_inputs():
    exact = Claim("e", "exact", lambda d: d["v"].max(), below(0), exact=True)
    assert claims.evaluate(exact, units([0, 0, 0])).verdict == claims.PASS
    r = claims.evaluate(exact, units([0, 1e-3]))
    assert r.verdict == claims.FAIL and "deterministic" in r.cause
    r = claims.evaluate(Claim("k", "col", lambda d: d["missing"].mean(), below(1)), units([1, 2, 3]))
    assert r.verdict == claims.INCONCLUSIVE and "no column" in r.cause


def test_bound_text_is_rendered_once_from_the_number():
    assert below(0.15, "(mean deviation)").text() == "<= 0.15 (mean deviation)"
    assert above(2).text() == ">= 2"
    assert between(-0.55, -0.45).text() == "in [-0.55, -0.45]"


def test_rows_without_a_unit_are_kept_in_every_resample():
    """A theory curve (no network) is shared by every resample; only the networks are drawn."""
    df = pd.concat([units(spread(1.0, 0.1, 10), unit="net").assign(kind="empirical"),
                    pd.DataFrame({"net": [np.nan], "v": [3.0], "kind": ["theory"]})])

    def ratio(d):
        return d[d.kind == "theory"]["v"].iloc[0] / d[d.kind == "empirical"]["v"].mean()

    r = claims.evaluate(Claim("t", "theory above", ratio, above(2), unit=("net",)), df)
    assert r.verdict == claims.PASS and r.units == 10 and "undefined" not in r.cause


def test_cells_are_judged_one_by_one():
    """'In every cell': PASS when each cell passes, FAIL when one fails (named, with its own value and interval),
    INCONCLUSIVE naming the undecided cell; the reported value lies in its reported interval."""
    c = mean_claim(below(1.0), cells=("cell",))
    good = units(spread(0.5, 0.1) + spread(0.6, 0.1), cell=["a"] * 20 + ["b"] * 20)
    good["seed"] = list(range(20)) * 2
    r = claims.evaluate(c, good)
    assert r.verdict == claims.PASS and r.cell == "cell=b" and r.ci_low <= r.value <= r.ci_high
    bad = good.assign(v=spread(0.5, 0.1) + spread(1.6, 0.1))
    r = claims.evaluate(c, bad)
    assert r.verdict == claims.FAIL and r.cell == "cell=b" and "cell=b" in r.cause
    assert r.ci_low <= r.value <= r.ci_high and 1.5 < r.value < 1.7
    mixed = good.assign(v=spread(0.5, 0.1) + spread(1.0, 0.5))
    r = claims.evaluate(c, mixed)
    assert r.verdict == claims.INCONCLUSIVE and r.cause.startswith("cell=b")


def test_a_failed_check_sets_aside_the_claims_it_affects():
    df = units(spread(0.5, 0.1))
    ok, other = mean_claim(below(1.0)), Claim("o", "other", lambda d: d["v"].mean(), below(1.0))
    check = Claim("k", "our check", lambda d: 1.0, below(0), exact=True, kind="check", affects=("c",))
    res = {r.id: r for r in claims.evaluate_all((ok, other, check), df)}
    assert res["k"].verdict == claims.FAIL and res["k"].kind == "check"
    assert res["c"].verdict == claims.INCONCLUSIVE
    assert "PASS set aside" in res["c"].cause and "check k" in res["c"].cause
    assert res["o"].verdict == claims.PASS                     # not affected
    passing = Claim("k", "our check", lambda d: 0.0, below(0), exact=True, kind="check")
    assert all(r.verdict == claims.PASS for r in claims.evaluate_all((ok, passing), df))


def test_every_registered_claim_names_the_source_of_its_bound():
    from reproduce import registry
    for fig in registry.figures():
        for c in fig.claims:
            assert isinstance(c.source, str) and len(c.source) > 10, (fig.paper, fig.key, c.id)
            assert c.kind in ("claim", "check"), (fig.paper, fig.key, c.id)
            assert not c.affects or c.kind == "check"
            assert set(c.affects) <= {x.id for x in fig.claims}, (fig.paper, fig.key, c.id)


def test_bootstrap_runs_the_measure_once_per_distinct_multiset_and_equals_a_plain_loop():
    """Memoized bootstrap against a plain loop over the same draws: the same interval, and with 3 units the measure
    runs at most C(5, 3) = 10 times for 400 draws."""
    df = pd.DataFrame({"seed": np.repeat(range(3), 4), "v": np.random.default_rng(2).normal(size=12)})
    calls = []

    def measure(d):
        calls.append(1)
        return float(d.groupby("seed")["v"].mean().max())
    lo, hi, bad = claims.bootstrap(df, measure, ("seed",), draws=400, seed=5)
    assert len(calls) <= 10 and bad == 0
    rng, plain = np.random.default_rng(5), []
    for _ in range(400):
        picks = rng.integers(0, 3, 3)
        plain.append(max(df[df.seed == p]["v"].mean() for p in picks))
    assert (lo, hi) == pytest.approx(tuple(np.quantile(plain, [0.025, 0.975])), abs=1e-12)



def test_a_sums_claim_equals_the_same_measure_on_each_resampled_frame():
    """The stacked bootstrap (claims.Sums: every copy's group sums from one product of unit counts and per-unit sums)
    against the DataFrame path on the same draws: a ratio of pooled means per group, with strata, cells, rows
    without a unit and units of unequal size; values and intervals equal to float round-off."""
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"pair": np.repeat(range(12), 3), "net": np.repeat(range(12), 3) % 3,
                       "step": np.tile([0, 5, 9], 12), "a": rng.gamma(2, size=36), "b": rng.gamma(3, size=36),
                       "cell": np.repeat(["x", "y"], 18)})
    df = pd.concat([df, df.iloc[[0, 20]].assign(a=7.0)])   # units of unequal size
    shared = pd.DataFrame({"pair": [np.nan] * 3, "net": [0] * 3, "step": [0, 5, 9], "a": [1.0, 2, 3], "b": [4.0, 5, 6],
                           "cell": ["x", "x", "y"]})
    df = pd.concat([df, shared], ignore_index=True)

    def frame(d):   # max over steps of (mean a / mean b)
        g = d.groupby("step")[["a", "b"]].mean()
        return float((g["a"] / g["b"]).max())

    def stacked(t):
        return ((t["a"] / t["n"]) / (t["b"] / t["n"])).max(axis=1)
    common = dict(unit=("pair",), strata=("net",), cells=("cell",))
    a = claims.evaluate(Claim("r", "t", frame, below(1.0), **common), df, seed=4)
    b = claims.evaluate(Claim("r", "t", stacked, below(1.0), sums=claims.Sums(("step",), ("a", "b")), **common), df,
                        seed=4)
    assert a.draws == b.draws == claims.DRAWS and a.units == b.units and a.verdict == b.verdict
    assert (b.value, b.ci_low, b.ci_high) == pytest.approx((a.value, a.ci_low, a.ci_high), rel=1e-12)
    assert a.ci_low < a.value < a.ci_high

def test_verify_gives_the_same_rows_in_one_process_or_several(tmp_path, smoke):
    from reproduce import registry, verification
    figs = [registry.figure("norm", "fig2"), registry.figure("skip", "fig1")]
    smoke.copy_figures([("norm", "fig2"), ("skip", "fig1")], tmp_path)
    one, _ = verification.verify(figs, tmp_path, "smoke", workers=1)
    two, _ = verification.verify(figs, tmp_path, "smoke", workers=2)
    assert len(one) > 0 and one.equals(two)
