"""Tests of srlib.color and srlib.metrics against scikit-image on the same arrays."""
import math

import numpy as np
import pytest
import skimage.color
import skimage.data
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srlib.color import rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb
from srlib.degrade import bicubic_downscale, mod_crop, upscale_bicubic
from srlib.metrics import evaluate, psnr, psnr_rgb, ssim, ssim_rgb


def _chw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)


@pytest.fixture(scope="module")
def pair():
    """A real HR crop (uint8 grid) and its x3 bicubic reconstruction (off the grid, overshooting)."""
    hr = _chw(skimage.data.chelsea()[40:160, 100:250]).float() / 255        # (3, 120, 150)
    sr = upscale_bicubic(bicubic_downscale(hr, 3), 3)
    return sr, hr


def _y255_numpy(t: torch.Tensor, shave: int) -> np.ndarray:
    """Independent Y: uint8 image -> skimage.color.rgb2ycbcr (also MATLAB's formula, Y in [16, 235])."""
    u8 = np.floor(t.clamp(0, 1).double().numpy().transpose(1, 2, 0) * 255 + 0.5) / 255
    y = skimage.color.rgb2ycbcr(u8)[..., 0]
    return y[shave:-shave, shave:-shave] if shave else y


def _grid64(t: torch.Tensor) -> torch.Tensor:
    """Clamp and round to the uint8 grid in float64."""
    return torch.floor(t.double().clamp(0, 1) * 255 + 0.5) / 255


# --------------------------------------------------------------------------------------- color
def test_ycbcr_matches_matlab_formula_and_round_trips():
    x = torch.rand(2, 3, 8, 9, generator=torch.Generator().manual_seed(0))
    ycc = rgb_to_ycbcr(x)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    torch.testing.assert_close(ycc[:, 0], 16 / 255 + (65.481 * r + 128.553 * g + 24.966 * b) / 255)
    torch.testing.assert_close(ycc[:, 1], 128 / 255 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255)
    torch.testing.assert_close(ycc[:, 2], 128 / 255 + (112.0 * r - 93.786 * g - 18.214 * b) / 255)
    assert (ycbcr_to_rgb(ycc) - x).abs().max() < 1e-6
    x64 = x.double()
    assert (ycbcr_to_rgb(rgb_to_ycbcr(x64)) - x64).abs().max() < 1e-12
    torch.testing.assert_close(rgb_to_y(x), ycc[:, :1])
    expected = skimage.color.rgb2ycbcr(x64[0].numpy().transpose(1, 2, 0)) / 255
    np.testing.assert_allclose(rgb_to_ycbcr(x64[0]).numpy().transpose(1, 2, 0), expected, atol=1e-12)


def test_color_errors():
    with pytest.raises(ValueError, match="3 channels"):
        rgb_to_y(torch.rand(1, 4, 4))
    with pytest.raises(TypeError, match="floating"):
        rgb_to_ycbcr(torch.zeros(3, 4, 4, dtype=torch.uint8))


# ---------------------------------------------------------------------------------------- psnr
@pytest.mark.parametrize("shave", [0, 3, 5])
def test_psnr_matches_skimage_on_y(pair, shave):
    sr, hr = pair
    expected = peak_signal_noise_ratio(_y255_numpy(hr, shave), _y255_numpy(sr, shave), data_range=255)
    assert abs(psnr(sr, hr, shave=shave) - expected) < 1e-6


def test_psnr_rgb_matches_skimage(pair):
    sr, hr = pair
    s = 3
    q = lambda t: (np.floor(t.clamp(0, 1).numpy().astype(np.float64) * 255 + 0.5))[:, s:-s, s:-s]  # noqa: E731
    expected = peak_signal_noise_ratio(q(hr), q(sr), data_range=255)
    assert abs(psnr_rgb(sr, hr, s) - expected) < 1e-6
    assert psnr_rgb(sr, hr, s) == psnr(sr, hr, s, y_channel=False)


