"""SAN: second-order channel attention and region-level non-local attention.

Paper: T. Dai, J. Cai, Y. Zhang, S.-T. Xia, L. Zhang, "Second-Order Attention Network for Single
Image Super-Resolution", CVPR 2019 [dai2019san]. Official code: daitao/SAN (``TrainCode/model/san.py``;
the covariance pooling and the matrix square root come from MPN-COV,
``TrainCode/model/MPNCOV/python/MPNCOV.py``).

RCAN's skeleton with a different body::

    x = head(sub_mean(lr) * 255)                         conv 3x3, 3 -> C
    f = RL-NL(x)                                         region-level non-local, 2x2 regions
    f_g = LSRAG_g(f_{g-1}) + gamma * f_0   (g = 1..G)    share-source residual: f_0 = RL-NL(x),
                                                         one learnable scalar gamma (init 0) for all
    y = add_mean(tail(upsample(RL-NL(f_G) + x)) / 255)   the SAME RL-NL module again, long skip

    LSRAG(x) = x + conv(SOCA(RB_M(... RB_1(x))))         RB = conv-ReLU-conv + x (no attention inside)
    SOCA(x)  = x * sigmoid(W_up ReLU(W_down z)),         z = row mean of Sigma^(1/2),
               Sigma = covariance of the C channels over the H*W positions

Second-order pooling (``SecondOrderPooling``), as MPN-COV: the centred covariance
``Sigma = X I_bar X^T`` with ``I_bar = (I - 11^T / M) / M``, M = H*W; its square root by
``iterations`` = 5 coupled Newton-Schulz steps on ``A = Sigma / tr(Sigma)`` (pre-normalisation: the
eigenvalues of A lie in [0, 1], where the iteration converges), multiplied back by ``sqrt(tr Sigma)``
(post-compensation); then the mean over rows gives one number per channel. Feature maps of 1000 px or
more are centre-cropped to 1000 first, as the original. The original writes the backward by hand;
here autograd differentiates the same iteration.

Region-level non-local (RL-NL): the feature map is cut into 2x2 regions; each region goes through one
embedded-Gaussian non-local block (1x1 convs theta, phi, g to C/8 channels, softmax attention, 1x1
conv W back to C, zero-initialised so the block starts as the identity, + x). Keys and values are
max-pooled 2x2: the original passes ``sub_sample=False`` but its 2-D branch rebinds that name to
``nn.Upsample`` (truthy), so the pooling is always on. Feature maps must be at least 4x4.

Parameters with G=20 LSRAGs x M=10 RBs x C=64, r=16: 15,674,732 / 15,859,372 / 15,822,444 /
15,970,156 at x2 / x3 / x4 / x8. The reference counts of the official model (15,712,776 /
15,897,416 / 15,860,488 / 16,008,200) are 38,044 higher, all in modules the official ``forward``
never calls, left out here: ``SAN.conv_last`` (36,928), the ``gamma`` of each LSRAG (20; only
``SAN.gamma`` is used), and a SOCA built inside the non-local wrapper (1,096). MeanShift is a buffer
(the official 1x1-conv MeanShift adds 24).

Attention from outside: each SOCA is a :class:`~srlib.models.rcan.ChannelAttention` (only its pooling
differs), so its ``.gate`` sigmoid yields (N, C, 1, 1) weights to a forward hook; each non-local
block's ``.attend`` softmax yields (N, h*w, (h//2)*(w//2)) maps, four regions per call, two calls
(before and after the trunk) per forward. Under bfloat16 autocast the pooling runs in float32.
Training notes (official option.py): L1 loss, Adam lr 1e-4 x0.6 every 50 epochs, batch 16, LR patch 48.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import register_model
from .common import MeanShiftedRGB, ResBlock, Upsample, build, check_scale, conv3x3
from .rcan import ChannelAttention


@dataclass
class SANConfig:
    num_feat: int = 64  # C: channels everywhere (paper: 64)
    num_group: int = 20  # G: LSRAGs (paper: 20)
    num_block: int = 10  # M: residual blocks per LSRAG (paper: 10)
    reduction: int = 16  # SOCA squeeze C -> C/r (official --reduction 16)
    nl_reduction: int = 8  # non-local embedding width C / 8 (official inter_feat = n_feats // 8)
    iterations: int = 5  # Newton-Schulz steps of the matrix square root (official iterN = 5)
    img_range: float = 255.0  # the network works on [0, 255] as the official code (rgb_range = 255)


# -------------------------------------------------------------------------- second-order pooling

def covariance_pool(x: torch.Tensor) -> torch.Tensor:
    """Centred covariance of the channels over the positions, divided by M = H*W.

    ``Sigma = X I_bar X^T``, ``I_bar = (I - 11^T / M) / M``: computed as centred features times their
    transpose, which is the same matrix without the (M, M) ``I_bar``.

    Args:
        x: features (N, C, H, W).

    Returns:
        (N, C, C), symmetric positive semi-definite.
    """
    n, c, h, w = x.shape
    feats = x.reshape(n, c, h * w)  # (N, C, M)
    centred = feats - feats.mean(dim=2, keepdim=True)  # (N, C, M)
    return centred @ centred.transpose(1, 2) / (h * w)  # (N, C, C)


def sqrtm_newton_schulz(a: torch.Tensor, iterations: int = 5) -> torch.Tensor:
    """Square root of symmetric PSD matrices by the coupled Newton-Schulz iteration (MPN-COV).

    Pre-normalisation ``A = a / tr(a)``; ``Y_0 = A``, ``Z_0 = I``;
    ``T_k = (3I - Z_k Y_k) / 2``, ``Y_{k+1} = Y_k T_k`` (-> sqrt(A)), ``Z_{k+1} = T_k Z_k`` (-> sqrt(A)^-1);
    post-compensation ``sqrt(a) ~ Y_iterations * sqrt(tr(a))``. Only matrix products: fast on GPUs
    and differentiable, but approximate: an eigenvalue ``lam`` of A converges slowly when
    ``lam`` is small (each step multiplies it by at most 1.5), so with 5 steps the result is a
    smoothed square root (exact would need an eigendecomposition).

    Args:
        a: (N, C, C) symmetric positive semi-definite.
        iterations: Newton-Schulz steps (>= 1). Default: 5, as SAN.

    Returns:
        (N, C, C) approximate ``a^(1/2)``. An all-zero matrix gives zeros (its trace is clamped).
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    n, c, _ = a.shape
    eye = torch.eye(c, dtype=a.dtype, device=a.device).expand(n, c, c)
    trace = a.diagonal(dim1=1, dim2=2).sum(dim=1).clamp_min(torch.finfo(a.dtype).tiny)  # (N,)
    y = a / trace[:, None, None]  # pre-normalisation: eigenvalues in [0, 1]
    z = eye
    for step in range(iterations):
        t = 0.5 * (3.0 * eye - z @ y)  # (N, C, C)
        y, z = y @ t, (t @ z if step < iterations - 1 else z)  # the last Z is never used
    return y * trace.sqrt()[:, None, None]  # post-compensation


