"""D-DBPN: iterative up- and down-projection units with error feedback and dense connections.

Paper: M. Haris, G. Shakhnarovich, N. Ukita, "Deep Back-Projection Networks for Super-Resolution",
CVPR 2018 [haris2018dbpn]. Official code: alterzero/DBPN-Pytorch (``dbpn.py`` is D-DBPN with T = 7,
``base_networks.py`` the projection units). EDSR-PyTorch's ``ddbpn.py`` is a much smaller variant
(128/32 channels, depth 6, 2.2M parameters at x4), not the paper's model.

The network on RGB (no mean shift, input in [0, 1] as the official code)::

    L_0 = PReLU(conv 1x1, 256 -> 64) o PReLU(conv 3x3, 3 -> 256)    initial feature extraction
    H_1 = Up_1(L_0)
    L_t = Down_t([H_t, ..., H_1]),  H_{t+1} = Up_{t+1}([L_t, ..., L_1]),  t = 1..T-1
    y   = conv 3x3 ([H_T, ..., H_1], T*64 -> 3)                         reconstruction from every HR map

    Up-projection:    H0 = deconv(L);  L0 = conv(H0);  H1 = deconv(L0 - L);  out = H0 + H1
    Down-projection:  L0 = conv(H);    H0 = deconv(L0); L1 = conv(H0 - H);   out = L0 + L1

Every (de)convolution is followed by its own one-parameter PReLU. In the dense version each unit
after the first three starts with a 1x1 conv + PReLU over the concatenation of all earlier maps
of its input resolution. The projections' kernel, stride and padding depend on the scale:
(6, 2, 2) at x2, (8, 4, 2) at x4, (12, 8, 2) at x8, so that a deconvolution maps h to exactly
scale*h and a convolution back. There is no x3 model.

D-DBPN (T = 7, 64 channels, 256 initial): 5,953,526 / 10,426,358 / 23,205,878 parameters at x2 / x4 /
x8 (the 10.4M model of the paper's tables). Initialisation as the official code: He-normal
(``kaiming_normal``, fan-in) for convs and deconvs, zero biases, PReLU slopes 0.25.

``residual``: alterzero's ``main.py`` adds the bicubic-upscaled input to the output during training by
default (``--residual True``) while ``eval.py`` does not; the paper's network has no such skip. The
paper config leaves it off; turn it on to match a checkpoint trained with it.
Training notes (official): L1 loss, Adam lr 1e-4 divided by 10 halfway, LR patches of 40,
DIV2K + Flickr2K (+ ImageNet), so it is not data-matched with EDSR/RCAN.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import register_model
from .common import build

# scale -> (kernel, stride, padding) of every projection (de)convolution (paper; official dbpn.py)
PROJECTION_GEOMETRY = {2: (6, 2, 2), 4: (8, 4, 2), 8: (12, 8, 2)}


@dataclass
class DBPNConfig:
    num_feat: int = 64  # channels of every projection unit (paper: 64 for D-DBPN)
    num_feat_init: int = 256  # channels of the first 3x3 feature conv (paper: 256)
    num_stages: int = 7  # T: up-projection units (and T - 1 down-projections) (D-DBPN: 7)
    residual: bool = False  # add the bicubic input to the output (off in the paper; alterzero's main.py trains with it)


def conv_prelu(in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0,
               transposed: bool = False) -> nn.Sequential:
    """(Transposed) convolution with bias, then a one-parameter PReLU, as the official ``ConvBlock``/``DeconvBlock``."""
    conv = nn.ConvTranspose2d if transposed else nn.Conv2d
    return nn.Sequential(conv(in_ch, out_ch, kernel, stride, padding), nn.PReLU())


class Projection(nn.Module):
    """An up- (``up=True``) or down-projection unit with error feedback, optionally dense.

    Args:
        num_feat: channels. Default: 64.
        scale: 2, 4 or 8; sets kernel, stride and padding (:data:`PROJECTION_GEOMETRY`).
        up: True for LR -> HR (deconv, conv, deconv), False for HR -> LR (conv, deconv, conv).
        num_input: maps concatenated at the input; above 1 a 1x1 conv + PReLU first reduces them to
            ``num_feat`` channels (the dense D-DBPN). Default: 1.

    ``forward``: (N, num_input*F, h, w) -> (N, F, s*h, s*w) for an up-projection, (N, F, h/s, w/s) for a
    down-projection.
    """

    def __init__(self, num_feat: int = 64, scale: int = 4, up: bool = True, num_input: int = 1):
        super().__init__()
        kernel, stride, padding = PROJECTION_GEOMETRY[scale]
        self.up = up
        self.bottleneck = conv_prelu(num_input * num_feat, num_feat, 1) if num_input > 1 else nn.Identity()
        self.project = conv_prelu(num_feat, num_feat, kernel, stride, padding, transposed=up)  # to the other resolution
        self.back = conv_prelu(num_feat, num_feat, kernel, stride, padding, transposed=not up)  # and back
        self.error = conv_prelu(num_feat, num_feat, kernel, stride, padding, transposed=up)  # residual, projected

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bottleneck(x)  # (N, F, h, w)
        projected = self.project(x)  # H0 (up) or L0 (down)
        return projected + self.error(self.back(projected) - x)  # + projected back-projection error


class DBPN(nn.Module):
    """Dense Deep Back-Projection Network, RGB in and out.

    Args:
        scale: 2, 4 or 8.
        num_feat: channels of the projection units. Default: 64.
        num_feat_init: channels of the first feature conv. Default: 256.
        num_stages: T, up-projection units (T - 1 down-projections). Default: 7.
        residual: add the bicubic-upscaled input to the output. Default: False.

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, scale*h, scale*w), not clamped.

    Example:
        >>> import torch
        >>> net = DBPN(scale=2, num_feat=4, num_feat_init=8, num_stages=3)
        >>> net(torch.rand(1, 3, 6, 5)).shape
        torch.Size([1, 3, 12, 10])
        >>> len(net.forward_projections(torch.rand(1, 3, 6, 5))[0])  # one HR map per up-projection
        3
    """

    def __init__(self, scale: int, num_feat: int = 64, num_feat_init: int = 256, num_stages: int = 7,
                 residual: bool = False):
        super().__init__()
        if scale not in PROJECTION_GEOMETRY:
            raise ValueError(f"D-DBPN supports scales 2, 4 and 8 (the paper's projection kernels; there is no x3 "
                             f"model), got {scale!r}")
        if num_stages < 1:
            raise ValueError(f"num_stages must be >= 1, got {num_stages}")
        self.scale, self.residual = scale, residual
        self.head = nn.Sequential(conv_prelu(3, num_feat_init, 3, padding=1), conv_prelu(num_feat_init, num_feat, 1))
        # official wiring: up_1, up_2 and down_1 take one map; up_t (t >= 3) takes t - 1 LR maps and
        # down_t (t >= 2) t HR maps
        self.ups = nn.ModuleList([Projection(num_feat, scale, up=True, num_input=max(1, t - 1))
                                  for t in range(1, num_stages + 1)])
        self.downs = nn.ModuleList([Projection(num_feat, scale, up=False, num_input=t) for t in range(1, num_stages)])
        self.reconstruction = nn.Conv2d(num_stages * num_feat, 3, 3, padding=1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):  # official: kaiming_normal, zero biases
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_projections(self, lr: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The HR maps [H_1 .. H_T] (N, F, s*h, s*w) and LR maps [L_1 .. L_{T-1}] (N, F, h, w), in order."""
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"expected LR images (N, 3, h, w), got shape {tuple(lr.shape)}")
        highs, lows = [self.ups[0](self.head(lr))], []
        for down, up in zip(self.downs, self.ups[1:]):
            # dense connections; newest first, the official concatenation order
            lows.append(down(torch.cat(highs[::-1], dim=1)))  # (N, t*F, s*h, s*w) -> (N, F, h, w)
            highs.append(up(torch.cat(lows[::-1], dim=1)))  # (N, t*F, h, w) -> (N, F, s*h, s*w)
        return highs, lows

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        highs, _ = self.forward_projections(lr)
        sr = self.reconstruction(torch.cat(highs[::-1], dim=1))  # (N, T*F, s*h, s*w) -> (N, 3, s*h, s*w)
        if self.residual:
            from ..degrade import upscale_bicubic

            sr = sr + upscale_bicubic(lr, self.scale)
        return sr


SCALES = (2, 4, 8)
PAPER = "Haris et al., CVPR 2018 (D-DBPN)"


@register_model("dbpn", scales=SCALES, paper=PAPER)
def dbpn(scale: int = 4, **overrides) -> DBPN:
    """The paper's D-DBPN (T=7): 5,953,526 / 10,426,358 / 23,205,878 parameters at x2 / x4 / x8."""
    return build(DBPN, scale, DBPNConfig(), overrides)


@register_model("dbpn_tiny", scales=SCALES, paper=PAPER + ", CPU preset")
def dbpn_tiny(scale: int = 4, **overrides) -> DBPN:
    # shrunk: projection channels 64 -> 8, initial 256 -> 32, stages T 7 -> 3 (the smallest T with dense
    # units); the kernels stay the paper's (6/8/12 px), so the x8 preset is the biggest
    return build(DBPN, scale, DBPNConfig(num_feat=8, num_feat_init=32, num_stages=3), overrides)