def test_shave_defaults_to_scale(pair):
    sr, hr = pair
    assert psnr(sr, hr, 3) == psnr(sr, hr, shave=3)
    assert psnr(sr, hr) == psnr(sr, hr, shave=0)
    assert psnr(sr, hr, 3) != psnr(sr, hr, 3, shave=0)
    assert ssim(sr, hr, 4) == ssim(sr, hr, shave=4)


def test_identical_images_give_inf_and_one(pair):
    _, hr = pair
    assert psnr(hr, hr, 3) == math.inf and psnr_rgb(hr, hr) == math.inf
    assert ssim(hr, hr, 3) == pytest.approx(1.0, abs=1e-12)
    # Off-grid values that round to the same uint8 image are identical under the protocol.
    assert psnr(hr + 0.3 / 255, hr, 3) == math.inf
    assert math.isfinite(psnr(hr + 0.3 / 255, hr, 3, quantize=False))


def test_quantize_rounds_sr_to_uint8(pair):
    sr, hr = pair
    # Round in float64 (float32 k/255 differs from float64 k/255 by ~1e-8, which PSNR would see).
    assert psnr(sr, hr, 3) == pytest.approx(psnr(_grid64(sr), _grid64(hr), 3, quantize=False), abs=1e-9)
    assert psnr(sr, hr, 3) != psnr(sr, hr, 3, quantize=False)


# ---------------------------------------------------------------------------------------- ssim
@pytest.mark.parametrize("shave", [0, 3])
def test_ssim_matches_skimage_on_y(pair, shave):
    """skimage filters with 'reflect' padding over the whole image and then averages the map
    without its (win - 1) / 2 = 5 px border: exactly the 'valid' map of MATLAB's ssim_index.
    With gaussian_weights=True, sigma=1.5 (truncate 3.5 -> 11x11 window) and population
    covariances the two are the same computation, so float64 agreement is ~1e-12."""
    sr, hr = pair
    expected = structural_similarity(_y255_numpy(hr, shave), _y255_numpy(sr, shave), gaussian_weights=True,
                                     sigma=1.5, use_sample_covariance=False, data_range=255)
    assert abs(ssim(sr, hr, shave=shave) - expected) < 1e-4
    assert abs(ssim(sr, hr, shave=shave) - expected) < 1e-9     # what we actually get


def test_ssim_rgb_is_mean_over_channels(pair):
    sr, hr = pair
    s = 3
    q = lambda t: (np.floor(t.clamp(0, 1).numpy().astype(np.float64) * 255 + 0.5))[:, s:-s, s:-s]  # noqa: E731
    expected = structural_similarity(q(hr), q(sr), channel_axis=0, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=255)
    assert abs(ssim_rgb(sr, hr, s) - expected) < 1e-9
    assert ssim_rgb(sr, hr, s) == ssim(sr, hr, s, y_channel=False)


# ------------------------------------------------------------------------------ batch, errors
def test_batch_path_gives_per_image_values(pair):
    sr, hr = pair
    srs = torch.stack([sr, hr, sr.flip(-1)])
    hrs = torch.stack([hr, hr, hr.flip(-1)])
    p, s = psnr(srs, hrs, 3), ssim(srs, hrs, 3)
    assert isinstance(p, torch.Tensor) and p.shape == (3,) and p.dtype == torch.float64
    assert p[0].item() == pytest.approx(psnr(sr, hr, 3), abs=1e-9) and p[1].item() == math.inf
    assert p[2].item() == pytest.approx(psnr(sr.flip(-1), hr.flip(-1), 3), abs=1e-9)
    assert s[0].item() == pytest.approx(ssim(sr, hr, 3), abs=1e-12) and s[1].item() == pytest.approx(1.0)
    assert isinstance(psnr(sr, hr, 3), float) and isinstance(ssim(sr, hr, 3), float)
    res = evaluate(srs, hrs, 3)
    assert torch.equal(res["psnr"], p) and torch.equal(res["ssim"], s)
    assert evaluate(sr, hr, 3) == {"psnr": psnr(sr, hr, 3), "ssim": ssim(sr, hr, 3)}


