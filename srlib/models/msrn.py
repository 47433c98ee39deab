"""MSRN: multi-scale residual blocks (3x3 and 5x5 paths) and hierarchical feature fusion, on RGB.

Paper: J. Li, F. Fang, K. Mei, G. Zhang, "Multi-scale Residual Network for Image Super-Resolution",
ECCV 2018 [li2018msrn]. Official code: MIVRC/MSRN-PyTorch (``MSRN/Train/model/msrn.py``, built on
EDSR-PyTorch).

The srlib skeleton with a multi-scale body::

    x   = sub_mean(lr) * 255                    MeanShift, then the [0, 255] range of the official code
    M_0 = conv 3x3 (3 -> F)                      head
    M_i = MSRB(M_{i-1}), i = 1..8
    f   = conv 3x3 o conv 1x1 ([M_1, ..., M_8, M_0], 9F -> F)     hierarchical feature fusion, head included
    y   = add_mean(conv 3x3 (F -> 3) o Upsample (f) / 255)         EDSR's sub-pixel upsampler

    MSRB(x): S_1 = [ReLU(conv 3x3 (x)), ReLU(conv 5x5 (x))]                   (2F channels)
             S_2 = [ReLU(conv 3x3 (S_1)), ReLU(conv 5x5 (S_1))]               (4F channels, 2F -> 2F each)
             return x + conv 1x1 (S_2 -> F)                                  "confusion" layer, no activation

Parameters (F = 64, 8 blocks): 5,930,307 / 6,114,947 / 6,078,019 / 6,225,731 at x2 / x3 / x4 / x8. The
MeanShift is a buffer here (:class:`~srlib.models.common.MeanShift`); the official 1x1-conv MeanShift
adds 24 values, which it trains by accident (``requires_grad`` is set on the module, not its weights).
The MSRN README says the paper's numbers come from a model trained on the Y channel; the released
code and checkpoints are RGB, as here. Concatenation orders follow the official code, so official
weights map 1:1. Initialisation: PyTorch's defaults, as the official code.
Training notes (official): L1 loss, Adam lr 1e-4 halved every 200 epochs, batch 16, LR patches of 48.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import register_model
from .common import MeanShiftedRGB, Upsample, build, check_scale, conv3x3


@dataclass
class MSRNConfig:
    num_feat: int = 64  # F: channels between blocks (paper: 64)
    num_block: int = 8  # multi-scale residual blocks (paper: 8)
    img_range: float = 255.0  # the network works on [0, 255] as the official code (rgb_range = 255)


class MSRB(nn.Module):
    """Multi-scale residual block: two stages of parallel 3x3 / 5x5 convs with cross concatenation.

    Args:
        num_feat: F, channels in and out. Default: 64.

    ``forward``: (N, F, h, w) -> (N, F, h, w).
    """

    def __init__(self, num_feat: int = 64):
        super().__init__()
        self.conv3_1 = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.conv5_1 = nn.Conv2d(num_feat, num_feat, 5, padding=2)
        self.conv3_2 = nn.Conv2d(2 * num_feat, 2 * num_feat, 3, padding=1)
        self.conv5_2 = nn.Conv2d(2 * num_feat, 2 * num_feat, 5, padding=2)
        self.confusion = nn.Conv2d(4 * num_feat, num_feat, 1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = torch.cat([self.act(self.conv3_1(x)), self.act(self.conv5_1(x))], dim=1)  # (N, 2F, h, w)
        s2 = torch.cat([self.act(self.conv3_2(s1)), self.act(self.conv5_2(s1))], dim=1)  # (N, 4F, h, w)
        return x + self.confusion(s2)


class MSRN(MeanShiftedRGB):
    """Multi-scale Residual Network, RGB in and out.

    Args:
        scale: 2^n or 3 (registered: 2, 3, 4, 8).
        num_feat: F. Default: 64.
        num_block: MSRBs. Default: 8.
        img_range: the mean-shifted input is multiplied by this. Default: 255.

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, scale*h, scale*w), not clamped.

    Example:
        >>> import torch
        >>> net = MSRN(scale=2, num_feat=4, num_block=2)
        >>> net(torch.rand(1, 3, 6, 5)).shape
        torch.Size([1, 3, 12, 10])
    """

    def __init__(self, scale: int, num_feat: int = 64, num_block: int = 8, img_range: float = 255.0):
        super().__init__(img_range)
        check_scale(scale, "2^n and 3 (MSRN's registered scales: 2, 3, 4, 8)")
        self.scale = scale
        self.head = conv3x3(3, num_feat)
        self.blocks = nn.ModuleList([MSRB(num_feat) for _ in range(num_block)])
        self.fusion = nn.Sequential(nn.Conv2d((num_block + 1) * num_feat, num_feat, 1), conv3x3(num_feat, num_feat))
        self.upsample = Upsample(scale, num_feat)
        self.tail = conv3x3(num_feat, 3)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        head = self.head(self.to_network(lr))  # M_0: (N, F, h, w)
        feat, outputs = head, []
        for block in self.blocks:
            feat = block(feat)
            outputs.append(feat)
        feat = self.fusion(torch.cat(outputs + [head], dim=1))  # (N, (B + 1)*F, h, w) -> (N, F, h, w)
        return self.to_image(self.tail(self.upsample(feat)))  # (N, 3, s*h, s*w)


SCALES = (2, 3, 4, 8)
PAPER = "Li et al., ECCV 2018 (MSRN)"


@register_model("msrn", scales=SCALES, paper=PAPER)
def msrn(scale: int = 4, **overrides) -> MSRN:
    """The paper's MSRN (8 blocks x 64): 5,930,307 / 6,114,947 / 6,078,019 / 6,225,731 parameters at x2/x3/x4/x8."""
    return build(MSRN, scale, MSRNConfig(), overrides)


@register_model("msrn_tiny", scales=SCALES, paper=PAPER + ", CPU preset")
def msrn_tiny(scale: int = 4, **overrides) -> MSRN:
    # shrunk: width 64 -> 12, blocks 8 -> 2 (both paths, the cross concatenation and the fusion of all
    # levels kept; the 5x5 convs make each block ~4x a plain residual block)
    return build(MSRN, scale, MSRNConfig(num_feat=12, num_block=2), overrides)
