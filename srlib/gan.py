"""Adversarial fine-tuning of an SR generator (SRGAN, ESRGAN): the loop, two recipes, a health check.

Both papers first train the generator for PSNR, then continue from those weights against a
discriminator. :func:`finetune_gan` is that continuation, one plain alternation per step:

1. **discriminator step**: score real HR patches and the generator's outputs *detached* (this step
   must not change G), ``srlib.losses.discriminator_loss``, one Adam step on D;
2. **generator step**: content loss + pixel L1 + adversarial loss (``srlib.losses.generator_loss``,
   judged by the just-updated D), one Adam step on G.

Non-finite losses stop training with ``FloatingPointError``; :func:`gan_health` reads the history
for the two silent failures (a discriminator that wins outright, one that learns nothing).

:data:`RECIPES` holds the losses, weights and discriminators of the two papers as data, scaled to
the course's tiny networks, so that the chapter page (``book/05_perceptual/srgan_esrgan.ipynb``) and
``scripts/train_gan_zoo.py`` fine-tune with the same settings; :func:`finetune_with_recipe` builds
everything a recipe names and runs the loop.

Images are float32 (N, 3, H, W) RGB in [0, 1].
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .losses import GAN_KINDS, PerceptualLoss, discriminator_loss, generator_loss
from .train import BatchSource, guarded_step, pick_device, validate

__all__ = ["GANRecipe", "RECIPES", "finetune_gan", "finetune_with_recipe", "calibrated", "gan_health",
           "chance_level", "compact_history", "validate_texture_distance", "HISTORY_KEYS"]

# What finetune_gan records at every step.
HISTORY_KEYS = ("step", "loss_d", "loss_g", "loss_adv", "loss_content", "loss_pixel", "score_gap")

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ------------------------------------------------------------------------------------------- recipes

@dataclass(frozen=True)
class GANRecipe:
    """One paper's adversarial fine-tuning, as data.

    Attributes:
        name: ``"srgan"`` or ``"esrgan"``.
        content_layer: the feature layer of the content loss (the self-trained VGG19 extractor stops
            at ``relu3_4``; the papers use ``relu5_4`` / ``conv5_4``).
        content_criterion: ``"mse"`` (SRGAN) or ``"l1"`` (ESRGAN).
        before_activation: read the layer before its ReLU (ESRGAN's ``conv`` features).
        gan_kind: ``"vanilla"`` (SRGAN) or ``"ragan"`` (ESRGAN's relativistic average GAN).
        gan_weight: weight of the adversarial loss (SRGAN 1e-3, ESRGAN 5e-3).
        pixel_weight: weight of the pixel L1 loss (ESRGAN 1e-2, SRGAN none).
        discriminator: factory name in ``srlib.models.srresnet`` / ``srlib.models.esrgan``.
        content_weight: weight of the (calibrated, see :func:`calibrated`) content loss.
        lr: Adam learning rate of both networks (betas 0.9, 0.99).
        batch_size: patches per step.
        patch_size: HR patch side; the tiny discriminators are built for 48 px.
    """

    name: str
    content_layer: str
    content_criterion: str
    before_activation: bool
    gan_kind: str
    gan_weight: float
    pixel_weight: float
    discriminator: str
    content_weight: float = 1.0
    lr: float = 1e-4
    batch_size: int = 8
    patch_size: int = 48

    def content_loss(self, features=None) -> PerceptualLoss:
        """The recipe's feature loss; ``features``: VGG19 weights as ``PerceptualLoss`` takes them
        (``"selfsup"``, a path, or None for random weights)."""
        return PerceptualLoss({self.content_layer: 1.0}, criterion=self.content_criterion, weights=features,
                              before_activation=self.before_activation)

    def make_discriminator(self, input_size: int | None = None) -> nn.Module:
        """A fresh discriminator for ``input_size`` px patches (default: the recipe's patch size)."""
        from .models import esrgan, srresnet

        factory = getattr(srresnet, self.discriminator, None) or getattr(esrgan, self.discriminator)
        return factory(input_size=input_size or self.patch_size)

    def as_dict(self) -> dict:
        """Plain dict of every field (for provenance records)."""
        return asdict(self)


RECIPES: dict[str, GANRecipe] = {
    # SRGAN (Ledig et al. 2017): MSE on VGG features after the ReLU, 1e-3 x vanilla GAN, no pixel loss.
    "srgan": GANRecipe(name="srgan", content_layer="relu3_4", content_criterion="mse", before_activation=False,
                       gan_kind="vanilla", gan_weight=1e-3, pixel_weight=0.0,
                       discriminator="srgan_discriminator_tiny"),
    # ESRGAN (Wang et al. 2018): L1 on features before the ReLU, 5e-3 x RaGAN, 1e-2 x pixel L1.
    "esrgan": GANRecipe(name="esrgan", content_layer="relu3_4", content_criterion="l1", before_activation=True,
                        gan_kind="ragan", gan_weight=5e-3, pixel_weight=1e-2,
                        discriminator="vgg_discriminator_tiny"),
}


# --------------------------------------------------------------------------------------------- loop

def calibrated(loss: Loss, G: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> Loss:
    """``loss`` divided by its value for ``G`` on ``batch = (lr, hr)``, so that it starts near 1.

    A feature loss's scale depends on the feature network (random, self-trained, real VGG); dividing
    by its starting value makes the papers' relative weights meaningful whatever the features.
    """
    lr, hr = batch
    with torch.no_grad():
        value = loss(G(lr), hr).item()
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"cannot calibrate the content loss: its value on the calibration batch is {value}")
    return lambda sr, hr: loss(sr, hr) / value


def finetune_gan(G: nn.Module, D: nn.Module, data: BatchSource, steps: int, *, content: Loss,
                 gan_kind: str = "vanilla", gan_weight: float = 1e-3, content_weight: float = 1.0,
                 pixel_weight: float = 0.0, lr: float = 1e-4, lr_d: float | None = None, batch_size: int = 8,
                 device: str | torch.device | None = "cpu", seed: int = 0) -> dict[str, list]:
    """Fine-tune generator ``G`` against discriminator ``D``, alternating one step of each.

    Args:
        G: the generator (usually a PSNR-trained checkpoint); trained in place, returned in eval mode.
        D: the discriminator, sized for the HR patches; trained in place.
        data: anything with ``sample_batch(batch_size, generator) -> (lr, hr)``, e.g.
            ``srlib.data.PatchDataset``.
        steps: number of (D step, G step) pairs.
        content: ``content(sr, hr) -> scalar``, e.g. a calibrated ``PerceptualLoss`` (moved to ``device``
            if it is a module).
        gan_kind: ``"vanilla"`` or ``"ragan"`` (see ``srlib.losses``).
        gan_weight, content_weight, pixel_weight: the generator's loss is
            ``content_weight * content + pixel_weight * L1 + gan_weight * adversarial``.
        lr: Adam learning rate of both networks (betas 0.9, 0.99 as ESRGAN).
        lr_d: the discriminator's own learning rate, if it should differ (a slower discriminator is one
            remedy when it wins outright).
        batch_size: patches per step.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``... (``srlib.train.pick_device``).
        seed: seeds the batch sampling and torch's global RNG.

    Returns:
        The history, one entry per step for each of :data:`HISTORY_KEYS`: ``loss_d`` (the
        discriminator's loss), ``loss_g`` (the generator's total), ``loss_adv``, ``loss_content``,
        ``loss_pixel`` (unweighted) and ``score_gap`` (mean real minus mean fake logit, as the
        discriminator saw them in its step, before its update).

    Raises:
        FloatingPointError: a loss became NaN or infinite (naming the step and the losses); lower the
            learning rate or the adversarial weight.
    """
    if gan_kind not in GAN_KINDS:
        raise ValueError(f"unknown GAN loss {gan_kind!r}; use one of {GAN_KINDS}")
    device = pick_device(device, verbose=False)
    G.to(device).train()
    D.to(device).train()
    if isinstance(content, nn.Module):
        content.to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr if lr_d is None else lr_d, betas=(0.9, 0.99))
    generator = torch.Generator().manual_seed(seed)  # batches depend on the seed only
    torch.manual_seed(seed)
    history: dict[str, list] = {k: [] for k in HISTORY_KEYS}
    for step in range(1, steps + 1):
        lr_batch, hr = (t.to(device) for t in data.sample_batch(batch_size, generator))
        sr = G(lr_batch)

        # 1. the discriminator, on real HR patches and detached fakes
        real_logits, fake_logits = D(hr), D(sr.detach())
        loss_d = discriminator_loss(real_logits, fake_logits, gan_kind)
        guarded_step(opt_d, loss_d, lambda: f"step {step}: non-finite discriminator loss ({loss_d.item()}); "
                                    "lower the learning rate or the adversarial weight")

        # 2. the generator: content + pixel + adversarial, judged by the updated discriminator
        fake_for_g = D(sr)
        real_for_g = D(hr).detach() if gan_kind == "ragan" else None  # RaGAN compares with the reals
        loss_adv = generator_loss(fake_for_g, real_for_g, gan_kind)
        loss_content, loss_pixel = content(sr, hr), F.l1_loss(sr, hr)
        loss_g = content_weight * loss_content + pixel_weight * loss_pixel + gan_weight * loss_adv
        guarded_step(opt_g, loss_g, lambda: f"step {step}: non-finite generator loss ({loss_g.item()}: content "
                                    f"{loss_content.item()}, pixel {loss_pixel.item()}, adversarial "
                                    f"{loss_adv.item()}); lower the learning rate or the adversarial weight")

        for key, value in (("step", step), ("loss_d", loss_d), ("loss_g", loss_g), ("loss_adv", loss_adv),
                           ("loss_content", loss_content), ("loss_pixel", loss_pixel),
                           ("score_gap", real_logits.mean() - fake_logits.mean())):
            history[key].append(value if key == "step" else value.item())
    G.eval()
    D.eval()
    return history


def finetune_with_recipe(G: nn.Module, data: BatchSource, recipe: GANRecipe | str, steps: int, *,
                         features=None, batch_size: int | None = None, lr: float | None = None,
                         lr_d: float | None = None, device: str | torch.device | None = "cpu", seed: int = 0,
                         calibration_seed: int = 123) -> tuple[dict[str, list], nn.Module]:
    """Build the content loss and discriminator a recipe names, calibrate, and run :func:`finetune_gan`.

    Args:
        G: the generator, fine-tuned in place.
        data: batch source whose HR patches have the discriminator's size (``data.patch_size`` when
            present, else the recipe's).
        recipe: a :class:`GANRecipe` or a key of :data:`RECIPES`.
        steps: GAN steps.
        features: VGG19 weights of the content loss (``"selfsup"``, a path, None for random).
        batch_size, lr: override the recipe's.
        lr_d: the discriminator's learning rate, if not ``lr`` (see :func:`finetune_gan`).
        device, seed: as :func:`finetune_gan`. The discriminator is initialised from torch's global RNG
            as it stands (seed it before calling for a reproducible run).
        calibration_seed: the batch the content loss is calibrated on (:func:`calibrated`).

    Returns:
        ``(history, discriminator)``.
    """
    recipe = RECIPES[recipe] if isinstance(recipe, str) else recipe
    batch_size = batch_size or recipe.batch_size
    device = pick_device(device, verbose=False)
    content = recipe.content_loss(features).to(device)
    G.to(device)
    calibration = tuple(t.to(device) for t in data.sample_batch(batch_size, torch.Generator().manual_seed(calibration_seed)))
    content = calibrated(content, G, calibration)
    D = recipe.make_discriminator(getattr(data, "patch_size", None))
    history = finetune_gan(G, D, data, steps, content=content, gan_kind=recipe.gan_kind,
                           gan_weight=recipe.gan_weight, content_weight=recipe.content_weight,
                           pixel_weight=recipe.pixel_weight, lr=lr or recipe.lr, lr_d=lr_d, batch_size=batch_size,
                           device=device, seed=seed)
    return history, D


# ------------------------------------------------------------------------------------------- health

def chance_level(kind: str) -> float:
    """The discriminator's loss when it cannot tell real from fake: 2 log 2 (vanilla), log 2 (halved RaGAN)."""
    if kind not in GAN_KINDS:
        raise ValueError(f"unknown GAN loss {kind!r}; use one of {GAN_KINDS}")
    return math.log(2) * (2 if kind == "vanilla" else 1)


def gan_health(history: Mapping[str, list], kind: str, window: int = 20) -> str:
    """A verdict on the last ``window`` steps of a :func:`finetune_gan` history.

    * ``"discriminator wins outright ..."``: its mean loss is below 5 % of chance level; the generator's
      adversarial gradient is then saturated and carries no information;
    * ``"discriminator learns nothing ..."`` (collapse): its loss sits at chance level (within 1 %)
      and the real and fake scores do not separate (mean score gap below 1e-3);
    * ``"healthy: ..."`` otherwise.

    Returns:
        One line, starting with ``"healthy"`` only in the last case.
    """
    recent = list(history["loss_d"])[-window:]
    if not recent:
        raise ValueError("gan_health needs a history with at least one step")
    gaps = list(history["score_gap"])[-window:]
    mean_d, mean_gap = sum(recent) / len(recent), sum(gaps) / len(gaps)
    balanced = chance_level(kind)
    if mean_d < 0.05 * balanced:
        return f"discriminator wins outright (loss {mean_d:.3f}): the generator's adversarial signal is saturated"
    if abs(mean_d - balanced) < 0.01 * balanced and abs(mean_gap) < 1e-3:
        return f"discriminator learns nothing (loss stuck at {balanced:.3f})"
    return f"healthy: discriminator loss {mean_d:.3f} (chance level {balanced:.3f})"


def compact_history(history: Mapping[str, list], every: int = 50) -> dict[str, list]:
    """Means over consecutive blocks of ``every`` steps (the last block may be shorter), for storing.

    ``step`` holds the last step of each block; every other key its block mean, rounded to 5
    significant digits. The result plots with ``srlib.viz.plot_history`` like the full history.
    """
    steps = list(history["step"])
    out: dict[str, list] = {k: [] for k in history}
    for start in range(0, len(steps), every):
        block = slice(start, start + every)
        for key, values in history.items():
            if key == "step":
                out[key].append(steps[block][-1])
            else:
                chunk = list(values)[block]
                out[key].append(float(f"{sum(chunk) / len(chunk):.5g}"))
    return out


# ------------------------------------------------------------------------------------------ scoring

def validate_texture_distance(model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
                              hr_images: Mapping[str, torch.Tensor], scale: int) -> float:
    """Mean texture-statistics distance (``srlib.metrics.texture_distance``) over HR images, in grey levels.

    The same protocol as ``srlib.train.validate``: each HR image is mod-cropped, bicubic-downscaled
    MATLAB-style and rounded, super-resolved, and compared on Y with a ``scale``-pixel shave.

    Args:
        model: an SR network, or any callable ``lr (1, 3, h, w) -> sr`` (e.g. bicubic interpolation).
        hr_images: name -> HR image (3, H, W) in [0, 1].
        scale: upscaling factor.
    """
    return validate(model, dict(hr_images), scale, texture=True)["tsd"]
