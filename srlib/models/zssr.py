"""ZSSR: "zero-shot" SR, a small CNN trained at test time on the test image alone (internal learning).

Paper: A. Shocher, N. Cohen, M. Irani, '"Zero-Shot" Super-Resolution Using Deep Internal Learning',
CVPR 2018 [shocher2018zssr]. Official code (TensorFlow): assafshocher/ZSSR (``ZSSR.py``,
``configs.py``, ``utils.py``).

No external training set: the LR test image ``I`` is its own. ``I`` and downscaled versions of it are
the "HR fathers"; each father downscaled once more by the SR factor ``s`` is its "LR son"; the network
learns son -> father on crops of these pairs, then applies the same map to ``I`` itself. Whatever
degradation relates the sons to the fathers (bicubic, or a known blur kernel) is the one the network
learns to undo, so it adapts to each image, at the price of training for every image.

The network (``configs.py``: width 64, depth 8) on the bicubic-upsampled input ``x``::

    x = bicubic(lr, s)
    y = x + conv(64 -> 3) o [ReLU o conv(64 -> 64)] x 6 o ReLU o conv(3 -> 64)  (x)

eight 3x3 convs **without biases**, ReLU after all but the last, the residual on the bicubic image
(``learn_residual``): 224,640 parameters at any scale (RGB). Initialisation: N(0, 0.1 / fan_in)
(``init_variance = 0.1``: small, because the network only learns a residual).

**The registered ``zssr`` model is only this network, and its weights are trained per image**: a
freshly created ``zssr`` is untrained, and no checkpoint can be shipped. :func:`zssr_super_resolve`
runs the whole procedure on one image: it builds the fathers (:func:`father_pool`), trains the
network on random son/father crops (:func:`train_zssr`, with a progress bar and a step budget), and
upscales with the geometric self-ensemble and back-projection (:func:`zssr_upscale`).

Differences with the official code, all in the test-time training:

* Fathers: a fixed pool of ``num_fathers`` downscales of the input (factors from 1 to ``min_scale``,
  official ``augment_min_scale = 0.5``), drawn with probability proportional to their area; the
  official code draws a continuous scale at each step and warps by a random affine map (any-angle
  rotation, shear, anisotropic scaling, cubic interpolation). Here the augmentation is the 8
  flips/rotations only (the official "no-interpolation" mode), which keeps the pixels exact.
* Learning rate: Adam 1e-3, divided by 10 at 50% and 75% of the step budget, ending at 1e-5. The
  official policy divides by 10 when a linear fit of the reconstruction error flattens and stops
  below 9e-6 (three drops, at most 3,000 iterations); a fixed schedule makes the run time the
  stated budget.
* The son is made with MATLAB-style bicubic ``imresize`` (optionally after a given blur kernel), as
  the official ``father_to_son``; its kernel re-centring (``kernel_shift``) is not needed because
  the blur is centred and the downscale is bicubic.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from . import register_model
from .common import build, conv3x3


@dataclass
class ZSSRConfig:
    num_feat: int = 64  # width of the hidden layers (configs.py width = 64)
    num_block: int = 6  # hidden conv+ReLU layers between the first and the last conv: depth 8 (configs.py)
    init_variance: float = 0.1  # weights ~ N(0, init_variance / fan_in) (configs.py init_variance)


class ZSSR(nn.Module):
    """The ZSSR network: bicubic upsampling + a residual from eight bias-free convs, RGB in and out.

    Its weights are meant to be trained on the test image itself (:func:`train_zssr`); see the module
    docstring.

    Args:
        scale: upscaling factor of the internal bicubic pre-upsampling (integer >= 2).
        num_feat: channels of the hidden layers. Default: 64.
        num_block: hidden conv+ReLU layers between the first and the last conv. Default: 6 (depth 8).
        init_variance: weights start as N(0, init_variance / fan_in). Default: 0.1.

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, scale*h, scale*w), not clamped.

    Example:
        >>> import torch
        >>> net = ZSSR(scale=2, num_feat=8, num_block=1)
        >>> net(torch.rand(1, 3, 6, 5)).shape
        torch.Size([1, 3, 12, 10])
    """

    def __init__(self, scale: int, num_feat: int = 64, num_block: int = 6, init_variance: float = 0.1):
        super().__init__()
        if not isinstance(scale, int) or scale < 2:
            raise ValueError(f"ZSSR needs an integer scale >= 2 (registered: 2, 3, 4), got {scale!r}")
        self.scale, self.init_variance = scale, init_variance
        layers: list[nn.Module] = [conv3x3(3, num_feat, bias=False), nn.ReLU(inplace=True)]
        for _ in range(num_block):
            layers += [conv3x3(num_feat, num_feat, bias=False), nn.ReLU(inplace=True)]
        layers.append(conv3x3(num_feat, 3, bias=False))  # no ReLU: the residual can be negative
        self.body = nn.Sequential(*layers)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw every weight from N(0, init_variance / fan_in) (a fresh network for a new image)."""
        for m in self.body:
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                nn.init.normal_(m.weight, 0.0, math.sqrt(self.init_variance / fan_in), generator=generator)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        from ..degrade import upscale_bicubic

        x = upscale_bicubic(lr, self.scale)  # the "interpolated LR son": (N, 3, s*h, s*w)
        return x + self.body(x)


