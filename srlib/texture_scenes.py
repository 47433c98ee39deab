"""Texture scenes: images composed from the bundled textures, with known class maps (for SFTGAN).

SFTGAN (Wang et al., CVPR 2018 [wang2018sftgan]) conditions SR on a segmentation probability map:
at x4 the LR pixels of grass and of a bush look alike, and the class decides which texture to
synthesise. The paper's prior is a 52M-parameter segmentation network trained on outdoor scenes,
which cannot be downloaded here. This module builds scenes whose class maps are known exactly, so
the prior is perfect and the effect of the condition can be measured.

A scene of ``size`` x ``size`` HR pixels:

* **class map**: the Voronoi cells of ``regions`` random points, each cell given a random class of
  :data:`CLASSES` (:func:`random_class_map`);
* **base**: a smooth colour field (a 3 x 3 grid of random colours, bicubically upsampled): the low
  frequencies, which the LR image keeps;
* **detail**: inside each cell, its class's texture (``skimage.data`` brick, grass or gravel at a
  random position), high-passed (the texture minus its Gaussian blur of sigma
  :data:`HIGHPASS_SIGMA`) and scaled to a standard deviation of :data:`DETAIL_STD`, added to all
  three channels. ``flat`` cells (a sky) get none.

``hr = clamp(base + detail, 0, 1)`` and ``lr = bicubic_downscale(hr, 4)`` (the benchmark
protocol, uint8 grid). The high-pass is the point of the construction: x4 downsampling removes
most of the detail (:func:`lr_detail_ratio` measures how much survives), so the LR image alone
barely tells the classes apart and the map has to.

Textures are split by columns so that test scenes never reuse training texture pixels: ``train``
scenes sample the left 3/4 of each 512 x 512 texture and ``test`` scenes the right 1/4. (brick and
grass are among the bundled *training* photos, gravel among the validation photos of the PSNR
chapters; these scenes are a separate benchmark.)

Everything is deterministic given a ``torch.Generator``. Images are float32 (3, H, W) RGB in [0, 1];
class maps are int64 (H, W); :func:`one_hot` gives the (num_classes, H, W) probability map that
``sftgan(lr, seg)`` takes.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from .color import rgb_to_y
from .data import bundled_image
from .degrade import bicubic_downscale, isotropic_gaussian_kernel, round_to_uint8, upscale_bicubic
from .metrics import neighbour_differences, psnr, texture_distance
from .models import create_model
from .train import guarded_step

__all__ = ["CLASSES", "SPLITS", "HIGHPASS_SIGMA", "DETAIL_STD", "TextureScene", "random_class_map", "one_hot",
           "texture_detail", "compose_scene", "random_scene", "TextureSceneDataset", "lr_detail_ratio",
           "region_contrasts", "TextureJudge", "uniform_map", "block_labels", "TextureClassifier",
           "train_texture_classifier", "classifier_accuracy", "train_on_scenes",
           "score_on_scenes", "benchmark_scenes", "default_judge", "load_scene_model"]

#: Class index -> name. ``flat`` has no texture (a sky); the others are the bundled textures.
CLASSES = ("flat", "brick", "grass", "gravel")
SPLITS = ("train", "test")
SCALE = 4  # SFTGAN is a x4 network
HIGHPASS_SIGMA = 1.5  # HR pixels: detail finer than this blur is what x4 downsampling removes
DETAIL_STD = 0.12  # every textured class gets the same detail contrast, so contrast does not give it away
_TRAIN_FRACTION = 0.75  # columns of each texture for the train split; the rest is the test split


@dataclass
class TextureScene:
    """One scene: ``hr`` (3, H, W), ``lr`` (3, H/4, W/4), ``class_map`` (H, W) int64, and ``base``,
    the smooth colour field without the texture detail (3, H, W)."""
    hr: Tensor
    lr: Tensor
    class_map: Tensor
    base: Tensor

    @property
    def seg(self) -> Tensor:
        """The one-hot class probabilities (num_classes, H, W) that ``sftgan(lr, seg)`` takes."""
        return one_hot(self.class_map)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def _check_size(size: int) -> None:
    if size < SCALE or size % SCALE:
        raise ValueError(f"scene size must be a positive multiple of {SCALE} (the LR image is size/{SCALE}), "
                         f"got {size}")


@lru_cache(maxsize=None)
def _highpassed_texture(name: str) -> Tensor:
    """The whole 512 x 512 texture, grey (H, W), high-passed and normalised to ``DETAIL_STD``."""
    gray = bundled_image(name)[0].double()
    kernel = isotropic_gaussian_kernel(2 * math.ceil(3 * HIGHPASS_SIGMA) + 1, HIGHPASS_SIGMA).double()
    padded = F.pad(gray[None, None], [kernel.shape[-1] // 2] * 4, mode="reflect")
    low = F.conv2d(padded, kernel[None, None])[0, 0]
    detail = gray - low
    return (detail / detail.std() * DETAIL_STD).float()


def texture_detail(class_index: int, split: str = "train") -> Tensor:
    """The high-passed texture of a class, restricted to the split's columns: (H, W), zero mean.

    ``flat`` has no texture: asking for it is an error (its detail is zero everywhere)."""
    _check_split(split)
    if not 0 < class_index < len(CLASSES):
        raise ValueError(f"class {class_index} has no texture: textured classes are "
                         f"{ {i: c for i, c in enumerate(CLASSES) if i} }")
    full = _highpassed_texture(CLASSES[class_index])
    cut = int(full.shape[1] * _TRAIN_FRACTION)
    return full[:, :cut] if split == "train" else full[:, cut:]


def random_class_map(size: int, regions: int, generator: torch.Generator, classes: int = len(CLASSES)) -> Tensor:
    """Voronoi cells of ``regions`` uniform random points, each a random class: (size, size) int64."""
    _check_size(size)
    if regions < 1:
        raise ValueError(f"a scene needs at least one region, got regions={regions}")
    points = torch.rand(regions, 2, generator=generator) * size
    labels = torch.randint(0, classes, (regions,), generator=generator)
    coords = torch.stack(torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij"), -1)
    nearest = torch.cdist(coords.reshape(-1, 2), points).argmin(dim=1)
    return labels[nearest].reshape(size, size)


def one_hot(class_map: Tensor, num_classes: int = len(CLASSES)) -> Tensor:
    """(H, W) or (N, H, W) int class map -> float one-hot probabilities (C, H, W) or (N, C, H, W)."""
    if class_map.dtype not in (torch.int64, torch.int32, torch.uint8):
        raise ValueError(f"a class map holds integer class indices, got dtype {class_map.dtype}")
    if class_map.numel() and (class_map.min() < 0 or class_map.max() >= num_classes):
        raise ValueError(f"class indices must lie in 0..{num_classes - 1}, got {class_map.min().item()}.."
                         f"{class_map.max().item()}")
    onehot = F.one_hot(class_map.long(), num_classes).float()
    return onehot.movedim(-1, -3)


def _smooth_base(size: int, generator: torch.Generator) -> Tensor:
    """A smooth colour field (3, size, size): a 3 x 3 grid of colours in [0.3, 0.7], upsampled."""
    grid = 0.3 + 0.4 * torch.rand(1, 3, 3, 3, generator=generator)
    return F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=True)[0].clamp(0, 1)


def compose_scene(class_map: Tensor, generator: torch.Generator, split: str = "train",
                  base: Tensor | None = None) -> TextureScene:
    """Paint a scene for a given class map (H, W): each cell gets its class's texture detail, cut at
    a random position of the split's columns, over a smooth colour base (random unless given)."""
    _check_split(split)
    if class_map.dim() != 2 or class_map.shape[0] != class_map.shape[1]:
        raise ValueError(f"expected a square class map (H, W), got shape {tuple(class_map.shape)}")
    size = class_map.shape[0]
    _check_size(size)
    one_hot(class_map)  # validates the indices
    base = _smooth_base(size, generator) if base is None else base
    if base.shape != (3, size, size):
        raise ValueError(f"base must be (3, {size}, {size}) like the class map, got {tuple(base.shape)}")
    detail = torch.zeros(size, size)
    for c in range(1, len(CLASSES)):
        mask = class_map == c
        if mask.any():
            texture = texture_detail(c, split)
            if min(texture.shape) < size:
                raise ValueError(f"scenes of {size} px do not fit the {split} split's {tuple(texture.shape)} textures")
            top = int(torch.randint(0, texture.shape[0] - size + 1, (1,), generator=generator))
            left = int(torch.randint(0, texture.shape[1] - size + 1, (1,), generator=generator))
            detail = torch.where(mask, texture[top: top + size, left: left + size], detail)
    hr = round_to_uint8((base + detail).clamp(0, 1))
    return TextureScene(hr=hr, lr=bicubic_downscale(hr, SCALE), class_map=class_map, base=base)


