"""Chapter 8 library: the degradation space (srlib.blind), PCA kernel codes, ZSSR's internal learning.

Sampler reproducibility and kernel normalisation, batched per-sample degradation against a loop
reference (views share a degradation), the patch source, the PCA round trip, and ZSSR's son/father
pairs, a few test-time steps, the self-ensemble and back-projection. Small tensors throughout.
"""
import math

import pytest
import torch

import srlib
from srlib import blind
from srlib.blind import BlindPatchSource, DegradationParams, DegradationSpace, KernelPCA
from srlib.degrade import anisotropic_gaussian_kernel, blur, imresize, round_to_uint8
from srlib.models import zssr  # noqa: F401  (registers zssr, zssr_tiny)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------------------- the sampler

def test_sampler_is_reproducible_with_a_generator_and_kernels_are_normalised():
    space = DegradationSpace(isotropic_prob=0.5, noise_range=(0, 25))
    a, b = space.sample(64, gen(3)), space.sample(64, gen(3))
    for name in ("sigma_x", "sigma_y", "theta", "noise"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.equal(a.sigma_x, space.sample(64, gen(4)).sigma_x)  # another seed, another draw
    kernels = a.kernels()
    assert kernels.shape == (64, 21, 21)
    assert torch.allclose(kernels.sum(dim=(1, 2)), torch.ones(64), atol=1e-5)
    assert (kernels >= 0).all()


def test_sampler_respects_its_ranges_and_mixes_isotropic_and_anisotropic():
    space = DegradationSpace(sigma_range=(0.5, 2.0), isotropic_prob=0.5, noise_range=(5, 10))
    p = space.sample(400, gen())
    assert p.sigma_x.min() >= 0.5 and p.sigma_x.max() <= 2.0 and p.sigma_y.max() <= 2.0
    assert p.noise.min() >= 5 and p.noise.max() <= 10
    iso = p.sigma_x == p.sigma_y
    assert 0.35 < iso.float().mean() < 0.65  # about half isotropic
    assert (p.theta[iso] == 0).all() and (p.theta >= 0).all() and (p.theta < math.pi).all()
    assert torch.allclose(p.anisotropy[iso], torch.ones(int(iso.sum())))
    assert (p.anisotropy[~iso] > 1).all()
    only_iso = DegradationSpace().sample(50, gen())
    assert torch.equal(only_iso.sigma_x, only_iso.sigma_y) and torch.equal(only_iso.width, only_iso.sigma_x)


def test_kernels_follow_srlib_degrade():
    p = DegradationSpace(isotropic_prob=0.0).sample(3, gen(1))
    for i, k in enumerate(p.kernels()):
        expected = anisotropic_gaussian_kernel(21, float(p.sigma_x[i]), float(p.sigma_y[i]), float(p.theta[i]))
        assert torch.allclose(k, expected)
    delta = DegradationParams.isotropic(0.0).kernels()[0]
    assert delta[10, 10] == 1 and delta.sum() == 1  # width 0: no blur


def test_bad_spaces_and_params_are_refused():
    with pytest.raises(ValueError, match="sigma_range"):
        DegradationSpace(sigma_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="odd"):
        DegradationSpace(kernel_size=20)
    with pytest.raises(ValueError, match="probability"):
        DegradationSpace(isotropic_prob=1.5)
    with pytest.raises(TypeError, match="Generator"):
        DegradationSpace().sample(2, None)
    with pytest.raises(ValueError, match="one per image"):
        DegradationParams(torch.ones(2), torch.ones(3), torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match="both 0"):
        DegradationParams(torch.tensor([0.0]), torch.tensor([1.0]), torch.zeros(1), torch.zeros(1))
    assert blind.sigma_range_for_scale(4) == (0.2, 4.0) and blind.sigma_range_for_scale(2) == (0.2, 2.0)
    with pytest.raises(ValueError):
        blind.sigma_range_for_scale(8)


# ---------------------------------------------------------------------------------------- degradation

def test_batched_degradation_matches_a_per_image_loop():
    hr = torch.rand(3, 3, 32, 32, generator=gen(1))
    p = DegradationSpace(isotropic_prob=0.3).sample(3, gen(2))
    lr = blind.degrade(hr, p, 4, quantize=False)
    kernels = p.kernels()
    for i in range(3):  # each image with its own kernel, one at a time
        expected = imresize(blur(hr[i:i + 1], kernels[i]), scale=1 / 4).clamp(0, 1)
        assert torch.allclose(lr[i:i + 1], expected, atol=1e-6), i
    direct = blind.degrade(hr, p, 4, downsample="direct", quantize=False)
    assert torch.allclose(direct[1], blur(hr[1:2], kernels[1])[0, :, ::4, ::4], atol=1e-6)


def test_width_zero_is_the_bicubic_degradation_and_output_is_quantised():
    hr = torch.rand(2, 3, 24, 24, generator=gen())
    lr = blind.degrade(hr, DegradationParams.isotropic([0.0, 0.0]), 2)
    assert torch.equal(lr, round_to_uint8(imresize(hr, scale=0.5)))
    assert torch.equal(lr, (lr * 255).round() / 255)


def test_views_share_the_kernel_and_noise_level_but_not_the_noise():
    hr = torch.rand(2, 3, 32, 32, generator=gen()).unsqueeze(1).repeat(1, 2, 1, 1, 1)  # two identical views
    clean = blind.degrade(hr, DegradationParams.isotropic([1.0, 3.0]), 2)
    assert clean.shape == (2, 2, 3, 16, 16)
    assert torch.equal(clean[:, 0], clean[:, 1])  # same kernel for both views of an image
    assert not torch.equal(clean[0, 0], clean[1, 0])  # another image, another kernel
    noisy = blind.degrade(hr, DegradationParams.isotropic([1.0, 1.0], noise=[0.0, 20.0]), 2, gen(), quantize=False)
    assert torch.allclose(noisy[0, 0], noisy[0, 1])  # noise level 0 for image 0
    residual = noisy[1] - blind.degrade(hr[1:], DegradationParams.isotropic([1.0]), 2, quantize=False)[0]
    assert not torch.allclose(residual[0], residual[1])  # two noise draws ...
    assert 0.6 < residual.std().item() * 255 / 20 < 1.4  # ... of the same level (some clipped at 0 and 1)
    with pytest.raises(TypeError, match="generator"):
        blind.degrade(hr, DegradationParams.isotropic([1.0, 1.0], noise=5.0), 2)


def test_random_degrade_is_reproducible_and_returns_the_parameters():
    hr = torch.rand(4, 3, 32, 32, generator=gen())
    space = DegradationSpace(noise_range=(0, 10))
    lr1, p1 = blind.random_degrade(hr, 4, space, gen(5))
    lr2, p2 = blind.random_degrade(hr, 4, space, gen(5))
    assert torch.equal(lr1, lr2) and torch.equal(p1.sigma_x, p2.sigma_x) and len(p1) == 4
    g = gen(5)  # the order of the draws: parameters first, then the noise
    params = space.sample(4, g)
    assert torch.equal(lr1, blind.degrade(hr, params, 4, g))
    with pytest.raises(ValueError, match="divisible"):
        blind.random_degrade(torch.rand(1, 3, 30, 30), 4, space, gen())


def test_validate_blurred_at_width_zero_is_plain_validation_and_blur_costs_bicubic_psnr():
    from srlib.degrade import upscale_bicubic
    from srlib.train import validate

    images = {"a": torch.rand(3, 50, 46, generator=gen()).cumsum(-1) / 46,  # smooth, and not a multiple of 4
              "b": torch.rand(3, 48, 48, generator=gen(1))}
    bicubic = lambda lr: upscale_bicubic(lr, 4)  # noqa: E731
    table = blind.validate_blurred(bicubic, images, 4)
    assert list(table) == [0.0, 1.2, 2.4, 3.6]  # Table 2's widths at x4 by default
    # the same protocol up to rounding: the benchmark LR of validate() is rounded after each 1-D pass (MATLAB on
    # uint8), degrade() rounds once at the end (the released DASR code), so a few LR pixels differ by one level
    assert table[0.0] == pytest.approx(validate(bicubic, images, 4)["psnr"], abs=0.01)
    assert table[0.0] > table[1.2] > table[2.4] > table[3.6]
    with pytest.raises(ValueError, match="at least one"):
        blind.validate_blurred(bicubic, {}, 4)


def test_degrade_refuses_mismatched_batches():
    with pytest.raises(ValueError, match="one per image"):
        blind.degrade(torch.rand(3, 3, 16, 16), DegradationParams.isotropic([1.0, 2.0]), 2)
    with pytest.raises(ValueError, match="expects HR"):
        blind.degrade(torch.rand(3, 16, 16), DegradationParams.isotropic([1.0]), 2)


def test_blind_patch_source_shapes_views_and_fit_interface():
    images = {"a": torch.rand(3, 64, 80, generator=gen(1)), "small": torch.rand(3, 20, 20)}
    with pytest.warns(UserWarning, match="skipped 1 image"):
        src = BlindPatchSource(images, scale=2, space=DegradationSpace(sigma_range=(0.2, 2.0)), patch_size=32,
                               views=2)
    lr, hr, params = src.sample(3, gen(7))
    assert lr.shape == (3, 2, 3, 16, 16) and hr.shape == (3, 2, 3, 32, 32) and len(params) == 3
    lr_again, hr_again = src.sample_batch(3, gen(7))
    assert torch.equal(lr, lr_again) and torch.equal(hr, hr_again)
    single = BlindPatchSource([images["a"]], scale=4, patch_size=32)
    lr, hr = single.sample_batch(2, gen())
    assert lr.shape == (2, 3, 8, 8) and hr.shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="multiple of scale"):
        BlindPatchSource(images, scale=3, patch_size=32)
    with pytest.raises(ValueError, match="no image"):
        BlindPatchSource(images, scale=2, patch_size=128)


