"""The degradation space of blind super-resolution: random kernels and noise, batched, with their parameters.

Blind SR (chapter 8) trains and tests on LR images made by the classic degradation model

    y = (x ⊛ k)↓s + n,      k a Gaussian kernel (width, anisotropy, angle),  n ~ N(0, σ_n²)

with a *different* ``k`` and ``σ_n`` for every image, unknown to the network at test time. This module
builds on :mod:`srlib.degrade` (which has the kernels, ``blur``, noise and ``imresize``) and adds what
IKC [gu2019ikc] and DASR [wang2021dasr] need on top:

* :class:`DegradationSpace`: a sampler of degradation parameters (isotropic or anisotropic Gaussian
  kernels and noise levels) taking a ``torch.Generator``;
* :class:`DegradationParams`: a batch of parameters (one per image), their kernels, and fixed settings
  such as the kernel widths of DASR's Table 2 (:data:`TABLE2_WIDTHS`);
* :func:`degrade` / :func:`random_degrade`: batched degradation of HR patches with per-sample kernels
  (several *views* per image share one degradation, as DASR's query and key patches do), returning
  the parameters too;
* :class:`BlindPatchSource`: random training patches degraded that way, with the
  ``sample_batch(batch_size, generator)`` of ``srlib.train.fit``;
* :class:`KernelPCA`: the PCA kernel codes of SRMD/IKC (a 21x21 kernel <-> a 10-d code).

Conventions of the released IKC/DASR code are kept: kernel size 21, σ ∈ [0.2, 4.0] at x4, blur with
reflect padding, then MATLAB-style *bicubic* downsampling (DASR's default ``mode='bicubic'``; the
textbook direct subsampling is ``downsample="direct"``), then noise, then rounding to uint8.

Images: torch float32, (N, 3, H, W) (or (N, V, 3, H, W) for V views of each image), RGB in [0, 1].
Every random draw takes a ``torch.Generator``.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from .data import dihedral
from .degrade import add_gaussian_noise, anisotropic_gaussian_kernel, blur, imresize, round_to_uint8

__all__ = [
    "TABLE2_WIDTHS", "sigma_range_for_scale", "DegradationParams", "DegradationSpace", "degrade", "random_degrade",
    "validate_blurred", "BlindPatchSource", "KernelPCA", "fit_kernel_pca",
]

#: Kernel widths σ (px) of DASR's Table 2 (isotropic, noise-free; 0 = plain bicubic), per scale.
TABLE2_WIDTHS: Mapping[int, tuple[float, ...]] = {2: (0.0, 0.6, 1.2, 1.8), 3: (0.0, 0.8, 1.6, 2.4),
                                                  4: (0.0, 1.2, 2.4, 3.6)}


def sigma_range_for_scale(scale: int) -> tuple[float, float]:
    """Training range of the kernel width σ at a scale: (0.2, 2.0), (0.2, 3.0), (0.2, 4.0) for x2, x3, x4.

    x4's (0.2, 4.0) is the one in the released IKC/DASR configurations; x2/x3 follow the DASR paper
    (upper end = scale), consistent with the widths of its Table 2.

    Example:
        >>> sigma_range_for_scale(4)
        (0.2, 4.0)
    """
    if scale not in (2, 3, 4):
        raise ValueError(f"blind-SR kernel ranges are defined for x2, x3, x4, not x{scale}")
    return (0.2, float(scale))


# ---------------------------------------------------------------------------------------------- parameters

def _delta_kernel(size: int) -> Tensor:
    k = torch.zeros(size, size)
    k[size // 2, size // 2] = 1.0  # the identity blur: "kernel width 0" in DASR's tables
    return k


@dataclass(eq=False)
class DegradationParams:
    """The degradation of each image of a batch: a Gaussian kernel and a noise level.

    The kernel of image i is ``anisotropic_gaussian_kernel(kernel_size, sigma_x[i], sigma_y[i],
    theta[i])`` (``srlib.degrade``: ``sigma_x`` along the axis at angle ``theta``); ``sigma_x = sigma_y
    = 0`` means no blur (a delta kernel).

    Args:
        sigma_x, sigma_y: (N,) standard deviations in px (equal for isotropic kernels).
        theta: (N,) angle in radians, in [0, π).
        noise: (N,) Gaussian noise level in [0, 255] units.
        kernel_size: odd kernel side. Default: 21 (IKC, DASR).

    Example:
        >>> p = DegradationParams.isotropic([0.0, 2.4], kernel_size=21)
        >>> p.kernels().shape, [round(w, 3) for w in p.width.tolist()]
        (torch.Size([2, 21, 21]), [0.0, 2.4])
    """

    sigma_x: Tensor
    sigma_y: Tensor
    theta: Tensor
    noise: Tensor
    kernel_size: int = 21

    def __post_init__(self) -> None:
        n = self.sigma_x.shape[0]
        for name in ("sigma_x", "sigma_y", "theta", "noise"):
            value = getattr(self, name)
            if value.dim() != 1 or value.shape[0] != n:
                raise ValueError(f"DegradationParams.{name} must be a 1-D tensor of length {n} (one per image), "
                                 f"got shape {tuple(value.shape)}")
        if ((self.sigma_x == 0) != (self.sigma_y == 0)).any() or (self.sigma_x < 0).any() or (self.sigma_y < 0).any():
            raise ValueError("kernel sigmas must be > 0, or both 0 for 'no blur'")

    @classmethod
    def isotropic(cls, sigma: float | Sequence[float], noise: float | Sequence[float] = 0.0,
                  kernel_size: int = 21) -> "DegradationParams":
        """Fixed isotropic settings, e.g. the widths of :data:`TABLE2_WIDTHS` for an evaluation.

        Args:
            sigma: one width or one per image (0 = no blur).
            noise: one level or one per image, in [0, 255] units; broadcast to the number of widths.
        """
        s = torch.atleast_1d(torch.as_tensor(sigma, dtype=torch.float32))
        noise_t = torch.atleast_1d(torch.as_tensor(noise, dtype=torch.float32)).expand(s.shape[0]).clone()
        return cls(s, s.clone(), torch.zeros_like(s), noise_t, kernel_size)

    def __len__(self) -> int:
        return self.sigma_x.shape[0]

    @property
    def width(self) -> Tensor:
        """(N,) overall kernel width sqrt(σx σy): σ for isotropic kernels (what DASR's tables vary)."""
        return (self.sigma_x * self.sigma_y).sqrt()

    @property
    def anisotropy(self) -> Tensor:
        """(N,) ratio of the long to the short axis, >= 1 (1 for isotropic kernels and for no blur)."""
        long, short = torch.maximum(self.sigma_x, self.sigma_y), torch.minimum(self.sigma_x, self.sigma_y)
        return torch.where(short > 0, long / short.clamp_min(1e-12), torch.ones_like(long))

    def kernels(self) -> Tensor:
        """The blur kernels, float32 (N, kernel_size, kernel_size), each summing to 1."""
        return torch.stack([
            _delta_kernel(self.kernel_size) if sx == 0 else
            anisotropic_gaussian_kernel(self.kernel_size, float(sx), float(sy), float(th))
            for sx, sy, th in zip(self.sigma_x.tolist(), self.sigma_y.tolist(), self.theta.tolist())])


@dataclass(frozen=True)
class DegradationSpace:
    """The distribution blind-SR models are trained on: Gaussian kernels and noise levels.

    Per image: with probability ``isotropic_prob`` an isotropic kernel ``σ ~ U(sigma_range)``, otherwise
    an anisotropic one with ``σx, σy ~ U(sigma_range)`` independently and ``θ ~ U(0, π)`` (DASR's
    ``random_anisotropic_gaussian_kernel``); then a noise level ``~ U(noise_range)``.

    Args:
        kernel_size: odd kernel side. Default: 21 (IKC, DASR).
        sigma_range: (low, high) kernel standard deviations in px. Default: (0.2, 4.0), the x4 range
            of IKC and DASR (:func:`sigma_range_for_scale` gives the others).
        isotropic_prob: fraction of isotropic kernels. Default: 1.0 (DASR's and IKC's isotropic
            setting; 0.0 is DASR's anisotropic one).
        noise_range: (low, high) noise level in [0, 255] units. Default: (0, 0), noise-free (DASR's
            anisotropic setting uses (0, 25)).

    Example:
        >>> space = DegradationSpace(isotropic_prob=0.5, noise_range=(0, 25))
        >>> p = space.sample(4, torch.Generator().manual_seed(0))
        >>> len(p), p.kernels().shape
        (4, torch.Size([4, 21, 21]))
    """

    kernel_size: int = 21
    sigma_range: tuple[float, float] = (0.2, 4.0)
    isotropic_prob: float = 1.0
    noise_range: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if not isinstance(self.kernel_size, int) or self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer (e.g. 21), got {self.kernel_size!r}")
        low, high = self.sigma_range
        if not 0 < low <= high:
            raise ValueError(f"sigma_range must be (low, high) with 0 < low <= high, got {self.sigma_range!r}")
        if not 0.0 <= self.isotropic_prob <= 1.0:
            raise ValueError(f"isotropic_prob is a probability in [0, 1], got {self.isotropic_prob}")
        if not 0 <= self.noise_range[0] <= self.noise_range[1]:
            raise ValueError(f"noise_range must be (low, high) with 0 <= low <= high, got {self.noise_range!r}")

    def sample(self, n: int, generator: torch.Generator) -> DegradationParams:
        """Draw the parameters of ``n`` images (the same generator state gives the same draw)."""
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"DegradationSpace.sample needs a torch.Generator, got {type(generator).__name__}; "
                            "pass e.g. torch.Generator().manual_seed(0)")

        def uniform(low: float, high: float) -> Tensor:
            u = torch.rand(n, generator=generator, device=generator.device).cpu()
            return low + (high - low) * u

        isotropic = torch.rand(n, generator=generator, device=generator.device).cpu() < self.isotropic_prob
        sigma_x, sigma_y = uniform(*self.sigma_range), uniform(*self.sigma_range)
        theta = uniform(0.0, math.pi)
        noise = uniform(*self.noise_range)
        # an isotropic kernel keeps sigma_x for both axes; its angle is meaningless, set to 0
        sigma_y = torch.where(isotropic, sigma_x, sigma_y)
        theta = torch.where(isotropic, torch.zeros_like(theta), theta)
        return DegradationParams(sigma_x, sigma_y, theta, noise, self.kernel_size)


