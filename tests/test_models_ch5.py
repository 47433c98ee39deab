"""Chapter 5 models: SRResNet, RRDBNet (ESRGAN), EnhanceNet, SFTGAN and the discriminators.

Shapes at every registered scale, loud refusal of other scales, gradients to every parameter, the
reference parameter counts (reference sheet 2.17, 2.18, 2.25, 2.26), the papers' structural details
(BN/PReLU, residual scaling at both levels, nearest + conv upsampling, bicubic residual, SFT
conditioning), network interpolation, and a few training steps of every CPU preset.
Tiny presets and 12x12 LR inputs keep the file within a few tens of seconds on one core.
"""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import srlib
from srlib.data import PatchDataset
from srlib.degrade import imresize, upscale_bicubic
from srlib.models import enhancenet, esrgan, sftgan, srfeat, srresnet  # noqa: F401  (registers the models)
from srlib.train import fit
from model_checks import assert_gradients_reach_every_parameter, make

PAPERS = ["srresnet", "rrdbnet", "enhancenet", "sftgan"]
TINY = [f"{p}_tiny" for p in PAPERS]
SCALES = {"srresnet": (2, 4), "rrdbnet": (2, 4), "enhancenet": (2, 4), "sftgan": (4,)}

# Reference parameter counts (reference sheet, section 1 and entries 2.17, 2.18, 2.25, 2.26).
REFERENCE_PARAMS = {
    ("srresnet", 4): 1_549_462,  # paper structure, transcribed (BN + PReLU, biases, 1 PReLU slope each)
    ("rrdbnet", 4): 16_697_987,  # xinntao/ESRGAN and BasicSR agree
    ("rrdbnet", 2): 16_703_171,  # BasicSR x2 (pixel-unshuffle input)
    ("enhancenet", 4): 852_867,  # ENet, transcribed from the official TF code
    ("sftgan", 4): 1_612_195,  # SFT_Net_torch (the paper's Torch model)
}


def base(name):
    return name.removesuffix("_tiny")


