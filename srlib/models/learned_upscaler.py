"""A first learned upscaler (chapter 1): bicubic interpolation plus a small CNN that learns the residual.

Not a paper model: the smallest network that shows what learning adds to interpolation. It runs on
the LR image (cheap), predicts the missing detail with a sub-pixel (pixel-shuffle) output, and adds
it to the MATLAB-bicubic upscale::

    SR = bicubic(LR) + PixelShuffle(conv(body(conv(LR))))

The last conv starts at zero, so the untrained model *is* bicubic interpolation: training can only
start from the classical baseline and move away from it. Chapter 2 meets the same two ideas in
their papers: the global residual (VDSR) and sub-pixel convolution (ESPCN).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import register_model
from .common import build, conv3x3


@dataclass
class LearnedUpscalerConfig:
    num_feat: int = 32  # width of the body; 32 keeps a CPU epoch in seconds
    num_block: int = 4  # conv+ReLU layers in the body (receptive field grows by 2 per layer)


class LearnedUpscaler(nn.Module):
    """Bicubic upscale + a learned residual predicted at LR resolution with a sub-pixel output.

    Args:
        scale: upscaling factor (any integer >= 2: the pixel shuffle handles any factor).
        num_feat: channels of the body. Default: 32.
        num_block: number of conv+ReLU layers in the body. Default: 4.

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, scale*h, scale*w), not clamped.

    Example:
        >>> import torch
        >>> net = LearnedUpscaler(scale=2, num_feat=8, num_block=1)
        >>> net(torch.rand(1, 3, 6, 6)).shape
        torch.Size([1, 3, 12, 12])
    """

    def __init__(self, scale: int, num_feat: int = 32, num_block: int = 4):
        super().__init__()
        if not isinstance(scale, int) or scale < 2:
            raise ValueError(f"scale must be an integer >= 2, got {scale!r}")
        self.scale = scale
        self.head = nn.Sequential(conv3x3(3, num_feat), nn.ReLU(inplace=True))
        self.body = nn.Sequential(*[m for _ in range(num_block) for m in (conv3x3(num_feat, num_feat), nn.ReLU(inplace=True))])
        # 3 * scale^2 channels rearranged into a (3, scale*h, scale*w) residual by the pixel shuffle.
        self.tail = conv3x3(num_feat, 3 * scale * scale)
        self.shuffle = nn.PixelShuffle(scale)
        # He initialisation for the ReLU layers: with PyTorch's default (a uniform init scaled for
        # linear layers) a deeper body's ReLUs die within a few dozen steps and the model never leaves
        # bicubic. The tail starts at zero so that the untrained model is exactly bicubic.
        for m in (*self.head, *self.body):
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        from ..degrade import upscale_bicubic

        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"expected LR images (N, 3, h, w), got shape {tuple(lr.shape)}")
        residual = self.shuffle(self.tail(self.body(self.head(lr))))
        return upscale_bicubic(lr, self.scale) + residual


SCALES = (2, 3, 4, 8)
PAPER = "course model (chapter 1): bicubic + learned sub-pixel residual"


@register_model("learned_upscaler", scales=SCALES, paper=PAPER)
def learned_upscaler(scale: int = 4, **overrides) -> LearnedUpscaler:
    return build(LearnedUpscaler, scale, LearnedUpscalerConfig(), overrides)


@register_model("learned_upscaler_tiny", scales=SCALES, paper=PAPER)
def learned_upscaler_tiny(scale: int = 4, **overrides) -> LearnedUpscaler:
    return build(LearnedUpscaler, scale, LearnedUpscalerConfig(num_feat=16, num_block=2), overrides)