def test_one_channel_inputs_are_taken_as_y(pair):
    sr, hr = pair
    y_sr, y_hr = rgb_to_y(sr.double().clamp(0, 1)), rgb_to_y(_grid64(hr))
    # Y of uint8-rounded RGB is not itself on the uint8 grid: compare without quantize.
    assert psnr(rgb_to_y(_grid64(sr)), y_hr, 3, quantize=False) == pytest.approx(psnr(sr, hr, 3), abs=1e-9)
    assert ssim(y_sr, y_hr, 3, quantize=False) == pytest.approx(ssim(sr.double().clamp(0, 1), _grid64(hr), 3,
                                                                      quantize=False), abs=1e-12)


@pytest.mark.parametrize("call, exc, words", [
    (lambda: psnr(torch.rand(3, 20, 20), torch.rand(3, 20, 21)), ValueError, r"sr \(3, 20, 20\) vs hr \(3, 20, 21\)"),
    (lambda: ssim(torch.rand(2, 3, 20, 20), torch.rand(3, 20, 20)), ValueError, "shapes differ"),
    (lambda: psnr(torch.rand(20, 20), torch.rand(20, 20)), ValueError, "expected"),
    (lambda: psnr(torch.rand(4, 20, 20), torch.rand(4, 20, 20)), ValueError, "expected"),
    (lambda: psnr(torch.zeros(3, 8, 8, dtype=torch.uint8), torch.zeros(3, 8, 8, dtype=torch.uint8)), TypeError,
     "floating"),
    (lambda: ssim(torch.rand(3, 20, 20), torch.rand(3, 20, 20), 5), ValueError, "at least 11"),
    (lambda: psnr(torch.rand(3, 8, 8), torch.rand(3, 8, 8), 4), ValueError, "leaves nothing"),
    (lambda: psnr(torch.rand(3, 8, 8), torch.rand(3, 8, 8), shave=-1), ValueError, "shave"),
])
def test_metric_errors(call, exc, words):
    with pytest.raises(exc, match=words):
        call()


def test_protocol_end_to_end_against_skimage():
    """The whole chain on a real image, as scripts/protocol_check.py does for all of them."""
    hr = mod_crop(_chw(skimage.data.astronaut()[:250, :250]).float() / 255, 4)
    sr = upscale_bicubic(bicubic_downscale(hr, 4), 4)
    y_sr, y_hr = _y255_numpy(sr, 4), _y255_numpy(hr, 4)
    assert abs(psnr(sr, hr, 4) - peak_signal_noise_ratio(y_hr, y_sr, data_range=255)) < 1e-6
    expected = structural_similarity(y_hr, y_sr, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=255)
    assert abs(ssim(sr, hr, 4) - expected) < 1e-4
    assert 20 < psnr(sr, hr, 4) < 40 and 0.5 < ssim(sr, hr, 4) < 1


def test_neighbour_differences_all_pairs_or_those_inside_a_region():
    from srlib.metrics import neighbour_differences

    y = torch.arange(12.0).reshape(3, 4) ** 2
    every = neighbour_differences(y)
    assert every.shape == (3 * 3 + 2 * 4,)
    assert torch.equal(every[:3], torch.tensor([1.0, 3.0, 5.0]))  # first row, left to right
    assert torch.equal(every[9:13], y[1] - y[0])  # then the vertical pairs
    assert torch.equal(neighbour_differences(y, torch.ones(3, 4)), every)
    assert torch.equal(neighbour_differences(y[None, None].expand(2, 1, 3, 4))[1, 0], every)  # batched
    region = torch.zeros(3, 4, dtype=torch.bool)
    region[:2, :2] = True  # a 2x2 block: two horizontal pairs and two vertical ones
    assert torch.equal(neighbour_differences(y, region), torch.tensor([1.0, 25.0 - 16.0, 16.0, 24.0]))
    with pytest.raises(ValueError, match="mask needs one 2-D image"):
        neighbour_differences(y[None], torch.ones(3, 4))
