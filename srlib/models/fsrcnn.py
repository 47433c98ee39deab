"""FSRCNN: SRCNN made fast by working at LR resolution and upsampling at the end with a deconvolution.

Paper: C. Dong, C. C. Loy, X. Tang, "Accelerating the Super-Resolution Convolutional Neural Network",
ECCV 2016 [dong2016fsrcnn]. Original code: MATLAB + Caffe on the authors' project page
(mmlab.ie.cuhk.edu.hk/projects/FSRCNN.html); PyTorch port: yjn870/FSRCNN-pytorch.

Five parts, all on the LR luma, PReLU after every conv::

    feature extraction  conv 5x5, 1 -> d
    shrinking           conv 1x1, d -> s
    mapping             m x conv 3x3, s -> s
    expanding           conv 1x1, s -> d
    deconvolution       9x9 transposed conv, d -> 1, stride = scale

The paper's setting is FSRCNN(d=56, s=12, m=4): 12,809 parameters at every scale, since only the
deconvolution's stride depends on the scale (the paper shares the conv layers between scales and
retrains the deconvolution alone). The network sees the luma channel only, as in the paper; the
chroma is upscaled bicubically by :class:`~srlib.models.common.YChannelSR`, so the model maps RGB to
RGB like every srlib model.

Initialisation as the reference code: He-normal convs (fan-out), zero biases, the deconvolution
N(0, 0.001). Training note: the port trains the deconvolution at 0.1x the learning rate
(``model.deconv``), which needs an optimiser with parameter groups.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from . import register_model
from .common import YChannelSR, build


@dataclass
class FSRCNNConfig:
    num_feat: int = 56  # d: LR feature dimension (paper's best trade-off, FSRCNN(56, 12, 4))
    num_feat_shrink: int = 12  # s: channels of the cheap mapping part (paper: 12; FSRCNN-s: 5)
    num_block: int = 4  # m: 3x3 mapping layers (paper: 4; FSRCNN-s: 1)


def _conv_prelu(in_ch: int, out_ch: int, kernel_size: int) -> nn.Sequential:
    """conv k x k ('same' padding) followed by a per-channel PReLU, FSRCNN's only building block."""
    conv = nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2)
    # He init for PReLU nets as in the reference: std = sqrt(2 / (out_channels * k * k))
    nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / (out_ch * kernel_size * kernel_size)))
    nn.init.zeros_(conv.bias)
    return nn.Sequential(conv, nn.PReLU(out_ch))


class FSRCNN(YChannelSR):
    """FSRCNN(d, s, m) on the LR luma, RGB in and out.

    Args:
        scale: upscaling factor, the stride of the deconvolution (integer >= 2).
        num_feat: d, feature dimension of extraction/expanding. Default: 56.
        num_feat_shrink: s, channels of the mapping part. Default: 12.
        num_block: m, number of 3x3 mapping layers. Default: 4.

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, scale*h, scale*w), not clamped.

    Example:
        >>> import torch
        >>> net = FSRCNN(scale=3, num_feat=8, num_feat_shrink=4, num_block=1)
        >>> net(torch.rand(1, 3, 6, 5)).shape
        torch.Size([1, 3, 18, 15])
    """

    def __init__(self, scale: int, num_feat: int = 56, num_feat_shrink: int = 12, num_block: int = 4):
        super().__init__()
        if not isinstance(scale, int) or scale < 2:
            raise ValueError(f"FSRCNN needs an integer scale >= 2 (registered: 2, 3, 4), got {scale!r}")
        self.scale = scale
        self.extraction = _conv_prelu(1, num_feat, 5)
        self.shrinking = _conv_prelu(num_feat, num_feat_shrink, 1)
        self.mapping = nn.Sequential(*[_conv_prelu(num_feat_shrink, num_feat_shrink, 3) for _ in range(num_block)])
        self.expanding = _conv_prelu(num_feat_shrink, num_feat, 1)
        # (h - 1) * scale - 2 * 4 + 9 + (scale - 1) = scale * h: exactly scale times larger
        self.deconv = nn.ConvTranspose2d(num_feat, 1, 9, stride=scale, padding=4, output_padding=scale - 1)
        nn.init.normal_(self.deconv.weight, 0.0, 0.001)
        nn.init.zeros_(self.deconv.bias)

    def forward_y(self, y: torch.Tensor) -> torch.Tensor:
        """LR luma (N, 1, h, w) -> SR luma (N, 1, scale*h, scale*w)."""
        x = self.expanding(self.mapping(self.shrinking(self.extraction(y))))  # (N, d, h, w)
        return self.deconv(x)


SCALES = (2, 3, 4)
PAPER = "Dong et al., ECCV 2016 (FSRCNN)"


@register_model("fsrcnn", scales=SCALES, paper=PAPER)
def fsrcnn(scale: int = 4, **overrides) -> FSRCNN:
    """FSRCNN(56, 12, 4): 12,809 parameters at x2, x3 and x4."""
    return build(FSRCNN, scale, FSRCNNConfig(), overrides)


@register_model("fsrcnn_tiny", scales=SCALES, paper=PAPER + ", CPU preset")
def fsrcnn_tiny(scale: int = 4, **overrides) -> FSRCNN:
    # shrunk: d 56 -> 32, m 4 -> 2 (s stays 12); FSRCNN is already CPU-sized, so little is cut
    return build(FSRCNN, scale, FSRCNNConfig(num_feat=32, num_feat_shrink=12, num_block=2), overrides)
