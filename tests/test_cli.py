"""The CLI end to end at the smoke preset: outputs, errors, resume, determinism, claims from the CSV."""
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from reproduce import cli_plan, layout, provenance, registry, runner, runtimes, verification
from reproduce import datasets as data_mod
from reproduce.cli import app
from reproduce.config import ReproError
from reproduce.readme import markdown_table

cli = CliRunner()
FIGS = [(f.paper, f.key) for f in registry.figures()]
ROOT = Path(__file__).resolve().parents[1]


def repro(*args):
    return cli.invoke(app, [str(a) for a in args])


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


def test_list_shows_every_figure():
    res = repro("list")
    assert res.exit_code == 0, res.output
    for paper, key in FIGS:
        assert key in res.output
    if any(not p.module for p in registry.PAPERS):
        assert "not implemented yet" in repro("list", "--markdown").output


@pytest.mark.slow
@pytest.mark.parametrize("paper,key", FIGS)
def test_smoke_every_figure(paper, key, smoke):
    res = smoke.run(paper, key)   # the session's one smoke run of this figure (shared with the report tests)
    assert res.exit_code == 0, res.output
    data, figs = smoke.out / "data" / "smoke" / paper, smoke.out / "figures" / "smoke" / paper
    df = pd.read_csv(data / f"{key}.csv")
    assert "seed" in df.columns and len(df) > 0
    assert (figs / f"{key}.png").stat().st_size > 0 and (figs / f"{key}.pdf").exists()
    meta = json.loads((data / f"{key}.meta.json").read_text())
    assert meta["preset"] == "smoke" and meta["device"] == "cpu"
    assert meta["tf32"]["cuda_matmul"] is False and meta["tf32"]["cudnn"] is False   # read back from torch.backends
    assert meta["source"] == registry.figure(paper, key).source and (ROOT / meta["source"]).is_file()
    assert any(v["source"] == "not_stated" for v in meta["config"].values())
    assert {"git", "torch", "wall_time_s", "peak_memory", "seed"} <= set(meta)
    assert "claims" in res.output
    n = meta["grid_points"]   # not a terminal: one plain progress line per finished point, for logs
    assert f"{paper} {key} {n}/{n} " in res.output and f"{paper} {key} 1/{n} " in res.output
    fig = registry.figure(paper, key)   # every resampled value lies in its own interval (a worst case per cell)
    for r in verification.evaluate_claims(fig, verification.read_result(data / f"{key}.csv"), "smoke"):
        if r.draws and r.ci_low == r.ci_low and r.ci_high == r.ci_high:
            assert r.ci_low - 1e-12 <= r.value <= r.ci_high + 1e-12, r


@pytest.mark.parametrize("args", [
    ["figure", "1", "--paper", "nope"],
    ["figure", "9", "--paper", "norm"],
    ["norm", "fig9"],
    ["figure", "1", "--paper", "norm", "--preset", "huge"],
    ["figure", "1", "--paper", "norm", "--set", "nope=1"],
    ["figure", "1", "--paper", "norm", "--set", "widths=abc"],
    ["figure", "1", "--paper", "norm", "--set", "dtype=float16"],
    ["figure", "1", "--paper", "norm", "--set", "widths"],
    ["figure", "1", "--paper", "norm", "--device", "tpu"],
    ["confusion", "fig9", "--data-root", "nowhere"],  # CIFAR-100 missing
    ["confusion", "fig16"],
    ["confusion", "fig2", "--preset", "smoke", "--set", "depths=17"],  # not 6 beta_r + 4
    ["confusion", "fig2", "--preset", "smoke", "--set", "variants=resnet"],
    ["confusion", "fig3", "--preset", "paper", "--dry-run", "--set", "depths=12"],
    ["bridge", "fig2", "--data-root", "nowhere"],  # CIFAR-100 (and MNIST) missing: one line, nothing written
    ["bridge", "fig6", "--preset", "smoke", "--set", "panels=mlp"],  # one dataset per panel
    ["bridge", "fig4", "--preset", "smoke", "--set", "family=standard", "--set", "depths=11", "--set",
     "image_size=8"],  # VGG-11 needs 32 x 32
    ["bridge", "fig5", "--preset", "smoke", "--set", "depths=18"],  # not a WRN-d-1 depth
    ["all", "--paper", "norm", "--set", "nope=1"],
    ["verify", "--preset", "huge"],
    ["norm", "fig1", "--preset", "smoke", "--executor", "rya"],
    ["norm", "fig1", "--preset", "smoke", "--executor", "rya", "--dry-run"],
    ["all", "--paper", "norm", "--preset", "smoke", "--executor", "rya", "--dry-run"],
    ["figure", "1", "--paper", "norm", "--preset", "smoke", "--plot-only"],
])
def test_bad_input_exits_2_and_writes_nothing(args, tmp_path):
    res = repro(*args, "--out", tmp_path)
    assert res.exit_code == 2, res.output
    assert files_under(tmp_path) == []


