"""Datasets: find them under the data root, load them as uint8 tensors, put them whole on a device.

Sources, in order: torchvision's own layout (`MNIST/raw`, `FashionMNIST/raw`, `cifar-10-batches-py`,
`cifar-100-python`), then an ImageFolder tree (`cifar10-jpeg/{train,test}/<class>/*.jpg`, as shipped
offline), decoded once into a cached uint8 tensor file beside it. Nothing is ever downloaded here
except by `fetch`, which the user calls explicitly.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import ReproError


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    tv_class: str         # torchvision.datasets class name
    tv_marker: str        # file or folder that torchvision's layout has under the root
    folder: str = ""      # ImageFolder tree alternative (offline copies), "" if none
    note: str = ""


DATASETS = {
    "mnist": DatasetInfo("mnist", "MNIST", "MNIST/raw/train-images-idx3-ubyte"),
    "fashion-mnist": DatasetInfo("fashion-mnist", "FashionMNIST", "FashionMNIST/raw/train-images-idx3-ubyte"),
    "cifar10": DatasetInfo("cifar10", "CIFAR10", "cifar-10-batches-py", "cifar10-jpeg",
                           "offline copy is JPEG (lossy, quality 75)"),
    "cifar100": DatasetInfo("cifar100", "CIFAR100", "cifar-100-python", "cifar100-jpeg",
                            "not available offline"),
}


def data_root(explicit: Path | None = None, out: Path = Path(".")) -> Path:
    """--data-root, else $REPRO_DATA, else <out>/data/datasets."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get("REPRO_DATA")
    return Path(env) if env else Path(out) / "data" / "datasets"


def info(name: str) -> DatasetInfo:
    key = name.strip().lower().replace("_", "-")
    if key not in DATASETS:
        raise ReproError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[key]


def locate(name: str, root: Path) -> str | None:
    """'torchvision', 'folder' or None: where `name` is found under `root`."""
    d = info(name)
    if (root / d.tv_marker).exists():
        return "torchvision"
    if d.folder and (root / d.folder / "train").is_dir():
        return "folder"
    return None


def require(name: str, root: Path) -> None:
    """A one-line ReproError naming both ways to get a missing dataset."""
    if locate(name, root) is None:
        d = info(name)
        raise ReproError(
            f"dataset {d.name} not found under {root} ({d.note or 'missing'}): run `repro data unpack` "
            f"(offline copies) or `repro data fetch {d.name}` (online), or point --data-root / REPRO_DATA at it")


def status(root: Path) -> list[dict]:
    """One row per dataset: present or not, and from which layout."""
    return [{"dataset": d.name, "present": locate(d.name, root) is not None,
             "source": locate(d.name, root) or "-", "note": d.note} for d in DATASETS.values()]


def _decode_folder(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    import numpy as np
    from PIL import Image
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    images, labels = [], []
    for label, cls in enumerate(classes):
        for f in sorted((folder / cls).iterdir()):
            with Image.open(f) as im:
                images.append(np.asarray(im.convert("RGB")))
            labels.append(label)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(labels, dtype=torch.int64)


def load(name: str, root: Path, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, C, H, W) uint8 and labels (N,) int64 on the CPU."""
    require(name, root)
    d, split = info(name), "train" if train else "test"
    if locate(name, root) == "torchvision":
        import torchvision.datasets as tvd
        ds = getattr(tvd, d.tv_class)(str(root), train=train, download=False)
        x = torch.as_tensor(ds.data)
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
        return x.contiguous(), torch.as_tensor(ds.targets, dtype=torch.int64)
    cache = root / d.folder / f"{split}.uint8.pt"
    if not cache.exists():
        x, y = _decode_folder(root / d.folder / split)
        tmp = cache.with_suffix(".tmp")
        torch.save({"x": x, "y": y}, tmp)
        os.replace(tmp, cache)
    blob = torch.load(cache)
    return blob["x"], blob["y"]


def to_device(name: str, root: Path, device: torch.device, dtype: torch.dtype = torch.float32,
              train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole split on `device`: x (N, C, H, W) in [0, 1] of `dtype`, y (N,) int64."""
    x, y = load(name, root, train)
    return x.to(device=device, dtype=dtype).div_(255), y.to(device)


def synthetic(shape: tuple[int, int, int], classes: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A labelled stand-in of a real dataset's shape (C, H, W): class-dependent smooth means plus noise, in [0, 1]."""
    c_, h, w = shape
    g = torch.Generator().manual_seed(seed)
    means = torch.nn.functional.interpolate(torch.rand(classes, c_, 4, 4, generator=g), size=(h, w), mode="bilinear")
    y = torch.randint(0, classes, (n,), generator=g)
    x = (means[y] + 0.25 * torch.randn(n, c_, h, w, generator=g)).clamp(0, 1)
    return x, y


def fetch(name: str, root: Path) -> None:
    """Download through torchvision (needs internet; never called by tests or figures)."""
    import torchvision.datasets as tvd
    d = info(name)
    root.mkdir(parents=True, exist_ok=True)
    for train in (True, False):
        getattr(tvd, d.tv_class)(str(root), train=train, download=True)


def unpack(source: Path, root: Path) -> None:
    """Unpack the offline dataset folder (with its unpack.sh) into the data root."""
    script = source / "unpack.sh"
    if not script.exists():
        raise ReproError(f"no offline datasets at {source} (expected {script})")
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["bash", str(script), str(root)], check=True)
