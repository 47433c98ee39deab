"""Losses used across the course.

Images are torch float32 (N, 3, H, W) RGB in [0, 1]. Later chapters add perceptual, Gram/texture,
adversarial and contrastive losses here.
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn


def charbonnier_loss(sr: torch.Tensor, hr: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Charbonnier penalty mean(sqrt((sr - hr)^2 + eps^2)), a differentiable L1 (LapSRN, Eq. 7).

    Args:
        eps: smoothing constant. Default: 1e-3 (LapSRN's port uses 1e-6 on [0, 1] data, where it is
            numerically an L1; 1e-3 keeps gradients smooth near zero error).
    """
    return torch.sqrt((sr - hr) ** 2 + eps * eps).mean()


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": F.l1_loss,
    "mse": F.mse_loss,
    "charbonnier": charbonnier_loss,
}


def get_loss(loss: str | Callable) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A loss function by name (``l1``, ``mse``, ``charbonnier``) or the callable itself."""
    if callable(loss):
        return loss
    try:
        return LOSSES[loss]
    except KeyError:
        raise ValueError(f"unknown loss {loss!r}; use one of {sorted(LOSSES)} or pass a callable(sr, hr)") from None


# ------------------------------------------------------------------------------- feature-space losses
# Chapter 5. The feature networks come from srlib.features: a plain-torch VGG19 with random,
# self-trained or (when a reader has them) real ImageNet weights; see that module.

def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    r"""Gram matrices of feature maps, :math:`G = F F^\top / (C H W)`.

    The channel co-occurrences that describe a texture regardless of where things are (Gatys et al.
    [gatys2016texture]); normalised by :math:`C H W` as Johnson et al. [johnson2016perceptual], Eq. 3,
    so that the value does not grow with the patch size.

    Args:
        features: (N, C, H, W).

    Returns:
        (N, C, C): ``G[n, c, d] = sum_{h, w} F[n, c, h, w] F[n, d, h, w] / (C H W)``.

    Example:
        >>> gram_matrix(torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]]))  # C=2, H=1, W=2
        tensor([[[1.2500, 2.7500],
                 [2.7500, 6.2500]]])
    """
    if features.dim() != 4:
        raise ValueError(f"gram_matrix expects feature maps (N, C, H, W), got shape {tuple(features.shape)}")
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)  # (N, C, HW)
    return f @ f.transpose(1, 2) / (c * h * w)  # (N, C, C)


def _feature_criterion(criterion: str | Callable) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if callable(criterion):
        return criterion
    if criterion not in ("mse", "l1"):
        raise ValueError(f"criterion must be 'mse', 'l1' or a callable(a, b), got {criterion!r}")
    return F.mse_loss if criterion == "mse" else F.l1_loss


class _FeatureLoss(nn.Module):
    """Shared part of the feature-space losses: the weights per layer and the (frozen) extractor."""

    def __init__(self, layer_weights: Mapping[str, float], extractor: nn.Module | None, weights,
                 before_activation: bool):
        super().__init__()
        from .features import VGGFeatureExtractor

        if not layer_weights:
            raise ValueError("layer_weights is empty; give {layer name: weight}, e.g. {'relu5_4': 1.0}")
        self.layer_weights = dict(layer_weights)
        self.extractor = extractor if extractor is not None else VGGFeatureExtractor(
            tuple(self.layer_weights), weights=weights, before_activation=before_activation)

    def features(self, sr: torch.Tensor, hr: torch.Tensor) -> tuple[dict, dict]:
        """Features of ``sr`` (with gradients) and ``hr`` (without: it is a constant target)."""
        buffers = list(self.extractor.buffers()) + list(self.extractor.parameters())
        if buffers and buffers[0].device != sr.device:
            # fit(loss=PerceptualLoss(...)) moves the model, not the loss: follow the images
            self.extractor.to(sr.device)
        with torch.no_grad():
            target = self.extractor(hr)
        return self.extractor(sr), target


class PerceptualLoss(_FeatureLoss):
    r"""Distance between images in a feature space: :math:`\sum_l w_l\, d(\phi_l(sr), \phi_l(hr))`.

    This is the "VGG loss" of SRGAN (Ledig et al. [ledig2017srgan], Eq. 5),

    .. math:: l_{VGG/i,j} = \frac{1}{W_{i,j} H_{i,j}} \sum_{x,y}
              \big(\phi_{i,j}(I^{HR})_{x,y} - \phi_{i,j}(G(I^{LR}))_{x,y}\big)^2,

    with :math:`\phi_{i,j}` the feature map of the j-th conv (after its ReLU) before the i-th max
    pool of VGG19 (``relu5_4`` is SRGAN's "VGG54"), Johnson et al.'s feature reconstruction loss,
    and ESRGAN's variant (Wang et al. [wang2018esrgan], Sec. 3.3): L1 on ``conv5_4`` *before* the
    ReLU. Here ``d`` is the mean over all feature elements (MSE or L1).

    Paper settings:

    * SRGAN: ``PerceptualLoss({"relu5_4": 1 / 12.75 ** 2}, criterion="mse")`` (the paper scales the
      features by 1/12.75, which is this weight on an MSE).
    * ESRGAN: ``PerceptualLoss({"relu5_4": 1.0}, criterion="l1", before_activation=True)``.

    Args:
        layer_weights: ``{layer name: weight}``. Default: ``{"relu5_4": 1.0}`` (SRGAN's VGG54).
        criterion: ``"mse"``, ``"l1"`` or ``callable(a, b)``. Default: ``"mse"``.
        weights: the VGG19 weights, as :class:`srlib.features.VGGFeatureExtractor` takes them:
            ``None`` means **random** weights, ``"selfsup"`` the extractor this project trains, or a
            path / state dict of real weights. Default: None.
        before_activation: read ``reluB_K`` layers before their ReLU (ESRGAN). Default: False.
        extractor: any module returning ``{name: features}`` for the names in ``layer_weights``,
            used instead of building a VGG19 (then ``weights``/``before_activation`` are unused).

    ``forward(sr, hr)``: images (N, 3, H, W) RGB in [0, 1] -> scalar; gradients flow to ``sr`` only.

    Example:
        >>> loss = PerceptualLoss({"relu1_2": 1.0, "relu2_2": 0.5})
        >>> x = torch.rand(1, 3, 16, 16)
        >>> loss(x, x).item()
        0.0
    """

    def __init__(self, layer_weights: Mapping[str, float] | None = None, criterion: str | Callable = "mse",
                 weights=None, before_activation: bool = False, extractor: nn.Module | None = None):
        super().__init__(layer_weights or {"relu5_4": 1.0}, extractor, weights, before_activation)
        self.criterion = _feature_criterion(criterion)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        feats, targets = self.features(sr, hr)
        return sum(w * self.criterion(feats[name], targets[name]) for name, w in self.layer_weights.items())


class TextureLoss(_FeatureLoss):
    r"""EnhanceNet's texture matching loss: Gram matrices compared on local patches.

    .. math:: L_T = \sum_l w_l \, \operatorname{mean}_{p}
              \big\| G(\phi_l(sr)_p) - G(\phi_l(hr)_p) \big\|_F^2

    (Sajjadi et al. [sajjadi2017enhancenet], Sec. 4.3), with :func:`gram_matrix` and :math:`p`
    running over non-overlapping square patches. The Gram matrix describes a texture without its
    layout; computing it on local patches (16x16 image pixels in EnhanceNet) keeps each texture
    where the HR image has it, while the network is free to invent its details.

    A layer of stride ``s`` sees patches of ``patch_size / s`` feature pixels (at least 1). The stride
    is read from the shapes (image width / feature width), so any extractor works. Feature maps whose
    size is not a multiple of the patch lose their last partial row/column of patches.

    Args:
        layer_weights: ``{layer name: weight}``. Default: ``relu1_1``, ``relu2_1``, ``relu3_1``
            at 1.0 each (the layers EnhanceNet's paper names, conv1.1 / 2.1 / 3.1, taken after their
            ReLU; the paper's weights are for another Gram normalisation and were not verified).
        patch_size: side of the patches in image pixels. Default: 16 (EnhanceNet).
        weights, before_activation, extractor: as :class:`PerceptualLoss`.

    ``forward(sr, hr)``: images (N, 3, H, W) RGB in [0, 1], H and W >= ``patch_size`` -> scalar.

    Example:
        >>> loss = TextureLoss({"relu1_1": 1.0}, patch_size=8)
        >>> x = torch.rand(1, 3, 16, 16)
        >>> loss(x, x).item(), loss(x, x.flip(-1)).item() > 0
        (0.0, True)
    """

    def __init__(self, layer_weights: Mapping[str, float] | None = None, patch_size: int = 16, weights=None,
                 before_activation: bool = False, extractor: nn.Module | None = None):
        super().__init__(layer_weights or {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0}, extractor, weights,
                         before_activation)
        if patch_size < 1:
            raise ValueError(f"patch_size must be >= 1 image pixel, got {patch_size}")
        self.patch_size = patch_size

    @staticmethod
    def patches(features: torch.Tensor, size: int) -> torch.Tensor:
        """Non-overlapping ``size`` x ``size`` patches: (N, C, H, W) -> (N * H//size * W//size, C, size, size)."""
        n, c, h, w = features.shape
        rows, cols = h // size, w // size
        f = features[..., : rows * size, : cols * size].reshape(n, c, rows, size, cols, size)
        return f.permute(0, 2, 4, 1, 3, 5).reshape(n * rows * cols, c, size, size)  # (N*R*Q, C, p, p)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        if min(sr.shape[-2:]) < self.patch_size:
            raise ValueError(f"images of {tuple(sr.shape[-2:])} px are smaller than the {self.patch_size}-px texture "
                             f"patch; use TextureLoss(patch_size<={min(sr.shape[-2:])}) or larger crops")
        feats, targets = self.features(sr, hr)
        total = 0.0
        for name, w in self.layer_weights.items():
            stride = sr.shape[-1] / feats[name].shape[-1]
            size = max(1, round(self.patch_size / stride))
            g_sr = gram_matrix(self.patches(feats[name], size))  # (P, C, C)
            g_hr = gram_matrix(self.patches(targets[name], size))
            total = total + w * (g_sr - g_hr).square().sum(dim=(1, 2)).mean()
        return total


# ------------------------------------------------------------------------------------- adversarial
# A discriminator returns raw scores C(x) (logits, no sigmoid); the sigmoid lives here, inside
# binary_cross_entropy_with_logits, which computes log(sigmoid) without overflow.

GAN_KINDS = ("vanilla", "ragan")


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _check_kind(kind: str) -> None:
    if kind not in GAN_KINDS:
        raise ValueError(f"unknown GAN loss {kind!r}; use 'vanilla' (SRGAN) or 'ragan' (ESRGAN)")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "vanilla") -> torch.Tensor:
    r"""The discriminator's loss, from its scores :math:`C(x)` of real (HR) and fake (SR) images.

    ``kind="vanilla"``, the standard GAN (Goodfellow et al. 2014; SRGAN [ledig2017srgan], Eq. 2),
    with :math:`D = \sigma(C)`:

    .. math:: L_D = -\mathbb{E}_{x_r}[\log D(x_r)] - \mathbb{E}_{x_f}[\log(1 - D(x_f))]

    ``kind="ragan"``, the relativistic average GAN of ESRGAN ([wang2018esrgan], Eqs. 1-2): the
    discriminator judges whether a real image is *more realistic than the average fake*,
    :math:`D_{Ra}(x_r, x_f) = \sigma(C(x_r) - \mathbb{E}_{x_f}[C(x_f)])`, and

    .. math:: L_D^{Ra} = -\mathbb{E}_{x_r}[\log D_{Ra}(x_r, x_f)] - \mathbb{E}_{x_f}[\log(1 - D_{Ra}(x_f, x_r))]

    returned **halved** (the mean of the two terms), as ESRGAN's code (BasicSR ``ESRGANModel``) does
    and its loss weights assume. The means over the batch stand for the expectations.

    Args:
        real_logits: :math:`C(x_r)`, any shape (one score per image, or per patch).
        fake_logits: :math:`C(x_f)` of ``G(lr).detach()``: the discriminator step must not update G.
        kind: ``"vanilla"`` or ``"ragan"``.

    Example:
        >>> real, fake = torch.tensor([2.0]), torch.tensor([0.0])
        >>> round(discriminator_loss(real, fake, "ragan").item(), 4)  # log(1 + e^-2)
        0.1269
    """
    _check_kind(kind)
    if kind == "vanilla":
        return _bce(real_logits, 1.0) + _bce(fake_logits, 0.0)
    return 0.5 * (_bce(real_logits - fake_logits.mean(), 1.0) + _bce(fake_logits - real_logits.mean(), 0.0))


def generator_loss(fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None,
                   kind: str = "vanilla") -> torch.Tensor:
    r"""The generator's adversarial loss, from the discriminator's scores of its fakes (and of reals).

    ``kind="vanilla"``: the non-saturating loss of SRGAN ([ledig2017srgan], Eq. 6),
    :math:`L_G = -\mathbb{E}[\log D(G(I^{LR}))]`; ``real_logits`` is not needed.

    ``kind="ragan"``: ESRGAN's symmetric form, in which real images take part too,

    .. math:: L_G^{Ra} = -\mathbb{E}_{x_r}[\log(1 - D_{Ra}(x_r, x_f))] - \mathbb{E}_{x_f}[\log D_{Ra}(x_f, x_r)],

    halved like :func:`discriminator_loss`. It is the discriminator's loss with the roles swapped:
    ``generator_loss(a, b, "ragan") == discriminator_loss(a, b, "ragan")`` with ``a`` fake and ``b``
    real, i.e. the generator wants its images judged more realistic than the real ones.

    Args:
        fake_logits: :math:`C(G(lr))`, with gradients to the generator.
        real_logits: :math:`C(x_r)`; required for ``"ragan"`` (detach it: only G is updated here).
        kind: ``"vanilla"`` or ``"ragan"``.

    Example:
        >>> real, fake = torch.tensor([2.0]), torch.tensor([0.0])
        >>> round(generator_loss(fake, real, "ragan").item(), 4)  # log(1 + e^2)
        2.1269
    """
    _check_kind(kind)
    if kind == "vanilla":
        return _bce(fake_logits, 1.0)
    if real_logits is None:
        raise ValueError("generator_loss(kind='ragan') needs real_logits, the discriminator's scores of HR images "
                         "(the relativistic loss compares fakes with the average real)")
    return 0.5 * (_bce(real_logits - fake_logits.mean(), 0.0) + _bce(fake_logits - real_logits.mean(), 1.0))


def info_nce(query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    r"""InfoNCE of MoCo ([he2020moco], Eq. 1), the contrastive loss DASR learns degradations with.

    Each query has one positive, its own key (in DASR: another patch of the same image, hence the
    same degradation), and shares the negatives of the queue (keys of earlier batches: other
    images, other degradations). With cosine similarities (the vectors are L2-normalised here),

    .. math:: L = -\frac{1}{N} \sum_i \log \frac{\exp(q_i \cdot k_i / \tau)}
              {\exp(q_i \cdot k_i / \tau) + \sum_j \exp(q_i \cdot n_j / \tau)},

    i.e. a cross-entropy over ``1 + K`` logits whose label is the positive (index 0).

    Args:
        query: (N, D) query vectors (with gradients).
        key: (N, D) positive keys, one per query (MoCo: from the momentum encoder, no gradients).
        queue: (K, D) negative keys, one per row.
        temperature: τ; smaller sharpens the softmax. Default: 0.07 (MoCo, DASR).

    Returns:
        The mean loss, a scalar.

    Example:
        >>> q = torch.tensor([[1.0, 0.0]])
        >>> round(info_nce(q, q, torch.tensor([[0.0, 1.0]]), temperature=1.0).item(), 4)  # log(1 + e^-1)
        0.3133
    """
    if query.dim() != 2 or key.shape != query.shape or queue.dim() != 2 or queue.shape[1] != query.shape[1]:
        raise ValueError(f"info_nce expects query (N, D), key (N, D) and queue (K, D), got {tuple(query.shape)}, "
                         f"{tuple(key.shape)} and {tuple(queue.shape)}")
    q, k, negatives = F.normalize(query, dim=1), F.normalize(key, dim=1), F.normalize(queue, dim=1)
    positive = (q * k).sum(dim=1, keepdim=True)  # (N, 1)
    logits = torch.cat([positive, q @ negatives.T], dim=1) / temperature  # (N, 1 + K)
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device))
