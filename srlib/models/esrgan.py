"""ESRGAN: RRDBNet (residual-in-residual dense blocks, no BN), its VGG-style discriminator, and
network interpolation.

Paper: X. Wang, K. Yu, S. Wu, J. Gu, Y. Liu, C. Dong, C. C. Loy, Y. Qiao, X. Tang, "ESRGAN: Enhanced
Super-Resolution Generative Adversarial Networks", ECCV Workshops 2018 [wang2018esrgan]. Official
code: xinntao/ESRGAN (``RRDBNet_arch.py``, ``net_interp.py``); training code in BasicSR
(``archs/rrdbnet_arch.py``, ``archs/discriminator_arch.py``, ``models/esrgan_model.py``).

The generator, in the srlib skeleton::

    f0 = conv(lr)                           conv 3x3, 3 -> 64
    f  = f0 + conv(body(f0))                23 RRDBs, then a conv; the long skip
    f  = [nearest x2, conv, LReLU] x 2      nearest-neighbour upsampling + conv (not sub-pixel)
    sr = conv(lrelu(conv(f)))               HR conv + LReLU, last conv 64 -> 3

    RRDB(x) = x + 0.2 * RDB3(RDB2(RDB1(x)))          residual in residual
    RDB(x)  = x + 0.2 * conv5(cat(x, x1, x2, x3, x4)),  x_k = lrelu(conv_k(cat(x, x1, .., x_{k-1})))

with 32 growth channels per dense conv and LeakyReLU 0.2 everywhere. **No batch norm**: BN
produces artefacts when the statistics of training and test images differ, and costs PSNR. The
residual scaling 0.2 appears at **both** levels (inside each RDB and around each RRDB), which keeps
the very deep network stable. 16,697,987 parameters at x4 (reference sheet: 16,697,987). At x2
the input is first pixel-unshuffled by 2 (BasicSR): 4x the input channels, 16,703,171 parameters
(reference sheet: BasicSR x2 16,703,171).

Initialisation as BasicSR: the dense-block convs are Kaiming-normal scaled by 0.1, so that each
RDB starts close to the identity.

The discriminator (:class:`VGGStyleDiscriminator`, BasicSR's ``VGGStyleDiscriminator``, the
original's ``Discriminator_VGG_128``) sees 128x128 HR patches: 14,499,401 parameters. The loss
is relativistic average (:func:`srlib.losses.discriminator_loss` with ``kind="ragan"``), the
perceptual loss L1 on VGG19 ``conv5_4`` *before* ReLU; weights 1e-2 (L1 pixel), 1.0
(perceptual), 5e-3 (GAN) (reference sheet 2.17). :func:`interpolate_weights` blends a PSNR-trained
and a GAN-trained network (the paper's network interpolation, Sec. 3.4).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from . import register_model
from .common import build, conv3x3
from .enhancenet import NearestUpsample
from .srresnet import make_discriminator

NEGATIVE_SLOPE = 0.2  # LeakyReLU slope of every activation (official code)


def lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)


class ResidualDenseBlock(nn.Module):
    """Five densely connected convs; the last one's output, times ``res_scale``, is added to the input.

    Args:
        num_feat: channels in and out. Default: 64.
        num_grow_ch: channels each of the first four convs adds to the concatenation. Default: 32.
        res_scale: residual scaling. Default: 0.2.
    """

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32, res_scale: float = 0.2):
        super().__init__()
        self.convs = nn.ModuleList([conv3x3(num_feat + k * num_grow_ch, num_grow_ch) for k in range(4)])
        self.conv_last = conv3x3(num_feat + 4 * num_grow_ch, num_feat)
        self.act = lrelu()
        self.res_scale = res_scale
        for conv in [*self.convs, self.conv_last]:  # BasicSR default_init_weights(..., scale=0.1)
            nn.init.kaiming_normal_(conv.weight)
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for conv in self.convs:
            features.append(self.act(conv(torch.cat(features, dim=1))))  # (N, F + k*G, h, w) -> (N, G, h, w)
        return x + self.res_scale * self.conv_last(torch.cat(features, dim=1))  # (N, F + 4G, h, w) -> (N, F, h, w)


class RRDB(nn.Module):
    """Residual in residual dense block: three RDBs, their output scaled by ``res_scale`` and added."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32, res_scale: float = 0.2):
        super().__init__()
        self.body = nn.Sequential(*[ResidualDenseBlock(num_feat, num_grow_ch, res_scale) for _ in range(3)])
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.body(x)