# ----------------------------------------------------------------------------------------- PCA codes

def test_kernel_pca_round_trip_and_ordering():
    train = DegradationSpace(isotropic_prob=0.5).sample(300, gen(1)).kernels()
    pca = KernelPCA(21, 10).fit(train)
    test = DegradationSpace(isotropic_prob=0.5).sample(20, gen(2)).kernels()
    codes = pca.encode(test)
    assert codes.shape == (20, 10)
    recon = pca.decode(codes)
    assert recon.shape == test.shape
    # 10 codes keep most of the held-out kernels' variation (the sharpest anisotropic ones lose a bit)
    residual = (recon - test).square().sum() / (test - pca.mean.view(21, 21)).square().sum()
    assert residual < 0.15, residual.item()
    # more directions describe them better; the explained variance is sorted and sums to < 1
    coarse = KernelPCA(21, 2).fit(train)
    assert (coarse.decode(coarse.encode(test)) - test).square().sum() > (recon - test).square().sum()
    ratio = pca.explained_variance_ratio
    assert (ratio[:-1] >= ratio[1:]).all() and ratio.sum() <= 1 + 1e-6
    # a kernel in the span (a training kernel's projection) round-trips exactly
    projected = pca.decode(pca.encode(train[:3]))
    assert torch.allclose(pca.decode(pca.encode(projected)), projected, atol=1e-6)


