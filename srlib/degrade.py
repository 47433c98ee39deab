"""Degradations: MATLAB-compatible bicubic ``imresize``, blur kernels, noise, JPEG, and a pipeline.

The classic degradation model of super-resolution (SRMD, IKC, DASR, ...) is

    y = (x ⊛ k)↓s + n          (then, optionally, JPEG compression)

with a blur kernel ``k``, a downsampler ``↓s`` and additive white Gaussian noise ``n``. The
standard "BI" setting of the benchmarks has no explicit kernel: ``↓s`` is MATLAB's antialiased
bicubic ``imresize``, and the LR image is saved as uint8.

Images: torch floating tensors, ``(C, H, W)`` or ``(N, C, H, W)``, RGB in [0, 1] (any channel
count works for resizing and blurring). Every random draw takes a ``torch.Generator``; nothing
here touches the global RNG.

MATLAB fidelity of :func:`imresize` (``toolbox/images/images/imresize.m``, method 'bicubic'):

* cubic kernel of Keys with ``a = -0.5``, support 4;
* output pixel ``x`` (1-based) samples input coordinate ``u = x / s + 0.5 * (1 - 1 / s)``;
* when downscaling (``s < 1``) the kernel is stretched by ``1 / s`` (antialiasing);
* out-of-range taps are mirrored symmetrically (``1..n, n..1``, edge pixel repeated);
* weights are normalised to sum to 1 per output pixel, all-zero taps are dropped;
* the dimension with the smaller scale is resized first (rows first on ties);
* the output size is ``ceil(s * in_size)``; doubles are not clamped.

:func:`bicubic_downscale` adds what MATLAB does to a uint8 image (the HR PNGs of the benchmarks):
round and saturate to uint8 after each 1-D pass, computing in double on the 0..255 scale.
"""
from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass
from typing import Callable, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

__all__ = [
    "imresize", "bicubic_downscale", "upscale_bicubic", "mod_crop", "round_to_uint8",
    "isotropic_gaussian_kernel", "anisotropic_gaussian_kernel", "random_gaussian_kernel", "blur",
    "add_gaussian_noise", "jpeg", "Degradation",
]


# ----------------------------------------------------------------------------------------------
# Checks shared by the functions below
# ----------------------------------------------------------------------------------------------
def _check_image(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} expects a torch.Tensor (C, H, W) or (N, C, H, W), got {type(x).__name__}")
    if x.dim() not in (3, 4):
        raise ValueError(f"{name} expects a tensor of shape (C, H, W) or (N, C, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} expects a floating tensor in [0, 1], got dtype {x.dtype}; "
            "convert uint8 images with x.float() / 255"
        )


def _check_int_scale(scale, name: str) -> int:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale != int(scale) or scale < 1:
        raise ValueError(f"{name} needs an integer scale >= 1 (e.g. 2, 3, 4), got {scale!r}")
    return int(scale)


def round_to_uint8(x: Tensor) -> Tensor:
    """Clamp to [0, 1] and round to the uint8 grid ``k / 255``, as saving to an 8-bit PNG does.

    Rounds half away from zero like MATLAB's ``uint8()`` / ``im2uint8`` (``torch.round`` would
    round half to even).

    Args:
        x: floating tensor of any shape, values nominally in [0, 1].

    Returns:
        Tensor of the same shape, dtype and device, with values in ``{0, 1/255, ..., 1}``.

    Example:
        >>> round_to_uint8(torch.tensor([-0.1, 0.5, 2.0])).mul(255).tolist()
        [0.0, 128.0, 255.0]
    """
    return x.clamp(0, 1).mul_(255).add_(0.5).floor_().div_(255)   # in place on clamp's fresh copy


