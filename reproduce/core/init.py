"""Initialisation schemes as explicit variance rules for Gaussian weights."""
from __future__ import annotations

import torch

# variance of W_ij for a weight of shape (fan_out, fan_in)
VARIANCE_RULES = {
    "he_fan_out": lambda fan_in, fan_out: 2.0 / fan_out,     # Arpit & Bengio's theorems, kaiming fan_out
    "he_fan_in": lambda fan_in, fan_out: 2.0 / fan_in,       # PyTorch's kaiming default
    "glorot": lambda fan_in, fan_out: 2.0 / (fan_in + fan_out),  # xavier_normal_
    "lecun_fan_out": lambda fan_in, fan_out: 1.0 / fan_out,  # the 'glorot' of Arpit & Bengio's code
    "lecun": lambda fan_in, fan_out: 1.0 / fan_in,
}


def variance(rule: str, fan_in: int, fan_out: int) -> float:
    """Weight variance for `rule` at the given fans."""
    return VARIANCE_RULES[rule](fan_in, fan_out)


def gaussian_weight(rule: str, fan_out: int, fan_in: int, *, generator: torch.Generator,
                    dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> torch.Tensor:
    """W (fan_out, fan_in) with i.i.d. N(0, variance(rule)) entries."""
    std = variance(rule, fan_in, fan_out) ** 0.5
    return torch.randn(fan_out, fan_in, generator=generator, dtype=dtype, device=device) * std
