"""TTSR: a texture transformer that attends from the input to a reference image (x4).

Paper: F. Yang, H. Yang, J. Fu, H. Lu, B. Guo, "Learning Texture Transformer Network for Image
Super-Resolution", CVPR 2020 [yang2020ttsr]. Official code: researchmm/TTSR (``model/TTSR.py``,
``LTE.py``, ``SearchTransfer.py``, ``MainNet.py``, ``loss/loss.py``).

The texture transformer, with queries, keys and values taken by a *learnable* texture extractor::

    lr_up, ref, ref_du = LR↑, Ref, Ref↓↑                 bicubic (srlib.texture_match.reference_inputs)
    Q = LTE(lr_up)[lv3]; K = LTE(ref_du)[lv3]            LTE = VGG19 up to relu3_1, trainable
    V = LTE(ref)[lv1, lv2, lv3]                          relu1_1 (1x), relu2_1 (1/2), relu3_1 (1/4)
    relevance r_ij = <q_i/|q_i|, k_j/|k_j|>              3x3 patches, stride 1, padding 1
    hard attention h_i = argmax_j r_ij                   T_l = fold(select(unfold(V_l), h)) / 9
    soft attention S = max_j r_ij                        (N, 1, h, w), at LR resolution
    fused: F + conv3x3([F, T_l]) * S                     S upsampled x2 / x4 for the finer levels

The backbone (``MainNet``) works on LR features in [-1, 1] and grows three streams with
cross-scale feature integration (CSFI); ``soft(x, T, S) = x + conv3x3([x, T]) * S``::

    F   = SFE(lr)                          conv+ReLU, 16 RBs, conv, + skip
    x1  = soft(F, T3, S)                   then x1 + (16 RBs + conv)(x1)                     (1x)
    x2  = soft(ps2(x1), T2, S↑2)           CSFI2 between x1 and x2, then 8 RBs + conv per stream (2x)
    x3  = soft(ps2(x2), T1, S↑4)           CSFI3 among x1, x2, x3, then 4 RBs + conv per stream  (4x)
    sr  = tail(merge(x1, x2, x3))          x1, x2 brought to 4x, merge conv, 64 -> 32 -> 3, clamp to [-1, 1]

CSFI: a coarser stream reaches a finer one by bicubic upsampling + 1x1 conv + ReLU, a finer one
reaches a coarser one by stride-2 3x3 convs + ReLU (two for x4), and each stream merges itself with
the others by a 3x3 conv + ReLU on the concatenation.

Hard attention in detail (TTSR ``SearchTransfer``; :mod:`srlib.texture_match` does it for both
chapter-6 models): the value patches are 3x3 / stride 1 / padding 1 at lv3, **6x6 / 2 / 2** at lv2
and **12x12 / 4 / 4** at lv1, so that all three patch grids are the lv3 grid; after folding, each level
is divided by **9**, the number of patches covering an interior pixel at every level (border pixels
have fewer, so they come out a little darker: ``fold_divisor=None`` averages exactly instead).

Parameters: MainNet **6,174,275** and LTE 555,328, trainable total **6,729,603**, as the reference
sheet (an instantiated official model). The official model also holds ``LTE_copy`` (a frozen copy of
the LTE for the transferal perceptual loss, 555,340 with its MeanShift conv) and 12 MeanShift
parameters: ``parameters()`` there totals 7,284,955. Here the TPL loss calls the LTE with its
weights detached (:func:`torch.func.functional_call`), which is what the copy computes, and the
ImageNet normalisation is a buffer, so ``count_parameters(model)`` is 6,729,603 with every parameter
trainable. x4 only, as the paper.

Losses (:class:`TTSRLoss`): ``variant="rec"`` is TTSR-rec (L1 only); ``variant="all"`` adds the
perceptual loss (VGG19 relu5_1, MSE, 1e-2) and the transferal perceptual loss (1e-2):
:meth:`TTSR.transferal_perceptual_loss`. The paper writes the TPL with Gram matrices; the
official code compares the LTE features of the output with the transferred textures T directly
(MSE; its Gram function is unused), with the sigmoid of S as an optional weight that is off by
default: srlib follows the code and offers ``gram=True`` for the paper's form. The adversarial term
(WGAN-GP, 1e-3) needs a discriminator loop and is not part of it.
Training (official): batch 9, LR 40x40, reference 160x160, Adam (0.9, 0.999), lr 1e-4 for the
MainNet and **1e-5 for the LTE** (:meth:`TTSR.param_groups`), 2 reconstruction-only epochs, then 50.

Options that differ from the official model (:class:`TTSRConfig`): ``train_lte=False`` freezes the
LTE (the CPU preset); ``global_residual`` adds the bicubic upscaling of the input before the clamp
(the CPU preset, to beat bicubic within a short budget); the LTE's VGG19 weights (``lte_weights``)
are random unless given, since ImageNet weights cannot be downloaded here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import register_model
from .common import ResBlock, build, conv3x3
from ..texture_match import (DEFAULT_MAX_ELEMENTS, SwapResult, TextureSwap, reference_inputs, similarity_at)

SCALE = 4  # LR↑ is 4x the input, so LTE level 3 (1/4) is at LR resolution: x4 only
LEVELS = ("relu3_1", "relu2_1", "relu1_1")  # lv3, lv2, lv1: coarse to fine, the MainNet's order
LEVEL_CHANNELS = (256, 128, 64)


@dataclass
class TTSRConfig:
    num_feat: int = 64  # n_feats (official)
    num_block: tuple[int, int, int, int] = (16, 16, 8, 4)  # '16+16+8+4': SFE, stage 1, stage 2 / 3 per stream
    res_scale: float = 1.0  # residual scaling of every RB (official: 1)
    train_lte: bool = True  # the learnable texture extractor (official; lr 1e-5); False freezes it
    lte_weights: str | None = None  # VGG19 init of the LTE: None random (no download here), "selfsup", a file
    fold_divisor: float | None = 9.0  # TTSR divides folded textures by 9; None: exact overlap average
    global_residual: bool = False  # False: official; True: + bicubic(LR) before the clamp (CPU preset)
    match_method: str = "chunked"  # srlib.texture_match method: same result as "vectorised", bounded memory
    max_elements: int = DEFAULT_MAX_ELEMENTS  # floats of the correlation volume computed at once


# ------------------------------------------------------------------------------------------- blocks

def residual_stage(num_feat: int, num_block: int, res_scale: float) -> nn.Sequential:
    """``num_block`` residual blocks then a conv; used as ``x + stage(x)`` (TTSR's RBs + ``conv*_tail``)."""
    return nn.Sequential(*[ResBlock(num_feat, res_scale=res_scale) for _ in range(num_block)],
                         conv3x3(num_feat, num_feat))


class SoftAttention(nn.Module):
    """Fuse transferred texture into features, weighted by the relevance: ``x + conv([x, T]) * S``.

    The relevance ``S`` (N, 1, h, w) at LR resolution is bicubically upsampled to the level's size.
    It multiplies the fused *residual*: where the reference has no good match, the features pass
    unchanged. A forward hook receives ``(x, texture, similarity)`` and the output.

    Args:
        num_feat: channels of ``x``.
        texture_ch: channels of the texture ``T`` at this level.
    """

    def __init__(self, num_feat: int, texture_ch: int):
        super().__init__()
        self.conv = conv3x3(num_feat + texture_ch, num_feat)

    def forward(self, x: Tensor, texture: Tensor, similarity: Tensor) -> Tensor:
        residual = self.conv(torch.cat([x, texture], dim=1))  # (N, F + C_t, H, W) -> (N, F, H, W)
        return x + residual * similarity_at(similarity, x.shape[-2:])


def resampler(num_feat: int, steps: int) -> nn.Sequential:
    """CSFI's path between streams ``|steps|`` octaves apart: finer (``steps > 0``) by bicubic x2^steps,
    1x1 conv, ReLU; coarser (``steps < 0``) by ``-steps`` stride-2 3x3 convs, each with a ReLU."""
    if steps > 0:
        return nn.Sequential(nn.Upsample(scale_factor=2 ** steps, mode="bicubic", align_corners=False),
                             nn.Conv2d(num_feat, num_feat, 1), nn.ReLU(inplace=True))
    layers: list[nn.Module] = []
    for _ in range(-steps):
        layers += [nn.Conv2d(num_feat, num_feat, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class CrossScaleFusion(nn.Module):
    """CSFI: every output stream merges itself with every other stream resampled to its size.

    Stream ``i`` is ``2^i`` times finer than stream 0. Output stream ``i`` is
    ``ReLU(conv3x3([x_i, x_j resampled for j != i in order]))``. ``CSFI2`` / ``CSFI3`` of TTSR are
    ``CrossScaleFusion(F, 2)`` / ``(F, 3)``; its merge tail is ``CrossScaleFusion(F, 3, outputs=(2,))``.

    Args:
        num_feat: channels of every stream.
        num_streams: how many streams come in.
        outputs: which streams go out. Default: all.

    ``forward(*streams)``: (N, F, 2^i h, 2^i w) for i = 0 .. num_streams - 1 -> a tuple of the outputs.
    """

    def __init__(self, num_feat: int, num_streams: int, outputs: Sequence[int] | None = None):
        super().__init__()
        self.outputs = tuple(range(num_streams)) if outputs is None else tuple(outputs)
        self.num_streams = num_streams
        self.paths = nn.ModuleDict({f"{j}to{i}": resampler(num_feat, i - j) for i in self.outputs
                                    for j in range(num_streams) if j != i})
        self.merge = nn.ModuleList(nn.Sequential(conv3x3(num_streams * num_feat, num_feat), nn.ReLU(inplace=True))
                                   for _ in self.outputs)

    def forward(self, *streams: Tensor) -> tuple[Tensor, ...]:
        out = []
        for merge, i in zip(self.merge, self.outputs):
            parts = [streams[i]] + [self.paths[f"{j}to{i}"](streams[j]) for j in range(self.num_streams) if j != i]
            out.append(merge(torch.cat(parts, dim=1)))  # (N, S*F, H_i, W_i) -> (N, F, H_i, W_i)
        return tuple(out)


class MainNet(nn.Module):
    """TTSR's backbone: LR features, textures fused at three scales by soft attention, CSFI, merge tail.

    Args:
        num_feat: width F.
        num_block: residual blocks of (SFE, stage 1, stage 2 per stream, stage 3 per stream).
        res_scale: residual scaling of the RBs.

    ``forward(x, similarity, textures)``: x (N, 3, h, w) in [-1, 1], S (N, 1, h, w), textures
    (T3, T2, T1) of (N, 256, h, w), (N, 128, 2h, 2w), (N, 64, 4h, 4w) -> (N, 3, 4h, 4w), not clamped.
    """

    def __init__(self, num_feat: int, num_block: Sequence[int], res_scale: float = 1.0):
        super().__init__()
        if len(num_block) != 4 or min(num_block) < 1:
            raise ValueError(f"num_block must be 4 positive counts (SFE, stage 1, 2, 3), e.g. (16, 16, 8, 4), "
                             f"got {num_block}")
        f = num_feat
        self.head = nn.Sequential(conv3x3(3, f), nn.ReLU(inplace=True))
        self.sfe = residual_stage(f, num_block[0], res_scale)  # shallow feature extraction, + skip
        self.soft = nn.ModuleList(SoftAttention(f, ch) for ch in LEVEL_CHANNELS)  # one per scale
        self.up = nn.ModuleList(nn.Sequential(conv3x3(f, 4 * f), nn.PixelShuffle(2), nn.ReLU(inplace=True))
                                for _ in range(2))  # 1x -> 2x -> 4x: the new, finer stream
        self.csfi = nn.ModuleList([CrossScaleFusion(f, 2), CrossScaleFusion(f, 3)])
        # stage s has s + 1 streams, each with its own residual stage
        self.stages = nn.ModuleList(nn.ModuleList(residual_stage(f, num_block[s + 1], res_scale) for _ in range(s + 1))
                                    for s in range(3))
        self.merge = CrossScaleFusion(f, 3, outputs=(2,))
        self.tail = nn.Sequential(conv3x3(f, f // 2), nn.Conv2d(f // 2, 3, 1))

    def forward(self, x: Tensor, similarity: Tensor, textures: Sequence[Tensor]) -> Tensor:
        x = self.head(x)
        streams = [x + self.sfe(x)]  # stream 0: (N, F, h, w)
        for s in range(3):
            if s > 0:
                streams.append(self.up[s - 1](streams[-1]))  # the new finest stream: (N, F, 2^s h, 2^s w)
            streams[-1] = self.soft[s](streams[-1], textures[s], similarity)  # texture of this scale
            inputs = self.csfi[s - 1](*streams) if s > 0 else streams  # exchange across scales
            streams = [skip + stage(y) for skip, y, stage in zip(streams, inputs, self.stages[s])]
        return self.tail(self.merge(*streams)[0])  # (N, 3, 4h, 4w)


class LearnableTextureExtractor(nn.Module):
    """TTSR's LTE: VGG19 up to relu3_1 (``srlib.features.VGGFeatureExtractor``) with trainable weights.

    ``forward(x)``: RGB (N, 3, H, W) in [0, 1] (normalised with the ImageNet statistics inside) ->
    ``{"relu3_1": (N, 256, H/4, W/4), "relu2_1": (N, 128, H/2, W/2), "relu1_1": (N, 64, H, W)}``.

    Args:
        weights: initial VGG19 weights (``None`` random, ``"selfsup"``, a torchvision file).
        trainable: unfreeze the weights (TTSR); False keeps them frozen. Default: True.
    """

    def __init__(self, weights: str | None = None, trainable: bool = True):
        super().__init__()
        from ..features import VGGFeatureExtractor

        self.vgg = VGGFeatureExtractor(LEVELS, weights=weights)
        self.vgg.requires_grad_(trainable)  # the feature network freezes itself; TTSR learns it

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.vgg(x)


# -------------------------------------------------------------------------------------------- model

class TTSR(nn.Module):
    """Texture Transformer Network for SR: ``forward(lr, ref)``, x4.

    Args:
        scale: must be 4.
        num_feat: width of the MainNet. Default: 64.
        num_block: residual blocks (SFE, stage 1, stage 2, stage 3). Default: (16, 16, 8, 4).
        res_scale: residual scaling. Default: 1.0.
        train_lte: train the texture extractor (TTSR). Default: True.
        lte_weights: VGG19 weights to start the LTE from. Default: None (random).
        fold_divisor: divide folded textures by this (TTSR: 9) or, ``None``, by the exact overlap count.
        global_residual: add bicubic(LR) to the output before the clamp. Default: False.
        match_method, max_elements: see :mod:`srlib.texture_match`.

    ``forward(lr, ref)``: LR (N, 3, h, w) RGB in [0, 1] and a reference (N or 1, 3, H, W) in [0, 1] of
    any size with H, W >= 4 -> (N, 3, 4h, 4w) in [0, 1] (clamped, as TTSR clamps to [-1, 1]).
    :meth:`forward_with_textures` also returns the :class:`~srlib.texture_match.SwapResult`: the soft
    attention map S and the transferred textures (T3, T2, T1), for the TPL loss and for figures.

    Example:
        >>> net = TTSR(num_feat=8, num_block=(1, 1, 1, 1))
        >>> sr, swap = net.forward_with_textures(torch.rand(2, 3, 6, 5), torch.rand(1, 3, 20, 24))
        >>> sr.shape, swap.similarity.shape, [tuple(t.shape[1:]) for t in swap.textures]
        (torch.Size([2, 3, 24, 20]), torch.Size([2, 1, 6, 5]), [(256, 6, 5), (128, 12, 10), (64, 24, 20)])
    """

    def __init__(self, scale: int = SCALE, num_feat: int = 64, num_block: Sequence[int] = (16, 16, 8, 4),
                 res_scale: float = 1.0, train_lte: bool = True, lte_weights: str | None = None,
                 fold_divisor: float | None = 9.0, global_residual: bool = False, match_method: str = "chunked",
                 max_elements: int = DEFAULT_MAX_ELEMENTS):
        super().__init__()
        if scale != SCALE:
            raise ValueError(f"TTSR is x4 only (LTE level 3 of the 4x-upsampled input is at LR resolution), "
                             f"got scale={scale}")
        self.scale, self.global_residual = scale, global_residual
        self.lte = LearnableTextureExtractor(lte_weights, trainable=train_lte)
        self.transfer = TextureSwap(patch_size=3, padding=1, divisor=fold_divisor, method=match_method,
                                    max_elements=max_elements)
        self.main = MainNet(num_feat, tuple(num_block), res_scale)

    def forward_with_textures(self, lr: Tensor, ref: Tensor) -> tuple[Tensor, SwapResult]:
        lr_up, ref, ref_down_up = reference_inputs(lr, ref, self.scale)
        n = lr.shape[0]
        query = self.lte(lr_up)["relu3_1"]  # Q: (N, 256, h, w)
        both = self.lte(torch.cat([ref_down_up, ref]))  # one pass for K (blurred) and V (sharp): (2N, ...)
        swap = self.transfer(query, both["relu3_1"][:n], [both[name][n:] for name in LEVELS])
        x = self.main(lr * 2 - 1, swap.similarity, swap.textures)  # TTSR works on [-1, 1]
        if self.global_residual:
            from ..degrade import upscale_bicubic

            x = x + upscale_bicubic(lr, self.scale) * 2 - 1
        return (x.clamp(-1, 1) + 1) / 2, swap

    def forward(self, lr: Tensor, ref: Tensor) -> Tensor:
        return self.forward_with_textures(lr, ref)[0]

    def transferal_perceptual_loss(self, sr: Tensor, swap: SwapResult, use_similarity: bool = False,
                                   gram: bool = False) -> Tensor:
        """TPL: the LTE features of the output against the transferred textures, over the three levels.

        The LTE runs with its current weights detached (TTSR's ``LTE_copy``): the loss trains the
        MainNet through ``sr`` and the LTE through the textures ``T``, not by moving the yardstick.

        Args:
            sr: the output (N, 3, 4h, 4w) in [0, 1].
            swap: the :class:`~srlib.texture_match.SwapResult` of the same forward pass.
            use_similarity: weight both by ``sigmoid(S)`` (TTSR's ``tpl_use_S``; off by default there).
            gram: compare Gram matrices (the paper's formula) instead of the features (the code).

        Returns:
            The mean over the levels of the MSE.
        """
        from ..losses import gram_matrix

        frozen = {name: p.detach() for name, p in self.lte.named_parameters()}
        feats = torch.func.functional_call(self.lte, frozen, (sr,))
        total = 0.0
        for name, texture in zip(LEVELS, swap.textures):
            feat = feats[name]
            if use_similarity:
                weight = torch.sigmoid(similarity_at(swap.similarity, feat.shape[-2:]))
                feat, texture = feat * weight, texture * weight
            if gram:
                feat, texture = gram_matrix(feat), gram_matrix(texture)
            total = total + F.mse_loss(feat, texture)
        return total / len(LEVELS)

    def param_groups(self, lr: float = 1e-4, lte_lr: float = 1e-5) -> list[dict]:
        """Adam parameter groups as TTSR trains: the MainNet at ``lr``, the LTE 10x slower."""
        groups = [{"params": list(self.main.parameters()), "lr": lr}]
        lte = [p for p in self.lte.parameters() if p.requires_grad]
        return groups + ([{"params": lte, "lr": lte_lr}] if lte else [])


# ------------------------------------------------------------------------------------------- losses

@dataclass
class TTSRLossWeights:
    reconstruction: float = 1.0  # L1 (official rec_w)
    perceptual: float = 1e-2  # VGG19 relu5_1 MSE (official per_w)
    tpl: float = 1e-2  # transferal perceptual loss (official tpl_w)


class TTSRLoss(nn.Module):
    """TTSR's objective without the adversarial term: TTSR-rec (``"rec"``) or with the perceptual and
    transferal perceptual losses (``"all"``).

    Args:
        variant: ``"rec"`` or ``"all"``. Default: all.
        weights: :class:`TTSRLossWeights`.
        vgg_weights: VGG19 of the perceptual loss (``None`` random, ``"selfsup"``, a file).
        tpl_use_similarity, tpl_gram: see :meth:`TTSR.transferal_perceptual_loss`.

    ``forward(model, sr, hr, swap)``: the TTSR model, its output and target (N, 3, 4h, 4w) in [0, 1],
    and the :class:`~srlib.texture_match.SwapResult` of the forward pass -> ``{"total": ..., term: value}``.
    """

    def __init__(self, variant: str = "all", weights: TTSRLossWeights | None = None, vgg_weights: str | None = None,
                 tpl_use_similarity: bool = False, tpl_gram: bool = False):
        super().__init__()
        from ..losses import PerceptualLoss

        if variant not in ("rec", "all"):
            raise ValueError(f"variant must be 'rec' (TTSR-rec) or 'all', got {variant!r}")
        self.variant, self.weights = variant, weights or TTSRLossWeights()
        self.tpl_use_similarity, self.tpl_gram = tpl_use_similarity, tpl_gram
        self.perceptual = PerceptualLoss({"relu5_1": 1.0}, weights=vgg_weights) if variant == "all" else None

    def forward(self, model: TTSR, sr: Tensor, hr: Tensor, swap: SwapResult) -> dict[str, Tensor]:
        parts = {"reconstruction": self.weights.reconstruction * F.l1_loss(sr, hr)}
        if self.perceptual is not None:
            parts["perceptual"] = self.weights.perceptual * self.perceptual(sr, hr)
            parts["tpl"] = self.weights.tpl * model.transferal_perceptual_loss(sr, swap, self.tpl_use_similarity,
                                                                              self.tpl_gram)
        parts["total"] = sum(parts.values())
        return parts


# -------------------------------------------------------------------------------------- registry

PAPER = "Yang et al., CVPR 2020 (TTSR)"


@register_model("ttsr", scales=(SCALE,), paper=PAPER, reference_based=True)
def ttsr(scale: int = SCALE, **overrides) -> TTSR:
    """TTSR: MainNet 6,174,275 + LTE 555,328 = 6,729,603 trainable parameters."""
    return build(TTSR, scale, TTSRConfig(), overrides)


@register_model("ttsr_tiny", scales=(SCALE,), paper=PAPER + ", CPU preset", reference_based=True)
def ttsr_tiny(scale: int = SCALE, **overrides) -> TTSR:
    # shrunk: width 64 -> 8, residual blocks 16+16+8+4 -> 2+2+1+1; the LTE frozen (its 555k VGG19
    # weights and their backward pass would dwarf the rest; train_lte=True restores it) and a bicubic
    # global residual so that a few hundred steps beat bicubic.
    return build(TTSR, scale, TTSRConfig(num_feat=8, num_block=(2, 2, 1, 1), train_lte=False, global_residual=True),
                 overrides)