def random_scene(size: int, generator: torch.Generator, split: str = "train", regions: int = 4) -> TextureScene:
    """A random class map (``regions`` Voronoi cells) painted by :func:`compose_scene`."""
    return compose_scene(random_class_map(size, regions, generator), generator, split)


class TextureSceneDataset(Dataset):
    """``count`` random scenes as (lr, hr, seg) triples, drawn afresh for each index from ``seed``.

    Each index always gives the same scene, so the test split is a fixed benchmark; training takes
    a new index each step (``count`` can be large: scenes are made on demand).
    """

    def __init__(self, count: int, size: int = 48, split: str = "train", regions: int = 4, seed: int = 0):
        _check_split(split)
        _check_size(size)
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        self.count, self.size, self.split, self.regions, self.seed = count, size, split, regions, seed

    def __len__(self) -> int:
        return self.count

    def scene(self, index: int) -> TextureScene:
        if not 0 <= index < self.count:
            raise IndexError(f"scene {index} out of range for {self.count} scenes")
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        return random_scene(self.size, generator, self.split, self.regions)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        s = self.scene(index)
        return s.lr, s.hr, s.seg


def lr_detail_ratio(scene: TextureScene) -> float:
    """How much of the texture detail survives in the LR image: the RMS of (LR - base's LR), upsampled
    back, over the RMS of (HR - base). Near 0: the LR image hardly shows which texture a cell has."""
    detail_hr = scene.hr - scene.base
    detail_lr = upscale_bicubic(scene.lr - bicubic_downscale(scene.base, SCALE, quantize=False), SCALE)
    return float(detail_lr.square().mean().sqrt() / detail_hr.square().mean().sqrt().clamp_min(1e-12))