class SecondOrderPooling(nn.Module):
    """Covariance pooling then the Newton-Schulz square root then the row mean: (N, C, H, W) -> (N, C, 1, 1).

    Args:
        iterations: Newton-Schulz steps. Default: 5.
        max_size: larger feature maps are centre-cropped to this many pixels per side first, as the
            original (which builds an (M, M) centring matrix, M = H*W, so it must crop; kept here so
            large images give the same numbers). Default: 1000.
    """

    def __init__(self, iterations: int = 5, max_size: int = 1000):
        super().__init__()
        self.iterations, self.max_size = iterations, max_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        dtype = x.dtype
        top, left = max(h - self.max_size, 0) // 2, max(w - self.max_size, 0) // 2
        x = x[:, :, top:top + self.max_size, left:left + self.max_size]
        with torch.autocast(x.device.type, enabled=False):  # bf16 cannot carry the iteration: >= float32
            x = x.to(torch.promote_types(x.dtype, torch.float32))
            root = sqrtm_newton_schulz(covariance_pool(x), self.iterations)  # (N, C, C)
        return root.mean(dim=1).to(dtype).view(n, c, 1, 1)  # row mean (symmetric: = column mean)


class SecondOrderChannelAttention(ChannelAttention):
    """SOCA: RCAN's channel attention with second-order pooling instead of the global average.

    Args:
        num_feat: channels C. Default: 64.
        reduction: squeeze ratio r. Default: 16.
        iterations: Newton-Schulz steps of the square root. Default: 5.
    """

    def __init__(self, num_feat: int = 64, reduction: int = 16, iterations: int = 5):
        super().__init__(num_feat, reduction)
        self.pool = SecondOrderPooling(iterations)


