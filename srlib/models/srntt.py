"""SRNTT: super-resolution by neural texture transfer from a reference image (x4).

Paper: Z. Zhang, Z. Wang, Z. Lin, H. Qi, "Image Super-Resolution by Neural Texture Transfer",
CVPR 2019 [zhang2019srntt]. Official code (TensorFlow): ZZUTK/SRNTT (``SRNTT/model.py``,
``SRNTT/swap.py``); PyTorch port: S-aiueo32/srntt-pytorch, which differs on purpose (see below).

An LR input and an HR reference with related content; the network copies the reference's real
texture where it matches instead of hallucinating it::

    lr_up, ref, ref_du = LR↑, Ref, Ref↓↑            bicubic (srlib.texture_match.reference_inputs)
    match  = relu3_1(lr_up) vs relu3_1(ref_du)      VGG19; normalised 3x3 patches, stride 1, 'VALID'
    M3, M2, M1 = swap(relu3_1 / relu2_1 / relu1_1 of ref)   3x3 / 6x6 / 12x12 patches, overlaps averaged
    S      = best-match similarity (N, 1, h, w)     (edge-padded from the VALID grid, as SRNTT)
    f      = content(lr)                            conv+ReLU, B residual blocks, conv+BN, + skip (SRGAN-like)
    x      = up2(fuse_small(f, M3))                 concat -> conv+ReLU -> B RBs -> conv+BN -> + f; x2 sub-pixel
    x      = up2(fuse_medium(x, M2))                the same with B/2 RBs
    x      = fuse_large(x, M1)                      the same with B/4 RBs
    sr     = tanh(conv1x1(conv3x3(x)))              64 -> 32 -> 3, data range [-1, 1] inside

with B = 16 residual blocks (conv, no bias -> BN -> ReLU -> conv -> BN, + x) and width 64. The
matching and swapping are :mod:`srlib.texture_match` (shared with TTSR), run under ``no_grad`` on a
frozen VGG19 (SRNTT swaps offline, before training: the maps are inputs, not learned).

Parameters (official TF generator, the reference sheet's transcription): content extractor
1,518,147 (including its own x4 upscaling head, used only to pre-train it), texture transfer
2,865,347, generator **4,383,494**; ``count_parameters(model, trainable_only=True)`` gives exactly
that. The model also holds the frozen VGG19 front up to relu3_1 (555,328 parameters, never
trained), so ``count_parameters(model)`` is 4,938,822. BN running statistics are buffers (the TF
count lists 11,776 moving-average values separately). x4 only, as the paper.

Differences from the official code, all options of :class:`SRNTTConfig`:

* The official trains only the texture-transfer part: the content extractor is pre-trained as an SR
  network (``upscale.npz``, its tanh head) and frozen. Here everything is trainable by default;
  :meth:`SRNTT.freeze_content` freezes it and :meth:`SRNTT.content_sr` is its SR output for the
  pre-training.
* ``use_similarity``: the official optional weighting of the swapped maps by ``sigmoid(a S + b)``
  with learned a (init 1) and b (init 0) per scale (+6 parameters; off in the released model).
* ``global_residual``: output ``bicubic(LR) + network`` without the tanh (the PyTorch port adds an
  upsampled LR likewise): the CPU preset needs it to beat bicubic within a short budget.
* VGG19 weights: the paper uses ImageNet weights, which cannot be downloaded here; ``vgg_weights``
  takes ``None`` (random, seeded), ``"selfsup"`` or a torchvision file (:mod:`srlib.features`).

Losses (:class:`SRNTTLoss`): ``variant="rec"`` is SRNTT-ℓ1 / SRNTT-ℓ2 (reconstruction only, L1 or
MSE); ``variant="perceptual"`` adds the back-projection loss (L1 between the bicubic downscaled
output and the input, weight 1), the perceptual loss (VGG19 relu5_1, MSE, 1e-4) and the texture loss
on similarity-weighted Gram matrices (relu3_1 / 2_1 / 1_1, 1e-4), as the paper writes it. The
adversarial term of the full SRNTT (WGAN-GP, 1e-6) needs a discriminator loop and is not part of it.
Training (official): batch 9, LR 40x40 (HR 160), Adam lr 1e-4, 5 epochs reconstruction-only
(+ back-projection), then 100 epochs with all losses, lr x0.1 at half.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import register_model
from .common import ResBlock, build, conv3x3
from ..texture_match import (DEFAULT_MAX_ELEMENTS, SwapResult, TextureSwap, reference_inputs, similarity_at)

SCALE = 4  # the three VGG levels relu3_1 / 2_1 / 1_1 are at 1/4, 1/2, 1 of the HR size: x4 only
TEXTURE_LAYERS = ("relu3_1", "relu2_1", "relu1_1")  # coarse to fine: the small, medium, large scales
TEXTURE_CHANNELS = (256, 128, 64)  # VGG19 channels of those layers


@dataclass
class SRNTTConfig:
    num_feat: int = 64  # width of every conv (official)
    num_block: int = 16  # RBs of the content extractor and of the small scale; medium B/2, large B/4 (official)
    batch_norm: bool = True  # BN in every RB and after each body (official TF; the PyTorch port drops it)
    use_similarity: bool = False  # scale swapped maps by sigmoid(a S + b), learned a, b per scale (official option)
    global_residual: bool = False  # False: tanh output (official); True: bicubic(LR) + net (port; CPU preset)
    vgg_weights: str | None = None  # matching VGG19: None random (no download here), "selfsup", or a file
    match_method: str = "chunked"  # srlib.texture_match method: same result as "vectorised", bounded memory
    max_elements: int = DEFAULT_MAX_ELEMENTS  # floats of the correlation volume computed at once


# ------------------------------------------------------------------------------------------- blocks

def residual_body(num_feat: int, num_block: int, bn: bool) -> nn.Sequential:
    """SRGAN's body before its skip: ``num_block`` residual blocks, then conv (+ BN)."""
    layers: list[nn.Module] = [ResBlock(num_feat, bn=bn) for _ in range(num_block)]
    layers.append(conv3x3(num_feat, num_feat, bias=not bn))
    if bn:
        layers.append(nn.BatchNorm2d(num_feat))
    return nn.Sequential(*layers)


