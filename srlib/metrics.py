"""PSNR and SSIM with the evaluation protocol of the SR papers by default.

What the papers' MATLAB scripts (``Evaluate_PSNR_SSIM.m`` of EDSR/RCAN and their descendants) do,
and what :func:`psnr` and :func:`ssim` do unless told otherwise:

1. the SR output is clamped and rounded to uint8 (the HR image from a PNG already is);
2. both images go to luma Y by BT.601 (``rgb2ycbcr``, Y in [16, 235]), on the [0, 255] scale,
   without rounding Y;
3. ``scale`` pixels are shaved off every border (where SR methods lack context and differ most);
4. PSNR = ``10 log10(255² / MSE)``; SSIM is Wang et al.'s ``ssim_index``: 11x11 Gaussian window
   (sigma 1.5), K1 = 0.01, K2 = 0.03, L = 255, 'valid' filtering, mean of the SSIM map.

The RGB variants (``y_channel=False``, :func:`psnr_rgb`, :func:`ssim_rgb`) give the numbers that
some code bases report instead: PSNR from the MSE over all three channels, SSIM averaged over
channels. RGB PSNR is lower: exactly 20 log10(255 / 219) = 1.32 dB for grey images (studio-swing
Y spans only 219 of the 255 levels, which shrinks every error), 1.4-2.5 dB for the colour photos
of ``scripts/protocol_check.py`` (bicubic x2-x4) and 3.8 dB for its saturated colour wheel. That
alone makes tables from different code bases disagree.

Images: torch floating tensors ``(3, H, W)`` or ``(N, 3, H, W)``, RGB in [0, 1]; one channel
(``(1, H, W)``, ``(N, 1, H, W)``) is taken as Y (or grey) already. Computation is in float64 (as
MATLAB's doubles) on the input's device. A single image gives a Python float, a batch a float64
tensor ``(N,)`` of per-image values.
"""
from __future__ import annotations

from typing import Union

import torch
from torch import Tensor

from .color import rgb_to_y
from .degrade import round_to_uint8

__all__ = ["psnr", "ssim", "psnr_rgb", "ssim_rgb", "evaluate", "neighbour_differences", "texture_distance"]

SSIM_WINDOW = 11     # Wang et al.: fspecial('gaussian', 11, 1.5)
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
DATA_RANGE = 255.0   # L: metrics are measured on the 8-bit scale


def _prepare(sr: Tensor, hr: Tensor, scale, y_channel: bool, shave, quantize: bool,
             name: str) -> tuple[Tensor, Tensor, bool]:
    """Validate, quantize, convert to Y (or keep RGB), scale to [0, 255], shave -> (a, b, single)."""
    for label, t in (("sr", sr), ("hr", hr)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: {label} must be a torch.Tensor (3, H, W) or (N, 3, H, W), got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name}: {label} must be a floating tensor in [0, 1], got dtype {t.dtype}; "
                            "convert uint8 images with x.float() / 255")
    if sr.shape != hr.shape:
        raise ValueError(f"{name}: sr and hr shapes differ: sr {tuple(sr.shape)} vs hr {tuple(hr.shape)}; "
                         "mod-crop the HR image (srlib.degrade.mod_crop) so SR and HR sizes match")
    if sr.dim() not in (3, 4) or sr.shape[-3] not in (1, 3):
        raise ValueError(f"{name}: expected (3, H, W) or (N, 3, H, W) (or 1 channel for Y), got {tuple(sr.shape)}")
    if shave is None:
        shave = 0 if scale is None else scale
    if isinstance(shave, bool) or int(shave) != shave or shave < 0:
        raise ValueError(f"{name}: shave must be an integer >= 0, got {shave!r}")
    shave = int(shave)
    h, w = sr.shape[-2:]
    if 2 * shave >= min(h, w):
        raise ValueError(f"{name}: shaving {shave} px per border leaves nothing of a {h}x{w} image")
    single = sr.dim() == 3
    a, b = (t.unsqueeze(0) if single else t for t in (sr, hr))
    a, b = a.double(), b.double()
    if quantize:
        a, b = round_to_uint8(a), round_to_uint8(b)
    if y_channel and a.shape[1] == 3:
        a, b = rgb_to_y(a), rgb_to_y(b)
    a, b = a * DATA_RANGE, b * DATA_RANGE
    if shave:
        a, b = a[..., shave:-shave, shave:-shave], b[..., shave:-shave, shave:-shave]
    return a, b, single


def _out(values: Tensor, single: bool) -> Union[float, Tensor]:
    return values[0].item() if single else values


