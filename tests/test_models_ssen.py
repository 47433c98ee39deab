"""Chapter 7: SSEN (srlib.models.ssen), reference-based SR with stacked deformable convolutions.

Shapes at every registered scale with and without a reference, loud refusal of other scales and of
references of the wrong size, the self-similarity mode, gradients to every parameter, the paper
configuration's parameter count (RCAN's plus the alignment module: there is no official count),
the blocks (non-local attention, the dynamic offset estimator at odd sizes, SSEN starting as the
identity), offsets collected by hooks, and a few training steps of the CPU preset.
Tiny presets and 12x12 LR inputs keep the file within a few tens of seconds on one core.
"""
import math

import pytest
import torch

import srlib
from srlib.degrade import imresize, upscale_bicubic
from srlib.losses import charbonnier_loss
from srlib.models import rcan
from srlib.models.deform_conv import OffsetMask
from srlib.models.ssen import (SSEN, DynamicOffsetEstimator, NonLocalBlock, SSENNet, local_displacement, offset_heads,
                               warp_whole_pixels)
from model_checks import assert_gradients_reach_every_parameter

SCALES = (2, 3, 4)
# ssen's count (no reference exists to check it against: no official code, see the module docstring)
PAPER_PARAMS = {2: 16_578_644, 3: 16_771_924, 4: 16_747_092}


def make(name="ssen_tiny", scale=2, seed=0, **overrides):
    torch.manual_seed(seed)
    return srlib.create_model(name, scale=scale, **overrides)


