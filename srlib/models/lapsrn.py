"""LapSRN: a Laplacian pyramid of x2 steps, each predicting the residual of a learned upsampling.

Paper: W.-S. Lai, J.-B. Huang, N. Ahuja, M.-H. Yang, "Deep Laplacian Pyramid Networks for Fast and
Accurate Super-Resolution", CVPR 2017 [lai2017lapsrn]. Official code (MatConvNet):
phoenix104104/LapSRN (``init_LapSRN_model.m``, ``init_LapSRN_opts.m``); PyTorch port (x4 only):
twtygqyy/pytorch-LapSRN.

Two branches on the LR luma, log2(scale) levels, each level doubling the size::

    feature extraction  head: conv 3x3 1 -> 64, LReLU(0.2)
                        level s: depth x [conv 3x3 64 -> 64, LReLU]  -> transposed conv 3x3 stride 2, LReLU
                                 -> residual conv 3x3 64 -> 1        (the level's Laplacian band)
    image reconstruction level s: I_s = deconv4x4(I_{s-1}) + residual_s
                                 (4x4 transposed conv, stride 2, no bias, initialised as bilinear)

Every level's output is an SR image (x2, x4, x8) and every level is supervised: the loss is
the sum over levels of the Charbonnier loss between I_s and the HR downscaled to that level
(:meth:`LapSRN.training_loss`); :meth:`LapSRN.forward_pyramid` gives all levels for a figure. Levels
do not share weights (the recursive sharing is MS-LapSRN). With the official depth 10: 407,441 (x2),
814,242 (x4) and 1,221,043 (x8) parameters. The twtygqyy port counts 870,112 at x4: it uses a 4x4
feature deconvolution and no biases.

The luma-only processing is the paper's; :class:`~srlib.models.common.YChannelSR` upscales the
chroma bicubically so the model maps RGB to RGB like every srlib model.

Faithful details: leaky ReLU slope 0.2; the feature deconvolution is cropped as MatConvNet's
``crop = [0 1 0 1]`` (no padding, drop the last row and column: 2h + 1 -> 2h); the image
deconvolution uses ``crop = 1`` (padding 1); initialisation N(0, 0.001) for the head conv, He-normal
std sqrt(2 / (9 * 64)) for the others, bilinear for the image deconvolutions, zero biases.
The official code trains biases at 0.1x the learning rate; reproduce it with parameter groups.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from . import register_model
from .common import YChannelSR, build, conv3x3

NEGATIVE_SLOPE = 0.2  # leaky ReLU slope of the official code (dagnn.ReLU('leak', 0.2))


@dataclass
class LapSRNConfig:
    num_feat: int = 64  # n: filters of every feature conv (official conv_n = 64)
    num_block: int = 10  # depth: conv layers per pyramid level (the official README trains depth 10)


def bilinear_kernel(size: int) -> torch.Tensor:
    """The (size, size) bilinear upsampling kernel of a transposed conv with stride ``ceil(size / 2)``.

    Example:
        >>> bilinear_kernel(4)[0]
        tensor([0.0625, 0.1875, 0.1875, 0.0625])
    """
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    taps = 1 - (torch.arange(size, dtype=torch.float32) - center).abs() / factor  # (size,): 1-D hat
    return taps[:, None] * taps[None, :]


class PyramidLevel(nn.Module):
    """Feature-extraction branch of one level: depth convs, a x2 transposed conv, the residual conv.

    Args:
        num_feat: channels. Default: 64.
        num_block: depth, conv + LReLU layers before the upsampling. Default: 10.

    ``forward(feat)``: (N, F, h, w) -> ``(features (N, F, 2h, 2w), residual (N, 1, 2h, 2w))``.
    """

    def __init__(self, num_feat: int = 64, num_block: int = 10):
        super().__init__()
        self.body = nn.Sequential(*[m for _ in range(num_block)
                                    for m in (conv3x3(num_feat, num_feat), nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True))])
        # 3x3, stride 2, no padding: (h - 1) * 2 + 3 = 2h + 1 rows; forward drops the last one
        self.upsample = nn.ConvTranspose2d(num_feat, num_feat, 3, stride=2)
        self.act = nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)
        self.residual = conv3x3(num_feat, 1)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = feat.shape[-2:]
        up = self.upsample(self.body(feat))[..., : 2 * h, : 2 * w]  # MatConvNet crop [0 1 0 1]: (N, F, 2h, 2w)
        up = self.act(up)
        return up, self.residual(up)


class LapSRN(YChannelSR):
    """LapSRN on the LR luma, progressive x2 levels, RGB in and out.

    Args:
        scale: 2, 4, 8 (any power of two): log2(scale) pyramid levels.
        num_feat: channels of the feature branch. Default: 64.
        num_block: depth, conv layers per level. Default: 10.

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, scale*h, scale*w), not clamped: the last level.

    Example:
        >>> import torch
        >>> net = LapSRN(scale=4, num_feat=8, num_block=1)
        >>> [tuple(im.shape) for im in net.forward_pyramid(torch.rand(1, 3, 6, 5))]
        [(1, 3, 12, 10), (1, 3, 24, 20)]
    """

    def __init__(self, scale: int, num_feat: int = 64, num_block: int = 10):
        super().__init__()
        if not isinstance(scale, int) or scale < 2 or scale & (scale - 1):
            raise ValueError(f"LapSRN needs a power-of-two scale (2, 4, 8: one x2 pyramid level each), got {scale!r}")
        self.scale = scale
        self.num_levels = int(math.log2(scale))
        self.head = nn.Sequential(conv3x3(1, num_feat), nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True))
        self.levels = nn.ModuleList([PyramidLevel(num_feat, num_block) for _ in range(self.num_levels)])
        self.image_upsample = nn.ModuleList([nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1, bias=False)
                                             for _ in range(self.num_levels)])
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.bias is not None:
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / (9 * num_feat)))
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.head[0].weight, 0.0, 0.001)  # official opts.init_sigma for the input conv
        with torch.no_grad():
            for up in self.image_upsample:
                up.weight.copy_(bilinear_kernel(4)[None, None])  # (1, 1, 4, 4), learnable afterwards

    def forward_pyramid_y(self, y: torch.Tensor) -> list[torch.Tensor]:
        """LR luma (N, 1, h, w) -> the luma of every level: [(N, 1, 2h, 2w), (N, 1, 4h, 4w), ...]."""
        feat, image, outputs = self.head(y), y, []
        for level, image_upsample in zip(self.levels, self.image_upsample):
            feat, residual = level(feat)  # (N, F, 2h, 2w), (N, 1, 2h, 2w)
            image = image_upsample(image) + residual  # I_s = up(I_{s-1}) + R_s
            outputs.append(image)
        return outputs

    def forward_y(self, y: torch.Tensor) -> torch.Tensor:
        """LR luma (N, 1, h, w) -> SR luma (N, 1, scale*h, scale*w), the last level."""
        return self.forward_pyramid_y(y)[-1]

    def forward_pyramid(self, lr: torch.Tensor) -> list[torch.Tensor]:
        """RGB images of every level: LR (N, 3, h, w) -> [(N, 3, 2h, 2w), ..., (N, 3, scale*h, scale*w)].

        Each level's luma is joined with the chroma upscaled bicubically to that level's size.
        """
        from .common import merge_luma, split_luma

        y, cbcr = split_luma(lr)
        return [merge_luma(level, cbcr) for level in self.forward_pyramid_y(y)]

    def training_loss(self, lr: torch.Tensor, hr: torch.Tensor, criterion=None, progress: float = 0.0) -> torch.Tensor:
        """Sum over the levels of ``criterion(I_s, Y(HR) downscaled to level s)``, the paper's loss.

        Args:
            lr: LR RGB (N, 3, h, w) in [0, 1]; hr: HR RGB (N, 3, scale*h, scale*w) in [0, 1].
            criterion: ``loss(pred, target)``; ``None`` means the paper's Charbonnier loss
                (``srlib.losses.charbonnier_loss``). ``srlib.train.fit`` passes its ``loss``, so call it
                with ``loss="charbonnier"`` for the paper's.
            progress: unused (the loss has no schedule).

        Returns:
            The summed loss (a scalar).
        """
        from ..color import rgb_to_y
        from ..degrade import imresize
        from ..losses import charbonnier_loss
        from .common import split_luma

        criterion = criterion if criterion is not None else charbonnier_loss
        target = rgb_to_y(hr).float()  # (N, 1, s*h, s*w)
        outputs = self.forward_pyramid_y(split_luma(lr)[0])
        total = 0.0
        for output in outputs:
            size = tuple(output.shape[-2:])
            # MATLAB bicubic (antialiased) downscale of the HR luma to this level's size
            level_target = target if size == tuple(target.shape[-2:]) else imresize(target, size=size)
            total = total + criterion(output.float(), level_target)
        return total


SCALES = (2, 4, 8)
PAPER = "Lai et al., CVPR 2017 (LapSRN)"


@register_model("lapsrn", scales=SCALES, paper=PAPER)
def lapsrn(scale: int = 4, **overrides) -> LapSRN:
    """The official LapSRN, depth 10: 407,441 / 814,242 / 1,221,043 parameters at x2 / x4 / x8."""
    return build(LapSRN, scale, LapSRNConfig(), overrides)


@register_model("lapsrn_tiny", scales=SCALES, paper=PAPER + ", CPU preset")
def lapsrn_tiny(scale: int = 4, **overrides) -> LapSRN:
    # shrunk: width 64 -> 16, depth 10 -> 3 per level (the pyramid and its per-level outputs are intact)
    return build(LapSRN, scale, LapSRNConfig(num_feat=16, num_block=3), overrides)