# ----------------------------------------------------------------------------------------------
# MATLAB-compatible bicubic imresize
# ----------------------------------------------------------------------------------------------
def _cubic(t: Tensor) -> Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``), support [-2, 2]."""
    a = t.abs()
    a2, a3 = a * a, a * a * a
    inner = (1.5 * a3 - 2.5 * a2 + 1) * (a <= 1)
    outer = (-0.5 * a3 + 2.5 * a2 - 4 * a + 2) * ((a > 1) & (a <= 2))
    return inner + outer


@functools.lru_cache(maxsize=128)
def _contributions(in_len: int, out_len: int, scale: float, antialias: bool) -> tuple[Tensor, Tensor]:
    """Weights and 0-based input indices, both ``(out_len, taps)``, of a 1-D MATLAB resize.

    Computed in float64 on the CPU (as MATLAB does) and cached: the same sizes recur for every
    image of a data set.
    """
    width = 4.0
    if scale < 1 and antialias:
        # Stretch the kernel by 1/scale so it low-passes before subsampling; the scale factor in
        # front of the kernel cancels in the normalisation below but is kept to mirror MATLAB.
        def kernel(t: Tensor) -> Tensor:
            return scale * _cubic(scale * t)
        width = width / scale
    else:
        kernel = _cubic
    x = torch.arange(1, out_len + 1, dtype=torch.float64)          # 1-based output coordinates
    u = x / scale + 0.5 * (1 - 1 / scale)                          # where they land in the input
    left = torch.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left[:, None] + torch.arange(taps, dtype=torch.float64)  # (out, taps), 1-based
    weights = kernel(u[:, None] - idx)
    weights = weights / weights.sum(dim=1, keepdim=True)
    # Symmetric padding: index sequence 1..n, n..1 repeated (edge pixel appears twice).
    idx = (idx.long() - 1) % (2 * in_len)
    idx = torch.where(idx < in_len, idx, 2 * in_len - 1 - idx)
    keep = (weights != 0).any(dim=0)                               # drop all-zero tap columns
    return weights[:, keep], idx[:, keep]


@functools.lru_cache(maxsize=32)    # a few MB each for photo sizes; benchmark sets vary in size
def _weight_matrix(in_len: int, out_len: int, scale: float, antialias: bool) -> Tensor:
    """The 1-D resize as a dense float64 matrix ``(out_len, in_len)``: row i holds the weights of
    output pixel i at its (mirrored) input indices; a pixel mirrored twice gets both weights,
    exactly as MATLAB's separate taps add up."""
    weights, indices = _contributions(in_len, out_len, scale, antialias)
    matrix = torch.zeros(out_len, in_len, dtype=torch.float64)
    return matrix.scatter_add_(1, indices, weights)


def _resize_along(x: Tensor, dim: int, matrix: Tensor) -> Tensor:
    """Apply a 1-D resize matrix along ``dim`` (-2: rows, -1: columns) of a (..., H, W) tensor.

    A matrix product rather than a gather + weighted sum: it does more multiplications (by the
    zeros of the band) but runs as one BLAS/cuBLAS call, several times faster than gathering the
    taps one by one, on CPU and GPU alike. In float64 it agrees with the loop-by-loop MATLAB
    transcription of the tests to ~1e-15.
    """
    m = matrix.to(device=x.device, dtype=x.dtype)
    return torch.matmul(m, x) if dim == -2 else torch.matmul(x, m.T)


def _imresize(x: Tensor, scale, size, antialias: bool, quantize_passes: bool = False) -> Tensor:
    """:func:`imresize` after validation; ``quantize_passes`` treats ``x`` as a uint8 image and
    rounds to uint8 after each 1-D pass, which is what MATLAB does for uint8 images
    (``imresizemex`` returns the input's class)."""
    in_size = (x.shape[-2], x.shape[-1])
    if size is not None:
        out_size = (int(size[0]), int(size[1]))
        scales = (out_size[0] / in_size[0], out_size[1] / in_size[1])
    else:
        scales = (float(scale[0]), float(scale[1]))
        out_size = (math.ceil(scales[0] * in_size[0]), math.ceil(scales[1] * in_size[1]))
    # MATLAB: [~, order] = sort(scale) -> smaller scale first, rows first on ties (stable sort).
    order = (0, 1) if scales[0] <= scales[1] else (1, 0)
    if not quantize_passes:
        out = x
        for d in order:
            out = _resize_along(out, d - 2, _weight_matrix(in_size[d], out_size[d], scales[d], antialias))
        return out
    # MATLAB on a uint8 image: integer pixel values, double arithmetic, round (half up) and
    # saturate after each pass. Do exactly that: in float32 on [0, 1], the exact .5 ties that x2/x4
    # weights produce in flat regions round either way (1254 pixels of colorwheel at x2 differ).
    out = torch.floor(x.double().clamp(0, 1) * 255 + 0.5)
    for d in order:
        out = _resize_along(out, d - 2, _weight_matrix(in_size[d], out_size[d], scales[d], antialias))
        out = torch.floor(out + 0.5).clamp(0, 255)
    return (out / 255).to(x.dtype)