def one_hot_seg(n, classes, height, width, seed=0):
    """Random piecewise-constant class maps (4x4 blocks) as one-hot probabilities (N, K, H, W)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(classes, (n, height // 4, width // 4), generator=g)
    labels = labels.repeat_interleave(4, 1).repeat_interleave(4, 2)  # (N, H, W)
    return F.one_hot(labels, classes).permute(0, 3, 1, 2).float()


def run(net, lr):
    """Call a generator the way its paper does (SFTGAN also takes the HR-size class map)."""
    if isinstance(net, sftgan.SFTGAN):
        return net(lr, one_hot_seg(lr.shape[0], net.num_classes, 4 * lr.shape[-2], 4 * lr.shape[-1]))
    return net(lr)


# ----------------------------------------------------------------------------------------- registry

def test_every_paper_config_and_preset_is_registered_with_its_scales():
    names = set(srlib.list_models())
    for name in PAPERS + TINY:
        assert name in names, name
        assert srlib.model_entry(name).scales == SCALES[base(name)], name
    assert "model(lr, seg)" in srlib.model_entry("sftgan").paper  # the different call is documented


@pytest.mark.parametrize("name", TINY)
def test_output_shape_at_every_supported_scale(name):
    lr = torch.rand(2, 3, 12, 10)
    for scale in SCALES[base(name)]:
        net = make(name, scale).eval()
        with torch.no_grad():
            sr = run(net, lr)
        assert sr.shape == (2, 3, 12 * scale, 10 * scale), (name, scale)
        assert torch.isfinite(sr).all()


@pytest.mark.parametrize("name", PAPERS + TINY)
def test_unsupported_scale_is_refused_clearly(name):
    with pytest.raises(ValueError, match="supports scales .* not x3"):
        srlib.create_model(name, scale=3)


def test_model_classes_refuse_bad_scales_themselves():
    for cls in (srresnet.SRResNet, enhancenet.EnhanceNet):
        with pytest.raises(ValueError, match="power-of-two"):
            cls(scale=3)
    with pytest.raises(ValueError, match="x4 .* and x2"):
        esrgan.RRDBNet(scale=8)
    with pytest.raises(ValueError, match="x4 network"):
        sftgan.SFTGAN(scale=2)


def test_unknown_override_is_refused():
    with pytest.raises(TypeError, match="num_grow_ch"):
        srlib.create_model("rrdbnet_tiny", scale=4, growth=8)
    with pytest.raises(TypeError, match="num_hidden"):
        srresnet.srgan_discriminator_tiny(hidden=3)


# --------------------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("name", TINY)
def test_gradients_reach_every_parameter(name):
    scale = 4
    net = make(name, scale)
    sr = run(net, torch.rand(2, 3, 12, 12))
    sr.square().mean().backward()
    assert_gradients_reach_every_parameter(net, name)


# ---------------------------------------------------------------------------------- parameter counts

@pytest.mark.parametrize("name,scale", sorted(REFERENCE_PARAMS))
def test_paper_config_parameter_count_equals_reference(name, scale):
    with torch.device("meta"):  # same modules and shapes, no memory and no random init
        net = srlib.create_model(name, scale=scale)
    assert srlib.count_parameters(net) == REFERENCE_PARAMS[(name, scale)]


def test_discriminator_parameter_counts():
    with torch.device("meta"):
        vgg_d = esrgan.vgg_discriminator()
        srgan_d = srresnet.srgan_discriminator()
        feat_d = srfeat.feature_discriminator()
    assert srlib.count_parameters(vgg_d) == 14_499_401  # reference sheet 2.17 (BasicSR VGGStyleDiscriminator, 128 px)

    # The SRGAN discriminator has no reference count (no official code): count the paper's layer list.
    def srgan_count(in_ch, side):
        widths = [64, 64, 128, 128, 256, 256, 512, 512]
        convs = sum(9 * a * b + b for a, b in zip([in_ch] + widths[:-1], widths))
        bn = 2 * sum(widths[1:])
        for _ in range(4):
            side = math.ceil(side / 2)  # 'same' stride-2 convs
        return convs + bn + (512 * side * side + 1) * 1024 + 1024 + 1

    assert srlib.count_parameters(srgan_d) == srgan_count(3, 96) == 23_565_505
    assert srlib.count_parameters(feat_d) == srgan_count(512, 18)  # SRFeat: the same D on 18x18 relu5_4 maps


def test_rrdbnet_paper_config_builds_and_runs():
    net = make("rrdbnet", 4).eval()  # 16.7M parameters, built for real once; a 4x4 input keeps it fast
    with torch.no_grad():
        assert net(torch.rand(1, 3, 4, 4)).shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match="even"):
        make("rrdbnet_tiny", 2)(torch.rand(1, 3, 5, 6))


@pytest.mark.parametrize("name,scale", [("srresnet", 4), ("enhancenet", 4), ("sftgan", 4), ("srresnet", 2)])
def test_small_paper_configs_run(name, scale):
    net = make(name, scale).eval()
    with torch.no_grad():
        assert run(net, torch.rand(1, 3, 8, 6)).shape == (1, 3, 8 * scale, 6 * scale)


# ------------------------------------------------------------------------------- paper-specific details

def test_srresnet_is_bn_prelu_with_9x9_ends():
    net = srlib.create_model("srresnet", scale=4)
    assert sum(isinstance(m, srresnet.SRResNetBlock) for m in net.modules()) == 16
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 2 * 16 + 1
    assert sum(isinstance(m, nn.PReLU) for m in net.modules()) == 1 + 16 + 2  # head, blocks, two x2 steps
    assert net.head[0].kernel_size == (9, 9) and net.tail.kernel_size == (9, 9)
    assert sum(isinstance(m, nn.PixelShuffle) for m in net.modules()) == 2


def test_rrdbnet_has_no_bn_and_residual_scaling_at_both_levels():
    net = srlib.create_model("rrdbnet_tiny", scale=4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    rrdbs = [m for m in net.modules() if isinstance(m, esrgan.RRDB)]
    rdbs = [m for m in net.modules() if isinstance(m, esrgan.ResidualDenseBlock)]
    assert len(rdbs) == 3 * len(rrdbs) and all(m.res_scale == 0.2 for m in rrdbs + rdbs)
    assert all(m.negative_slope == 0.2 for m in net.modules() if isinstance(m, nn.LeakyReLU))
    ups = [m for m in net.modules() if isinstance(m, nn.Upsample)]
    assert len(ups) == 2 and all(u.mode == "nearest" and u.scale_factor == 2 for u in ups)
    assert not any(isinstance(m, (nn.PixelShuffle, nn.ConvTranspose2d)) for m in net.modules())
    # BasicSR init: dense convs are Kaiming-normal x 0.1, i.e. far smaller than the head's default init
    assert rdbs[0].convs[0].weight.std() < 0.2 * net.head.weight.std()


def test_rdb_is_exactly_the_scaled_dense_residual():
    torch.manual_seed(0)
    rdb = esrgan.ResidualDenseBlock(num_feat=4, num_grow_ch=2, res_scale=0.2)
    x = torch.rand(1, 4, 5, 5)
    feats = [x]
    for conv in rdb.convs:
        feats.append(F.leaky_relu(conv(torch.cat(feats, 1)), 0.2))
    expected = x + 0.2 * rdb.conv_last(torch.cat(feats, 1))
    assert torch.allclose(rdb(x), expected, atol=1e-6)
    rrdb = esrgan.RRDB(num_feat=4, num_grow_ch=2)
    assert torch.allclose(rrdb(x), x + 0.2 * rrdb.body(x), atol=1e-6)


def test_enhancenet_adds_a_residual_to_exact_bicubic():
    net = make("enhancenet_tiny", 4)
    last = net.tail[-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    lr = torch.rand(2, 3, 7, 9)
    with torch.no_grad():
        assert (net(lr) - upscale_bicubic(lr, 4)).abs().max() < 1e-6
    assert torch.allclose(net.sub_mean.mean.flatten(), torch.tensor(enhancenet.ENHANCENET_MEAN))
    assert sum(isinstance(m, nn.Upsample) and m.mode == "nearest" for m in net.modules()) == 2


def test_sftgan_output_follows_the_class_map_locally():
    # at init the paper's x * gamma modulation is weak (gamma is small), but it must be wired per pixel
    net = make("sftgan_tiny", 4).eval()
    lr = torch.rand(1, 3, 24, 24)  # larger than the receptive field (about 11 LR pixels each way)
    seg = one_hot_seg(1, 8, 96, 96, seed=1)
    with torch.no_grad():
        out = net(lr, seg)
        swapped = net(lr, seg.roll(1, dims=1))  # every pixel gets another class
        # the condition is local: changing the map in the top-left LR pixel's 4x4 HR block changes
        # the output near there, not in the far corner
        local = seg.clone()
        local[:, :, :4, :4] = local[:, :, :4, :4].roll(1, dims=1)
        changed = (net(lr, local) - out).abs()
    assert (swapped - out).abs().max() > 1e-6
    assert changed[..., :8, :8].max() > 1e-7 and changed[..., -16:, -16:].max() == 0
    cond = net.cond_net(seg)
    assert cond.shape == (1, 8, 24, 24)  # HR-size map -> LR grid, cond_feat channels


def test_sftgan_modulation_is_the_papers():
    torch.manual_seed(0)
    sft = sftgan.SFTLayer(num_feat=4, cond_feat=3)
    x, cond = torch.rand(1, 4, 5, 5), torch.rand(1, 3, 5, 5)
    assert torch.allclose(sft(x, cond), x * sft.gamma(cond) + sft.beta(cond))
    assert sft.gamma[1].negative_slope == 0.01  # Torch/paper model; the PyTorch port uses 0.1 and gamma + 1
    sft.scale_offset = 1.0
    assert torch.allclose(sft(x, cond), x * (sft.gamma(cond) + 1) + sft.beta(cond))


def test_sftgan_demands_the_class_map():
    net = make("sftgan_tiny", 4)
    lr = torch.rand(1, 3, 6, 6)
    with pytest.raises(ValueError, match=r"model\(lr, seg\)"):
        net(lr)
    with pytest.raises(ValueError, match="HR size"):
        net(lr, one_hot_seg(1, 8, 6, 6))  # LR-size map


# ------------------------------------------------------------------------------------ discriminators

DISCRIMINATORS = {
    "srgan": (srresnet.srgan_discriminator_tiny, (3, 48)),
    "vgg": (esrgan.vgg_discriminator_tiny, (3, 48)),
    "feature": (srfeat.feature_discriminator_tiny, (128, 24)),
}


@pytest.mark.parametrize("kind", sorted(DISCRIMINATORS))
def test_discriminators_give_one_logit_and_train_every_parameter(kind):
    factory, (channels, side) = DISCRIMINATORS[kind]
    torch.manual_seed(0)
    d = factory()
    logits = d(torch.rand(3, channels, side, side))
    assert logits.shape == (3, 1)
    logits.sum().backward()
    for pname, p in d.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{kind}: {pname}"
    with pytest.raises(ValueError, match=f"built for {side}x{side}"):
        d(torch.rand(1, channels, side + 16, side + 16))


def test_vgg_discriminator_structure_and_size_check():
    d = esrgan.vgg_discriminator(num_feat=4)  # the official layout, narrow
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs] == [3, 4] * 5 and [c.stride[0] for c in convs] == [1, 2] * 5
    assert [c.bias is not None for c in convs] == [True] + [False] * 9
    assert d(torch.rand(2, 3, 128, 128)).shape == (2, 1)
    with pytest.raises(ValueError, match="divisible by 32"):
        esrgan.VGGStyleDiscriminator(input_size=48)


def test_feature_discriminator_scales_its_input():
    d = srfeat.feature_discriminator_tiny(feature_scale=0.5).eval()
    plain = srfeat.feature_discriminator_tiny(feature_scale=1.0).eval()
    plain.load_state_dict(d.state_dict())
    x = torch.rand(2, 128, 24, 24)
    with torch.no_grad():
        assert torch.allclose(d(x), plain(0.5 * x), atol=1e-6)
    assert srfeat.feature_discriminator().feature_scale == pytest.approx(1 / 12.75)


# ------------------------------------------------------------------------------- network interpolation

def test_network_interpolation_blends_psnr_and_gan_weights():
    psnr, gan = make("rrdbnet_tiny", 4, seed=0), make("rrdbnet_tiny", 4, seed=1)
    lr = torch.rand(1, 3, 8, 8)
    for alpha, expected in ((0.0, psnr), (1.0, gan)):
        blended = make("rrdbnet_tiny", 4, seed=2)
        blended.load_state_dict(esrgan.interpolate_weights(psnr.state_dict(), gan.state_dict(), alpha))
        with torch.no_grad():
            assert torch.allclose(blended(lr), expected(lr), atol=1e-6)
    half = esrgan.interpolate_weights(psnr.state_dict(), gan.state_dict(), 0.5)
    key = "head.weight"
    assert torch.allclose(half[key], (psnr.state_dict()[key] + gan.state_dict()[key]) / 2)
    with pytest.raises(ValueError, match="not the same architecture"):
        esrgan.interpolate_weights(psnr.state_dict(), make("enhancenet_tiny", 4).state_dict(), 0.5)


# ------------------------------------------------------------------------------------------- training

@pytest.mark.parametrize("name", ["srresnet_tiny", "rrdbnet_tiny", "enhancenet_tiny"])
def test_a_few_training_steps_lower_the_loss(name, smooth_image):
    net = make(name, 2)
    data = PatchDataset([smooth_image], scale=2, patch_size=24, degradation=lambda hr, g: imresize(hr, scale=0.5))
    result = fit(net, data, steps=20, batch_size=4, lr=2e-3, loss="l1", progress=False, verbose=False, device="cpu")
    h = result.history["loss"]
    assert all(math.isfinite(v) for v in h)
    assert sum(h[-4:]) < sum(h[:4]), h
    with torch.no_grad():
        assert torch.isfinite(net(torch.rand(1, 3, 12, 12))).all()


def test_sftgan_tiny_trains_with_its_class_map(smooth_image):
    # fit() calls model(lr), so SFTGAN gets its own few steps: the class map is the image's two halves
    net = make("sftgan_tiny", 4)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    hr = torch.stack([smooth_image, smooth_image.flip(-1)])[..., :32, :32]  # (2, 3, 32, 32)
    lr = imresize(hr, scale=0.25)
    seg = torch.zeros(2, 8, 32, 32)
    seg[:, 0, :, :16], seg[:, 1, :, 16:] = 1.0, 1.0
    losses = []
    for _ in range(15):
        loss = F.l1_loss(net(lr, seg), hr)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-4:]) < sum(losses[:4]), losses
