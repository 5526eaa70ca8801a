"""Datasets: layouts, image-folder decoding and caching, clear errors for missing data."""
import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from reproduce import datasets as data
from reproduce.cli import app
from reproduce.config import ReproError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def test_missing_dataset_names_both_ways(tmp_path):
    with pytest.raises(ReproError) as exc:
        data.require("cifar100", tmp_path)
    msg = str(exc.value)
    assert "repro data fetch cifar100" in msg and "repro data unpack" in msg and "\n" not in msg


def test_unknown_dataset(tmp_path):
    with pytest.raises(ReproError):
        data.info("imagenet")


def test_data_root_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("REPRO_DATA", raising=False)
    assert data.data_root(None, tmp_path) == tmp_path / "data" / "datasets"
    monkeypatch.setenv("REPRO_DATA", str(tmp_path / "env"))
    assert data.data_root(None, tmp_path) == tmp_path / "env"
    assert data.data_root(tmp_path / "x", tmp_path) == tmp_path / "x"


def test_image_folder_decoded_once_and_cached(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("cat", "airplane"):
            d = tmp_path / "cifar10-jpeg" / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(d / f"{i:04d}.png")
    assert data.locate("cifar10", tmp_path) == "folder"
    x, y = data.load("cifar10", tmp_path, train=True)
    assert x.shape == (6, 3, 32, 32) and x.dtype == torch.uint8
    assert y.tolist() == [0, 0, 0, 1, 1, 1]  # alphabetical classes: airplane=0, cat=1
    first = np.asarray(Image.open(tmp_path / "cifar10-jpeg/train/airplane/0000.png"))
    assert torch.equal(x[0].permute(1, 2, 0), torch.from_numpy(first.copy()))
    assert (tmp_path / "cifar10-jpeg" / "train.uint8.pt").exists()
    shutil.rmtree(tmp_path / "cifar10-jpeg" / "train" / "cat")  # served from the cache now
    x2, _ = data.load("cifar10", tmp_path, train=True)
    assert torch.equal(x, x2)
    xd, yd = data.to_device("cifar10", tmp_path, torch.device("cpu"), torch.float64, train=False)
    assert xd.dtype == torch.float64 and 0 <= xd.min() and xd.max() <= 1 and len(yd) == 4


@pytest.mark.skipif(not (SHARED / "MNIST" / "raw").is_dir(), reason="offline datasets not beside the repo")
def test_mnist_through_torchvision(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in (SHARED / "MNIST" / "raw").glob("*.gz"):
        with gzip.open(gz) as src, open(raw / gz.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    x, y = data.load("mnist", tmp_path, train=False)
    assert x.shape == (10000, 1, 28, 28) and x.dtype == torch.uint8
    assert torch.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_data_status_cli(tmp_path):
    res = CliRunner().invoke(app, ["data", "status", "--data-root", str(tmp_path)])
    assert res.exit_code == 0 and "cifar100" in res.output
    res = CliRunner().invoke(app, ["data", "fetch", "imagenet", "--data-root", str(tmp_path)])
    assert res.exit_code == 2