# --------------------------------------------------------------------------------------------- degradation

def degrade(hr: Tensor, params: DegradationParams, scale: int, generator: torch.Generator | None = None,
            downsample: str = "bicubic", quantize: bool = True) -> Tensor:
    """Degrade a batch of HR images, each with its own kernel and noise level.

    ``lr = round(downsample(hr ⊛ k_i) + n_i)``. With V views per image (``hr`` of shape
    (N, V, 3, H, W)), all views of image i share k_i and the noise level (not the noise itself).

    Args:
        hr: HR images, float (N, 3, H, W) or (N, V, 3, H, W), RGB in [0, 1]; H, W divisible by ``scale``
            and larger than ``kernel_size // 2``.
        params: N degradations (:class:`DegradationParams`).
        scale: integer downscaling factor.
        generator: needed when any noise level is > 0.
        downsample: ``"bicubic"`` (MATLAB ``imresize`` after the blur, as the released IKC/DASR code)
            or ``"direct"`` (keep every s-th pixel: the textbook model).
        quantize: round to the uint8 grid, as an LR image saved to PNG.

    Returns:
        LR images, (N, 3, H/s, W/s) or (N, V, 3, H/s, W/s).

    Example:
        >>> hr = torch.rand(2, 2, 3, 48, 48)          # 2 images, 2 views each
        >>> degrade(hr, DegradationParams.isotropic([1.0, 3.0]), 4).shape
        torch.Size([2, 2, 3, 12, 12])
    """
    if hr.dim() not in (4, 5) or hr.shape[-3] != 3:
        raise ValueError(f"degrade expects HR (N, 3, H, W) or (N, V, 3, H, W) in [0, 1], got {tuple(hr.shape)}")
    if downsample not in ("bicubic", "direct"):
        raise ValueError(f"downsample must be 'bicubic' or 'direct', got {downsample!r}")
    n, (h, w) = hr.shape[0], hr.shape[-2:]
    views = hr.shape[1] if hr.dim() == 5 else 1
    if len(params) != n:
        raise ValueError(f"degrade got {len(params)} degradations for {n} images; give one per image")
    if h % scale or w % scale:
        raise ValueError(f"degrade(scale={scale}) needs H and W divisible by {scale}, got {h}x{w}; "
                         f"crop with srlib.degrade.mod_crop(hr, {scale})")
    kernels = params.kernels().to(hr.device)  # (N, k, k)
    x = blur(hr.reshape(n, views * 3, h, w), kernels).reshape(n * views, 3, h, w)  # one kernel for all views
    x = imresize(x, scale=1 / scale) if downsample == "bicubic" else x[..., ::scale, ::scale]  # (N*V, 3, h/s, w/s)
    if (params.noise > 0).any():
        if generator is None:
            raise TypeError("degrade: these parameters add noise, so pass generator=torch.Generator().manual_seed(...)")
        x = add_gaussian_noise(x, params.noise.repeat_interleave(views).to(x.dtype), generator)
    if quantize:
        x = round_to_uint8(x)
    return x.reshape(hr.shape[:-2] + x.shape[-2:])