# ------------------------------------------------------------------------------------- internal learning

def father_pool(image: torch.Tensor, scale: int, min_scale: float = 0.5, num_fathers: int = 6) -> list[torch.Tensor]:
    """The HR fathers: the test image and its bicubic downscales by factors from 1 to ``min_scale``.

    Args:
        image: the LR test image, (3, H, W) RGB in [0, 1].
        scale: SR factor; fathers smaller than ``4 * scale`` px on a side are dropped (their sons
            would be a few pixels).
        min_scale: smallest downscaling factor. Default: 0.5 (official ``augment_min_scale``).
        num_fathers: number of factors, evenly spaced in [min_scale, 1]. Default: 6.

    Returns:
        Fathers, largest (the image itself) first, each (3, h_i, w_i).

    Example:
        >>> [tuple(f.shape) for f in father_pool(torch.rand(3, 40, 32), 2, num_fathers=3)]
        [(3, 40, 32), (3, 30, 24), (3, 20, 16)]
    """
    from ..degrade import imresize

    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"father_pool expects one RGB image (3, H, W) in [0, 1], got {tuple(image.shape)}")
    if not 0 < min_scale <= 1 or num_fathers < 1:
        raise ValueError(f"need 0 < min_scale <= 1 and num_fathers >= 1, got {min_scale}, {num_fathers}")
    h, w = image.shape[-2:]
    fathers = []
    for factor in torch.linspace(1.0, min_scale, num_fathers).tolist():
        size = (round(h * factor), round(w * factor))
        if min(size) < 4 * scale:
            continue
        fathers.append(image if size == (h, w) else imresize(image, size=size).clamp(0, 1))
    if not fathers:
        raise ValueError(f"the image ({h}x{w}) is too small for ZSSR at x{scale}: it needs at least "
                         f"{4 * scale} px on each side")
    return fathers


