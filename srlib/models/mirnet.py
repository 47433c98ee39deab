"""MIRNet: parallel multi-resolution streams, exchanged and fused by selective kernels, with dual attention.

Paper: S. W. Zamir, A. Arora, S. Khan, M. Hayat, F. S. Khan, M.-H. Yang, L. Shao, "Learning Enriched
Features for Real Image Restoration and Enhancement", ECCV 2020 [zamir2020mirnet]. Official code:
swz30/MIRNet (``networks/MIRNet_model.py``; the blur-pool ``utils/antialias.py`` is R. Zhang's
antialiased-cnns ``Downsample``).

A restoration network: the output has the input's size::

    y = x + conv_out(RRG_3(RRG_2(RRG_1(conv_in(x)))))     3x3 convs, no biases anywhere
    RRG(x)  = x + conv(MSRB_2(MSRB_1(x)))                 recursive residual group
    MSRB(x) = x + conv(SKFF_0(streams, each upsampled to full resolution))

The multi-scale residual block (MSRB) keeps ``height`` = 3 streams at full, 1/2 and 1/4 resolution with
C, 2C and 4C channels. Column 1 runs each stream's dual attention unit (DAU), the input going down
stream by stream; every further column first lets each stream take all the others, resampled to its
own resolution and fused by the stream's SKFF (the "information exchange"), then runs the DAUs again.

* DAU: ``x + conv1x1(concat(SA(r), CA(r)))``, ``r = conv(PReLU(conv(x)))``; SA gates positions by
  ``sigmoid(conv5x5([max_c r, mean_c r]))``, CA gates channels (RCAN's attention, 1/8, no biases).
* SKFF (selective kernel feature fusion): ``L = sum of the streams``, ``z = PReLU(conv1x1(GAP(L)))`` to
  ``max(C/8, 4)`` channels, one 1x1 conv per stream back to C, softmax *across the streams* per
  channel, weighted sum.
* Down: residual, anti-aliased: [1x1, PReLU, 3x3, PReLU, blur-pool, 1x1 C -> 2C] + [blur-pool, 1x1]
  with the fixed [1 2 1] x [1 2 1] / 16 blur, stride 2, reflect padding. Up: [1x1, PReLU, transposed
  3x3 stride 2, PReLU, 1x1 C -> C/2] + [bilinear x2, 1x1].

Weight sharing of the original, kept: the DAUs of one row of an MSRB are ONE module applied at every
column (``[DAU(...)] * width`` repeats the object), and ONE PReLU serves every DAU (a default argument
``act=nn.PReLU()`` is evaluated once; in the original it is even shared across every MIRNet in the
process, here once per model). The down-samplers of column 1 are those of the exchange; the final
up-samplers are separate. SKFF_0 fuses both in the exchange and at the end. Without the sharing the
model would have about 10.45M parameters more. Paper config (C=64, 3 RRGs x 2 MSRBs, 3 streams, 2
columns): 31,787,419 parameters, the reference count.

Super-resolution: the paper applies MIRNet to RealSR, whose LR images are already registered at the HR
size, so the network has no upsampler. In srlib every model maps LR to a ``scale`` times larger image,
so ``mirnet`` runs the paper network on the MATLAB-bicubic upsampled LR inside ``forward`` (as
SRCNN/VDSR do), adding no parameter: 31,787,419 at every scale. ``mirnet_up`` is srlib's variant that
works at LR and upsamples at the end: the same body on the LR image, then EDSR's sub-pixel upsampler
before ``conv_out``, plus the bicubic image (the body sees scale^2 times fewer positions; +295,424
parameters at x4).
The two halvings down to the lowest stream need sides divisible by 4 (``2 ** (height - 1)``); other
sizes are padded by replicating the border and cropped back (the original has no padding and fails).

Attention from outside: a forward hook on a DAU's ``sa.gate`` sees (N, 1, H, W) position weights, on
``ca.gate`` (N, C, 1, 1) channel weights (fired once per column, the DAU being shared); a hook on an
SKFF's ``softmax`` sees the (N, streams, C, 1, 1) stream weights, which sum to 1 over the streams.
Training notes: the repository has no SR training script; its denoising one uses the Charbonnier
loss, Adam lr 2e-4 with cosine decay, batch 16, patch 128.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from . import register_model
from .common import Upsample, build, check_scale
from .rcan import ChannelAttention


@dataclass
class MIRNetConfig:
    num_feat: int = 64  # C: channels of the full-resolution stream (2C, 4C below) (official n_feat 64)
    num_group: int = 3  # recursive residual groups (official n_RRG 3)
    num_block: int = 2  # MSRBs per group (official n_MSRB 2)
    height: int = 3  # resolution streams: 1, 1/2, 1/4 (official height 3)
    width: int = 2  # DAU columns per MSRB, one shared DAU per row (official width 2)
    reduction: int = 8  # squeeze of the DAU channel attention and of SKFF (official 8)
    upsampler: str = "bicubic"  # "bicubic": paper network at HR size; "pixelshuffle": at LR, sub-pixel at the end


def conv(in_ch: int, out_ch: int, kernel_size: int = 3) -> nn.Conv2d:
    """'Same'-padded conv without bias: MIRNet uses no biases at all (official ``bias=False``)."""
    return nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=False)


# ----------------------------------------------------------------------------------- attention

class SpatialAttention(nn.Module):
    """Gate every position by ``sigmoid(conv5x5([max over channels, mean over channels]))``.

    The sigmoid is ``self.gate``: a forward hook on it sees (N, 1, H, W) weights in (0, 1).
    """

    def __init__(self, kernel_size: int = 5):
        super().__init__()
        self.conv = conv(2, 1, kernel_size)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)  # (N, 2, H, W)
        return x * self.gate(self.conv(pooled))


class DAU(nn.Module):
    """Dual attention unit: spatial and channel attention side by side on a conv-PReLU-conv residual.

    Args:
        num_feat: channels in and out.
        reduction: channel attention squeeze ratio. Default: 8.
        act: the activation module; MIRNet passes one PReLU shared by all DAUs. Default: a new PReLU.
    """

    def __init__(self, num_feat: int, reduction: int = 8, act: nn.Module | None = None):
        super().__init__()
        self.body = nn.Sequential(conv(num_feat, num_feat), act if act is not None else nn.PReLU(),
                                  conv(num_feat, num_feat))
        self.sa = SpatialAttention()
        self.ca = ChannelAttention(num_feat, reduction, bias=False)
        self.fuse = conv(2 * num_feat, num_feat, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = self.body(x)
        return x + self.fuse(torch.cat([self.sa(res), self.ca(res)], dim=1))  # (N, 2C, H, W) -> (N, C, H, W)


class SKFF(nn.Module):
    """Selective kernel feature fusion: a per-channel softmax across the streams weights their sum.

    The softmax is ``self.softmax``: a forward hook on it sees (N, streams, C, 1, 1) weights summing
    to 1 over the streams.

    Args:
        num_feat: channels C of every input stream (all at one resolution).
        num_streams: how many inputs. Default: 3.
        reduction: the descriptor has ``max(C // reduction, 4)`` channels. Default: 8.
    """

    def __init__(self, num_feat: int, num_streams: int = 3, reduction: int = 8):
        super().__init__()
        squeezed = max(num_feat // reduction, 4)
        self.num_streams = num_streams
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.squeeze = nn.Sequential(conv(num_feat, squeezed, 1), nn.PReLU())
        self.select = nn.ModuleList([conv(squeezed, num_feat, 1) for _ in range(num_streams)])
        self.softmax = nn.Softmax(dim=1)

    def forward(self, streams: list[torch.Tensor]) -> torch.Tensor:
        if len(streams) != self.num_streams:
            raise ValueError(f"SKFF built for {self.num_streams} streams got {len(streams)}")
        stacked = torch.stack(streams, dim=1)  # (N, S, C, H, W)
        n, s, c = stacked.shape[:3]
        z = self.squeeze(self.pool(stacked.sum(dim=1)))  # (N, d, 1, 1)
        logits = torch.cat([fc(z) for fc in self.select], dim=1).view(n, s, c, 1, 1)  # (N, S, C, 1, 1)
        return (stacked * self.softmax(logits)).sum(dim=1)  # (N, C, H, W)


# ----------------------------------------------------------------------------------- resampling

class BlurPool(nn.Module):
    """Anti-aliased x1/2 downsampling: the fixed [1 2 1] x [1 2 1] / 16 blur, stride 2, reflect padding.

    Blurring before subsampling keeps high frequencies from aliasing into the coarse stream (R. Zhang,
    "Making convolutional networks shift-invariant again", ICML 2019). (N, C, H, W) -> (N, C, ceil(H/2), ceil(W/2)).
    """

    def __init__(self):
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("kernel", (taps[:, None] * taps[None, :] / 16.0)[None, None])  # (1, 1, 3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.kernel.expand(c, 1, 3, 3), stride=2, groups=c)


class ResidualDownsample(nn.Module):
    """x1/2 resolution, x2 channels: a learned branch plus a blur-pool shortcut, both ending in 1x1 C -> 2C."""

    def __init__(self, num_feat: int):
        super().__init__()
        self.top = nn.Sequential(conv(num_feat, num_feat, 1), nn.PReLU(), conv(num_feat, num_feat), nn.PReLU(),
                                 BlurPool(), conv(num_feat, 2 * num_feat, 1))
        self.bottom = nn.Sequential(BlurPool(), conv(num_feat, 2 * num_feat, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.top(x) + self.bottom(x)


class ResidualUpsample(nn.Module):
    """x2 resolution, x1/2 channels: a transposed-conv branch plus a bilinear shortcut, both ending in 1x1 C -> C/2."""

    def __init__(self, num_feat: int):
        super().__init__()
        self.top = nn.Sequential(conv(num_feat, num_feat, 1), nn.PReLU(),
                                 nn.ConvTranspose2d(num_feat, num_feat, 3, stride=2, padding=1, output_padding=1,
                                                    bias=False),
                                 nn.PReLU(), conv(num_feat, num_feat // 2, 1))
        self.bottom = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                    conv(num_feat, num_feat // 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.top(x) + self.bottom(x)


def resampler(num_feat: int, steps: int) -> nn.Sequential:
    """``|steps|`` x2 downsamplings (steps > 0) or upsamplings (steps < 0) from ``num_feat`` channels."""
    layers, c = [], num_feat
    for _ in range(abs(steps)):
        layers.append(ResidualDownsample(c) if steps > 0 else ResidualUpsample(c))
        c = 2 * c if steps > 0 else c // 2
    return nn.Sequential(*layers)


# ----------------------------------------------------------------------------------- body

class MSRB(nn.Module):
    """Multi-scale residual block: ``height`` streams x ``width`` columns of DAUs with SKFF exchange.

    Stream k has ``num_feat * 2**k`` channels at resolution ``1 / 2**k``. ``self.move["k_j"]`` carries
    stream k to stream j's resolution and width (used by column 1 and by every exchange);
    ``self.last_up[k - 1]`` brings stream k back to full resolution at the end.

    Args:
        num_feat: channels of the full-resolution stream.
        height: streams. Default: 3.
        width: columns; the DAU of a row is one module applied at every column. Default: 2.
        reduction: squeeze ratio of the DAUs' channel attention and of SKFF. Default: 8.
        act: activation shared by the DAUs. Default: a new PReLU.
    """

    def __init__(self, num_feat: int, height: int = 3, width: int = 2, reduction: int = 8,
                 act: nn.Module | None = None):
        super().__init__()
        act = act if act is not None else nn.PReLU()
        self.height, self.width = height, width
        feats = [num_feat * 2 ** k for k in range(height)]
        self.rows = nn.ModuleList([DAU(c, reduction, act) for c in feats])
        self.move = nn.ModuleDict({f"{k}_{j}": resampler(feats[k], j - k)
                                   for k in range(height) for j in range(height) if j != k})
        self.fuse = nn.ModuleList([SKFF(c, height, reduction) for c in feats])
        self.last_up = nn.ModuleList([resampler(feats[k], -k) for k in range(1, height)])
        self.conv_out = conv(num_feat, num_feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        streams, feat = [], x
        for j, dau in enumerate(self.rows):  # column 1: down stream by stream
            feat = dau(feat if j == 0 else self.move[f"{j - 1}_{j}"](feat))  # (N, C 2^j, H / 2^j, W / 2^j)
            streams.append(feat)
        for _ in range(1, self.width):  # every further column: exchange, then the (shared) DAUs
            fused = [self.fuse[j]([s if k == j else self.move[f"{k}_{j}"](s) for k, s in enumerate(streams)])
                     for j in range(self.height)]
            streams = [dau(f) for dau, f in zip(self.rows, fused)]
        full = [streams[0]] + [up(s) for up, s in zip(self.last_up, streams[1:])]  # each (N, C, H, W)
        return x + self.conv_out(self.fuse[0](full))


class RRG(nn.Module):
    """Recursive residual group: ``x + conv(MSRB_B(... MSRB_1(x)))``."""

    def __init__(self, num_feat: int, num_block: int, height: int, width: int, reduction: int,
                 act: nn.Module | None = None):
        super().__init__()
        self.body = nn.Sequential(*[MSRB(num_feat, height, width, reduction, act) for _ in range(num_block)],
                                  conv(num_feat, num_feat))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


# ----------------------------------------------------------------------------------- model

class MIRNet(nn.Module):
    """MIRNet for SR: the paper network on the bicubic-upsampled image, or its LR variant; RGB in and out.

    Args:
        scale: upscaling factor: an integer >= 2 for ``"bicubic"``; 2^n or 3 for ``"pixelshuffle"``.
        num_feat: channels of the full-resolution stream. Default: 64.
        num_group: recursive residual groups. Default: 3.
        num_block: MSRBs per group. Default: 2.
        height: resolution streams per MSRB. Default: 3.
        width: DAU columns per MSRB. Default: 2.
        reduction: squeeze ratio of the DAU channel attention and of SKFF. Default: 8.
        upsampler: ``"bicubic"``: MATLAB-bicubic upsample the LR, then the paper's same-size network
            (its parameters, exactly); ``"pixelshuffle"``: the body at LR, a sub-pixel upsampler before
            ``conv_out``, plus the bicubic image. Default: ``"bicubic"``.

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, scale*h, scale*w), not clamped. The streams need
    sides divisible by ``2 ** (height - 1)``; other sizes are padded (border replicated) and cropped back.

    Example:
        >>> import torch
        >>> net = MIRNet(scale=2, num_feat=4, num_group=1, num_block=1, reduction=2)
        >>> net(torch.rand(1, 3, 5, 6)).shape
        torch.Size([1, 3, 10, 12])
        >>> net.restore(torch.rand(1, 3, 8, 8)).shape  # the paper's same-size restoration
        torch.Size([1, 3, 8, 8])
    """

    def __init__(self, scale: int, num_feat: int = 64, num_group: int = 3, num_block: int = 2, height: int = 3,
                 width: int = 2, reduction: int = 8, upsampler: str = "bicubic"):
        super().__init__()
        if upsampler == "pixelshuffle":
            check_scale(scale, "2^n and 3 (mirnet_up's registered scales: 2, 3, 4)")
        elif upsampler == "bicubic":
            if not isinstance(scale, int) or scale < 2:
                raise ValueError(f"MIRNet needs an integer scale >= 2 (registered: 2, 3, 4), got {scale!r}")
        else:
            raise ValueError(f"upsampler must be 'bicubic' (the paper network on the upsampled image) or "
                             f"'pixelshuffle' (at LR, sub-pixel at the end), got {upsampler!r}")
        if height < 1 or width < 1:
            raise ValueError(f"height and width must be >= 1, got {height} and {width}")
        self.scale, self.upsampler, self.multiple = scale, upsampler, 2 ** (height - 1)
        act = nn.PReLU()  # ONE PReLU for every DAU, as the original's shared default argument
        self.conv_in = conv(3, num_feat)
        self.body = nn.Sequential(*[RRG(num_feat, num_block, height, width, reduction, act) for _ in range(num_group)])
        self.upsample = Upsample(scale, num_feat) if upsampler == "pixelshuffle" else nn.Identity()
        self.conv_out = conv(num_feat, 3)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """The network without its image skip, padded to the multiple the streams need and cropped back.

        (N, 3, H, W) -> (N, 3, H, W) (``"bicubic"``) or (N, 3, scale*H, scale*W) (``"pixelshuffle"``).
        """
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % self.multiple, -w % self.multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")  # (N, 3, H + pad_h, W + pad_w)
        out = self.conv_out(self.upsample(self.body(self.conv_in(x))))
        factor = out.shape[-2] // x.shape[-2]  # 1, or the scale after the sub-pixel upsampler
        return out[..., : factor * h, : factor * w]

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        """The paper's same-size restoration ``x + network(x)``, (N, 3, H, W) -> (N, 3, H, W)
        (for ``upsampler="bicubic"`` only: what the original runs on RealSR's registered LR images)."""
        if self.upsampler != "bicubic":
            raise ValueError("restore() is the paper's same-size network; this model upsamples with "
                             "'pixelshuffle': call it on the LR image instead")
        return x + self.residual(x)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        from ..degrade import upscale_bicubic

        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"expected LR images (N, 3, h, w), got shape {tuple(lr.shape)}")
        bicubic = upscale_bicubic(lr, self.scale)  # (N, 3, s*h, s*w)
        if self.upsampler == "bicubic":
            return self.restore(bicubic)
        return bicubic + self.residual(lr)