def random_degrade(hr: Tensor, scale: int, space: DegradationSpace, generator: torch.Generator,
                   downsample: str = "bicubic", quantize: bool = True) -> tuple[Tensor, DegradationParams]:
    """Sample one degradation per image from ``space`` and apply it; returns ``(lr, params)``.

    Args:
        hr: (N, 3, H, W) or (N, V, 3, H, W) RGB in [0, 1] (the V views of an image share its degradation).
        scale, downsample, quantize: as in :func:`degrade`.
        generator: the only source of randomness (parameters first, then noise).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> lr, p = random_degrade(torch.rand(3, 3, 32, 32), 2, DegradationSpace(sigma_range=(0.2, 2.0)), g)
        >>> lr.shape, len(p)
        (torch.Size([3, 3, 16, 16]), 3)
    """
    params = space.sample(hr.shape[0], generator)
    return degrade(hr, params, scale, generator, downsample, quantize), params


def validate_blurred(model: nn.Module | Callable[[Tensor], Tensor], hr_images: Mapping[str, Tensor], scale: int,
                     widths: Sequence[float] | None = None) -> dict[float, float]:
    """Mean PSNR of a model on HR images degraded with each isotropic kernel width: DASR's Table 2 protocol.

    Each HR image (3, H, W) in [0, 1] is mod-cropped, blurred with an isotropic Gaussian of width σ
    (σ = 0: no blur), bicubic-downscaled and rounded (:func:`degrade`), super-resolved, and compared
    with the HR image on Y with a ``scale``-pixel shave (``srlib.metrics.psnr``). At σ = 0 this is
    ``srlib.train.validate`` up to rounding (there the LR image is rounded after each 1-D pass, as MATLAB
    does on uint8 images; here once, as the released DASR code does): within about 0.01 dB.

    Args:
        model: an SR network (run in eval mode, output clamped), or any callable ``lr (1, 3, h, w) -> sr``.
        hr_images: name -> HR image (e.g. ``srlib.data.bundled_images("val")``).
        scale: SR scale.
        widths: kernel widths σ in px. Default: :data:`TABLE2_WIDTHS` of ``scale``.

    Returns:
        ``{σ: mean PSNR in dB}``, in the order of ``widths``.
    """
    from .train import validate

    if not hr_images:
        raise ValueError("validate_blurred() needs at least one HR image")
    widths = TABLE2_WIDTHS[scale] if widths is None else widths
    table = {}
    for width in widths:
        params = DegradationParams.isotropic([width])
        table[float(width)] = validate(model, dict(hr_images), scale,
                                       degradation=lambda hr, p=params: degrade(hr[None], p, scale)[0])["psnr"]
    return table