def imresize(x: Tensor, scale: Union[float, Sequence[float], None] = None,
             size: Union[Sequence[int], None] = None, antialias: bool = True) -> Tensor:
    """Bicubic resize identical to MATLAB's ``imresize(x, scale)`` / ``imresize(x, [h w])`` on doubles.

    See the module docstring for the MATLAB details reproduced here. Separable: two 1-D passes,
    each a product with a precomputed (cached) banded weight matrix, batched and on the input's
    device; differentiable.

    Args:
        x: image(s), floating tensor ``(C, H, W)`` or ``(N, C, H, W)``, nominally in [0, 1].
        scale: resize factor (``0.25`` for x4 downscaling, ``3`` for x3 upscaling, any positive
            number) or a ``(scale_h, scale_w)`` pair; output size is ``ceil(scale * size)``.
        size: explicit output size ``(h, w)`` instead of ``scale`` (give exactly one of them).
        antialias: stretch the kernel when downscaling (MATLAB's default ``true``).

    Returns:
        Resized tensor, same rank, dtype and device; not clamped (bicubic overshoots [0, 1]).

    Example:
        >>> imresize(torch.rand(2, 3, 12, 9), scale=1 / 3).shape
        torch.Size([2, 3, 4, 3])
        >>> imresize(torch.rand(3, 10, 10), size=(7, 15)).shape
        torch.Size([3, 7, 15])
    """
    _check_image(x, "imresize")
    if (scale is None) == (size is None):
        raise ValueError("imresize needs exactly one of scale= or size= (e.g. scale=0.25 or size=(64, 64))")
    if size is not None:
        if len(size) != 2 or any(int(s) != s or s < 1 for s in size):
            raise ValueError(f"imresize size must be two positive integers (h, w), got {size!r}")
    else:
        pair = tuple(scale) if isinstance(scale, (tuple, list)) else (scale, scale)
        if len(pair) != 2 or not all(isinstance(s, (int, float)) and math.isfinite(s) and s > 0 for s in pair):
            raise ValueError(f"imresize scale must be a positive number or a (scale_h, scale_w) pair, got {scale!r}")
        scale = pair
    return _imresize(x, scale, size, antialias)


