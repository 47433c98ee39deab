"""SSEN: reference features aligned to the input by stacked deformable convolutions, then fused.

Paper: G. Shim, J. Park, I. S. Kweon, "Robust Reference-based Super-Resolution with Similarity-Aware
Deformable Convolution", CVPR 2020 [shim2020ssen]. **There is no official code**: the authors
released none, and the only public attempt (Slime0519/CVPR_2020_SSEN) is an unfinished personal
one. This file is written from the paper; where the paper leaves a detail open, the choice is
srlib's and says so. Sections cited: Sec. 3, the method (SSEN, its "Dynamic offset estimator" part
and Fig. 3, whose text was checked for this file), and Sec. 4, the experiments (the ablation on the
number of deformable layers, self-similarity SR); the other statements about the paper come from
its abstract and the course's summary of it, not from a line-by-line reading.

The network, on an LR image ``lr`` (N, 3, h, w) and a reference ``ref`` (N, 3, s*h, s*w)::

    f   = extract(head(lr))                 mid-level LR features (N, C, h, w)
    r   = extract(ref_head(unshuffle(ref))) reference features at LR resolution, same extractor
    a   = SSEN(f, r)                        r aligned to f: num_deform stacked similarity-aware
                                            deformable convs, each with its own offset estimator
    x   = fuse([f, a])                      1x1 conv 2C -> C
    x   = x + body(x)                       residual groups of RCABs + conv (long skip), no BN
    sr  = tail(upsample(x))                 sub-pixel upsampler, conv C -> 3

    similarity-aware deformable conv l:   (offset, mask) = estimator_l([f, a_{l-1}]);
                                          a_l = DCNv2(a_{l-1}; offset, mask), a_0 = r
    estimator: conv [f, a] -> E; three stride-2 down-samplings (1/2, 1/4, 1/8); a non-local block at
               each coarse level, coarse to fine (bilinear up-sampling + conv, plus the skip of that
               level); back at full feature resolution a zero-initialised conv predicts the offsets
               (2 * 9 channels) and, through a sigmoid, the masks (9 channels).

Choices, with the paper's section where it has one:

* Alignment in feature space at the LR resolution (Sec. 3): the reconstruction works on LR-sized
  features, so the reference must reach that size. srlib does it **without discarding the
  reference's high frequencies**: the HR reference is rearranged by space-to-depth
  (``pixel_unshuffle(s)``, (3, s*h, s*w) -> (3 s^2, h, w), every HR pixel kept, in channels), then a
  3x3 conv maps it to C channels. (Bicubic downscaling to LR size would throw away exactly the
  detail a reference is for; the unofficial code uses learned stride-2 convs, which keep it too.)
  After the two heads, LR and reference share one feature extractor (srlib choice: the offset
  estimator then compares features of one kind). The price, measured on the SSEN page
  (``book/07_deformable/ssen.ipynb``, its two probes): space-to-depth carries the position *within*
  each LR pixel in the channel index, so a reference moved by a fraction of an LR pixel has its
  detail in other channels, which offsets at LR resolution cannot undo. ``ssen_tiny`` trained on
  perfect references copies them (+1.6 dB over bicubic at the ``cpu`` budget), loses 1.75 dB when
  that reference moves by one HR pixel, and, trained on moved references, closes its masks.
* Three stacked deformable convolutions (Sec. 3 and its ablation in Sec. 4: three is best):
  ``num_deform``. Modulated (DCNv2 masks): the "similarity-aware" part: the mask lets a layer
  weigh down irrelevant reference content, which is what makes SSEN robust to bad references.
  One offset group, so each output pixel has one 3x3 set of sampling points per layer (the
  paper's sampling-point figure: up to 9^3 points after three layers).
* Dynamic offset estimator (Sec. 3, Fig. 3): the concatenated input and reference features,
  down-sampled three times (the multi-scale scheme of optical-flow networks), with three non-local
  blocks (Wang et al., "Non-local Neural Networks", CVPR 2018, embedded Gaussian), one per coarse
  level, so that far displacements can be found; offsets and masks predicted back at full feature
  resolution. Each deformable layer has its own estimator, fed with the LR features and the
  reference features as aligned so far (srlib's reading of Fig. 3). Strided 3x3 convs down,
  bilinear up-sampling + 3x3 conv up, LeakyReLU(0.1) (srlib choices; the paper does not pin them).
  The stack starts as the identity on the reference features and has no activation between its
  layers (srlib choices, see :class:`SimilarityAwareDeformConv` and :class:`SSEN` for why).
* Fusion with mid-level input features in a residual reconstruction network without batch norm
  (Sec. 3): the baseline is RCAN-like, so srlib uses RCAN's own blocks
  (:class:`~srlib.models.rcan.ResidualGroup` of :class:`~srlib.models.rcan.RCAB`) and splits
  RCAN's 10 groups into 2 before the fusion (the shared extractor, "mid-level") and 8 after it.
  The split is srlib's; the paper does not give it in the text read for this file.
* Loss: Charbonnier (``srlib.losses.charbonnier_loss``, ``fit(..., loss="charbonnier")``); the
  paper's optional PatchGAN fine-tuning for perceptual quality is not part of this file.
* Self-similarity SR (Sec. 4): with ``ref=None`` the input is its own reference: ``ref`` becomes the
  bicubic upscaling of ``lr`` (MATLAB ``imresize``) and goes through the same reference path, so
  one network runs both ways. Train a model in the mode it will be used in.
* **A matching guide, not in the paper** (``guide_radius``, off in ``ssen`` and ``ssen_tiny``, on in
  ``ssen_guided_tiny``). Trained on CPU for 4,000 steps, ``ssen_tiny`` shuts its reference out (five
  equal rows on the benchmark); its estimators never learn the offsets, even for plain translations
  (the SSEN page measures why). The guide gives them a start: before the
  deformable stack, the reference features are moved by whole LR pixels to where a local
  correlation search says they belong (:func:`local_displacement`: the input's luma against the
  reference's, downscaled to the input's size, 5x5 patches, +-``guide_radius`` LR pixels), and the
  stack learns what is left. Whole pixels keep the space-to-depth channels in their places. The
  idea is flow-guided deformable alignment (K. C. K. Chan et al., "BasicVSR++", CVPR 2022, whose
  offsets are a flow plus a learned residual; and Chan et al., "Understanding Deformable Alignment
  in Video Super-Resolution", AAAI 2021, on why offsets learned alone are unstable). The search is
  local: its cost grows with the image area times the window, not with the area squared, so the
  point of SSEN (no exhaustive patch matching) stands; a reference further away than the radius
  (the benchmark's H level) gets no help from it. No parameters are added. It makes the reference
  usable, not the training reliable: of three 10,000-step CPU runs of ``ssen_guided_tiny`` that
  differed only in the seed, one learned to use the reference (the zoo's ``ssen_guided_tiny_x4``, seed 0)
  and two shut it out.

Parameters of ``ssen`` (C = 64, 2 + 8 groups x 20 RCABs, r = 16, three layers, estimator width 64):
16,578,644 / 16,771,924 / 16,747,092 at x2 / x3 / x4. This is RCAN's count (15,444,643 /
15,629,283 / 15,592,355) plus the alignment module (1,118,769 = 3 x (deformable conv 36,928 +
offset estimator 335,995)), the fusion conv (8,256) and the reference head (27 s^2 * 64 + 64). No
count can be checked against the paper (no official code, none given in the text read here).
Registered at x2, x3, x4; the paper trains and reports x4 only.

Offsets for figures: each estimator ends in an :class:`~srlib.models.deform_conv.OffsetMask`;
:func:`offset_heads` lists them in order, and a forward hook on each collects ``(offset, mask)``,
(N, 18, h, w) and (N, 9, h, w), in the layout of :mod:`srlib.models.deform_conv`.
Input scaling: [0, 1] minus the DIV2K mean (``img_range`` 1, not RCAN's 255: on [0, 255] features
the non-local softmax would saturate to one-hot at initialisation).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import register_model
from .common import MeanShift, Upsample, build, check_scale, conv3x3
from .deform_conv import ModulatedDeformConv2d, OffsetMask, bilinear_sample
from .rcan import ResidualGroup

NEGATIVE_SLOPE = 0.1  # LeakyReLU of the offset estimator (srlib choice, as flow and alignment networks)


@dataclass
class SSENConfig:
    num_feat: int = 64  # C: width of every feature map (RCAN's, the paper's baseline body)
    num_extract_group: int = 2  # residual groups before the fusion: the shared extractor (srlib split of RCAN's 10)
    num_group: int = 8  # residual groups after the fusion (2 + 8 = RCAN's 10)
    num_block: int = 20  # RCABs per group (RCAN: 20)
    reduction: int = 16  # channel attention squeeze C -> C/r (RCAN: 16)
    num_deform: int = 3  # stacked deformable convs (paper, Sec. 4 ablation: three is best); 0 = no alignment
    offset_feat: int = 64  # E: width of each dynamic offset estimator (srlib: the feature width)
    num_level: int = 3  # down-samplings in the estimator (paper: three)
    non_local: bool = True  # a non-local block at each coarse level (paper: three); False for the ablation
    offset_groups: int = 1  # one set of sampling points per pixel and layer (the paper's 9^3-point figure)
    img_range: float = 1.0  # [0, 1] features: on RCAN's [0, 255] the non-local softmax would saturate
    guide_radius: int = 0  # srlib: > 0 pre-aligns the reference by local matching within +-radius LR px; 0 = paper


# ------------------------------------------------------------------------------------------- blocks

class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local block over all positions, starting as the identity.

    ``z = x + W(softmax_j(theta(x_i) . phi(x_j)) g(x_j))`` (Wang et al. 2018, Eq. 1-3): every position
    gathers the features of every other one, weighted by embedded similarity. theta, phi, g are 1x1
    convs C -> C/2; W is a 1x1 conv C/2 -> C initialised to zero, so the block starts as the identity.
    Keys are not sub-sampled (the estimator's coarse maps are small). The softmax is its own module
    (``.attention``): a forward hook on it collects the (N, HW, HW) attention maps.

    Args:
        num_feat: channels C in and out.
    """

    def __init__(self, num_feat: int):
        super().__init__()
        inter = max(1, num_feat // 2)
        self.theta, self.phi, self.g = (nn.Conv2d(num_feat, inter, 1) for _ in range(3))
        self.attention = nn.Softmax(dim=-1)
        self.out = nn.Conv2d(inter, num_feat, 1)
        nn.init.zeros_(self.out.weight)  # identity at the start (Wang et al. zero-initialise this layer's BN)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        query = self.theta(x).flatten(2).transpose(1, 2)  # (N, HW, C/2)
        key = self.phi(x).flatten(2)  # (N, C/2, HW)
        value = self.g(x).flatten(2).transpose(1, 2)  # (N, HW, C/2)
        attention = self.attention(query @ key)  # (N, HW, HW): each row sums to 1
        y = (attention @ value).transpose(1, 2).reshape(n, -1, h, w)  # (N, C/2, h, w)
        return x + self.out(y)


def conv_act(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    """3x3 conv ('same' padding, or halving the size with stride 2) + LeakyReLU(0.1)."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride, 1), nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True))


class DynamicOffsetEstimator(nn.Module):
    """Offsets and masks of one deformable layer from the LR and reference features (paper, Fig. 3).

    ``[f, r]`` -> conv -> ``num_level`` stride-2 convs (1/2, 1/4, 1/8 of the feature size) -> from the
    coarsest level up: non-local block, bilinear up-sampling to the next finer level, conv, + that
    level's features -> at full resolution, :class:`~srlib.models.deform_conv.OffsetMask` (zero
    initialised: offsets 0 and masks 0.5 at the start). Odd sizes are fine: each up-sampling goes to
    the exact size of the level it returns to.

    Args:
        num_feat: channels C of each of the two inputs.
        offset_feat: width E inside the estimator.
        num_level: down-samplings (paper: 3). Default: 3.
        non_local: a non-local block at every coarse level (paper: yes). Default: True.
        offset_groups: offset groups of the deformable conv fed (3x3, padding 1). Default: 1.

    ``forward(lr_feat, ref_feat)``: two (N, C, h, w) -> ``(offset (N, 18 G, h, w), mask (N, 9 G, h, w))``.
    """

    def __init__(self, num_feat: int, offset_feat: int, num_level: int = 3, non_local: bool = True,
                 offset_groups: int = 1):
        super().__init__()
        if num_level < 1:
            raise ValueError(f"num_level must be >= 1 (the paper down-samples three times), got {num_level}")
        self.entry = conv_act(2 * num_feat, offset_feat)
        self.down = nn.ModuleList(conv_act(offset_feat, offset_feat, stride=2) for _ in range(num_level))
        self.attend = nn.ModuleList((NonLocalBlock(offset_feat) if non_local else nn.Identity())
                                    for _ in range(num_level))  # attend[l - 1] works at 1 / 2^l
        self.up = nn.ModuleList(conv_act(offset_feat, offset_feat) for _ in range(num_level))  # up[l]: to level l
        self.offset_mask = OffsetMask(offset_feat, 3, padding=1, offset_groups=offset_groups)

    def forward(self, lr_feat: torch.Tensor, ref_feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        levels = [self.entry(torch.cat([lr_feat, ref_feat], dim=1))]  # level 0: (N, E, h, w)
        for down in self.down:
            levels.append(down(levels[-1]))  # level l: (N, E, ceil(h / 2^l), ceil(w / 2^l))
        x = self.attend[-1](levels[-1])  # the coarsest level
        for level in reversed(range(len(self.down))):  # back up to level 0, attending at each coarse level
            x = levels[level] + self.up[level](F.interpolate(x, size=levels[level].shape[-2:], mode="bilinear",
                                                             align_corners=False))
            if level > 0:
                x = self.attend[level - 1](x)
        return self.offset_mask(x)


class SimilarityAwareDeformConv(nn.Module):
    """One SSEN layer: a dynamic offset estimator and the modulated deformable conv it steers.

    ``a_l = DCNv2(a_{l-1}; estimator([f, a_{l-1}]))``: the reference features sampled where the
    estimator points, weighted by its masks (which can switch irrelevant content off).

    The layer starts as the identity (srlib choice; the paper gives no initialisation): offsets 0 and
    masks 1/2 (the zero-initialised :class:`~srlib.models.deform_conv.OffsetMask`), a deformable conv
    whose only non-zero weights are the centre tap, 2 I, and no bias. Reference features then reach
    the fusion unchanged from the first step; through three randomly initialised convs with masks 1/2
    they arrive ~40 times weaker (PyTorch's default init shrinks each conv's output ~1.7x), and a
    300-step CPU run of ``ssen_tiny`` did not learn to use even a perfect reference that way.

    Args:
        num_feat, offset_feat, num_level, non_local, offset_groups: see :class:`DynamicOffsetEstimator`.

    ``forward(lr_feat, ref_feat)``: two (N, C, h, w) -> the aligned reference features (N, C, h, w).
    """

    def __init__(self, num_feat: int, offset_feat: int, num_level: int = 3, non_local: bool = True,
                 offset_groups: int = 1):
        super().__init__()
        self.estimator = DynamicOffsetEstimator(num_feat, offset_feat, num_level, non_local, offset_groups)
        self.deform = ModulatedDeformConv2d(num_feat, num_feat, 3, padding=1, offset_groups=offset_groups)
        with torch.no_grad():
            self.deform.weight.zero_()
            self.deform.weight[:, :, 1, 1] = 2 * torch.eye(num_feat)  # x 2: the masks start at 1/2
            self.deform.bias.zero_()

    def forward(self, lr_feat: torch.Tensor, ref_feat: torch.Tensor) -> torch.Tensor:
        offset, mask = self.estimator(lr_feat, ref_feat)
        return self.deform(ref_feat, offset, mask)


class SSEN(nn.Module):
    """Similarity Search and Extraction Network: ``num_deform`` stacked similarity-aware deformable convs.

    Aligns the reference features to the LR features. No activation between the layers (srlib
    choice): each layer re-samples the reference features (a modulated, weighted mix of 9 samples), and
    the stack composes into one re-sampling with up to 9^3 points per output pixel, the paper's
    sampling-point figure; it starts as the identity. With ``num_deform=0`` the reference features
    pass through unaligned (an ablation).

    Args:
        num_feat, offset_feat, num_level, non_local, offset_groups: see :class:`DynamicOffsetEstimator`.
        num_deform: stacked layers (paper: 3). Default: 3.

    ``forward(lr_feat, ref_feat)``: two (N, C, h, w) -> (N, C, h, w).
    """

    def __init__(self, num_feat: int, offset_feat: int, num_deform: int = 3, num_level: int = 3,
                 non_local: bool = True, offset_groups: int = 1):
        super().__init__()
        if num_deform < 0:
            raise ValueError(f"num_deform must be >= 0 (the paper stacks 3), got {num_deform}")
        self.layers = nn.ModuleList(SimilarityAwareDeformConv(num_feat, offset_feat, num_level, non_local,
                                                              offset_groups) for _ in range(num_deform))

    def forward(self, lr_feat: torch.Tensor, ref_feat: torch.Tensor) -> torch.Tensor:
        aligned = ref_feat
        for layer in self.layers:
            aligned = layer(lr_feat, aligned)
        return aligned


# ------------------------------------------------------------------------------------ matching guide

GUIDE_PATCH = 5  # side of the luma patches the guide correlates, in LR pixels
GUIDE_PENALTY = 1e-3  # per squared LR pixel of displacement: ties (flat regions) go to the smallest move


def local_displacement(query: torch.Tensor, key: torch.Tensor, radius: int,
                       patch_size: int = GUIDE_PATCH) -> torch.Tensor:
    """Whole-pixel displacement of the best-correlated ``key`` patch within ``+-radius`` of each pixel.

    Both maps lose their local mean (a box blur of the patch size), then every pixel's
    ``patch_size`` x ``patch_size`` patch is compared by normalised correlation with the key patches
    at the (2 radius + 1)^2 positions around it (zero outside the key: similarity 0). A small
    penalty on the squared displacement breaks ties toward no move, so flat regions stay put.
    The cost grows as the image area times the window, not as the area squared (a local cost
    volume, as in optical-flow networks, not an exhaustive patch search).

    Args:
        query, key: (N, 1, h, w) maps of the same size.
        radius: search radius in pixels, >= 0.
        patch_size: odd patch side. Default: 5.

    Returns:
        (N, 2, h, w) integer-valued (dy, dx): ``key[y + dy, x + dx]`` best matches ``query[y, x]``.
    """
    if query.shape != key.shape or query.dim() != 4 or query.shape[1] != 1:
        raise ValueError(f"expected two (N, 1, h, w) maps of one size, got {tuple(query.shape)} and {tuple(key.shape)}")
    if radius < 0 or patch_size % 2 == 0:
        raise ValueError(f"need radius >= 0 and an odd patch_size, got {radius} and {patch_size}")
    n, _, h, w = query.shape
    pad = patch_size // 2

    def unit_patches(x):
        x = x - F.avg_pool2d(x, patch_size, 1, pad, count_include_pad=False)
        return F.normalize(F.unfold(x, patch_size, padding=pad).view(n, -1, h, w), dim=1)

    with torch.no_grad():
        q, k = unit_patches(query), F.pad(unit_patches(key), (radius,) * 4)
        best = torch.full((n, h, w), -float("inf"), dtype=query.dtype, device=query.device)
        displacement = torch.zeros(n, 2, h, w, dtype=query.dtype, device=query.device)
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                window = k[..., radius + dy:radius + dy + h, radius + dx:radius + dx + w]
                score = (q * window).sum(1) - GUIDE_PENALTY * (dy * dy + dx * dx)
                better = score > best
                best = torch.where(better, score, best)
                displacement[:, 0][better], displacement[:, 1][better] = float(dy), float(dx)
    return displacement


def warp_whole_pixels(x: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
    """``x`` (N, C, h, w) read at ``(y + dy, x + dx)`` (zero outside); ``displacement`` (N, 2, h, w)."""
    n, _, h, w = x.shape
    rows = torch.arange(h, dtype=x.dtype, device=x.device).view(1, h, 1)
    cols = torch.arange(w, dtype=x.dtype, device=x.device).view(1, 1, w)
    py = (rows + displacement[:, 0]).reshape(n, -1)
    px = (cols + displacement[:, 1]).reshape(n, -1)
    return bilinear_sample(x, py, px).view_as(x)


# -------------------------------------------------------------------------------------------- model

class SSENNet(nn.Module):
    """Reference-based SR with SSEN: an RCAN-like network that fuses aligned reference features.

    Args:
        scale: 2^n or 3 (registered: 2, 3, 4; the paper: x4).
        num_feat: channels C. Default: 64.
        num_extract_group: residual groups of the shared extractor (before the fusion). Default: 2.
        num_group: residual groups of the reconstruction (after the fusion). Default: 8.
        num_block: RCABs per group. Default: 20.
        reduction: channel attention squeeze ratio. Default: 16.
        num_deform: stacked deformable layers of SSEN (0 = unaligned reference features). Default: 3.
        offset_feat: width of the offset estimators. Default: 64.
        num_level: down-samplings in each offset estimator. Default: 3.
        non_local: non-local blocks in the offset estimators. Default: True.
        offset_groups: offset groups of the deformable convs (must divide C). Default: 1.
        img_range: the mean-shifted images are multiplied by this. Default: 1.
        guide_radius: > 0 moves the reference features by whole LR pixels to the best local match
            within this radius before the deformable stack (srlib's matching guide, not in the
            paper; see the module docstring). Default: 0 (off, as the paper).

    ``forward(lr, ref=None)``: LR (N, 3, h, w) RGB in [0, 1] and the HR-sized reference
    (N, 3, scale*h, scale*w) in [0, 1], or None for self-similarity SR (the input is its own
    reference) -> (N, 3, scale*h, scale*w), not clamped.

    Example:
        >>> import torch
        >>> net = SSENNet(scale=2, num_feat=8, num_extract_group=1, num_group=1, num_block=1, reduction=4,
        ...               offset_feat=8)
        >>> lr, ref = torch.rand(1, 3, 6, 5), torch.rand(1, 3, 12, 10)
        >>> net(lr, ref).shape, net(lr).shape            # with a reference, and self-similarity SR
        (torch.Size([1, 3, 12, 10]), torch.Size([1, 3, 12, 10]))
        >>> len(offset_heads(net))                         # one offset/mask head per deformable layer
        3
    """

    def __init__(self, scale: int, num_feat: int = 64, num_extract_group: int = 2, num_group: int = 8,
                 num_block: int = 20, reduction: int = 16, num_deform: int = 3, offset_feat: int = 64,
                 num_level: int = 3, non_local: bool = True, offset_groups: int = 1, img_range: float = 1.0,
                 guide_radius: int = 0):
        super().__init__()
        if guide_radius < 0:
            raise ValueError(f"guide_radius must be >= 0 (0: no matching guide, the paper), got {guide_radius}")
        self.guide_radius = guide_radius
        check_scale(scale, "2^n and 3 (SSEN's registered scales: 2, 3, 4)")
        if num_feat % offset_groups:
            raise ValueError(f"offset_groups={offset_groups} must divide num_feat={num_feat}")
        self.scale, self.img_range = scale, img_range
        self.sub_mean = MeanShift(sign=-1)
        self.head = conv3x3(3, num_feat)
        self.ref_head = conv3x3(3 * scale * scale, num_feat)  # on the space-to-depth reference
        self.extract = nn.Sequential(*[ResidualGroup(num_feat, num_block, reduction) for _ in range(num_extract_group)])
        self.align = SSEN(num_feat, offset_feat, num_deform, num_level, non_local, offset_groups)
        self.fuse = nn.Conv2d(2 * num_feat, num_feat, 1)
        self.body = nn.Sequential(*[ResidualGroup(num_feat, num_block, reduction) for _ in range(num_group)],
                                  conv3x3(num_feat, num_feat))
        self.upsample = Upsample(scale, num_feat)
        self.tail = conv3x3(num_feat, 3)
        self.add_mean = MeanShift(sign=+1)

    def reference_features(self, lr: torch.Tensor, ref: torch.Tensor | None) -> torch.Tensor:
        """The reference's features at LR resolution, (N, C, h, w), moved by the matching guide when
        ``guide_radius`` > 0; ``ref=None`` uses the input itself (aligned by construction: no guide)."""
        from ..degrade import upscale_bicubic

        n, _, h, w = lr.shape
        guided = self.guide_radius > 0 and ref is not None
        if ref is None:  # self-similarity SR: the bicubic upscaling of the input is the reference
            ref = upscale_bicubic(lr, self.scale)
        expected = (n, 3, self.scale * h, self.scale * w)
        if tuple(ref.shape) != expected:
            raise ValueError(f"ref must be the HR-sized reference (N, 3, scale*h, scale*w) = {expected} for LR "
                             f"{tuple(lr.shape)} at x{self.scale}, got {tuple(ref.shape)}: crop it, or resize it "
                             f"with srlib.degrade.imresize(ref, size={expected[2:]}); ref=None uses the input "
                             f"as its own reference")
        x = self.sub_mean(ref) * self.img_range
        x = F.pixel_unshuffle(x, self.scale)  # (N, 3 s^2, h, w): every HR pixel kept, in channels
        feat = self.extract(self.ref_head(x))  # (N, C, h, w)
        if guided:
            feat = warp_whole_pixels(feat, self.guide(lr, ref))
        return feat

    def guide(self, lr: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """(N, 2, h, w) whole-LR-pixel displacement of the reference: luma of the input against luma of
        the reference downscaled to its size, :func:`local_displacement` within ``guide_radius``."""
        from ..color import rgb_to_y
        from ..degrade import bicubic_downscale

        key = bicubic_downscale(ref, self.scale, quantize=False)
        return local_displacement(rgb_to_y(lr), rgb_to_y(key), self.guide_radius)

    def forward(self, lr: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"expected LR images (N, 3, h, w), got shape {tuple(lr.shape)}")
        feat = self.extract(self.head(self.sub_mean(lr) * self.img_range))  # (N, C, h, w): mid-level features
        aligned = self.align(feat, self.reference_features(lr, ref))  # (N, C, h, w)
        x = self.fuse(torch.cat([feat, aligned], dim=1))  # (N, 2C, h, w) -> (N, C, h, w)
        x = x + self.body(x)  # long skip over the reconstruction groups
        x = self.tail(self.upsample(x))  # (N, 3, s*h, s*w)
        return self.add_mean(x / self.img_range)


def offset_heads(model: nn.Module) -> list[OffsetMask]:
    """The offset/mask heads of every deformable layer in ``model``, in forward order.

    A forward hook on each receives ``(offset, mask)``: (N, 2 * 9 * G, h, w) and (N, 9 * G, h, w).
    """
    return [m for m in model.modules() if isinstance(m, OffsetMask)]


SCALES = (2, 3, 4)
PAPER = "Shim et al., CVPR 2020 (SSEN)"


@register_model("ssen", scales=SCALES, paper=PAPER, reference_based=True)
def ssen(scale: int = 4, **overrides) -> SSENNet:
    """SSEN on an RCAN body (2 + 8 groups x 20 RCABs x 64, three deformable layers): 16,578,644 /
    16,771,924 / 16,747,092 parameters at x2 / x3 / x4."""
    return build(SSENNet, scale, SSENConfig(), overrides)


TINY = dict(num_feat=12, num_extract_group=1, num_group=1, num_block=2, reduction=4, offset_feat=8)
GUIDE_RADIUS_TINY = 5  # LR px: covers the benchmark's XH warps (a shift of 6 HR px, a 4-degree turn, a 5 % zoom)


@register_model("ssen_tiny", scales=SCALES, paper=PAPER + ", CPU preset", reference_based=True)
def ssen_tiny(scale: int = 4, **overrides) -> SSENNet:
    # shrunk: width 64 -> 12, groups 2 + 8 -> 1 + 1, RCABs 20 -> 2, estimator width 64 -> 8;
    # reduction 16 -> 4 so the squeeze keeps 3 channels. Three deformable layers and three estimator
    # levels with non-local blocks are kept: they are what the chapter is about.
    return build(SSENNet, scale, SSENConfig(**TINY), overrides)


@register_model("ssen_guided_tiny", scales=SCALES, paper=PAPER + ", CPU preset with srlib's matching guide",
                reference_based=True)
def ssen_guided_tiny(scale: int = 4, **overrides) -> SSENNet:
    """``ssen_tiny`` with the matching guide on (``guide_radius=5``): the same parameters, the one the zoo ships."""
    return build(SSENNet, scale, SSENConfig(**TINY, guide_radius=GUIDE_RADIUS_TINY), overrides)
