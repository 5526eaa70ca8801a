"""VGG (configs A/B/D/E = C8L3, C10L3, C13L3, C16L3) and CIFAR-style ResNets built from PL layers (SPEC-000-002.md,
000-fig4/5)."""
from __future__ import annotations

import torch
from torch import nn

from .piecewise import PLMaxPool, PLReLU

VGG = {11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
       13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
       16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
       19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]}
RESNET = {18: ("basic", [2, 2, 2, 2]), 34: ("basic", [3, 4, 6, 3]), 50: ("bottleneck", [3, 4, 6, 3]),
          101: ("bottleneck", [3, 4, 23, 3]), 152: ("bottleneck", [3, 8, 36, 3])}


def _w(ch: int, width: float) -> int:
    return max(1, round(ch * width))


def vgg(depth: int, in_ch: int, classes: int, *, width: float = 1.0, pool: str = "max",
        bn: bool = False) -> nn.Sequential:
    """VGG-depth for 32x32 inputs: 3x3 convs (padding 1), 2x2 pools, then Linear-ReLU-Linear-ReLU-Linear (512 wide)."""
    layers, ch = [], in_ch
    for v in VGG[depth]:
        if v == "M":
            layers.append(PLMaxPool(2) if pool == "max" else nn.AvgPool2d(2))
            continue
        layers += [nn.Conv2d(ch, _w(v, width), 3,
                             padding=1)] + ([nn.BatchNorm2d(_w(v, width))] if bn else []) + [PLReLU()]
        ch = _w(v, width)
    f = _w(512, width)
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(ch, f), PLReLU(), nn.Linear(f, f), PLReLU(),
                         nn.Linear(f, classes))


class Block(nn.Module):
    """Basic (two 3x3) or bottleneck (1x1, 3x3, 1x1 x4) residual block with BN.

    A projection shortcut when shapes change."""

    def __init__(self, kind: str, cin: int, ch: int, stride: int):
        super().__init__()
        out = ch * (4 if kind == "bottleneck" else 1)
        if kind == "basic":
            convs = [(cin, ch, 3, stride), (ch, ch, 3, 1)]
        else:
            convs = [(cin, ch, 1, 1), (ch, ch, 3, stride), (ch, out, 1, 1)]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, k, s, padding=k // 2, bias=False) for a, b, k, s in convs)
        self.bns = nn.ModuleList(nn.BatchNorm2d(b) for _, b, _, _ in convs)
        self.relus = nn.ModuleList(PLReLU() for _ in convs)
        self.short = (nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out))
                      if stride != 1 or cin != out else nn.Identity())

    def forward(self, x):
        h = x
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            h = bn(conv(h))
            if i < len(self.convs) - 1:
                h = self.relus[i](h)
        return self.relus[-1](h + self.short(x))


def resnet(depth: int, in_ch: int, classes: int, *, width: float = 1.0) -> nn.Sequential:
    """CIFAR-style ResNet-depth: 3x3 stem (64, stride 1, no max-pool), four stages, global average pool, linear."""
    kind, counts = RESNET[depth]
    stem = _w(64, width)
    layers, cin = [nn.Conv2d(in_ch, stem, 3, padding=1, bias=False), nn.BatchNorm2d(stem), PLReLU()], stem
    for stage, n in enumerate(counts):
        ch = _w(64 * 2**stage, width)
        for b in range(n):
            layers.append(Block(kind, cin, ch, 2 if stage and not b else 1))
            cin = ch * (4 if kind == "bottleneck" else 1)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))


def he_init(net: nn.Module, generator: torch.Generator) -> nn.Module:
    """SPEC-000-002.md D3 for conv nets: every conv/linear weight N(0, 2/fan_in), biases 0, BN gamma 1 beta 0."""
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                fan_in = mod.weight[0].numel()
                mod.weight.normal_(0, (2 / fan_in) ** 0.5, generator=generator)
                if mod.bias is not None:
                    mod.bias.zero_()
            elif isinstance(mod, nn.BatchNorm2d):
                mod.reset_parameters()
                mod.reset_running_stats()
    return net


def recalibrate_bn(net: nn.Module, x: torch.Tensor, batch: int = 500) -> nn.Module:
    """Running BN statistics from x with no weight change (cumulative average), then eval mode.

    See SPEC-000-002.md §1.3."""
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    if not bns:
        return net.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    with torch.no_grad():
        for i in range(0, len(x), batch):
            net(x[i:i + batch])
    for m in bns:
        m.momentum = 0.1
    return net.eval()


def make(arch: str, depth: int, dataset: str, g: torch.Generator, x_calib: torch.Tensor, *, width: float = 1.0,
         pool: str = "max", bn: bool = False) -> nn.Module:
    """He-initialized `arch` ("vgg" | "resnet") for `dataset`'s shape (drawn on the host: the same weights on every
    device), moved to x_calib's device, BN recalibrated on x_calib, in eval mode."""
    from .common import SHAPES
    ch, _, _, c = SHAPES[dataset.removeprefix("synthetic-")]
    net = vgg(depth, ch, c, width=width, pool=pool, bn=bn) if arch == "vgg" else resnet(depth, ch, c, width=width)
    return recalibrate_bn(he_init(net, g).to(x_calib.device), x_calib)