@dataclass
class RRDBNetConfig:
    num_feat: int = 64  # nf = 64 (official)
    num_block: int = 23  # nb = 23 RRDBs (official)
    num_grow_ch: int = 32  # gc = 32 growth channels (official)
    res_scale: float = 0.2  # residual scaling inside each RDB and around each RRDB (official)


class RRDBNet(nn.Module):
    """ESRGAN's generator, RGB in and out.

    Args:
        scale: 2 or 4. x4: the official network; x2: the input is pixel-unshuffled by 2 first
            (BasicSR), and the x4 network runs at half the LR resolution.
        num_feat: channels. Default: 64.
        num_block: RRDBs. Default: 23.
        num_grow_ch: growth channels of the dense convs. Default: 32.
        res_scale: residual scaling at both levels. Default: 0.2.

    Input (N, 3, h, w) RGB in [0, 1] (at x2, h and w even); output (N, 3, scale*h, scale*w), not clamped.

    Example:
        >>> net = RRDBNet(scale=4, num_feat=8, num_block=1, num_grow_ch=4)
        >>> net(torch.rand(1, 3, 6, 5)).shape
        torch.Size([1, 3, 24, 20])
    """

    def __init__(self, scale: int, num_feat: int = 64, num_block: int = 23, num_grow_ch: int = 32,
                 res_scale: float = 0.2):
        super().__init__()
        if scale not in (2, 4):
            raise ValueError(f"RRDBNet supports x4 (the official network) and x2 (pixel-unshuffle input), "
                             f"not {scale!r}")
        self.scale = scale
        self.unshuffle = 4 // scale  # 1 at x4, 2 at x2: the body always upsamples x4
        self.head = conv3x3(3 * self.unshuffle ** 2, num_feat)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch, res_scale) for _ in range(num_block)],
                                  conv3x3(num_feat, num_feat))
        self.upsample = NearestUpsample(4, num_feat, act=lrelu)
        self.tail = nn.Sequential(conv3x3(num_feat, num_feat), lrelu(), conv3x3(num_feat, 3))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"expected LR images (N, 3, h, w), got shape {tuple(lr.shape)}")
        x = lr
        if self.unshuffle > 1:
            if lr.shape[-2] % 2 or lr.shape[-1] % 2:
                raise ValueError(f"RRDBNet x2 pixel-unshuffles its input, so h and w must be even; got "
                                 f"{tuple(lr.shape[-2:])} (crop one row/column)")
            x = F.pixel_unshuffle(lr, self.unshuffle)  # (N, 12, h/2, w/2)
        f = self.head(x)  # (N, F, h', w')
        f = f + self.body(f)  # long skip
        return self.tail(self.upsample(f))  # (N, 3, 4h', 4w') = (N, 3, s*h, s*w)


# ------------------------------------------------------------------------------------ discriminator

