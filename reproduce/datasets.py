"""Datasets: find them under the data root, load them as uint8 tensors, put them whole on a device.

Sources, in order: torchvision's own layout (`MNIST/raw`, `FashionMNIST/raw`, `cifar-10-batches-py`,
`cifar-100-python`), then an ImageFolder tree (`cifar10-jpeg/{train,test}/<class>/*.jpg`, as shipped
offline), decoded once into a cached uint8 tensor file beside it. Nothing is ever downloaded here
except by `fetch`, which the user calls explicitly.
"""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import tarfile
import tempfile
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


def _idx_problem(path: Path) -> str | None:
    """Why an idx file (MNIST layout) is unusable, from its header: missing, or not as long as its dimensions say."""
    if not path.exists():
        return "missing"
    with open(path, "rb") as fh:
        head = fh.read(4)
        if len(head) < 4 or head[0] or head[1] or head[2] != 0x08:
            return "not an uint8 idx file"
        dims = [int.from_bytes(fh.read(4), "big") for _ in range(head[3])]
    expected = 4 + 4 * len(dims) + math.prod(dims)
    size = path.stat().st_size
    return None if size == expected else f"{size} bytes, its header says {expected}"


def check_files(name: str, root: Path) -> None:
    """A one-line ReproError when a present dataset's files are truncated or damaged (idx files: by their headers)."""
    d = info(name)
    if locate(name, root) != "torchvision" or not d.tv_marker.endswith("-ubyte"):
        return
    raw = (root / d.tv_marker).parent
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        problem = _idx_problem(raw / stem)
        if problem:
            raise ReproError(f"dataset {d.name}: {raw / stem} is damaged ({problem}); run `repro data unpack` "
                             f"(offline copies) or `repro data fetch {d.name}` to restore it")


def require(name: str, root: Path) -> None:
    """A one-line ReproError naming both ways to get a missing dataset, or the damaged file of a present one."""
    if locate(name, root) is None:
        d = info(name)
        raise ReproError(
            f"dataset {d.name} not found under {root} ({d.note or 'missing'}): run `repro data unpack` "
            f"(offline copies) or `repro data fetch {d.name}` (online), or point --data-root / REPRO_DATA at it")
    check_files(name, root)


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
    try:
        blob = torch.load(cache)
        return blob["x"], blob["y"]
    except (OSError, RuntimeError, EOFError, KeyError, ValueError) as exc:
        raise ReproError(f"dataset {name}: {cache} could not be read ({type(exc).__name__}); delete it to decode "
                         f"the images again, or run `repro data unpack`") from None


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


# what each dataset needs from an offline folder (../shared/datasets), in the form the figures read
OFFLINE = {
    "mnist": [f"MNIST/raw/{s}.gz" for s in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                            "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")],
    "fashion-mnist": [f"FashionMNIST/raw/{s}.gz" for s in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")],
    "cifar10": ["cifar10-jpeg.tar.gz"],
}


def offline_source(explicit: Path | None = None) -> Path | None:
    """The offline datasets folder: `explicit`, else ../shared/datasets beside the checkout or the working folder."""
    candidates = [explicit] if explicit is not None else [
        Path(__file__).resolve().parents[2] / "shared" / "datasets", Path("..") / "shared" / "datasets"]
    return next((c for c in candidates if (c / "SHA256SUMS").is_file()), None)


def offline(name: str, source: Path | None) -> bool:
    """Whether `source` holds every file `name` needs."""
    return source is not None and name in OFFLINE and all((source / f).is_file() for f in OFFLINE[name])


def _checked(source: Path, rel: str, sums: dict[str, str]) -> Path:
    """source/rel after its line in SHA256SUMS (`sums`: path -> digest) matched (a ReproError names the file)."""
    path, want = source / rel, sums.get(rel)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if want is None or digest.hexdigest() != want:
        raise ReproError(f"offline copy {path} does not match {source / 'SHA256SUMS'}; get a fresh copy")
    return path


def unpack(name: str, source: Path, root: Path) -> str:
    """Unpack one dataset from the offline folder into the data root, only in the form the figures read
    (MNIST / Fashion-MNIST: the idx files; CIFAR-10: the JPEG folders). Returns a one-line summary."""
    if not offline(name, source):
        raise ReproError(f"dataset {name} is not in the offline folder {source}; use `repro data fetch {name}`")
    sums = dict(reversed(line.split(maxsplit=1)) for line in (source / "SHA256SUMS").read_text().splitlines()
                if line.strip())
    if name == "cifar10":
        archive = _checked(source, OFFLINE[name][0], sums)
        tmp = Path(tempfile.mkdtemp(prefix=".cifar10-", dir=_made(root)))
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, members=[m for m in tar.getmembers() if m.name.startswith("cifar10-jpeg/")],
                               filter="data")
            target = root / "cifar10-jpeg"
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp / "cifar10-jpeg", target)   # whole folder at once: never a half-unpacked tree
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return f"unpacked cifar10 ({archive.name}) into {target}"
    for rel in OFFLINE[name]:
        gz = _checked(source, rel, sums)
        target = _made(root / Path(rel).parent) / Path(rel).stem
        part = target.with_suffix(".part")
        with gzip.open(gz, "rb") as fin, open(part, "wb") as fout:
            shutil.copyfileobj(fin, fout)
        os.replace(part, target)
    return f"unpacked {name} (idx files) into {root / Path(OFFLINE[name][0]).parent}"


def _made(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder
