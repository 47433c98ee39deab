"""Chapter 2 models: SRCNN, FSRCNN, ESPCN, VDSR, DRCN, LapSRN, EDSR.

Shapes at every registered scale, loud refusal of other scales, gradients, the reference parameter
counts (reference sheet, Y-channel counts for the luma models, MeanShift excluded for EDSR), a few
training steps of every CPU preset, the deep-supervision losses and the Y-channel adapter.
Tiny presets and 12x12 LR inputs keep the whole file within a few tens of seconds on 2 CPU cores.
"""
import math

import pytest
import torch
import torch.nn.functional as F

import srlib
from srlib.color import rgb_to_y
from srlib.degrade import imresize, upscale_bicubic
from srlib.models import common
from srlib.train import fit
from model_checks import assert_gradients_reach_every_parameter, assert_upscales_at, make, scales_of

PAPERS = ["srcnn", "fsrcnn", "espcn", "vdsr", "drcn", "lapsrn", "edsr"]
TINY = [f"{p}_tiny" for p in PAPERS]
ALL = PAPERS + TINY + ["srcnn_915", "edsr_baseline"]
Y_CHANNEL = ["srcnn", "srcnn_915", "fsrcnn", "espcn", "vdsr", "drcn", "lapsrn"]

# Reference parameter counts (reference sheet, section 1 and entries 2.1-2.7), by (name, scale).
REFERENCE_PARAMS = {
    ("srcnn", 2): 57_281, ("srcnn", 3): 57_281, ("srcnn", 4): 57_281,
    ("srcnn_915", 4): 8_129,
    ("fsrcnn", 2): 12_809, ("fsrcnn", 3): 12_809, ("fsrcnn", 4): 12_809,
    ("espcn", 2): 21_284, ("espcn", 3): 22_729, ("espcn", 4): 24_752,
    ("vdsr", 2): 665_921, ("vdsr", 4): 665_921,
    ("drcn", 2): 1_775_121, ("drcn", 4): 1_775_121,
    ("lapsrn", 2): 407_441, ("lapsrn", 4): 814_242, ("lapsrn", 8): 1_221_043,
    ("edsr_baseline", 2): 1_369_859, ("edsr_baseline", 3): 1_554_499, ("edsr_baseline", 4): 1_517_571,
    ("edsr", 2): 40_729_603, ("edsr", 3): 43_680_003, ("edsr", 4): 43_089_923,
}


# ----------------------------------------------------------------------------------------- registry

def test_every_paper_config_and_preset_is_registered_with_its_scales():
    names = set(srlib.list_models())
    for name in ALL:
        assert name in names, name
        assert scales_of(name) == ((2, 4, 8) if name.startswith("lapsrn") else (2, 3, 4)), name


@pytest.mark.parametrize("name", TINY)
def test_output_shape_at_every_supported_scale(name):
    assert_upscales_at(name, scales_of(name))


@pytest.mark.parametrize("name", ALL)
def test_unsupported_scale_is_refused_clearly(name):
    bad = 3 if name.startswith("lapsrn") else 5
    with pytest.raises(ValueError, match=f"supports scales .* not x{bad}"):
        srlib.create_model(name, scale=bad)


def test_model_classes_refuse_bad_scales_themselves():
    from srlib.models.edsr import EDSR
    from srlib.models.espcn import ESPCN
    from srlib.models.lapsrn import LapSRN
    from srlib.models.vdsr import VDSR

    with pytest.raises(ValueError, match="power-of-two"):
        LapSRN(scale=3)
    with pytest.raises(ValueError, match="Supported scales: 2\\^n and 3"):
        EDSR(scale=5)
    for cls in (VDSR, ESPCN):
        with pytest.raises(ValueError, match="integer scale"):
            cls(scale=1)


def test_unknown_override_is_refused():
    with pytest.raises(TypeError, match="num_feat"):
        srlib.create_model("vdsr", scale=2, num_feats=8)


# --------------------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("name", TINY)
def test_gradients_reach_every_parameter(name):
    scale = 2
    net = make(name, scale)
    # No chapter-2 model starts with a zero tail (a zero last conv would block the gradient of every
    # layer before it until its first update, so it would have to be perturbed first). The small
    # N(0, 0.001) tails of FSRCNN/ESPCN still pass gradients, so nothing needs perturbing here.
    sr = net(torch.rand(2, 3, 12, 12))
    sr.square().mean().backward()
    assert_gradients_reach_every_parameter(net, name)


# ---------------------------------------------------------------------------------- parameter counts

@pytest.mark.parametrize("name,scale", sorted(REFERENCE_PARAMS))
def test_paper_config_parameter_count_equals_reference(name, scale):
    if name == "edsr":
        # 43M parameters: built on the meta device (same modules and shapes, no memory, no ~4 s of
        # random init); it is built for real once below. (The luma models are built on CPU: their
        # normal_ init is slow on meta the first time.)
        with torch.device("meta"):
            net = srlib.create_model(name, scale=scale)
    else:
        net = srlib.create_model(name, scale=scale)
    assert srlib.count_parameters(net) == REFERENCE_PARAMS[(name, scale)]


