"""Images in and out, the bundled images, the patch sampler, image folders and the benchmark sets.

Read top-down:

1. **File I/O**: ``load_image`` / ``save_image`` and the numpy bridges ``from_uint8_hwc`` /
   ``to_uint8_hwc``. Grayscale, alpha, palette and 16-bit files all come back as one kind of tensor.
2. **The dihedral group**: ``dihedral(x, k)`` (the 8 flips/rotations used for augmentation and for
   self-ensemble) and its inverse.
3. **Bundled images**: the real photos and textures that scikit-image ships inside its wheel
   (no download), with a fixed train/validation split (``BUNDLED_IMAGES``).
4. **PatchDataset**: random HR crops, augmented, with LR made on the fly by a degradation.
5. **Folders**: ``ImageFolder`` (HR images), ``PairedFolder`` (pre-made LR/HR pairs),
   ``ReferenceFolder`` (CUFED5-style input + references).
6. **Downloads**: ``sha256_file``, ``download_url`` (streaming sha256), ``extract_archive`` (no path
   traversal).
7. **Benchmark and real data sets**: ``DatasetSpec`` records for DIV2K, Set5, Set14, B100, Urban100 and
   CUFED5, and ``load_benchmark`` / ``load_benchmark_pairs``.

Conventions: images are torch float32, (3, H, W) or (N, 3, H, W), RGB, in [0, 1]; numpy HWC uint8
appears only at file I/O. Every random draw takes a ``torch.Generator``. Importing this module never
downloads, trains or prints: network access happens only inside ``download_url`` (called by
``load_benchmark(..., download=True)``).
"""
from __future__ import annotations

import difflib
import functools
import hashlib
import os
import re
import tarfile
import types
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

__all__ = [
    "IMAGE_EXTENSIONS", "ImageReadError", "ImageNotFoundError", "ChecksumError", "UnsafeArchiveError",
    "DownloadError", "load_image", "save_image", "from_uint8_hwc", "to_uint8_hwc", "dihedral",
    "dihedral_inverse", "BUNDLED_IMAGES", "BUNDLED_DESCRIPTIONS", "bundled_image", "bundled_images",
    "list_bundled", "PatchDataset", "ImageFolder", "PairedFolder", "ReferenceFolder", "sha256_file",
    "download_url", "extract_archive", "Archive", "DatasetSpec", "DATASETS", "default_data_root",
    "load_benchmark", "load_benchmark_pairs",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


# ---------------------------------------------------------------------------------------------- errors

class ImageReadError(ValueError):
    """An image file that cannot be read; the message names the file, the cause and, where there is
    one, the fix."""


class ImageNotFoundError(ImageReadError, FileNotFoundError):
    """The image file does not exist (also a ``FileNotFoundError``, so either ``except`` catches it)."""


class ChecksumError(ValueError):
    """A downloaded or local archive whose sha256 is not the expected one (the file is deleted)."""


class UnsafeArchiveError(ValueError):
    """An archive with a member that would land outside the extraction folder (path traversal), or a
    link or device file; nothing is extracted."""


class DownloadError(OSError):
    """A download that failed (no network, 404, ...); the message says how to get the file by hand."""


# -------------------------------------------------------------------------------------------- file I/O

def from_uint8_hwc(array: np.ndarray) -> Tensor:
    """Convert a numpy uint8 image (what files and scikit-image give) to the library's tensor.

    Args:
        array: uint8, (H, W) or (H, W, 1) grayscale (replicated to 3 channels), (H, W, 3) RGB, or
            (H, W, 4) RGBA (composited on white, like ``load_image``).

    Returns:
        float32 tensor (3, H, W), RGB, in [0, 1].

    Example:
        >>> from_uint8_hwc(np.full((2, 5), 255, np.uint8)).shape
        torch.Size([3, 2, 5])
    """
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8:
        kind = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
        raise TypeError(f"from_uint8_hwc expects a numpy uint8 array, got {kind}; for a float array in [0, 1] "
                        "use torch.from_numpy(a).permute(2, 0, 1).float()")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"from_uint8_hwc expects (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {array.shape}")
    # Arrays from Pillow are read-only; torch warns on sharing those, so copy them (uint8: cheap).
    array = np.ascontiguousarray(array) if array.flags.writeable else array.copy()
    x = torch.from_numpy(array).permute(2, 0, 1).float() / 255.0  # (C, H, W)
    if x.shape[0] == 4:
        x = _composite_on_white(x[:3], x[3:])
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    return x.contiguous()


def _composite_on_white(rgb: Tensor, alpha: Tensor) -> Tensor:
    # A transparent pixel's stored colour is arbitrary (often black, sometimes leftovers from the
    # editor), so dropping alpha would invent content; white is what the image looks like on a page.
    return rgb * alpha + (1.0 - alpha)


def to_uint8_hwc(x: Tensor) -> np.ndarray:
    """Convert an image tensor to numpy uint8 HWC for writing files or plotting.

    Args:
        x: float tensor (C, H, W) or (1, C, H, W) with C = 3 (RGB) or 1 (gray), nominally in [0, 1];
            values are clamped, NaN becomes 0, and rounding is half-up like MATLAB's ``im2uint8``.

    Returns:
        numpy uint8 array (H, W, C).

    Example:
        >>> to_uint8_hwc(torch.full((3, 2, 2), 0.5))[0, 0]
        array([128, 128, 128], dtype=uint8)
    """
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"to_uint8_hwc expects an image (3, H, W), (1, H, W) or (1, 3, H, W), got {tuple(x.shape)}")
    x = torch.nan_to_num(x.detach().float().cpu(), nan=0.0).clamp(0.0, 1.0)
    # floor(v + 0.5) rounds halves up as MATLAB does; torch.round would round them to even.
    return torch.floor(x * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def load_image(path: str | os.PathLike) -> Tensor:
    """Read an image file with Pillow as a float RGB tensor.

    What comes back, by file kind:

    * RGB: as stored (8 bits per channel, divided by 255).
    * Grayscale (``L``, 1-bit): replicated to 3 identical channels, so every image has one shape.
    * 16-bit grayscale PNG/TIFF (Pillow modes ``I;16``, ``I;16B``, ``I``): divided by 65535, so the
      full 16-bit precision is kept; mode ``I`` values outside 0..65535 are refused.
    * **16-bit RGB(A) PNG: Pillow opens it with 8-bit precision** (it keeps the high byte of each
      value); you get a correct image with 8-bit steps and a warning. Read it with another library
      (e.g. ``imageio``) if you need all 16 bits.
    * RGBA, LA and palette images with transparency: **composited on white** (alpha is not dropped:
      the colour stored under transparent pixels is arbitrary). Composite yourself with Pillow if you
      need another background.
    * Palette (``P``), CMYK, YCbCr, LAB: converted to RGB by Pillow.
    * 32-bit float (``F``, some TIFFs): used as is when in [0, 1], refused otherwise.
    * EXIF orientation is applied (a phone photo comes out upright); for animated or multi-page
      files the first frame is read.

    Args:
        path: the image file.

    Returns:
        float32 tensor (3, H, W), RGB, in [0, 1].

    Raises:
        ImageNotFoundError: no such file (also a ``FileNotFoundError``).
        ImageReadError: not an image, truncated or corrupt, unsupported pixel format; the message
            names the file and the cause.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "gray.png"
        >>> Image.fromarray(np.zeros((4, 6), np.uint8)).save(path)
        >>> load_image(path).shape  # grayscale comes back as 3 channels
        torch.Size([3, 4, 6])
    """
    path = Path(path)
    if not path.exists():
        raise ImageNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image file")
    try:
        with Image.open(path) as im:
            eight_bit_copy_of_16_bit_rgb = im.mode in ("RGB", "RGBA") and _stored_as_16_bit(im)
            im.load()
            im = ImageOps.exif_transpose(im)
            x = _pil_to_tensor(im, path)
    except UnidentifiedImageError:
        size = path.stat().st_size
        raise ImageReadError(f"{path}: not an image file Pillow can read (unknown format or not an image at all; "
                             f"{size} bytes); check the file, or remove it from the folder") from None
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"{path}: refused as a possible decompression bomb ({exc}); if you trust the file, "
                             "raise PIL.Image.MAX_IMAGE_PIXELS") from None
    except ImageReadError:
        raise
    except PermissionError:
        raise ImageReadError(f"{path}: cannot be read: permission denied") from None
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow signals truncated/corrupt data with these
        raise ImageReadError(f"{path}: truncated or corrupt image ({type(exc).__name__}: {exc}); "
                             "re-download or re-export it") from None
    if eight_bit_copy_of_16_bit_rgb:
        warnings.warn(f"{path}: a 16-bit RGB image; Pillow reads it with 8-bit precision (high byte only)",
                      stacklevel=2)
    return x


