"""SFTGAN: spatial feature transform layers, conditioned on segmentation probability maps.

Paper: X. Wang, K. Yu, C. Dong, C. C. Loy, "Recovering Realistic Texture in Image Super-resolution
by Deep Spatial Feature Transform", CVPR 2018 [wang2018sftgan]. Official code: xinntao/SFTGAN
(``pytorch_test/architectures.py``: ``SFT_Net_torch``, the Torch model of the paper, and ``SFT_Net``,
a later PyTorch variant; training in the older BasicSR).

**Call signature: ``forward(lr, seg)``**, unlike the other SR models. ``seg`` is a class-probability
map at the *HR* size, (N, num_classes, 4h, 4w), each pixel's probabilities summing to 1. In the
paper it comes from a separate segmentation network (OutdoorSceneSeg, 8 outdoor classes, 52M
parameters) run on the bicubic-upsampled LR image; the course builds scenes from the bundled
textures, whose class maps are known. Swap the map and the texture the network synthesises changes.

The network::

    cond = CondNet(seg)                    conv 4x4 stride 4 (HR -> LR size), 4 x [LReLU 0.1, conv 1x1]: 32 ch
    f0   = conv(lr)                        conv 3x3, 3 -> 64
    f    = body(f0, cond)                  16 x SFT-ResBlock, then SFT, conv; + f0 (long skip)
    sr   = HR_branch(f)                    [nearest x2, conv, ReLU] x 2, conv, ReLU, conv 64 -> 3

    SFT(x | cond)     = x * gamma(cond) + beta(cond)     gamma, beta: 1x1 conv 32->32, LReLU 0.01, 1x1 conv 32->64
    SFT-ResBlock(x)   = x + conv(relu(SFT(conv(relu(SFT(x))))))

The condition network runs once; every SFT layer has its own gamma/beta convs, so each block
modulates its features per pixel according to the class there. 1,612,195 parameters with 8
classes (reference sheet, ``SFT_Net_torch``: 1,612,195). x4 only (the condition net's stride-4 conv
maps the HR-size map to the LR grid).

The PyTorch variant ``SFT_Net`` (1,833,763 parameters) differs: ``x * (gamma + 1) + beta``, LReLU 0.1,
pixel-shuffle upsampling and a ReLU placement of its own. ``scale_offset=1`` gives its modulation
(the identity when gamma = 0, which eases training from scratch) on the paper's network.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import register_model
from .common import build, conv3x3
from .enhancenet import NearestUpsample

SFT_SLOPE = 0.01  # LeakyReLU slope inside the SFT layers of the paper's (Torch) model
COND_SLOPE = 0.1  # LeakyReLU slope of the condition network


class SFTLayer(nn.Module):
    """Spatial feature transform: ``x * (gamma(cond) + scale_offset) + beta(cond)``, per pixel and channel.

    Args:
        num_feat: channels of the modulated features. Default: 64.
        cond_feat: channels of the condition. Default: 32.
        scale_offset: 0 for the paper's ``x * gamma + beta``; 1 for the PyTorch variant's. Default: 0.
    """

    def __init__(self, num_feat: int = 64, cond_feat: int = 32, scale_offset: float = 0.0):
        super().__init__()
        self.gamma = nn.Sequential(nn.Conv2d(cond_feat, cond_feat, 1), nn.LeakyReLU(SFT_SLOPE),
                                   nn.Conv2d(cond_feat, num_feat, 1))
        self.beta = nn.Sequential(nn.Conv2d(cond_feat, cond_feat, 1), nn.LeakyReLU(SFT_SLOPE),
                                  nn.Conv2d(cond_feat, num_feat, 1))
        self.scale_offset = scale_offset

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return x * (self.gamma(cond) + self.scale_offset) + self.beta(cond)  # (N, F, h, w)


class SFTResBlock(nn.Module):
    """``x + conv(relu(SFT(conv(relu(SFT(x | cond))) | cond)))`` (``ResBlock_SFT_torch``)."""

    def __init__(self, num_feat: int = 64, cond_feat: int = 32, scale_offset: float = 0.0):
        super().__init__()
        self.sft0 = SFTLayer(num_feat, cond_feat, scale_offset)
        self.conv0 = conv3x3(num_feat, num_feat)
        self.sft1 = SFTLayer(num_feat, cond_feat, scale_offset)
        self.conv1 = conv3x3(num_feat, num_feat)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        f = self.conv0(self.act(self.sft0(x, cond)))
        f = self.conv1(self.act(self.sft1(f, cond)))
        return x + f


class CondNet(nn.Sequential):
    """Segmentation probabilities at HR size -> condition features at LR size (shared by all SFT layers)."""

    def __init__(self, num_classes: int = 8, cond_hidden: int = 128, cond_feat: int = 32, scale: int = 4):
        # (N, K, s*h, s*w) -> (N, cond_hidden, h, w): one LR pixel per s x s block of the HR-size map
        layers: list[nn.Module] = [nn.Conv2d(num_classes, cond_hidden, scale, stride=scale)]
        for _ in range(3):
            layers += [nn.LeakyReLU(COND_SLOPE, inplace=True), nn.Conv2d(cond_hidden, cond_hidden, 1)]
        layers += [nn.LeakyReLU(COND_SLOPE, inplace=True), nn.Conv2d(cond_hidden, cond_feat, 1)]
        super().__init__(*layers)


@dataclass
class SFTGANConfig:
    num_feat: int = 64  # channels of the SR branch (official: 64)
    num_block: int = 16  # SFT residual blocks (official: 16)
    num_classes: int = 8  # OutdoorSceneSeg classes: background, sky, water, grass, mountain, building, plant, animal
    cond_feat: int = 32  # channels of the condition shared by all SFT layers (official: 32)
    cond_hidden: int = 128  # width of the condition network (official: 128)
    scale_offset: float = 0.0  # 0: the paper's x * gamma + beta; 1: the PyTorch variant's x * (gamma + 1) + beta


class SFTGAN(nn.Module):
    """SFTGAN generator (the paper's Torch model, ``SFT_Net_torch``): **forward(lr, seg)**.

    Args:
        scale: 4 only.
        num_feat: channels. Default: 64.
        num_block: SFT residual blocks. Default: 16.
        num_classes: channels of ``seg``. Default: 8.
        cond_feat: condition channels. Default: 32.
        cond_hidden: width of the condition network. Default: 128.
        scale_offset: added to gamma (0: paper). Default: 0.

    ``forward(lr, seg)``: lr (N, 3, h, w) RGB in [0, 1]; seg (N, num_classes, 4h, 4w) class
    probabilities at the HR size -> (N, 3, 4h, 4w), not clamped.

    Example:
        >>> net = SFTGAN(scale=4, num_feat=8, num_block=1, num_classes=3, cond_feat=4, cond_hidden=8)
        >>> seg = torch.softmax(torch.rand(1, 3, 24, 20), dim=1)
        >>> net(torch.rand(1, 3, 6, 5), seg).shape
        torch.Size([1, 3, 24, 20])
    """

    def __init__(self, scale: int, num_feat: int = 64, num_block: int = 16, num_classes: int = 8, cond_feat: int = 32,
                 cond_hidden: int = 128, scale_offset: float = 0.0):
        super().__init__()
        if scale != 4:
            raise ValueError(f"SFTGAN is a x4 network (its condition net maps the HR-size map to LR with a stride-4 "
                             f"conv), got scale {scale!r}")
        self.scale, self.num_classes = scale, num_classes
        self.cond_net = CondNet(num_classes, cond_hidden, cond_feat, scale)
        self.head = conv3x3(3, num_feat)
        self.blocks = nn.ModuleList([SFTResBlock(num_feat, cond_feat, scale_offset) for _ in range(num_block)])
        self.body_sft = SFTLayer(num_feat, cond_feat, scale_offset)
        self.body_conv = conv3x3(num_feat, num_feat)
        self.upsample = NearestUpsample(scale, num_feat)
        self.tail = nn.Sequential(conv3x3(num_feat, num_feat), nn.ReLU(inplace=True), conv3x3(num_feat, 3))

    def forward(self, lr: torch.Tensor, seg: torch.Tensor | None = None) -> torch.Tensor:
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"expected LR images (N, 3, h, w), got shape {tuple(lr.shape)}")
        n, _, h, w = lr.shape
        expected = (n, self.num_classes, self.scale * h, self.scale * w)
        if seg is None or tuple(seg.shape) != expected:
            got = "nothing" if seg is None else f"shape {tuple(seg.shape)}"
            raise ValueError(f"SFTGAN is called as model(lr, seg): seg must be class probabilities at the HR size, "
                             f"{expected} for this LR, got {got} (e.g. one-hot class maps, or softmax of a "
                             "segmentation network's output on the bicubic-upsampled LR)")
        cond = self.cond_net(seg)  # (N, cond_feat, h, w)
        f0 = self.head(lr)  # (N, F, h, w)
        f = f0
        for block in self.blocks:
            f = block(f, cond)
        f = f0 + self.body_conv(self.body_sft(f, cond))  # long skip
        return self.tail(self.upsample(f))  # (N, 3, 4h, 4w)


SCALES = (4,)
PAPER = "Wang et al., CVPR 2018 (SFTGAN); called as model(lr, seg) with HR-size class probabilities"


@register_model("sftgan", scales=SCALES, paper=PAPER)
def sftgan(scale: int = 4, **overrides) -> SFTGAN:
    """The paper's SFTGAN generator (Torch ``SFT_Net_torch``, 8 classes): 1,612,195 parameters."""
    return build(SFTGAN, scale, SFTGANConfig(), overrides)


@register_model("sftgan_tiny", scales=SCALES, paper=PAPER + ", CPU preset")
def sftgan_tiny(scale: int = 4, **overrides) -> SFTGAN:
    # shrunk: width 64 -> 16, SFT blocks 16 -> 4, condition 32 -> 8 channels, condition net 128 -> 32
    return build(SFTGAN, scale, SFTGANConfig(num_feat=16, num_block=4, cond_feat=8, cond_hidden=32), overrides)
