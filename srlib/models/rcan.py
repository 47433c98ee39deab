"""RCAN: channel attention inside a residual-in-residual network.

Paper: Y. Zhang, K. Li, K. Li, L. Wang, B. Zhong, Y. Fu, "Image Super-Resolution Using Very Deep
Residual Channel Attention Networks", ECCV 2018 [zhang2018rcan]. Official code: yulunzhang/RCAN
(``RCAN_TrainCode/code/model/rcan.py``); the same file ships in EDSR-PyTorch, and BasicSR's
``archs/rcan_arch.py`` is a faithful copy (but defaults to 16 blocks per group, not the paper's 20).

The srlib skeleton with a residual-in-residual body::

    x = sub_mean(lr) * 255                MeanShift, then the [0, 255] range of the official code
    f0 = head(x)                          conv 3x3, 3 -> C
    f = f0 + conv(RG_G(... RG_1(f0)))     long skip over G residual groups and one more conv
    y = add_mean(tail(upsample(f)) / 255) sub-pixel upsampler (no activation), conv 3x3 C -> 3

    RG(x)   = x + conv(RCAB_B(... RCAB_1(x)))          short (group) skip
    RCAB(x) = x + CA(conv(ReLU(conv(x))))              residual channel attention block
    CA(x)   = x * sigmoid(W_up ReLU(W_down GAP(x)))    W_down: 1x1 C -> C/r, W_up: 1x1 C/r -> C

Paper config G=10 groups x B=20 blocks x C=64 channels, reduction r=16: 15,444,643 / 15,629,283 /
15,592,355 / 15,740,067 parameters at x2 / x3 / x4 / x8. The MeanShift is a buffer here
(:class:`~srlib.models.common.MeanShift`); the official 1x1-conv MeanShift adds 24 parameters (which
the official code trains by accident: it sets ``requires_grad`` on the module, not on its weights).

Faithful details: the attention pools by average only; every conv has a bias; no batch norm. The
official RCAB accepts ``res_scale`` but never applies it (the multiplication is commented out):
here it is applied, and its default 1.0 gives exactly the official block.

Attention from outside: the sigmoid of every :class:`ChannelAttention` is its own module
(``.gate``), so a forward hook on it collects the (N, C, 1, 1) channel weights without touching
``forward``; :func:`attention_gates` lists them in order.
Training notes (official): L1 loss, Adam lr 1e-4 halved every 200 epochs, batch 16, LR patch 48;
x3/x4/x8 are fine-tuned from the x2 model.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import register_model
from .common import MeanShiftedRGB, Upsample, build, check_scale, conv3x3


@dataclass
class RCANConfig:
    num_feat: int = 64  # C: channels everywhere (paper: 64)
    num_group: int = 10  # G: residual groups (paper: 10)
    num_block: int = 20  # B: RCABs per group (paper: 20; BasicSR's class default 16 is not the paper)
    reduction: int = 16  # r: channel attention squeeze C -> C/r (paper: 16, i.e. 64 -> 4)
    res_scale: float = 1.0  # RCAB residual multiplier; the official code ignores it (== 1.0)
    img_range: float = 255.0  # the network works on [0, 255] as the official code (rgb_range = 255)


class ChannelAttention(nn.Module):
    """First-order channel attention: each channel is rescaled by a gate computed from its mean.

    ``s = sigmoid(W_up ReLU(W_down GAP(x)))``, ``y = x * s``. The sigmoid is its own module
    ``self.gate``: a forward hook on it sees the weights ``s``, (N, C, 1, 1) in (0, 1). The pooling
    is the module ``self.pool`` so that SAN's second-order attention only swaps it.

    Args:
        num_feat: channels C. Default: 64.
        reduction: squeeze ratio r; the bottleneck has ``num_feat // reduction`` channels. Default: 16.
        bias: biases in the two 1x1 convs (RCAN, SAN: yes; MIRNet's DAU: no). Default: True.
    """

    def __init__(self, num_feat: int = 64, reduction: int = 16, *, bias: bool = True):
        super().__init__()
        if num_feat // reduction < 1:
            raise ValueError(f"reduction {reduction} leaves no channel in the bottleneck of {num_feat} "
                             f"channels; use a reduction <= {num_feat}")
        self.pool = nn.AdaptiveAvgPool2d(1)  # GAP: (N, C, H, W) -> (N, C, 1, 1)
        self.squeeze = nn.Sequential(nn.Conv2d(num_feat, num_feat // reduction, 1, bias=bias), nn.ReLU(inplace=True),
                                     nn.Conv2d(num_feat // reduction, num_feat, 1, bias=bias))
        self.gate = nn.Sigmoid()

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The channel weights ``s``: (N, C, H, W) -> (N, C, 1, 1) in (0, 1)."""
        return self.gate(self.squeeze(self.pool(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)


class RCAB(nn.Module):
    """Residual channel attention block: ``x + res_scale * CA(conv(ReLU(conv(x))))``.

    Args:
        num_feat: channels in and out. Default: 64.
        reduction: channel attention squeeze ratio. Default: 16.
        res_scale: multiplier of the residual (the official code ignores it: 1.0). Default: 1.0.
    """

    def __init__(self, num_feat: int = 64, reduction: int = 16, res_scale: float = 1.0):
        super().__init__()
        self.body = nn.Sequential(conv3x3(num_feat, num_feat), nn.ReLU(inplace=True), conv3x3(num_feat, num_feat),
                                  ChannelAttention(num_feat, reduction))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class ResidualGroup(nn.Module):
    """``num_block`` RCABs and a conv, with the short skip over them: ``x + conv(RCABs(x))``.

    Args:
        num_feat: channels in and out.
        num_block: RCABs in the group (paper: 20).
        reduction: channel attention squeeze ratio (paper: 16).
        res_scale: residual multiplier of every RCAB.
    """

    def __init__(self, num_feat: int, num_block: int, reduction: int, res_scale: float = 1.0):
        super().__init__()
        self.body = nn.Sequential(*[RCAB(num_feat, reduction, res_scale) for _ in range(num_block)],
                                  conv3x3(num_feat, num_feat))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class RCAN(MeanShiftedRGB):
    """RCAN: residual groups of channel-attention blocks, long skip, sub-pixel upsampler; RGB in and out.

    Args:
        scale: 2^n or 3 (registered: 2, 3, 4, 8).
        num_feat: channels C. Default: 64.
        num_group: residual groups G. Default: 10.
        num_block: RCABs per group B. Default: 20.
        reduction: channel attention squeeze ratio r. Default: 16.
        res_scale: RCAB residual multiplier (1.0 = the official block). Default: 1.0.
        img_range: the mean-shifted input is multiplied by this. Default: 255.

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, scale*h, scale*w), not clamped.

    Example:
        >>> import torch
        >>> net = RCAN(scale=2, num_feat=8, num_group=2, num_block=1, reduction=4)
        >>> net(torch.rand(1, 3, 6, 5)).shape
        torch.Size([1, 3, 12, 10])
        >>> len(attention_gates(net))  # one channel attention per RCAB: G x B
        2
    """

    def __init__(self, scale: int, num_feat: int = 64, num_group: int = 10, num_block: int = 20,
                 reduction: int = 16, res_scale: float = 1.0, img_range: float = 255.0):
        super().__init__(img_range)
        check_scale(scale, "2^n and 3 (RCAN's registered scales: 2, 3, 4, 8)")
        self.scale = scale
        self.head = conv3x3(3, num_feat)
        self.body = nn.Sequential(*[ResidualGroup(num_feat, num_block, reduction, res_scale) for _ in range(num_group)],
                                  conv3x3(num_feat, num_feat))
        self.upsample = Upsample(scale, num_feat)
        self.tail = conv3x3(num_feat, 3)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        x = self.head(self.to_network(lr))  # (N, C, h, w)
        x = x + self.body(x)  # long skip (residual in residual)
        return self.to_image(self.tail(self.upsample(x)))  # (N, 3, s*h, s*w)


def attention_gates(model: nn.Module) -> list[nn.Module]:
    """The sigmoid gates of every :class:`ChannelAttention` in ``model``, in forward order.

    Register a forward hook on each to collect the channel weights (N, C, 1, 1) of one forward pass.
    """
    return [m.gate for m in model.modules() if isinstance(m, ChannelAttention)]


SCALES = (2, 3, 4, 8)
PAPER = "Zhang et al., ECCV 2018 (RCAN)"


@register_model("rcan", scales=SCALES, paper=PAPER)
def rcan(scale: int = 4, **overrides) -> RCAN:
    """RCAN, 10 groups x 20 blocks x 64: 15,444,643 / 15,629,283 / 15,592,355 / 15,740,067 parameters
    at x2 / x3 / x4 / x8."""
    return build(RCAN, scale, RCANConfig(), overrides)


@register_model("rcan_tiny", scales=SCALES, paper=PAPER + ", CPU preset")
def rcan_tiny(scale: int = 4, **overrides) -> RCAN:
    # shrunk: width 64 -> 16, groups 10 -> 2, blocks 20 -> 3; reduction 16 -> 4 so the squeeze keeps
    # 4 channels (16 // 16 would leave one)
    return build(RCAN, scale, RCANConfig(num_feat=16, num_group=2, num_block=3, reduction=4), overrides)
