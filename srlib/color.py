"""RGB <-> YCbCr (ITU-R BT.601, "studio swing"), exactly as MATLAB's ``rgb2ycbcr`` for doubles.

SR papers measure PSNR/SSIM on the luma channel Y, and the early CNNs (SRCNN, VDSR, ...) are
trained on Y only. MATLAB's ``rgb2ycbcr`` maps RGB in [0, 1] to Y in [16/255, 235/255] and Cb, Cr
in [16/255, 240/255]:

    Y  =  16/255 + ( 65.481 R + 128.553 G +  24.966 B) / 255
    Cb = 128/255 + (-37.797 R -  74.203 G + 112.000 B) / 255
    Cr = 128/255 + (112.000 R -  93.786 G -  18.214 B) / 255

Images: torch floating tensors ``(..., 3, H, W)`` (CHW, NCHW or more leading dims), RGB in [0, 1].
Nothing is clamped, so a round trip is exact up to floating-point error.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["rgb_to_ycbcr", "ycbcr_to_rgb", "rgb_to_y"]

# MATLAB's matrix and offset (origin) for doubles, divided by 255; kept in float64 and cast to the
# input's dtype at use so float64 callers get float64 accuracy.
_RGB2YCBCR = torch.tensor(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]],
    dtype=torch.float64,
) / 255.0
_OFFSET = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64) / 255.0
# The exact inverse (MATLAB's ycbcr2rgb also inverts the same matrix).
_YCBCR2RGB = torch.linalg.inv(_RGB2YCBCR)


def _check(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} expects a torch.Tensor of shape (..., 3, H, W), got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} expects a floating tensor in [0, 1], got dtype {x.dtype}; "
            "convert uint8 images with x.float() / 255"
        )
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"{name} expects shape (..., 3, H, W) with 3 channels, got {tuple(x.shape)}")


def _apply(matrix: Tensor, x: Tensor) -> Tensor:
    # (3, 3) x (..., 3, H, W) -> (..., 3, H, W): mix the channel axis.
    return torch.einsum("ij,...jhw->...ihw", matrix.to(device=x.device, dtype=x.dtype), x)


def rgb_to_ycbcr(x: Tensor) -> Tensor:
    """RGB -> YCbCr (BT.601 studio swing), as MATLAB ``rgb2ycbcr`` on double images.

    Args:
        x: RGB image(s), floating tensor ``(..., 3, H, W)`` in [0, 1].

    Returns:
        YCbCr, same shape and dtype; Y in [16/255, 235/255], Cb/Cr in [16/255, 240/255].

    Example:
        >>> rgb_to_ycbcr(torch.ones(3, 1, 1)).flatten().mul(255).round().tolist()
        [235.0, 128.0, 128.0]
    """
    _check(x, "rgb_to_ycbcr")
    offset = _OFFSET.to(device=x.device, dtype=x.dtype)[:, None, None]
    return _apply(_RGB2YCBCR, x) + offset


def ycbcr_to_rgb(x: Tensor) -> Tensor:
    """YCbCr (BT.601 studio swing) -> RGB, the exact inverse of :func:`rgb_to_ycbcr` (no clamping).

    Args:
        x: YCbCr image(s), floating tensor ``(..., 3, H, W)`` on the [0, 1] scale.

    Returns:
        RGB, same shape and dtype (values may leave [0, 1] if the input is out of gamut).

    Example:
        >>> x = torch.rand(2, 3, 4, 4)
        >>> bool((ycbcr_to_rgb(rgb_to_ycbcr(x)) - x).abs().max() < 1e-6)
        True
    """
    _check(x, "ycbcr_to_rgb")
    offset = _OFFSET.to(device=x.device, dtype=x.dtype)[:, None, None]
    return _apply(_YCBCR2RGB, x - offset)


def rgb_to_y(x: Tensor) -> Tensor:
    """Luma Y of RGB image(s) (BT.601 studio swing, MATLAB ``rgb2ycbcr(...)(:, :, 1)``).

    Args:
        x: RGB image(s), floating tensor ``(..., 3, H, W)`` in [0, 1].

    Returns:
        Y with the channel axis kept: ``(..., 1, H, W)``, in [16/255, 235/255].

    Example:
        >>> rgb_to_y(torch.zeros(1, 3, 2, 2)).shape
        torch.Size([1, 1, 2, 2])
    """
    _check(x, "rgb_to_y")
    weights = _RGB2YCBCR[0].to(device=x.device, dtype=x.dtype)
    return torch.einsum("j,...jhw->...hw", weights, x).unsqueeze(-3) + _OFFSET[0].item()