def mod_crop(x: Tensor, scale: int) -> Tensor:
    """Crop the bottom/right borders so that H and W are multiples of ``scale`` (the HR "mod crop").

    Args:
        x: image(s), tensor ``(C, H, W)`` or ``(N, C, H, W)``.
        scale: integer SR scale.

    Returns:
        A view ``x[..., :H - H % scale, :W - W % scale]``.

    Example:
        >>> mod_crop(torch.zeros(3, 10, 7), 3).shape
        torch.Size([3, 9, 6])
    """
    if not isinstance(x, Tensor) or x.dim() not in (3, 4):
        raise ValueError(f"mod_crop expects a tensor (C, H, W) or (N, C, H, W), got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    s = _check_int_scale(scale, "mod_crop")
    h, w = x.shape[-2], x.shape[-1]
    return x[..., : h - h % s, : w - w % s]


def bicubic_downscale(hr: Tensor, scale: int, quantize: bool = True) -> Tensor:
    """The benchmark LR image: MATLAB ``imresize(hr, 1/scale, 'bicubic')`` of a uint8 HR image.

    With ``quantize`` the HR image is taken as uint8 (rounded to the grid) and the result is
    rounded to the uint8 grid after each of the two 1-D passes, exactly as MATLAB does when the
    HR image is uint8 (as it is when read from a PNG): its ``imresizemex`` returns the input's
    class, so the intermediate image is uint8 too. The arithmetic is float64 on the 0..255 scale
    like MATLAB's, so the many exact .5 ties of x2/x4 round the same way. Without ``quantize`` it
    is plain ``imresize(hr, 1 / scale)`` in the input's precision.

    Args:
        hr: HR image(s), floating tensor ``(3, H, W)`` or ``(N, 3, H, W)`` in [0, 1] (on the uint8
            grid for the benchmark protocol), with H and W divisible by ``scale``.
        scale: integer downscaling factor (2, 3, 4, ...).
        quantize: round to ``k / 255`` (clamped to [0, 1]) as the saved LR PNGs are.

    Returns:
        LR tensor ``(..., H / scale, W / scale)``, same dtype and device.

    Example:
        >>> bicubic_downscale(torch.rand(1, 3, 12, 12), 4).shape
        torch.Size([1, 3, 3, 3])
    """
    _check_image(hr, "bicubic_downscale")
    s = _check_int_scale(scale, "bicubic_downscale")
    h, w = hr.shape[-2], hr.shape[-1]
    if h % s or w % s:
        raise ValueError(
            f"bicubic_downscale needs H and W divisible by the scale {s}, got {h}x{w}; "
            f"crop the HR image first with srlib.degrade.mod_crop(hr, {s})"
        )
    lr = _imresize(hr, (1 / s, 1 / s), None, True, quantize_passes=quantize)
    return lr


def upscale_bicubic(lr: Tensor, scale: float, quantize: bool = False) -> Tensor:
    """MATLAB ``imresize(lr, scale, 'bicubic')``: the bicubic baseline and the input that
    pre-upsampling models (SRCNN, VDSR, DRCN, MemNet) refine.

    Args:
        lr: LR image(s), floating tensor ``(C, H, W)`` or ``(N, C, H, W)`` in [0, 1].
        scale: upscaling factor (> 0; usually the integer SR scale).
        quantize: treat ``lr`` as uint8 and round after each 1-D pass, as MATLAB does for a uint8
            LR image (float64 arithmetic, like :func:`bicubic_downscale`); off by default
            (models want the unrounded float image, as MATLAB gives for doubles).

    Returns:
        ``(..., ceil(scale * H), ceil(scale * W))``, same dtype and device, not clamped unless
        ``quantize``.

    Example:
        >>> upscale_bicubic(torch.rand(3, 5, 6), 2).shape
        torch.Size([3, 10, 12])
    """
    _check_image(lr, "upscale_bicubic")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise ValueError(f"upscale_bicubic needs a positive scale (e.g. 2, 3, 4), got {scale!r}")
    return _imresize(lr, (scale, scale), None, True, quantize_passes=quantize)


# ----------------------------------------------------------------------------------------------
# Blur kernels
# ----------------------------------------------------------------------------------------------
def _check_kernel_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be a positive odd integer (e.g. 21) so the kernel has a "
                         f"centre pixel, got {size!r}")
    return size