def make_son(father: torch.Tensor, scale: int, kernel: torch.Tensor | None = None, noise_std: float = 0.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """The LR son of a father: (blur with ``kernel``, then) MATLAB bicubic downscale by ``scale``, (+ noise).

    Args:
        father: (N, 3, H, W) RGB in [0, 1], H and W divisible by ``scale``.
        kernel: a known blur kernel (k, k), or ``None`` for the bicubic degradation (official default).
        noise_std: std of Gaussian noise added to the son, in [0, 1] units (official ``noise_std``:
            0 for ideal images, 0.0125 for real ones). Needs ``generator`` when > 0.

    Returns:
        (N, 3, H / scale, W / scale), clamped to [0, 1].
    """
    from ..degrade import blur, imresize

    x = blur(father, kernel) if kernel is not None else father
    son = imresize(x, scale=1 / scale)
    if noise_std > 0:
        if generator is None:
            raise TypeError("make_son with noise_std > 0 needs a torch.Generator")
        son = son + noise_std * torch.randn(son.shape, generator=generator, device=generator.device).to(son.device)
    return son.clamp(0, 1)


def sample_son_father(fathers: list[torch.Tensor], scale: int, crop_size: int, generator: torch.Generator,
                      kernel: torch.Tensor | None = None, noise_std: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """One training pair: a random father (probability ∝ area), a random crop, a random flip/rotation.

    The crop side is ``crop_size`` or the father's smaller side, rounded down to a multiple of ``scale``.

    Returns:
        ``(son (1, 3, c/s, c/s), father crop (1, 3, c, c))``.
    """
    from ..data import dihedral

    areas = torch.tensor([float(f.shape[-2] * f.shape[-1]) for f in fathers], dtype=torch.float64)
    father = fathers[int(torch.multinomial(areas / areas.sum(), 1, generator=generator))]
    h, w = father.shape[-2:]
    c = min(crop_size, h, w) // scale * scale
    top = int(torch.randint(0, h - c + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - c + 1, (1,), generator=generator))
    k = int(torch.randint(0, 8, (1,), generator=generator))
    crop = dihedral(father[None, :, top:top + c, left:left + c], k)  # (1, 3, c, c)
    return make_son(crop, scale, kernel, noise_std, generator), crop


def train_zssr(model: nn.Module, image: torch.Tensor, steps: int, *, crop_size: int = 128,
               learning_rate: float = 1e-3, kernel: torch.Tensor | None = None, noise_std: float = 0.0,
               min_scale: float = 0.5, num_fathers: int = 6, seed: int = 0, progress: bool = True) -> list[float]:
    """Train a ZSSR network on one test image (in place): L1 between net(son) and its father.

    Args:
        model: a ZSSR network (``srlib.create_model("zssr", scale)``); its ``scale`` is the SR factor.
        image: the LR test image, (3, H, W) RGB in [0, 1].
        steps: optimiser steps (one son/father crop each, as the official code); take it from the
            budget, e.g. ``srlib.get_budget().steps(cpu=150)`` (3,000 on a GPU, the official
            ``max_iters``).
        crop_size: father crop side. Default: 128 (official).
        learning_rate: initial Adam learning rate, divided by 10 at 50% and 75% of ``steps``. Default: 1e-3.
        kernel: known blur kernel (k, k) of the degradation, or ``None`` (bicubic).
        noise_std: noise added to the sons, [0, 1] units. Default: 0.
        min_scale, num_fathers: see :func:`father_pool`.
        seed: seeds the crops, augmentations and noise (the network's initial weights are the caller's).
        progress: show a tqdm progress bar.

    Returns:
        The loss of every step.
    """
    from tqdm.auto import tqdm

    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    scale = model.scale
    device = next(model.parameters()).device
    fathers = [f.to(device) for f in father_pool(image.detach().float(), scale, min_scale, num_fathers)]
    kernel = kernel.to(device) if kernel is not None else None
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    drops = {math.ceil(0.5 * steps), math.ceil(0.75 * steps)}  # lr / 10 at these steps (see module docstring)
    model.train()
    losses = []
    bar = tqdm(total=steps, desc=f"ZSSR test-time training (x{scale})", unit="step", leave=True) if progress else None
    for step in range(steps):
        if step in drops and step > 0:
            for group in optimizer.param_groups:
                group["lr"] /= 10
        son, father = sample_son_father(fathers, scale, crop_size, generator, kernel, noise_std)
        loss = F.l1_loss(model(son), father)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
    if bar is not None:
        bar.close()
    model.eval()
    return losses


def _median(stack: torch.Tensor) -> torch.Tensor:
    """Median over dim 0, averaging the two middle values for an even count (as ``np.median``)."""
    ordered = stack.sort(dim=0).values
    n = stack.shape[0]
    return ordered[n // 2] if n % 2 else 0.5 * (ordered[n // 2 - 1] + ordered[n // 2])


def back_project(sr: torch.Tensor, lr: torch.Tensor, scale: int, kernel: torch.Tensor | None = None,
                 iters: int = 10) -> torch.Tensor:
    """Iterative back-projection: push ``sr`` towards consistency with ``lr`` under the degradation.

    ``sr <- clip(sr + bicubic_up(lr - down(sr)))``, ``iters`` times, with ``down`` as in :func:`make_son`.

    Args:
        sr: (N, 3, s*h, s*w); lr: (N, 3, h, w), both RGB in [0, 1].
    """
    from ..degrade import upscale_bicubic

    for _ in range(iters):
        sr = (sr + upscale_bicubic(lr - make_son(sr, scale, kernel), scale)).clamp(0, 1)
    return sr


@torch.no_grad()
def zssr_upscale(model: nn.Module, image: torch.Tensor, *, self_ensemble: bool = True,
                 back_projection_iters: int = 10, kernel: torch.Tensor | None = None) -> torch.Tensor:
    """Upscale the test image with a trained ZSSR network (official ``final_test``).

    With ``self_ensemble`` the network runs on the 8 flips/rotations of the image; each output is
    turned back, back-projected, and the median of the 8 is back-projected again.

    Args:
        model: the network trained on ``image`` by :func:`train_zssr`.
        image: the LR image, (3, H, W) RGB in [0, 1].
        self_ensemble: the 8-fold geometric self-ensemble (official ``output_flip = True``).
        back_projection_iters: iterations of :func:`back_project` (official default 10; 0 for noisy images).
        kernel: the blur kernel assumed in training, for the back-projection.

    Returns:
        (3, scale*H, scale*W) in [0, 1].
    """
    from ..data import dihedral, dihedral_inverse

    device = next(model.parameters()).device
    lr = image.detach().float()[None].to(device)  # (1, 3, H, W)
    kernel = kernel.to(device) if kernel is not None else None
    was_training = model.training
    model.eval()
    outputs = []
    for k in range(8 if self_ensemble else 1):
        sr = dihedral_inverse(model(dihedral(lr, k)), k).clamp(0, 1)  # (1, 3, sH, sW)
        outputs.append(back_project(sr, lr, model.scale, kernel, back_projection_iters))
    model.train(was_training)
    fused = _median(torch.stack(outputs))
    return back_project(fused, lr, model.scale, kernel, back_projection_iters)[0].cpu()


@dataclass
class ZSSRResult:
    """What :func:`zssr_super_resolve` returns: the image, the image-specific network, its history."""

    sr: torch.Tensor
    model: nn.Module
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0  # wall time of training + upscaling: ZSSR's cost per image


def zssr_super_resolve(image: torch.Tensor, scale: int, steps: int | None = None, *, name: str = "zssr",
                       self_ensemble: bool = True, back_projection_iters: int = 10, seed: int = 0,
                       device: str | torch.device = "cpu", **train_kwargs) -> ZSSRResult:
    """ZSSR on one LR image, end to end: a fresh network, test-time training, self-ensemble upscaling.

    Args:
        image: the LR image, (3, H, W) RGB in [0, 1].
        scale: SR factor.
        steps: training steps; ``None`` takes ``srlib.get_budget().steps(cpu=150)`` (150 on CPU, 3,000
            with the GPU budget: the official ``max_iters``).
        name: registered network, ``"zssr"`` (paper) or ``"zssr_tiny"``.
        self_ensemble, back_projection_iters: see :func:`zssr_upscale`.
        seed: seeds the initial weights and the training crops.
        device: where to train.
        **train_kwargs: more options of :func:`train_zssr` (``crop_size``, ``kernel``, ``noise_std``,
            ``progress``, ...).

    Returns:
        A :class:`ZSSRResult` (``sr`` is (3, scale*H, scale*W) in [0, 1]).

    Example:
        >>> import torch
        >>> out = zssr_super_resolve(torch.rand(3, 16, 16), 2, steps=2, name="zssr_tiny", crop_size=16,
        ...                          progress=False, self_ensemble=False, back_projection_iters=1)
        >>> out.sr.shape, len(out.losses)
        (torch.Size([3, 32, 32]), 2)
    """
    from .. import create_model, get_budget

    if steps is None:
        steps = get_budget().steps(cpu=150)
    start = time.perf_counter()
    model = create_model(name, scale=scale)
    model.reset_parameters(torch.Generator().manual_seed(seed))  # on the CPU, so any device gets the same weights
    model.to(device)
    kernel = train_kwargs.get("kernel")
    losses = train_zssr(model, image, steps, seed=seed, **train_kwargs)
    sr = zssr_upscale(model, image, self_ensemble=self_ensemble, back_projection_iters=back_projection_iters,
                      kernel=kernel)
    return ZSSRResult(sr, model, losses, time.perf_counter() - start)


SCALES = (2, 3, 4)
PAPER = "Shocher et al., CVPR 2018 (ZSSR)"


@register_model("zssr", scales=SCALES, paper=PAPER + "; weights trained per image", blind=True)
def zssr(scale: int = 4, **overrides) -> ZSSR:
    """The paper's ZSSR network (8 convs x 64, no biases): 224,640 parameters at any scale, untrained."""
    return build(ZSSR, scale, ZSSRConfig(), overrides)


@register_model("zssr_tiny", scales=SCALES, paper=PAPER + ", CPU preset; weights trained per image", blind=True)
def zssr_tiny(scale: int = 4, **overrides) -> ZSSR:
    # shrunk: width 64 -> 32, depth 8 -> 6 (num_block 6 -> 4): ~6x fewer multiply-adds per training step
    return build(ZSSR, scale, ZSSRConfig(num_feat=32, num_block=4), overrides)