# ------------------------------------------------------------------ does the texture follow the map?
_QUANTILES = torch.linspace(0.005, 0.995, 100, dtype=torch.float64)


def region_contrasts(image: Tensor, mask: Tensor) -> Tensor:
    """Differences of horizontally and vertically neighbouring Y values (grey levels, uint8-rounded
    image) for the neighbour pairs that lie wholly inside ``mask`` (H, W): a 1-D float64 tensor.

    The same local-contrast statistic as :func:`srlib.metrics.texture_distance`
    (:func:`srlib.metrics.neighbour_differences`), restricted to a region."""
    if image.dim() != 3 or image.shape[0] != 3 or mask.shape != image.shape[1:]:
        raise ValueError(f"expected an image (3, H, W) and a mask (H, W) of the same size, got "
                         f"{tuple(image.shape)} and {tuple(mask.shape)}")
    y = 255 * rgb_to_y(round_to_uint8(image.clamp(0, 1))).double()[0]
    return neighbour_differences(y, mask)


def _w1(a: Tensor, b: Tensor) -> float:
    """Wasserstein-1 distance of two 1-D samples of any sizes, from 100 matched quantiles."""
    return float((torch.quantile(a, _QUANTILES) - torch.quantile(b, _QUANTILES)).abs().mean())