def anisotropic_gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float) -> Tensor:
    """A rotated 2-D Gaussian blur kernel, normalised to sum 1.

    ``k(v) ∝ exp(-½ vᵀ Σ⁻¹ v)`` with ``Σ = R(θ) diag(σx², σy²) R(θ)ᵀ``: ``sigma_x`` is the
    standard deviation along the axis at angle ``theta`` (radians, counter-clockwise from the
    horizontal as the image is displayed, i.e. with the row axis pointing down), ``sigma_y``
    across it. Properties: period π in θ; ``k(θ + π/2, σx, σy) = k(θ, σy, σx)``;
    ``k(θ).T = k(π/2 - θ)``; ``torch.rot90(k(θ)) = k(θ + π/2)``.

    Args:
        size: odd side length in pixels (blind-SR papers use 21).
        sigma_x, sigma_y: standard deviations in pixels (> 0).
        theta: rotation angle in radians.

    Returns:
        float32 tensor ``(size, size)`` summing to 1.

    Example:
        >>> k = anisotropic_gaussian_kernel(21, 4.0, 1.0, 0.3)
        >>> k.shape, round(k.sum().item(), 6)
        (torch.Size([21, 21]), 1.0)
    """
    _check_kernel_size(size)
    if not (sigma_x > 0 and sigma_y > 0):
        raise ValueError(f"Gaussian sigmas must be > 0, got sigma_x={sigma_x}, sigma_y={sigma_y}")
    c, s = math.cos(theta), math.sin(theta)
    rot = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    cov = rot @ torch.diag(torch.tensor([sigma_x ** 2, sigma_y ** 2], dtype=torch.float64)) @ rot.T
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    rows, cols = torch.meshgrid(r, r, indexing="ij")
    v = torch.stack([cols, -rows], dim=-1)                     # (size, size, 2): x right, y up
    mahalanobis = torch.einsum("...i,ij,...j->...", v, torch.linalg.inv(cov), v)
    k = torch.exp(-0.5 * mahalanobis)
    return (k / k.sum()).float()


def isotropic_gaussian_kernel(size: int, sigma: float) -> Tensor:
    """An isotropic 2-D Gaussian blur kernel ``∝ exp(-(x² + y²) / (2σ²))``, normalised to sum 1.

    Args:
        size: odd side length in pixels.
        sigma: standard deviation in pixels (> 0).

    Returns:
        float32 tensor ``(size, size)`` summing to 1.

    Example:
        >>> k = isotropic_gaussian_kernel(5, 1.0)
        >>> bool(torch.allclose(k, k.T)), k.argmax().item()
        (True, 12)
    """
    return anisotropic_gaussian_kernel(size, sigma, sigma, 0.0)


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    u = torch.rand((), generator=generator, dtype=torch.float64, device=generator.device).item()
    return low + (high - low) * u


def _require_generator(generator, what: str) -> None:
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{what} draws random numbers and needs a torch.Generator, got {type(generator).__name__}; "
            "pass e.g. generator=torch.Generator().manual_seed(0)"
        )


def random_gaussian_kernel(size: int, sigma_range: tuple[float, float], generator: torch.Generator,
                           isotropic: bool = True) -> Tensor:
    """A random Gaussian kernel, as blind-SR training draws them (IKC, DASR).

    Isotropic: ``σ ~ U(sigma_range)``. Anisotropic: ``σx, σy ~ U(sigma_range)`` independently and
    ``θ ~ U(0, π)``.

    Args:
        size: odd side length (21 in IKC/DASR).
        sigma_range: ``(low, high)`` in pixels, e.g. ``(0.2, 4.0)`` for x4.
        generator: the source of randomness.
        isotropic: isotropic or anisotropic Gaussian.

    Returns:
        float32 tensor ``(size, size)`` summing to 1.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> random_gaussian_kernel(21, (0.2, 4.0), g, isotropic=False).shape
        torch.Size([21, 21])
    """
    _require_generator(generator, "random_gaussian_kernel")
    low, high = sigma_range
    if not 0 < low <= high:
        raise ValueError(f"sigma_range must be (low, high) with 0 < low <= high, got {sigma_range!r}")
    if isotropic:
        return isotropic_gaussian_kernel(size, _uniform(generator, low, high))
    sx, sy = _uniform(generator, low, high), _uniform(generator, low, high)
    return anisotropic_gaussian_kernel(size, sx, sy, _uniform(generator, 0.0, math.pi))