def psnr(sr: Tensor, hr: Tensor, scale: Union[int, None] = None, *, y_channel: bool = True,
         shave: Union[int, None] = None, quantize: bool = True) -> Union[float, Tensor]:
    """Peak signal-to-noise ratio in dB on the [0, 255] scale, the papers' protocol by default.

    Args:
        sr: super-resolved image(s), floating ``(3, H, W)`` or ``(N, 3, H, W)`` in [0, 1]
            (or one channel, taken as Y).
        hr: ground truth of the same shape (mod-cropped), in [0, 1].
        scale: SR scale; sets the default border shave.
        y_channel: measure on BT.601 luma Y (papers) or on RGB (MSE over all channels).
        shave: pixels removed at each border; default ``scale`` (0 when ``scale`` is None).
        quantize: clamp and round both images to the uint8 grid first, as saving SR to PNG does.

    Returns:
        A float for one image, a float64 tensor ``(N,)`` for a batch. Identical images give
        ``inf`` (MSE = 0).

    Example:
        >>> hr = torch.rand(3, 32, 32)
        >>> psnr(hr, hr, 4)
        inf
        >>> round(psnr((hr + 0.01).clamp(0, 1), hr, 4, quantize=False), 1) > 30
        True
    """
    a, b, single = _prepare(sr, hr, scale, y_channel, shave, quantize, "psnr")
    mse = (a - b).pow(2).flatten(1).mean(dim=1)
    return _out(10 * torch.log10(DATA_RANGE ** 2 / mse), single)


def _gaussian_1d(device, dtype) -> Tensor:
    """1-D factor of fspecial('gaussian', 11, 1.5): exp(-x² / (2σ²)) on 11 taps, summing to 1.

    The 2-D window exp(-(x² + y²) / (2σ²)) / sum is the outer product of this with itself, so
    filtering rows then columns is the same 'valid' filter2 as MATLAB's, about 5x cheaper.
    """
    r = torch.arange(SSIM_WINDOW, dtype=torch.float64) - (SSIM_WINDOW - 1) / 2
    g = torch.exp(-(r ** 2) / (2 * SSIM_SIGMA ** 2))
    return (g / g.sum()).to(device=device, dtype=dtype)


def _ssim_per_image(a: Tensor, b: Tensor) -> Tensor:
    """Mean SSIM map per image, averaged over channels: a, b (N, C, H, W) on [0, 255] -> (N,)."""
    n, c, h, w = a.shape
    if min(h, w) < SSIM_WINDOW:
        raise ValueError(f"ssim needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after the shave, got {h}x{w}")
    g = _gaussian_1d(a.device, a.dtype)
    x, y = a.reshape(n * c, h, w), b.reshape(n * c, h, w)
    # The five local statistics in one 'valid' filtering pass: (5 * N * C, H, W) ->
    # (5 * N * C, H - 10, W - 10). unfold gives the 11-tap windows along a dimension, the matmul
    # weights them (faster than a float64 conv2d on the CPU, and the same maths).
    stats = torch.cat([x, y, x * x, y * y, x * y])
    stats = stats.unfold(1, SSIM_WINDOW, 1) @ g         # rows:    (5NC, H - 10, W)
    stats = stats.unfold(2, SSIM_WINDOW, 1) @ g         # columns: (5NC, H - 10, W - 10)
    mu_x, mu_y, e_xx, e_yy, e_xy = stats.chunk(5)
    c1, c2 = (SSIM_K1 * DATA_RANGE) ** 2, (SSIM_K2 * DATA_RANGE) ** 2
    # Weighted (population) variances and covariance, E[xy] - E[x]E[y] as in ssim_index.m.
    var_x, var_y, cov = e_xx - mu_x ** 2, e_yy - mu_y ** 2, e_xy - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(dim=1).view(n, c).mean(dim=1)


def ssim(sr: Tensor, hr: Tensor, scale: Union[int, None] = None, *, y_channel: bool = True,
         shave: Union[int, None] = None, quantize: bool = True) -> Union[float, Tensor]:
    """Structural similarity of Wang et al. (MATLAB ``ssim_index``), the papers' protocol by default.

    11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, L = 255, 'valid' filtering (no
    padding: the map is 10 pixels smaller than the image in each direction), mean of the map.
    On RGB (``y_channel=False``) the per-channel values are averaged.

    Args:
        sr: super-resolved image(s), floating ``(3, H, W)`` or ``(N, 3, H, W)`` in [0, 1]
            (or one channel, taken as Y).
        hr: ground truth of the same shape, in [0, 1].
        scale: SR scale; sets the default border shave.
        y_channel: measure on BT.601 luma Y (papers) or per RGB channel.
        shave: pixels removed at each border; default ``scale`` (0 when ``scale`` is None).
        quantize: clamp and round both images to the uint8 grid first.

    Returns:
        A float for one image (1.0 for identical images), a float64 tensor ``(N,)`` for a batch.

    Example:
        >>> hr = torch.rand(3, 32, 32)
        >>> ssim(hr, hr, 2)
        1.0
    """
    a, b, single = _prepare(sr, hr, scale, y_channel, shave, quantize, "ssim")
    return _out(_ssim_per_image(a, b), single)


def psnr_rgb(sr: Tensor, hr: Tensor, scale: Union[int, None] = None, *, shave: Union[int, None] = None,
             quantize: bool = True) -> Union[float, Tensor]:
    """:func:`psnr` on RGB (``y_channel=False``): the "other" number some code bases report.

    Example:
        >>> hr = torch.rand(3, 16, 16)
        >>> psnr_rgb(hr, hr)
        inf
    """
    return psnr(sr, hr, scale, y_channel=False, shave=shave, quantize=quantize)


