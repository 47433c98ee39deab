"""A plain, loop-by-loop numpy transcription of MATLAB's bicubic ``imresize`` (test helper only).

Written to be obviously faithful to ``imresize.m`` rather than fast, so that the vectorised torch
version in ``srlib.degrade`` can be checked against it. Images here are numpy float64 arrays
(H, W) or (H, W, C), MATLAB-style; ``uint8_passes=True`` emulates a uint8 input, for which
MATLAB's ``imresizemex`` rounds (half away from zero) and saturates after each 1-D pass.
"""
from __future__ import annotations

import math

import numpy as np


def cubic(t: float) -> float:
    """MATLAB's ``cubic``: Keys' kernel with a = -0.5."""
    a = abs(t)
    if a <= 1:
        return 1.5 * a ** 3 - 2.5 * a ** 2 + 1
    if a <= 2:
        return -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2
    return 0.0


def mirror(i: int, n: int) -> int:
    """1-based index i into 1..n with MATLAB's symmetric padding aux = [1:n, n:-1:1]."""
    aux = list(range(1, n + 1)) + list(range(n, 0, -1))
    return aux[(i - 1) % len(aux)]


def contributions(in_length: int, out_length: int, scale: float, antialiasing: bool = True):
    """Weights and 1-based indices, lists of rows, one row per output pixel (``contributions``)."""
    kernel_width = 4.0
    if scale < 1 and antialiasing:
        h = lambda t: scale * cubic(scale * t)  # noqa: E731
        kernel_width = kernel_width / scale
    else:
        h = cubic
    p = math.ceil(kernel_width) + 2
    weights, indices = [], []
    for x in range(1, out_length + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - kernel_width / 2)
        row_idx = [left + j for j in range(p)]
        row_w = [h(u - i) for i in row_idx]
        total = sum(row_w)
        weights.append([w / total for w in row_w])
        indices.append([mirror(i, in_length) for i in row_idx])
    # Drop the columns (tap positions) whose weight is zero for every output pixel.
    keep = [j for j in range(p) if any(row[j] != 0 for row in weights)]
    weights = [[row[j] for j in keep] for row in weights]
    indices = [[row[j] for j in keep] for row in indices]
    return weights, indices


def _uint8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(a + 0.5), 0, 255)


def resize_along(img: np.ndarray, dim: int, weights, indices) -> np.ndarray:
    """One 1-D pass along axis ``dim`` (0 = rows, 1 = columns), one output line at a time."""
    src = np.moveaxis(img, dim, 0)
    out = np.zeros((len(weights),) + src.shape[1:])
    for k, (row_w, row_i) in enumerate(zip(weights, indices)):
        acc = np.zeros(src.shape[1:])
        for w, i in zip(row_w, row_i):
            acc = acc + w * src[i - 1]
        out[k] = acc
    return np.moveaxis(out, 0, dim)


def imresize(img: np.ndarray, scale=None, output_shape=None, antialiasing: bool = True,
             uint8_passes: bool = False) -> np.ndarray:
    """MATLAB ``imresize(img, scale)`` or ``imresize(img, output_shape)`` with 'bicubic'.

    ``img`` is float64 (H, W) or (H, W, C); with ``uint8_passes`` it holds values on [0, 255]
    and each pass is rounded like a uint8 image.
    """
    in_shape = img.shape[:2]
    if output_shape is not None:
        out_shape = tuple(output_shape)
        scales = [out_shape[0] / in_shape[0], out_shape[1] / in_shape[1]]
    else:
        scales = [scale, scale]
        out_shape = tuple(math.ceil(scale * n) for n in in_shape)
    order = sorted(range(2), key=lambda d: scales[d])    # stable: rows first on ties
    out = img.astype(np.float64)
    for d in order:
        w, i = contributions(in_shape[d], out_shape[d], scales[d], antialiasing)
        out = resize_along(out, d, w, i)
        if uint8_passes:
            out = _uint8(out)
    return out