def blur(x: Tensor, kernel: Tensor) -> Tensor:
    """Convolve image(s) with a blur kernel (true convolution, reflect padding, same size).

    Args:
        x: image(s), floating tensor ``(C, H, W)`` or ``(N, C, H, W)`` in [0, 1].
        kernel: ``(k, k)`` shared by all images, or ``(N, k, k)`` one per image; k odd and
            smaller than H and W (reflect padding mirrors ``k // 2`` pixels without repeating
            the edge, like ``scipy.ndimage`` mode ``'mirror'``).

    Returns:
        Blurred tensor of the same shape, dtype and device.

    Example:
        >>> blur(torch.rand(2, 3, 16, 16), isotropic_gaussian_kernel(5, 1.0)).shape
        torch.Size([2, 3, 16, 16])
    """
    _check_image(x, "blur")
    if not isinstance(kernel, Tensor) or kernel.dim() not in (2, 3) or kernel.shape[-1] != kernel.shape[-2] \
            or kernel.shape[-1] % 2 == 0:
        raise ValueError("blur kernel must be a tensor (k, k) or (N, k, k) with odd k, got "
                         f"{tuple(kernel.shape) if isinstance(kernel, Tensor) else type(kernel).__name__}")
    single = x.dim() == 3
    xb = x.unsqueeze(0) if single else x
    n, c, h, w = xb.shape
    ks = kernel.shape[-1]
    if ks // 2 >= min(h, w):
        raise ValueError(f"blur kernel {ks}x{ks} is too large for a {h}x{w} image (reflect padding needs "
                         f"k // 2 < H and W); use a smaller kernel or a larger image")
    if kernel.dim() == 3 and kernel.shape[0] != n:
        raise ValueError(f"blur got {kernel.shape[0]} kernels for {n} images; give one per image or one (k, k)")
    k = kernel.to(device=x.device, dtype=x.dtype)
    k = k.expand(n, ks, ks) if k.dim() == 2 else k
    # conv2d correlates; flip for a true convolution (matters only for asymmetric kernels).
    weight = k.flip(-1, -2).repeat_interleave(c, dim=0).unsqueeze(1)   # (N*C, 1, k, k)
    padded = F.pad(xb.reshape(1, n * c, h, w), [ks // 2] * 4, mode="reflect")
    out = F.conv2d(padded, weight, groups=n * c).view(n, c, h, w)      # one group per channel
    return out[0] if single else out


# ----------------------------------------------------------------------------------------------
# Noise and JPEG
# ----------------------------------------------------------------------------------------------
def add_gaussian_noise(x: Tensor, sigma: Union[float, Tensor], generator: torch.Generator,
                       clip: bool = True) -> Tensor:
    """Add white Gaussian noise whose standard deviation is given in [0, 255] units.

    Papers state noise levels on the 8-bit scale ("σ = 25"); the noise added to the [0, 1]
    image has standard deviation ``sigma / 255``.

    Args:
        x: image(s), floating tensor ``(C, H, W)`` or ``(N, C, H, W)`` in [0, 1].
        sigma: noise level in [0, 255] units: a number, or a tensor ``(N,)`` with one level per image.
        generator: the source of randomness (the noise is drawn on the generator's device and
            moved to ``x``'s, so a CPU generator gives the same noise on every device).
        clip: clamp the result to [0, 1] (images keep the [0, 1] contract).

    Returns:
        Noisy tensor, same shape, dtype and device.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> y = add_gaussian_noise(torch.full((3, 64, 64), 0.5), 25, g, clip=False)
        >>> round((y - 0.5).std().item() * 255)
        25
    """
    _check_image(x, "add_gaussian_noise")
    _require_generator(generator, "add_gaussian_noise")
    sig = torch.as_tensor(sigma, dtype=x.dtype)
    if (sig < 0).any():
        raise ValueError(f"noise sigma must be >= 0 (in [0, 255] units), got {sigma!r}")
    if sig.dim() == 1:
        if x.dim() != 4 or sig.shape[0] != x.shape[0]:
            raise ValueError(f"per-image sigma needs a batch (N, C, H, W) with N = {sig.shape[0]}, got {tuple(x.shape)}")
        sig = sig.view(-1, 1, 1, 1)
    elif sig.dim() != 0:
        raise ValueError(f"sigma must be a number or a 1-D tensor (N,), got shape {tuple(sig.shape)}")
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=generator.device).to(x.device)
    out = x + noise * (sig.to(x.device) / 255)
    return out.clamp(0, 1) if clip else out


def jpeg(x: Tensor, quality: Union[int, Sequence[int]]) -> Tensor:
    """JPEG-compress image(s) with Pillow (4:2:0 chroma subsampling, Pillow's default) and decode.

    The image goes through uint8 as a file would: ``round_to_uint8`` -> JPEG -> uint8 -> [0, 1].

    Args:
        x: image(s), floating tensor ``(C, H, W)`` or ``(N, C, H, W)`` in [0, 1], C = 3 (RGB) or 1.
        quality: JPEG quality 1..100 (Pillow; 95 is its highest recommended), or one per image.

    Returns:
        Decoded tensor, same shape, dtype and device, on the uint8 grid.

    Example:
        >>> jpeg(torch.rand(3, 16, 16), 30).shape
        torch.Size([3, 16, 16])
    """
    _check_image(x, "jpeg")
    single = x.dim() == 3
    xb = x.unsqueeze(0) if single else x
    if xb.shape[1] not in (1, 3):
        raise ValueError(f"jpeg needs 1 or 3 channels, got {xb.shape[1]} in shape {tuple(x.shape)}")
    qualities = [quality] * xb.shape[0] if isinstance(quality, (int, np.integer)) else list(quality)
    if len(qualities) != xb.shape[0] or not all(1 <= int(q) <= 100 for q in qualities):
        raise ValueError(f"jpeg quality must be an int in 1..100 (or one per image), got {quality!r}")
    arrays = round_to_uint8(xb.detach()).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = []
    for arr, q in zip(arrays, qualities):                  # HWC uint8 only at "file I/O"
        img = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(q))
        dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert(img.mode))
        out.append(torch.from_numpy(dec.copy()).reshape(arr.shape))
    y = torch.stack(out).permute(0, 3, 1, 2).to(device=x.device, dtype=x.dtype) / 255
    return y[0] if single else y


