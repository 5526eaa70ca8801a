"""tools/device.sh: calls cut off at their budget resume from the carried cache; only new outputs come back."""
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from reproduce import runner

ROOT = Path(__file__).resolve().parents[1]


def _call(tree: Path, out: Path, budget: int, *cmds: str) -> subprocess.CompletedProcess:
    out.mkdir()
    env = {**os.environ, "OUT": str(out), "REPRO_PYTHON": sys.executable}
    return subprocess.run(["bash", "tools/device.sh", "run", str(budget), *cmds], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("tar") is None or shutil.which("timeout") is None, reason="needs tar, timeout")
def test_device_calls_resume_through_the_carried_cache(tmp_path):
    tree = tmp_path / "tree"
    (tree / "tools").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "device.sh", tree / "tools")
    (tree / "data" / "p").mkdir(parents=True)
    (tree / "figures").mkdir()
    (tree / "data" / "p" / "old.csv").write_text("committed before the call\n")
    work = ("mkdir -p data/.cache/a && echo 1 > data/.cache/a/point.csv && echo r > data/p/fig.csv && "
            "echo s > data/p/fig.meta.json && sleep 30 && echo late > data/p/late.csv")
    first = _call(tree, tmp_path / "o1", 3, work, "echo never-run")
    assert first.returncode == 124, first.stdout + first.stderr       # cut off at the budget, the rest skipped
    assert "skipped (out of time): echo never-run" in first.stdout
    with tarfile.open(tmp_path / "o1" / "results.tgz") as t:
        assert sorted(t.getnames()) == ["data/p/fig.csv", "data/p/fig.meta.json"]   # new files only
    assert (tmp_path / "o1" / "log.txt").read_text() == first.stdout

    # here: unpack the results and keep the cache for the next call; the next machine starts bare
    here = subprocess.run(["bash", "tools/device.sh", "unpack", str(tmp_path / "o1")], cwd=tree,
                          capture_output=True, text=True)
    assert here.returncode == 0 and (tree / ".device" / "cache.tgz").exists()
    shutil.rmtree(tree / "data" / ".cache")
    second = _call(tree, tmp_path / "o2", 60, "exit 3", "test -f data/.cache/a/point.csv && echo resumed")
    assert "resumed" in second.stdout, second.stdout + second.stderr
    assert second.returncode == 3                                      # a failed command fails the call
    with tarfile.open(tmp_path / "o2" / "cache.tgz") as t:
        assert "data/.cache/a/point.csv" in t.getnames()


def test_git_revision_of_a_copy_without_git(monkeypatch):
    def no_git(*a, **k):
        raise OSError("no git here")
    monkeypatch.setattr(runner.subprocess, "run", no_git)
    monkeypatch.delenv("REPRO_GIT_SHA", raising=False)
    assert runner._git() == {"sha": None, "dirty": None}
    monkeypatch.setenv("REPRO_GIT_SHA", "abc123+dirty")
    assert runner._git() == {"sha": "abc123", "dirty": True, "from": "REPRO_GIT_SHA"}