def upsample_x2(num_feat: int) -> nn.Sequential:
    """conv to 4F channels, pixel shuffle x2, ReLU (SRGAN's sub-pixel step)."""
    return nn.Sequential(conv3x3(num_feat, 4 * num_feat), nn.PixelShuffle(2), nn.ReLU(inplace=True))


class ContentExtractor(nn.Module):
    """SRGAN-like LR feature extractor, with its own x4 head used only to pre-train it.

    ``forward(x)``: LR in [-1, 1] (N, 3, h, w) -> content features (N, F, h, w).
    ``upscale(features)``: -> (N, 3, 4h, 4w) in [-1, 1] (tanh), the "upscale" network of the official code.
    """

    def __init__(self, num_feat: int, num_block: int, bn: bool):
        super().__init__()
        self.head = nn.Sequential(conv3x3(3, num_feat), nn.ReLU(inplace=True))
        self.body = residual_body(num_feat, num_block, bn)
        self.upsample = nn.Sequential(upsample_x2(num_feat), upsample_x2(num_feat))
        self.to_rgb = nn.Conv2d(num_feat, 3, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.head(x)
        return x + self.body(x)

    def upscale(self, features: Tensor) -> Tensor:
        return torch.tanh(self.to_rgb(self.upsample(features)))


class TextureFusion(nn.Module):
    """One scale of the texture transfer: ``x + body(conv+ReLU(concat[x, texture]))``.

    Args:
        num_feat: channels F of ``x`` (and of the output).
        texture_ch: channels of the swapped texture map at this scale.
        num_block: residual blocks of the body.
        bn: batch norm in the body.
    """

    def __init__(self, num_feat: int, texture_ch: int, num_block: int, bn: bool):
        super().__init__()
        self.fuse = nn.Sequential(conv3x3(num_feat + texture_ch, num_feat), nn.ReLU(inplace=True))
        self.body = residual_body(num_feat, num_block, bn)

    def forward(self, x: Tensor, texture: Tensor) -> Tensor:
        return x + self.body(self.fuse(torch.cat([x, texture], dim=1)))  # (N, F + C_t, H, W) -> (N, F, H, W)


class SimilarityGate(nn.Module):
    """``texture * sigmoid(a * S + b)``: the official optional weighting, a and b learned (init 1 and 0)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.ones(()))
        self.b = nn.Parameter(torch.zeros(()))

    def forward(self, texture: Tensor, similarity: Tensor) -> Tensor:
        return texture * torch.sigmoid(self.a * similarity_at(similarity, texture.shape[-2:]) + self.b)


# -------------------------------------------------------------------------------------------- model

class SRNTT(nn.Module):
    """SRNTT generator with its texture swapping: ``forward(lr, ref)``, x4.

    Args:
        scale: must be 4 (the VGG levels fix it).
        num_feat: width F. Default: 64.
        num_block: residual blocks B of the content extractor and the small scale (B/2, B/4 after). Default: 16.
        batch_norm: BN in the residual bodies (official). Default: True.
        use_similarity: weight the swapped maps by ``sigmoid(a S + b)`` (official option). Default: False.
        global_residual: add the bicubic upscaling of the input instead of a tanh output. Default: False.
        vgg_weights: VGG19 weights for matching (``None`` random, ``"selfsup"``, a path). Default: None.
        match_method: ``"chunked"``, ``"vectorised"`` or ``"naive"`` (:mod:`srlib.texture_match`). Default: chunked.
        max_elements: chunk size of the chunked matching, in floats. Default: 2**24.

    ``forward(lr, ref)``: LR (N, 3, h, w) RGB in [0, 1], h, w >= 3, and a reference (N or 1, 3, H, W)
    in [0, 1] of any size with H, W >= 12 -> (N, 3, 4h, 4w), in [0, 1] with the tanh output (not
    clamped with ``global_residual``). :meth:`forward_with_textures` also returns the
    :class:`~srlib.texture_match.SwapResult` (similarity map, swapped maps), which the texture loss needs.

    Example:
        >>> net = SRNTT(scale=4, num_feat=8, num_block=4)
        >>> lr, ref = torch.rand(1, 3, 6, 5), torch.rand(1, 3, 32, 28)
        >>> sr, swap = net.forward_with_textures(lr, ref)
        >>> sr.shape, swap.similarity.shape, [tuple(t.shape[1:]) for t in swap.textures]
        (torch.Size([1, 3, 24, 20]), torch.Size([1, 1, 6, 5]), [(256, 6, 5), (128, 12, 10), (64, 24, 20)])
    """

    def __init__(self, scale: int = SCALE, num_feat: int = 64, num_block: int = 16, batch_norm: bool = True,
                 use_similarity: bool = False, global_residual: bool = False, vgg_weights: str | None = None,
                 match_method: str = "chunked", max_elements: int = DEFAULT_MAX_ELEMENTS):
        super().__init__()
        from ..features import VGGFeatureExtractor

        if scale != SCALE:
            raise ValueError(f"SRNTT is x4 only (its VGG levels relu3_1/2_1/1_1 are 1/4, 1/2 and 1 of the output "
                             f"size), got scale={scale}")
        if num_block < 4:
            raise ValueError(f"num_block must be >= 4 (the large scale has num_block // 4 blocks), got {num_block}")
        self.scale, self.global_residual = scale, global_residual
        self.extractor = VGGFeatureExtractor(TEXTURE_LAYERS, weights=vgg_weights)  # frozen
        self.swap = TextureSwap(patch_size=3, padding=0, method=match_method, max_elements=max_elements)
        self.content = ContentExtractor(num_feat, num_block, batch_norm)
        blocks = (num_block, num_block // 2, num_block // 4)
        self.fusion = nn.ModuleList(TextureFusion(num_feat, ch, b, batch_norm)
                                    for ch, b in zip(TEXTURE_CHANNELS, blocks))
        self.upsample = nn.ModuleList([upsample_x2(num_feat), upsample_x2(num_feat)])  # small->medium->large
        self.gates = nn.ModuleList(SimilarityGate() for _ in TEXTURE_LAYERS) if use_similarity else None
        self.tail = nn.Sequential(conv3x3(num_feat, num_feat // 2), nn.Conv2d(num_feat // 2, 3, 1))

    def swap_textures(self, lr: Tensor, ref: Tensor) -> SwapResult:
        """Match LR↑ to Ref↓↑ on relu3_1 and swap the reference's relu3_1 / 2_1 / 1_1 (no gradients)."""
        lr_up, ref, ref_down_up = reference_inputs(lr, ref, self.scale)
        with torch.no_grad():
            query = self.extractor(lr_up)["relu3_1"]  # (N, 256, h, w)
            key = self.extractor(ref_down_up)["relu3_1"]  # (N, 256, H/4, W/4)
            values = self.extractor(ref)  # relu3_1, relu2_1, relu1_1 of the sharp reference
            return self.swap(query, key, [values[name] for name in TEXTURE_LAYERS])

    def generate(self, lr: Tensor, swap: SwapResult) -> Tensor:
        """The generator on the LR image and already swapped maps -> (N, 3, 4h, 4w) in [0, 1]."""
        x = self.content(lr * 2 - 1)  # (N, F, h, w); the official network works on [-1, 1]
        for level, fusion in enumerate(self.fusion):
            texture = swap.textures[level]
            if self.gates is not None:
                texture = self.gates[level](texture, swap.similarity)
            x = fusion(x, texture)  # (N, F, 2^level h, 2^level w)
            if level < len(self.upsample):
                x = self.upsample[level](x)
        x = self.tail(x)  # (N, 3, 4h, 4w)
        if self.global_residual:
            from ..degrade import upscale_bicubic

            return upscale_bicubic(lr, self.scale) + x
        return (torch.tanh(x) + 1) / 2

    def forward_with_textures(self, lr: Tensor, ref: Tensor) -> tuple[Tensor, SwapResult]:
        swap = self.swap_textures(lr, ref)
        return self.generate(lr, swap), swap

    def forward(self, lr: Tensor, ref: Tensor) -> Tensor:
        return self.forward_with_textures(lr, ref)[0]

    def content_sr(self, lr: Tensor) -> Tensor:
        """The content extractor's own x4 output in [0, 1], to pre-train it (the official ``upscale.npz``)."""
        return (self.content.upscale(self.content(lr * 2 - 1)) + 1) / 2

    def freeze_content(self) -> "SRNTT":
        """Freeze the content extractor, as the official training does after pre-training it."""
        for p in self.content.parameters():
            p.requires_grad_(False)
        return self


# ------------------------------------------------------------------------------------------- losses

def weighted_gram_loss(sr_features: Sequence[Tensor], textures: Sequence[Tensor],
                       weights: Sequence[Tensor | None]) -> Tensor:
    r"""SRNTT's texture loss: Gram matrices of weighted feature maps, averaged over the levels.

    .. math:: L_{tex} = \frac{1}{L} \sum_l \frac{1}{4}\,
              \operatorname{mean}\big( (G(\phi_l(I^{SR}) \cdot S_l) - G(M_l \cdot S_l))^2 \big)

    with :func:`srlib.losses.gram_matrix` (normalised by C H W: the official ``/ 4 / (H W C)^2`` on
    unnormalised Gram matrices is the same number) and the mean over the C x C entries.

    Args:
        sr_features: VGG features of the output, one per level (N, C_l, H_l, W_l).
        textures: the swapped maps M_l, same shapes.
        weights: per level (N, 1, H_l, W_l) weighting maps, or None for unweighted Gram matrices.
    """
    from ..losses import gram_matrix

    total = 0.0
    for feat, texture, w in zip(sr_features, textures, weights):
        if w is not None:
            feat, texture = feat * w, texture * w
        total = total + (gram_matrix(feat) - gram_matrix(texture)).square().mean() / 4
    return total / len(textures)


@dataclass
class SRNTTLossWeights:
    reconstruction: float = 1.0  # official
    back_projection: float = 1.0  # official; perceptual variant only
    perceptual: float = 1e-4  # VGG19 relu5_1 MSE (official)
    texture: float = 1e-4  # weighted Gram (official)


class SRNTTLoss(nn.Module):
    """SRNTT's training objective: reconstruction-only (SRNTT-ℓ1/ℓ2) or the perceptual variant.

    The texture term compares VGG features of the output with the swapped maps, so the loss's VGG19
    must be the model's: give the same ``vgg_weights`` (the seeded random default matches too).
    Loss weights are the official ones, tuned there for a [-1, 1] data range and a [0, 255]-input VGG;
    srlib's VGG takes [0, 1] (ImageNet-normalised), so treat them as a starting point.

    Args:
        variant: ``"rec"`` (reconstruction only) or ``"perceptual"`` (+ back-projection, perceptual,
            texture). Default: perceptual.
        reconstruction: ``"l1"`` (SRNTT-ℓ1, the official choice), ``"mse"`` (SRNTT-ℓ2) or a callable.
        weights: :class:`SRNTTLossWeights`.
        weighted_texture: weight the Gram matrices by the similarity map (the paper's texture loss); False is
            the official code's default (plain Gram matrices). Default: True.
        weight_fn: maps the similarity (N, 1, H_l, W_l) to weights; default: the similarity clamped to
            [0, 1]. The official code's optional weighting is ``lambda s: torch.sigmoid(-20 * s + 0.65)``.
        vgg_weights: as the model's ``vgg_weights``.

    ``forward(sr, hr, lr, swap)``: output and target (N, 3, 4h, 4w) in [0, 1], input (N, 3, h, w), the
    :class:`~srlib.texture_match.SwapResult` of the forward pass -> ``{"total": ..., term: value}``.
    """

    def __init__(self, variant: str = "perceptual", reconstruction: str | Callable = "l1",
                 weights: SRNTTLossWeights | None = None, weighted_texture: bool = True,
                 weight_fn: Callable[[Tensor], Tensor] | None = None, vgg_weights: str | None = None):
        super().__init__()
        from ..losses import PerceptualLoss, get_loss

        if variant not in ("rec", "perceptual"):
            raise ValueError(f"variant must be 'rec' (SRNTT-l1/l2) or 'perceptual', got {variant!r}")
        self.variant, self.criterion = variant, get_loss(reconstruction)
        self.weights = weights or SRNTTLossWeights()
        self.weighted_texture = weighted_texture
        self.weight_fn = weight_fn or (lambda s: s.clamp(0, 1))
        self.perceptual = None
        if variant == "perceptual":  # one VGG pass gives relu5_1 and the texture layers
            from ..features import VGGFeatureExtractor

            vgg = VGGFeatureExtractor((*TEXTURE_LAYERS, "relu5_1"), weights=vgg_weights)
            self.perceptual = PerceptualLoss({"relu5_1": 1.0}, criterion="mse", extractor=vgg)

    def forward(self, sr: Tensor, hr: Tensor, lr: Tensor, swap: SwapResult) -> dict[str, Tensor]:
        parts = {"reconstruction": self.weights.reconstruction * self.criterion(sr, hr)}
        if self.perceptual is not None:
            from ..degrade import imresize

            parts["back_projection"] = self.weights.back_projection * F.l1_loss(imresize(sr, scale=1 / SCALE), lr)
            feats, targets = self.perceptual.features(sr, hr)
            parts["perceptual"] = self.weights.perceptual * self.perceptual.criterion(feats["relu5_1"],
                                                                                        targets["relu5_1"])
            w = [self.weight_fn(similarity_at(swap.similarity, t.shape[-2:])) if self.weighted_texture else None
                 for t in swap.textures]
            parts["texture"] = self.weights.texture * weighted_gram_loss(
                [feats[name] for name in TEXTURE_LAYERS], swap.textures, w)
        parts["total"] = sum(parts.values())
        return parts


# -------------------------------------------------------------------------------------- registry

PAPER = "Zhang et al., CVPR 2019 (SRNTT)"


@register_model("srntt", scales=(SCALE,), paper=PAPER, reference_based=True)
def srntt(scale: int = SCALE, **overrides) -> SRNTT:
    """SRNTT (official TF generator): 4,383,494 trainable parameters (+ 555,328 frozen VGG19)."""
    return build(SRNTT, scale, SRNTTConfig(), overrides)


@register_model("srntt_tiny", scales=(SCALE,), paper=PAPER + ", CPU preset", reference_based=True)
def srntt_tiny(scale: int = SCALE, **overrides) -> SRNTT:
    # shrunk: width 64 -> 8, residual blocks 16/8/4 -> 4/2/1; a bicubic global residual instead of the
    # tanh output so that a few hundred steps beat bicubic. The frozen VGG19 front is unchanged.
    return build(SRNTT, scale, SRNTTConfig(num_feat=8, num_block=4, global_residual=True), overrides)
