"""Chapter 4 models: RCAN, SAN, MIRNet (and srlib's LR variant of MIRNet, mirnet_up).

Shapes at every registered scale, loud refusal of other scales, gradients, the reference parameter
counts (reference sheet entries 2.14-2.16, MeanShift excluded; SAN without the modules its official
forward never calls), SAN's covariance pooling and Newton-Schulz square root against exact linear
algebra (float64) and gradcheck, MIRNet's weight sharing, attention maps collected from outside with
forward hooks, a few training steps of every CPU preset. Paper configurations are built on the meta
device (no memory, no initialisation) except where a test runs them.
"""
import math

import pytest
import torch

import srlib
from srlib.data import PatchDataset
from srlib.degrade import upscale_bicubic
from srlib.models import rcan
from srlib.models.common import Upsample, conv3x3
from srlib.models.mirnet import DAU, MIRNet, SKFF, BlurPool, SpatialAttention
from srlib.models.rcan import RCAN, ChannelAttention, attention_gates
from srlib.models.san import (SAN, NonLocalBlock, RegionNonLocal, SecondOrderChannelAttention, SecondOrderPooling,
                              covariance_pool, sqrtm_newton_schulz)
from srlib.train import fit
from model_checks import assert_gradients_reach_every_parameter, assert_upscales_at, make, make_meta, scales_of

PAPERS = ["rcan", "san", "mirnet", "mirnet_up"]
TINY = [f"{p}_tiny" for p in PAPERS]
ALL = PAPERS + TINY
SCALES = {"rcan": (2, 3, 4, 8), "san": (2, 3, 4, 8), "mirnet": (2, 3, 4), "mirnet_up": (2, 3, 4)}

# Reference parameter counts (reference sheet, section 1 and entries 2.14-2.16), by (name, scale).
REFERENCE_PARAMS = {
    ("rcan", 2): 15_444_643, ("rcan", 3): 15_629_283, ("rcan", 4): 15_592_355, ("rcan", 8): 15_740_067,
    ("san", 2): 15_712_776, ("san", 3): 15_897_416, ("san", 4): 15_860_488, ("san", 8): 16_008_200,
    ("mirnet", 2): 31_787_419, ("mirnet", 3): 31_787_419, ("mirnet", 4): 31_787_419,
}


def collect(modules, run):
    """Outputs of ``modules`` during ``run()``, gathered by forward hooks (removed afterwards)."""
    outputs = []
    handles = [m.register_forward_hook(lambda module, args, out: outputs.append(out.detach())) for m in modules]
    try:
        result = run()
    finally:
        for handle in handles:
            handle.remove()
    return outputs, result


# ----------------------------------------------------------------------------------------- registry

def test_every_paper_config_and_preset_is_registered_with_its_scales():
    names = set(srlib.list_models())
    for name in ALL:
        assert name in names, name
        assert scales_of(name) == SCALES[name.removesuffix("_tiny")], name


@pytest.mark.parametrize("name", TINY)
def test_output_shape_at_every_supported_scale(name):
    # odd width 11: MIRNet pads to its multiple of 4 and crops back
    assert_upscales_at(name, scales_of(name))


@pytest.mark.parametrize("name", ALL)
def test_unsupported_scale_is_refused_clearly(name):
    with pytest.raises(ValueError, match="supports scales .* not x5"):
        srlib.create_model(name, scale=5)


def test_model_classes_refuse_bad_scales_and_options_themselves():
    for cls in (RCAN, SAN):
        with pytest.raises(ValueError, match="Supported scales: 2\\^n and 3"):
            cls(scale=5)
    with pytest.raises(ValueError, match="integer scale"):
        MIRNet(scale=1)
    with pytest.raises(ValueError, match="Supported scales: 2\\^n and 3"):
        MIRNet(scale=5, upsampler="pixelshuffle")
    with pytest.raises(ValueError, match="upsampler must be"):
        MIRNet(scale=2, upsampler="nearest")
    with pytest.raises(ValueError, match="reduction 32 leaves no channel"):
        ChannelAttention(16, reduction=32)