def test_edsr_full_builds_on_cpu_with_meanshift_as_buffers():
    net = srlib.create_model("edsr", scale=4)  # 43M parameters, built for real once (never run forward)
    assert srlib.count_parameters(net) == 43_089_923
    assert "sub_mean.mean" in net.state_dict() and "add_mean.mean" in net.state_dict()
    assert all(block.res_scale == 0.1 for block in net.body if isinstance(block, common.ResBlock))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    baseline = srlib.create_model("edsr_baseline", scale=2)
    assert all(block.res_scale == 1.0 for block in baseline.body if isinstance(block, common.ResBlock))


@pytest.mark.parametrize("name", ["srcnn", "srcnn_915", "fsrcnn", "espcn", "vdsr", "lapsrn", "edsr_baseline"])
def test_small_paper_configs_run(name):
    scale = 2
    net = make(name, scale)
    with torch.no_grad():
        assert net(torch.rand(1, 3, 10, 9)).shape == (1, 3, 20, 18)


# ------------------------------------------------------------------------------- paper-specific details

def test_srcnn_pads_so_the_output_has_the_full_size():
    # The original SRCNN uses valid convs (33x33 in, 21x21 out); srlib pads ('same'): documented difference.
    net = srlib.create_model("srcnn", scale=3)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs] == [9, 5, 5] and [c.padding[0] for c in convs] == [4, 2, 2]
    basic = srlib.create_model("srcnn_915")
    assert [c.kernel_size[0] for c in basic.modules() if isinstance(c, torch.nn.Conv2d)] == [9, 1, 5]
    assert net.forward_y(torch.rand(1, 1, 11, 11)).shape == (1, 1, 33, 33)


def test_fsrcnn_and_espcn_details():
    fsrcnn = srlib.create_model("fsrcnn", scale=3)
    assert sum(isinstance(m, torch.nn.PReLU) for m in fsrcnn.modules()) == 7  # every conv but the deconv
    d = fsrcnn.deconv
    assert (d.kernel_size, d.stride, d.padding, d.output_padding) == ((9, 9), (3, 3), (4, 4), (2, 2))
    assert d.weight.std() < 0.01  # N(0, 0.001) init
    espcn = srlib.create_model("espcn", scale=4)
    assert sum(isinstance(m, torch.nn.Tanh) for m in espcn.modules()) == 2
    assert not any(isinstance(m, torch.nn.ReLU) for m in espcn.modules())
    assert espcn.sub_pixel.weight.std() < 0.01 and espcn.sub_pixel.out_channels == 16


def test_vdsr_and_drcn_structure():
    vdsr = srlib.create_model("vdsr", scale=2)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in vdsr.modules()) == 20
    drcn = srlib.create_model("drcn", scale=2)
    assert isinstance(drcn.ensemble_weights, torch.nn.Parameter)
    assert torch.allclose(drcn.ensemble_weights, torch.full((16,), 1 / 16))
    # one shared inference conv: 16 recursions, but a single conv module
    assert sum(isinstance(m, torch.nn.Conv2d) for m in drcn.recursion.modules()) == 1


def test_lapsrn_image_branch_starts_bilinear_without_bias():
    net = srlib.create_model("lapsrn", scale=4)
    hat = torch.tensor([0.25, 0.75, 0.75, 0.25])
    for up in net.image_upsample:
        assert up.bias is None and torch.allclose(up.weight[0, 0], hat[:, None] * hat[None, :])
    # a constant image stays constant in the interior under bilinear x2 upsampling
    out = net.image_upsample[0](torch.full((1, 1, 6, 6), 0.5))
    assert torch.allclose(out[..., 1:-1, 1:-1], torch.tensor(0.5))
    assert sum(isinstance(m, torch.nn.LeakyReLU) and m.negative_slope == 0.2 for m in net.modules()) == 2 * (10 + 1) + 1


# ----------------------------------------------------------------------------------- Y-channel adapter

def test_identity_luma_network_gives_exact_bicubic():
    # VDSR with its last conv zeroed returns the bicubic luma: the RGB result must be bicubic RGB.
    net = srlib.create_model("vdsr_tiny", scale=3)
    torch.nn.init.zeros_(net.tail.weight)
    torch.nn.init.zeros_(net.tail.bias)
    lr = torch.rand(2, 3, 12, 10)
    with torch.no_grad():
        assert (net(lr) - upscale_bicubic(lr, 3)).abs().max() < 1e-5