def test_kernel_pca_isotropic_family_is_exact_and_refits_identically():
    widths = DegradationParams.isotropic(torch.linspace(0.2, 4.0, 100)).kernels()
    pca = KernelPCA(21, 10).fit(widths)
    k = DegradationParams.isotropic([0.7, 2.9]).kernels()
    assert (pca.decode(pca.encode(k)) - k).abs().max() < 1e-3
    again = KernelPCA(21, 10).fit(widths)
    assert torch.equal(pca.components, again.components)  # the sign convention makes codes stable
    state = pca.state_dict()
    assert {"mean", "components", "explained_variance_ratio", "fitted"} <= set(state)
    assert sum(p.numel() for p in pca.parameters()) == 0  # a basis, not learnable weights


def test_kernel_pca_refuses_use_before_fit_and_bad_shapes():
    pca = KernelPCA(21, 10)
    with pytest.raises(RuntimeError, match="not fitted"):
        pca.encode(torch.rand(1, 21, 21))
    with pytest.raises(ValueError, match="at least"):
        pca.fit(torch.rand(5, 21, 21))
    with pytest.raises(ValueError, match="expects kernels"):
        pca.fit(torch.rand(20, 15, 15))
    assert blind.fit_kernel_pca(DegradationSpace(), gen(), 50, code_len=4).code_len == 4