def test_unknown_override_is_refused():
    with pytest.raises(TypeError, match="num_feat"):
        srlib.create_model("rcan_tiny", scale=2, num_feats=8)


def test_non_rgb_input_is_refused():
    for name in ("rcan_tiny", "san_tiny", "mirnet_tiny"):
        with pytest.raises(ValueError, match="expected LR images"):
            make(name, 2)(torch.rand(1, 1, 12, 12))


# --------------------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("name", TINY)
def test_gradients_reach_every_parameter(name):
    net = make(name, 2)
    for m in net.modules():
        if isinstance(m, NonLocalBlock):
            # SAN's non-local output conv starts at zero (the block is the identity), which blocks the
            # gradient of theta/phi/g until its first update: perturb it first.
            torch.nn.init.normal_(m.out.weight, std=0.1)
    sr = net(torch.rand(2, 3, 12, 12))
    sr.square().mean().backward()
    assert_gradients_reach_every_parameter(net, name)


# ---------------------------------------------------------------------------------- parameter counts

@pytest.mark.parametrize("scale", SCALES["rcan"])
def test_rcan_parameter_count_equals_reference(scale):
    assert srlib.count_parameters(make_meta("rcan", scale)) == REFERENCE_PARAMS[("rcan", scale)]


def official_san_unused_parameters():
    """Parameters the official SAN builds but its forward never calls (left out of srlib's SAN)."""
    conv_last = srlib.count_parameters(conv3x3(64, 64))  # SAN.conv_last
    group_gammas = 20  # one gamma per LSRAG; only SAN.gamma is used
    nonlocal_soca = srlib.count_parameters(ChannelAttention(64, reduction=8))  # the SOCA inside Nonlocal_CA
    return conv_last + group_gammas + nonlocal_soca


@pytest.mark.parametrize("scale", SCALES["san"])
def test_san_parameter_count_is_the_reference_without_its_unused_modules(scale):
    assert official_san_unused_parameters() == 38_044
    net = make_meta("san", scale)
    assert srlib.count_parameters(net) + official_san_unused_parameters() == REFERENCE_PARAMS[("san", scale)]
    # the pieces the reference sheet lists: one SOCA 580, the non-local block 3,232 - 1,096 (its unused SOCA)
    assert srlib.count_parameters(net.groups[0].body[-2]) == 580
    assert srlib.count_parameters(net.non_local) == 3_232 - 1_096


@pytest.mark.parametrize("scale", SCALES["mirnet"])
def test_mirnet_restoration_network_parameter_count_equals_reference(scale):
    net = make_meta("mirnet", scale)
    assert isinstance(net.upsample, torch.nn.Identity)  # the bicubic pre-upsampling has no parameter
    assert srlib.count_parameters(net) == REFERENCE_PARAMS[("mirnet", scale)]
    up = make_meta("mirnet_up", scale)
    with torch.device("meta"):
        upsampler = srlib.count_parameters(Upsample(scale, 64))
    assert srlib.count_parameters(up) == REFERENCE_PARAMS[("mirnet", scale)] + upsampler


@pytest.mark.parametrize("name", TINY)
def test_tiny_presets_stay_small(name):
    for scale in scales_of(name):
        assert 5_000 <= srlib.count_parameters(make(name, scale)) <= 65_000, (name, scale)


@pytest.mark.parametrize("name", ["san", "mirnet_up"])
def test_paper_configs_run(name):
    # the two whose paper widths change code paths (SOCA at 64 channels, SKFF's max(C/8, 4) = 8)
    net = make(name, 2)
    with torch.no_grad():
        sr = net(torch.rand(1, 3, 8, 8))
    assert sr.shape == (1, 3, 16, 16) and torch.isfinite(sr).all()


# ------------------------------------------------------------------------------------------- RCAN

