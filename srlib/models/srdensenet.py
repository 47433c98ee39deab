"""SRDenseNet: dense blocks joined by dense skip connections, a bottleneck and learned deconvolutions.

Paper: T. Tong, G. Li, X. Liu, Q. Gao, "Image Super-Resolution Using Dense Skip Connections", ICCV
2017 [tong2017srdensenet]. No official code was released; the layer list here follows the
most-used port, yjn870/SRDenseNet-pytorch (``models.py``, "SRDenseNet_All"), which agrees with
twtygqyy/pytorch-SRDenseNet, Lornatang/SRDenseNet-PyTorch and xueshengke/SRDenseNet-Caffe on how the
blocks connect (they differ in the deconvolution kernel, 3, 2, 2 and 4, and in which layers have biases).

The "All" variant, on the LR luma, with growth G = 16 and L = 8 layers per block::

    F_0 = ReLU(conv 3x3, 1 -> L*G)                    low-level features (128 channels)
    B_b = DenseBlock_b([F_0, B_1, ..., B_{b-1}])       b = 1..8: each block sees everything before it
    Z   = ReLU(conv 1x1, (8 + 1)*L*G -> 256)           bottleneck over all levels (1152 -> 256)
    y   = conv 3x3 (256 -> 1) o [ReLU o deconv 3x3 stride 2, 256 -> 256] x 2     (x4)

    DenseBlock(x): layer 1 = ReLU(conv 3x3 (x) -> G); layer l = ReLU(conv 3x3 [out_1, ..., out_{l-1}] -> G);
                   the block outputs [out_1, ..., out_L] (L*G = 128 channels, without its input)

The paper's dense skip connections are the growing concatenation: every block and the bottleneck
see the low-level features and all earlier blocks' outputs. Parameters: 2,659,585 at x4 (counted
from the port's layer list, which has a bias in every layer; the reference sheet has no SRDenseNet
entry and no count from the paper could be checked here). The paper is x4 only (two x2
deconvolutions); the class accepts any power of two, one deconvolution each. Luma only, as the
paper: :class:`~srlib.models.common.YChannelSR` upscales the chroma bicubically so the model maps RGB
to RGB like every srlib model. The network predicts the luma itself (no bicubic skip).

Initialisation as the port: He-normal (fan-in) for every conv and deconv, zero biases. Training
notes (yjn870's port): MSE, Adam lr 1e-4 divided by 10 after 80% of 60 epochs, batch 32,
50K COCO images (the port reaches 31.80 dB on Set5 x4 against the paper's 32.02).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from . import register_model
from .common import YChannelSR, build, conv3x3


@dataclass
class SRDenseNetConfig:
    growth: int = 16  # G: channels each dense layer adds (paper: growth rate 16)
    num_layer: int = 8  # L: conv layers per dense block, so a block outputs L*G = 128 channels (paper: 8)
    num_block: int = 8  # dense blocks (paper: 8, i.e. 64 dense conv layers)
    num_feat: int = 256  # width of the bottleneck and of the deconvolutions (paper: 256)


class DenseBlock(nn.Module):
    """L conv+ReLU layers, each on the concatenation of the block's earlier outputs.

    Args:
        in_ch: channels of the block input (only the first layer sees it).
        growth: G, output channels of each layer. Default: 16.
        num_layer: L. Default: 8.

    ``forward``: (N, in_ch, h, w) -> (N, L*G, h, w), the concatenated layer outputs.
    """

    def __init__(self, in_ch: int, growth: int = 16, num_layer: int = 8):
        super().__init__()
        # layer i sees the block input (i = 0) or the i earlier layers' outputs
        in_chs = [in_ch] + [i * growth for i in range(1, num_layer)]
        self.layers = nn.ModuleList([nn.Sequential(conv3x3(c, growth), nn.ReLU(inplace=True)) for c in in_chs])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers[0](x)  # (N, G, h, w)
        for layer in self.layers[1:]:
            out = torch.cat([out, layer(out)], dim=1)  # (N, (l+1)*G, h, w)
        return out


class SRDenseNet(YChannelSR):
    """SRDenseNet_All on the LR luma, RGB in and out.

    Args:
        scale: a power of two (one stride-2 deconvolution per factor 2); the paper is x4.
        growth: G. Default: 16.
        num_layer: L, layers per dense block. Default: 8.
        num_block: dense blocks. Default: 8.
        num_feat: bottleneck and deconvolution width. Default: 256.

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, scale*h, scale*w), not clamped.

    Example:
        >>> import torch
        >>> net = SRDenseNet(scale=4, growth=4, num_layer=2, num_block=2, num_feat=8)
        >>> net(torch.rand(1, 3, 6, 5)).shape
        torch.Size([1, 3, 24, 20])
    """

    def __init__(self, scale: int, growth: int = 16, num_layer: int = 8, num_block: int = 8, num_feat: int = 256):
        super().__init__()
        if not isinstance(scale, int) or scale < 2 or scale & (scale - 1):
            raise ValueError(f"SRDenseNet needs a power-of-two scale (one x2 deconvolution each; the paper is x4), "
                             f"got {scale!r}")
        self.scale = scale
        width = growth * num_layer  # L*G: the low-level features and every block output
        self.low_level = nn.Sequential(conv3x3(1, width), nn.ReLU(inplace=True))
        self.blocks = nn.ModuleList([DenseBlock((b + 1) * width, growth, num_layer) for b in range(num_block)])
        self.bottleneck = nn.Sequential(nn.Conv2d((num_block + 1) * width, num_feat, 1), nn.ReLU(inplace=True))
        # 3x3, stride 2, padding 1, output_padding 1: exactly 2h x 2w per deconvolution
        self.upsample = nn.Sequential(*[m for _ in range(int(math.log2(scale)))
                                        for m in (nn.ConvTranspose2d(num_feat, num_feat, 3, stride=2, padding=1,
                                                                     output_padding=1), nn.ReLU(inplace=True))])
        self.reconstruction = conv3x3(num_feat, 1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):  # He-normal, fan-in, as the port
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward_y(self, y: torch.Tensor) -> torch.Tensor:
        """LR luma (N, 1, h, w) -> SR luma (N, 1, scale*h, scale*w)."""
        feats = self.low_level(y)  # (N, L*G, h, w)
        for block in self.blocks:
            feats = torch.cat([feats, block(feats)], dim=1)  # dense skip: (N, (b+2)*L*G, h, w)
        return self.reconstruction(self.upsample(self.bottleneck(feats)))


SCALES = (4,)
PAPER = "Tong et al., ICCV 2017 (SRDenseNet)"


@register_model("srdensenet", scales=SCALES, paper=PAPER)
def srdensenet(scale: int = 4, **overrides) -> SRDenseNet:
    """The paper's SRDenseNet_All (8 blocks x 8 layers, growth 16): 2,659,585 parameters (x4 only)."""
    return build(SRDenseNet, scale, SRDenseNetConfig(), overrides)


@register_model("srdensenet_tiny", scales=SCALES, paper=PAPER + ", CPU preset")
def srdensenet_tiny(scale: int = 4, **overrides) -> SRDenseNet:
    # shrunk: growth 16 -> 8, layers per block 8 -> 4, blocks 8 -> 3, bottleneck/deconv width 256 -> 32
    return build(SRDenseNet, scale, SRDenseNetConfig(growth=8, num_layer=4, num_block=3, num_feat=32), overrides)