# ---------------------------------------------------------------------------------- ZSSR internal learning

def test_father_pool_and_son_father_pairs():
    image = torch.rand(3, 40, 36, generator=gen())
    fathers = zssr.father_pool(image, 2, min_scale=0.5, num_fathers=3)
    assert [tuple(f.shape[-2:]) for f in fathers] == [(40, 36), (30, 27), (20, 18)]
    assert fathers[0] is image
    son, father = zssr.sample_son_father(fathers, 2, crop_size=16, generator=gen(1))
    assert son.shape == (1, 3, 8, 8) and father.shape == (1, 3, 16, 16)
    assert torch.allclose(son, imresize(father, scale=0.5).clamp(0, 1))  # the bicubic son of its father
    son3, father3 = zssr.sample_son_father(fathers, 3, crop_size=128, generator=gen(1))
    side = father3.shape[-1]
    # a crop of 128 does not fit: the crop is the father's smaller side, rounded down to a multiple of 3
    assert side in (36, 27, 18) and son3.shape[-1] == side // 3
    kernel = blind.DegradationParams.isotropic([1.5], kernel_size=7).kernels()[0]
    blurred_son = zssr.make_son(father, 2, kernel)
    assert torch.allclose(blurred_son, imresize(blur(father, kernel), scale=0.5).clamp(0, 1))
    with pytest.raises(ValueError, match="too small"):
        zssr.father_pool(torch.rand(3, 10, 10), 4)


def test_a_few_test_time_steps_lower_the_loss(smooth_image):
    torch.manual_seed(0)
    net = srlib.create_model("zssr_tiny", scale=2)
    lr = imresize(smooth_image, scale=0.5).clamp(0, 1)  # (3, 24, 24)
    losses = zssr.train_zssr(net, lr, 40, crop_size=16, learning_rate=2e-3, progress=False)
    assert len(losses) == 40 and all(math.isfinite(v) for v in losses)
    assert sum(losses[-8:]) < sum(losses[:8]), losses


def test_zssr_upscale_self_ensemble_and_back_projection():
    torch.manual_seed(0)
    net = srlib.create_model("zssr_tiny", scale=2)
    lr = torch.rand(3, 10, 12, generator=gen())
    plain = zssr.zssr_upscale(net, lr, self_ensemble=False, back_projection_iters=0)
    with torch.no_grad():
        assert torch.allclose(plain, net(lr[None])[0].clamp(0, 1))
    ensemble = zssr.zssr_upscale(net, lr, back_projection_iters=0)
    assert ensemble.shape == (3, 20, 24) and not torch.allclose(ensemble, plain)  # the untrained net is not equivariant
    projected = zssr.zssr_upscale(net, lr, self_ensemble=False, back_projection_iters=10)
    # back-projection makes the result consistent with the LR image under the assumed degradation
    error = lambda sr: (imresize(sr[None], scale=0.5) - lr).abs().mean()  # noqa: E731
    assert error(projected) < 0.5 * error(plain)


def test_median_of_an_even_number_averages_the_middle_pair():
    stack = torch.tensor([[1.0], [4.0], [2.0], [3.0]])
    assert zssr._median(stack).item() == 2.5
    assert zssr._median(stack[:3]).item() == 2.0


def test_zssr_super_resolve_end_to_end_is_seeded():
    lr = torch.rand(3, 12, 12, generator=gen())
    kwargs = dict(steps=3, name="zssr_tiny", crop_size=12, progress=False, back_projection_iters=1)
    a, b = zssr.zssr_super_resolve(lr, 2, **kwargs), zssr.zssr_super_resolve(lr, 2, **kwargs)
    assert a.sr.shape == (3, 24, 24) and a.sr.min() >= 0 and a.sr.max() <= 1
    assert torch.equal(a.sr, b.sr) and a.losses == b.losses and a.seconds > 0
