"""VDSR: a 20-layer network that predicts only the residual between the bicubic image and the HR.

Paper: J. Kim, J. K. Lee, K. M. Lee, "Accurate Image Super-Resolution Using Very Deep Convolutional
Networks", CVPR 2016 [kim2016vdsr]. Original code: MatConvNet on the authors' page
(cv.snu.ac.kr/research/VDSR); the most-used PyTorch port is twtygqyy/pytorch-vdsr.

The network, on the bicubic-upscaled luma ``x``::

    r = conv 3x3 (64 -> 1) o [conv 3x3 (64 -> 64), ReLU] x 18 o [conv 3x3 (1 -> 64), ReLU]  (x)
    y = x + r                                                     global residual learning

d = 20 weight layers, 665,921 parameters (with biases, as the paper; the twtygqyy port drops the
biases: 664,704). One model serves x2, x3 and x4 in the paper (trained on a mix of scales), so the
parameter count does not depend on the scale; here ``scale`` only sets the internal bicubic
pre-upsampling. The luma-only processing is the paper's; :class:`~srlib.models.common.YChannelSR`
upscales the chroma bicubically so the model maps RGB to RGB like every srlib model.

Initialisation: He-normal with the fan-in, std sqrt(2 / (9 * in_channels)), zero biases (the paper
cites He et al.; the twtygqyy port uses the fan-out, which gives the 64 -> 1 output conv a std of 0.47
and the untrained model a residual of pure noise: in 500 CPU steps the fan-in version gains about
0.2 dB more).
Training note: the paper trains with SGD at lr 0.1 and *adjustable gradient clipping* to
[-theta/lr, theta/lr]; with Adam (``srlib.train.fit``'s default) a plain ``grad_clip`` is enough.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import register_model
from .common import YChannelSR, build, conv3x3


@dataclass
class VDSRConfig:
    num_feat: int = 64  # width of every hidden layer (paper: 64)
    num_block: int = 18  # conv+ReLU layers between the first and the last conv: depth d = 18 + 2 = 20


class VDSR(YChannelSR):
    """VDSR on the luma of the bicubic-upscaled image (global residual), RGB in and out.

    Args:
        scale: upscaling factor of the internal bicubic pre-upsampling (integer >= 2).
        num_feat: channels of the hidden layers. Default: 64.
        num_block: hidden conv+ReLU layers between the first and the last conv. Default: 18 (d = 20).

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, scale*h, scale*w), not clamped.

    Example:
        >>> import torch
        >>> net = VDSR(scale=2, num_feat=8, num_block=2)
        >>> net(torch.rand(1, 3, 6, 5)).shape
        torch.Size([1, 3, 12, 10])
    """

    def __init__(self, scale: int, num_feat: int = 64, num_block: int = 18):
        super().__init__()
        if not isinstance(scale, int) or scale < 2:
            raise ValueError(f"VDSR needs an integer scale >= 2 (registered: 2, 3, 4), got {scale!r}")
        self.scale = scale
        self.head = nn.Sequential(conv3x3(1, num_feat), nn.ReLU(inplace=True))
        self.body = nn.Sequential(*[m for _ in range(num_block)
                                    for m in (conv3x3(num_feat, num_feat), nn.ReLU(inplace=True))])
        self.tail = conv3x3(num_feat, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # He et al., fan-in (Caffe's MSRA filler), zero biases
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward_y(self, y: torch.Tensor) -> torch.Tensor:
        """LR luma (N, 1, h, w) -> SR luma (N, 1, scale*h, scale*w) = bicubic + predicted residual."""
        from ..degrade import upscale_bicubic

        x = upscale_bicubic(y, self.scale)  # pre-upsampling: (N, 1, s*h, s*w)
        return x + self.tail(self.body(self.head(x)))


SCALES = (2, 3, 4)
PAPER = "Kim et al., CVPR 2016 (VDSR)"


@register_model("vdsr", scales=SCALES, paper=PAPER)
def vdsr(scale: int = 4, **overrides) -> VDSR:
    """The paper's 20-layer VDSR with biases: 665,921 parameters at any scale."""
    return build(VDSR, scale, VDSRConfig(), overrides)


@register_model("vdsr_tiny", scales=SCALES, paper=PAPER + ", CPU preset")
def vdsr_tiny(scale: int = 4, **overrides) -> VDSR:
    # shrunk: width 64 -> 16, depth 20 -> 8 layers (num_block 18 -> 6): ~50x fewer multiply-adds
    return build(VDSR, scale, VDSRConfig(num_feat=16, num_block=6), overrides)