def test_rcan_structure():
    net = make_meta("rcan", 4)
    attentions = [m for m in net.modules() if isinstance(m, ChannelAttention)]
    assert len(attentions) == 10 * 20 == len(attention_gates(net))
    squeeze = attentions[0].squeeze
    assert (squeeze[0].in_channels, squeeze[0].out_channels, squeeze[2].out_channels) == (64, 4, 64)
    assert squeeze[0].bias is not None  # RCAN's attention has biases (MIRNet's has not)
    assert all(isinstance(m.pool, torch.nn.AdaptiveAvgPool2d) for m in attentions)  # average pooling only
    assert sum(isinstance(m, rcan.ResidualGroup) for m in net.modules()) == 10
    assert all(block.res_scale == 1.0 for block in net.modules() if isinstance(block, rcan.RCAB))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


def test_channel_attention_rescales_each_channel_by_its_gate():
    torch.manual_seed(0)
    ca = ChannelAttention(16, reduction=4)
    x = torch.randn(2, 16, 5, 7)
    (weights,), out = collect([ca.gate], lambda: ca(x))
    assert weights.shape == (2, 16, 1, 1)
    assert torch.allclose(out, x * weights)
    assert torch.allclose(weights, torch.sigmoid(ca.squeeze(x.mean(dim=(2, 3), keepdim=True))))


# -------------------------------------------------------------------------------------------- SAN

def test_covariance_pool_is_the_centred_covariance():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3, 4, dtype=torch.float64)
    m = 12
    i_bar = (torch.eye(m, dtype=torch.float64) - torch.ones(m, m, dtype=torch.float64) / m) / m  # MPN-COV's I_bar
    feats = x.reshape(2, 5, m)
    expected = feats @ i_bar @ feats.transpose(1, 2)
    cov = covariance_pool(x)
    assert torch.allclose(cov, expected, atol=1e-12)
    assert torch.allclose(cov[1], torch.cov(feats[1], correction=0), atol=1e-12)


def spd(n=2, c=8, positions=40, seed=0):
    """Covariances of random features: symmetric positive definite, a realistic spread of eigenvalues."""
    g = torch.Generator().manual_seed(seed)
    return covariance_pool(torch.randn(n, c, positions, 1, generator=g, dtype=torch.float64))


def test_newton_schulz_square_root_against_eigendecomposition():
    a = spd()
    eigenvalues, vectors = torch.linalg.eigh(a)  # (N, C), (N, C, C)
    trace = eigenvalues.sum(dim=1, keepdim=True)

    def from_eigen(values):
        return vectors @ torch.diag_embed(values) @ vectors.transpose(1, 2)

    # Converged: the exact square root.
    exact = from_eigen(eigenvalues.sqrt())
    assert torch.allclose(sqrtm_newton_schulz(a, 40), exact, atol=1e-10)
    assert torch.allclose(exact @ exact, a, atol=1e-10)
    # Five steps (SAN): every matrix in the iteration is a polynomial of A, so it acts on each normalised
    # eigenvalue by the scalar recursion; the result is that, rescaled by sqrt(trace), and not exact.
    y, z = eigenvalues / trace, torch.ones_like(eigenvalues)
    for _ in range(5):
        t = 0.5 * (3 - z * y)
        y, z = y * t, t * z
    five = sqrtm_newton_schulz(a, 5)
    assert torch.allclose(five, from_eigen(y * trace.sqrt()), atol=1e-12)
    assert (five - exact).abs().max() > 1e-4  # a smoothed square root: small eigenvalues lag behind


def test_newton_schulz_gradcheck():
    a = spd(n=2, c=4, positions=12).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda m: sqrtm_newton_schulz(m, 5), (a,))
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    assert torch.autograd.gradcheck(SecondOrderPooling(5), (x,))


def test_second_order_pooling_of_a_constant_map_is_zero_not_nan():
    # a flat patch (sky) has a zero covariance, hence a zero trace to normalise by: clamped, not NaN
    assert torch.equal(SecondOrderPooling()(torch.zeros(1, 4, 6, 6)), torch.zeros(1, 4, 1, 1))
    x = torch.full((1, 4, 6, 6), 0.3, requires_grad=True)  # float32 centring leaves ~1e-16 here
    pooled = SecondOrderPooling()(x)
    assert pooled.shape == (1, 4, 1, 1) and pooled.abs().max() < 1e-6
    pooled.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_second_order_pooling_crops_huge_maps_to_the_centre():
    pool = SecondOrderPooling(max_size=4)
    x = torch.randn(1, 3, 8, 10)
    assert torch.allclose(pool(x), SecondOrderPooling()(x[:, :, 2:6, 3:7]))