def ssim_rgb(sr: Tensor, hr: Tensor, scale: Union[int, None] = None, *, shave: Union[int, None] = None,
             quantize: bool = True) -> Union[float, Tensor]:
    """:func:`ssim` on RGB (``y_channel=False``), averaged over the three channels.

    Example:
        >>> hr = torch.rand(3, 16, 16)
        >>> ssim_rgb(hr, hr)
        1.0
    """
    return ssim(sr, hr, scale, y_channel=False, shave=shave, quantize=quantize)


def evaluate(sr: Tensor, hr: Tensor, scale: Union[int, None], *, y_channel: bool = True,
             shave: Union[int, None] = None, quantize: bool = True) -> dict:
    """PSNR and SSIM in one call, with the same arguments as :func:`psnr` / :func:`ssim`.

    Returns:
        ``{"psnr": ..., "ssim": ...}``: floats for one image, tensors ``(N,)`` for a batch.

    Example:
        >>> hr = torch.rand(3, 32, 32)
        >>> evaluate(hr, hr, 4)
        {'psnr': inf, 'ssim': 1.0}
    """
    kw = dict(y_channel=y_channel, shave=shave, quantize=quantize)
    return {"psnr": psnr(sr, hr, scale, **kw), "ssim": ssim(sr, hr, scale, **kw)}


def neighbour_differences(y: Tensor, mask: Union[Tensor, None] = None) -> Tensor:
    """Differences of horizontally and vertically neighbouring pixels: the statistic TSD compares.

    Args:
        y: one channel, ``(..., H, W)`` (TSD uses luma on the [0, 255] scale).
        mask: optional ``(H, W)`` region: only the pairs with both pixels inside are kept.

    Returns:
        Without a mask, ``(..., D)`` with ``D = H (W - 1) + (H - 1) W``: the horizontal pairs (row by
        row), then the vertical ones. With a mask, a 1-D tensor of the kept pairs (``y`` must be 2-D).

    Example:
        >>> neighbour_differences(torch.tensor([[0., 1.], [3., 5.]]))
        tensor([1., 2., 3., 4.])
    """
    horizontal, vertical = y[..., :, 1:] - y[..., :, :-1], y[..., 1:, :] - y[..., :-1, :]
    if mask is None:
        return torch.cat([horizontal.flatten(-2), vertical.flatten(-2)], dim=-1)
    if y.dim() != 2 or mask.shape != y.shape:
        raise ValueError(f"a mask needs one 2-D image of its size, got y {tuple(y.shape)} and mask {tuple(mask.shape)}")
    mask = mask.bool()
    return torch.cat([horizontal[mask[:, 1:] & mask[:, :-1]], vertical[mask[1:] & mask[:-1]]])


def texture_distance(sr: Tensor, hr: Tensor, scale: Union[int, None] = None, *,
                     shave: Union[int, None] = None) -> Union[float, Tensor]:
    """Texture-statistics distance (TSD): how far the local-contrast statistics of ``sr`` are from ``hr``'s.

    What it measures, exactly: both images are rounded to uint8 levels, converted to luma Y (BT.601, on
    the [0, 255] scale) and shaved like :func:`psnr`; the differences of horizontally and vertically
    neighbouring pixels of each image are pooled into one set of values (the image's distribution of
    local contrasts); the result is the Wasserstein-1 (earth mover's) distance between the two
    distributions, in grey levels. Both sets have the same size, so that distance is the mean absolute
    difference of the sorted values.

    It compares *distributions*, not pixels: it is 0 for any rearrangement that keeps the histogram of
    neighbour differences, and small for a sharp output with plausible but wrong detail, while a smooth
    (blurred, PSNR-trained) output, whose differences crowd around 0, is far from a textured HR image.
    That makes it a crude stand-in for the "perceptual quality" axis of Blau and Michaeli's
    perception-distortion plane: it is blind to colour, layout and plausibility. Lower is closer.

    Args:
        sr, hr: ``(3, H, W)`` or ``(N, 3, H, W)`` RGB in [0, 1] (or one channel, taken as Y), same shape.
        scale: the SR factor; the default shave is ``scale`` pixels per border (0 when None).
        shave: pixels cut off every border, overriding the default.

    Returns:
        Grey levels: a float for one image, a float64 tensor ``(N,)`` for a batch.

    Example:
        >>> hr = torch.rand(3, 32, 32)
        >>> texture_distance(hr, hr, 4)
        0.0
        >>> texture_distance(torch.full_like(hr, 0.5), hr, 4) > 10  # flat output, noisy target
        True
    """
    a, b, single = _prepare(sr, hr, scale, True, shave, True, "texture_distance")

    def contrasts(y: Tensor) -> Tensor:  # (N, 1, H, W) -> (N, D) sorted neighbour differences
        return neighbour_differences(y).flatten(1).sort(dim=1).values

    return _out((contrasts(a) - contrasts(b)).abs().mean(dim=1), single)