def perturb_zero_inits(net, seed=0):
    """Give the zero-initialised layers (offset/mask heads, non-local outputs) small random weights.

    At initialisation they block the gradient of every layer before them until their first update;
    perturbed, every parameter must receive a gradient.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            conv = {OffsetMask: "conv", NonLocalBlock: "out"}.get(type(module))
            if conv is not None:
                conv = getattr(module, conv)
                conv.weight.copy_(0.05 * torch.randn(conv.weight.shape, generator=g))
                conv.bias.copy_(0.05 * torch.randn(conv.bias.shape, generator=g))


# ----------------------------------------------------------------------------------------- registry

def test_registered_as_reference_based_at_x2_x3_x4():
    for name in ("ssen", "ssen_tiny", "ssen_guided_tiny"):
        entry = srlib.model_entry(name)
        assert entry.reference_based and not entry.blind and entry.scales == SCALES, name


@pytest.mark.parametrize("scale", SCALES)
def test_output_shape_with_and_without_a_reference(scale):
    net = make(scale=scale)
    lr = torch.rand(2, 3, 12, 11)
    ref = torch.rand(2, 3, 12 * scale, 11 * scale)
    with torch.no_grad():
        for sr in (net(lr, ref), net(lr), net(lr, ref=None)):
            assert sr.shape == (2, 3, 12 * scale, 11 * scale)
            assert torch.isfinite(sr).all()


def test_unsupported_scale_and_override_are_refused():
    for name in ("ssen", "ssen_tiny"):
        with pytest.raises(ValueError, match="supports scales x2, x3, x4, not x8"):
            srlib.create_model(name, scale=8)
    with pytest.raises(ValueError, match="Supported scales: 2\\^n and 3"):
        SSENNet(scale=5)
    with pytest.raises(TypeError, match="num_deform"):
        srlib.create_model("ssen_tiny", scale=2, num_deforms=2)
    with pytest.raises(ValueError, match="offset_groups=5 must divide num_feat=12"):
        srlib.create_model("ssen_tiny", scale=2, offset_groups=5)


def test_a_reference_of_another_size_is_refused_clearly():
    net = make(scale=4)
    lr = torch.rand(1, 3, 12, 12)
    expected = r"ref must be the HR-sized reference \(N, 3, scale\*h, scale\*w\) = \(1, 3, 48, 48\)"
    for ref in (torch.rand(1, 3, 50, 48), torch.rand(1, 3, 12, 12), torch.rand(2, 3, 48, 48), torch.rand(1, 1, 48, 48)):
        with pytest.raises(ValueError, match=expected + r".*imresize\(ref, size=\(48, 48\)\)"):
            net(lr, ref)
    with pytest.raises(ValueError, match=r"expected LR images \(N, 3, h, w\)"):
        net(torch.rand(1, 1, 12, 12))
    # the fix the message names works: a resized reference is accepted
    assert net(lr, imresize(torch.rand(1, 3, 60, 52), size=(48, 48))).shape == (1, 3, 48, 48)


def test_self_similarity_mode_uses_the_upscaled_input_as_reference():
    net = make(scale=3)
    perturb_zero_inits(net)
    lr = torch.rand(1, 3, 10, 9)
    with torch.no_grad():
        own = net(lr)
        assert torch.allclose(own, net(lr, upscale_bicubic(lr, 3)), atol=1e-6)
        assert not torch.allclose(own, net(lr, torch.rand(1, 3, 30, 27)), atol=1e-4)  # a reference does matter


# --------------------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("with_ref", [True, False])
def test_gradients_reach_every_parameter(with_ref):
    net = make(scale=2)
    perturb_zero_inits(net)
    with torch.no_grad():
        # A channel attention whose 3 squeeze ReLUs all start negative on every input passes no gradient
        # to its first conv (RCAN's block does that at this width, whatever the network around it):
        # lift those biases so that the test checks the wiring, not the luck of the draw.
        for m in net.modules():
            if isinstance(m, rcan.ChannelAttention):
                m.squeeze[0].bias.add_(1.0)
    lr = torch.rand(2, 3, 12, 12)
    sr = net(lr, torch.rand(2, 3, 24, 24) if with_ref else None)
    sr.square().mean().backward()
    assert_gradients_reach_every_parameter(net)


def test_zero_initialised_heads_still_learn():
    # unperturbed, the offset/mask heads receive gradients at the first step (their input is not zero)
    net = make(scale=2)
    net(torch.rand(1, 3, 12, 12), torch.rand(1, 3, 24, 24)).square().mean().backward()
    for head in offset_heads(net):
        assert head.conv.weight.grad.abs().sum() > 0


# ----------------------------------------------------------------------------------- paper config

@pytest.mark.parametrize("scale", SCALES)
def test_paper_config_is_rcan_plus_the_alignment(scale):
    with torch.device("meta"):  # 16.7M parameters: the same modules and shapes without memory or init time
        net = srlib.create_model("ssen", scale=scale)
        body = srlib.create_model("rcan", scale=scale)
    count = srlib.count_parameters
    assert count(net) == PAPER_PARAMS[scale]
    # RCAN's 10 x 20 x 64 body, exactly, plus what SSEN adds: alignment, fusion conv, reference head
    assert count(net) == count(body) + count(net.align) + count(net.fuse) + count(net.ref_head)
    assert count(net.align) == 3 * 372_923 and net.ref_head.in_channels == 3 * scale * scale
    assert len(net.extract) + len(net.body) - 1 == 10 and all(len(g.body) == 21 for g in net.extract)


def test_paper_config_structure():
    with torch.device("meta"):
        net = srlib.create_model("ssen", scale=4)
    assert len(net.align.layers) == 3 and len(offset_heads(net)) == 3
    for layer in net.align.layers:
        assert layer.deform.offset_groups == 1 and layer.deform.kernel_size == (3, 3)
        assert layer.estimator.offset_mask.conv.out_channels == 27  # 18 offsets + 9 masks
        assert sum(isinstance(m, NonLocalBlock) for m in layer.estimator.modules()) == 3
        assert len(layer.estimator.down) == 3 and all(d[0].stride == (2, 2) for d in layer.estimator.down)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())
    assert net.img_range == 1.0 and net.head.in_channels == 3 and net.fuse.in_channels == 128


def test_ablation_switches():
    plain = make(scale=2, num_deform=0)  # reference features fused unaligned
    assert offset_heads(plain) == [] and len(plain.align.layers) == 0
    no_nl = make(scale=2, non_local=False)
    assert not any(isinstance(m, NonLocalBlock) for m in no_nl.modules())
    lr, ref = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert plain(lr, ref).shape == no_nl(lr, ref).shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match="num_deform must be >= 0"):
        SSEN(8, 8, num_deform=-1)
    with pytest.raises(ValueError, match="num_level must be >= 1"):
        DynamicOffsetEstimator(8, 8, num_level=0)


# ------------------------------------------------------------------------------------------ blocks

def test_non_local_block_starts_as_identity_and_attends_everywhere():
    torch.manual_seed(0)
    block = NonLocalBlock(8)
    x = torch.rand(2, 8, 5, 6)
    assert torch.equal(block(x), x)  # W is zero at the start
    perturb_zero_inits(block)
    maps = []
    block.attention.register_forward_hook(lambda module, args, out: maps.append(out))
    y = block(x)
    assert maps[0].shape == (2, 30, 30) and torch.allclose(maps[0].sum(-1), torch.ones(2, 30))
    far = x.clone()
    far[:, :, 4, 5] += 1.0  # one far corner changes ...
    assert not torch.allclose(block(far)[:, :, 0, 0], y[:, :, 0, 0])  # ... and the opposite corner sees it


def test_estimator_predicts_offsets_and_masks_at_full_resolution_for_odd_sizes():
    torch.manual_seed(0)
    estimator = DynamicOffsetEstimator(6, 8, offset_groups=2)
    perturb_zero_inits(estimator)
    offset, mask = estimator(torch.rand(2, 6, 7, 5), torch.rand(2, 6, 7, 5))  # 7x5 -> 4x3 -> 2x2 -> 1x1 and back
    assert offset.shape == (2, 36, 7, 5) and mask.shape == (2, 18, 7, 5)
    assert torch.all((mask > 0) & (mask < 1))
    fresh = DynamicOffsetEstimator(6, 8)
    offset, mask = fresh(torch.rand(1, 6, 3, 3), torch.rand(1, 6, 3, 3))
    assert torch.all(offset == 0) and torch.all(mask == 0.5)  # DCNv2's start: regular grid, masks 1/2


def test_ssen_starts_as_the_identity_and_then_resamples():
    torch.manual_seed(0)
    align = SSEN(6, 8, num_deform=3)
    lr_feat, ref_feat = torch.rand(1, 6, 9, 8), torch.rand(1, 6, 9, 8)
    with torch.no_grad():
        assert torch.allclose(align(lr_feat, ref_feat), ref_feat, atol=1e-6)  # regular grid, centre tap 2 I, masks 1/2
        # a whole-pixel offset on every tap of the first layer moves the centre sample by one row
        align.layers[0].estimator.offset_mask.conv.bias[0:18:2] = 1.0  # dy = 1 for the 9 taps
        moved = align(lr_feat, ref_feat)
    assert torch.allclose(moved[..., :-1, :], ref_feat[..., 1:, :], atol=1e-6)
    assert torch.allclose(moved[..., -1, :], torch.zeros(1, 6, 8))  # zeros beyond the bottom border


def test_offsets_are_collectable_with_hooks():
    net = make(scale=2)
    perturb_zero_inits(net)
    seen = []
    handles = [head.register_forward_hook(lambda module, args, out: seen.append(out)) for head in offset_heads(net)]
    with torch.no_grad():
        net(torch.rand(2, 3, 10, 12), torch.rand(2, 3, 20, 24))
    for h in handles:
        h.remove()
    assert len(seen) == 3
    for offset, mask in seen:
        assert offset.shape == (2, 18, 10, 12) and mask.shape == (2, 9, 10, 12)
        assert offset.abs().sum() > 0 and torch.all((mask > 0) & (mask < 1))


# ------------------------------------------------------------------------------------- matching guide

def test_local_displacement_finds_a_whole_pixel_shift_and_leaves_equal_maps_in_place():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 1, 30, 32, generator=g)  # noise: every 5x5 patch is unique
    query, key = image[..., 5:25, 6:26], image[..., 7:27, 3:23]  # query[y, x] = key[y - 2, x + 3]
    d = local_displacement(query, key, radius=4)
    assert d.shape == (1, 2, 20, 20)
    inside = (slice(None), slice(4, -4), slice(4, -4))  # where the patch and the move stay inside the key
    assert torch.all(d[:, 0][inside] == -2) and torch.all(d[:, 1][inside] == 3)
    assert torch.all(local_displacement(query, query, radius=3) == 0)
    flat = torch.full((1, 1, 8, 8), 0.5)  # no texture: every candidate ties, the smallest move wins
    assert torch.all(local_displacement(flat, flat.roll(1, -1), radius=2) == 0)


def test_local_displacement_refuses_bad_arguments_by_name():
    x = torch.rand(1, 1, 6, 6)
    with pytest.raises(ValueError, match="two \\(N, 1, h, w\\) maps of one size"):
        local_displacement(x, torch.rand(1, 1, 6, 5), 2)
    with pytest.raises(ValueError, match="two \\(N, 1, h, w\\) maps of one size"):
        local_displacement(torch.rand(1, 3, 6, 6), torch.rand(1, 3, 6, 6), 2)
    with pytest.raises(ValueError, match="radius >= 0 and an odd patch_size"):
        local_displacement(x, x, -1)
    with pytest.raises(ValueError, match="radius >= 0 and an odd patch_size"):
        local_displacement(x, x, 2, patch_size=4)
    with pytest.raises(ValueError, match="guide_radius must be >= 0"):
        srlib.create_model("ssen_tiny", scale=2, guide_radius=-1)


def test_warp_whole_pixels_reads_each_pixel_at_its_displacement_and_zero_outside():
    x = torch.rand(2, 3, 5, 6)
    d = torch.zeros(2, 2, 5, 6)
    d[:, 0], d[:, 1] = 1, -2  # read one row down, two columns left
    y = warp_whole_pixels(x, d)
    assert torch.equal(y[..., :-1, 2:], x[..., 1:, :-2])
    assert torch.all(y[..., -1, :] == 0) and torch.all(y[..., :2] == 0)


def test_the_guided_preset_has_ssen_tiny_parameters_and_undoes_a_whole_pixel_move_of_the_reference():
    plain, guided = make("ssen_tiny", scale=2), make("ssen_guided_tiny", scale=2)
    assert guided.guide_radius == 5 and plain.guide_radius == 0
    guided.load_state_dict(plain.state_dict())  # the guide has no parameters
    # without the RCAB extractor (its channel attention pools globally) the reference path is one 3x3 conv,
    # so moving the reference by whole LR pixels moves its features by exactly as much
    plain, guided = make("ssen_tiny", scale=2, num_extract_group=0), make("ssen_guided_tiny", scale=2, num_extract_group=0)
    guided.load_state_dict(plain.state_dict())
    g = torch.Generator().manual_seed(1)
    photo = torch.rand(1, 3, 64, 64, generator=g)
    hr = photo[..., 16:48, 16:48]
    lr = imresize(hr, scale=0.5)
    moved = photo[..., 16 - 4:48 - 4, 16 + 6:48 + 6]  # the box moved by (-2, +3) LR pixels
    with torch.no_grad():
        aligned = guided.reference_features(lr, moved)
        truth = plain.reference_features(lr, hr)
    inside = (..., slice(3, -3), slice(4, -4))  # the guide's patches and the moved content within the maps
    assert torch.allclose(aligned[inside], truth[inside], atol=1e-5)
    with torch.no_grad():
        assert not torch.allclose(plain.reference_features(lr, moved)[inside], truth[inside], atol=1e-2)
        # self-similarity: the input is aligned with itself, so no search runs and nothing moves
        guided.guide = lambda *args: pytest.fail("the guide searched in self-similarity mode")
        assert torch.equal(guided.reference_features(lr, None), plain.reference_features(lr, None))


# ------------------------------------------------------------------------------------------ training

def test_a_few_training_steps_lower_the_loss(smooth_image):
    # reference: the HR patch shifted by a few pixels (relevant but misaligned), x2 to keep it quick
    torch.manual_seed(0)
    net = srlib.create_model("ssen_tiny", scale=2)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(20):
        tops, lefts = torch.randint(0, 48 - 16 + 1, (2, 4), generator=g)
        hr = torch.stack([smooth_image[:, t:t + 16, s:s + 16] for t, s in zip(tops, lefts)])
        lr, ref = imresize(hr, scale=0.5), torch.roll(hr, shifts=(3, -2), dims=(2, 3))
        loss = charbonnier_loss(net(lr, ref), hr)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-4:]) < sum(losses[:4]), losses
    with torch.no_grad():
        assert torch.isfinite(net(torch.rand(1, 3, 12, 12))).all()
    assert all(torch.isfinite(p).all() for p in net.parameters())
