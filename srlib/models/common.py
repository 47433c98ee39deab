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


class MeanShiftedRGB(nn.Module):
    """Base of the RGB networks in EDSR-PyTorch's family (EDSR, RCAN, SAN, DASR, ...).

    They subtract the dataset mean and work on values in [0, ``img_range``] (EDSR-PyTorch's
    ``rgb_range = 255``), then undo both at the end. srlib models take [0, 1] images, so this does the
    conversion in one place: :meth:`to_network` on the way in (with the input check), :meth:`to_image`
    on the way out. Subclasses call ``super().__init__(img_range)`` before building layers (the mean
    shifts hold no parameters, so the random initialisation of the layers is unchanged).
    """

    def __init__(self, img_range: float = 255.0):
        super().__init__()
        self.img_range = img_range
        self.sub_mean = MeanShift(sign=-1)
        self.add_mean = MeanShift(sign=+1)

    def to_network(self, lr: torch.Tensor) -> torch.Tensor:
        """LR RGB (N, 3, h, w) in [0, 1] -> mean-shifted values in the network's range."""
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"expected LR images (N, 3, h, w), got shape {tuple(lr.shape)}")
        return self.sub_mean(lr) * self.img_range

    def to_image(self, x: torch.Tensor) -> torch.Tensor:
        """The network's RGB output (N, 3, H, W) -> an image in [0, 1] (not clamped)."""
        return self.add_mean(x / self.img_range)


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


# ------------------------------------------------------------------------------------ Y-channel adapter
# SRCNN, FSRCNN, ESPCN, VDSR, DRCN and LapSRN see only the luma Y in their papers (BT.601, as MATLAB's
# rgb2ycbcr); the chroma Cb/Cr is upscaled bicubically. This is the one place that does it, so each of
# those models still maps RGB to RGB and shares the call of every other srlib model.

def split_luma(lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split RGB images into luma and chroma (BT.601 studio swing, MATLAB ``rgb2ycbcr``).

    Args:
        lr: RGB images, float (N, 3, h, w) in [0, 1].

    Returns:
        ``(y, cbcr)``: (N, 1, h, w) in [16/255, 235/255] and (N, 2, h, w).
    """
    from ..color import rgb_to_ycbcr

    if lr.dim() != 4 or lr.shape[1] != 3:
        raise ValueError(f"expected RGB images (N, 3, h, w) in [0, 1], got shape {tuple(lr.shape)}")
    ycbcr = rgb_to_ycbcr(lr)
    return ycbcr[:, :1], ycbcr[:, 1:]


def merge_luma(y_sr: torch.Tensor, cbcr_lr: torch.Tensor) -> torch.Tensor:
    """RGB from a super-resolved luma and the LR chroma, upscaled with MATLAB bicubic to match.

    Args:
        y_sr: luma, (N, 1, H, W), ``H = s * h`` and ``W = s * w`` for an integer factor ``s >= 1``.
        cbcr_lr: chroma of the LR image, (N, 2, h, w), as returned by :func:`split_luma`.

    Returns:
        RGB (N, 3, H, W), not clamped (exactly ``ycbcr_to_rgb`` of the stacked channels).
    """
    from ..color import ycbcr_to_rgb
    from ..degrade import upscale_bicubic

    (h, w), (big_h, big_w) = cbcr_lr.shape[-2:], y_sr.shape[-2:]
    factor = big_h // h
    if big_h != factor * h or big_w != factor * w or factor < 1:
        raise ValueError(f"luma {tuple(y_sr.shape)} is not an integer multiple of the chroma {tuple(cbcr_lr.shape)}")
    cbcr = cbcr_lr if factor == 1 else upscale_bicubic(cbcr_lr, factor)
    return ycbcr_to_rgb(torch.cat([y_sr, cbcr.to(y_sr.dtype)], dim=1))


class YChannelSR(nn.Module):
    """Base class of the luma-only networks: ``forward`` maps RGB to RGB, ``forward_y`` does the work.

    A subclass implements ``forward_y(y)``: LR luma (N, 1, h, w) -> SR luma (N, 1, s*h, s*w) (the
    pre-upsampling models call ``upscale_bicubic`` on it themselves). Then:

    * ``forward(lr)``: RGB (N, 3, h, w) in [0, 1] -> Y by BT.601 -> ``forward_y`` -> back to RGB with
      the chroma upscaled by MATLAB bicubic. If ``forward_y`` returns the bicubic luma unchanged, the
      result is exactly ``upscale_bicubic(lr, s)`` (both maps are linear; bicubic weights sum to 1).
    * ``training_loss(lr, hr, criterion, progress)``: the loss on Y, as the papers train, so
      ``srlib.train.fit`` trains these models on luma (the chroma has no parameters anyway).
      Deep-supervised subclasses (DRCN, LapSRN) override it, still on Y.
    """

    def forward_y(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement forward_y(y)")

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        y, cbcr = split_luma(lr)
        return merge_luma(self.forward_y(y), cbcr)

    def training_loss(self, lr: torch.Tensor, hr: torch.Tensor, criterion, progress: float = 0.0) -> torch.Tensor:
        """``criterion(forward_y(Y(lr)), Y(hr))``: the luma loss the papers minimise."""
        from ..color import rgb_to_y

        y, _ = split_luma(lr)
        return criterion(self.forward_y(y).float(), rgb_to_y(hr).float())