class TextureJudge:
    """Tells which class's texture a region shows: the class whose HR local-contrast distribution
    (:func:`region_contrasts`) is nearest in Wasserstein-1 distance.

    Built from HR scenes with known maps (use test scenes, so the judge never saw training pixels).
    It judges texture statistics only, as TSD does: blind to layout, so it checks that a region *has
    the contrasts of* grass, not that it looks like grass to a person.
    """

    def __init__(self, scenes: list[TextureScene]):
        self.references: dict[int, Tensor] = {}
        for c in range(len(CLASSES)):
            values = torch.cat([region_contrasts(s.hr, s.class_map == c) for s in scenes])
            if values.numel() < 100:
                raise ValueError(f"the scenes hold too little of class {CLASSES[c]!r} to describe its texture")
            self.references[c] = values

    def distances(self, image: Tensor, mask: Tensor) -> dict[str, float]:
        """``{class name: W1 distance}`` of the region's contrasts to each class's reference."""
        values = region_contrasts(image, mask)
        if values.numel() < 20:
            raise ValueError(f"the region holds {values.numel()} neighbour pairs, too few to judge a texture")
        return {CLASSES[c]: _w1(values, ref) for c, ref in self.references.items()}

    def classify(self, image: Tensor, mask: Tensor) -> int:
        """The index of the class whose texture statistics the region is nearest to."""
        d = self.distances(image, mask)
        return CLASSES.index(min(d, key=d.get))

    def _tally(self, images, class_maps, min_pixels: int) -> tuple[list[int], list[int]]:
        """Per class: pixels in regions judged to be that class, and pixels in regions of that class."""
        agree, total = [0] * len(CLASSES), [0] * len(CLASSES)
        for image, class_map in zip(images, class_maps):
            for c in class_map.unique().tolist():
                mask = class_map == c
                n = int(mask.sum())
                if n < min_pixels:
                    continue
                total[c] += n
                agree[c] += n * (self.classify(image, mask) == c)
        if not sum(total):
            raise ValueError("no region is large enough to judge")
        return agree, total

    def agreement(self, images: Tensor | list[Tensor], class_maps: Tensor | list[Tensor], min_pixels: int = 64) -> float:
        """Fraction of pixels, over all images, lying in a region (all pixels of one class in the map
        given) whose texture the judge assigns to that class: 1.0 when the texture follows the map.
        Regions under ``min_pixels`` are skipped as too small to judge."""
        agree, total = self._tally(images, class_maps, min_pixels)
        return sum(agree) / sum(total)

    def agreement_by_class(self, images: Tensor | list[Tensor], class_maps: Tensor | list[Tensor],
                           min_pixels: int = 64) -> dict[str, float]:
        """:meth:`agreement` class by class: ``{class name: share of that class's pixels judged to be
        it}``, for the classes the maps hold in regions of at least ``min_pixels``."""
        agree, total = self._tally(images, class_maps, min_pixels)
        return {CLASSES[c]: agree[c] / total[c] for c in range(len(CLASSES)) if total[c]}


# ------------------------------------------------------------------------------ training and scoring
def uniform_map(seg: Tensor) -> Tensor:
    """The uninformative prior: every class equally likely everywhere (same shape as ``seg``).

    Always contiguous, whatever the layout of ``seg``: convolutions on another memory layout can
    differ in the last bits, and the uniform map must give the same output for every map it hides."""
    return torch.full(seg.shape, 1.0 / seg.shape[-3], dtype=seg.dtype, device=seg.device)


def block_labels(seg: Tensor, block: int = SCALE) -> Tensor:
    """Per-block class labels (N, H/block, W/block) from one-hot maps (N, C, H, W): the class of each
    ``block`` x ``block`` block, or -100 (cross-entropy's ignore index) where the block straddles a
    border, so a classifier is never asked to name a mixed block."""
    pooled = F.avg_pool2d(seg, block)
    share, label = pooled.max(dim=1)
    return torch.where(share > 0.999, label, torch.full_like(label, -100))


class TextureClassifier(torch.nn.Sequential):
    """A small fully convolutional texture classifier: HR image (N, 3, H, W) -> class logits
    (N, num_classes, H/4, W/4), one prediction per 4 x 4 block (receptive field 21 px).

    It plays the part of the auxiliary classifier in SFTGAN's official training code, whose
    discriminator also names the category of the image it sees and whose generator is penalised by
    cross-entropy when its output is named wrongly (``SFTGAN_ACD_Model`` in BasicSR). Here it is
    dense, because a scene holds several classes, and it is trained on HR scenes only, then frozen
    (:func:`train_texture_classifier`)."""

    def __init__(self, num_classes: int = len(CLASSES), width: int = 32):
        act = lambda: torch.nn.LeakyReLU(0.2, inplace=True)  # noqa: E731
        conv = torch.nn.Conv2d
        super().__init__(conv(3, width, 3, 1, 1), act(), conv(width, width, 3, 2, 1), act(),
                         conv(width, 2 * width, 3, 1, 1), act(), conv(2 * width, 2 * width, 3, 2, 1), act(),
                         conv(2 * width, 2 * width, 3, 1, 1), act(), conv(2 * width, num_classes, 1))


