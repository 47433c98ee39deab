"""RDN: residual dense blocks with local and global feature fusion, on RGB.

Paper: Y. Zhang, Y. Tian, Y. Kong, B. Zhong, Y. Fu, "Residual Dense Network for Image
Super-Resolution", CVPR 2018 [zhang2018rdn]. Official code (Torch7): yulunzhang/RDN
(``RDN_TrainCode/code/model/RDN.lua``, ``TrainRDN_scripts.sh``); the PyTorch version ships in
EDSR-PyTorch (``src/model/rdn.py``, config ``'B'``).

The network, with G0 = 64 channels between blocks and growth G = 64 inside them::

    F_-1 = SFE1(lr)                        shallow features: conv 3x3, 3 -> G0
    F_0  = SFE2(F_-1)                      conv 3x3, G0 -> G0
    F_d  = RDB_d(F_{d-1}), d = 1..D        residual dense blocks (below)
    F_GF = GFF([F_1, ..., F_D])            global feature fusion: 1x1 conv D*G0 -> G0, then 3x3
    y    = UPNet(F_GF + F_-1)              global residual learning from the FIRST shallow conv;
                                           sub-pixel upsampler, conv G -> 3

    RDB(x): C dense layers, layer c: conv 3x3 (G0 + c*G -> G) + ReLU on [x, out_1, ..., out_{c-1}]
            LFF: 1x1 conv (G0 + C*G -> G0) over everything, no activation; + x (local residual)

The paper / official model is D=16 blocks of C=8 layers, G=64: 22,123,395 / 22,308,035 /
22,271,107 parameters at x2 / x3 / x4 (the sum over the official Torch network log is 22,123,395).
Pitfall: EDSR-PyTorch's default config ``'A'`` = (D20, C6, G32), about 5.6M parameters, is not the
paper model, and the official log's file name says "D18C6" while its layer listing is D16 C8.

Input range: EDSR-PyTorch feeds RDN images in [0, 255] with no mean shift; this model takes [0, 1]
and multiplies by ``img_range`` = 255 (divides the output by it), so official weights map 1:1.
Training notes (official): L1 loss, Adam lr 1e-4 halved every 200k iterations, batch 16; only x2
uses LR patches of 48, x3/x4 use 32 and are fine-tuned from the x2 model.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import register_model
from .common import build, conv3x3


@dataclass
class RDNConfig:
    num_feat: int = 64  # G0: channels of the shallow features and of every block's output (paper: 64)
    num_block: int = 16  # D: residual dense blocks (paper: 16; EDSR-PyTorch's config 'A' has 20)
    num_layer: int = 8  # C: dense conv layers per block (paper: 8; config 'A': 6)
    growth: int = 64  # G: channels each dense layer adds (paper: 64; config 'A': 32)
    img_range: float = 255.0  # the network works on [0, 255] as EDSR-PyTorch (rgb_range = 255)


class ResidualDenseBlock(nn.Module):
    """C densely connected conv+ReLU layers, local feature fusion (1x1) and a local residual.

    Args:
        num_feat: G0, channels in and out. Default: 64.
        growth: G, channels each layer adds. Default: 64.
        num_layer: C, dense layers. Default: 8.

    ``forward``: (N, G0, h, w) -> (N, G0, h, w).
    """

    def __init__(self, num_feat: int = 64, growth: int = 64, num_layer: int = 8):
        super().__init__()
        self.layers = nn.ModuleList([nn.Sequential(conv3x3(num_feat + c * growth, growth), nn.ReLU(inplace=True))
                                     for c in range(num_layer)])
        self.fusion = nn.Conv2d(num_feat + num_layer * growth, num_feat, 1)  # LFF: 1x1, no activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = x
        for layer in self.layers:
            feats = torch.cat([feats, layer(feats)], dim=1)  # (N, G0 + (c+1)*G, h, w)
        return x + self.fusion(feats)


def rdn_upsampler(scale: int, num_feat: int, growth: int) -> nn.Sequential:
    """UPNet: sub-pixel steps from G0 to G channels (G * r^2 before each shuffle), then conv G -> 3.

    x2 and x3 shuffle once; x4 shuffles twice by 2. With G = G0 this is EDSR's upsampler plus the
    last conv; G != G0 (the tiny preset) keeps the official channel bookkeeping.
    """
    steps = {2: [2], 3: [3], 4: [2, 2]}[scale]
    layers: list[nn.Module] = []
    in_ch = num_feat
    for r in steps:
        layers += [conv3x3(in_ch, growth * r * r), nn.PixelShuffle(r)]  # (N, G, r*h, r*w)
        in_ch = growth
    layers.append(conv3x3(growth, 3))
    return nn.Sequential(*layers)


class RDN(nn.Module):
    """Residual Dense Network, RGB in and out.

    Args:
        scale: 2, 3 or 4 (the official UPNet's factors).
        num_feat: G0. Default: 64.
        num_block: D, residual dense blocks. Default: 16.
        num_layer: C, conv layers per block. Default: 8.
        growth: G, growth rate inside a block. Default: 64.
        img_range: the input is multiplied by this (the output divided). Default: 255.

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, scale*h, scale*w), not clamped.

    Example:
        >>> import torch
        >>> net = RDN(scale=3, num_feat=8, num_block=2, num_layer=2, growth=4)
        >>> net(torch.rand(1, 3, 6, 5)).shape
        torch.Size([1, 3, 18, 15])
    """

    def __init__(self, scale: int, num_feat: int = 64, num_block: int = 16, num_layer: int = 8, growth: int = 64,
                 img_range: float = 255.0):
        super().__init__()
        if scale not in (2, 3, 4):
            raise ValueError(f"RDN supports scales 2, 3 and 4 (the official UPNet), got {scale!r}")
        self.scale, self.img_range = scale, img_range
        self.sfe1 = conv3x3(3, num_feat)
        self.sfe2 = conv3x3(num_feat, num_feat)
        self.blocks = nn.ModuleList([ResidualDenseBlock(num_feat, growth, num_layer) for _ in range(num_block)])
        # GFF: 1x1 fusion of every block's output, then a 3x3 conv (no activations)
        self.fusion = nn.Sequential(nn.Conv2d(num_block * num_feat, num_feat, 1), conv3x3(num_feat, num_feat))
        self.upsample = rdn_upsampler(scale, num_feat, growth)

    def features(self, lr: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """F_-1 and the block outputs [F_1 .. F_D], each (N, G0, h, w) (the latter for figures of the LFF outputs)."""
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"expected LR images (N, 3, h, w), got shape {tuple(lr.shape)}")
        shallow = self.sfe1(lr * self.img_range)  # F_-1: (N, G0, h, w)
        feat, outputs = self.sfe2(shallow), []
        for block in self.blocks:
            feat = block(feat)
            outputs.append(feat)
        return shallow, outputs

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        shallow, outputs = self.features(lr)
        feat = self.fusion(torch.cat(outputs, dim=1)) + shallow  # (N, D*G0, h, w) -> (N, G0, h, w), global skip
        return self.upsample(feat) / self.img_range  # (N, 3, s*h, s*w)


SCALES = (2, 3, 4)
PAPER = "Zhang et al., CVPR 2018 (RDN)"


@register_model("rdn", scales=SCALES, paper=PAPER)
def rdn(scale: int = 4, **overrides) -> RDN:
    """The paper's RDN (D16 C8 G64): 22,123,395 / 22,308,035 / 22,271,107 parameters at x2 / x3 / x4."""
    return build(RDN, scale, RDNConfig(), overrides)


@register_model("rdn_tiny", scales=SCALES, paper=PAPER + ", CPU preset")
def rdn_tiny(scale: int = 4, **overrides) -> RDN:
    # shrunk: G0 = G 64 -> 16, blocks 16 -> 2, layers per block 8 -> 3 (dense layers, LFF, GFF and both
    # residuals intact; at equal size, G = G0 trains faster on CPU than a narrower growth with more blocks)
    return build(RDN, scale, RDNConfig(num_feat=16, num_block=2, num_layer=3, growth=16), overrides)