class VGGStyleDiscriminator(nn.Module):
    """ESRGAN's discriminator: ``num_stage`` stages of [conv 3x3, conv 4x4 stride 2] (BN, LeakyReLU
    0.2), then dense 100, dense 1 -> logit.

    Stage widths are ``num_feat`` x (1, 2, 4, 8, 8, ...); the first conv has a bias and no BN, the
    others no bias (BN follows). With the defaults: 128x128 inputs, 5 stages, 14,499,401 parameters.

    Args:
        in_channels: 3 for images. Default: 3.
        num_feat: width of the first stage. Default: 64.
        input_size: side of the square inputs, a multiple of 2 ** num_stage. Default: 128.
        num_stage: stride-2 stages. Default: 5.

    ``forward(x)``: (N, in_channels, input_size, input_size) -> logits (N, 1).

    Example:
        >>> d = VGGStyleDiscriminator(num_feat=4, input_size=32, num_stage=3)
        >>> d(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 1])
    """

    def __init__(self, in_channels: int = 3, num_feat: int = 64, input_size: int = 128, num_stage: int = 5):
        super().__init__()
        if input_size % 2 ** num_stage:
            raise ValueError(f"VGGStyleDiscriminator with {num_stage} stride-2 stages needs input_size divisible by "
                             f"{2 ** num_stage}, got {input_size}; change input_size or num_stage")
        self.input_size = input_size
        layers: list[nn.Module] = []
        in_ch = in_channels
        for stage in range(num_stage):
            out = num_feat * min(2 ** stage, 8)
            first = [nn.Conv2d(in_ch, out, 3, padding=1)] if stage == 0 else \
                [nn.Conv2d(in_ch, out, 3, padding=1, bias=False), nn.BatchNorm2d(out)]
            layers += [*first, lrelu(), nn.Conv2d(out, out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(out),
                       lrelu()]
            in_ch = out
        self.features = nn.Sequential(*layers)
        side = input_size // 2 ** num_stage
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(in_ch * side * side, 100), lrelu(), nn.Linear(100, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"VGGStyleDiscriminator was built for {self.input_size}x{self.input_size} inputs, got "
                             f"shape {tuple(x.shape)}; crop the patches or build it with input_size={x.shape[-1]}")
        return self.classifier(self.features(x))  # (N, C, side, side) -> (N, 1)


@dataclass
class VGGDiscriminatorConfig:
    in_channels: int = 3  # RGB images
    num_feat: int = 64  # 64, 128, 256, 512, 512 channels (official)
    input_size: int = 128  # ESRGAN's HR patches (Discriminator_VGG_128)
    num_stage: int = 5  # 128 -> 4x4 before the dense layers


def vgg_discriminator(**overrides) -> VGGStyleDiscriminator:
    """ESRGAN's discriminator for 128x128 patches: 14,499,401 parameters."""
    return make_discriminator(VGGStyleDiscriminator, VGGDiscriminatorConfig(), overrides)


def vgg_discriminator_tiny(**overrides) -> VGGStyleDiscriminator:
    """CPU preset for 48x48 HR patches: widths 8..64, 4 stages (3x3 before the dense layers): 169,721 parameters."""
    # shrunk: width 64 -> 8, stages 5 -> 4 (48 px patches end at 3x3 like 128 px ones end at 4x4)
    return make_discriminator(VGGStyleDiscriminator,
                              VGGDiscriminatorConfig(num_feat=8, input_size=48, num_stage=4), overrides)


# ------------------------------------------------------------------------------ network interpolation

def interpolate_weights(psnr_state: Mapping[str, torch.Tensor], gan_state: Mapping[str, torch.Tensor],
                        alpha: float) -> dict[str, torch.Tensor]:
    r"""ESRGAN's network interpolation: :math:`\theta = (1 - \alpha)\, \theta_{PSNR} + \alpha\, \theta_{GAN}`.

    Two networks of the same architecture, one trained for PSNR and one fine-tuned from it with
    the GAN losses, blend smoothly: alpha = 0 gives the PSNR network (smooth, high PSNR), alpha = 1
    the GAN one (sharp, with artefacts), in between a continuous trade-off without retraining
    (paper Sec. 3.4, ``net_interp.py``). It works because the GAN network starts from the PSNR
    weights and stays close to them.

    Args:
        psnr_state, gan_state: state dicts with the same keys and shapes.
        alpha: weight of the GAN network, usually in [0, 1].

    Returns:
        A new state dict; floating tensors interpolated, others (e.g. BN step counters) taken from
        ``gan_state``.

    Example:
        >>> a, b = {"w": torch.zeros(2)}, {"w": torch.ones(2)}
        >>> interpolate_weights(a, b, 0.25)["w"]
        tensor([0.2500, 0.2500])
    """
    if set(psnr_state) != set(gan_state):
        diff = sorted(set(psnr_state) ^ set(gan_state))
        raise ValueError(f"the two state dicts have different keys (e.g. {diff[:3]}): not the same architecture")
    out = {}
    for key, gan in gan_state.items():
        psnr = psnr_state[key]
        if psnr.shape != gan.shape:
            raise ValueError(f"{key}: shapes {tuple(psnr.shape)} and {tuple(gan.shape)} differ: "
                             "not the same architecture")
        out[key] = (1 - alpha) * psnr + alpha * gan if gan.is_floating_point() else gan.clone()
    return out


SCALES = (2, 4)
PAPER = "Wang et al., ECCVW 2018 (ESRGAN)"


@register_model("rrdbnet", scales=SCALES, paper=PAPER)
def rrdbnet(scale: int = 4, **overrides) -> RRDBNet:
    """ESRGAN's RRDBNet (23 RRDBs, 64 ch, gc 32): 16,703,171 / 16,697,987 parameters at x2 / x4."""
    return build(RRDBNet, scale, RRDBNetConfig(), overrides)


@register_model("rrdbnet_tiny", scales=SCALES, paper=PAPER + ", CPU preset")
def rrdbnet_tiny(scale: int = 4, **overrides) -> RRDBNet:
    # shrunk: width 64 -> 16, growth 32 -> 8, RRDBs 23 -> 1 (still 3 dense blocks of 5 convs, both
    # residual scalings, nearest + conv upsampling)
    return build(RRDBNet, scale, RRDBNetConfig(num_feat=16, num_block=1, num_grow_ch=8), overrides)
