"""Shared fixtures: CPU, float64, fixed seeds."""
import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
os.environ.setdefault("COLUMNS", "200")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def gen():
    g = torch.Generator()
    g.manual_seed(1234)
    return g


class SmokeRuns:
    """Every registered figure's smoke run, made at most once per test session into one shared folder (lazily, per
    figure): the per-figure smoke checks, the report tests and the fresh-clone test read it; a test that damages
    results copies what it needs first (`copy_figures`)."""

    def __init__(self, out):
        self.out, self.results = out, {}

    def run(self, paper: str, key: str):
        """The CLI result of `repro <paper> <key> --preset smoke --device cpu --out <shared>`, run once."""
        from reproduce import registry
        fig = registry.figure(paper, key)   # an alias and the full name are one figure
        if (fig.paper, fig.key) not in self.results:
            from typer.testing import CliRunner

            from reproduce.cli import app
            self.results[fig.paper, fig.key] = CliRunner().invoke(
                app, [fig.paper, fig.key, "--preset", "smoke", "--device", "cpu", "--out", str(self.out)])
        return self.results[fig.paper, fig.key]

    def run_all(self) -> None:
        from reproduce import registry
        for fig in registry.figures():
            res = self.run(fig.paper, fig.key)
            assert res.exit_code == 0, res.output

    def copy_figures(self, figs, dest):
        """A results folder at `dest` holding only the smoke outputs (CSV, meta.json, PNG, PDF) of `figs`."""
        import shutil

        from reproduce import layout, registry
        for alias, key in figs:
            res = self.run(alias, key)
            assert res.exit_code == 0, res.output
            fig = registry.figure(alias, key)
            src, dst = layout.outputs(fig, self.out, "smoke").files(), layout.outputs(fig, dest, "smoke").files()
            for kind, path in src.items():
                dst[kind].parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dst[kind])
        return dest


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """The session's shared smoke runs (see SmokeRuns)."""
    return SmokeRuns(tmp_path_factory.mktemp("smoke-shared"))

