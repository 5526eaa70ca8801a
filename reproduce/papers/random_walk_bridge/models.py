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

    def plan(self) -> list:
        """layerwise.plan: state (h, x) between the ReLUs, the block input x carried to the residual add."""
        *inner, (last_conv, last_bn) = list(zip(self.convs, self.bns))
        steps = [("affine", lambda s: (s[0], s[0]))]
        for conv, bn in inner:
            steps += [("affine", lambda s, c=conv, b=bn: (b(c(s[0])), s[1])), ("relu", None)]
        return steps + [("affine", lambda s: (last_bn(last_conv(s[0])) + self.short(s[1]),)), ("relu", None)]


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


# the authors' VGGs (OFFICIAL-CODE-000-001.md, Fig 4): 28 x 28 inputs, 2 x 2 average pools, no BN, two FC-1024
AUTHORS_VGG = {3: [64, "A", 128, "A", 256, "A"], 4: [64, "A", 128, "A", 256, 256, "A"],
               5: [64, "A", 128, 128, "A", 256, 256, "A"], 6: [64, 64, "A", 128, 128, "A", 256, 256, "A"],
               8: [64, 64, "A", 128, 128, "A", 256, 256, 256, 256, "A"]}


def authors_vgg(convs: int, in_ch: int, classes: int, *, width: float = 1.0, size: int = 28) -> nn.Sequential:
    """VGG C{convs}L3 of the authors' code: 3x3 convs with bias, ReLU, 2x2 average pools, then FC 1024-ReLU-FC
    1024-ReLU-FC; 89,856 (C3) ... 202,752 (C8) ReLU units at 28 x 28."""
    layers, ch, side = [], in_ch, size
    for v in AUTHORS_VGG[convs]:
        if v == "A":
            layers.append(nn.AvgPool2d(2))
            side //= 2
            continue
        layers += [nn.Conv2d(ch, _w(v, width), 3, padding=1), PLReLU()]
        ch = _w(v, width)
    f = _w(1024, width)
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(ch * side * side, f), PLReLU(), nn.Linear(f, f), PLReLU(),
                         nn.Linear(f, classes))


class PreActBlock(nn.Module):
    """Wide-ResNet basic block: BN-ReLU-conv3x3(stride)-BN-ReLU-conv3x3, plus the input, or a 1x1 conv (no bias) of
    the pre-activated input when the channel count changes."""

    def __init__(self, cin: int, cout: int, stride: int, eps: float):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(cin, eps=eps), nn.BatchNorm2d(cout, eps=eps)
        self.relu1, self.relu2 = PLReLU(), PLReLU()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, padding=1, bias=False)
        self.short = None if cin == cout and stride == 1 else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        a = self.relu1(self.bn1(x))
        h = self.conv2(self.relu2(self.bn2(self.conv1(a))))
        return h + (x if self.short is None else self.short(a))

    def plan(self) -> list:
        """layerwise.plan: (BN1 x, x) -> ReLU -> (BN2 conv1 a, shortcut) -> ReLU -> conv2 + shortcut."""
        keep = (lambda s: s[1]) if self.short is None else (lambda s: self.short(s[0]))
        return [("affine", lambda s: (self.bn1(s[0]), s[0])), ("relu", None),
                ("affine", lambda s: (self.bn2(self.conv1(s[0])), keep(s))), ("relu", None),
                ("affine", lambda s: (self.conv2(s[0]) + s[1],))]


WRN_DEPTHS = (10, 16, 22, 28, 34, 40)


def wrn(depth: int, in_ch: int, classes: int, *, width: float = 1.0, eps: float = 2e-5) -> nn.Sequential:
    """Pre-activation WRN-depth-1 of the authors' code ("ResNet10 ... ResNet40", depth = 6n + 4): 3x3 stem to 16
    channels (no bias), stages of n blocks at 16/32/64 channels and strides 1/2/2, BN-ReLU-global average pool-
    linear; 43,904 n + 12,544 ReLU units at 28 x 28. BN eps 2e-5 (Chainer's)."""
    if (depth - 4) % 6 or depth < 10:
        raise ValueError(f"WRN depth must be 6n + 4 with n >= 1, got {depth}")
    n, stem = (depth - 4) // 6, _w(16, width)
    layers, cin = [nn.Conv2d(in_ch, stem, 3, padding=1, bias=False)], stem
    for stage, ch in enumerate((16, 32, 64)):
        for b in range(n):
            layers.append(PreActBlock(cin, _w(ch, width), 2 if stage and not b else 1, eps))
            cin = _w(ch, width)
    return nn.Sequential(*layers, nn.BatchNorm2d(cin, eps=eps), PLReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(cin, classes))


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


def authors_init(net: nn.Module, generator: torch.Generator) -> nn.Module:
    """The authors' init: convs and hidden linears He N(0, 2/fan_in), the last linear LeCun N(0, 1/fan_in), biases 0,
    BN gamma 1 beta 0, running statistics (0, 1)."""
    he_init(net, generator)
    last = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.weight.mul_(0.5 ** 0.5)
    return net


def authors_bn_pass(net: nn.Module, x: torch.Tensor, generator: torch.Generator, batches: int = 20,
                    batch: int = 500) -> nn.Module:
    """The authors' BN statistics pass at "init": `batches` random minibatches of `batch` training images in train
    mode, running averages with decay 0.9 from (0, 1) (their 20 SGD steps at lr 1e-8 leave the weights as they are),
    then eval mode. x: (N, C, H, W) training images."""
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    if bns:
        idx = torch.randperm(len(x), generator=generator)[:batches * batch].to(x.device)
        net.train()
        with torch.no_grad():
            for m in bns:
                m.reset_running_stats()
                m.momentum = 0.1
            for i in range(0, len(idx), batch):
                net(x[idx[i:i + batch]])
    return net.eval()


def make_authors(arch: str, depth: int, dataset: str, g: torch.Generator, x_train: torch.Tensor, *,
                 width: float = 1.0) -> nn.Module:
    """The authors' Fig 4/5 network ("vgg": C{depth}L3; "resnet": WRN-depth-1) for `dataset`'s channels and classes
    at x_train's resolution, initialized on the host, moved to x_train's device, BN pass on x_train, eval mode."""
    from .common import SHAPES
    ch, _, _, c = SHAPES[dataset.removeprefix("synthetic-")]
    net = (authors_vgg(depth, ch, c, width=width, size=x_train.shape[-1]) if arch == "vgg"
           else wrn(depth, ch, c, width=width))
    return authors_bn_pass(authors_init(net, g).to(x_train.device), x_train, g)


def make(arch: str, depth: int, dataset: str, g: torch.Generator, x_calib: torch.Tensor, *, width: float = 1.0,
         pool: str = "max", bn: bool = False) -> nn.Module:
    """He-initialized `arch` ("vgg" | "resnet") for `dataset`'s shape (drawn on the host: the same weights on every
    device), moved to x_calib's device, BN recalibrated on x_calib, in eval mode."""
    from .common import SHAPES
    ch, _, _, c = SHAPES[dataset.removeprefix("synthetic-")]
    net = vgg(depth, ch, c, width=width, pool=pool, bn=bn) if arch == "vgg" else resnet(depth, ch, c, width=width)
    return recalibrate_bn(he_init(net, g).to(x_calib.device), x_calib)
