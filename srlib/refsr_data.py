"""A CUFED5-like reference-SR benchmark made from the bundled images, and reference-SR training patches.

CUFED5 (Zhang et al., SRNTT, CVPR 2019 [zhang2019srntt]) pairs each of its 126 input images with
five references, from the most to the least similar (levels 1..5, called XH, H, M, L, XL), and is
how SRNTT, TTSR and later papers show both the gain from a good reference and the robustness to a
bad one. The real set needs a manual download (``srlib.data.load_benchmark("CUFED5")``); this module
builds a small stand-in from the photos scikit-image ships, with no download, in the same layout.

Each group is an HR input crop and five references of the same size:

======  ===========================================================================================
level   reference
======  ===========================================================================================
XH      the same scene slightly moved and warped: the input's region resampled with a small random
        rotation (up to 4 degrees), zoom (up to 5 %), shift (up to 6 px) and brightness change (2 %)
H       an overlapping crop: the input's box moved by a quarter to a half of its size
M       the other view of the motorcycle stereo pair (same box), or a related crop: the neighbouring
        box of the same photo (same scene and lighting, no shared content)
L       a different image with similar textures (e.g. the rocket's lit towers at night against the
        Hubble deep field's points of light; the cameraman's lawn against the grass texture)
XL      an unrelated image (flat colours of the logo, a page of text, ...)
======  ===========================================================================================

Inputs come from the validation images (astronaut, coffee, rocket, camera, gravel) plus the
motorcycle stereo pair, the only two views of one scene in the bundled set; references may come from
any bundled image. :class:`ReferencePatchSampler` therefore trains on the training images without
the motorcycle pair, so no benchmark input is ever a training target.

Similarity is measurable: :func:`reference_similarity` is the mean, over the input's patches, of the
best normalised correlation with any reference patch (on a high-pass luma, the matching SRNTT and
TTSR do, in pixels). On the default benchmark (160 px, seed 0) its mean over the six groups is
0.87 / 0.69 / 0.59 / 0.55 / 0.48 from XH to XL, and XL is the lowest level of every group; the
pixel-level measure barely separates L (semantically similar) from M and XL, as on CUFED5, where
those levels also differ more in content than in patch statistics.

Everything is deterministic given ``seed``: every random draw takes a ``torch.Generator``.
Images are float32 (3, H, W) RGB in [0, 1]; the LR input follows the evaluation protocol
(``srlib.degrade.bicubic_downscale`` of the HR crop, rounded to uint8).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["LEVELS", "GroupSpec", "GROUPS", "RefGroup", "refsr_benchmark", "save_refsr_benchmark",
           "reference_similarity", "ReferencePatchSampler", "ShiftedCopySampler", "shifted_crop", "warped_crop"]

#: Similarity levels from the most to the least similar; CUFED5 numbers them 1..5 in this order.
LEVELS = ("XH", "H", "M", "L", "XL")

MAX_ANGLE = 4.0  # XH: degrees of rotation at most
MAX_ZOOM = 0.05  # XH: relative zoom at most
MAX_SHIFT = 6.0  # XH: pixels of translation at most
MAX_GAIN = 0.02  # XH: relative brightness change at most


@dataclass(frozen=True)
class GroupSpec:
    """How one group is built.

    Attributes:
        name: the group's name (file prefix).
        image: bundled image the input is cropped from.
        center: (row, column) of the input box's centre, as fractions of the image size (chosen by
            hand on detailed regions; the generator jitters it by up to 5 % of the image).
        similar: the L level's image (different, with similar textures).
        unrelated: the XL level's image.
        other_view: the M level's image cropped at the same box (a stereo partner), or None for the
            neighbouring box of ``image``.
    """

    name: str
    image: str
    center: tuple[float, float]
    similar: str
    unrelated: str
    other_view: str | None = None


GROUPS: tuple[GroupSpec, ...] = (
    GroupSpec("motorcycle", "motorcycle_left", (0.55, 0.55), similar="coins", unrelated="rocket",
              other_view="motorcycle_right"),  # L: shiny metal; XL: a night launch pad
    GroupSpec("astronaut", "astronaut", (0.55, 0.3), similar="chelsea", unrelated="page"),  # L: another portrait
    GroupSpec("coffee", "coffee", (0.5, 0.5), similar="motorcycle_left", unrelated="grass"),  # L: glossy red paint
    GroupSpec("rocket", "rocket", (0.72, 0.5), similar="hubble_deep_field", unrelated="text"),  # L: lights on dark
    GroupSpec("camera", "camera", (0.45, 0.45), similar="grass", unrelated="page"),  # L: the cameraman's lawn
    GroupSpec("gravel", "gravel", (0.5, 0.5), similar="grass", unrelated="hubble_deep_field"),  # L: ground texture
)


@dataclass
class RefGroup:
    """One benchmark group.

    Attributes:
        name: group name.
        hr: the HR input (3, S, S) in [0, 1].
        lr: its LR input (3, S / scale, S / scale): MATLAB bicubic, rounded to uint8.
        refs: level -> reference (3, S, S), in ``LEVELS`` order.
        sources: level -> ``(image, top, left)``: the bundled image and box each reference was cut from
            (XH: the input's box, before the warp), and ``"input"`` for the input itself.
        notes: level -> how that reference was made, in words.
    """

    name: str
    hr: Tensor
    lr: Tensor
    refs: dict[str, Tensor]
    sources: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- crops

def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


def _crop(image: Tensor, top: int, left: int, size: int) -> Tensor:
    return image[:, top:top + size, left:left + size].clone()


def _fit(pos: float, size: int, extent: int, margin: int = 0) -> int:
    """The box origin nearest ``pos`` that keeps ``[pos, pos + size)`` ``margin`` px inside ``extent``."""
    return int(min(max(round(pos), margin), extent - size - margin))


def warped_crop(image: Tensor, top: int, left: int, size: int, angle: float = 0.0, zoom: float = 1.0,
                shift: tuple[float, float] = (0.0, 0.0)) -> Tensor:
    """A ``size`` x ``size`` crop of ``image`` seen through a small similarity transform.

    The output pixel at ``p`` (relative to the box centre ``c``) shows the image at
    ``c + R(angle) p / zoom + shift``: bicubic sampling of a window around the box only (not the
    whole image), borders reflected, clamped to [0, 1].

    Args:
        image: (3, H, W) in [0, 1].
        top, left, size: the box.
        angle: rotation in degrees. zoom: > 1 magnifies. shift: (rows, columns) in pixels.

    Returns:
        (3, size, size).
    """
    _, h, w = image.shape
    reach = math.ceil(size * (1 / zoom) * 0.75 + max(abs(shift[0]), abs(shift[1])) + 3)  # half-window, generous
    cy, cx = top + (size - 1) / 2, left + (size - 1) / 2
    r0, r1 = max(0, math.floor(cy - reach)), min(h, math.ceil(cy + reach) + 1)
    c0, c1 = max(0, math.floor(cx - reach)), min(w, math.ceil(cx + reach) + 1)
    window = image[None, :, r0:r1, c0:c1]  # (1, 3, wh, ww)
    steps = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    py, px = torch.meshgrid(steps, steps, indexing="ij")  # (size, size), relative to the centre
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    sy = cy + (sin * px + cos * py) / zoom + shift[0] - r0  # source row in the window
    sx = cx + (cos * px - sin * py) / zoom + shift[1] - c0  # source column in the window
    grid = torch.stack([(2 * sx + 1) / (c1 - c0) - 1, (2 * sy + 1) / (r1 - r0) - 1], dim=-1)  # align_corners=False
    out = F.grid_sample(window, grid[None], mode="bicubic", padding_mode="reflection", align_corners=False)
    return out[0].clamp(0, 1)


def _random_warp(generator: torch.Generator) -> dict:
    return {"angle": _uniform(generator, -MAX_ANGLE, MAX_ANGLE), "zoom": 1 + _uniform(generator, -MAX_ZOOM, MAX_ZOOM),
            "shift": (_uniform(generator, -MAX_SHIFT, MAX_SHIFT), _uniform(generator, -MAX_SHIFT, MAX_SHIFT))}


def _overlapping_box(top: int, left: int, size: int, shape: Sequence[int],
                     generator: torch.Generator) -> tuple[int, int]:
    """The box moved by a quarter to a half of its size along each axis (overlap 25-56 % of the area)."""
    moved = []
    for pos, extent in ((top, shape[-2]), (left, shape[-1])):
        step = _uniform(generator, size / 4, size / 2) * (1 if torch.rand((), generator=generator) < 0.5 else -1)
        if not 0 <= pos + step <= extent - size:  # the other way if it leaves the image
            step = -step
        moved.append(_fit(pos + step, size, extent))
    return moved[0], moved[1]


def _neighbour_box(top: int, left: int, size: int, shape: Sequence[int], generator: torch.Generator) -> tuple[int, int]:
    """A box next to this one (no overlap), in a random direction that fits in the image."""
    options = [(top + dy * size, left + dx * size) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    options = [(t, s) for t, s in options if 0 <= t <= shape[-2] - size and 0 <= s <= shape[-1] - size]
    if not options:
        raise ValueError(f"a {size}-px box has no non-overlapping neighbour in a {tuple(shape[-2:])} image; "
                         "use a smaller size")
    return options[int(torch.randint(len(options), (), generator=generator))]


def _random_box(image: Tensor, size: int, generator: torch.Generator, margin: int = 0) -> tuple[int, int]:
    """A random ``size`` box at least ``margin`` px inside the image."""
    _, h, w = image.shape
    if min(h, w) < size + 2 * margin:
        raise ValueError(f"a {size}-px box does not fit in a {h}x{w} image" + (f" with a {margin}-px margin" if margin else "")
                         + "; use a smaller size")
    return (margin + int(torch.randint(h - size - 2 * margin + 1, (), generator=generator)),
            margin + int(torch.randint(w - size - 2 * margin + 1, (), generator=generator)))


def shifted_crop(image: Tensor, top: int, left: int, size: int, shift: tuple[int, int]) -> Tensor:
    """The ``size`` box at (top, left) moved by ``shift`` = (rows, columns) whole pixels: the same scene, translated.

    Raises ``ValueError`` if the moved box leaves the image (no padding: every pixel is real content).
    """
    _, h, w = image.shape
    t, s = top + shift[0], left + shift[1]
    if not (0 <= t <= h - size and 0 <= s <= w - size):
        raise ValueError(f"the {size}-px box at ({top}, {left}) moved by {tuple(shift)} leaves the {h}x{w} image")
    return _crop(image, t, s, size)


# --------------------------------------------------------------------------------------- benchmark

def _build_group(spec: GroupSpec, size: int, scale: int, generator: torch.Generator) -> RefGroup:
    from .data import bundled_image
    from .degrade import bicubic_downscale

    image = bundled_image(spec.image)
    _, h, w = image.shape
    margin = math.ceil(size * MAX_ZOOM + MAX_SHIFT) + 2  # room for the XH warp without reflection
    jitter = 0.05
    top = _fit((spec.center[0] + _uniform(generator, -jitter, jitter)) * h - size / 2, size, h, margin)
    left = _fit((spec.center[1] + _uniform(generator, -jitter, jitter)) * w - size / 2, size, w, margin)
    hr = _crop(image, top, left, size)
    warp = _random_warp(generator)
    gain = 1 + _uniform(generator, -MAX_GAIN, MAX_GAIN)
    refs, sources, notes = {}, {"input": (spec.image, top, left)}, {}
    refs["XH"] = (warped_crop(image, top, left, size, **warp) * gain).clamp(0, 1)
    sources["XH"] = (spec.image, top, left)
    notes["XH"] = (f"{spec.image} at the input's box, rotated {warp['angle']:.1f} deg, zoom {warp['zoom']:.3f}, "
                   f"shifted ({warp['shift'][0]:.1f}, {warp['shift'][1]:.1f}) px, brightness x{gain:.3f}")
    t, s = _overlapping_box(top, left, size, image.shape, generator)
    refs["H"], sources["H"] = _crop(image, t, s, size), (spec.image, t, s)
    overlap = max(0, size - abs(t - top)) * max(0, size - abs(s - left)) / size ** 2
    notes["H"] = f"{spec.image} box moved by ({t - top}, {s - left}) px: {100 * overlap:.0f} % overlap"
    if spec.other_view is not None:
        refs["M"], sources["M"] = _crop(bundled_image(spec.other_view), top, left, size), (spec.other_view, top, left)
        notes["M"] = f"{spec.other_view} (the other stereo view) at the input's box"
    else:
        t, s = _neighbour_box(top, left, size, image.shape, generator)
        refs["M"], sources["M"] = _crop(image, t, s, size), (spec.image, t, s)
        notes["M"] = f"{spec.image}, the neighbouring box moved by ({t - top}, {s - left}) px: no overlap"
    for level, name in (("L", spec.similar), ("XL", spec.unrelated)):
        other = bundled_image(name)
        t, s = _random_box(other, size, generator)
        refs[level], sources[level] = _crop(other, t, s, size), (name, t, s)
        notes[level] = f"{name} at ({t}, {s}): " + ("similar textures" if level == "L" else "unrelated")
    lr = bicubic_downscale(hr[None], scale)[0]
    return RefGroup(spec.name, hr, lr, refs, sources, notes)


def refsr_benchmark(size: int = 160, scale: int = 4, seed: int = 0,
                    groups: Sequence[GroupSpec] = GROUPS) -> list[RefGroup]:
    """Build the CUFED5-like groups (deterministic for a given ``seed``).

    Args:
        size: side of the HR input and of every reference, in pixels; a multiple of ``scale``.
            Default: 160 (CUFED's training size: LR 40x40).
        scale: SR factor of the LR input. Default: 4.
        seed: seeds the one generator every random choice draws from. Default: 0.
        groups: the :class:`GroupSpec` list. Default: ``GROUPS`` (6 groups).

    Returns:
        One :class:`RefGroup` per spec.

    Example:
        >>> group = refsr_benchmark(size=96)[0]
        >>> group.name, tuple(group.hr.shape), tuple(group.lr.shape), list(group.refs)
        ('motorcycle', (3, 96, 96), (3, 24, 24), ['XH', 'H', 'M', 'L', 'XL'])
    """
    if size % scale or size < 4 * scale:
        raise ValueError(f"size must be a multiple of the scale {scale} and at least {4 * scale}, got {size}")
    generator = torch.Generator().manual_seed(seed)
    return [_build_group(spec, size, scale, generator) for spec in groups]


def save_refsr_benchmark(root: str | os.PathLike, size: int = 160, scale: int = 4, seed: int = 0) -> Path:
    """Write the benchmark in CUFED5's layout: ``NAME_0.png`` input, ``NAME_1.png`` (XH) .. ``NAME_5.png`` (XL).

    ``srlib.data.ReferenceFolder(root)`` reads it back, exactly as it reads the real CUFED5.

    Returns:
        ``root``.
    """
    from .data import save_image

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for group in refsr_benchmark(size, scale, seed):
        save_image(group.hr, root / f"{group.name}_0.png")
        for number, level in enumerate(LEVELS, start=1):
            save_image(group.refs[level], root / f"{group.name}_{number}.png")
    return root


# -------------------------------------------------------------------------------------- similarity

def reference_similarity(hr: Tensor, ref: Tensor, patch_size: int = 9, work_size: int = 64) -> float:
    """How much of the input the reference can supply: the mean best-match correlation of its patches.

    Both images go to luma, are resized so that the input is about ``work_size`` px wide (the
    reference by the same factor), and lose their local mean (a 5x5 box blur subtracted: what is
    left is texture and edges, as in the band SRNTT and TTSR match). Then every ``patch_size`` patch
    of the input finds its best normalised-correlation match among the reference's patches
    (:func:`srlib.texture_match.match_patches`), and the scores are averaged. 1 means every input
    patch exists in the reference; an unrelated image scores much lower.

    Args:
        hr: the input (3, H, W) in [0, 1].
        ref: a reference (3, H', W') in [0, 1].
        patch_size: matching patch side, in working pixels: large enough that chance matches stay low
            (the best of thousands of random 5x5 correlations is already about 0.8). Default: 9.
        work_size: working width of the input. Default: 64.

    Returns:
        The mean best-match correlation, in [-1, 1].
    """
    from .color import rgb_to_y
    from .degrade import imresize
    from .texture_match import match_patches

    factor = min(1.0, work_size / hr.shape[-1])

    def high_pass(x: Tensor) -> Tensor:
        y = rgb_to_y(x[None])  # (1, 1, H, W)
        y = imresize(y, scale=factor) if factor < 1 else y
        return y - F.avg_pool2d(F.pad(y, [2] * 4, mode="replicate"), 5, stride=1)

    return match_patches(high_pass(hr), high_pass(ref), patch_size).score.mean().item()


# -------------------------------------------------------------------------------- training patches

class ReferencePatchSampler:
    """Random (LR, HR, reference) training triplets, for reference-based models.

    Each HR patch is a random crop of a training image (the training split without the motorcycle
    stereo pair, which the benchmark uses); its reference is, at random, an XH-like warped view of
    the same region (``p_warp``), an H-like overlapping crop (``p_overlap``), or a crop of another image
    (the rest: a model must also learn to ignore a useless reference). One random flip/rotation
    (``srlib.data.dihedral``) is applied to the patch and its reference together.

    Args:
        patch_size: HR patch side (a multiple of ``scale``). Default: 48.
        scale: SR factor. Default: 4.
        images: name -> (3, H, W) images; default: the training images without the motorcycle pair.
        p_warp, p_overlap: probabilities of the two related kinds. Default: 0.5 and 0.25.

    ``sample_batch(batch_size, generator)`` -> ``(lr, hr, ref)``: (B, 3, p/s, p/s), (B, 3, p, p),
    (B, 3, p, p), LR by MATLAB bicubic rounded to uint8.

    Example:
        >>> sampler = ReferencePatchSampler(images={"x": torch.rand(3, 64, 80)})
        >>> [tuple(t.shape) for t in sampler.sample_batch(2, torch.Generator().manual_seed(0))]
        [(2, 3, 12, 12), (2, 3, 48, 48), (2, 3, 48, 48)]
    """

    def __init__(self, patch_size: int = 48, scale: int = 4, images: dict[str, Tensor] | None = None,
                 p_warp: float = 0.5, p_overlap: float = 0.25):
        from .data import bundled_image, list_bundled

        if patch_size % scale:
            raise ValueError(f"patch_size {patch_size} must be a multiple of the scale {scale}")
        if not (0 <= p_warp and 0 <= p_overlap and p_warp + p_overlap <= 1):
            raise ValueError(f"need p_warp, p_overlap >= 0 with a sum <= 1, got {p_warp} and {p_overlap}")
        if images is None:
            images = {n: bundled_image(n) for n in list_bundled("train") if not n.startswith("motorcycle")}
        self.images = [img for img in images.values() if min(img.shape[-2:]) >= patch_size]
        if not self.images:
            raise ValueError(f"no image is at least {patch_size} px on each side")
        self.patch_size, self.scale, self.p_warp, self.p_overlap = patch_size, scale, p_warp, p_overlap

    def sample(self, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """One (hr, ref) pair, each (3, p, p)."""
        from .data import dihedral

        size = self.patch_size
        image = self.images[int(torch.randint(len(self.images), (), generator=generator))]
        top, left = _random_box(image, size, generator)
        hr = _crop(image, top, left, size)
        kind = torch.rand((), generator=generator).item()
        if kind < self.p_warp:
            ref = warped_crop(image, top, left, size, **_random_warp(generator))
        elif kind < self.p_warp + self.p_overlap:
            ref = _crop(image, *_overlapping_box(top, left, size, image.shape, generator), size)
        else:
            other = self.images[int(torch.randint(len(self.images), (), generator=generator))]
            ref = _crop(other, *_random_box(other, size, generator), size)
        k = int(torch.randint(8, (), generator=generator))
        return dihedral(hr, k), dihedral(ref, k)

    def sample_batch(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        from .degrade import bicubic_downscale

        pairs = [self.sample(generator) for _ in range(batch_size)]
        hr = torch.stack([p[0] for p in pairs])
        ref = torch.stack([p[1] for p in pairs])
        return bicubic_downscale(hr, self.scale), hr, ref


class ShiftedCopySampler(ReferencePatchSampler):
    """Training triplets whose reference is the HR patch itself, translated: a probe of the reference path.

    The reference is the same image's crop at the HR box moved by (dy, dx) whole HR pixels, each drawn
    uniformly from ``[-max_shift, max_shift]`` (:func:`shifted_crop`: real content, no wrap-around).
    ``max_shift=0`` gives the HR patch exactly: a perfect reference, which any model able to carry
    detail through its reference path can copy. No real reference is like this; the sampler isolates
    two questions that :class:`ReferencePatchSampler`'s mix cannot: does the reference path carry
    detail at all, and does it survive a misalignment of a few pixels? One random flip/rotation is
    applied to the patch and its reference together.

    Args:
        patch_size: HR patch side (a multiple of ``scale``). Default: 48.
        scale: SR factor. Default: 4.
        max_shift: the largest translation, in HR pixels (>= 0). Default: 0.
        images: as :class:`ReferencePatchSampler`; only images with room for the shift are used.

    Example:
        >>> sampler = ShiftedCopySampler(patch_size=16, max_shift=0, images={"x": torch.rand(3, 40, 40)})
        >>> lr, hr, ref = sampler.sample_batch(2, torch.Generator().manual_seed(0))
        >>> torch.equal(hr, ref), tuple(lr.shape)
        (True, (2, 3, 4, 4))
    """

    def __init__(self, patch_size: int = 48, scale: int = 4, max_shift: int = 0, images: dict[str, Tensor] | None = None):
        if max_shift < 0 or int(max_shift) != max_shift:
            raise ValueError(f"max_shift must be a whole number of HR pixels >= 0, got {max_shift}")
        super().__init__(patch_size, scale, images)
        self.max_shift = int(max_shift)
        self.images = [img for img in self.images if min(img.shape[-2:]) >= patch_size + 2 * self.max_shift]
        if not self.images:
            raise ValueError(f"no image is at least {patch_size + 2 * self.max_shift} px on each side "
                             f"(patch {patch_size} + twice the shift {self.max_shift})")

    def sample(self, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """One (hr, ref) pair, each (3, p, p): ref is hr's box moved by up to ``max_shift`` px."""
        from .data import dihedral

        size, reach = self.patch_size, self.max_shift
        image = self.images[int(torch.randint(len(self.images), (), generator=generator))]
        top, left = _random_box(image, size, generator, margin=reach)
        shift = tuple(int(v) for v in torch.randint(-reach, reach + 1, (2,), generator=generator))
        k = int(torch.randint(8, (), generator=generator))
        return dihedral(_crop(image, top, left, size), k), dihedral(shifted_crop(image, top, left, size, shift), k)