def _stored_as_16_bit(im: Image.Image) -> bool:
    # Pillow's decoder names the raw layout in each tile's 4th field, e.g. "RGB;16B" for a 48-bit PNG.
    # Only used for a warning, so an unexpected tile layout just means no warning.
    try:
        return any(";16" in str(tile[3]) for tile in im.tile)
    except (IndexError, TypeError):
        return False


def _pil_to_tensor(im: Image.Image, path: Path) -> Tensor:
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit grayscale: np.asarray gives uint16 (or int32 for mode "I"); keep all 16 bits.
        a = np.asarray(im).astype(np.float64)
        if mode == "I" and a.size and (a.min() < 0 or a.max() > 65535):
            raise ImageReadError(f"{path}: 32-bit integer image with values {a.min():.0f}..{a.max():.0f}, outside "
                                 "the 16-bit range 0..65535 this loader assumes; rescale it to 8 or 16 bits first")
        x = torch.from_numpy(a / 65535.0).float()[None]
        return x.expand(3, -1, -1).contiguous()
    if mode == "F":
        a = np.asarray(im, dtype=np.float32)
        if a.size and (not np.isfinite(a).all() or a.min() < 0.0 or a.max() > 1.0):
            raise ImageReadError(f"{path}: 32-bit float image with values outside [0, 1] "
                                 f"({np.nanmin(a):g}..{np.nanmax(a):g}); rescale it to [0, 1] or save as 8/16-bit")
        return torch.from_numpy(a.copy())[None].expand(3, -1, -1).contiguous()
    if mode == "1":
        im = im.convert("L")
    elif mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in im.info:
        im = im.convert("RGBA")
    elif mode not in ("L", "RGB"):
        try:
            im = im.convert("RGB")  # palette, CMYK, YCbCr, LAB, HSV, RGBX
        except ValueError as exc:
            raise ImageReadError(f"{path}: pixel format (Pillow mode {mode!r}) cannot be converted to RGB: "
                                 f"{exc}") from None
    return from_uint8_hwc(np.asarray(im))


def save_image(image: Tensor, path: str | os.PathLike, **pil_kwargs) -> Path:
    """Write an image tensor to a file (format from the extension), creating missing folders.

    Args:
        image: float tensor (3, H, W) or (1, 3, H, W), RGB, nominally [0, 1] (clamped, then rounded to
            uint8 as in ``to_uint8_hwc``); (1, H, W) is written as grayscale.
        path: where to write, e.g. ``"out/sr.png"``.
        **pil_kwargs: passed to ``PIL.Image.save`` (e.g. ``quality=95`` for JPEG).

    Returns:
        The path written.

    Example:
        >>> import tempfile
        >>> out = save_image(torch.rand(3, 8, 8), Path(tempfile.mkdtemp()) / "x.png")
        >>> load_image(out).shape
        torch.Size([3, 8, 8])
    """
    path = Path(path)
    array = to_uint8_hwc(image)
    if array.shape[2] == 1:
        array = array[:, :, 0]
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        Image.fromarray(array).save(path, **pil_kwargs)
    except (KeyError, ValueError) as exc:  # Pillow: unknown extension
        raise ValueError(f"cannot save {path}: {exc}; use an extension such as .png or .jpg") from None
    return path


def _probe_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image file after EXIF orientation, from its header only (fast: no decoding)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            try:
                orientation = im.getexif().get(0x0112, 1)
            except Exception:  # a broken EXIF block must not hide an otherwise readable image
                orientation = 1
    except FileNotFoundError:
        raise ImageNotFoundError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file Pillow can read (unknown format or not an image)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{path}: unreadable image header ({type(exc).__name__}: {exc})") from None
    # Orientations 5-8 rotate by 90 degrees, which swaps height and width.
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def _mod_crop(x: Tensor, scale: int) -> Tensor:
    # Same rule as srlib.degrade.mod_crop (top-left corner kept); repeated here so that folders do not
    # need the degradation module.
    h, w = x.shape[-2:]
    return x[..., : h - h % scale, : w - w % scale]


# -------------------------------------------------------------------------------------- dihedral group