@pytest.mark.slow
def test_dry_run_prints_a_cost_and_writes_nothing(tmp_path):
    res = repro("figure", "4", "--paper", "confusion", "--preset", "smoke", "--dry-run", "--device", "cpu",
                "--out", tmp_path)
    assert res.exit_code == 0, res.output
    assert "8 training runs" in res.output and "CPU-hours" in res.output   # 4 variants x 2 depths x 1 run
    assert files_under(tmp_path) == []
    # Fig 7's default runs are Fig 2's: `make all` trains them there, so Fig 7 adds none; a wall time on the cores
    res = repro("confusion", "fig7", "--dry-run", "--device", "cpu", "--out", tmp_path)
    out = " ".join(res.output.split())
    assert res.exit_code == 0 and "trains 36 of these runs first for fig2 (36)" in out and "adds 0 runs" in out, out
    assert re.search(r"with --executor ray on this machine's \d+ cores .* about [\d.]+ h wall", out)
    # paper 000: 2 datasets x 2 depths x 1 net x 1 pair at init + 1 trained depth x 1 pair x 3 checkpoints (0, 1, 20)
    res = repro("bridge", "fig4", "--preset", "smoke", "--dry-run", "--set", "train=true", "--device", "cpu",
                "--out", tmp_path)
    assert res.exit_code == 0, res.output
    assert "7 exact path measurements" in " ".join(res.output.split()) and "CPU-hours" in res.output
    assert files_under(tmp_path) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")
def test_cuda_without_cuda_exits_2(tmp_path):
    res = repro("figure", "2", "--paper", "norm", "--device", "cuda", "--out", tmp_path)
    assert res.exit_code == 2 and "CUDA" in res.output
    assert files_under(tmp_path) == []


def test_missing_dataset_is_one_line_exit_2(tmp_path, monkeypatch):
    fig = dataclasses.replace(registry.figure("norm", "2"), datasets=lambda cfg: ["cifar100"])
    with pytest.raises(Exception) as exc:
        runner.run_figure(fig, preset="smoke", device="cpu", out=tmp_path, data_root=tmp_path / "nowhere")
    assert "cifar100" in str(exc.value) and "repro data fetch" in str(exc.value)
    assert files_under(tmp_path) == []


