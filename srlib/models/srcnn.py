"""SRCNN: three convolutions on the bicubic-upscaled luma (chapter 2, the first CNN for SR).

Paper: C. Dong, C. C. Loy, K. He, X. Tang, "Learning a Deep Convolutional Network for Image
Super-Resolution", ECCV 2014 [dong2014srcnn], and "Image Super-Resolution Using Deep Convolutional
Networks", TPAMI 2016 [dong2016srcnn]. Original code: MATLAB + Caffe on the authors' project page
(mmlab.ie.cuhk.edu.hk/projects/SRCNN.html), not on GitHub; the most-used PyTorch port is
yjn870/SRCNN-pytorch.

The three layers read as a sparse-coding pipeline (Eq. 1-3 of the paper)::

    F1(Y) = max(0, W1 * Y + B1)      patch extraction,    f1 x f1, n1 filters
    F2(Y) = max(0, W2 * F1(Y) + B2)  non-linear mapping,  f2 x f2, n2 filters
    F(Y)  = W3 * F2(Y) + B3           reconstruction,      f3 x f3, 1 output

``Y`` is the bicubic-upscaled LR luma, so SRCNN is a *pre-upsampling* model: all its work happens at
HR resolution. The network sees only the luma channel, as in the paper; the chroma is upscaled
bicubically and the output converted back to RGB by :class:`~srlib.models.common.YChannelSR`, so
``srcnn(lr)`` maps RGB to RGB like every srlib model.

Differences from the paper (documented and tested):

* 'same' zero padding in every conv, so the output has the full HR size. The original uses valid
  convolutions (a 33x33 input gives a 21x21 output, the loss is taken on the centre); the ports pad.
* PyTorch's default initialisation (as the yjn870 port) instead of the paper's N(0, 0.001), which
  goes with its plain SGD at lr 1e-4. SRCNN predicts the whole image, not a residual, so it starts
  far below bicubic and needs a few hundred Adam steps to reach it (VDSR's point, later in the
  chapter): ``srcnn_tiny`` at x4 passes bicubic after ~750 steps (lr 5e-3, batch 16).
* The paper trains the last layer at a 10x smaller learning rate; pass an optimiser with per-layer
  groups to ``srlib.train.fit`` to reproduce it (``model.reconstruction`` is the last layer).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import register_model
from .common import YChannelSR, build


@dataclass
class SRCNNConfig:
    num_feat: int = 64  # n1: patch-extraction filters (paper's n1 = 64)
    num_feat_mid: int = 32  # n2: non-linear-mapping filters (paper's n2 = 32)
    kernel_sizes: tuple[int, int, int] = (9, 5, 5)  # f1-f2-f3; 9-5-5 is the paper's best (the quoted
    # Set5 numbers), 9-1-5 its "basic" setting (8,129 params)


class SRCNN(YChannelSR):
    """SRCNN on the luma of the bicubic-upscaled image, RGB in and out.

    Args:
        scale: upscaling factor of the internal bicubic pre-upsampling (integer >= 2).
        num_feat: n1, filters of the first layer. Default: 64.
        num_feat_mid: n2, filters of the mapping layer. Default: 32.
        kernel_sizes: (f1, f2, f3), odd kernel sizes. Default: (9, 5, 5).

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, scale*h, scale*w), not clamped.

    Example:
        >>> import torch
        >>> net = SRCNN(scale=3, num_feat=8, num_feat_mid=4)
        >>> net(torch.rand(1, 3, 6, 5)).shape
        torch.Size([1, 3, 18, 15])
    """

    def __init__(self, scale: int, num_feat: int = 64, num_feat_mid: int = 32,
                 kernel_sizes: tuple[int, int, int] = (9, 5, 5)):
        super().__init__()
        if not isinstance(scale, int) or scale < 2:
            raise ValueError(f"SRCNN needs an integer scale >= 2 (registered: 2, 3, 4), got {scale!r}")
        if len(kernel_sizes) != 3 or any(k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"kernel_sizes must be three odd sizes (f1, f2, f3), got {kernel_sizes!r}")
        f1, f2, f3 = kernel_sizes
        self.scale = scale
        # padding k // 2: 'same' size output (the original's valid convs would lose f1+f2+f3-3 pixels)
        self.extraction = nn.Sequential(nn.Conv2d(1, num_feat, f1, padding=f1 // 2), nn.ReLU(inplace=True))
        self.mapping = nn.Sequential(nn.Conv2d(num_feat, num_feat_mid, f2, padding=f2 // 2), nn.ReLU(inplace=True))
        self.reconstruction = nn.Conv2d(num_feat_mid, 1, f3, padding=f3 // 2)

    def forward_y(self, y: torch.Tensor) -> torch.Tensor:
        """LR luma (N, 1, h, w) -> SR luma (N, 1, scale*h, scale*w)."""
        from ..degrade import upscale_bicubic

        y = upscale_bicubic(y, self.scale)  # pre-upsampling: (N, 1, s*h, s*w)
        return self.reconstruction(self.mapping(self.extraction(y)))


SCALES = (2, 3, 4)
PAPER = "Dong et al., ECCV 2014 / TPAMI 2016 (SRCNN)"


@register_model("srcnn", scales=SCALES, paper=PAPER)
def srcnn(scale: int = 4, **overrides) -> SRCNN:
    """The paper's best setting 9-5-5 (57,281 parameters), the model behind the quoted numbers."""
    return build(SRCNN, scale, SRCNNConfig(), overrides)


@register_model("srcnn_915", scales=SCALES, paper=PAPER + ", 9-1-5 basic setting")
def srcnn_915(scale: int = 4, **overrides) -> SRCNN:
    """The paper's basic setting 9-1-5 (8,129 parameters)."""
    return build(SRCNN, scale, SRCNNConfig(kernel_sizes=(9, 1, 5)), overrides)


@register_model("srcnn_tiny", scales=SCALES, paper=PAPER + ", CPU preset")
def srcnn_tiny(scale: int = 4, **overrides) -> SRCNN:
    # shrunk: the paper's basic 9-1-5 with n1 64 -> 32, n2 32 -> 16 (8x fewer multiply-adds than 9-5-5)
    return build(SRCNN, scale, SRCNNConfig(num_feat=32, num_feat_mid=16, kernel_sizes=(9, 1, 5)), overrides)