# ---------------------------------------------------------------------------- non-local attention

class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local block with 2x2 max-pooled keys and values, starting as the identity.

    ``y = x + W(softmax(theta(x)^T phi(x)) g(x))`` over all positions of the input.

    Args:
        num_feat: channels C in and out.
        inter_feat: embedding channels of theta, phi, g.
    """

    def __init__(self, num_feat: int, inter_feat: int):
        super().__init__()
        self.theta = nn.Conv2d(num_feat, inter_feat, 1)
        self.phi = nn.Conv2d(num_feat, inter_feat, 1)
        self.g = nn.Conv2d(num_feat, inter_feat, 1)
        self.pool = nn.MaxPool2d(2)
        self.attend = nn.Softmax(dim=-1)
        self.out = nn.Conv2d(inter_feat, num_feat, 1)
        nn.init.zeros_(self.out.weight)  # the block starts as the identity (official W init)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        query = self.theta(x).flatten(2).transpose(1, 2)  # (N, h*w, C')
        key = self.pool(self.phi(x)).flatten(2)  # (N, C', h/2*w/2)
        value = self.pool(self.g(x)).flatten(2).transpose(1, 2)  # (N, h/2*w/2, C')
        attention = self.attend(query @ key)  # (N, h*w, h/2*w/2): each row sums to 1
        y = (attention @ value).transpose(1, 2).reshape(n, -1, h, w)  # (N, C', h, w)
        return x + self.out(y)


class RegionNonLocal(nn.Module):
    """RL-NL: one :class:`NonLocalBlock` applied to each of the 2x2 regions of the feature map.

    Attention within a region only: cheaper than over the whole map (the attention matrix is 1/16
    the size), and the paper argues local regions hold the relevant self-similarity. Regions are
    split at ``H // 2`` and ``W // 2`` and visited row by row (top-left, top-right, bottom-left,
    bottom-right).

    Args:
        num_feat: channels C.
        inter_feat: embedding channels of the non-local block.
    """

    def __init__(self, num_feat: int, inter_feat: int):
        super().__init__()
        self.block = NonLocalBlock(num_feat, inter_feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h < 4 or w < 4:
            raise ValueError(f"SAN's region non-local needs feature maps of at least 4x4 (2x2 regions whose keys "
                             f"are max-pooled by 2), got {h}x{w}: give the model an LR input of at least 4x4")
        h2, w2 = h // 2, w // 2
        rows = [torch.cat([self.block(band[..., :w2]), self.block(band[..., w2:])], dim=3)  # (N, C, h_band, w)
                for band in (x[:, :, :h2], x[:, :, h2:])]
        return torch.cat(rows, dim=2)  # (N, C, h, w)


# ------------------------------------------------------------------------------------------ model

class LSRAG(nn.Module):
    """Local-source residual attention group: ``x + conv(SOCA(RB_M(... RB_1(x))))``.

    Args:
        num_feat: channels in and out.
        num_block: residual blocks (conv-ReLU-conv + x, no attention inside).
        reduction: SOCA squeeze ratio.
        iterations: Newton-Schulz steps of SOCA's square root.
    """

    def __init__(self, num_feat: int, num_block: int, reduction: int, iterations: int = 5):
        super().__init__()
        self.body = nn.Sequential(*[ResBlock(num_feat) for _ in range(num_block)],
                                  SecondOrderChannelAttention(num_feat, reduction, iterations),
                                  conv3x3(num_feat, num_feat))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SAN(MeanShiftedRGB):
    """SAN: non-locally enhanced share-source residual groups with second-order attention; RGB in and out.

    Args:
        scale: 2^n or 3 (registered: 2, 3, 4, 8).
        num_feat: channels C. Default: 64.
        num_group: LSRAGs G. Default: 20.
        num_block: residual blocks per LSRAG M. Default: 10.
        reduction: SOCA squeeze ratio. Default: 16.
        nl_reduction: the non-local embedding has ``num_feat // nl_reduction`` channels. Default: 8.
        iterations: Newton-Schulz steps. Default: 5.
        img_range: the mean-shifted input is multiplied by this. Default: 255.

    Input (N, 3, h, w) RGB in [0, 1] with h, w >= 4; output (N, 3, scale*h, scale*w), not clamped.

    Example:
        >>> import torch
        >>> net = SAN(scale=2, num_feat=8, num_group=2, num_block=1, reduction=4, nl_reduction=4)
        >>> net(torch.rand(1, 3, 8, 6)).shape
        torch.Size([1, 3, 16, 12])
    """

    def __init__(self, scale: int, num_feat: int = 64, num_group: int = 20, num_block: int = 10,
                 reduction: int = 16, nl_reduction: int = 8, iterations: int = 5, img_range: float = 255.0):
        super().__init__(img_range)
        check_scale(scale, "2^n and 3 (SAN's registered scales: 2, 3, 4, 8)")
        if num_feat // nl_reduction < 1:
            raise ValueError(f"nl_reduction {nl_reduction} leaves no non-local channel of {num_feat}; "
                             f"use nl_reduction <= {num_feat}")
        self.scale = scale
        self.head = conv3x3(3, num_feat)
        self.non_local = RegionNonLocal(num_feat, num_feat // nl_reduction)  # used before AND after the trunk
        self.groups = nn.ModuleList([LSRAG(num_feat, num_block, reduction, iterations) for _ in range(num_group)])
        self.gamma = nn.Parameter(torch.zeros(1))  # share-source skip weight, one for all groups, from 0
        self.upsample = Upsample(scale, num_feat)
        self.tail = conv3x3(num_feat, 3)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        x = self.head(self.to_network(lr))  # (N, C, h, w)
        feat = source = self.non_local(x)
        for group in self.groups:
            feat = group(feat) + self.gamma * source  # share-source residual
        feat = self.non_local(feat) + x  # the same non-local module, then the long skip
        return self.to_image(self.tail(self.upsample(feat)))  # (N, 3, s*h, s*w)


SCALES = (2, 3, 4, 8)
PAPER = "Dai et al., CVPR 2019 (SAN)"


@register_model("san", scales=SCALES, paper=PAPER)
def san(scale: int = 4, **overrides) -> SAN:
    """SAN, 20 LSRAGs x 10 blocks x 64: 15,674,732 / 15,859,372 / 15,822,444 / 15,970,156 parameters at
    x2 / x3 / x4 / x8 (the official counts minus 38,044 in modules its forward never uses)."""
    return build(SAN, scale, SANConfig(), overrides)


@register_model("san_tiny", scales=SCALES, paper=PAPER + ", CPU preset")
def san_tiny(scale: int = 4, **overrides) -> SAN:
    # shrunk: width 64 -> 16, LSRAGs 20 -> 2, blocks 10 -> 3; SOCA reduction 16 -> 4 (4 squeeze channels)
    # and non-local reduction 8 -> 4 (4 embedding channels) so neither bottleneck collapses to 1-2
    return build(SAN, scale, SANConfig(num_feat=16, num_group=2, num_block=3, reduction=4, nl_reduction=4),
                 overrides)
