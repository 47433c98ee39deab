"""SRResNet and the SRGAN discriminator: a BN + PReLU residual generator and a VGG-like critic.

Paper: C. Ledig, L. Theis, F. Huszár, J. Caballero, A. Cunningham, A. Acosta, A. Aitken, A. Tejani,
J. Totz, Z. Wang, W. Shi, "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", CVPR 2017 [ledig2017srgan]. No official code was released; this follows the
paper's Fig. 4. (twtygqyy/pytorch-SRResNet uses instance norm, LeakyReLU and no bias; BasicSR's
``MSRResNet`` drops BN: neither is the paper's network.)

The generator (SRResNet; SRGAN is the same network trained with the adversarial loss)::

    f0 = prelu(conv9x9(lr))               k9n64s1 + PReLU
    f  = body(f0)                         16 x [k3n64 - BN - PReLU - k3n64 - BN, + x]
    f  = bn(conv(f)) + f0                 k3n64 + BN, the long skip
    f  = [conv 64 -> 256, PixelShuffle(2), PReLU] x log2(scale)
    sr = conv9x9(f)                       k9n3s1

Every conv has a bias (the transcribed paper count needs it, although a bias before BN is
redundant) and every PReLU has one slope (PyTorch's default; a per-channel PReLU would add ~2k
parameters): 1,549,462 parameters at x4 (reference sheet: 1,549,462), 1,401,749 at x2.

The discriminator (paper Fig. 4, lower part) is eight 3x3 convs with 64, 64, 128, 128, 256, 256, 512,
512 channels and strides 1, 2, 1, 2, ... (BN after all but the first, LeakyReLU 0.2), then dense 1024,
LeakyReLU, dense 1; it returns the logit (the sigmoid is in ``srlib.losses``). On 96x96 HR patches
(the paper's) it has 23,565,505 parameters, convs with bias as in SRFeat's official TensorFlow code of
this discriminator. (The reference sheet lists 26,000,705 for twtygqyy's port, a different layout.)

Images are RGB in [0, 1] in and out (the paper scales HR images to [-1, 1]). SRGAN's losses:
``PerceptualLoss({"relu5_4": 1 / 12.75 ** 2})`` + 1e-3 x ``generator_loss(..., "vanilla")``
(not verified; reference sheet 2.18).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import register_model
from .common import build, conv3x3
from .enhancenet import check_power_of_two


class SRResNetBlock(nn.Module):
    """k3n64 - BN - PReLU - k3n64 - BN, plus the input (SRGAN Fig. 4).

    Not ``common.ResBlock(bn=True)``: that one drops the conv bias (redundant before BN), and the
    paper's parameter count keeps it.
    """

    def __init__(self, num_feat: int = 64):
        super().__init__()
        self.body = nn.Sequential(conv3x3(num_feat, num_feat), nn.BatchNorm2d(num_feat), nn.PReLU(),
                                  conv3x3(num_feat, num_feat), nn.BatchNorm2d(num_feat))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@dataclass
class SRResNetConfig:
    num_feat: int = 64  # n64 in the paper's figure
    num_block: int = 16  # B = 16 residual blocks (paper)


class SRResNet(nn.Module):
    """SRResNet / SRGAN generator: RGB in and out.

    Args:
        scale: 2 or 4 (any power of two: one sub-pixel x2 step each).
        num_feat: channels. Default: 64.
        num_block: residual blocks. Default: 16.

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, scale*h, scale*w), not clamped. Contains batch
    norm: call ``.eval()`` before inference.

    Example:
        >>> net = SRResNet(scale=2, num_feat=8, num_block=1).eval()
        >>> net(torch.rand(1, 3, 6, 5)).shape
        torch.Size([1, 3, 12, 10])
    """

    def __init__(self, scale: int, num_feat: int = 64, num_block: int = 16):
        super().__init__()
        steps = check_power_of_two(scale, "SRResNet")
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(3, num_feat, 9, padding=4), nn.PReLU())
        self.body = nn.Sequential(*[SRResNetBlock(num_feat) for _ in range(num_block)],
                                  conv3x3(num_feat, num_feat), nn.BatchNorm2d(num_feat))
        self.upsample = nn.Sequential(*[m for _ in range(steps)
                                        for m in (conv3x3(num_feat, 4 * num_feat), nn.PixelShuffle(2), nn.PReLU())])
        self.tail = nn.Conv2d(num_feat, 3, 9, padding=4)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"expected LR images (N, 3, h, w), got shape {tuple(lr.shape)}")
        f = self.head(lr)  # (N, F, h, w)
        f = f + self.body(f)  # long skip
        return self.tail(self.upsample(f))  # (N, F, s*h, s*w) -> (N, 3, s*h, s*w)


# ------------------------------------------------------------------------------------ discriminator

def strided_size(size: int, num_stride2: int) -> int:
    """Side after ``num_stride2`` 3x3 stride-2 convs with padding 1: ceil(size / 2) each time."""
    for _ in range(num_stride2):
        size = (size + 1) // 2
    return size


class SRGANDiscriminator(nn.Module):
    """The SRGAN discriminator: 8 convs (BN, LeakyReLU 0.2), dense ``num_hidden``, dense 1 -> logit.

    SRFeat's feature discriminator is this network on VGG feature maps (``in_channels=512``).

    Args:
        in_channels: 3 for images. Default: 3.
        num_feat: channels of the first two convs; doubled every two convs up to 8x. Default: 64.
        num_hidden: units of the hidden dense layer. Default: 1024 (paper).
        input_size: side of the square inputs; the dense layer is sized for it. Default: 96 (the
            paper's HR patches).

    ``forward(x)``: (N, in_channels, input_size, input_size) -> logits (N, 1).

    Example:
        >>> d = SRGANDiscriminator(num_feat=4, num_hidden=8, input_size=24)
        >>> d(torch.rand(2, 3, 24, 24)).shape
        torch.Size([2, 1])
    """

    def __init__(self, in_channels: int = 3, num_feat: int = 64, num_hidden: int = 1024, input_size: int = 96):
        super().__init__()
        self.input_size = input_size
        layers: list[nn.Module] = [nn.Conv2d(in_channels, num_feat, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        channels = num_feat
        for i in range(1, 8):  # convs 2..8: strides 2, 1, 2, 1, 2, 1, 2; width doubles at each stride-1 conv
            out = channels * 2 if i % 2 == 0 else channels
            layers += [nn.Conv2d(channels, out, 3, stride=2 if i % 2 else 1, padding=1), nn.BatchNorm2d(out),
                       nn.LeakyReLU(0.2, inplace=True)]
            channels = out
        self.features = nn.Sequential(*layers)
        side = strided_size(input_size, 4)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(channels * side * side, num_hidden),
                                        nn.LeakyReLU(0.2, inplace=True), nn.Linear(num_hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"{type(self).__name__} was built for {self.input_size}x{self.input_size} inputs, got "
                             f"shape {tuple(x.shape)}; crop the patches or build it with input_size={x.shape[-1]}")
        return self.classifier(self.features(x))  # (N, 8F, s, s) -> (N, 1)


@dataclass
class SRGANDiscriminatorConfig:
    in_channels: int = 3  # RGB images
    num_feat: int = 64  # 64, 64, 128, 128, 256, 256, 512, 512 channels (paper Fig. 4)
    num_hidden: int = 1024  # dense 1024 (paper)
    input_size: int = 96  # HR patch side (paper: 96)


def make_discriminator(cls: type[nn.Module], config, overrides: dict) -> nn.Module:
    """``cls(**config)`` with some fields overridden; unknown names raise ``TypeError`` listing the valid ones."""
    from dataclasses import asdict

    fields = asdict(config)
    unknown = set(overrides) - set(fields)
    if unknown:
        raise TypeError(f"{cls.__name__}: unknown config field(s) {sorted(unknown)}; valid: {sorted(fields)}")
    return cls(**{**fields, **overrides})


def srgan_discriminator(**overrides) -> SRGANDiscriminator:
    """The paper's discriminator for 96x96 patches: 23,565,505 parameters."""
    return make_discriminator(SRGANDiscriminator, SRGANDiscriminatorConfig(), overrides)


def srgan_discriminator_tiny(**overrides) -> SRGANDiscriminator:
    """CPU preset for 48x48 HR patches: widths 8..64, dense 64 (111,065 parameters)."""
    # shrunk: width 64 -> 8 (8, 8, 16, 16, 32, 32, 64, 64), dense 1024 -> 64, patches 96 -> 48
    return make_discriminator(SRGANDiscriminator, SRGANDiscriminatorConfig(num_feat=8, num_hidden=64, input_size=48),
                              overrides)


SCALES = (2, 4)
PAPER = "Ledig et al., CVPR 2017 (SRResNet/SRGAN)"


@register_model("srresnet", scales=SCALES, paper=PAPER)
def srresnet(scale: int = 4, **overrides) -> SRResNet:
    """The paper's SRResNet (16 blocks x 64, BN + PReLU): 1,401,749 / 1,549,462 parameters at x2 / x4."""
    return build(SRResNet, scale, SRResNetConfig(), overrides)


@register_model("srresnet_tiny", scales=SCALES, paper=PAPER + ", CPU preset")
def srresnet_tiny(scale: int = 4, **overrides) -> SRResNet:
    # shrunk: width 64 -> 16, residual blocks 16 -> 4 (BN, PReLU, 9x9 head/tail and sub-pixel steps intact)
    return build(SRResNet, scale, SRResNetConfig(num_feat=16, num_block=4), overrides)