SCALES = (2, 3, 4)
TINY = MIRNetConfig(num_feat=6, num_group=1, num_block=1, reduction=2)  # the CPU presets' shared body
PAPER = "Zamir et al., ECCV 2020 (MIRNet)"


@register_model("mirnet", scales=SCALES, paper=PAPER + ", on the bicubic-upsampled LR")
def mirnet(scale: int = 4, **overrides) -> MIRNet:
    """The paper's MIRNet (64 ch, 3 RRGs x 2 MSRBs, 3 streams, 2 columns) on the bicubic-upsampled LR:
    31,787,419 parameters at every scale."""
    return build(MIRNet, scale, MIRNetConfig(), overrides)


@register_model("mirnet_tiny", scales=SCALES, paper=PAPER + ", CPU preset")
def mirnet_tiny(scale: int = 4, **overrides) -> MIRNet:
    # shrunk: width 64 -> 6 (streams 6/12/24; it runs at HR size, hence so narrow), groups 3 -> 1,
    # MSRBs 2 -> 1; reduction 8 -> 2 so the squeezes keep 3/6/12 channels (6 // 8 would leave none)
    return build(MIRNet, scale, TINY, overrides)


@register_model("mirnet_up", scales=SCALES, paper=PAPER + ", srlib variant: body at LR, sub-pixel upsampler")
def mirnet_up(scale: int = 4, **overrides) -> MIRNet:
    """MIRNet's body at LR resolution and an EDSR sub-pixel upsampler: 31,787,419 + the upsampler
    (147,712 / 332,352 / 295,424 at x2 / x3 / x4)."""
    return build(MIRNet, scale, MIRNetConfig(upsampler="pixelshuffle"), overrides)


@register_model("mirnet_up_tiny", scales=SCALES, paper=PAPER + ", srlib LR variant, CPU preset")
def mirnet_up_tiny(scale: int = 4, **overrides) -> MIRNet:
    # mirnet_tiny's body, run at LR (scale^2 times fewer positions), plus the sub-pixel upsampler
    return build(MIRNet, scale, replace(TINY, upsampler="pixelshuffle"), overrides)
