"""Blocks shared by many SR networks (EDSR-style skeleton and vocabulary).

Every network in ``srlib`` follows one skeleton: head conv -> body -> conv after the body (+ long
skip) -> upsampler -> last conv, with the same argument names (``num_feat``, ``num_block``,
``scale``, ``res_scale``), so a chapter can say "only the body changed".
"""
from __future__ import annotations

import math

import torch
from torch import nn

# Mean RGB of DIV2K's training images in [0, 1]: EDSR-family models subtract it at the input and
# add it back at the output (EDSR-PyTorch `MeanShift`).
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def conv3x3(in_ch: int, out_ch: int, bias: bool = True) -> nn.Conv2d:
    """3x3 convolution with 'same' padding, the workhorse of every body."""
    return nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=bias)


class MeanShift(nn.Module):
    """Subtract (``sign=-1``) or add (``sign=+1``) a fixed per-channel mean.

    The mean is a registered buffer, not a parameter: it moves with ``.to()``, lives in the
    ``state_dict``, and is never trained. (The RCAN/SAN/MSRN copies of EDSR's ``common.py`` keep it
    as a 1x1 conv whose 24 values do get trained by accident; parameter counts here exclude it,
    as does the reference sheet.)

    Args:
        mean: per-channel mean in [0, 1]. Default: DIV2K's RGB mean.
        sign: -1 to subtract, +1 to add.
    """

    def __init__(self, mean: tuple[float, ...] = DIV2K_RGB_MEAN, sign: int = -1):
        super().__init__()
        if sign not in (-1, 1):
            raise ValueError(f"sign must be -1 or +1, got {sign}")
        self.sign = sign
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sign * self.mean


class ResBlock(nn.Module):
    """conv-act-conv with an identity skip and residual scaling (EDSR, Fig. 2c; no batch norm).

    Args:
        num_feat: channels in and out. Default: 64.
        res_scale: the residual is multiplied by this before the addition (0.1 stabilises the
            wide 256-channel EDSR). Default: 1.0.
        bn: add batch norm after each conv (SRResNet style; EDSR removed it). Default: False.
        act: activation module. Default: ``nn.ReLU(inplace=True)``.
    """

    def __init__(self, num_feat: int = 64, res_scale: float = 1.0, bn: bool = False, act: nn.Module | None = None):
        super().__init__()
        act = act if act is not None else nn.ReLU(inplace=True)
        layers: list[nn.Module] = [conv3x3(num_feat, num_feat, bias=not bn)]
        if bn:
            layers.append(nn.BatchNorm2d(num_feat))
        layers.append(act)
        layers.append(conv3x3(num_feat, num_feat, bias=not bn))
        if bn:
            layers.append(nn.BatchNorm2d(num_feat))
        self.body = nn.Sequential(*layers)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


def check_scale(scale: int, supported: str = "2^n and 3") -> None:
    """Raise a clear error unless ``scale`` is a power of two or 3 (what pixel-shuffle stacks support)."""
    if not isinstance(scale, int) or scale < 2 or not (scale == 3 or (scale & (scale - 1)) == 0):
        raise ValueError(f"unsupported scale {scale!r}. Supported scales: {supported}.")


class Upsample(nn.Sequential):
    """Sub-pixel upsampler (ESPCN/EDSR): conv to ``r^2 * num_feat`` channels then ``PixelShuffle(r)``.

    A power of two is done as log2(scale) steps of x2; x3 in one step. No activation, as in EDSR.

    Args:
        scale: 2^n or 3; anything else raises ``ValueError`` naming the supported scales.
        num_feat: channels in and out.
    """

    def __init__(self, scale: int, num_feat: int):
        check_scale(scale)
        layers: list[nn.Module] = []
        if scale == 3:
            layers += [conv3x3(num_feat, 9 * num_feat), nn.PixelShuffle(3)]
        else:
            for _ in range(int(math.log2(scale))):
                layers += [conv3x3(num_feat, 4 * num_feat), nn.PixelShuffle(2)]
        super().__init__(*layers)


def count_flops(model: nn.Module, *inputs: torch.Tensor) -> int:
    """FLOPs of one forward pass, counted by ``torch.utils.flop_counter`` (a multiply-add = 2 FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*inputs)
    return int(counter.get_total_flops())


def build(model_cls: type[nn.Module], scale: int, config, overrides: dict) -> nn.Module:
    """Instantiate ``model_cls(scale, **config)`` with some config fields overridden.

    ``config`` is a dataclass of defaults (the paper's or a preset's); unknown override names raise
    ``TypeError`` listing the valid ones, instead of being silently ignored.
    """
    from dataclasses import asdict

    fields = asdict(config)
    unknown = set(overrides) - set(fields)
    if unknown:
        raise TypeError(f"{model_cls.__name__}: unknown config field(s) {sorted(unknown)}; valid: {sorted(fields)}")
    return model_cls(scale, **{**fields, **overrides})
