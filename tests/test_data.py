"""Tests of srlib.data: file I/O and bad input, the dihedral group, the bundled images and their split,
the patch sampler, image folders, downloads (sha256, safe extraction) and the benchmark loaders.

Every file is made in tmp_path at test time (Pillow, numpy, or a hand-written PNG for the 16-bit RGB
case Pillow cannot write). Nothing touches the network: an autouse fixture makes any socket
connection fail, and downloads are tested with file:// URLs.
"""
from __future__ import annotations

import dataclasses
import doctest
import hashlib
import io
import os
import socket
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import srlib.data as data
from srlib.data import (BUNDLED_IMAGES, DATASETS, ChecksumError, DownloadError, ImageFolder,
                        ImageNotFoundError, ImageReadError, PairedFolder, PatchDataset, ReferenceFolder,
                        UnsafeArchiveError, bundled_image, bundled_images, dihedral, dihedral_inverse,
                        download_url, extract_archive, from_uint8_hwc, list_bundled, load_benchmark,
                        load_benchmark_pairs, load_image, save_image, sha256_file, to_uint8_hwc)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a network connection fails loudly (file:// URLs need no socket)."""
    def refuse(*args, **kwargs):
        raise AssertionError("tests/test_data.py must not touch the network")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def avg_pool_degradation(scale: int):
    """A stand-in degradation (box filter) so sampler tests do not depend on srlib.degrade."""
    return lambda hr, generator: F.avg_pool2d(hr, scale)


def write_png_16bit(path: Path, array: np.ndarray) -> None:
    """Write a 16-bit PNG by hand (Pillow cannot write 16-bit RGB): (H, W) gray or (H, W, 3) RGB uint16."""
    h, w = array.shape[:2]
    color_type = 0 if array.ndim == 2 else 2
    rows = b"".join(b"\x00" + array[i].astype(">u2").tobytes() for i in range(h))  # filter 0 per row

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))


