"""CARN and CARN-M: cascading residual blocks, and an efficient variant with group convs and shared weights.

Paper: N. Ahn, B. Kang, K.-A. Sohn, "Fast, Accurate, and Lightweight Super-Resolution with Cascading
Residual Network", ECCV 2018 [ahn2018carn]. Official code: nmhkahn/CARN-pytorch
(``carn/model/carn.py``, ``carn_m.py``, ``ops.py``).

One cascading mechanism at two levels. A *cascade* runs units one after another; after unit i it
concatenates everything seen so far and fuses it with a 1x1 conv + ReLU, which is the next unit's
input::

    Cascade(x):  c_0 = o_0 = x
                 c_i = [c_{i-1}, unit_i(o_{i-1})]            ((i + 1)*F channels)
                 o_i = ReLU(conv 1x1 (c_i) -> F)
                 return o_n

    CARN:   y = add_mean(conv 3x3 (F -> 3) o Upsample o Cascade_global(conv 3x3 (3 -> F) o sub_mean(lr)))
            Cascade_global's units are 3 cascading blocks; a block is a Cascade of 3 residual units
    unit, CARN:    ReLU(x + conv 3x3 o ReLU o conv 3x3 (x))                 (note the ReLU after the add)
    unit, CARN-M:  ReLU(x + conv 1x1 o ReLU o gconv 3x3 o ReLU o gconv 3x3 (x))   residual-E, 4 groups;
                   ONE unit applied 3 times inside each block (shared weights)
    Upsample:      [conv 3x3 (F -> r^2 F, groups as the units) -> ReLU -> PixelShuffle(r)] per step

The released models are multi-scale: one network trained on x2, x3 and x4 batches at random, with
one upsampler per scale (``multi_scale=True``, the default); the paper's parameter counts include
all three. ``forward(lr)`` uses the upsampler of the scale the model was built for and
``forward(lr, scale=s)`` any other. Parameters: CARN 1,591,939, CARN-M 414,787 (the paper's 1,592K
and 412K); single-scale (``multi_scale=False``): CARN 964,163 / 1,148,803 / 1,111,875 and CARN-M
257,027 / 303,427 / 294,147 at x2 / x3 / x4 (the reference sheet lists all but CARN-M's x3). The
MeanShift (DIV2K mean, images in [0, 1] as the official ``rgb_range`` 1) is a buffer here; the official
one is a frozen 1x1 conv (24 values).

Initialisation: PyTorch's defaults, as the official code (its ``init_weights`` does nothing).
Training notes (official): L1 loss, Adam lr 1e-4 halved every 400k of 600k steps, batch 64, LR
patches of 64, gradient-norm clipping at 10, DIV2K.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from . import register_model
from .common import MeanShift, build, conv3x3

MULTI_SCALES = (2, 3, 4)  # the upsamplers of the released multi-scale models


@dataclass
class CARNConfig:
    num_feat: int = 64  # F: channels everywhere (paper: 64)
    num_block: int = 3  # cascading blocks in the global cascade (paper: 3)
    num_unit: int = 3  # residual units in each block's local cascade (paper: 3)
    efficient: bool = False  # CARN-M's residual-E unit (group convs + 1x1) instead of the plain residual block
    group: int = 1  # groups of the units' 3x3 convs and of the upsampler convs (CARN-M: 4)
    shared: bool = False  # one unit applied num_unit times per block (CARN-M: True)
    multi_scale: bool = True  # x2, x3 and x4 upsamplers in one network, as released and as the paper counts


class ResidualUnit(nn.Module):
    """CARN's residual block, or CARN-M's residual-E block with ``efficient=True``; ReLU after the add.

    Args:
        num_feat: channels in and out. Default: 64.
        group: groups of the 3x3 convs (residual-E only; CARN-M uses 4). Default: 1.
        efficient: the residual-E body gconv-ReLU-gconv-ReLU-conv1x1 instead of conv-ReLU-conv.

    ``forward``: (N, F, h, w) -> (N, F, h, w).
    """

    def __init__(self, num_feat: int = 64, group: int = 1, efficient: bool = False):
        super().__init__()
        if efficient:
            self.body = nn.Sequential(nn.Conv2d(num_feat, num_feat, 3, padding=1, groups=group), nn.ReLU(inplace=True),
                                      nn.Conv2d(num_feat, num_feat, 3, padding=1, groups=group), nn.ReLU(inplace=True),
                                      nn.Conv2d(num_feat, num_feat, 1))
        else:
            self.body = nn.Sequential(conv3x3(num_feat, num_feat), nn.ReLU(inplace=True), conv3x3(num_feat, num_feat))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class Cascade(nn.Module):
    """Units run in sequence with cascading concatenations, each fused by a 1x1 conv + ReLU.

    Args:
        units: the modules to cascade, each (N, F, h, w) -> (N, F, h, w); the same module may appear
            several times (weight sharing).
        num_feat: F.

    ``forward``: (N, F, h, w) -> (N, F, h, w).
    """

    def __init__(self, units: list[nn.Module], num_feat: int):
        super().__init__()
        self.units = nn.ModuleList(units)
        self.fuse = nn.ModuleList([nn.Sequential(nn.Conv2d((i + 2) * num_feat, num_feat, 1), nn.ReLU(inplace=True))
                                   for i in range(len(units))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cascade = out = x
        for unit, fuse in zip(self.units, self.fuse):
            cascade = torch.cat([cascade, unit(out)], dim=1)  # (N, (i + 2)*F, h, w)
            out = fuse(cascade)  # (N, F, h, w)
        return out


def carn_upsampler(scale: int, num_feat: int, group: int = 1) -> nn.Sequential:
    """Sub-pixel steps of CARN: conv 3x3 (F -> r^2 F, grouped) -> ReLU -> PixelShuffle(r); x2^n or x3."""
    if not isinstance(scale, int) or scale < 2 or not (scale == 3 or scale & (scale - 1) == 0):
        raise ValueError(f"CARN's upsampler supports 2^n and 3, got {scale!r}")
    steps = [3] if scale == 3 else [2] * int(math.log2(scale))
    return nn.Sequential(*[m for r in steps for m in (nn.Conv2d(num_feat, r * r * num_feat, 3, padding=1, groups=group),
                                                      nn.ReLU(inplace=True), nn.PixelShuffle(r))])


class CARN(nn.Module):
    """CARN / CARN-M, RGB in and out.

    Args:
        scale: the default upscaling factor, 2, 3 or 4 (with ``multi_scale=False``, any 2^n or 3).
        num_feat: F. Default: 64.
        num_block: cascading blocks. Default: 3.
        num_unit: residual units per block. Default: 3.
        efficient: residual-E units (CARN-M). Default: False.
        group: groups of the units' 3x3 convs and of the upsampler. Default: 1 (CARN-M: 4).
        shared: one unit per block, applied ``num_unit`` times (CARN-M). Default: False.
        multi_scale: one upsampler per scale in ``MULTI_SCALES``. Default: True.

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, s*h, s*w), not clamped.

    Example:
        >>> import torch
        >>> net = CARN(scale=2, num_feat=8, num_block=2, num_unit=2, efficient=True, group=4, shared=True)
        >>> net(torch.rand(1, 3, 6, 5)).shape, net(torch.rand(1, 3, 6, 5), scale=3).shape
        (torch.Size([1, 3, 12, 10]), torch.Size([1, 3, 18, 15]))
    """

    def __init__(self, scale: int, num_feat: int = 64, num_block: int = 3, num_unit: int = 3, efficient: bool = False,
                 group: int = 1, shared: bool = False, multi_scale: bool = True):
        super().__init__()
        if multi_scale and scale not in MULTI_SCALES:
            raise ValueError(f"the multi-scale CARN has upsamplers for x2, x3 and x4 only, got {scale!r}; "
                             "use multi_scale=False for another scale")
        if group > 1 and not efficient:
            raise ValueError("group convs belong to CARN-M's residual-E unit: set efficient=True with group > 1")
        self.scale = scale
        self.sub_mean = MeanShift(sign=-1)
        self.entry = conv3x3(3, num_feat)

        def block() -> Cascade:
            if shared:
                unit = ResidualUnit(num_feat, group, efficient)
                return Cascade([unit] * num_unit, num_feat)  # the same module, num_unit times
            return Cascade([ResidualUnit(num_feat, group, efficient) for _ in range(num_unit)], num_feat)

        self.body = Cascade([block() for _ in range(num_block)], num_feat)
        scales = MULTI_SCALES if multi_scale else (scale,)
        self.upsample = nn.ModuleDict({f"x{s}": carn_upsampler(s, num_feat, group) for s in scales})
        self.exit = conv3x3(num_feat, 3)
        self.add_mean = MeanShift(sign=+1)

    def forward(self, lr: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"expected LR images (N, 3, h, w), got shape {tuple(lr.shape)}")
        key = f"x{self.scale if scale is None else scale}"
        if key not in self.upsample:
            raise ValueError(f"this CARN has upsamplers for {', '.join(self.upsample)}, not {key}")
        feat = self.body(self.entry(self.sub_mean(lr)))  # (N, F, h, w)
        return self.add_mean(self.exit(self.upsample[key](feat)))  # (N, 3, s*h, s*w)


SCALES = MULTI_SCALES
PAPER = "Ahn et al., ECCV 2018 (CARN)"


@register_model("carn", scales=SCALES, paper=PAPER)
def carn(scale: int = 4, **overrides) -> CARN:
    """The released multi-scale CARN: 1,591,939 parameters (single-scale x4: 1,111,875)."""
    return build(CARN, scale, CARNConfig(), overrides)


@register_model("carn_m", scales=SCALES, paper=PAPER + ", CARN-M")
def carn_m(scale: int = 4, **overrides) -> CARN:
    """The released multi-scale CARN-M (residual-E, 4 groups, shared units): 414,787 parameters."""
    return build(CARN, scale, CARNConfig(efficient=True, group=4, shared=True), overrides)


@register_model("carn_tiny", scales=SCALES, paper=PAPER + ", CPU preset")
def carn_tiny(scale: int = 4, **overrides) -> CARN:
    # shrunk: width 64 -> 16, blocks 3 -> 2, one upsampler (single-scale) instead of three
    return build(CARN, scale, CARNConfig(num_feat=16, num_block=2, multi_scale=False), overrides)


@register_model("carn_m_tiny", scales=SCALES, paper=PAPER + ", CARN-M, CPU preset")
def carn_m_tiny(scale: int = 4, **overrides) -> CARN:
    # shrunk: width 64 -> 16, single-scale (3 blocks, 4 groups and the shared residual-E unit kept)
    return build(CARN, scale, CARNConfig(num_feat=16, efficient=True, group=4, shared=True, multi_scale=False),
                 overrides)
