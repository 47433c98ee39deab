"""EnhanceNet: residual blocks at LR, nearest-neighbour upsampling + conv, and a bicubic residual.

Paper: M. S. M. Sajjadi, B. Schölkopf, M. Hirsch, "EnhanceNet: Single Image Super-Resolution Through
Automated Texture Synthesis", ICCV 2017 [sajjadi2017enhancenet]. Official code (TensorFlow,
inference only): msmsajjadi/EnhanceNet-Code (``enhancenet.py``, ``nnlib.py``).

The network (ENet, x4)::

    x = lr - mean                          EnhanceNet's per-channel means (0.4761, 0.4500, 0.4090)
    f = relu(conv(x))                      conv 3x3, 3 -> 64
    f = body(f)                            10 residual blocks conv-ReLU-conv + x (no BN, no long skip)
    f = [nearest x2, conv, ReLU] x 2       nearest-neighbour upsampling + conv, not a deconvolution
    f = relu(conv(f)); r = conv(f)         conv 3x3 64 -> 64, conv 3x3 64 -> 3
    y = r + bicubic(lr)                    the network only adds detail to the bicubic image

All convs 3x3 with bias: 852,867 parameters at x4 (reference sheet: 852,867). The paper's names
describe the *losses*, not the network: ENet-E (MSE), ENet-P (perceptual), ENet-PAT (perceptual +
adversarial + texture) share this generator; the losses are in ``srlib.losses``
(:class:`~srlib.losses.PerceptualLoss`, :class:`~srlib.losses.TextureLoss`,
:func:`~srlib.losses.generator_loss`).

Faithful details and differences:

* Upsampling by nearest neighbour then conv avoids the checkerboard pattern of transposed convs.
* The official code adds the bicubic upscaling of the mean-subtracted input and then the mean;
  bicubic weights sum to one, so that is exactly ``bicubic(lr)``. The bicubic here is MATLAB's
  (:func:`srlib.degrade.upscale_bicubic`), TensorFlow 1's ``resize_images`` in the original.
* The paper trains x4 only; x2 (one upsampling step, 815,939 parameters) is registered too.

This file also defines :class:`NearestUpsample`, the "nearest x2 + conv + activation" upsampler
that ESRGAN and SFTGAN use as well.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from . import register_model
from .common import MeanShift, ResBlock, build, conv3x3

# Per-channel RGB means subtracted at the input by the official code (PER_CHANNEL_MEANS).
ENHANCENET_MEAN = (0.47614917, 0.45001204, 0.40904046)


def check_power_of_two(scale: int, model: str) -> int:
    """Number of x2 steps for a power-of-two ``scale``; a clear ``ValueError`` otherwise."""
    if not isinstance(scale, int) or scale < 2 or scale & (scale - 1):
        raise ValueError(f"{model} upsamples in x2 steps, so it needs a power-of-two scale (2, 4, 8), got {scale!r}")
    return int(math.log2(scale))


class NearestUpsample(nn.Sequential):
    """``log2(scale)`` times [nearest-neighbour x2, conv 3x3, activation] (EnhanceNet, ESRGAN, SFTGAN).

    Args:
        scale: a power of two.
        num_feat: channels in and out.
        act: builds the activation after each conv (a fresh module per step). Default: ReLU.

    Example:
        >>> up = NearestUpsample(4, 8)
        >>> up(torch.rand(1, 8, 5, 6)).shape
        torch.Size([1, 8, 20, 24])
    """

    def __init__(self, scale: int, num_feat: int, act=lambda: nn.ReLU(inplace=True)):
        steps = check_power_of_two(scale, "NearestUpsample")
        layers: list[nn.Module] = []
        for _ in range(steps):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), conv3x3(num_feat, num_feat), act()]
        super().__init__(*layers)


@dataclass
class EnhanceNetConfig:
    num_feat: int = 64  # width of every conv (official code: 64)
    num_block: int = 10  # residual blocks at LR (official code: 10)


class EnhanceNet(nn.Module):
    """EnhanceNet generator: RGB in and out, output = bicubic upscaling + a learned residual.

    Args:
        scale: 2 or 4 (any power of two: one nearest-neighbour x2 step each).
        num_feat: channels. Default: 64.
        num_block: residual blocks. Default: 10.

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, scale*h, scale*w), not clamped.

    Example:
        >>> net = EnhanceNet(scale=4, num_feat=8, num_block=1)
        >>> net(torch.rand(1, 3, 6, 5)).shape
        torch.Size([1, 3, 24, 20])
    """

    def __init__(self, scale: int, num_feat: int = 64, num_block: int = 10):
        super().__init__()
        check_power_of_two(scale, "EnhanceNet")
        self.scale = scale
        self.sub_mean = MeanShift(ENHANCENET_MEAN, sign=-1)
        self.head = nn.Sequential(conv3x3(3, num_feat), nn.ReLU(inplace=True))
        self.body = nn.Sequential(*[ResBlock(num_feat) for _ in range(num_block)])
        self.upsample = NearestUpsample(scale, num_feat)
        self.tail = nn.Sequential(conv3x3(num_feat, num_feat), nn.ReLU(inplace=True), conv3x3(num_feat, 3))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        from ..degrade import upscale_bicubic

        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"expected LR images (N, 3, h, w), got shape {tuple(lr.shape)}")
        f = self.body(self.head(self.sub_mean(lr)))  # (N, F, h, w)
        residual = self.tail(self.upsample(f))  # (N, 3, s*h, s*w)
        return residual + upscale_bicubic(lr, self.scale)


SCALES = (2, 4)
PAPER = "Sajjadi et al., ICCV 2017 (EnhanceNet)"


@register_model("enhancenet", scales=SCALES, paper=PAPER)
def enhancenet(scale: int = 4, **overrides) -> EnhanceNet:
    """The official EnhanceNet generator (10 blocks x 64): 815,939 / 852,867 parameters at x2 / x4."""
    return build(EnhanceNet, scale, EnhanceNetConfig(), overrides)


@register_model("enhancenet_tiny", scales=SCALES, paper=PAPER + ", CPU preset")
def enhancenet_tiny(scale: int = 4, **overrides) -> EnhanceNet:
    # shrunk: width 64 -> 16, residual blocks 10 -> 4 (the bicubic residual and the upsampler are intact)
    return build(EnhanceNet, scale, EnhanceNetConfig(num_feat=16, num_block=4), overrides)
