"""ESPCN: convolutions at LR resolution and a sub-pixel convolution (pixel shuffle) at the end.

Paper: W. Shi, J. Caballero, F. Huszar, J. Totz, A. P. Aitken, R. Bishop, D. Rueckert, Z. Wang,
"Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel Convolutional
Neural Network", CVPR 2016 [shi2016espcn]. No official code was released; yjn870/ESPCN-pytorch is a
faithful port. (pytorch/examples' ``super_resolution`` is *not* ESPCN: 4 convs and ReLU.)

The network, on the LR luma::

    conv 5x5, 1 -> 64, tanh
    conv 3x3, 64 -> 32, tanh
    conv 3x3, 32 -> r^2            the efficient sub-pixel convolution layer ...
    PixelShuffle(r)                ... its r^2 channels rearranged into an r-times larger image

The activation is tanh, not ReLU. Parameters: 21,284 (x2), 22,729 (x3), 24,752 (x4). The luma-only
processing is the paper's; :class:`~srlib.models.common.YChannelSR` upscales the chroma bicubically so
the model maps RGB to RGB like every srlib model.

Initialisation as the reference port: He-normal (fan-out) for the first two convs, N(0, 0.001) for
the last one, zero biases. The port trains the last layer at 0.1x the learning rate
(``model.sub_pixel``), which needs an optimiser with parameter groups.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from . import register_model
from .common import YChannelSR, build


@dataclass
class ESPCNConfig:
    num_feat: int = 64  # n1: filters of the 5x5 layer (paper: 64)
    num_feat_mid: int = 32  # n2: filters of the 3x3 layer (paper: 32)


class ESPCN(YChannelSR):
    """ESPCN on the LR luma with a sub-pixel output, RGB in and out.

    Args:
        scale: upscaling factor r of the pixel shuffle (integer >= 2).
        num_feat: filters of the first layer. Default: 64.
        num_feat_mid: filters of the second layer. Default: 32.

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, scale*h, scale*w), not clamped.

    Example:
        >>> import torch
        >>> net = ESPCN(scale=3, num_feat=8, num_feat_mid=4)
        >>> net(torch.rand(1, 3, 6, 5)).shape
        torch.Size([1, 3, 18, 15])
    """

    def __init__(self, scale: int, num_feat: int = 64, num_feat_mid: int = 32):
        super().__init__()
        if not isinstance(scale, int) or scale < 2:
            raise ValueError(f"ESPCN needs an integer scale >= 2 (registered: 2, 3, 4), got {scale!r}")
        self.scale = scale
        self.features = nn.Sequential(
            nn.Conv2d(1, num_feat, 5, padding=2), nn.Tanh(),
            nn.Conv2d(num_feat, num_feat_mid, 3, padding=1), nn.Tanh(),
        )
        self.sub_pixel = nn.Conv2d(num_feat_mid, scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)
        for conv in self.features:
            if isinstance(conv, nn.Conv2d):
                fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
                nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / fan_out))
                nn.init.zeros_(conv.bias)
        nn.init.normal_(self.sub_pixel.weight, 0.0, 0.001)
        nn.init.zeros_(self.sub_pixel.bias)

    def forward_y(self, y: torch.Tensor) -> torch.Tensor:
        """LR luma (N, 1, h, w) -> SR luma (N, 1, scale*h, scale*w)."""
        x = self.sub_pixel(self.features(y))  # (N, r^2, h, w)
        return self.shuffle(x)  # (N, 1, r*h, r*w)


SCALES = (2, 3, 4)
PAPER = "Shi et al., CVPR 2016 (ESPCN)"


@register_model("espcn", scales=SCALES, paper=PAPER)
def espcn(scale: int = 4, **overrides) -> ESPCN:
    """The paper's ESPCN (64-32, tanh): 21,284 / 22,729 / 24,752 parameters at x2 / x3 / x4."""
    return build(ESPCN, scale, ESPCNConfig(), overrides)


@register_model("espcn_tiny", scales=SCALES, paper=PAPER + ", CPU preset")
def espcn_tiny(scale: int = 4, **overrides) -> ESPCN:
    # shrunk: widths 64-32 -> 32-16 (about 4x fewer multiply-adds)
    return build(ESPCN, scale, ESPCNConfig(num_feat=32, num_feat_mid=16), overrides)
