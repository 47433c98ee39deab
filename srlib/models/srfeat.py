"""SRFeat's feature discriminator: a GAN that judges VGG feature maps, next to the image GAN.

Paper: S.-J. Park, H. Son, S. Cho, K.-S. Hong, S. Lee, "SRFeat: Single Image Super-Resolution with
Feature Discrimination", ECCV 2018 [park2018srfeat]. Official code (TensorFlow):
HyeongseokSon1/SRFeat (``model.py``: ``SRGAN_vgg_d``; ``main_gan_train.py``).

An image discriminator pushes the generator towards realistic *pixels*, which it often satisfies
with high-frequency noise. SRFeat adds a second discriminator on VGG19 ``relu5_4`` features: to
fool it, the SR image must have realistic *structures*. The generator loss is

    L_G = L_perceptual + 1e-3 * L_adv(image D) + 1e-3 * L_adv(feature D)

(official ``main_gan_train.py``; vanilla GAN losses, :func:`srlib.losses.generator_loss`), with
both the perceptual loss and the feature discriminator on ``relu5_4`` scaled by 1/12.75.

The feature discriminator of the official code is the SRGAN discriminator
(:class:`~srlib.models.srresnet.SRGANDiscriminator`: 8 convs with BN, LeakyReLU 0.2, dense 1024,
dense 1) with 512 input channels. Its input is ``relu5_4 / 12.75`` of 296x296 HR patches, which
is 18x18 here (torchvision's max pools floor; TensorFlow's 'SAME' pools made it 19x19 in the
original): 7,081,473 parameters. The image discriminator is the SRGAN one on the 296x296 images.

This module only has the discriminator. SRFeat's generator (16 blocks of 128 channels with BN and
1x1 long-range skips to the end) is not in the reference sheet and is not implemented here.

Usage, with ``ext = VGGFeatureExtractor(("relu5_4",), weights=...)``::

    d_feat = feature_discriminator()
    real = d_feat(ext(hr)["relu5_4"]); fake = d_feat(ext(sr)["relu5_4"])   # scaled inside
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .srresnet import SRGANDiscriminator, make_discriminator

FEATURE_SCALE = 1 / 12.75  # official vgg_scale5: brings relu5_4 activations to about [0, 1]


class FeatureDiscriminator(SRGANDiscriminator):
    """The SRGAN discriminator applied to (scaled) feature maps.

    Args:
        in_channels: feature channels. Default: 512 (VGG19 ``relu5_4``).
        num_feat, num_hidden: as :class:`~srlib.models.srresnet.SRGANDiscriminator`.
        input_size: side of the feature maps. Default: 18 (296 px HR patches at stride 16).
        feature_scale: the features are multiplied by this first. Default: 1/12.75 (official).

    ``forward(features)``: (N, in_channels, input_size, input_size) -> logits (N, 1).

    Example:
        >>> d = FeatureDiscriminator(in_channels=16, num_feat=4, num_hidden=8, input_size=6)
        >>> d(torch.rand(2, 16, 6, 6)).shape
        torch.Size([2, 1])
    """

    def __init__(self, in_channels: int = 512, num_feat: int = 64, num_hidden: int = 1024, input_size: int = 18,
                 feature_scale: float = FEATURE_SCALE):
        super().__init__(in_channels, num_feat, num_hidden, input_size)
        self.feature_scale = feature_scale

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return super().forward(features * self.feature_scale)


@dataclass
class FeatureDiscriminatorConfig:
    in_channels: int = 512  # VGG19 relu5_4 (official)
    num_feat: int = 64  # the SRGAN discriminator's widths (official SRGAN_vgg_d)
    num_hidden: int = 1024  # dense 1024 (official)
    input_size: int = 18  # relu5_4 of 296 px HR patches (official patch_size_h = 296)
    feature_scale: float = FEATURE_SCALE  # official vgg_scale5


def feature_discriminator(**overrides) -> FeatureDiscriminator:
    """SRFeat's feature discriminator on relu5_4 of 296 px patches: 7,081,473 parameters."""
    return make_discriminator(FeatureDiscriminator, FeatureDiscriminatorConfig(), overrides)


def feature_discriminator_tiny(**overrides) -> FeatureDiscriminator:
    """CPU preset: on ``relu2_2`` (128 ch, stride 2) of 48 px patches, which the self-trained
    extractor has (it stops at relu3_4); widths 8..64, dense 64: 99,585 parameters."""
    # shrunk: relu5_4 (512 ch, 18x18) -> relu2_2 (128 ch, 24x24), width 64 -> 8, dense 1024 -> 64;
    # scale 1.0: the 1/12.75 was measured on real VGG relu5_4 activations
    return make_discriminator(FeatureDiscriminator, FeatureDiscriminatorConfig(
        in_channels=128, num_feat=8, num_hidden=64, input_size=24, feature_scale=1.0), overrides)
