"""WRN-beta-l and CNN-beta-l (Zagoruyko & Komodakis pre-activation layout) with optional BN and skips.

beta = 6 beta_r + 4; stem 3x3 conv to `base` channels; three groups of beta_r blocks with widths
base*l, 2 base*l, 4 base*l (strides 1, 2, 2); head [BN] -> ReLU -> global average pool -> FC.
CNN = the same net with every skip (identity and 1x1 shortcut) removed. Convs get biases only without BN.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ...config import ReproError


def blocks_per_group(depth: int) -> int:
    """beta_r = (beta - 4) / 6; other depths are a ReproError."""
    if depth < 10 or (depth - 4) % 6:
        raise ReproError(f"depth {depth} is not 6*beta_r + 4 with beta_r >= 1 (e.g. 10, 16, 22, 28, 40, 52, 100)")
    return (depth - 4) // 6


def _bn(c: int, on: bool) -> nn.Module:
    return nn.BatchNorm2d(c) if on else nn.Identity()


class Block(nn.Module):
    """[BN] -> ReLU -> conv3x3(stride) -> [BN] -> ReLU -> conv3x3, plus the shortcut when `skip`."""

    def __init__(self, cin: int, cout: int, stride: int, bn: bool, skip: bool):
        super().__init__()
        self.bn1, self.bn2, self.skip = _bn(cin, bn), _bn(cout, bn), skip
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=not bn)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=not bn)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False) if skip and (cin != cout or stride != 1) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(a))))
        if not self.skip:
            return out
        return out + (x if self.shortcut is None else self.shortcut(a))  # ZK: 1x1 shortcut sees the activation


class WideNet(nn.Module):
    """WRN-depth-width (skip=True) or CNN-depth-width (skip=False): (N, C, H, W) -> (N, classes) logits."""

    def __init__(self, depth: int, width: int, *, bn: bool, skip: bool, classes: int = 10, base: int = 16,
                 in_ch: int = 3):
        super().__init__()
        n = blocks_per_group(depth)
        widths = [base, base * width, 2 * base * width, 4 * base * width]
        self.stem = nn.Conv2d(in_ch, base, 3, 1, 1, bias=not bn)
        layers = []
        for g in range(3):
            for b in range(n):
                layers.append(Block(widths[g] if b == 0 else widths[g + 1], widths[g + 1],
                                    (1 if g == 0 else 2) if b == 0 else 1, bn, skip))
        self.blocks = nn.Sequential(*layers)
        self.bn = _bn(widths[3], bn)
        self.fc = nn.Linear(widths[3], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn(self.blocks(self.stem(x))))
        return self.fc(h.mean((2, 3)))


def msra_init_(net: nn.Module, mode: str = "fan_out", generator: torch.Generator | None = None) -> nn.Module:
    """ZK MSRinit: conv weights N(0, 2/(k*k*C_out)) (fan_out) or 2/(k*k*C_in); biases 0; FC bias 0."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                k = m.kernel_size[0] * m.kernel_size[1]
                fan = k * (m.out_channels if mode == "fan_out" else m.in_channels)
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * math.sqrt(2.0 / fan))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.Linear):
                bound = 1 / math.sqrt(m.in_features)   # nn.Linear's default kaiming_uniform(a=sqrt 5) bound
                m.weight.copy_((torch.rand(m.weight.shape, generator=generator) * 2 - 1) * bound)
                m.bias.zero_()
    return net


def make(depth: int, width: int, *, bn: bool, skip: bool, classes: int = 10, base: int = 16, in_ch: int = 3,
         msra_mode: str = "fan_out", generator: torch.Generator | None = None) -> WideNet:
    """A freshly initialised WideNet on the CPU (move it with .to(device))."""
    return msra_init_(WideNet(depth, width, bn=bn, skip=skip, classes=classes, base=base, in_ch=in_ch),
                      msra_mode, generator)


def param_count(depth: int, width: int, *, bn: bool, skip: bool, classes: int = 10, base: int = 16,
                in_ch: int = 3) -> int:
    """Trainable parameters by formula (independent of the module, for tests and `describe`)."""
    n, bias = blocks_per_group(depth), 0 if bn else 1
    w = [base, base * width, 2 * base * width, 4 * base * width]
    conv = lambda ci, co, k=3, b=bias: ci * co * k * k + co * b   # noqa: E731
    total = conv(in_ch, w[0]) + w[3] * classes + classes + (2 * w[3] if bn else 0)
    for g in range(3):
        for b in range(n):
            ci, co = (w[g] if b == 0 else w[g + 1]), w[g + 1]
            total += conv(ci, co) + conv(co, co) + (2 * ci + 2 * co if bn else 0)
            if skip and b == 0 and (ci != co or g > 0):
                total += conv(ci, co, 1, 0)
    return total