# ----------------------------------------------------------------------------------------------
# The pipeline
# ----------------------------------------------------------------------------------------------
KernelSpec = Union[Tensor, Callable[[torch.Generator], Tensor], None]


@dataclass
class Degradation:
    """The degradation ``y = JPEG((x ⊛ k)↓s + n)``, callable as ``degradation(hr, generator) -> lr``.

    Steps, each optional: blur with ``k`` -> downsample by ``scale`` -> add noise -> JPEG -> round
    to uint8. Without a kernel, ``↓s`` is MATLAB bicubic (:func:`bicubic_downscale`: the standard
    "BI" benchmark setting). With a kernel, ``↓s`` is direct s-fold subsampling
    ``(x ⊛ k)[..., ::s, ::s]`` by default (keeping the top-left pixel of each s x s cell): the
    textbook model, where the kernel alone does the low-pass filtering (USRNet's direct
    downsampler, DASR's ``'s-fold'`` mode). Note that the released SRMD, IKC and DASR code blur and
    then *bicubic*-downsample by default; use ``downsample="bicubic"`` (MATLAB-style
    :func:`imresize`) to follow them.

    Random parts are drawn per image, in this order: kernels, noise levels, noise, JPEG
    qualities; so the same generator state gives the same LR batch.

    Args:
        scale: integer SR scale; H and W of ``hr`` must be divisible by it.
        kernel: ``None`` (no blur), a fixed ``(k, k)`` kernel, or a sampler ``generator -> (k, k)``
            called once per image, e.g.
            ``functools.partial(random_gaussian_kernel, 21, (0.2, 4.0), isotropic=False)``
            (called as ``sampler(generator)``).
        noise_sigma: Gaussian noise level in [0, 255] units: a number, or ``(low, high)`` for
            ``σ ~ U(low, high)`` per image (DASR: ``(0, 25)``).
        jpeg_quality: ``None`` (no JPEG), a quality, or ``(low, high)`` for an integer quality
            drawn uniformly per image (inclusive).
        downsample: with a kernel, ``"direct"`` or ``"bicubic"``.
        quantize: round the LR to the uint8 grid, as an LR image saved to PNG.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> deg = Degradation(4, kernel=isotropic_gaussian_kernel(21, 2.0), noise_sigma=(0, 10))
        >>> deg(torch.rand(2, 3, 64, 64), g).shape
        torch.Size([2, 3, 16, 16])
        >>> Degradation.bicubic(2)(torch.rand(3, 8, 8), None).shape
        torch.Size([3, 4, 4])
    """

    scale: int
    kernel: KernelSpec = None
    noise_sigma: Union[float, tuple[float, float]] = 0.0
    jpeg_quality: Union[int, tuple[int, int], None] = None
    downsample: str = "direct"
    quantize: bool = True

    def __post_init__(self) -> None:
        self.scale = _check_int_scale(self.scale, "Degradation")
        if self.downsample not in ("direct", "bicubic"):
            raise ValueError(f"Degradation downsample must be 'direct' or 'bicubic', got {self.downsample!r}")
        if isinstance(self.kernel, Tensor) and self.kernel.dim() != 2:
            raise ValueError(f"a fixed Degradation kernel must be (k, k), got {tuple(self.kernel.shape)}; "
                             "for per-image kernels pass a sampler generator -> (k, k)")

    @classmethod
    def bicubic(cls, scale: int) -> "Degradation":
        """The standard BI degradation: MATLAB bicubic downscale, rounded to uint8 (deterministic)."""
        return cls(scale)

    @property
    def is_random(self) -> bool:
        """Whether calling this degradation draws random numbers (and so needs a generator)."""
        return (callable(self.kernel) and not isinstance(self.kernel, Tensor)) \
            or isinstance(self.noise_sigma, (tuple, list)) or isinstance(self.jpeg_quality, (tuple, list)) \
            or self.noise_sigma != 0

    def __call__(self, hr: Tensor, generator: Union[torch.Generator, None] = None) -> Tensor:
        """Degrade HR image(s) ``(3, H, W)`` or ``(N, 3, H, W)`` in [0, 1] to LR of the same rank."""
        _check_image(hr, "Degradation")
        if self.is_random:
            _require_generator(generator, "this Degradation (random kernel, noise or JPEG quality)")
        single = hr.dim() == 3
        x = hr.unsqueeze(0) if single else hr
        n, s = x.shape[0], self.scale
        if x.shape[-2] % s or x.shape[-1] % s:
            raise ValueError(f"Degradation(scale={s}) needs H and W divisible by {s}, got "
                             f"{x.shape[-2]}x{x.shape[-1]}; crop with srlib.degrade.mod_crop(hr, {s})")

        if self.kernel is None:
            x = bicubic_downscale(x, s, quantize=self.quantize)
        else:
            if isinstance(self.kernel, Tensor):
                kernels = self.kernel
            else:
                kernels = torch.stack([self.kernel(generator) for _ in range(n)])
            x = blur(x, kernels)
            x = x[..., ::s, ::s] if self.downsample == "direct" else imresize(x, scale=1 / s)

        if isinstance(self.noise_sigma, (tuple, list)):
            low, high = self.noise_sigma
            sigma = torch.tensor([_uniform(generator, low, high) for _ in range(n)])
            x = add_gaussian_noise(x, sigma, generator)
        elif self.noise_sigma > 0:
            x = add_gaussian_noise(x, self.noise_sigma, generator)

        if self.jpeg_quality is not None:
            if isinstance(self.jpeg_quality, (tuple, list)):
                low, high = self.jpeg_quality
                quality = torch.randint(int(low), int(high) + 1, (n,), generator=generator,
                                        device=generator.device).tolist()
            else:
                quality = self.jpeg_quality
            x = jpeg(x, quality)
        if self.quantize:
            x = round_to_uint8(x)
        return x[0] if single else x