def test_region_non_local_attends_within_each_region():
    torch.manual_seed(0)
    nl = RegionNonLocal(8, 2)
    x = torch.randn(1, 8, 9, 7)  # odd sides: regions of 4 and 5 rows, 3 and 4 columns
    assert torch.equal(nl(x), x)  # zero-initialised output conv: the identity at first
    torch.nn.init.normal_(nl.block.out.weight, std=0.5)
    changed = x.clone()
    changed[:, :, 0, 0] += 1.0  # a pixel of the top-left region (rows 0-3, columns 0-2)
    diff = (nl(changed) - nl(x)).abs().sum(dim=1)[0]  # (9, 7)
    assert diff[:4, :3].min() > 0  # attention spreads the change over its whole region ...
    assert diff[4:].max() == 0 and diff[:, 3:].max() == 0  # ... and nowhere else
    with pytest.raises(ValueError, match="at least 4x4"):
        nl(torch.randn(1, 8, 3, 8))


def test_san_share_source_and_shared_non_local():
    net = make("san_tiny", 2)
    assert net.gamma.shape == (1,) and net.gamma.item() == 0.0  # one scalar for all groups, from 0
    assert all(isinstance(g.body[-2], SecondOrderChannelAttention) for g in net.groups)  # SOCA once per group
    assert not any(isinstance(m, ChannelAttention) and not isinstance(m, SecondOrderChannelAttention)
                   for m in net.modules())  # no attention in the residual blocks
    calls, _ = collect([net.non_local], lambda: net(torch.rand(1, 3, 8, 8)))
    assert len(calls) == 2  # the same module before and after the trunk


# ----------------------------------------------------------------------------------------- MIRNet