def dihedral(x: Tensor, k: int) -> Tensor:
    """Apply the k-th of the 8 flips/rotations of the square (the dihedral group D4).

    ``k % 4`` counts quarter turns counter-clockwise, and ``k >= 4`` mirrors left-right first. k = 0 is
    the identity. Used for augmentation (``PatchDataset``) and self-ensemble (EDSR's "+" results):
    run the model on all 8 and average ``dihedral_inverse(model(dihedral(lr, k)), k)``.

    Args:
        x: image tensor (3, H, W) or (N, 3, H, W) (any tensor: the last two dims are transformed).
        k: 0..7.

    Returns:
        The transformed tensor; H and W swap for odd ``k``.

    Example:
        >>> x = torch.arange(6.0).reshape(1, 2, 3)
        >>> torch.equal(dihedral_inverse(dihedral(x, 5), 5), x)
        True
    """
    if not 0 <= int(k) < 8:
        raise ValueError(f"dihedral: k must be 0..7, got {k}")
    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def dihedral_inverse(x: Tensor, k: int) -> Tensor:
    """Undo ``dihedral(., k)``: rotate back, then mirror back.

    Args:
        x: image tensor (3, H, W) or (N, 3, H, W).
        k: 0..7, the same k given to ``dihedral``.
    """
    if not 0 <= int(k) < 8:
        raise ValueError(f"dihedral_inverse: k must be 0..7, got {k}")
    x = torch.rot90(x, -(k % 4), dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x


# ------------------------------------------------------------------------------------- bundled images

# scikit-image ships these files inside its wheel (skimage/data/), so they load with no network and
# no `pooch`. Images that skimage only downloads on demand (eagle, lily, skin, cells3d, ...) are left
# out on purpose; so are synthetic or binary ones (horse, checkerboard, phantom, colorwheel), and
# `clock` (motion-blurred on purpose: a bad HR target) and `microaneurysms` (102x102, smaller than the
# usual patch), and `cell` (a single blob on a flat background: almost nothing to learn from).
# `cat` is the same picture as `chelsea`.
#
# The split is fixed forever: validation numbers in the chapters and zoo checkpoints depend on it.
# Validation: five varied images (a portrait, a still life, an outdoor scene with structures, a
# grayscale classic, a texture); the stereo pair stays together in train so that no view of the same
# scene leaks into validation.
#
#   name                     split    skimage.data call        mode, H x W, what it is
_BUNDLED_TABLE: dict[str, tuple[str, str, str]] = {
    "astronaut":            ("val",   "astronaut",             "RGB 512x512, portrait of astronaut Eileen Collins"),
    "coffee":               ("val",   "coffee",                "RGB 400x600, cup of coffee on a saucer, still life"),
    "rocket":               ("val",   "rocket",                "RGB 427x640, Falcon 9 rocket on its launch pad, night"),
    "camera":               ("val",   "camera",                "gray 512x512, the 'cameraman' classic"),
    "gravel":               ("val",   "gravel",                "gray 512x512, gravel texture"),
    "chelsea":              ("train", "chelsea",               "RGB 300x451, Chelsea the cat (fur, whiskers)"),
    "hubble_deep_field":    ("train", "hubble_deep_field",     "RGB 872x1000, Hubble deep field: galaxies on black"),
    "immunohistochemistry": ("train", "immunohistochemistry",  "RGB 512x512, stained tissue, microscopy"),
    "retina":               ("train", "retina",                "RGB 1411x1411, fundus photograph of a human retina"),
    "motorcycle_left":      ("train", "stereo_motorcycle[0]",  "RGB 500x741, Middlebury stereo motorcycle, left view"),
    "motorcycle_right":     ("train", "stereo_motorcycle[1]",  "RGB 500x741, Middlebury stereo motorcycle, right view"),
    "coins":                ("train", "coins",                 "gray 303x384, Greek coins from Pompeii"),
    "moon":                 ("train", "moon",                  "gray 512x512, lunar surface, low contrast"),
    "text":                 ("train", "text",                  "gray 172x448, handwritten equations shot at an angle"),
    "page":                 ("train", "page",                  "gray 191x384, scanned book page, uneven lighting"),
    "brick":                ("train", "brick",                 "gray 512x512, brick wall texture"),
    "grass":                ("train", "grass",                 "gray 512x512, grass texture"),
    "logo":                 ("train", "logo",                  "RGBA 500x500, scikit-image logo, flat colours"),
}

#: name -> "train" or "val", in table order (read-only).
BUNDLED_IMAGES: Mapping[str, str] = types.MappingProxyType({n: s for n, (s, _, _) in _BUNDLED_TABLE.items()})
#: name -> one-line description (read-only).
BUNDLED_DESCRIPTIONS: Mapping[str, str] = types.MappingProxyType({n: d for n, (_, _, d) in _BUNDLED_TABLE.items()})


def list_bundled(split: str = "all") -> list[str]:
    """Names of the bundled images of a split, in table order.

    Args:
        split: ``"train"``, ``"val"`` or ``"all"``.

    Example:
        >>> list_bundled("val")
        ['astronaut', 'coffee', 'rocket', 'camera', 'gravel']
    """
    if split not in ("train", "val", "all"):
        raise ValueError(f"split must be 'train', 'val' or 'all', got {split!r}")
    return [n for n, s in BUNDLED_IMAGES.items() if split in ("all", s)]


@functools.lru_cache(maxsize=None)
def _load_bundled(name: str) -> Tensor:
    # Imported here, not at the top: skimage.data costs ~0.5 s to import and most users of this
    # module (folders, benchmarks) never need it.
    import skimage
    import skimage.data

    call = _BUNDLED_TABLE[name][1]
    function, index = re.fullmatch(r"(\w+)(?:\[(\d)\])?", call).groups()
    try:
        array = getattr(skimage.data, function)()
    except (AttributeError, ImportError, OSError, ValueError) as exc:
        raise RuntimeError(f"bundled image {name!r} (skimage.data.{function}) could not be loaded offline with "
                           f"scikit-image {skimage.__version__}: {type(exc).__name__}: {exc}. This module only lists "
                           "images shipped inside the scikit-image wheel; report it if a new version dropped "
                           "one") from None
    if index is not None:
        array = array[int(index)]
    return from_uint8_hwc(np.asarray(array))


def bundled_image(name: str) -> Tensor:
    """One bundled image (no download: the file ships with scikit-image).

    Args:
        name: a key of ``BUNDLED_IMAGES`` (see ``list_bundled()``).

    Returns:
        float32 tensor (3, H, W), RGB in [0, 1]: grayscale images have 3 identical channels, the RGBA
        logo is composited on white. A fresh copy (decoded once, then cached).

    Example:
        >>> bundled_image("astronaut").shape
        torch.Size([3, 512, 512])
    """
    if name not in _BUNDLED_TABLE:
        close = difflib.get_close_matches(name, list(_BUNDLED_TABLE), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"no bundled image named {name!r}{hint} Known: {', '.join(_BUNDLED_TABLE)}")
    return _load_bundled(name).clone()


def bundled_images(split: str = "train") -> dict[str, Tensor]:
    """The bundled images of a split.

    Args:
        split: ``"train"`` (13 images), ``"val"`` (5) or ``"all"``.

    Returns:
        name -> float32 tensor (3, H, W), RGB in [0, 1], in table order (fresh copies).

    Example:
        >>> sorted(bundled_images("val"))
        ['astronaut', 'camera', 'coffee', 'gravel', 'rocket']
    """
    return {name: bundled_image(name) for name in list_bundled(split)}


# ---------------------------------------------------------------------------------------- patch sampler

def _mix_seed(seed: int, index: int) -> int:
    # A per-item seed for __getitem__: a multiplicative hash, so (seed, index) pairs don't collide the
    # way seed + index would ((0, 1) and (1, 0)).
    return (int(seed) * 0x9E3779B97F4A7C15 + int(index) * 0xBF58476D1CE4E5B9 + 1) % (2**63 - 1)


def _named(images: Mapping[str, Tensor] | Sequence[Tensor] | Dataset) -> list[tuple[str, Tensor]]:
    if isinstance(images, Mapping):
        return [(str(k), v) for k, v in images.items()]
    if isinstance(images, ImageFolder):
        return list(images)
    if isinstance(images, Tensor):
        if images.ndim == 4:
            return [(f"image {i}", im) for i, im in enumerate(images)]
        raise ValueError(f"images: a single tensor must be a batch (N, 3, H, W), got {tuple(images.shape)}; "
                         "wrap one image in a list")
    return [(f"image {i}", im) for i, im in enumerate(images)]


class PatchDataset(Dataset):
    """Random (LR, HR) training patches from a few HR images, LR made on the fly.

    Each sample: pick an image with probability proportional to its area (a 1411x1411 retina is
    cropped ~8 times as often as a 512x512 image, so every pixel is equally likely), crop a random
    ``patch_size`` square, apply one of the 8 flips/rotations (``dihedral``), then degrade the HR
    patch to LR with ``degradation(hr, generator)``.

    Two ways to read it:

    * ``sample_batch(batch_size, generator)``: a fresh random batch, for training loops
      (``srlib.train.fit`` uses this); the same generator state gives the same batch.
    * ``ds[i]``: a map-style ``Dataset`` of ``length`` items for ``DataLoader``; item ``i`` depends only
      on ``seed`` and ``i``, so it is the same on every call and in every worker.

    Args:
        images: HR images, float (3, H, W) RGB in [0, 1]: a dict name -> image, a list, a batch
            tensor (N, 3, H, W) or an ``ImageFolder``. Images smaller than the patch are skipped with a
            warning naming them (listed in ``skipped``); if none remain, ``ValueError``.
        scale: upscaling factor; LR patches are ``patch_size // scale`` pixels.
        patch_size: HR patch side in pixels, a multiple of ``scale``. Default: 96 (x2 EDSR uses 96;
            its x4 uses 192).
        degradation: ``callable(hr (N, 3, P, P), generator) -> lr (N, 3, P/scale, P/scale)``.
            Default: ``srlib.degrade.Degradation.bicubic(scale)`` (MATLAB bicubic, rounded to uint8
            levels, the benchmark degradation).
        augment: apply a random flip/rotation to each patch. Default: True.
        seed: fixes ``ds[i]``. Default: 0.
        length: ``len(ds)``. Default: total pixels / patch pixels (one "epoch" covers each pixel once
            on average).

    Example:
        >>> ds = PatchDataset(bundled_images("train"), scale=4, patch_size=64, seed=0)
        >>> lr, hr = ds.sample_batch(8, torch.Generator().manual_seed(0))
        >>> lr.shape, hr.shape
        (torch.Size([8, 3, 16, 16]), torch.Size([8, 3, 64, 64]))
    """

    def __init__(self, images: Mapping[str, Tensor] | Sequence[Tensor] | Dataset, scale: int, patch_size: int = 96,
                 degradation: Callable[[Tensor, torch.Generator], Tensor] | None = None, augment: bool = True,
                 seed: int = 0, length: int | None = None):
        if int(scale) != scale or scale < 1:
            raise ValueError(f"scale must be a positive integer, got {scale!r}")
        if patch_size < scale or patch_size % scale:
            lower, upper = max(scale, patch_size // scale * scale), (patch_size // scale + 1) * scale
            raise ValueError(f"patch_size={patch_size} is not a multiple of scale={scale}, so the LR patch would not "
                             f"be a whole number of pixels; use e.g. patch_size={lower} or {upper}")
        self.scale, self.patch_size, self.augment, self.seed = int(scale), int(patch_size), bool(augment), int(seed)
        self.images: list[Tensor] = []
        self.names: list[str] = []
        self.skipped: list[tuple[str, str]] = []
        for name, image in _named(images):
            _check_image(image, name)
            h, w = image.shape[-2:]
            if h < patch_size or w < patch_size:
                self.skipped.append((name, f"{h}x{w} px is smaller than the {patch_size}x{patch_size} patch"))
                continue
            self.images.append(image.detach().float().contiguous())
            self.names.append(name)
        if self.skipped:
            warnings.warn("PatchDataset skipped " + "; ".join(f"{n} ({why})" for n, why in self.skipped), stacklevel=2)
        if not self.images:
            raise ValueError(f"PatchDataset: no image is at least {patch_size}x{patch_size} px "
                             f"({len(self.skipped)} given, all too small); use a smaller patch_size or bigger images")
        areas = torch.tensor([float(im.shape[-2] * im.shape[-1]) for im in self.images], dtype=torch.float64)
        self.weights = areas / areas.sum()
        if degradation is None:
            from . import degrade  # here, not at the top: folders and I/O must not need the degradation module
            degradation = degrade.Degradation.bicubic(self.scale)
        self.degradation = degradation
        self.length = int(length) if length is not None else max(1, int(areas.sum().item()) // patch_size**2)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        """Item ``index``: ``(lr (3, p, p), hr (3, P, P))``, the same for the same ``seed`` and ``index``."""
        if not -self.length <= index < self.length:
            raise IndexError(f"PatchDataset index {index} out of range for length {self.length}")
        generator = torch.Generator().manual_seed(_mix_seed(self.seed, index % self.length))
        lr, hr = self.sample_batch(1, generator)
        return lr[0], hr[0]

    def sample_batch(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """A random batch of patches.

        Args:
            batch_size: number of patches N.
            generator: the only source of randomness (crop positions, augmentation, and whatever the
                degradation draws).

        Returns:
            ``(lr, hr)``: float32 (N, 3, P/scale, P/scale) and (N, 3, P, P), RGB in [0, 1].
        """
        p = self.patch_size
        which = torch.multinomial(self.weights, batch_size, replacement=True, generator=generator)
        ks = (torch.randint(0, 8, (batch_size,), generator=generator) if self.augment
              else torch.zeros(batch_size, dtype=torch.long))
        patches = []
        for i, k in zip(which.tolist(), ks.tolist()):
            image = self.images[i]
            h, w = image.shape[-2:]
            top = int(torch.randint(0, h - p + 1, (1,), generator=generator))
            left = int(torch.randint(0, w - p + 1, (1,), generator=generator))
            patches.append(dihedral(image[:, top:top + p, left:left + p], k))
        hr = torch.stack(patches)  # (N, 3, P, P)
        lr = self.degradation(hr, generator)
        expected = (batch_size, 3, p // self.scale, p // self.scale)
        if tuple(lr.shape) != expected:
            raise ValueError(f"PatchDataset: the degradation returned LR of shape {tuple(lr.shape)}, expected "
                             f"{expected} (HR {tuple(hr.shape)} / scale {self.scale}); check that it downscales by "
                             "the same scale")
        return lr, hr

    def __repr__(self) -> str:
        return (f"PatchDataset({len(self.images)} images, scale={self.scale}, patch_size={self.patch_size}, "
                f"augment={self.augment}, length={self.length})")


def _check_image(image: Tensor, name: str) -> None:
    if not isinstance(image, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor (3, H, W), got {type(image).__name__}; "
                        "load files with srlib.data.load_image or convert arrays with from_uint8_hwc")
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"{name}: expected an RGB image (3, H, W), got shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"{name}: expected a float image in [0, 1], got dtype {image.dtype}; divide by 255")
    lo, hi = float(image.min()), float(image.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        hint = " (looks like 0..255: divide by 255)" if hi > 2 else ""
        raise ValueError(f"{name}: values must be in [0, 1], found {lo:g}..{hi:g}{hint}")


# ---------------------------------------------------------------------------------------------- folders

def _scan(root: Path, extensions: Sequence[str], what: str) -> tuple[list[Path], list[tuple[Path, int, int]],
                                                                       list[tuple[Path, str]]]:
    """List a folder's image files; probe each header. Returns (candidates, readable (path, h, w), skipped)."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{what} folder {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"{what} folder {root} is a file, not a folder")
    suffixes = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
    candidates = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if not candidates:
        others = sorted(p.name for p in root.iterdir())
        seen = f"; it holds {len(others)} other entries ({', '.join(others[:5])}{', ...' if len(others) > 5 else ''})" \
            if others else "; it is empty"
        raise FileNotFoundError(f"{what} folder {root} has no image files with extensions {', '.join(suffixes)}{seen}")
    readable, skipped = [], []
    for path in candidates:
        try:
            h, w = _probe_size(path)
        except ImageReadError as exc:
            skipped.append((path, str(exc).removeprefix(f"{path}: ")))  # the path is listed beside the reason
            continue
        readable.append((path, h, w))
    return candidates, readable, skipped


def _unique_names(paths: Sequence[Path]) -> list[str]:
    # The stem ("baby") is the natural name, but "a.png" and "a.jpg" would collide: then use file names.
    stems = [p.stem for p in paths]
    return stems if len(set(stems)) == len(stems) else [p.name for p in paths]


def _warn_skipped(what: str, root: Path, skipped: Sequence[tuple[object, str]], total: int) -> None:
    if skipped:
        lines = "; ".join(f"{Path(str(p)).name}: {why}" for p, why in skipped)
        warnings.warn(f"{what} {root}: skipped {len(skipped)} of {total}: {lines}", stacklevel=3)


class ImageFolder(Dataset):
    """The image files of one folder (not its subfolders), sorted by name, loaded lazily.

    Unreadable files (not an image, a broken header) and, with ``mod_crop``, images smaller than the
    scale are skipped with a warning and listed in ``skipped``; the rest load normally.

    Args:
        root: the folder.
        extensions: file extensions to consider, case-insensitive. Default: ``IMAGE_EXTENSIONS``.
        mod_crop: if given, crop each image to a multiple of this scale (the benchmark protocol's first
            step; the top-left corner is kept).

    Attributes:
        paths, names: the usable files and their names (file stems).
        skipped: ``(path, reason)`` for every file left out.

    Raises:
        FileNotFoundError: the folder does not exist, or holds no file with an image extension.
        ValueError: none of its image files can be used (the message lists why for each).

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> _ = save_image(torch.rand(3, 8, 8), root / "a.png")
        >>> name, image = ImageFolder(root)[0]
        >>> name, image.shape
        ('a', torch.Size([3, 8, 8]))
    """

    def __init__(self, root: str | os.PathLike, extensions: Sequence[str] = IMAGE_EXTENSIONS,
                 mod_crop: int | None = None):
        self.root = Path(root)
        self.mod_crop = mod_crop
        candidates, readable, self.skipped = _scan(self.root, extensions, "image")
        kept = []
        for path, h, w in readable:
            if mod_crop and (h < mod_crop or w < mod_crop):
                self.skipped.append((path, f"{h}x{w} px is smaller than the scale {mod_crop}: nothing is left after "
                                           f"cropping to a multiple of {mod_crop}"))
            else:
                kept.append(path)
        if not kept:
            raise ValueError(f"none of the {len(candidates)} image files in {self.root} can be used: "
                             + "; ".join(f"{p.name}: {why}" for p, why in self.skipped))
        self.skipped.sort()
        _warn_skipped("ImageFolder", self.root, self.skipped, len(candidates))
        self.paths: list[Path] = kept
        self.names: list[str] = _unique_names(kept)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[str, Tensor]:
        """``(name, image)``: image float32 (3, H, W) RGB in [0, 1] (mod-cropped if asked)."""
        image = load_image(self.paths[index])
        return self.names[index], _mod_crop(image, self.mod_crop) if self.mod_crop else image

    def __iter__(self) -> Iterator[tuple[str, Tensor]]:
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return f"ImageFolder({str(self.root)!r}, {len(self)} images, {len(self.skipped)} skipped)"


class PairedFolder(Dataset):
    """Pre-made LR/HR pairs in two folders, matched by name.

    An HR file ``baby.png`` matches the LR file ``baby.*`` or ``babyx{scale}.*`` (the DIV2K and EDSR
    benchmark naming, e.g. ``0001x4.png``). Sizes are checked from the file headers at construction:
    ``LR size x scale`` must equal the HR size after mod-crop. Pairs that fail (no LR file, wrong size,
    unreadable) are skipped with a warning and listed in ``skipped``; if none is left (typically: the
    wrong ``scale``), ``ValueError`` explains the first mismatches.

    Args:
        hr_root: folder of HR images.
        lr_root: folder of LR images.
        scale: the factor between them.
        extensions: file extensions to consider. Default: ``IMAGE_EXTENSIONS``.

    Example:
        >>> import tempfile
        >>> hr_dir, lr_dir = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())
        >>> _ = save_image(torch.rand(3, 9, 8), hr_dir / "a.png")   # mod-cropped to 8x8
        >>> _ = save_image(torch.rand(3, 4, 4), lr_dir / "ax2.png")
        >>> name, lr, hr = PairedFolder(hr_dir, lr_dir, scale=2)[0]
        >>> name, lr.shape, hr.shape
        ('a', torch.Size([3, 4, 4]), torch.Size([3, 8, 8]))
    """

    def __init__(self, hr_root: str | os.PathLike, lr_root: str | os.PathLike, scale: int,
                 extensions: Sequence[str] = IMAGE_EXTENSIONS):
        self.hr_root, self.lr_root, self.scale = Path(hr_root), Path(lr_root), int(scale)
        hr_candidates, hr_readable, self.skipped = _scan(self.hr_root, extensions, "HR")
        _, lr_readable, lr_skipped = _scan(self.lr_root, extensions, "LR")
        lr_by_stem = {p.stem: (p, h, w) for p, h, w in lr_readable}
        lr_broken = {p.stem: why for p, why in lr_skipped}
        self.pairs: list[tuple[Path, Path]] = []
        s = self.scale
        for hr_path, h, w in hr_readable:
            stems = (hr_path.stem, f"{hr_path.stem}x{s}")
            match = next((lr_by_stem[t] for t in stems if t in lr_by_stem), None)
            if match is None:
                broken = next((lr_broken[t] for t in stems if t in lr_broken), None)
                why = (f"its LR file is unreadable: {broken}" if broken else
                       f"no LR file named {stems[0]}.* or {stems[1]}.* in {self.lr_root}")
                self.skipped.append((hr_path, why))
                continue
            lr_path, lh, lw = match
            if h < s or w < s:
                self.skipped.append((hr_path, f"{h}x{w} px is smaller than the scale {s}"))
            elif (lh * s, lw * s) != (h - h % s, w - w % s):
                self.skipped.append((hr_path, f"LR {lr_path.name} is {lh}x{lw} px; x{s} gives {lh * s}x{lw * s}, "
                                              f"but the HR is {h}x{w} ({h - h % s}x{w - w % s} after mod-crop): "
                                              "wrong scale or not a matching pair"))
            else:
                self.pairs.append((lr_path, hr_path))
        if not self.pairs:
            raise ValueError(f"PairedFolder: no usable LR/HR pair for scale {s} between {self.hr_root} and "
                             f"{self.lr_root}: " + "; ".join(f"{Path(p).name}: {why}" for p, why in self.skipped[:5]))
        _warn_skipped("PairedFolder", self.hr_root, self.skipped, len(hr_candidates))
        self.names: list[str] = _unique_names([hr for _, hr in self.pairs])

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[str, Tensor, Tensor]:
        """``(name, lr, hr)``: float32 (3, h, w) and (3, h*scale, w*scale), RGB in [0, 1]; HR mod-cropped."""
        lr_path, hr_path = self.pairs[index]
        lr, hr = load_image(lr_path), _mod_crop(load_image(hr_path), self.scale)
        if tuple(lr.shape[-2:]) != (hr.shape[-2] // self.scale, hr.shape[-1] // self.scale):
            # Headers were checked at construction; this only fires if a file changed since then.
            raise ImageReadError(f"{lr_path}: LR {tuple(lr.shape[-2:])} does not match HR {hr_path} "
                                 f"{tuple(hr.shape[-2:])} at scale {self.scale}")
        return self.names[index], lr, hr

    def __iter__(self) -> Iterator[tuple[str, Tensor, Tensor]]:
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return (f"PairedFolder({str(self.hr_root)!r}, {str(self.lr_root)!r}, scale={self.scale}, {len(self)} pairs, "
                f"{len(self.skipped)} skipped)")


class ReferenceFolder(Dataset):
    """Reference-based SR test groups in one folder (the CUFED5 layout).

    Files are named ``GROUP_LEVEL.ext``: level 0 is the input (HR) image, levels 1..``num_refs`` are its
    references, from most to least similar (CUFED5: ``000_0.png`` input, ``000_1.png`` .. ``000_5.png``
    references, 126 groups). Incomplete groups (no input, a missing or unreadable reference) and files
    that do not follow the naming are skipped with a warning and listed in ``skipped``.

    Args:
        root: the folder.
        num_refs: references per group. Default: 5 (CUFED5).
        extensions: file extensions to consider. Default: ``IMAGE_EXTENSIONS``.
        mod_crop: if given, the input image is cropped to a multiple of this scale (references are
            returned whole: reference-based models take them at any size).

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> for level in range(6):
        ...     _ = save_image(torch.rand(3, 8, 8), root / f"000_{level}.png")
        >>> name, hr, refs = ReferenceFolder(root)[0]
        >>> name, hr.shape, len(refs)
        ('000', torch.Size([3, 8, 8]), 5)
    """

    def __init__(self, root: str | os.PathLike, num_refs: int = 5, extensions: Sequence[str] = IMAGE_EXTENSIONS,
                 mod_crop: int | None = None):
        self.root, self.num_refs, self.mod_crop = Path(root), int(num_refs), mod_crop
        candidates, readable, self.skipped = _scan(self.root, extensions, "reference-SR")
        broken = {p for p, _ in self.skipped}
        groups: dict[str, dict[int, Path]] = {}
        for path in candidates:
            m = re.fullmatch(r"(.+)_(\d+)", path.stem)
            if m is None or int(m.group(2)) > self.num_refs:
                if path not in broken:
                    self.skipped.append((path, f"name does not follow GROUP_LEVEL with LEVEL 0..{self.num_refs} "
                                               "(e.g. 000_0.png input, 000_1.png first reference)"))
                continue
            groups.setdefault(m.group(1), {})[int(m.group(2))] = path
        self.groups: list[tuple[str, Path, list[Path]]] = []
        sizes = {p: (h, w) for p, h, w in readable}
        for name in sorted(groups):
            files = groups[name]
            missing = [f"{name}_{k}" for k in range(self.num_refs + 1) if k not in files]
            bad = [files[k].name for k in sorted(files) if files[k] in broken]
            small = mod_crop and 0 in files and files[0] in sizes and min(sizes[files[0]]) < mod_crop
            if missing or bad or small:
                why = (f"missing {', '.join(missing)}" if missing else f"unreadable {', '.join(bad)}" if bad
                       else f"input is smaller than the scale {mod_crop}")
                self.skipped.append((self.root / f"{name}_*", f"group {name} incomplete: {why}"))
                continue
            self.groups.append((name, files[0], [files[k] for k in range(1, self.num_refs + 1)]))
        if not self.groups:
            raise ValueError(f"no complete reference group (input + {self.num_refs} references) in {self.root}: "
                             + "; ".join(f"{Path(str(p)).name}: {why}" for p, why in self.skipped[:5]))
        self.skipped.sort(key=lambda item: str(item[0]))
        _warn_skipped("ReferenceFolder", self.root, self.skipped, len(candidates))
        self.names: list[str] = [g[0] for g in self.groups]

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, index: int) -> tuple[str, Tensor, list[Tensor]]:
        """``(name, hr, refs)``: the input image (3, H, W) and its references (each (3, h, w), levels 1..n)."""
        name, input_path, ref_paths = self.groups[index]
        hr = load_image(input_path)
        if self.mod_crop:
            hr = _mod_crop(hr, self.mod_crop)
        return name, hr, [load_image(p) for p in ref_paths]

    def __iter__(self) -> Iterator[tuple[str, Tensor, list[Tensor]]]:
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return f"ReferenceFolder({str(self.root)!r}, {len(self)} groups, {len(self.skipped)} skipped)"


# ---------------------------------------------------------------------------------------------- downloads

def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (a 3.5 GB archive never sits in memory).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "empty"
        >>> path.write_bytes(b"")
        0
        >>> sha256_file(path)[:16]
        'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_url(url: str, dest: str | os.PathLike, expected_sha256: str | None = None, progress: bool = True) -> Path:
    """Download ``url`` to ``dest``, hashing while streaming, and check the sha256.

    The file is written to ``dest.part`` and renamed only once complete and verified, so an
    interrupted download never looks finished. If ``dest`` already exists it is verified, not fetched
    again. Without ``expected_sha256`` the computed hash is printed so it can be pinned.

    Args:
        url: ``https://``, ``http://`` or ``file://`` URL.
        dest: the file to create (parent folders are created).
        expected_sha256: hex digest to insist on; on mismatch the file is deleted and ``ChecksumError``
            raised.
        progress: show a tqdm progress bar.

    Returns:
        ``dest`` as a ``Path``.

    Example:
        >>> download_url("https://cv.snu.ac.kr/research/EDSR/benchmark.tar", "benchmark.tar")  # doctest: +SKIP
    """
    dest = Path(dest)
    if dest.exists():
        if expected_sha256:
            _verify(dest, sha256_file(dest), expected_sha256, source=str(dest))
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as f:
            total = response.headers.get("Content-Length")
            bar = _progress_bar(int(total) if total else None, dest.name, progress)
            for chunk in iter(lambda: response.read(1 << 20), b""):
                f.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
            bar.close()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"could not download {url}: {reason}. Download it by hand (browser, wget) and save it "
                            f"as {dest}, then run again") from None
    _verify(part, digest.hexdigest(), expected_sha256, source=url)
    part.replace(dest)
    return dest


def _verify(path: Path, actual: str, expected: str | None, source: str) -> None:
    if expected is None:
        # Printing is fine here: this only runs inside an explicit download.
        print(f"srlib: sha256 of {path.name.removesuffix('.part')} is {actual} (not pinned; pass "
              f"expected_sha256='{actual}' to pin it)")
        return
    if actual != expected.strip().lower():
        path.unlink(missing_ok=True)
        raise ChecksumError(f"{source}: sha256 is {actual}, expected {expected}; the file was deleted. It is corrupt, "
                            "truncated or was changed upstream: download it again, or, if you trust the new file, "
                            "pass its sha256 as expected_sha256")


def _progress_bar(total: int | None, name: str, enabled: bool):
    class _NoBar:
        def update(self, n: int) -> None:
            pass

        def close(self) -> None:
            pass

    if not enabled:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a dependency, but a progress bar is not worth failing a download for
        return _NoBar()
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name, leave=False)


def _check_member(name: str, dest: Path, archive: Path) -> None:
    """Refuse absolute paths, drive letters and '..' anywhere in a member name (path traversal)."""
    posix = name.replace("\\", "/")
    parts = PurePosixPath(posix).parts
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix) or ".." in parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} would be written outside {dest} (path traversal); "
                                 "refusing to extract anything from this archive")
    target = (dest / posix).resolve()
    if target != dest.resolve() and dest.resolve() not in target.parents:
        raise UnsafeArchiveError(f"{archive}: member {name!r} resolves to {target}, outside {dest}; "
                                 "refusing to extract")


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract a zip or tar (.tar, .tar.gz, .tgz, ...) archive safely.

    Every member is checked before anything is written: an absolute path, a ``..`` component, a
    symbolic or hard link, or a device file makes the whole archive refused (``UnsafeArchiveError``)
    so that a malicious archive cannot write outside ``dest``.

    Args:
        archive: the archive file.
        dest: the folder to extract into (created).

    Returns:
        ``dest`` as a ``Path``.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    # The extension decides first: sniffing alone can mistake a tar that ends with a zip member for a zip.
    name = archive.name.lower()
    is_tar = name.endswith((".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz"))
    if not is_tar and zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _check_member(info.filename, dest, archive)
                # The high 16 bits of external_attr hold the Unix mode: refuse symbolic links.
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a symbolic link; "
                                             "refusing to extract")
            zf.extractall(dest)
        return dest
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for member in members:
                _check_member(member.name, dest, archive)
                if not (member.isfile() or member.isdir()):
                    raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a link or special file; "
                                             "refusing to extract")
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: the standard library's own safety net too
                tf.extractall(dest, members=members, filter="data")
            else:
                tf.extractall(dest, members=members)
        return dest
    raise ValueError(f"{archive}: not a zip or tar archive (or a corrupt one); delete it and download again")


# --------------------------------------------------------------------------------- benchmark data sets

@dataclass(frozen=True)
class Archive:
    """One downloadable archive of a data set.

    Args:
        url: where to get it.
        sha256: expected hex digest, or ``None`` when it could not be verified when this table was
            written (then the digest is computed and printed on first download).
        provides: folders, relative to the data root, that exist once it is extracted.
        extract_to: folder, relative to the data root, to extract into ("" = the root itself).
    """

    url: str
    sha256: str | None
    provides: tuple[str, ...]
    extract_to: str = ""

    @property
    def filename(self) -> str:
        return PurePosixPath(urllib.parse.urlparse(self.url).path).name


@dataclass(frozen=True)
class DatasetSpec:
    """Where a data set comes from and how its files are laid out under the data root.

    Args:
        name: e.g. ``"Set5"``.
        description: one line (content, size of the download).
        hr_dirs: split -> candidate HR folders relative to the data root, tried in order; the first is
            where the archive puts them (later ones accept other common layouts, e.g. BasicSR's).
        archives: the archives that can be downloaded (empty: manual download only).
        lr_dirs: ``(split, scale)`` -> folder of pre-made LR images (named ``{stem}x{scale}``).
        num_images: split -> expected image (or group) count; a different count warns.
        kind: ``"sr"`` (HR images) or ``"reference"`` (CUFED5-style input + reference groups).
        manual: how to get the files by hand, when there is no direct download.
        source: where the URLs come from.
    """

    name: str
    description: str
    hr_dirs: Mapping[str, tuple[str, ...]]
    archives: tuple[Archive, ...] = ()
    lr_dirs: Mapping[tuple[str, int], str] = field(default_factory=dict)
    num_images: Mapping[str, int] = field(default_factory=dict)
    kind: str = "sr"
    manual: str = ""
    source: str = ""

    @property
    def default_split(self) -> str:
        return next(iter(self.hr_dirs))

    def archive_for(self, folder: str) -> Archive | None:
        """The archive whose extraction creates ``folder`` (relative to the data root), if any."""
        return next((a for a in self.archives if folder in a.provides), None)


def default_data_root() -> Path:
    """``$SRLIB_DATA`` if set, else ``~/.cache/srlib/datasets``."""
    return Path(os.environ.get("SRLIB_DATA") or Path.home() / ".cache" / "srlib" / "datasets").expanduser()


# sha256 values below are None: not verified offline: computed and printed on first download; pass
# expected_sha256 to pin.

# DIV2K (Agustsson & Timofte, NTIRE 2017): the official zips from the DIV2K page,
# https://data.vision.ee.ethz.ch/cvl/DIV2K/ . Train HR 0001-0800 (~3.5 GB), valid HR 0801-0900 (~450 MB);
# bicubic LR (MATLAB imresize) in DIV2K_{train,valid}_LR_bicubic/X{s}/0001x{s}.png.
_DIV2K_URL = "https://data.vision.ee.ethz.ch/cvl/DIV2K/"
_DIV2K = DatasetSpec(
    name="DIV2K",
    description="DIV2K: 800 train + 100 validation 2K-resolution photos (train HR zip ~3.5 GB, valid HR ~450 MB)",
    hr_dirs={"train": ("DIV2K/DIV2K_train_HR", "DIV2K_train_HR"), "valid": ("DIV2K/DIV2K_valid_HR", "DIV2K_valid_HR")},
    archives=(
        Archive(_DIV2K_URL + "DIV2K_train_HR.zip", None, ("DIV2K/DIV2K_train_HR",), "DIV2K"),
        Archive(_DIV2K_URL + "DIV2K_valid_HR.zip", None, ("DIV2K/DIV2K_valid_HR",), "DIV2K"),
        *(Archive(_DIV2K_URL + f"DIV2K_{split}_LR_bicubic_X{s}.zip", None, (f"DIV2K/DIV2K_{split}_LR_bicubic/X{s}",),
                  "DIV2K") for split in ("train", "valid") for s in (2, 3, 4)),
    ),
    lr_dirs={(split, s): f"DIV2K/DIV2K_{split}_LR_bicubic/X{s}" for split in ("train", "valid") for s in (2, 3, 4)},
    num_images={"train": 800, "valid": 100},
    source="official DIV2K page, data.vision.ee.ethz.ch/cvl/DIV2K/",
)

# Set5, Set14, B100, Urban100: benchmark.tar (~250 MB) published by the EDSR authors (SNU CV lab) and
# linked from github.com/sanghyun-son/EDSR-PyTorch; it unpacks to benchmark/<Set>/HR/*.png and
# benchmark/<Set>/LR_bicubic/X{2,3,4}/<name>x{s}.png. One archive serves all four sets: downloading
# any of them extracts all of them. (Alternative source, not used here: the per-set zips of Huang et
# al.'s SelfExSR, github.com/jbhuang0604/SelfExSR, e.g. https://uofi.box.com/shared/static/
# kfahv87nfe8ax910l85dksyl2q212voc.zip for Set5, with HR files named img_001_SRF_4_HR.png.)
_BENCHMARK_TAR_URL = "https://cv.snu.ac.kr/research/EDSR/benchmark.tar"
_BENCHMARK_SETS = {
    # name        count  aliases                what
    "Set5":      (5,    (),                     "Set5 (Bevilacqua et al. 2012): baby, bird, butterfly, head, woman"),
    "Set14":     (14,   (),                     "Set14 (Zeyde et al. 2010): 14 classic test images"),
    "B100":      (100,  ("BSD100", "BSDS100"),  "B100 (Martin et al. 2001): the 100 test photos of BSD300"),
    "Urban100":  (100,  (),                     "Urban100 (Huang et al. 2015): urban scenes, repetitive structures"),
}
_BENCHMARK_ARCHIVE = Archive(
    _BENCHMARK_TAR_URL, None,
    tuple(f"benchmark/{n}/{sub}" for n in _BENCHMARK_SETS for sub in ("HR", *(f"LR_bicubic/X{s}" for s in (2, 3, 4)))),
)


def _benchmark_spec(name: str, count: int, description: str) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        description=description + " (from benchmark.tar, ~250 MB, shared with Set5/Set14/B100/Urban100)",
        hr_dirs={"test": (f"benchmark/{name}/HR", f"{name}/HR", f"{name}/GTmod12", f"{name}/GT", name)},
        archives=(_BENCHMARK_ARCHIVE,),
        lr_dirs={("test", s): f"benchmark/{name}/LR_bicubic/X{s}" for s in (2, 3, 4)},
        num_images={"test": count},
        source="EDSR-PyTorch's benchmark.tar, cv.snu.ac.kr/research/EDSR/benchmark.tar",
    )


# CUFED5 (Zhang et al., SRNTT, CVPR 2019): 126 groups, each an input 000_0.png and references
# 000_1.png .. 000_5.png from most to least similar. The authors share it on Google Drive (linked from
# github.com/ZZUTK/SRNTT), which needs a browser confirmation for files this size: manual download only.
_CUFED5 = DatasetSpec(
    name="CUFED5",
    description="CUFED5: reference-based SR test set, 126 groups of an input image and 5 references "
                "(similarity levels 1..5)",
    hr_dirs={"test": ("CUFED5", "CUFED5/CUFED5")},
    kind="reference",
    num_images={"test": 126},
    manual="Download CUFED5 from the SRNTT authors' Google Drive link "
           "(https://drive.google.com/open?id=1Fa1mopExA9YGG1RxrCZZn7QFTYXLx6ph, linked from "
           "github.com/ZZUTK/SRNTT) in a browser, unzip it, and put the 756 files 000_0.png .. 125_5.png in",
    source="github.com/ZZUTK/SRNTT (README, 'Testing set')",
)

#: name -> spec of every data set ``load_benchmark`` knows (look-ups are case-insensitive; aliases
#: such as BSD100 are accepted by ``load_benchmark``).
DATASETS: dict[str, DatasetSpec] = {
    "DIV2K": _DIV2K,
    **{n: _benchmark_spec(n, count, what) for n, (count, _, what) in _BENCHMARK_SETS.items()},
    "CUFED5": _CUFED5,
}
_ALIASES = {alias.lower(): n for n, (_, aliases, _) in _BENCHMARK_SETS.items() for alias in aliases}


def _get_spec(name: str | DatasetSpec) -> DatasetSpec:
    if isinstance(name, DatasetSpec):
        return name
    key = {n.lower(): n for n in DATASETS}.get(name.lower()) or _ALIASES.get(name.lower())
    if key is None:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(DATASETS)} (or pass a DatasetSpec)")
    return DATASETS[key]


def _find_folder(root: Path, candidates: Sequence[str], extensions: Sequence[str] = IMAGE_EXTENSIONS) -> Path | None:
    # The first candidate that exists and holds at least one image file (an empty folder left by an
    # interrupted extraction does not count).
    for rel in candidates:
        folder = root / rel
        if folder.is_dir() and any(p.suffix.lower() in extensions for p in folder.iterdir() if p.is_file()):
            return folder
    return None


def _resolve(spec: DatasetSpec, folders: Sequence[str], root: Path, download: bool, expected_sha256: str | None,
             what: str) -> Path:
    """Find a data set folder under ``root``; download and extract the archive that provides it if asked."""
    found = _find_folder(root, folders)
    if found is not None:
        return found
    archive = spec.archive_for(folders[0])
    if not download or archive is None:
        looked = ", ".join(str(root / f) for f in folders)
        if archive is None:
            how = f"{spec.manual} {root / folders[0]}" if spec.manual else f"put the images in {root / folders[0]}"
        else:
            how = (f"put the images in {root / folders[0]} (the layout of {archive.filename} unpacked in "
                   f"{root / archive.extract_to}), or pass download=True to fetch {archive.url}")
        raise FileNotFoundError(f"{spec.name} {what} not found; looked in {looked}. To get it: {how}. The data root "
                                f"is root=, else $SRLIB_DATA, else ~/.cache/srlib/datasets")
    dest = root / "downloads" / archive.filename
    download_url(archive.url, dest, expected_sha256 or archive.sha256)
    extract_archive(dest, root / archive.extract_to)
    dest.unlink()  # the extracted folders are what is used; keeping a 3.5 GB zip too would double the disk
    found = _find_folder(root, folders)
    if found is None:
        inside = sorted(p.name for p in (root / archive.extract_to).iterdir())
        raise FileNotFoundError(f"{archive.filename} was extracted into {root / archive.extract_to}, but "
                                f"{root / folders[0]} is not there (found: {', '.join(inside)}); the archive layout "
                                "may have changed: move the images there by hand")
    return found


def load_benchmark(name: str | DatasetSpec, root: str | os.PathLike | None = None, download: bool = False,
                   scale: int | None = None, split: str | None = None,
                   expected_sha256: str | None = None) -> ImageFolder | ReferenceFolder:
    """The HR images of a benchmark or training set, from the local data root (downloaded if asked).

    Args:
        name: ``"DIV2K"``, ``"Set5"``, ``"Set14"``, ``"B100"`` (or ``"BSD100"``), ``"Urban100"``,
            ``"CUFED5"``, case-insensitive, or a ``DatasetSpec`` of your own.
        root: the data root. Default: ``$SRLIB_DATA``, else ``~/.cache/srlib/datasets``.
        download: if the files are missing, fetch the archive, check its sha256 and extract it under
            ``root``. Default: False (never touches the network).
        scale: if given, HR images (CUFED5: the input images) are mod-cropped to a multiple of it, the
            evaluation protocol's first step; make LR with ``srlib.degrade.bicubic_downscale``.
        split: ``"train"`` / ``"valid"`` for DIV2K, ``"test"`` for the others. Default: the first.
        expected_sha256: pin the archive's sha256 (overrides the table's value).

    Returns:
        An ``ImageFolder`` yielding ``(name, hr)``, or for CUFED5 a ``ReferenceFolder`` yielding
        ``(name, hr, refs)``; images are float32 (3, H, W) RGB in [0, 1].

    Raises:
        FileNotFoundError: not present and ``download=False`` (the message says where to put the files).
        ChecksumError: the downloaded archive's sha256 is not the expected one (it is deleted).

    Example:
        >>> set5 = load_benchmark("Set5", scale=4, download=True)  # doctest: +SKIP
        >>> [name for name, hr in set5]  # doctest: +SKIP
        ['baby', 'bird', 'butterfly', 'head', 'woman']
    """
    spec = _get_spec(name)
    root = Path(root).expanduser() if root is not None else default_data_root()
    split = split or spec.default_split
    if split not in spec.hr_dirs:
        raise ValueError(f"{spec.name} has no split {split!r}; splits: {', '.join(spec.hr_dirs)}")
    folder = _resolve(spec, spec.hr_dirs[split], root, download, expected_sha256, f"({split} HR images)")
    if spec.kind == "reference":
        dataset: ImageFolder | ReferenceFolder = ReferenceFolder(folder, mod_crop=scale)
    else:
        dataset = ImageFolder(folder, mod_crop=scale)
    _check_count(spec, split, len(dataset), folder, "groups" if spec.kind == "reference" else "images")
    return dataset


def _check_count(spec: DatasetSpec, split: str, found: int, folder: Path, what: str) -> None:
    # Papers' numbers are means over the whole set: a partial copy must not pass silently.
    expected = spec.num_images.get(split)
    if expected is not None and found != expected:
        warnings.warn(f"{spec.name} {split}: {found} usable {what} in {folder}, expected {expected}; the copy may be "
                      "incomplete, and means over it are not comparable with published numbers", stacklevel=3)


def load_benchmark_pairs(name: str | DatasetSpec, scale: int, root: str | os.PathLike | None = None,
                         download: bool = False, split: str | None = None,
                         expected_sha256: str | None = None) -> PairedFolder:
    """The pre-made LR/HR pairs shipped with a data set (DIV2K and the EDSR benchmark archive).

    The published LR images were made with MATLAB's ``imresize``; ``srlib.degrade.bicubic_downscale``
    reproduces them, so ``load_benchmark`` + ``bicubic_downscale`` is the usual path, and this is the
    way to check that claim or to use the files as published.

    Args:
        name: as in ``load_benchmark`` (not CUFED5).
        scale: 2, 3 or 4.
        root, download, split, expected_sha256: as in ``load_benchmark`` (the LR and HR archives are
            fetched separately for DIV2K; ``expected_sha256`` pins the LR archive there).

    Returns:
        A ``PairedFolder`` yielding ``(name, lr, hr)``.
    """
    spec = _get_spec(name)
    root = Path(root).expanduser() if root is not None else default_data_root()
    split = split or spec.default_split
    if (split, scale) not in spec.lr_dirs:
        have = ", ".join(f"{sp} x{s}" for sp, s in spec.lr_dirs) or "none"
        raise ValueError(f"{spec.name} ships no pre-made LR images for split {split!r} at x{scale} (available: "
                         f"{have}); use load_benchmark(..., scale=...) and srlib.degrade.bicubic_downscale instead")
    hr_folder = _resolve(spec, spec.hr_dirs[split], root, download, None, f"({split} HR images)")
    lr_folder = _resolve(spec, (spec.lr_dirs[(split, scale)],), root, download, expected_sha256,
                         f"({split} LR x{scale} images)")
    pairs = PairedFolder(hr_folder, lr_folder, scale)
    _check_count(spec, split, len(pairs), hr_folder, "pairs")
    return pairs