def test_figure_and_paper_command_and_case_agree(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert repro("figure", "2", "--paper", "norm", "--preset", "smoke", "--out", a).exit_code == 0
    res = repro("NORM", "Fig2", "--preset", "smoke", "--out", b)
    assert res.exit_code == 0, res.output
    rel = Path("data/smoke/norm-preservation/fig2.csv")
    assert (a / rel).read_bytes() == (b / rel).read_bytes()


def test_deterministic_csv(tmp_path):
    for d in ("a", "b"):
        assert repro("norm", "fig1", "--preset", "smoke", "--out", tmp_path / d).exit_code == 0
    rel = Path("data/smoke/norm-preservation/fig1.csv")
    assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    res = repro("norm", "fig1", "--preset", "smoke", "--seed", "1", "--promote", "--out", tmp_path / "c")
    assert res.exit_code == 0
    assert (tmp_path / "c" / rel).read_bytes() != (tmp_path / "a" / rel).read_bytes()


def test_set_override_changes_results_and_is_recorded(tmp_path):
    res = repro("norm", "fig3", "--preset", "smoke", "--set", "variations=1,30", "-s", "head_variance=1",
                "--out", tmp_path)
    assert res.exit_code == 0, res.output
    sets = ["variations=1,30", "head_variance=1"]
    tag = layout.variant_tag(sets, 0, runner.prepare(registry.figure("norm", "fig3"), "smoke", sets))
    variants = tmp_path / "data/smoke/norm-preservation/variants"
    assert str(variants / f"fig3-{tag}.csv") in res.output.replace("\n", "") and "--promote" in res.output
    assert not (tmp_path / "data/smoke/norm-preservation/fig3.csv").exists()   # the canonical result is not touched
    df = pd.read_csv(variants / f"fig3-{tag}.csv")
    assert sorted(df["v"].unique()) == [1, 30]
    assert (tmp_path / f"figures/smoke/norm-preservation/variants/fig3-{tag}.png").exists()
    meta = json.loads((variants / f"fig3-{tag}.meta.json").read_text())
    assert meta["variant"] == tag
    assert meta["config"]["head_variance"] == {"value": "1", "source": "not_stated",
                                               "help": meta["config"]["head_variance"]["help"]}
    assert meta["overrides"] == ["variations=1,30", "head_variance=1"]


def test_resume_after_interrupt(tmp_path):
    fig = registry.figure("norm", "1")
    calls = []

    def counting(cfg, point, ctx, limit=None):
        if limit is not None and len(calls) >= limit:
            raise KeyboardInterrupt
        calls.append(point)
        return fig.compute(cfg, point, ctx)

    kw = dict(preset="smoke", device="cpu", out=tmp_path / "r")
    with pytest.raises(KeyboardInterrupt):
        runner.run_figure(dataclasses.replace(fig, compute=lambda c, p, x: counting(c, p, x, 2)), **kw)
    assert not layout.outputs(fig, tmp_path / "r", "smoke").csv.exists()
    total = len(fig.grid(runner.prepare(fig, "smoke", [])))
    done = list(calls)
    res = runner.run_figure(dataclasses.replace(fig, compute=counting), **kw)
    assert len(calls) - len(done) == total - 2 and res.cached == 2 and res.computed == total - 2
    assert not any(p in calls[2:] for p in done)
    clean = runner.run_figure(fig, preset="smoke", device="cpu", out=tmp_path / "clean")
    assert clean.outputs.csv.read_bytes() == res.outputs.csv.read_bytes()
    again = runner.run_figure(fig, **kw)
    assert again.computed == 0 and again.cached == total
    assert runner.run_figure(fig, force=True, **kw).computed == total


def test_plot_only_and_verify_read_the_csv(tmp_path):
    assert repro("norm", "fig1", "--preset", "smoke", "--out", tmp_path).exit_code == 0
    csv = tmp_path / "data/smoke/norm-preservation/fig1.csv"
    df = pd.read_csv(csv)
    df.loc[df["init"] == "glorot", "mean"] = 5.0          # tamper: verdicts must follow the CSV
    df.to_csv(csv, index=False)
    png = tmp_path / "figures/smoke/norm-preservation/fig1.png"
    png.unlink()
    assert repro("norm", "fig1", "--preset", "smoke", "--plot-only", "--out", tmp_path).exit_code == 0
    assert png.exists()
    res = repro("verify", "--paper", "norm", "--preset", "smoke", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    claims = pd.read_csv(tmp_path / "data/smoke/claims.csv")
    row = claims[claims["id"] == "glorot-forward-last"].iloc[0]
    assert row["verdict"] == "FAIL" and row["value"] == 5.0
    assert set(claims["verdict"]) <= {"PASS", "FAIL", "INCONCLUSIVE"}
    strict = repro("verify", "--paper", "norm", "--preset", "smoke", "--strict", "--out", tmp_path)
    assert strict.exit_code == 1 and "--strict" in strict.output, strict.output
    # one unreadable CSV: named, the others still checked and written, exit 1
    assert repro("norm", "fig3", "--preset", "smoke", "--out", tmp_path).exit_code == 0
    (tmp_path / "data/smoke/norm-preservation/fig3.csv").write_text("")
    (tmp_path / "data/smoke/claims.csv").unlink()
    res = repro("verify", "--paper", "norm", "--preset", "smoke", "--out", tmp_path)
    assert res.exit_code == 1 and "skipped norm fig3" in res.output and "Traceback" not in res.output, res.output
    claims = pd.read_csv(tmp_path / "data/smoke/claims.csv")
    assert set(claims["figure"]) == {"fig1"}


def test_error_paths_of_every_command_are_one_line(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = [("report", "--no-costs", "--out", a_file), ("verify", "--out", a_file),
             ("bench", "bridge", "--sizes", "0", "--out", tmp_path / "b"),
             ("bench", "linearity", "--sizes", "1e999", "--out", tmp_path / "b"),
             ("norm", "fig1", "--preset", "smoke", "--set", "widths=2.5", "--out", tmp_path / "c")]
    if Path("/proc").is_dir():
        cases.append(("norm", "fig1", "--preset", "smoke", "--out", "/proc/repro-x"))
    for args in cases:
        res = repro(*args)
        lines = res.output.strip().splitlines()
        assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:"), (args, res.output)
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()
    version = repro("--version")
    assert version.exit_code == 0 and version.output.startswith("repro 0."), version.output
    res = repro("norm", "fig1", "--preset", "smoke", "--set", "widths=1e2,2000.0", "--dry-run", "--out", tmp_path)
    assert res.exit_code == 0 and "widths = 100, 2000" in res.output, res.output


def test_verify_without_results_exits_2(tmp_path):
    assert repro("verify", "--out", tmp_path).exit_code == 2


def test_readme_table_is_generated():
    assert markdown_table() in (ROOT / "README.md").read_text()


def test_committed_runtimes_are_the_committed_results_wall_times():
    """The README's default-preset times (from data/runtimes.csv) are those the committed meta.json files record."""
    committed = runtimes.collect(ROOT)
    table = pd.read_csv(runtimes.path(ROOT), dtype={"git": str})
    default = committed[committed.preset == "default"]
    assert len(default) > 0
    merged = default.merge(table, on=["paper", "figure", "preset"], how="left", suffixes=("", "_csv"))
    scratch = (merged.scratch_s != merged.scratch_s_csv) & ~(merged.scratch_s.isna() & merged.scratch_s_csv.isna())
    stale = merged[(merged.wall_s != merged.wall_s_csv) | (merged.git != merged.git_csv) | scratch
                   | (merged.untimed_runs != merged.untimed_runs_csv)]
    assert stale.empty, f"run `repro runtimes` (data/runtimes.csv differs from meta.json): {stale[['paper', 'figure']]}"


def test_bench_runs_small_and_rejects_bad_input(tmp_path):
    res = repro("bench", "linearity", "--sizes", "50", "--repeats", "1", "--device", "cpu", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    df = pd.read_csv(tmp_path / "data" / "bench" / "transition-to-linearity.csv")
    assert set(df["method"]) == {"closed", "closed-scan", "jacobian", "columns", "vmap(jacrev) baseline"}
    assert df["max_abs_diff"].max() < 1e-10 and (df["seconds"] > 0).all()
    for args in (("bench", "nope"), ("bench", "skip"), ("bench", "linearity", "--sizes", "x,1")):
        res = repro(*args, "--out", tmp_path / "bad")
        assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
        assert not (tmp_path / "bad").exists()


def test_bridge_bench_engines_agree_at_a_small_width(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_DATA", str(tmp_path / "no-data"))   # a synthetic stand-in: no dataset is read
    res = repro("bench", "bridge", "--sizes", "32", "--repeats", "1", "--device", "cpu", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    df = pd.read_csv(tmp_path / "data" / "bench" / "random-walk-bridge.csv")
    seg = df[df["span"].str.startswith("t in")]
    assert {"layerwise", "region walk", "bisection", "float32 + float64 check"} <= set(seg["engine"])
    assert seg["same_as_walk"].dropna().astype(bool).all() and seg["nodes"].nunique() == 1
    whole = df[(df["engine"] == "layerwise") & (df["span"] == "whole path")].iloc[0]
    assert whole["nodes"] > 100 and whole["per_node_over_forward"] > 0
    assert df["data"].iloc[0] == "synthetic-cifar10"


def test_all_skips_figures_whose_datasets_are_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(data_mod, "offline_source", lambda explicit=None: None)   # nothing to unpack either
    res = repro("all", "--paper", "bridge", "--data-root", tmp_path / "nowhere", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    assert res.output.count("skipped bridge ") == len(registry.figures("bridge"))
    assert f"0 figure(s) made, {len(registry.figures('bridge'))} skipped" in res.output
    assert files_under(tmp_path) == []


def test_all_skips_gpu_presets_on_a_cpu(tmp_path, monkeypatch):
    figs = [registry.figure("bridge", k) for k in ("fig4", "fig5")]       # full-width conv paths: GPU-sized
    assert all("default" in f.gpu_presets for f in figs)
    monkeypatch.setattr(registry, "figures", lambda paper=None: figs)
    res = repro("all", "--set", "datasets=synthetic-mnist", "--set", "train_dataset=synthetic-cifar10",
                "--device", "cpu", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    assert res.output.count("needs a GPU") == 2
    assert files_under(tmp_path) == []


def test_figures_carry_their_provenance_line():
    line = provenance.provenance({"paper": "random-walk-bridge", "figure": "fig4", "preset": "default",
                              "overrides": ["width=0.0625", "train=false"], "device": "cpu",
                              "git": {"sha": "3b43011eb8", "dirty": True}})
    assert line == ("repro random-walk-bridge fig4 --preset default --set width=0.0625 --set train=false --promote"
                    "  |  cpu  |  git 3b43011+dirty")   # a canonical result made with overrides: --promote remakes it
    variant = provenance.provenance({"paper": "random-walk-bridge", "figure": "fig4", "preset": "default",
                                 "overrides": ["width=0.0625"], "variant": "abcd1234", "device": "cpu"})
    assert variant.startswith("repro random-walk-bridge fig4 --preset default --set width=0.0625  |")


def test_a_reduced_stated_size_is_recorded_and_shown():
    """The paper states 100 networks per point (bridge fig2); the default preset runs 10 and says so."""
    fig = registry.figure("bridge", "fig2")
    reduced = provenance.reductions(fig, runner.prepare(fig, "default", []))
    assert reduced == {"networks": "paper 100, here 10"}
    assert provenance.reductions(fig, runner.prepare(fig, "paper", [])) == {}
    line = provenance.provenance({"paper": fig.paper, "figure": "fig2", "preset": "default", "reduced": reduced})
    assert line.endswith("\nreduced: networks: paper 100, here 10")


def test_a_figure_can_state_what_its_family_leaves_unstated():
    """The WRN lr grid is not stated for the CIFAR family, but the paper's one grid covers Fig 13's WRNs: its
    reduction from that grid is listed, while a CNN figure of the family leaves the (unused) WRN grid unlisted."""
    fig13, fig2 = registry.figure("confusion", "fig13"), registry.figure("confusion", "fig2")
    reduced = provenance.reductions(fig13, runner.prepare(fig13, "default", []))
    assert reduced["wrn_lrs"].startswith("paper 10.0, 3.0, 1.0, ") and reduced["wrn_lrs"].endswith("here "
        + ", ".join(map(str, runner.prepare(fig13, "default", []).wrn_lrs)))
    assert "wrn_lrs" not in provenance.reductions(fig2, runner.prepare(fig2, "default", []))


def test_a_figure_needs_only_the_datasets_it_reads(tmp_path):
    # fig5's training panels read CIFAR-100; without them (train=false) a missing CIFAR-100 must not stop the init
    # panels
    fig = registry.figure("bridge", "fig5")
    cfg = runner.prepare(fig, "smoke", ["datasets=mnist", "train=false"])
    assert fig.needs(cfg) == ["mnist"]
    cfg = runner.prepare(fig, "smoke", ["datasets=mnist", "train_dataset=cifar100"])
    assert fig.needs(cfg) == ["mnist", "cifar100"]
    with pytest.raises(ReproError, match="cifar100"):
        runner.run_figure(fig, preset="smoke", overrides=["datasets=synthetic-mnist", "train_dataset=cifar100"],
                          device="cpu", out=tmp_path, data_root=tmp_path / "nowhere")
    assert files_under(tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize("train", [False, True])
def test_all_and_figure_agree_on_the_datasets_fig5_needs(tmp_path, monkeypatch, train):
    # one Figure.needs for both commands: without its training panels fig5 does not read CIFAR-100
    sets = ["--set", "datasets=synthetic-mnist", "--set", f"train={str(train).lower()}",
            "--set", "train_dataset=cifar100"]
    common = ["--preset", "smoke", "--device", "cpu", "--data-root", tmp_path / "nowhere", *sets]
    fig5 = registry.figure("bridge", "fig5")
    monkeypatch.setattr(registry, "figures", lambda paper=None: [fig5])
    by_all = repro("all", "--paper", "bridge", "--out", tmp_path / "all", *common)
    by_fig = repro("bridge", "fig5", "--out", tmp_path / "fig", *common)
    assert by_all.exit_code == 0, by_all.output
    if train:
        assert "skipped bridge fig5: dataset cifar100 not found" in by_all.output
        assert by_fig.exit_code == 2 and "cifar100" in by_fig.output
        assert files_under(tmp_path / "all") == files_under(tmp_path / "fig") == []
    else:
        assert "skipped bridge " not in by_all.output and by_fig.exit_code == 0, by_fig.output
        given = [s for s in sets if s != "--set"]
        tag = layout.variant_tag(given, 0, runner.prepare(fig5, "smoke", given))
        rel = Path(f"data/smoke/random-walk-bridge/variants/fig5-{tag}.csv")
        assert (tmp_path / "all" / rel).read_bytes() == (tmp_path / "fig" / rel).read_bytes()


def test_list_is_greppable_when_piped_and_parses_as_json():
    lines = [ln for ln in repro("list").output.splitlines() if "norm-preservation" in ln]
    assert [ln.split("\t")[2] for ln in lines] == [f.key for f in registry.figures("norm")]
    assert all(ln.split("\t")[-1].startswith("reproduce/papers/norm_preservation/fig") for ln in lines)
    rows = json.loads(repro("list", "--json").output)
    assert {(r["paper"], r["figure"]) for r in rows} == set(FIGS)
    fig3 = next(r for r in rows if r["paper"] == "random-walk-bridge" and r["figure"] == "fig3")
    assert fig3["data"] == ["mnist"] and fig3["source"] == "reproduce/papers/random_walk_bridge/fig3.py"


def test_dry_run_prints_every_resolved_setting(tmp_path):
    res = repro("norm", "fig1", "--preset", "smoke", "--dry-run", "--set", "widths=10,20", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    fig = registry.figure("norm", "fig1")
    for f in dataclasses.fields(fig.config):
        assert f"  {f.name} = " in res.output, f.name
    assert "widths = 10, 20  (stated; --set)" in res.output and not any(tmp_path.iterdir())


def test_the_plan_of_a_smoke_run_lists_every_figure_with_an_estimate(tmp_path):
    """`repro all --preset smoke --dry-run` on a fresh folder: every figure, its points, an estimate (from the
    committed measurements, data/runtimes.csv), and the total; nothing written."""
    res = repro("all", "--preset", "smoke", "--dry-run", "--device", "cpu", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    figs = registry.figures()
    listed = [x for x in lines if x.startswith("  ") and " points to compute" in x]
    assert len(listed) == len(figs) and all(", about " in x for x in listed), res.output
    assert lines[-1].startswith("total: ") and "no estimate" not in lines[-1] and " about " in lines[-1]
    assert "on Ray" not in res.output and files_under(tmp_path) == []


def test_the_plan_on_ray_says_its_total_is_shared_among_the_points_run_at_once(tmp_path):
    """On Ray the plan's total is still compute time one point after another (the cluster is not reached before the
    plan), so it says the live ETA divides it by the points run at once."""
    res = repro("all", "--paper", "norm", "--preset", "smoke", "--dry-run", "--device", "cpu", "--out", tmp_path,
                "--executor", "ray")
    assert res.exit_code == 0, res.output
    total = res.output.splitlines()[-1]
    assert total.startswith("total: ") and "one point after another; on Ray, divided by the points run at once" in total
    assert files_under(tmp_path) == []


def test_a_figure_beyond_smoke_prints_its_plan_with_an_estimate_first(tmp_path):
    """`repro confusion fig6` at the default preset (tiny sizes here), never run in this folder and absent from
    data/runtimes.csv for these settings: the plan line comes first with an estimate from its cost model, so the run's
    ETA is known from the start."""
    res = repro("confusion", "fig6", "--device", "cpu", "--out", tmp_path, "--set", "dataset=synthetic-mnist",
                "--set", "acts=tanh", "--set", "inits=glorot", "--set", "depths=3", "--set", "widths=4,8",
                "--set", "lrs=0.1", "--set", "runs=1", "--set", "steps=3", "--set", "pairs=4", "--set",
                "train_size=256")
    assert res.exit_code == 0, res.output
    plan = next(x for x in res.output.splitlines() if "points to compute" in x)
    assert "2 of 2 points to compute, about " in plan and "from its cost model" in plan, res.output
    assert res.output.index("points to compute") < res.output.index("claims (default preset)")


def test_a_past_run_of_few_points_yields_to_the_cost_model(tmp_path):
    """bridge fig4's last run computed only its (long) training point: 99 min per point x 19 would say 31 h. A run
    that computed fewer than half the missing points gives way to the cost model; one that computed them all does
    not."""
    fig = registry.figure("bridge", "fig4")
    plan = runner.plan_figure(fig, preset="smoke", device="cpu", out=tmp_path)
    missing = len(plan.missing)
    assert missing >= 3
    plan.paths.meta.parent.mkdir(parents=True, exist_ok=True)

    def past_run(computed: int) -> tuple[float | None, str]:
        plan.paths.meta.write_text(json.dumps({"device": "cpu", "date": "2026-11-30", "wall_time_s": 1e5 * computed,
                                               "points_computed": computed}))
        return cli_plan.estimate(plan, timing=True)

    secs, basis = past_run(1)
    assert basis.startswith("its cost model") and f"computed 1 of the {missing} points" in basis, basis
    assert secs < 1e5 * missing
    secs, basis = past_run(missing)
    assert basis.startswith("its last run here") and secs == 1e5 * missing


def test_runtimes_are_collected_from_meta_json(tmp_path, smoke):
    smoke.copy_figures([("norm", "fig2")], tmp_path)
    res = repro("runtimes", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    table = runtimes.load(tmp_path)
    row = runtimes.measured(registry.figure("norm", "fig2"), "smoke", "cpu", table)
    meta = json.loads(layout.outputs(registry.figure("norm", "fig2"), smoke.out, "smoke").meta.read_text())
    assert row is not None and row["wall_s"] == round(meta["wall_time_s"], 1) and row["points"] == meta["grid_points"]
    timed = meta["points_seconds"]   # every point records its own compute time: the from-scratch total sums them
    # the sum is written to 0.1 s: a smoke run of ~0.08 s wall may round up to 0.1, one of under 0.05 s down to 0
    assert timed["points_timed"] == meta["grid_points"] and 0 <= timed["sum"] <= meta["wall_time_s"] + 0.05
    assert runtimes.scratch(row) == round(timed["sum"], 1)
    assert runtimes.scratch({**row, "scratch_s": float("nan")}) == row["per_point_s"] * row["points"]  # older rows
    fig = registry.figure("norm", "fig2")   # the report flags a run over twice the measured time per point
    assert runtimes.slower(fig, meta, table) == ""
    assert "x the measured time per point" in runtimes.slower(fig, {**meta, "wall_time_s": 3 * row["wall_s"] + 1},
                                                              table)


def test_reused_training_runs_count_once_in_the_from_scratch_time(tmp_path):
    """A shared run records the seconds it took; a figure whose points reuse runs that no figure's points computed
    (points since re-keyed) adds their seconds to its from-scratch time, and counts those without a record."""
    fig = registry.figure("confusion", "fig3")
    args = ("confusion", "fig3", "--preset", "smoke", "--device", "cpu", "--out", tmp_path)
    assert repro(*args).exit_code == 0
    meta_path = layout.outputs(fig, tmp_path, "smoke").meta
    first = json.loads(meta_path.read_text())["points_seconds"]
    runs = {p.parent.name: json.loads(p.read_text())["seconds"]
            for p in (tmp_path / "data/.cache/runs").glob("*/run.json")}
    assert runs and first["runs_computed"] == runs and first["runs_reused"] == {}
    assert all(s > 0 for s in runs.values())
    row = runtimes.collect(tmp_path).iloc[0]
    assert row["scratch_s"] == round(first["sum"], 1) and row["untimed_runs"] == 0   # computed runs: in the points
    for p in (tmp_path / "data/.cache").glob("*/point.csv"):   # re-keyed points: rebuilt from the cached runs
        p.unlink()
    untimed = sorted(runs)[0]
    rec = tmp_path / "data/.cache/runs" / untimed / "run.json"
    rec.write_text(json.dumps({k: v for k, v in json.loads(rec.read_text()).items() if k != "seconds"}))
    assert repro(*args).exit_code == 0
    second = json.loads(meta_path.read_text())["points_seconds"]
    assert second["runs_computed"] == {} and second["runs_reused"] == {**runs, untimed: None}
    row = runtimes.collect(tmp_path).iloc[0]
    assert row["scratch_s"] == round(second["sum"] + sum(s for n, s in runs.items() if n != untimed), 1)
    assert row["untimed_runs"] == 1 and runtimes.untimed(row) == 1 and runtimes.untimed({"untimed_runs": None}) == 0
    metas = {"a": {"points_seconds": {"runs_computed": {"r1": 5.0}}},   # r1 is paid for in a's points
             "b": {"points_seconds": {"runs_reused": {"r1": 5.0, "r2": 7.0}}},
             "c": {"points_seconds": {"runs_reused": {"r2": 7.0, "r3": None}}}}
    assert runtimes._orphans(metas) == {"a": {}, "b": {"r2": 7.0}, "c": {"r3": None}}


def test_a_runtime_cell_leads_with_the_time_from_scratch():
    """A run that rebuilt its points from cached training runs took seconds; the README's cell says what the figure
    costs from scratch, and 'at least' with the runs it cannot time."""
    row = {"wall_s": 0.5, "device": "cpu", "points": 63, "points_computed": 63, "per_point_s": 0.01,
           "scratch_s": 5400.0, "untimed_runs": 0, "date": "2026-12-03"}
    assert runtimes.describe(row) == "90 min cpu from scratch; last run 0 s (2026-12-03)"
    assert runtimes.describe({**row, "untimed_runs": 61}).startswith("at least 90 min cpu from scratch (without 61 ")
    same = {**row, "wall_s": 5000.0}   # a run that computed everything: its wall time (2 slots: less than the CPU sum)
    assert runtimes.describe(same) == "83 min cpu (2026-12-03)"
    older = {**row, "scratch_s": float("nan"), "points_computed": 7}   # no record: this run's wall time, as it was
    assert runtimes.describe(older) == "0 s cpu for 7 of 63 points (2026-12-03)"


def test_ctrl_c_in_report_says_so_and_exits_130(tmp_path, monkeypatch):
    from reproduce import report

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(report, "build", interrupted)
    res = repro("report", "--no-costs", "--out", tmp_path)
    assert res.exit_code == 130 and "interrupted" in res.output and "Traceback" not in res.output, res.output
    assert not (tmp_path / "figures").exists()


def test_the_command_line_makes_idle_openmp_threads_sleep_unless_told_otherwise():
    """OMP_WAIT_POLICY=PASSIVE before torch loads (spinning threads made small figures 8x slower beside other
    work); a policy the user set is kept."""
    code = "import os, reproduce.cli, torch; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    run = lambda e: subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True,  # noqa: E731
                                   check=True).stdout.strip()
    assert run(env) == "PASSIVE" and run({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"


def test_the_eta_counts_the_points_that_run_at_once():
    """The live ETA: points left x estimated seconds each, over the points run at once (one locally, a Ray
    cluster's CPUs), never over more slots than points left."""
    from types import SimpleNamespace

    from rich.console import Console
    from rich.progress import Progress

    from reproduce.cli_run import _Display
    step = SimpleNamespace(plan=object(), title="confusion fig3", seconds=4 * 600.0, missing=4)
    display = _Display(Progress(console=Console(file=open(os.devnull, "w"), force_terminal=True)), [step])
    assert "ETA about 40 min" in display.line()
    display.slots = 2
    assert "ETA about 20 min" in display.line()
    display.slots, display.left["confusion fig3"] = 8, 2        # 8 CPUs, 2 points left: 2 at once
    assert "ETA about 10 min" in display.line()


def _two_slot_display(title: str, n: int, seconds: float | None):
    """A log display with 2 slots whose figure `title` had its n points submitted at once: (display, advance)."""
    from types import SimpleNamespace

    from rich.console import Console
    from rich.progress import Progress

    from reproduce.cli_run import _Display
    step = SimpleNamespace(plan=SimpleNamespace(points=range(n)), title=title, seconds=seconds, missing=n)
    display = _Display(Progress(console=Console(file=open(os.devnull, "w"), force_terminal=True)), [step])
    display.slots = 2
    advance = display.bar(step.plan)
    for k in range(n):
        advance(f"p={k} (running)", 0)
    return display, advance


def test_the_eta_learns_from_the_points_just_computed():
    """Points that ran longer than the plan's estimate set the ETA's cost per point (mean of the last ones); points
    another run computed do not count; without any estimate, finished points give one."""
    for seconds in (4 * 600.0, None):
        display, advance = _two_slot_display("confusion fig13", 5, seconds)
        for k in (0, 1):
            display.inflight[("confusion fig13", f"p={k}")] -= 1800   # both ran 30 min
            advance(f"p={k}", 1)
        display.inflight[("confusion fig13", "p=2")] -= 60            # p=2 was another run's: its time says nothing
        advance("p=2 (another run's)", 1)
        assert display.took["confusion fig13"] == pytest.approx([1800, 1800], abs=5)
        assert "ETA about 30 min" in display.line(), display.line()   # 2 left of 30 min each, 2 at once


def test_points_start_when_the_cluster_grows():
    """A node that joins mid-run (an autoscaling cluster) adds slots: asked again at the next point's end, the
    display starts as many queued points as the cluster now runs at once."""
    display, advance = _two_slot_display("bridge fig4", 6, 6 * 600.0)
    display.slots_of = lambda: 1
    advance("p=0", 1)                       # one slot: p=1 runs, the rest queue
    assert [label for label, _ in display._running("bridge fig4")] == ["p=1"]
    display.slots_of = lambda: 3
    advance("p=1", 1)                       # three slots now: p=2, p=3, p=4 run
    assert [label for label, _ in display._running("bridge fig4")] == ["p=2", "p=3", "p=4"]


def test_the_heartbeat_names_the_points_running_now_and_counts_the_queued():
    """Ray gets every point at submission: with 2 slots, the first two submitted run and the rest queue; a point that
    finished is never named as running, and the next queued one starts in its place (its own elapsed time)."""
    display, advance = _two_slot_display("confusion fig11", 4, 4 * 600.0)
    beat = display.beat()
    assert [x for x in beat if "still running" in x] == ["confusion fig11 0/4 still running p=0 (0 s)",
                                                         "confusion fig11 0/4 still running p=1 (0 s)"], beat
    assert "confusion fig11 0/4: 2 more point(s) queued for a free slot" in beat
    advance("p=0", 1)
    running = [x for x in display.beat() if "still running" in x]
    assert len(running) == 2 and not any("p=0" in x for x in running) and any("p=2" in x for x in running)
    assert "ETA about 15 min" in display.line()     # 3 points of 10 min left, 2 at once (none ran long yet)
    display.inflight[("confusion fig11", "p=1")] -= 900     # p=1 began 15 min ago: past its 10 min estimate
    assert "confusion fig11's running point is past its estimate (15 min vs 10 min)" in display.line()
