"""Device choice, precision settings and per-point random generators."""
from __future__ import annotations

import hashlib
import json

import torch

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda if available else cpu; 'cuda' without CUDA or an unknown name is a ValueError."""
    name = name.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("--device cuda requested but CUDA is not available on this machine")
        return torch.device(name)
    raise ValueError(f"unknown device {name!r}; choose auto, cpu or cuda")


def measurement_mode() -> None:
    """Turn TF32 off everywhere so float32 matmuls are true float32."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")


def tf32_flags() -> dict[str, bool]:
    """The TF32 switches as torch reports them now (recorded in meta.json, so a run with TF32 on shows it)."""
    return {"cuda_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
            "cudnn": bool(torch.backends.cudnn.allow_tf32),
            "float32_matmul_precision_highest": torch.get_float32_matmul_precision() == "highest"}


def point_seed(seed: int, point: dict) -> int:
    """A 63-bit seed derived from the base seed and a grid point, independent of sweep order."""
    blob = json.dumps([seed, point], sort_keys=True).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") >> 1


def generator(device: torch.device, seed: int) -> torch.Generator:
    """A torch.Generator on `device` seeded with `seed`."""
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def free_memory(device: torch.device) -> int:
    """Free bytes on `device` (CUDA: cudaMemGetInfo; CPU: MemAvailable)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable"):
                return int(line.split()[1]) * 1024
    return 1 << 32