def save_rgb(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def random_uint8(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


# ----------------------------------------------------------------------------------------------- file I/O

def test_rgb_round_trip_is_exact_on_the_uint8_grid(tmp_path):
    array = random_uint8((5, 7, 3))
    x = load_image(save_rgb(tmp_path / "rgb.png", array))
    assert x.dtype == torch.float32 and x.shape == (3, 5, 7)
    assert torch.equal(x, torch.from_numpy(array).permute(2, 0, 1).float() / 255)
    out = save_image(x, tmp_path / "sub" / "again.png")  # creates the folder
    assert np.array_equal(np.asarray(Image.open(out)), array)


def test_grayscale_is_replicated_to_three_channels(tmp_path):
    gray = random_uint8((4, 6))
    x = load_image(save_rgb(tmp_path / "gray.png", gray))
    assert x.shape == (3, 4, 6)
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
    assert torch.equal(x[0], torch.from_numpy(gray).float() / 255)


def test_one_bit_image_loads_as_black_and_white(tmp_path):
    Image.fromarray(np.array([[True, False]])).save(tmp_path / "bw.png")
    assert load_image(tmp_path / "bw.png")[:, 0].tolist() == [[1.0, 0.0]] * 3


def test_16_bit_grayscale_png_keeps_all_16_bits(tmp_path):
    values = np.array([[0, 1, 257, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")  # Pillow writes a 16-bit grayscale PNG
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    x = load_image(tmp_path / "g16.png")
    assert x.shape == (3, 1, 5) and torch.equal(x[0], x[2])
    expected = torch.from_numpy(values.astype(np.float64) / 65535).float()
    assert torch.allclose(x[0], expected, atol=1e-7)
    assert x[0, 0, 1] > 0  # 1/65535 survives: not truncated to 8 bits


def test_16_bit_grayscale_png_written_by_another_encoder(tmp_path):
    values = np.array([[0, 1000, 65535, 257]], dtype=np.uint16)
    write_png_16bit(tmp_path / "g16.png", values)
    x = load_image(tmp_path / "g16.png")
    assert torch.allclose(x[1], torch.from_numpy(values / 65535).float(), atol=1e-7)


def test_16_bit_rgb_png_loads_with_8_bit_precision_and_warns(tmp_path):
    values = np.array([[[0, 1000, 65535], [256, 300, 40000]]], dtype=np.uint16)
    write_png_16bit(tmp_path / "rgb16.png", values)
    with pytest.warns(UserWarning, match=r"rgb16\.png.*16-bit RGB.*8-bit"):
        x = load_image(tmp_path / "rgb16.png")
    # Pillow keeps the high byte of each 16-bit value.
    assert torch.equal(x, torch.from_numpy((values >> 8).astype(np.float32) / 255).permute(2, 0, 1))


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.array([[[0, 0, 0, 0], [200, 100, 50, 255], [0, 0, 0, 51]]], dtype=np.uint8)
    x = load_image(save_rgb(tmp_path / "rgba.png", rgba))
    assert x.shape == (3, 1, 3)
    assert torch.allclose(x[:, 0, 0], torch.ones(3))                              # transparent -> white
    assert torch.allclose(x[:, 0, 1], torch.tensor([200, 100, 50]) / 255)         # opaque -> as stored
    assert torch.allclose(x[:, 0, 2], torch.full((3,), 1 - 51 / 255), atol=1e-6)  # 20 % black over white


def test_gray_with_alpha_is_composited_on_white(tmp_path):
    Image.fromarray(np.array([[[0, 0], [0, 255]]], dtype=np.uint8), mode="LA").save(tmp_path / "la.png")
    assert load_image(tmp_path / "la.png")[:, 0].tolist() == [[1.0, 0.0]] * 3


def test_palette_images_are_converted_with_transparency(tmp_path):
    rgb = np.array([[[255, 0, 0], [0, 0, 255]]], dtype=np.uint8)
    im = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=2)
    im.save(tmp_path / "p.png")
    assert torch.equal(load_image(tmp_path / "p.png"), torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)
    blue = im.getpixel((1, 0))
    im.save(tmp_path / "pt.png", transparency=blue)  # the blue palette entry is transparent
    x = load_image(tmp_path / "pt.png")
    assert x[:, 0, 0].tolist() == [1.0, 0.0, 0.0] and x[:, 0, 1].tolist() == [1.0, 1.0, 1.0]


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(random_uint8((8, 16, 3))).save(tmp_path / "phone.jpg", exif=exif)
    assert load_image(tmp_path / "phone.jpg").shape == (3, 16, 8)
    assert data._probe_size(tmp_path / "phone.jpg") == (16, 8)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(ImageNotFoundError, match="nope.png: no such file") as info:
        load_image(tmp_path / "nope.png")
    assert isinstance(info.value, ImageReadError) and isinstance(info.value, FileNotFoundError)
    assert isinstance(info.value, ValueError)


def test_non_image_file_names_the_file_and_the_cause(tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(ImageReadError, match=r"notes\.png: not an image file"):
        load_image(tmp_path / "notes.png")
    with pytest.raises(ImageReadError, match="is a folder"):
        load_image(tmp_path)


def test_truncated_file_is_reported_as_corrupt(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(random_uint8((64, 64, 3))).save(buffer, format="PNG")
    (tmp_path / "cut.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.png: truncated or corrupt"):
        load_image(tmp_path / "cut.png")


def test_32_bit_integer_image_outside_16_bits_is_refused(tmp_path):
    Image.fromarray(np.array([[0, 70000]], dtype=np.int32)).save(tmp_path / "i32.tif")
    with pytest.raises(ImageReadError, match=r"i32\.tif: 32-bit integer.*0\.\.70000"):
        load_image(tmp_path / "i32.tif")


def test_float_tiff_in_unit_range_loads_and_outside_is_refused(tmp_path):
    Image.fromarray(np.array([[0.25, 1.0]], dtype=np.float32)).save(tmp_path / "f.tif")
    assert load_image(tmp_path / "f.tif")[:, 0].tolist() == [[0.25, 1.0]] * 3
    Image.fromarray(np.array([[0.0, 3.0]], dtype=np.float32)).save(tmp_path / "big.tif")
    with pytest.raises(ImageReadError, match=r"big\.tif: 32-bit float.*outside \[0, 1\]"):
        load_image(tmp_path / "big.tif")


def test_uint8_bridges():
    x = torch.tensor([[[0.0, 0.5 / 255, 1.5 / 255, 2.0, float("nan"), -1.0]]]).expand(3, 1, 6)
    a = to_uint8_hwc(x)
    assert a.dtype == np.uint8 and a.shape == (1, 6, 3)
    assert a[0, :, 0].tolist() == [0, 1, 2, 255, 0, 0]  # halves round up (MATLAB), clamp, NaN -> 0
    assert to_uint8_hwc(x[None]).shape == (1, 6, 3)
    rgb = random_uint8((3, 4, 3))
    assert np.array_equal(to_uint8_hwc(from_uint8_hwc(rgb)), rgb)
    assert from_uint8_hwc(rgb[:, :, 0]).shape == (3, 3, 4)
    assert torch.equal(from_uint8_hwc(np.array([[[9, 9, 9, 0]]], np.uint8))[:, 0, 0], torch.ones(3))
    with pytest.raises(TypeError, match="uint8"):
        from_uint8_hwc(rgb.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        to_uint8_hwc(torch.zeros(2, 4, 4))


def test_save_image_accepts_batch_of_one_and_gray(tmp_path):
    save_image(torch.zeros(1, 3, 2, 2), tmp_path / "b.png")
    save_image(torch.ones(1, 2, 2), tmp_path / "g.png")
    assert Image.open(tmp_path / "g.png").mode == "L"
    with pytest.raises(ValueError, match=r"x\.unknownext.*\.png"):
        save_image(torch.zeros(3, 2, 2), tmp_path / "x.unknownext")


# ------------------------------------------------------------------------------------------ dihedral

def test_dihedral_group_has_8_distinct_invertible_elements():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    outs = [dihedral(x, k) for k in range(8)]
    assert torch.equal(outs[0], x)
    assert len({tuple(o.flatten().tolist()) + tuple(o.shape) for o in outs}) == 8
    for k, out in enumerate(outs):
        assert out.shape[-2:] == ((3, 4) if k % 2 == 0 else (4, 3))
        assert torch.equal(dihedral_inverse(out, k), x)
    assert torch.equal(dihedral(x, 4), x.flip(-1))
    assert torch.equal(dihedral(x, 1), torch.rot90(x, 1, dims=(-2, -1)))
    with pytest.raises(ValueError, match="0..7"):
        dihedral(x, 8)


# ------------------------------------------------------------------------------------- bundled images

EXPECTED_SPLIT = {
    "astronaut": "val", "coffee": "val", "rocket": "val", "camera": "val", "gravel": "val",
    "chelsea": "train", "hubble_deep_field": "train", "immunohistochemistry": "train", "retina": "train",
    "motorcycle_left": "train", "motorcycle_right": "train", "coins": "train", "moon": "train", "text": "train",
    "page": "train", "brick": "train", "grass": "train", "logo": "train",
}


def test_bundled_split_is_fixed_and_disjoint():
    assert dict(BUNDLED_IMAGES) == EXPECTED_SPLIT  # changing it changes every validation number in the book
    train, val = set(list_bundled("train")), set(list_bundled("val"))
    assert not train & val and train | val == set(list_bundled("all")) == set(EXPECTED_SPLIT)
    assert list_bundled("val") == ["astronaut", "coffee", "rocket", "camera", "gravel"]
    assert set(data.BUNDLED_DESCRIPTIONS) == set(EXPECTED_SPLIT)
    with pytest.raises(TypeError):
        BUNDLED_IMAGES["astronaut"] = "train"  # read-only
    with pytest.raises(ValueError, match="split"):
        list_bundled("test")


def test_every_bundled_image_loads_offline_and_matches_its_description():
    images = bundled_images("all")
    assert list(images) == list(EXPECTED_SPLIT)
    for name, x in images.items():
        description = data.BUNDLED_DESCRIPTIONS[name]
        h, w = map(int, description.split(",")[0].split()[1].split("x"))
        assert x.shape == (3, h, w) and x.dtype == torch.float32, name
        assert 0 <= x.min() and x.max() <= 1, name
        is_gray = torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
        assert is_gray == description.startswith("gray"), name
    # The two stereo views differ (not the same array twice) and the logo was composited on white.
    assert not torch.equal(images["motorcycle_left"], images["motorcycle_right"])
    assert torch.equal(images["logo"][:, 0, 0], torch.ones(3))


def test_bundled_images_are_fresh_copies():
    x = bundled_image("camera")
    x.zero_()
    assert bundled_image("camera").max() > 0
    with pytest.raises(ValueError, match="did you mean astronaut"):
        bundled_image("astronuat")


# ----------------------------------------------------------------------------------------- sampler

def coded_image(h: int, w: int) -> torch.Tensor:
    """Each pixel's value encodes its position (y * w + x), so a patch tells where it came from."""
    return (torch.arange(h * w, dtype=torch.float64).reshape(1, h, w) / (h * w)).expand(3, h, w).float()


def test_sampler_shapes_and_lr_made_by_the_degradation(rng):
    ds = PatchDataset({"a": torch.rand(3, 40, 50, generator=rng)}, scale=4, patch_size=16,
                      degradation=avg_pool_degradation(4), seed=0, length=10)
    lr, hr = ds.sample_batch(5, rng)
    assert lr.shape == (5, 3, 4, 4) and hr.shape == (5, 3, 16, 16)
    assert torch.allclose(lr, F.avg_pool2d(hr, 4))
    item_lr, item_hr = ds[3]
    assert item_lr.shape == (3, 4, 4) and item_hr.shape == (3, 16, 16) and len(ds) == 10


def test_sampler_is_seeded():
    images = [torch.rand(3, 30, 30, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    make = lambda seed: PatchDataset(images, 2, 8, avg_pool_degradation(2), seed=seed, length=20)  # noqa: E731
    a, b, c = make(0), make(0), make(1)
    for i in (0, 7, 19):
        assert all(torch.equal(u, v) for u, v in zip(a[i], b[i]))  # same seed and index -> same item
        assert torch.equal(a[i][1], a[i][1])                        # stable across calls
    assert not all(torch.equal(a[i][1], c[i][1]) for i in range(5))
    batch1 = a.sample_batch(6, torch.Generator().manual_seed(5))
    batch2 = b.sample_batch(6, torch.Generator().manual_seed(5))
    assert torch.equal(batch1[0], batch2[0]) and torch.equal(batch1[1], batch2[1])
    assert not torch.equal(batch1[1], a.sample_batch(6, torch.Generator().manual_seed(6))[1])
    with pytest.raises(IndexError):
        a[20]


def locate(patch: torch.Tensor, image: torch.Tensor) -> int | None:
    """The k for which patch == dihedral(crop of image, k), or None."""
    h, w = image.shape[-2:]
    p = patch.shape[-1]
    for k in range(8):
        crop = dihedral_inverse(patch, k)
        top, left = divmod(int(round(crop[0, 0, 0].item() * h * w)), w)
        if top + p <= h and left + p <= w and torch.equal(crop, image[:, top:top + p, left:left + p]):
            return k
    return None


def test_patches_are_crops_with_all_8_dihedral_transforms(rng):
    image = coded_image(24, 20)
    ds = PatchDataset([image], scale=2, patch_size=6, degradation=avg_pool_degradation(2))
    _, hr = ds.sample_batch(64, rng)
    ks = [locate(patch, image) for patch in hr]
    assert None not in ks and len(set(ks)) == 8
    plain = PatchDataset([image], scale=2, patch_size=6, degradation=avg_pool_degradation(2), augment=False)
    assert {locate(patch, image) for patch in plain.sample_batch(16, rng)[1]} == {0}


def test_images_are_drawn_in_proportion_to_their_area(rng):
    small, big = torch.full((3, 16, 16), 0.25), torch.full((3, 32, 32), 0.75)  # areas 1 : 4
    ds = PatchDataset({"small": small, "big": big}, scale=2, patch_size=8, degradation=avg_pool_degradation(2))
    _, hr = ds.sample_batch(2000, rng)
    share_big = (hr[:, 0, 0, 0] == 0.75).float().mean().item()
    assert abs(share_big - 0.8) < 0.04


def test_patch_size_must_be_a_multiple_of_scale():
    with pytest.raises(ValueError, match=r"patch_size=30 is not a multiple of scale=4.*28 or 32"):
        PatchDataset([torch.rand(3, 64, 64)], scale=4, patch_size=30, degradation=avg_pool_degradation(4))


def test_images_smaller_than_the_patch_are_skipped_by_name():
    images = {"big": torch.rand(3, 40, 40), "tiny": torch.rand(3, 3, 3), "thin": torch.rand(3, 100, 10)}
    with pytest.warns(UserWarning, match=r"tiny \(3x3 px is smaller than the 16x16 patch\).*thin"):
        ds = PatchDataset(images, scale=2, patch_size=16, degradation=avg_pool_degradation(2))
    assert ds.names == ["big"] and [n for n, _ in ds.skipped] == ["tiny", "thin"]
    with pytest.raises(ValueError, match="no image is at least 64x64"), pytest.warns(UserWarning):
        PatchDataset(images, scale=2, patch_size=64, degradation=avg_pool_degradation(2))


def test_sampler_checks_its_inputs():
    with pytest.raises(TypeError, match="image 0.*uint8.*divide by 255"):
        PatchDataset([torch.zeros(3, 8, 8, dtype=torch.uint8)], 2, 4, avg_pool_degradation(2))
    with pytest.raises(ValueError, match="photo: values must be in \\[0, 1\\].*divide by 255"):
        PatchDataset({"photo": torch.full((3, 8, 8), 200.0)}, 2, 4, avg_pool_degradation(2))
    with pytest.raises(ValueError, match=r"image 0: expected an RGB image \(3, H, W\)"):
        PatchDataset([torch.rand(1, 8, 8)], 2, 4, avg_pool_degradation(2))
    wrong = PatchDataset([torch.rand(3, 8, 8)], 2, 4, avg_pool_degradation(4))
    with pytest.raises(ValueError, match="degradation returned LR of shape"):
        wrong.sample_batch(2, torch.Generator().manual_seed(0))


def test_sampler_with_the_default_bicubic_degradation():
    from srlib import degrade

    hr_image = bundled_image("camera")[:, :64, :64]
    ds = PatchDataset({"camera": hr_image}, scale=4, patch_size=32, seed=0)
    assert ds.length == (64 * 64) // (32 * 32)
    lr, hr = ds.sample_batch(3, torch.Generator().manual_seed(0))
    assert lr.shape == (3, 3, 8, 8)
    assert torch.allclose(lr, degrade.Degradation.bicubic(4)(hr, None), atol=1e-6)
    assert torch.allclose(lr, degrade.bicubic_downscale(hr, 4), atol=1e-6)


def test_sampler_works_with_a_dataloader():
    ds = PatchDataset([torch.rand(3, 20, 20)], scale=2, patch_size=8, degradation=avg_pool_degradation(2), length=6)
    lr, hr = next(iter(torch.utils.data.DataLoader(ds, batch_size=6)))
    assert lr.shape == (6, 3, 4, 4) and hr.shape == (6, 3, 8, 8)


# ------------------------------------------------------------------------------------------- folders

@pytest.fixture
def messy_folder(tmp_path) -> Path:
    """A folder with every kind of bad input next to good images."""
    root = tmp_path / "messy"
    root.mkdir()
    save_rgb(root / "b_rgb.png", random_uint8((10, 9, 3)))
    save_rgb(root / "c_gray.png", random_uint8((8, 8)))
    save_rgb(root / "d_rgba.png", random_uint8((8, 8, 4)))
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(root / "e_16bit.png")
    save_rgb(root / "f_tiny.png", random_uint8((1, 3, 3)))
    (root / "a_notes.png").write_text("this is text, not an image")
    (root / "readme.txt").write_text("ignored: not an image extension")
    save_rgb(root / "G_UPPER.PNG", random_uint8((8, 8, 3)))
    return root


def test_image_folder_keeps_going_and_lists_what_it_skipped(messy_folder):
    expected = r"skipped 2 of 7.*a_notes\.png: not an image.*f_tiny\.png: 1x3 px is smaller"
    with pytest.warns(UserWarning, match=expected):
        folder = ImageFolder(messy_folder, mod_crop=2)
    assert folder.names == ["G_UPPER", "b_rgb", "c_gray", "d_rgba", "e_16bit"]
    assert [(p.name, "not an image" in why or "smaller than the scale 2" in why) for p, why in folder.skipped] == \
        [("a_notes.png", True), ("f_tiny.png", True)]
    items = dict(folder)
    assert items["b_rgb"].shape == (3, 10, 8)  # mod-cropped to a multiple of 2
    assert torch.allclose(items["e_16bit"], torch.ones(3, 8, 8))
    assert all(x.shape[0] == 3 and x.dtype == torch.float32 for x in items.values())


def test_image_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"image folder .*missing does not exist"):
        ImageFolder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty has no image files.*it is empty"):
        ImageFolder(tmp_path / "empty")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"docs has no image files.*1 other entries \(a\.txt\)"):
        ImageFolder(tmp_path / "docs")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.jpg").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match=r"none of the 1 image files in .*bad can be used: x\.jpg: not an image"):
        ImageFolder(tmp_path / "bad")
    with pytest.raises(NotADirectoryError):
        ImageFolder(tmp_path / "docs" / "a.txt")


def test_image_folder_feeds_the_patch_sampler(messy_folder):
    with pytest.warns(UserWarning, match="a_notes.png"):
        folder = ImageFolder(messy_folder)
    with pytest.warns(UserWarning, match=r"f_tiny \(1x3 px"):
        ds = PatchDataset(folder, scale=2, patch_size=8, degradation=avg_pool_degradation(2))
    assert ds.names == [n for n in folder.names if n != "f_tiny"]


def test_paired_folder_matches_names_and_checks_sizes(tmp_path):
    hr, lr = tmp_path / "hr", tmp_path / "lr"
    hr.mkdir(), lr.mkdir()
    save_rgb(hr / "a.png", random_uint8((9, 8, 3)))   # mod-crop -> 8x8
    save_rgb(lr / "ax2.png", random_uint8((4, 4, 3)))  # DIV2K/EDSR naming
    save_rgb(hr / "b.png", random_uint8((6, 6, 3)))
    save_rgb(lr / "b.png", random_uint8((3, 3, 3)))    # same name
    save_rgb(hr / "c.png", random_uint8((6, 6, 3)))
    save_rgb(lr / "c.png", random_uint8((2, 2, 3)))    # wrong size
    save_rgb(hr / "d.png", random_uint8((6, 6, 3)))    # no LR
    with pytest.warns(UserWarning, match="skipped 2 of 4"):
        pairs = PairedFolder(hr, lr, scale=2)
    assert pairs.names == ["a", "b"]
    reasons = dict((p.name, why) for p, why in pairs.skipped)
    assert "LR c.png is 2x2 px; x2 gives 4x4, but the HR is 6x6" in reasons["c.png"]
    assert "no LR file named d.* or dx2.*" in reasons["d.png"]
    name, lr_image, hr_image = pairs[0]
    assert name == "a" and lr_image.shape == (3, 4, 4) and hr_image.shape == (3, 8, 8)
    with pytest.raises(ValueError, match=r"no usable LR/HR pair for scale 4.*wrong scale"):
        PairedFolder(hr, lr, scale=4)


def make_group(root: Path, name: str, levels=range(6)) -> None:
    for level in levels:
        save_rgb(root / f"{name}_{level}.png", np.full((6 + level, 8, 3), 40 * level, np.uint8))


def test_reference_folder_groups_cufed5_files(tmp_path):
    root = tmp_path / "CUFED5"
    root.mkdir()
    make_group(root, "000")
    make_group(root, "001", levels=[0, 1, 2, 4, 5])  # 001_3 missing
    make_group(root, "002")
    (root / "002_4.png").write_text("broken")          # unreadable reference
    make_group(root, "003")
    save_rgb(root / "extra.png", random_uint8((4, 4, 3)))
    with pytest.warns(UserWarning, match="group 001 incomplete: missing 001_3"):
        folder = ReferenceFolder(root)
    assert folder.names == ["000", "003"]
    reasons = " | ".join(why for _, why in folder.skipped)
    assert "group 002 incomplete: unreadable 002_4.png" in reasons and "extra.png" not in reasons
    assert any(p.name == "extra.png" and "GROUP_LEVEL" in why for p, why in folder.skipped)
    name, hr, refs = folder[1]
    assert name == "003" and hr.shape == (3, 6, 8) and len(refs) == 5
    assert [round(r[0, 0, 0].item() * 255) for r in refs] == [40, 80, 120, 160, 200]  # levels 1..5 in order
    assert [r.shape[-2] for r in refs] == [7, 8, 9, 10, 11]


# ---------------------------------------------------------------------------------------- downloads

def test_sha256_file(tmp_path):
    blob = os.urandom(3 * 1024 + 5)
    (tmp_path / "blob").write_bytes(blob)
    assert sha256_file(tmp_path / "blob", chunk_size=1024) == hashlib.sha256(blob).hexdigest()


def test_download_verifies_the_checksum(tmp_path, capsys):
    source = tmp_path / "source.bin"
    source.write_bytes(b"payload" * 1000)
    good = hashlib.sha256(source.read_bytes()).hexdigest()
    dest = download_url(source.as_uri(), tmp_path / "dl" / "a.bin", expected_sha256=good, progress=False)
    assert dest.read_bytes() == source.read_bytes() and not (tmp_path / "dl" / "a.bin.part").exists()
    with pytest.raises(ChecksumError, match=r"sha256 is [0-9a-f]{64}, expected 0+; the file was deleted"):
        download_url(source.as_uri(), tmp_path / "dl" / "b.bin", expected_sha256="0" * 64, progress=False)
    assert not (tmp_path / "dl" / "b.bin").exists() and not (tmp_path / "dl" / "b.bin.part").exists()
    download_url(source.as_uri(), tmp_path / "dl" / "c.bin", progress=False)
    assert f"sha256 of c.bin is {good}" in capsys.readouterr().out
    # An existing file with the wrong content is refused and deleted, not silently used.
    (tmp_path / "dl" / "d.bin").write_bytes(b"tampered")
    with pytest.raises(ChecksumError):
        download_url(source.as_uri(), tmp_path / "dl" / "d.bin", expected_sha256=good, progress=False)
    assert not (tmp_path / "dl" / "d.bin").exists()


def test_failed_download_says_how_to_get_the_file(tmp_path):
    with pytest.raises(DownloadError, match=r"could not download file://.*by hand.*x\.zip"):
        download_url((tmp_path / "absent.zip").as_uri(), tmp_path / "x.zip", progress=False)
    assert not (tmp_path / "x.zip.part").exists()


def test_zip_with_path_traversal_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("fine/a.txt", "ok")
        zf.writestr("../escaped.txt", "gotcha")
    with pytest.raises(UnsafeArchiveError, match=r"'\.\./escaped\.txt'.*path traversal"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "out" / "fine").exists()


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "symlink"])
def test_tar_with_unsafe_members_is_refused(tmp_path, kind):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tf:
        info = tarfile.TarInfo({"absolute": "/tmp/srlib_evil.txt", "dotdot": "a/../../evil.txt",
                                "symlink": "link"}[kind])
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tf.addfile(info)
        else:
            info.size = 4
            tf.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(UnsafeArchiveError, match="refusing to extract"):
        extract_archive(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_extract_refuses_a_non_archive(tmp_path):
    (tmp_path / "junk.zip").write_bytes(b"not an archive")
    with pytest.raises(ValueError, match="not a zip or tar archive"):
        extract_archive(tmp_path / "junk.zip", tmp_path / "out")


# ---------------------------------------------------------------------------------------- benchmarks

def fake_benchmark_tar(path: Path) -> str:
    """A tiny benchmark.tar with the EDSR layout: benchmark/Set5/HR/*.png and LR_bicubic/X2/*x2.png."""
    with tarfile.open(path, "w") as tf:
        for name, (h, w) in {"baby": (9, 8), "bird": (6, 10)}.items():
            for member, size in ((f"benchmark/Set5/HR/{name}.png", (h, w)),
                                 (f"benchmark/Set5/LR_bicubic/X2/{name}x2.png", (h // 2, w // 2))):
                buffer = io.BytesIO()
                Image.fromarray(random_uint8((*size, 3))).save(buffer, format="PNG")
                info = tarfile.TarInfo(member)
                info.size = len(buffer.getvalue())
                tf.addfile(info, io.BytesIO(buffer.getvalue()))
    return sha256_file(path)


@pytest.fixture
def local_set5(tmp_path, monkeypatch):
    """The real Set5 spec, with its archive URL pointed at a local fake benchmark.tar."""
    archive_path = tmp_path / "mirror" / "benchmark.tar"
    archive_path.parent.mkdir()
    digest = fake_benchmark_tar(archive_path)
    spec = DATASETS["Set5"]
    local = dataclasses.replace(spec.archives[0], url=archive_path.as_uri(), sha256=digest)
    monkeypatch.setitem(DATASETS, "Set5", dataclasses.replace(spec, archives=(local,)))
    return tmp_path / "data"


def test_load_benchmark_downloads_verifies_and_extracts(local_set5):
    with pytest.warns(UserWarning, match="2 usable images .* expected 5"):
        set5 = load_benchmark("set5", root=local_set5, download=True, scale=2)
    assert isinstance(set5, ImageFolder) and set5.names == ["baby", "bird"]
    assert (local_set5 / "benchmark" / "Set5" / "HR" / "baby.png").exists()
    assert not (local_set5 / "downloads" / "benchmark.tar").exists()  # removed once extracted
    assert dict(set5)["baby"].shape == (3, 8, 8)  # mod-cropped
    with pytest.warns(UserWarning, match="2 usable pairs .* expected 5"):
        pairs = load_benchmark_pairs("Set5", scale=2, root=local_set5)  # already there: no download needed
    name, lr, hr = pairs[0]
    assert name == "baby" and lr.shape == (3, 4, 4) and hr.shape == (3, 8, 8)


def test_load_benchmark_refuses_a_checksum_mismatch(local_set5, monkeypatch):
    spec = DATASETS["Set5"]
    bad = dataclasses.replace(spec.archives[0], sha256="f" * 64)
    monkeypatch.setitem(DATASETS, "Set5", dataclasses.replace(spec, archives=(bad,)))
    with pytest.raises(ChecksumError, match="expected f{64}; the file was deleted"):
        load_benchmark("Set5", root=local_set5, download=True)
    assert not (local_set5 / "downloads" / "benchmark.tar").exists()
    assert not (local_set5 / "benchmark").exists()


def test_missing_dataset_says_where_to_put_it(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_benchmark("Set5", root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "benchmark" / "Set5" / "HR") in message and "download=True" in message
    assert "benchmark.tar" in message and "SRLIB_DATA" in message
    with pytest.raises(FileNotFoundError, match=r"by hand|in a browser") as info:
        load_benchmark("CUFED5", root=tmp_path, download=True)  # no direct download: manual only
    assert str(tmp_path / "CUFED5") in str(info.value)


def test_default_root_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SRLIB_DATA", str(tmp_path))
    assert data.default_data_root() == tmp_path
    monkeypatch.delenv("SRLIB_DATA")
    assert data.default_data_root() == Path.home() / ".cache" / "srlib" / "datasets"


def test_other_common_layouts_are_found(tmp_path):
    (tmp_path / "B100" / "GTmod12").mkdir(parents=True)
    save_rgb(tmp_path / "B100" / "GTmod12" / "3096.png", random_uint8((8, 8, 3)))
    with pytest.warns(UserWarning, match="expected 100"):
        b100 = load_benchmark("BSD100", root=tmp_path)  # alias of B100, BasicSR layout
    assert b100.names == ["3096"]


def test_load_benchmark_cufed5_groups(tmp_path):
    root = tmp_path / "CUFED5"
    root.mkdir()
    for group in ("000", "001"):
        make_group(root, group)
    with pytest.warns(UserWarning, match="2 usable groups .* expected 126"):
        cufed5 = load_benchmark("CUFED5", root=tmp_path, scale=4)
    assert isinstance(cufed5, ReferenceFolder)
    name, hr, refs = cufed5[0]
    assert name == "000" and hr.shape == (3, 4, 8) and len(refs) == 5  # input mod-cropped, refs whole


def test_dataset_table():
    assert set(DATASETS) == {"DIV2K", "Set5", "Set14", "B100", "Urban100", "CUFED5"}
    assert DATASETS["DIV2K"].num_images == {"train": 800, "valid": 100}
    assert DATASETS["CUFED5"].num_images == {"test": 126} and DATASETS["CUFED5"].kind == "reference"
    for spec in DATASETS.values():
        for archive in spec.archives:
            assert archive.url.startswith(("https://", "http://")), archive.url
            assert archive.sha256 is None or len(archive.sha256) == 64
        for split, folders in spec.hr_dirs.items():
            # Every downloadable HR folder is produced by one of the archives.
            assert not spec.archives or spec.archive_for(folders[0]) is not None, (spec.name, split)
        for folder in spec.lr_dirs.values():
            assert spec.archive_for(folder) is not None, (spec.name, folder)
    assert DATASETS["Set14"].archives[0].filename == "benchmark.tar"
    with pytest.raises(ValueError, match="unknown data set 'Set15'"):
        load_benchmark("Set15")
    with pytest.raises(ValueError, match="DIV2K has no split 'test'"):
        load_benchmark("DIV2K", split="test")
    with pytest.raises(ValueError, match="no pre-made LR images .* x8"):
        load_benchmark_pairs("Set5", scale=8)


# ------------------------------------------------------------------------------------ module hygiene

def test_import_is_quiet_and_lazy():
    # srlib.data itself must not pull in scikit-image (slow) unless the package already did.
    code = ("import sys, srlib; before = 'skimage' in sys.modules; import srlib.data; "
            "assert before or 'skimage' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


def test_docstring_examples():
    result = doctest.testmod(data, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 10