def _batch(data: TextureSceneDataset, step: int, batch_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """Scenes ``step * batch_size`` onwards, stacked: (lr, hr, seg) batches."""
    return tuple(torch.stack(x) for x in zip(*(data[step * batch_size + i] for i in range(batch_size))))


def train_texture_classifier(steps: int = 600, *, batch_size: int = 16, size: int = 48, lr: float = 1e-3,
                             seed: int = 7) -> tuple[TextureClassifier, list[float]]:
    """Train a :class:`TextureClassifier` on fresh HR training scenes (cross-entropy against
    :func:`block_labels`); returns it frozen and in eval mode, with its loss history."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    classifier = TextureClassifier()
    optimizer = torch.optim.Adam(classifier.parameters(), lr)
    data = TextureSceneDataset(steps * batch_size, size, "train", 3, seed)
    history = []
    for step in range(steps):
        _, hr, seg = _batch(data, step, batch_size)
        loss = F.cross_entropy(classifier(hr), block_labels(seg))
        guarded_step(optimizer, loss, lambda: f"non-finite classifier loss at step {step}; lower the learning rate")
        history.append(loss.item())
    return classifier.requires_grad_(False).eval(), history


@torch.no_grad()
def classifier_accuracy(classifier: torch.nn.Module, images: Tensor, class_maps: Tensor) -> float:
    """Share of the 4 x 4 blocks lying inside one class that ``classifier`` names correctly."""
    labels = block_labels(one_hot(class_maps))
    named = classifier(images).argmax(dim=1)
    inside = labels >= 0
    return float((named == labels)[inside].float().mean())


def train_on_scenes(model: torch.nn.Module, steps: int, *, warmup: int = 0, texture_loss: torch.nn.Module | None = None,
                    texture_weight: float = 0.0, pixel_weight: float = 1.0, classifier: torch.nn.Module | None = None,
                    category_weight: float = 0.0, use_map: bool = True, lr: float = 2e-3, lr_texture: float = 5e-4,
                    batch_size: int = 8, size: int = 48, regions: int = 3, seed: int = 1) -> dict[str, list[float]]:
    """Train an SFTGAN-style ``model(lr, seg)`` on fresh training scenes; returns the loss history.

    The first ``warmup`` steps minimise L1 alone at learning rate ``lr`` (a PSNR start, as SFTGAN
    starts from a PSNR-trained network); the remaining ``steps - warmup`` minimise, at ``lr_texture``,

        ``pixel_weight * L1 + texture_weight * texture_loss(sr, hr)
        + category_weight * CE(classifier(sr), block_labels(seg))``

    A ``pixel_weight`` below 1 lets the texture terms outweigh L1, which otherwise pulls synthesised
    detail (never in phase with the HR image) back towards a blur. The category term needs a frozen
    ``classifier`` (:func:`train_texture_classifier`): it asks that each block of the output be
    recognisable as the class of the true map there, SFTGAN's auxiliary-classifier loss.
    ``use_map=False`` trains the same network with :func:`uniform_map` instead of the true map: the
    no-prior baseline (it gets the same losses, so the map is the only difference).

    Returns ``{"step", "l1", "texture", "category"}`` lists (texture and category are 0 during the
    warm-up; L1 is logged unweighted).
    """
    if not 0 <= warmup <= steps:
        raise ValueError(f"warmup must lie in 0..steps ({steps}), got {warmup}")
    if steps > warmup and (texture_loss is None or texture_weight <= 0):
        raise ValueError("steps after the warm-up need a texture_loss and a texture_weight > 0")
    if (classifier is None) != (category_weight == 0):
        raise ValueError("the category term needs both a classifier and a category_weight > 0 "
                         f"(got classifier={type(classifier).__name__}, category_weight={category_weight})")
    if pixel_weight < 0 or category_weight < 0:
        raise ValueError(f"loss weights must be >= 0, got pixel_weight={pixel_weight}, "
                         f"category_weight={category_weight}")
    device = next(model.parameters()).device
    data = TextureSceneDataset(max(1, steps) * batch_size, size, "train", regions, seed)
    optimizer = torch.optim.Adam(model.parameters(), lr)
    history: dict[str, list[float]] = {"step": [], "l1": [], "texture": [], "category": []}
    if classifier is not None:
        classifier.requires_grad_(False).eval().to(device)  # frozen: only the generator learns from it
    model.train()
    for step in range(steps):
        if step == warmup:
            for group in optimizer.param_groups:
                group["lr"] = lr_texture
        lr_img, hr, seg = (x.to(device) for x in _batch(data, step, batch_size))
        sr = model(lr_img, seg if use_map else uniform_map(seg))
        l1 = F.l1_loss(sr, hr)
        zero = torch.zeros((), device=device)
        if step < warmup:
            texture = category = zero
            loss = l1
        else:
            texture = texture_loss(sr, hr)
            category = F.cross_entropy(classifier(sr), block_labels(seg)) if classifier is not None else zero
            loss = pixel_weight * l1 + texture_weight * texture + category_weight * category
        guarded_step(optimizer, loss, lambda: f"non-finite loss at step {step} (l1 {l1.item()}, texture "
                                              f"{texture.item()}, category {category.item()}); lower the learning "
                                              "rate or the loss weights")
        history["step"].append(step + 1)
        history["l1"].append(l1.item())
        history["texture"].append(texture.item())
        history["category"].append(category.item())
    model.eval()
    return history


@torch.no_grad()
def score_on_scenes(model: torch.nn.Module | None, scenes: list[TextureScene], judge: TextureJudge,
                    maps: list[Tensor] | None = None, use_map: bool = True) -> dict[str, float]:
    """Score ``model(lr, seg)`` on scenes: mean PSNR and TSD against each HR image (Y, shave 4, as in
    the PSNR chapters), and the judge's agreement of the output textures with the map *given*
    (``maps``, default: the true maps) and with the true map.

    ``use_map=False`` feeds the uniform prior (the no-prior baseline); ``model=None`` scores bicubic.
    Returns ``{"psnr", "tsd", "agree_given", "agree_true"}`` and keeps the outputs in ``"outputs"``.
    """
    maps = [s.class_map for s in scenes] if maps is None else maps
    if len(maps) != len(scenes):
        raise ValueError(f"{len(maps)} maps for {len(scenes)} scenes")
    outputs = []
    for scene, class_map in zip(scenes, maps):
        lr = scene.lr[None]
        if model is None:
            sr = upscale_bicubic(lr, SCALE)
        else:
            device = next(model.parameters()).device
            seg = one_hot(class_map)[None]
            sr = model(lr.to(device), (seg if use_map else uniform_map(seg)).to(device)).cpu()
        outputs.append(sr[0].clamp(0, 1))
    sr, hr = torch.stack(outputs), torch.stack([s.hr for s in scenes])
    return {"psnr": float(psnr(sr, hr, SCALE).mean()), "tsd": float(texture_distance(sr, hr, SCALE).mean()),
            "agree_given": judge.agreement(outputs, maps),
            "agree_true": judge.agreement(outputs, [s.class_map for s in scenes]), "outputs": outputs}


# ------------------------------------------------------------------ the fixed benchmark and shipped models
BENCHMARK = dict(count=8, size=96, seed=0)  # the test scenes every score on the SFTGAN page uses
JUDGE_SCENES = dict(count=16, size=96, seed=100)  # other test scenes: the judge's class references
WEIGHTS_DIR = Path(__file__).parent / "weights"
VARIANTS = {"sft": "sftgan_tiny_scenes_x4.pt", "no_prior": "sftgan_tiny_scenes_noprior_x4.pt"}
MODEL_CONFIG = dict(num_classes=len(CLASSES), scale_offset=1.0)  # sftgan_tiny on the four scene classes


def benchmark_scenes() -> list[TextureScene]:
    """The fixed test scenes (8 scenes of 96 px from the test split) that the page and the scripts score on."""
    data = TextureSceneDataset(BENCHMARK["count"], BENCHMARK["size"], "test", seed=BENCHMARK["seed"])
    return [data.scene(i) for i in range(len(data))]


def default_judge() -> TextureJudge:
    """The judge built from 16 other test scenes (none of them in :func:`benchmark_scenes`)."""
    data = TextureSceneDataset(JUDGE_SCENES["count"], JUDGE_SCENES["size"], "test", seed=JUDGE_SCENES["seed"])
    return TextureJudge([data.scene(i) for i in range(len(data))])


def load_scene_model(variant: str = "sft", path: str | os.PathLike | None = None) -> tuple[torch.nn.Module, dict]:
    """The ``sftgan_tiny`` trained on texture scenes by ``scripts/train_sftgan_scenes.py``: (model, provenance).

    ``variant`` ``"sft"`` was trained with the true maps, ``"no_prior"`` with the uniform map."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {tuple(VARIANTS)}, got {variant!r}")
    path = Path(path) if path is not None else WEIGHTS_DIR / VARIANTS[variant]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; make it with: python scripts/train_sftgan_scenes.py "
                                f"--variant {variant}")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != "srlib-sftgan-scenes":
        raise ValueError(f"{path} is not a texture-scene SFTGAN checkpoint (no 'srlib-sftgan-scenes' format tag)")
    if checkpoint["variant"] != variant:
        raise ValueError(f"{path} holds the {checkpoint['variant']!r} variant, not {variant!r}")
    model = create_model("sftgan_tiny", SCALE, **checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), checkpoint["provenance"]
