"""Running a trained SR network: batched, tiled for big images, optionally with self-ensemble.

Images are torch float32 (N, 3, h, w) or (3, h, w) RGB in [0, 1].
"""
from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def super_resolve(model: nn.Module, lr: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
    """Run ``model`` in eval mode on (N, 3, h, w) or (3, h, w) LR in [0, 1]; output clamped to [0, 1].

    ``extra`` inputs (e.g. the reference image of reference-based models) are passed after ``lr``.
    The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    single = lr.dim() == 3
    device = next(model.parameters()).device
    x = (lr[None] if single else lr).to(device)
    extra = tuple((e[None] if single else e).to(device) for e in extra)
    model.eval()
    try:
        out = model(x, *extra).clamp(0, 1)
    finally:
        model.train(was_training)
    return out[0] if single else out


@torch.no_grad()
def upscale_tiled(model: nn.Module, lr: torch.Tensor, scale: int, tile: int = 128, overlap: int = 16) -> torch.Tensor:
    """Super-resolve a big (3, h, w) LR image tile by tile, to bound memory.

    Tiles of ``tile`` LR pixels overlap by ``overlap`` pixels on each side; each output pixel is taken
    from the tile in which it lies farthest from a border (the overlap is cropped away), so seams from
    the zero padding at tile borders do not show.

    Returns:
        (3, scale*h, scale*w) in [0, 1].
    """
    if lr.dim() != 3 or lr.shape[0] != 3:
        raise ValueError(f"upscale_tiled expects one (3, h, w) image, got shape {tuple(lr.shape)}")
    if tile <= 2 * overlap:
        raise ValueError(f"tile ({tile}) must be larger than twice the overlap ({overlap})")
    _, h, w = lr.shape
    if h <= tile and w <= tile:
        return super_resolve(model, lr).cpu()
    out = torch.zeros(3, h * scale, w * scale)
    step = tile - 2 * overlap
    for top in range(0, h, step):
        for left in range(0, w, step):
            # the region this tile is responsible for, and the larger window it sees
            t0, l0 = max(top - overlap, 0), max(left - overlap, 0)
            t1, l1 = min(top + step + overlap, h), min(left + step + overlap, w)
            sr = super_resolve(model, lr[:, t0:t1, l0:l1]).cpu()
            bottom, right = min(top + step, h), min(left + step, w)
            out[:, top * scale:bottom * scale, left * scale:right * scale] = \
                sr[:, (top - t0) * scale:(bottom - t0) * scale, (left - l0) * scale:(right - l0) * scale]
    return out
