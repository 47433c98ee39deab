"""IDN: information distillation blocks (enhancement + compression units) and a learned deconvolution.

Paper: Z. Hui, X. Wang, X. Gao, "Fast and Accurate Single Image Super-Resolution via Information
Distillation Network", CVPR 2018 [hui2018idn]. Official code (Caffe): Zheng222/IDN-Caffe
(``test/IDN_x{2,3,4}_deploy.prototxt``, ``test/test_IDN.m``, ``test/mycrop.m``); PyTorch port:
yjn870/IDN-pytorch (RGB, and its deconvolution gives the wrong size at x3 and x4).

On the LR luma, with D = 64 channels between blocks and d = 16 distilled channels; every conv is
followed by LReLU(0.05)::

    F_0 = FBlock(y)                          2 x conv 3x3 (1 -> D, D -> D)
    F_k = DBlock(F_{k-1}), k = 1..4           information distillation blocks
    y   = deconv 17x17, stride s (D -> 1) (F_4) + bicubic(y)

    DBlock(x):  enhancement unit
                  t = conv 3x3 (D -> D-d) ; grouped conv 3x3 (D-d -> D/2, 4 groups) ; conv 3x3 (D/2 -> D)
                  slice t: the first d channels are "distilled", the other D-d go on
                  b = conv 3x3 (D-d -> D) ; grouped conv 3x3 (D -> D-d, 4 groups) ; conv 3x3 (D-d -> D+d)
                  e = [x, t[:d]] + b                       (D + d channels)
                compression unit: conv 1x1 (D+d -> D) + LReLU

Parameters: 552,769 at every scale (only the deconvolution's stride changes).

Output geometry: the Caffe deconvolution (pad 8) gives s*(h-1)+1 rows, and ``mycrop.m`` matches them
to the HR rows s-1 .. s*h-1, i.e. official output row j is HR row j + s - 1. Here the same kernel
runs with padding 9 - s and the last s - 1 rows are dropped: the output has exactly s*h rows, row
J = j + s - 1 receives the same taps as the official row j (so official weights map 1:1), and the
first s - 1 HR rows, which Caffe never produced, come from the kernel's outer taps. (The yjn870
port's ``padding=8, output_padding=1`` is right only at x2: 10 LR rows give 29 at x3 and 38 at x4.)

Initialisation as the prototxt: Caffe's MSRA filler with ``variance_norm: AVERAGE``, i.e. normal with
std sqrt(4 / (fan_in + fan_out)) (Xavier-normal with gain sqrt(2)), zero biases; except the
deconvolution, which starts at N(0, 0.001): with the MSRA filler its 17x17 taps add a noise residual
to the bicubic image, and a short run spends its steps shrinking that noise back to zero (the tiny
preset ended exactly at bicubic after 600 CPU steps at lr 2e-3, against +0.7 dB with the small start).
Luma only, as the paper: :class:`~srlib.models.common.YChannelSR` upscales the chroma bicubically.
Training notes (official solver): L1 loss, Adam lr 1e-4 divided by 10 after 250k of 600k iterations,
weight decay 1e-4, 291 images; the Caffe net trains the deconvolution at 0.1x the learning rate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from . import register_model
from .common import YChannelSR, build

NEGATIVE_SLOPE = 0.05  # LReLU slope of the official prototxt (relu_param negative_slope: 0.05)


@dataclass
class IDNConfig:
    num_feat: int = 64  # D: channels between blocks (paper: 64)
    distill: int = 16  # d: channels the enhancement unit hands straight to the compression (paper: 16)
    num_block: int = 4  # information distillation blocks (paper: 4)
    groups: int = 4  # groups of the two grouped convs in each enhancement unit (paper: 4)
    kernel_size: int = 17  # side of the deconvolution (paper: 17 at every scale)


def conv_lrelu(in_ch: int, out_ch: int, kernel: int = 3, groups: int = 1) -> nn.Sequential:
    """'Same' convolution with bias, then LReLU(0.05): every layer of IDN but the deconvolution."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, groups=groups),
                         nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True))