# ------------------------------------------------------------------------------------------ patch source

@dataclass
class BlindPatchSource:
    """Random HR patches with random degradations, for training blind models.

    Each sample: pick an image with probability proportional to its area, crop ``views`` random
    ``patch_size`` squares from it (each with a random flip/rotation when ``augment``), and degrade
    them with one degradation drawn from ``space`` (the views share it: DASR's query and key).

    Args:
        images: HR images (3, H, W) RGB in [0, 1], a dict name -> image or a list.
        scale: SR scale; ``patch_size`` must be a multiple of it.
        space: the degradation distribution. Default: ``DegradationSpace()`` (isotropic, the x4 range).
        patch_size: HR patch side. Default: 192 (DASR: LR 48 x 4).
        views: patches per image sharing a degradation. Default: 1 (2 for DASR).
        augment: random flips/rotations. Default: True.
        downsample: ``"bicubic"`` or ``"direct"`` (see :func:`degrade`).

    ``sample_batch(batch_size, generator) -> (lr, hr)`` is what ``srlib.train.fit`` calls: (N, 3, p, p)
    and (N, 3, P, P), or (N, V, 3, p, p) and (N, V, 3, P, P) with views. ``sample`` also returns the
    :class:`DegradationParams` (for IKC's kernel codes, or colouring a figure by kernel width).

    Example:
        >>> src = BlindPatchSource([torch.rand(3, 64, 64)], scale=4, patch_size=32, views=2)
        >>> lr, hr, params = src.sample(5, torch.Generator().manual_seed(0))
        >>> lr.shape, hr.shape, len(params)
        (torch.Size([5, 2, 3, 8, 8]), torch.Size([5, 2, 3, 32, 32]), 5)
    """

    images: Mapping[str, Tensor] | Sequence[Tensor] = field(repr=False)
    scale: int
    space: DegradationSpace = field(default_factory=DegradationSpace)
    patch_size: int = 192
    views: int = 1
    augment: bool = True
    downsample: str = "bicubic"

    def __post_init__(self) -> None:
        images = list(self.images.values()) if isinstance(self.images, Mapping) else list(self.images)
        p = self.patch_size
        if p % self.scale:
            raise ValueError(f"patch_size={p} must be a multiple of scale={self.scale}")
        k = self.space.kernel_size
        if p <= k // 2:
            raise ValueError(f"patch_size={p} is too small for {k}x{k} kernels (reflect padding needs P > {k // 2})")
        self._images = [im.detach().float() for im in images if im.shape[-2] >= p and im.shape[-1] >= p]
        if not self._images:
            raise ValueError(f"BlindPatchSource: no image is at least {p}x{p} px; use a smaller patch_size")
        if len(self._images) < len(images):
            warnings.warn(f"BlindPatchSource skipped {len(images) - len(self._images)} image(s) smaller than "
                          f"{p}x{p} px", stacklevel=3)
        if self.views < 1:
            raise ValueError(f"views must be >= 1, got {self.views}")
        areas = torch.tensor([float(im.shape[-2] * im.shape[-1]) for im in self._images], dtype=torch.float64)
        self._weights = areas / areas.sum()

    def _crop(self, image: Tensor, generator: torch.Generator) -> Tensor:
        p, (h, w) = self.patch_size, image.shape[-2:]
        top = int(torch.randint(0, h - p + 1, (1,), generator=generator))
        left = int(torch.randint(0, w - p + 1, (1,), generator=generator))
        k = int(torch.randint(0, 8, (1,), generator=generator)) if self.augment else 0
        return dihedral(image[:, top:top + p, left:left + p], k)

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor, DegradationParams]:
        """``(lr, hr, params)`` for ``batch_size`` images; the generator is the only source of randomness."""
        which = torch.multinomial(self._weights, batch_size, replacement=True, generator=generator)
        hr = torch.stack([torch.stack([self._crop(self._images[i], generator) for _ in range(self.views)])
                          for i in which.tolist()])  # (N, V, 3, P, P)
        hr = hr if self.views > 1 else hr[:, 0]
        lr, params = random_degrade(hr, self.scale, self.space, generator, self.downsample)
        return lr, hr, params

    def sample_batch(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        lr, hr, _ = self.sample(batch_size, generator)
        return lr, hr


# ---------------------------------------------------------------------------------------- PCA kernel codes

class KernelPCA(nn.Module):
    """PCA codes of blur kernels (SRMD, IKC): a k x k kernel <-> a short vector.

    ``code = (vec(kernel) - mean) @ components.T`` and ``kernel ≈ code @ components + mean``, with the
    ``code_len`` leading principal directions of a set of training kernels. IKC conditions its SR
    network on the 10-d code of a 21x21 kernel, and its predictor/corrector output codes.
    The basis lives in buffers, so it travels with ``.to()`` and in the ``state_dict`` (codes mean
    nothing without it) without counting as parameters.

    Differences with IKC's ``PCAEncoder``: IKC centres the kernels when fitting but not when encoding,
    so its codes are shifted by the constant ``mean @ components.T``; here encoding centres too, which
    makes ``decode(encode(k))`` the projection of ``k`` (exact for kernels in the span). The sign of
    each direction is fixed (largest entry positive), so a refit gives the same codes.

    Args:
        kernel_size: odd kernel side. Default: 21.
        code_len: number of principal directions. Default: 10 (IKC).

    Example:
        >>> pca = KernelPCA(21, 10).fit(DegradationParams.isotropic(torch.linspace(0.2, 4.0, 50)).kernels())
        >>> k = DegradationParams.isotropic([1.7]).kernels()
        >>> pca.encode(k).shape, bool((pca.decode(pca.encode(k)) - k).abs().max() < 1e-4)
        (torch.Size([1, 10]), True)
    """

    def __init__(self, kernel_size: int = 21, code_len: int = 10):
        super().__init__()
        if code_len < 1 or code_len > kernel_size * kernel_size:
            raise ValueError(f"code_len must be in 1..{kernel_size * kernel_size}, got {code_len}")
        self.kernel_size, self.code_len = kernel_size, code_len
        self.register_buffer("mean", torch.zeros(kernel_size * kernel_size))
        self.register_buffer("components", torch.zeros(code_len, kernel_size * kernel_size))
        self.register_buffer("explained_variance_ratio", torch.zeros(code_len))
        self.register_buffer("fitted", torch.tensor(False))

    @torch.no_grad()
    def fit(self, kernels: Tensor) -> "KernelPCA":
        """Fit mean and directions to kernels (M, k, k), M >= code_len; returns ``self``."""
        k2 = self.kernel_size * self.kernel_size
        if kernels.dim() != 3 or kernels.shape[-2:] != (self.kernel_size, self.kernel_size):
            k = self.kernel_size
            raise ValueError(f"fit expects kernels (M, {k}, {k}), got {tuple(kernels.shape)}")
        if kernels.shape[0] < self.code_len:
            raise ValueError(f"fit needs at least code_len={self.code_len} kernels, got {kernels.shape[0]}")
        x = kernels.reshape(-1, k2).double()  # (M, k*k)
        mean = x.mean(0)
        _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)  # vh: (min(M, k*k), k*k)
        directions = vh[: self.code_len]
        # SVD directions have an arbitrary sign: make each one's largest-magnitude entry positive
        signs = directions.gather(1, directions.abs().argmax(1, keepdim=True)).sign()
        self.mean.copy_(mean)
        self.components.copy_(directions * signs)
        variance = s.square()
        self.explained_variance_ratio.copy_(variance[: self.code_len] / variance.sum().clamp_min(1e-30))
        self.fitted.fill_(True)
        return self

    def _check_fitted(self) -> None:
        if not bool(self.fitted):
            raise RuntimeError("KernelPCA is not fitted: call .fit(kernels) first, e.g. with "
                               "DegradationSpace().sample(1000, generator).kernels()")

    def encode(self, kernels: Tensor) -> Tensor:
        """Kernels (N, k, k) -> codes (N, code_len)."""
        self._check_fitted()
        flat = kernels.reshape(kernels.shape[0], -1).to(self.components.dtype)  # (N, k*k)
        return (flat - self.mean) @ self.components.T

    def decode(self, codes: Tensor) -> Tensor:
        """Codes (N, code_len) -> kernels (N, k, k) (not renormalised: a projection may not sum to 1)."""
        self._check_fitted()
        flat = codes.to(self.components.dtype) @ self.components + self.mean  # (N, k*k)
        return flat.reshape(-1, self.kernel_size, self.kernel_size)


def fit_kernel_pca(space: DegradationSpace, generator: torch.Generator, num_kernels: int = 1000,
                   code_len: int = 10) -> KernelPCA:
    """A :class:`KernelPCA` fit on ``num_kernels`` kernels sampled from ``space``.

    Example:
        >>> pca = fit_kernel_pca(DegradationSpace(isotropic_prob=0.0), torch.Generator().manual_seed(0), 200)
        >>> round(float(pca.explained_variance_ratio.sum()), 2) > 0.9
        True
    """
    return KernelPCA(space.kernel_size, code_len).fit(space.sample(num_kernels, generator).kernels())
