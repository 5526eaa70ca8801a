"""Atomic writes: nothing partial on failure, and the usual file permissions on success."""
import os

import pandas as pd
import pytest

from reproduce.io import atomic_path, write_csv


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "fig.csv"
    write_csv(pd.DataFrame({"a": [1]}), target)
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert pd.read_csv(target)["a"].tolist() == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.csv"]


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_csv(pd.DataFrame({"a": [1]}), tmp_path / "fig.csv")
    finally:
        os.umask(old)
    assert (tmp_path / "fig.csv").stat().st_mode & 0o777 == 0o644