class DistillationBlock(nn.Module):
    """Enhancement unit (two 3-layer stacks and a slice) then compression unit (1x1).

    Args:
        num_feat: D, channels in and out. Default: 64.
        distill: d, channels sliced off after the first stack. Default: 16.
        groups: groups of the middle conv of each stack. Default: 4.

    ``forward``: (N, D, h, w) -> (N, D, h, w).
    """

    def __init__(self, num_feat: int = 64, distill: int = 16, groups: int = 4):
        super().__init__()
        d, rest = distill, num_feat - distill
        self.distill = distill
        self.top = nn.Sequential(conv_lrelu(num_feat, rest), conv_lrelu(rest, num_feat // 2, groups=groups),
                                 conv_lrelu(num_feat // 2, num_feat))
        self.bottom = nn.Sequential(conv_lrelu(rest, num_feat), conv_lrelu(num_feat, rest, groups=groups),
                                    conv_lrelu(rest, num_feat + d))
        self.compression = conv_lrelu(num_feat + d, num_feat, kernel=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top = self.top(x)  # (N, D, h, w)
        kept, rest = top[:, :self.distill], top[:, self.distill:]  # (N, d, h, w), (N, D-d, h, w)
        enhanced = torch.cat([x, kept], dim=1) + self.bottom(rest)  # (N, D+d, h, w)
        return self.compression(enhanced)


class IDN(YChannelSR):
    """IDN on the LR luma, RGB in and out.

    Args:
        scale: integer from 2 to ``kernel_size // 2 + 1`` (registered: 2, 3, 4).
        num_feat: D. Default: 64.
        distill: d. Default: 16.
        num_block: distillation blocks. Default: 4.
        groups: groups of the grouped convs; must divide D - d, D / 2 and D. Default: 4.
        kernel_size: deconvolution side. Default: 17.

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, scale*h, scale*w), not clamped.

    Example:
        >>> import torch
        >>> net = IDN(scale=3, num_feat=8, distill=4, num_block=1, groups=2)
        >>> net(torch.rand(1, 3, 6, 5)).shape
        torch.Size([1, 3, 18, 15])
    """

    def __init__(self, scale: int, num_feat: int = 64, distill: int = 16, num_block: int = 4, groups: int = 4,
                 kernel_size: int = 17):
        super().__init__()
        if not isinstance(scale, int) or not 2 <= scale <= kernel_size // 2 + 1:
            raise ValueError(f"IDN needs an integer scale from 2 to {kernel_size // 2 + 1} (the {kernel_size}x"
                             f"{kernel_size} deconvolution must cover a stride; registered: 2, 3, 4), got {scale!r}")
        rest = num_feat - distill
        if not 0 < distill < num_feat or any(c % groups for c in (rest, num_feat // 2, num_feat)):
            raise ValueError(f"IDN needs 0 < distill < num_feat and groups dividing num_feat - distill, num_feat // 2 "
                             f"and num_feat; got num_feat={num_feat}, distill={distill}, groups={groups}")
        self.scale = scale
        self.features = nn.Sequential(conv_lrelu(1, num_feat), conv_lrelu(num_feat, num_feat))
        self.blocks = nn.Sequential(*[DistillationBlock(num_feat, distill, groups) for _ in range(num_block)])
        # padding 9 - s (for 17x17) reproduces the official alignment; forward drops the last s - 1 rows
        self.upsample = nn.ConvTranspose2d(num_feat, 1, kernel_size, stride=scale, padding=kernel_size // 2 + 1 - scale)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):  # MSRA, variance_norm AVERAGE
                nn.init.xavier_normal_(m.weight, gain=math.sqrt(2.0))
                nn.init.zeros_(m.bias)
        # ... except the deconvolution, which starts small: the untrained IDN is close to bicubic (module notes)
        nn.init.normal_(self.upsample.weight, 0.0, 1e-3)

    def forward_y(self, y: torch.Tensor) -> torch.Tensor:
        """LR luma (N, 1, h, w) -> SR luma (N, 1, scale*h, scale*w) = deconvolution + bicubic."""
        from ..degrade import upscale_bicubic

        h, w = y.shape[-2:]
        residual = self.upsample(self.blocks(self.features(y)))  # (N, 1, s*h + s - 1, s*w + s - 1)
        return residual[..., :self.scale * h, :self.scale * w] + upscale_bicubic(y, self.scale)


SCALES = (2, 3, 4)
PAPER = "Hui et al., CVPR 2018 (IDN)"


@register_model("idn", scales=SCALES, paper=PAPER)
def idn(scale: int = 4, **overrides) -> IDN:
    """The paper's IDN (4 blocks, D=64, d=16): 552,769 parameters at every scale."""
    return build(IDN, scale, IDNConfig(), overrides)


@register_model("idn_tiny", scales=SCALES, paper=PAPER + ", CPU preset")
def idn_tiny(scale: int = 4, **overrides) -> IDN:
    # shrunk: D 64 -> 24, d 16 -> 8, blocks 4 -> 2 (the 17x17 deconvolution and 4 groups kept)
    return build(IDN, scale, IDNConfig(num_feat=24, distill=8, num_block=2), overrides)
