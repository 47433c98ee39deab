"""Tests of srlib.degrade: imresize against a loop-by-loop MATLAB transcription, kernels, noise,
JPEG and the Degradation pipeline."""
import math

import numpy as np
import pytest
import scipy.ndimage
import skimage.data
import torch
import torch.nn.functional as F

import matlab_reference as ref
from srlib.degrade import (Degradation, add_gaussian_noise, anisotropic_gaussian_kernel, bicubic_downscale, blur,
                           imresize, isotropic_gaussian_kernel, jpeg, mod_crop, random_gaussian_kernel,
                           round_to_uint8, upscale_bicubic)
from srlib.metrics import psnr


def _chw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).double().numpy()


@pytest.fixture(scope="module")
def img() -> np.ndarray:
    # Odd height and width on purpose (37 x 29), float64 in [0, 1].
    return np.random.default_rng(0).random((37, 29, 3))


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    return _chw(skimage.data.astronaut()).float()[None] / 255     # (1, 3, 512, 512)


# ------------------------------------------------------------------------------------ imresize
@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2, 3, 4, 0.37, 1.7])
def test_imresize_matches_matlab_reference(img, scale):
    expected = ref.imresize(img, scale)
    out32 = imresize(_chw(img).float(), scale)
    out64 = imresize(_chw(img), scale)
    assert out32.dtype == torch.float32 and out64.dtype == torch.float64
    assert out32.shape[-2:] == expected.shape[:2] == (math.ceil(37 * scale), math.ceil(29 * scale))
    # float32 data vs a float64 reference: ~1e-7 observed; float64 is exact up to rounding.
    np.testing.assert_allclose(_hwc(out32), expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(_hwc(out64), expected, atol=1e-10, rtol=0)


@pytest.mark.parametrize("size", [(17, 40), (37, 10), (5, 5), (80, 29)])
def test_imresize_explicit_size(img, size):
    expected = ref.imresize(img, output_shape=size)
    out = imresize(_chw(img), size=size)
    assert out.shape == (3, *size)
    np.testing.assert_allclose(_hwc(out), expected, atol=1e-10, rtol=0)


def test_imresize_without_antialiasing(img):
    expected = ref.imresize(img, 1 / 3, antialiasing=False)
    np.testing.assert_allclose(_hwc(imresize(_chw(img), 1 / 3, antialias=False)), expected, atol=1e-10, rtol=0)


def test_imresize_identity_and_unclamped():
    x = torch.rand(2, 3, 9, 7, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(imresize(x, 1), x, atol=1e-6)
    step = torch.zeros(1, 1, 16, 16)
    step[..., 8:] = 1.0
    up = imresize(step, 2)
    assert up.min() < 0 and up.max() > 1          # bicubic overshoot is kept, as MATLAB does for doubles


def test_imresize_batched_equals_single(img):
    xs = torch.stack([_chw(img).float(), _chw(img[::-1].copy()).float(), _chw(1 - img).float()])
    batched = imresize(xs, 1 / 3)
    for i in range(3):
        # float32 matrix products: BLAS may split a batch differently from a single image (it does on
        # some CPUs), so the two agree to rounding, not bit for bit
        torch.testing.assert_close(batched[i], imresize(xs[i], 1 / 3), atol=1e-6, rtol=0)
    # the benchmark LR (float64 passes, rounded to uint8) is the same bit for bit either way
    hr = mod_crop(xs, 3)
    lr = bicubic_downscale(hr, 3)
    assert all(torch.equal(lr[i], bicubic_downscale(hr[i], 3)) for i in range(3))


def test_imresize_rectangular_scale_orders_dims_like_matlab(img):
    # A (scale_h, scale_w) pair with the smaller scale on W: MATLAB resizes W first.
    out = imresize(_chw(img), size=(60, 12))
    np.testing.assert_allclose(_hwc(out), ref.imresize(img, output_shape=(60, 12)), atol=1e-10, rtol=0)
    assert imresize(_chw(img), scale=(2, 0.5)).shape == (3, 74, 15)


def test_imresize_runs_on_cuda_when_present(img):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x = _chw(img).float()
    out = imresize(x.cuda(), 1 / 4)
    assert out.is_cuda
    torch.testing.assert_close(out.cpu(), imresize(x, 1 / 4), atol=1e-6, rtol=0)


@pytest.mark.parametrize("call, exc, words", [
    (lambda: imresize(torch.rand(8, 8), 0.5), ValueError, "(C, H, W)"),
    (lambda: imresize(torch.zeros(3, 8, 8, dtype=torch.uint8), 0.5), TypeError, "floating"),
    (lambda: imresize(torch.rand(3, 8, 8), 0), ValueError, "positive"),
    (lambda: imresize(torch.rand(3, 8, 8), -2), ValueError, "positive"),
    (lambda: imresize(torch.rand(3, 8, 8)), ValueError, "exactly one"),
    (lambda: imresize(torch.rand(3, 8, 8), 0.5, size=(4, 4)), ValueError, "exactly one"),
    (lambda: imresize(torch.rand(3, 8, 8), size=(0, 4)), ValueError, "positive integers"),
    (lambda: bicubic_downscale(torch.rand(3, 10, 12), 4), ValueError, "mod_crop"),
    (lambda: bicubic_downscale(torch.rand(3, 12, 12), 1.5), ValueError, "integer scale"),
    (lambda: upscale_bicubic(torch.rand(3, 8, 8), 0), ValueError, "positive"),
])
def test_resize_input_errors(call, exc, words):
    with pytest.raises(exc, match=words.replace("(", r"\(").replace(")", r"\)")):
        call()


# ------------------------------------------------------------------------ protocol helpers
def test_mod_crop_shapes():
    assert mod_crop(torch.zeros(3, 10, 7), 3).shape == (3, 9, 6)
    assert mod_crop(torch.zeros(2, 3, 12, 8), 4).shape == (2, 3, 12, 8)
    with pytest.raises(ValueError):
        mod_crop(torch.zeros(3, 10, 7), 0)


def test_bicubic_downscale_matches_matlab_on_uint8():
    # MATLAB on a uint8 HR rounds after each 1-D pass; the reference emulates that.
    hr8 = np.round(np.random.default_rng(3).random((36, 48, 3)) * 255)
    hr = _chw(hr8 / 255).float()
    for s in (2, 3, 4):
        lr = bicubic_downscale(hr, s)
        assert lr.shape == (3, 36 // s, 48 // s)
        assert torch.equal(lr, round_to_uint8(lr))                   # on the uint8 grid
        np.testing.assert_array_equal(np.round(_hwc(lr) * 255), ref.imresize(hr8, 1 / s, uint8_passes=True))
    torch.testing.assert_close(bicubic_downscale(hr, 3, quantize=False), imresize(hr, 1 / 3))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_downscale_breaks_ties_like_matlab(scale):
    """Flat regions (the colour wheel's background and sectors) put many x2/x4 outputs exactly on
    k + 0.5 before rounding; only MATLAB-like float64 arithmetic on 0..255 rounds all of them the
    same way (a float32 [0, 1] version differs from MATLAB in ~100 pixels of this crop at x2)."""
    hr8 = skimage.data.colorwheel()[100:220, 96:216]
    lr = bicubic_downscale(_chw(hr8).float() / 255, scale)
    expected = ref.imresize(hr8.astype(np.float64), 1 / scale, uint8_passes=True)
    np.testing.assert_array_equal(np.round(_hwc(lr) * 255), expected)


def test_upscale_bicubic_is_imresize(img):
    lr = _chw(img).float()
    torch.testing.assert_close(upscale_bicubic(lr, 3), imresize(lr, 3), atol=0, rtol=0)
    assert upscale_bicubic(lr[None], 2).shape == (1, 3, 74, 58)


def test_round_to_uint8_rounds_half_up():
    x = torch.tensor([0.5 / 255, 1.5 / 255, -1.0, 2.0], dtype=torch.float64)
    assert (round_to_uint8(x) * 255).tolist() == [1.0, 2.0, 0.0, 255.0]


def test_matlab_bicubic_differs_from_torch_interpolate(astronaut):
    """How far torch's bicubic is from MATLAB's (printed for the book; run with -s to see it).

    With antialias=True torch uses the same a = -0.5 kernel and grid, so the interior agrees and
    only the borders differ (torch renormalises the truncated kernel instead of mirroring); without
    antialias (a = -0.75, no low-pass) the difference is large."""
    hr = mod_crop(astronaut, 12)
    for s in (2, 3, 4):
        matlab = imresize(hr, 1 / s)
        for aa in (True, False):
            theirs = F.interpolate(hr, scale_factor=1 / s, mode="bicubic", antialias=aa, align_corners=False)
            db = psnr(theirs, matlab, y_channel=False, quantize=False).item()
            print(f"x{s} MATLAB vs F.interpolate(bicubic, antialias={aa}): {db:.2f} dB")
            assert math.isfinite(db) and db > 0
        # The antialiased interior matches; the border band does not.
        diff = F.interpolate(hr, scale_factor=1 / s, mode="bicubic", antialias=True) - matlab
        assert diff[..., 4:-4, 4:-4].abs().max() < 1e-5 and diff.abs().max() > 1e-3


# ------------------------------------------------------------------------------------ kernels
def test_kernels_sum_to_one_and_isotropic_symmetry():
    k = isotropic_gaussian_kernel(21, 2.3)
    assert k.shape == (21, 21) and k.dtype == torch.float32
    assert abs(k.sum().item() - 1) < 1e-6
    assert torch.allclose(k, k.T) and torch.allclose(k, k.flip(0)) and torch.allclose(k, k.flip(1))
    assert k.argmax().item() == 10 * 21 + 10
    a = anisotropic_gaussian_kernel(21, 4.0, 0.8, 0.7)
    assert abs(a.sum().item() - 1) < 1e-6
    assert torch.allclose(anisotropic_gaussian_kernel(15, 1.7, 1.7, 1.2), isotropic_gaussian_kernel(15, 1.7), atol=1e-7)


def test_anisotropic_kernel_rotation_identities():
    k = lambda sx, sy, th: anisotropic_gaussian_kernel(21, sx, sy, th)  # noqa: E731
    theta = 0.4
    assert torch.allclose(torch.rot90(k(3.0, 1.0, theta)), k(3.0, 1.0, theta + math.pi / 2), atol=1e-7)
    assert torch.allclose(k(3.0, 1.0, theta + math.pi / 2), k(1.0, 3.0, theta), atol=1e-7)
    assert torch.allclose(k(3.0, 1.0, theta).T, k(3.0, 1.0, math.pi / 2 - theta), atol=1e-7)
    assert torch.allclose(k(3.0, 1.0, 0.0).T, k(3.0, 1.0, math.pi / 2), atol=1e-7)
    assert torch.allclose(k(3.0, 1.0, theta), k(3.0, 1.0, theta + math.pi), atol=1e-7)
    # theta = 0: the long axis is horizontal, so the kernel is wider along columns.
    k0 = k(3.0, 1.0, 0.0)
    assert k0[10, 13] > k0[13, 10]
    # Counter-clockwise as displayed: at 45 degrees mass lies towards the top-right.
    k45 = k(3.0, 1.0, math.pi / 4)
    assert k45[7, 13] > k45[13, 13]


def test_kernel_errors():
    with pytest.raises(ValueError, match="odd"):
        isotropic_gaussian_kernel(20, 1.0)
    with pytest.raises(ValueError, match="> 0"):
        anisotropic_gaussian_kernel(21, 0.0, 1.0, 0.0)
    with pytest.raises(TypeError, match="Generator"):
        random_gaussian_kernel(21, (0.2, 4.0), None)


def test_random_kernel_reproducible():
    draw = lambda seed, iso: random_gaussian_kernel(21, (0.2, 4.0), torch.Generator().manual_seed(seed), iso)  # noqa: E731
    for iso in (True, False):
        assert torch.equal(draw(0, iso), draw(0, iso))
        assert not torch.equal(draw(0, iso), draw(1, iso))
        assert abs(draw(5, iso).sum().item() - 1) < 1e-6
    assert torch.allclose(draw(3, True), draw(3, True).T)


# --------------------------------------------------------------------------------------- blur
def test_blur_matches_scipy_convolution():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 20, 17, generator=g, dtype=torch.float64)
    kernel = torch.rand(5, 5, generator=g, dtype=torch.float64)     # asymmetric: checks the flip
    out = blur(x, kernel)
    for n in range(2):
        for c in range(3):
            expected = scipy.ndimage.convolve(x[n, c].numpy(), kernel.numpy(), mode="mirror")
            np.testing.assert_allclose(out[n, c].numpy(), expected, atol=1e-12)


def test_blur_per_image_kernels_and_shapes():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 24, 24, generator=g)
    k1, k2 = isotropic_gaussian_kernel(7, 1.0), anisotropic_gaussian_kernel(7, 2.0, 0.5, 1.0)
    out = blur(x, torch.stack([k1, k2]))
    assert torch.allclose(out[0], blur(x[0], k1), atol=1e-6) and torch.allclose(out[1], blur(x[1], k2), atol=1e-6)
    delta = torch.zeros(7, 7)
    delta[3, 3] = 1
    assert torch.allclose(blur(x, delta), x, atol=1e-6)
    assert torch.allclose(blur(torch.full((3, 12, 12), 0.3), k1), torch.full((3, 12, 12), 0.3), atol=1e-6)
    with pytest.raises(ValueError, match="one per image"):
        blur(x, torch.stack([k1, k1, k1]))
    with pytest.raises(ValueError, match="too large"):
        blur(torch.rand(3, 8, 8), isotropic_gaussian_kernel(21, 2.0))


# -------------------------------------------------------------------------------- noise, JPEG
def test_noise_reproducible_and_in_255_units():
    x = torch.full((2, 3, 64, 64), 0.5)
    n = lambda seed, **kw: add_gaussian_noise(x, 10, torch.Generator().manual_seed(seed), **kw)  # noqa: E731
    assert torch.equal(n(0), n(0)) and not torch.equal(n(0), n(1))
    std = (n(0, clip=False) - 0.5).std().item() * 255
    assert abs(std - 10) < 0.3
    per_image = add_gaussian_noise(x, torch.tensor([0.0, 30.0]), torch.Generator().manual_seed(0), clip=False)
    assert torch.equal(per_image[0], x[0]) and abs((per_image[1] - 0.5).std().item() * 255 - 30) < 1
    assert 0 <= add_gaussian_noise(x, 200, torch.Generator().manual_seed(0)).min()
    with pytest.raises(TypeError, match="Generator"):
        add_gaussian_noise(x, 10, None)
    with pytest.raises(ValueError, match=">= 0"):
        add_gaussian_noise(x, -1, torch.Generator())


def test_jpeg_changes_image_keeps_shape_and_range(astronaut):
    x = astronaut[..., 200:264, 200:264]
    y = jpeg(x, 20)
    assert y.shape == x.shape and y.dtype == x.dtype and 0 <= y.min() and y.max() <= 1
    assert torch.equal(y, round_to_uint8(y)) and not torch.equal(y, round_to_uint8(x))
    err = lambda q: (jpeg(x, q) - x).abs().mean().item()  # noqa: E731
    assert err(90) < err(10)
    both = jpeg(torch.cat([x, x]), [10, 90])
    assert torch.equal(both[0], jpeg(x[0], 10)) and torch.equal(both[1], jpeg(x[0], 90))
    assert jpeg(x[:, :1], 50).shape == (1, 1, 64, 64)            # grey works too
    with pytest.raises(ValueError, match="quality"):
        jpeg(x, 0)


# -------------------------------------------------------------------------------- pipeline
def test_bicubic_degradation_is_the_protocol_lr(astronaut):
    hr = astronaut[..., :96, :120]
    deg = Degradation.bicubic(4)
    assert torch.equal(deg(hr, None), bicubic_downscale(hr, 4))
    assert torch.equal(deg(hr[0], None), bicubic_downscale(hr[0], 4))
    assert not deg.is_random


def test_blur_degradation_is_blur_then_subsample(astronaut):
    hr = astronaut[..., :64, :64]
    k = isotropic_gaussian_kernel(13, 1.6)
    lr = Degradation(4, kernel=k, quantize=False)(hr)
    assert torch.allclose(lr, blur(hr, k)[..., ::4, ::4])
    lr_bic = Degradation(4, kernel=k, downsample="bicubic", quantize=False)(hr)
    assert torch.allclose(lr_bic, imresize(blur(hr, k), 1 / 4))


def test_random_degradation_reproducible():
    hr = torch.rand(3, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    sampler = lambda g: random_gaussian_kernel(21, (0.2, 4.0), g, isotropic=False)  # noqa: E731
    deg = Degradation(4, kernel=sampler, noise_sigma=(0, 25), jpeg_quality=(30, 95))
    run = lambda seed: deg(hr, torch.Generator().manual_seed(seed))  # noqa: E731
    a, b, c = run(7), run(7), run(8)
    assert a.shape == (3, 3, 12, 12) and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a, round_to_uint8(a))
    assert deg(hr[0], torch.Generator().manual_seed(7)).shape == (3, 12, 12)
    with pytest.raises(TypeError, match="Generator"):
        deg(hr, None)
    with pytest.raises(ValueError, match="mod_crop"):
        deg(hr[..., :46, :], torch.Generator())
    with pytest.raises(ValueError, match="downsample"):
        Degradation(2, kernel=isotropic_gaussian_kernel(5, 1.0), downsample="nearest")