def test_mirnet_weight_sharing_as_the_original():
    net = make_meta("mirnet", 4)
    daus = [m for m in net.modules() if isinstance(m, DAU)]  # modules() lists a shared module once
    assert len(daus) == 3 * 2 * 3  # groups x MSRBs x streams: one DAU per row, reused at both columns
    assert len({id(d.body[1]) for d in daus}) == 1  # one PReLU for every DAU
    # independent DAUs in the second column would add the reference sheet's "about 10.45M"
    extra = sum(srlib.count_parameters(d) - 1 for d in daus)  # minus the shared PReLU
    assert abs(extra - 10_450_000) < 10_000, extra
    assert all(sk.select[0].in_channels == max(sk.select[0].out_channels // 8, 4)
               for sk in net.modules() if isinstance(sk, SKFF))
    assert not any(p.bias is not None for p in net.modules() if isinstance(p, torch.nn.Conv2d))


@pytest.mark.parametrize("name", ["mirnet_tiny", "mirnet_up_tiny"])
def test_mirnet_adds_its_residual_to_the_bicubic_image(name):
    net = make(name, 3)
    torch.nn.init.zeros_(net.conv_out.weight)
    lr = torch.rand(1, 3, 7, 6)
    with torch.no_grad():
        assert torch.allclose(net(lr), upscale_bicubic(lr, 3), atol=1e-6)


def test_mirnet_restore_is_the_same_size_network():
    net = make("mirnet_tiny", 2)
    x, lr = torch.rand(1, 3, 16, 12), torch.rand(1, 3, 8, 6)
    with torch.no_grad():
        assert net.restore(x).shape == x.shape
        assert torch.equal(net(lr), net.restore(upscale_bicubic(lr, 2)))  # SR = restoration of the bicubic image
    with pytest.raises(ValueError, match="same-size network"):
        make("mirnet_up_tiny", 2).restore(x)


def test_blur_pool_is_a_normalised_antialiasing_filter():
    pool = BlurPool()
    assert torch.allclose(pool.kernel.sum(), torch.tensor(1.0)) and "kernel" in pool.state_dict()
    assert torch.allclose(pool(torch.full((1, 2, 7, 8), 0.4)), torch.tensor(0.4))
    assert pool(torch.rand(1, 2, 7, 8)).shape == (1, 2, 4, 4)
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2  # the highest frequency
    assert pool(checker[None, None].float())[..., 1:-1, 1:-1].std() < 1e-6  # blurred away, not aliased


def test_skff_refuses_a_wrong_number_of_streams():
    with pytest.raises(ValueError, match="3 streams got 2"):
        SKFF(8, 3)([torch.rand(1, 8, 4, 4)] * 2)


# ------------------------------------------------------------------------------- attention maps

def test_rcan_channel_attention_collected_by_hooks():
    net = make("rcan_tiny", 2)
    lr = torch.rand(2, 3, 12, 12)
    with torch.no_grad():
        plain = net(lr)
        maps, hooked = collect(attention_gates(net), lambda: net(lr))
    assert torch.equal(hooked, plain)  # hooks change nothing
    assert len(maps) == 2 * 3  # groups x blocks
    assert all(m.shape == (2, 16, 1, 1) and (m > 0).all() and (m < 1).all() for m in maps)


def test_san_attention_collected_by_hooks():
    net = make("san_tiny", 2)
    lr = torch.rand(2, 3, 12, 12)
    with torch.no_grad():
        channel, _ = collect(attention_gates(net), lambda: net(lr))
        spatial, _ = collect([net.non_local.block.attend], lambda: net(lr))
    assert len(channel) == 2 and all(m.shape == (2, 16, 1, 1) and ((m > 0) & (m < 1)).all() for m in channel)
    assert len(spatial) == 2 * 4  # two calls (before and after the trunk) x four 6x6 regions
    for m in spatial:
        assert m.shape == (2, 6 * 6, 3 * 3)  # each of the 36 positions over the 3x3 max-pooled keys
        assert (m >= 0).all() and torch.allclose(m.sum(dim=-1), torch.ones(2, 36))


def test_mirnet_attention_collected_by_hooks():
    net = make("mirnet_tiny", 2)
    lr = torch.rand(2, 3, 12, 12)  # the network sees the 24x24 bicubic image: streams at 24, 12, 6
    streams = [(6, 24), (12, 12), (24, 6)]  # (channels, side) per stream
    with torch.no_grad():
        plain = net(lr)
        spatial, hooked = collect([m.gate for m in net.modules() if isinstance(m, SpatialAttention)], lambda: net(lr))
        channel, _ = collect(attention_gates(net), lambda: net(lr))
        selection, _ = collect([m.softmax for m in net.modules() if isinstance(m, SKFF)], lambda: net(lr))
    assert torch.equal(hooked, plain)
    # one DAU per stream, each run at both columns: stream order 0, 1, 2 (column 1), then 0, 1, 2
    assert [tuple(m.shape) for m in spatial] == [(2, 1, s, s) for _, s in streams] * 2
    assert [tuple(m.shape) for m in channel] == [(2, c, 1, 1) for c, _ in streams] * 2
    assert all(((m > 0) & (m < 1)).all() for m in spatial + channel)
    # SKFF: the three exchange fusions, then SKFF_0 again to merge the streams at full resolution
    assert [tuple(m.shape) for m in selection] == [(2, 3, c, 1, 1) for c, _ in streams] + [(2, 3, 6, 1, 1)]
    assert all(torch.allclose(m.sum(dim=1), torch.ones_like(m[:, 0])) for m in selection)


# ------------------------------------------------------------------------------------------- training

@pytest.mark.parametrize("name", TINY)
def test_a_few_training_steps_lower_the_loss(name, smooth_image):
    net = make(name, 2)
    data = PatchDataset([smooth_image], scale=2, patch_size=24, seed=0)
    result = fit(net, data, steps=20, batch_size=4, lr=2e-3, loss="l1", progress=False, verbose=False, device="cpu")
    h = result.history["loss"]
    assert all(math.isfinite(v) for v in h)
    assert sum(h[-4:]) < sum(h[:4]), h
    with torch.no_grad():
        assert torch.isfinite(net(torch.rand(1, 3, 12, 12))).all()
