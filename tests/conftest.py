"""Shared fixtures: CPU, float64, fixed seeds."""
import json
import os
import types

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
os.environ.setdefault("COLUMNS", "200")
# the CPUs shared among the pytest-xdist workers (and the CLI subprocesses the tests start, which read OMP_NUM_THREADS)
THREADS = max(1, min(2, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))
torch.set_num_threads(THREADS)
os.environ["OMP_NUM_THREADS"] = str(THREADS)   # equal in-process and subprocess rounding


@pytest.fixture
def gen():
    g = torch.Generator()
    g.manual_seed(1234)
    return g


class SmokeRuns:
    """Every registered figure's smoke run, made at most once per test session into one shared folder (lazily, per
    figure, by whichever pytest-xdist worker needs it first; the others wait for it and read its exit code and
    output): the per-figure smoke checks, the report tests and the fresh-clone test read it; a test that damages
    results copies what it needs first (`copy_figures`)."""

    def __init__(self, out, records):
        self.out, self.records, self.results = out, records, {}

    def run(self, paper: str, key: str):
        """The CLI result (exit_code, output) of `repro <paper> <key> --preset smoke --device cpu --out <shared>`,
        run once in the session."""
        from reproduce import registry
        fig = registry.figure(paper, key)   # an alias and the full name are one figure
        if (fig.paper, fig.key) not in self.results:
            from reproduce.cache import locked
            folder = self.records / f"{fig.paper}-{fig.key}"
            record = folder / "result.json"
            with locked(folder):   # the cache's point lock: one worker runs the figure, the others wait
                if not record.exists():
                    from typer.testing import CliRunner

                    from reproduce.cli import app
                    res = CliRunner().invoke(
                        app, [fig.paper, fig.key, "--preset", "smoke", "--device", "cpu", "--out", str(self.out)])
                    record.write_text(json.dumps({"exit_code": res.exit_code, "output": res.output}))
                self.results[fig.paper, fig.key] = types.SimpleNamespace(**json.loads(record.read_text()))
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
    """The session's shared smoke runs (see SmokeRuns), in a folder every pytest-xdist worker of the session sees."""
    root = tmp_path_factory.getbasetemp()
    root = root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root
    out, records = root / "smoke-shared", root / "smoke-records"
    out.mkdir(exist_ok=True)
    records.mkdir(exist_ok=True)
    return SmokeRuns(out, records)



@pytest.fixture
def slow_heartbeat(monkeypatch):
    """Log heartbeats every 0.1 s, and slow(fig): the figure with each point taking >= 0.3 s (one beat in flight)."""
    import dataclasses
    import time

    from reproduce import cli_run
    monkeypatch.setattr(cli_run, "HEARTBEAT_S", 0.1)

    def slow(fig):
        def compute(cfg, point, ctx):
            time.sleep(0.3)
            return fig.compute(cfg, point, ctx)
        return dataclasses.replace(fig, compute=compute)
    return slow
