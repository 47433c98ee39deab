"""Losses used across the course.

Images are torch float32 (N, 3, H, W) RGB in [0, 1]. Later chapters add perceptual, Gram/texture,
adversarial and contrastive losses here.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


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
