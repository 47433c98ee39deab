"""EDSR: a wide ResNet without batch norm, residual scaling and a sub-pixel upsampler, on RGB.

Paper: B. Lim, S. Son, H. Kim, S. Nah, K. M. Lee, "Enhanced Deep Residual Networks for Single Image
Super-Resolution", CVPRW 2017 [lim2017edsr]. Official code: sanghyun-son/EDSR-PyTorch
(``src/model/edsr.py``, ``src/model/common.py``); BasicSR ``archs/edsr_arch.py`` is a faithful copy.

The srlib skeleton in its original form::

    x = sub_mean(lr)                      MeanShift: subtract the DIV2K RGB mean
    f = head(x)                           conv 3x3, 3 -> F
    f = f + conv(body(f))                 B residual blocks (conv-ReLU-conv, x res_scale, NO batch norm)
                                          then a conv; the long skip from the head
    y = add_mean(tail(upsample(f)))       sub-pixel upsampler (no activation), conv 3x3 F -> 3, MeanShift

Two configurations: EDSR-baseline (B=16, F=64, res_scale 1): 1,369,859 / 1,554,499 / 1,517,571
parameters at x2 / x3 / x4; EDSR (B=32, F=256, res_scale 0.1): 40,729,603 / 43,680,003 /
43,089,923. The MeanShift is a buffer here (:class:`~srlib.models.common.MeanShift`), so it is not
counted; the official 1x1-conv MeanShift adds 24 frozen parameters. EDSR works on RGB directly.

Input scaling: EDSR-PyTorch feeds images in [0, 255] (``rgb_range``); as BasicSR, this model takes
[0, 1] and multiplies by ``img_range`` = 255 after the mean shift (divides before adding it back),
so the network sees the same numbers as the official one and official weights map 1:1.
Training notes: L1 loss, Adam lr 1e-4 (EDSR-PyTorch); x3/x4 are fine-tuned from the trained x2 model
(all but the upsampler and the last conv), which ``load_state_dict(strict=False)`` allows.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import register_model
from .common import MeanShiftedRGB, ResBlock, Upsample, build, check_scale, conv3x3


@dataclass
class EDSRConfig:
    num_feat: int = 64  # F: EDSR-baseline width; 256 in EDSR
    num_block: int = 16  # B: residual blocks; 32 in EDSR
    res_scale: float = 1.0  # residual scaling; 0.1 only for the wide EDSR (stabilises its training)
    img_range: float = 255.0  # the network works on [0, 255] as EDSR-PyTorch (rgb_range = 255)


class EDSR(MeanShiftedRGB):
    """EDSR / EDSR-baseline: RGB in and out.

    Args:
        scale: 2, 3 or 4 (the upsampler supports 2^n and 3). Default config: EDSR-baseline.
        num_feat: channels F. Default: 64.
        num_block: residual blocks B. Default: 16.
        res_scale: multiplier of each block's residual. Default: 1.0.
        img_range: the mean-shifted input is multiplied by this. Default: 255.

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, scale*h, scale*w), not clamped.

    Example:
        >>> import torch
        >>> net = EDSR(scale=3, num_feat=8, num_block=1)
        >>> net(torch.rand(1, 3, 6, 5)).shape
        torch.Size([1, 3, 18, 15])
    """

    def __init__(self, scale: int, num_feat: int = 64, num_block: int = 16, res_scale: float = 1.0,
                 img_range: float = 255.0):
        super().__init__(img_range)
        check_scale(scale, "2^n and 3 (EDSR's registered scales: 2, 3, 4)")
        self.scale = scale
        self.head = conv3x3(3, num_feat)
        self.body = nn.Sequential(*[ResBlock(num_feat, res_scale=res_scale) for _ in range(num_block)],
                                  conv3x3(num_feat, num_feat))
        self.upsample = Upsample(scale, num_feat)
        self.tail = conv3x3(num_feat, 3)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        x = self.head(self.to_network(lr))  # (N, F, h, w)
        x = x + self.body(x)  # long skip
        return self.to_image(self.tail(self.upsample(x)))  # (N, 3, s*h, s*w)


SCALES = (2, 3, 4)
PAPER = "Lim et al., CVPRW 2017 (EDSR)"


@register_model("edsr_baseline", scales=SCALES, paper=PAPER + ", baseline")
def edsr_baseline(scale: int = 4, **overrides) -> EDSR:
    """EDSR-baseline (16 blocks x 64): 1,369,859 / 1,554,499 / 1,517,571 parameters at x2 / x3 / x4."""
    return build(EDSR, scale, EDSRConfig(), overrides)


@register_model("edsr", scales=SCALES, paper=PAPER)
def edsr(scale: int = 4, **overrides) -> EDSR:
    """EDSR (32 blocks x 256, res_scale 0.1): 40,729,603 / 43,680,003 / 43,089,923 parameters."""
    return build(EDSR, scale, EDSRConfig(num_feat=256, num_block=32, res_scale=0.1), overrides)


@register_model("edsr_tiny", scales=SCALES, paper=PAPER + ", CPU preset")
def edsr_tiny(scale: int = 4, **overrides) -> EDSR:
    # shrunk from EDSR-baseline: width 64 -> 16, blocks 16 -> 4 (about 60x fewer multiply-adds)
    return build(EDSR, scale, EDSRConfig(num_feat=16, num_block=4), overrides)