@pytest.mark.parametrize("name", Y_CHANNEL)
def test_luma_models_change_only_luma(name):
    # The chroma of the output is the bicubic chroma whatever the network does.
    from srlib.color import rgb_to_ycbcr

    net = make(name + "_tiny" if name != "srcnn_915" else name, 2)
    lr = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        sr = net(lr)
    chroma = rgb_to_ycbcr(sr)[:, 1:]
    assert (chroma - rgb_to_ycbcr(upscale_bicubic(lr, 2))[:, 1:]).abs().max() < 1e-5
    assert isinstance(net, common.YChannelSR)


def test_merge_luma_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="integer multiple"):
        common.merge_luma(torch.rand(1, 1, 25, 24), torch.rand(1, 2, 12, 12))
    with pytest.raises(ValueError, match="RGB"):
        common.split_luma(torch.rand(1, 1, 12, 12))


def test_luma_training_loss_is_the_loss_on_y():
    net = make("espcn_tiny", 2)
    lr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16)
    expected = F.l1_loss(net.forward_y(rgb_to_y(lr)), rgb_to_y(hr))
    assert torch.allclose(net.training_loss(lr, hr, F.l1_loss), expected, atol=1e-6)


# ---------------------------------------------------------------------------------- deep supervision

def test_drcn_recursive_supervision():
    net = make("drcn_tiny", 2)
    lr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16)
    target = rgb_to_y(hr)
    predictions, output = net.forward_recursions(rgb_to_y(lr))
    assert len(predictions) == net.num_recursion and all(p.shape == (2, 1, 16, 16) for p in predictions)
    # the output is the weighted ensemble; at init (weights 1/D) the mean of the predictions
    assert torch.allclose(output, torch.stack(predictions).mean(0), atol=1e-6)
    intermediate = torch.stack([F.mse_loss(p, target) for p in predictions]).mean()
    final = F.mse_loss(output, target)
    assert net.alpha(0.0) == 1.0 and net.alpha(0.125) == 0.5 and net.alpha(0.5) == 0.0
    assert torch.allclose(net.training_loss(lr, hr, F.mse_loss, progress=0.0), intermediate, atol=1e-6)
    halfway = 0.5 * intermediate + 0.5 * final
    assert torch.allclose(net.training_loss(lr, hr, F.mse_loss, progress=0.125), halfway, atol=1e-6)
    assert torch.allclose(net.training_loss(lr, hr, F.mse_loss, progress=0.9), final, atol=1e-6)
    net.training_loss(lr, hr, F.mse_loss, progress=0.1).backward()
    assert net.ensemble_weights.grad is not None and net.ensemble_weights.grad.abs().sum() > 0


def test_lapsrn_pyramid_and_training_loss():
    from srlib.losses import charbonnier_loss

    net = make("lapsrn_tiny", 8)
    lr = torch.rand(2, 3, 6, 5)
    pyramid = net.forward_pyramid(lr)
    assert [tuple(p.shape) for p in pyramid] == [(2, 3, 12, 10), (2, 3, 24, 20), (2, 3, 48, 40)]
    assert torch.allclose(pyramid[-1], net(lr), atol=1e-6)
    hr = torch.rand(2, 3, 48, 40)
    levels = net.forward_pyramid_y(rgb_to_y(lr))
    y_hr = rgb_to_y(hr)
    expected = sum(charbonnier_loss(out, imresize(y_hr, size=tuple(out.shape[-2:]))) for out in levels[:-1])
    expected = expected + charbonnier_loss(levels[-1], y_hr)
    assert torch.allclose(net.training_loss(lr, hr), expected, atol=1e-6)  # default criterion: Charbonnier
    assert torch.allclose(net.training_loss(lr, hr, charbonnier_loss, progress=0.3), expected, atol=1e-6)


# ------------------------------------------------------------------------------------------- training

class CropSource:
    """Random crops of one image; LR by MATLAB bicubic downscaling (no rounding)."""

    def __init__(self, image, scale, patch=24):
        self.image, self.scale, self.patch = image, scale, patch

    def sample_batch(self, batch_size, generator):
        _, h, w = self.image.shape
        tops = torch.randint(0, h - self.patch + 1, (batch_size,), generator=generator)
        lefts = torch.randint(0, w - self.patch + 1, (batch_size,), generator=generator)
        hr = torch.stack([self.image[:, t:t + self.patch, l:l + self.patch] for t, l in zip(tops, lefts)])
        return imresize(hr, scale=1 / self.scale), hr


@pytest.mark.parametrize("name", TINY)
def test_a_few_training_steps_lower_the_loss(name, smooth_image):
    net = make(name, 2)
    loss = "charbonnier" if name.startswith("lapsrn") else "mse" if name.startswith("drcn") else "l1"
    result = fit(net, CropSource(smooth_image, 2), steps=20, batch_size=4, lr=2e-3, loss=loss,
                 progress=False, verbose=False, device="cpu")
    h = result.history["loss"]
    assert all(math.isfinite(v) for v in h)
    assert sum(h[-4:]) < sum(h[:4]), h
    with torch.no_grad():
        assert torch.isfinite(net(torch.rand(1, 3, 12, 12))).all()
