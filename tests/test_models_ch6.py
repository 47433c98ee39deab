"""Chapter 6 models: SRNTT and TTSR (srlib.models.srntt, srlib.models.ttsr), reference-based SR at x4.

Registry and refusals, shapes with references of any size, gradients to every trainable parameter,
the paper configurations' parameter counts against the reference sheet (SRNTT generator 4,383,494;
TTSR MainNet 6,174,275 + LTE 555,328 = 6,729,603), their structure (blocks per scale, batch norm,
TTSR's attention settings), the losses (SRNTT's weighted Gram texture loss, TTSR's transferal
perceptual loss and what it trains), robustness to useless references, and a few training steps.
Tiny presets on LR inputs of a few pixels keep the file within a few tens of seconds on one core.
"""
import math

import pytest
import torch
import torch.nn.functional as F

import srlib
from srlib.degrade import bicubic_downscale
from srlib.features import VGGFeatureExtractor
from srlib.models.common import ResBlock
from srlib.models.srntt import SRNTT, SRNTTLoss, weighted_gram_loss
from srlib.models.ttsr import TTSR, SoftAttention, TTSRLoss
from srlib.refsr_data import warped_crop
from model_checks import assert_gradients_reach_every_parameter

NAMES = ("srntt", "srntt_tiny", "ttsr", "ttsr_tiny")
TINY = ("srntt_tiny", "ttsr_tiny")


def make(name, seed=0, **overrides):
    torch.manual_seed(seed)
    return srlib.create_model(name, scale=4, **overrides)


def rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------------------- registry

def test_registered_as_reference_based_x4_only():
    for name in NAMES:
        entry = srlib.model_entry(name)
        assert entry.reference_based and not entry.blind and entry.scales == (4,), name
        with pytest.raises(ValueError, match="supports scales x4, not x2"):
            srlib.create_model(name, scale=2)
    with pytest.raises(ValueError, match="SRNTT is x4 only"):
        SRNTT(scale=2)
    with pytest.raises(ValueError, match="TTSR is x4 only"):
        TTSR(scale=3)
    with pytest.raises(TypeError, match="num_feat"):
        srlib.create_model("ttsr_tiny", num_feats=8)


@pytest.mark.parametrize("name", TINY)
def test_output_shapes_with_references_of_any_size(name):
    net = make(name)
    lr = rand(2, 3, 6, 5)
    with torch.no_grad():
        for ref in (rand(2, 3, 24, 20, seed=1), rand(2, 3, 41, 30, seed=2), rand(1, 3, 16, 52, seed=3)):
            sr, swap = net.forward_with_textures(lr, ref)
            assert sr.shape == (2, 3, 24, 20) and torch.isfinite(sr).all()
            assert swap.similarity.shape == (2, 1, 6, 5)
            assert [tuple(t.shape) for t in swap.textures] == [(2, 256, 6, 5), (2, 128, 12, 10), (2, 64, 24, 20)]
            assert torch.equal(net(lr, ref), sr)
    with pytest.raises(ValueError, match="reference images"):
        net(lr, rand(3, 3, 24, 20))
    with pytest.raises(ValueError, match="LR images"):
        net(rand(2, 1, 6, 5), rand(2, 3, 24, 20))


def test_srntt_refuses_references_too_small_to_match():
    with pytest.raises(ValueError, match="it needs at least 3 pixels"):
        make("srntt_tiny")(rand(1, 3, 6, 6), rand(1, 3, 8, 40))  # relu3_1 of an 8-px reference: 2 px


def test_ttsr_output_is_clamped_to_the_image_range():
    net = make("ttsr_tiny")
    with torch.no_grad():
        sr = net(2 * rand(1, 3, 5, 5), rand(1, 3, 20, 20))  # an out-of-range input pushes the output out
    assert sr.min() >= 0 and sr.max() <= 1


# --------------------------------------------------------------------------------------- gradients

def test_srntt_gradients_reach_every_trainable_parameter_and_never_the_vgg():
    net = make("srntt_tiny", use_similarity=True)
    lr = rand(2, 3, 6, 6)
    # the content extractor's own x4 head (content_sr) serves only to pre-train it: include it
    (net(lr, rand(2, 3, 28, 24, seed=1)).square().mean() + net.content_sr(lr).square().mean()).backward()
    assert_gradients_reach_every_parameter(net)
    assert all(not p.requires_grad and p.grad is None for p in net.extractor.parameters())


def test_ttsr_gradients_reach_every_parameter_including_the_texture_extractor():
    net = make("ttsr_tiny", train_lte=True)
    net(rand(2, 3, 6, 6), rand(2, 3, 28, 24, seed=1)).square().mean().backward()
    assert_gradients_reach_every_parameter(net)
    assert srlib.count_parameters(net.lte, trainable_only=True) == 555_328
    frozen = make("ttsr_tiny")  # the CPU preset freezes the LTE
    assert srlib.count_parameters(frozen.lte, trainable_only=True) == 0


# ---------------------------------------------------------------------------------- parameter counts

def test_srntt_paper_config_parameter_count():
    with torch.device("meta"):  # the same modules and shapes, no memory or init time
        net = srlib.create_model("srntt", scale=4)
    count = srlib.count_parameters
    assert count(net, trainable_only=True) == 4_383_494  # the official TF generator (reference sheet)
    assert count(net.content) == 1_518_147  # content extractor, with its x4 pre-training head
    assert count(net) - count(net.extractor) - count(net.content) == 2_865_347  # texture transfer
    assert count(net.extractor) == 555_328 and count(net) == 4_938_822  # + the frozen VGG19 front
    with torch.device("meta"):
        weighted = srlib.create_model("srntt", scale=4, use_similarity=True)
    assert count(weighted, trainable_only=True) == 4_383_494 + 6  # a and b per scale (official option)


def test_srntt_paper_config_structure():
    with torch.device("meta"):
        net = srlib.create_model("srntt", scale=4)
    blocks = [sum(isinstance(m, ResBlock) for m in f.modules()) for f in net.fusion]
    assert blocks == [16, 8, 4] and sum(isinstance(m, ResBlock) for m in net.content.modules()) == 16
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 2 * (16 + 16 + 8 + 4) + 4
    assert [f.fuse[0].in_channels for f in net.fusion] == [64 + 256, 64 + 128, 64 + 64]
    assert net.swap.padding == 0 and net.swap.patch_size == 3 and net.swap.divisor is None  # VALID, averaged
    assert net.extractor.layers == ("relu3_1", "relu2_1", "relu1_1") and net.gates is None


def test_ttsr_paper_config_parameter_count_and_structure():
    with torch.device("meta"):
        net = srlib.create_model("ttsr", scale=4)
    count = srlib.count_parameters
    assert count(net.main) == 6_174_275 and count(net.lte) == 555_328  # reference sheet (official, instantiated)
    assert count(net, trainable_only=True) == count(net) == 6_729_603  # no LTE copy: the TPL detaches instead
    stages = [[len(stream) - 1 for stream in stage] for stage in net.main.stages]  # RBs (+ a tail conv)
    assert len(net.main.sfe) - 1 == 16 and stages == [[16], [8, 8], [4, 4, 4]]
    assert net.transfer.padding == 1 and net.transfer.divisor == 9.0  # 3x3 / 6x6 / 12x12 folds divided by 9
    assert [s.conv.in_channels for s in net.main.soft] == [64 + 256, 64 + 128, 64 + 64]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


def test_ttsr_lte_starts_as_the_feature_network_and_trains_ten_times_slower():
    net = make("ttsr_tiny", train_lte=True)
    vgg = VGGFeatureExtractor(("relu3_1", "relu2_1", "relu1_1"))  # srlib's VGG19, same seed
    assert all(torch.equal(a, b) for a, b in zip(net.lte.parameters(), vgg.parameters()))
    groups = net.param_groups(lr=1e-4, lte_lr=1e-5)
    assert [g["lr"] for g in groups] == [1e-4, 1e-5]
    assert sum(p.numel() for g in groups for p in g["params"]) == srlib.count_parameters(net)


@pytest.mark.parametrize("name", TINY)
def test_tiny_presets_are_small(name):
    assert 5_000 <= srlib.count_parameters(make(name), trainable_only=True) <= 70_000


# ------------------------------------------------------------------------------------ the attention

def test_an_exact_reference_is_matched_to_itself():
    hr = F.interpolate(rand(1, 3, 12, 12, seed=4), size=(48, 48), mode="bicubic", align_corners=False).clamp(0, 1)
    lr = bicubic_downscale(hr, 4)
    for name in TINY:
        with torch.no_grad():
            _, swap = make(name).forward_with_textures(lr, hr)
        m = swap.match
        rows, cols = torch.meshgrid(torch.arange(m.index.shape[-2]), torch.arange(m.index.shape[-1]), indexing="ij")
        own = (m.index[0] == rows * m.ref_grid[1] + cols).float().mean()
        assert own > 0.9 and swap.similarity.mean() > 0.95, (name, own)


def test_soft_attention_scales_the_fused_residual_only():
    torch.manual_seed(0)
    block = SoftAttention(4, 3)
    x, t = rand(1, 4, 5, 5), rand(1, 3, 5, 5, seed=1)
    assert torch.equal(block(x, t, torch.zeros(1, 1, 5, 5)), x)  # no relevance: features pass unchanged
    full = block(x, t, torch.ones(1, 1, 5, 5))
    half = block(x, t, torch.full((1, 1, 5, 5), 0.5))
    assert torch.allclose(half - x, (full - x) / 2, atol=1e-6)
    seen = []
    block.register_forward_hook(lambda module, args, out: seen.append(args[2]))
    block(x, t, torch.full((1, 1, 5, 5), 0.3))
    assert seen and torch.allclose(seen[0], torch.full((1, 1, 5, 5), 0.3))


@pytest.mark.parametrize("name", TINY)
def test_matching_methods_give_the_same_model_output(name):
    lr, ref = rand(1, 3, 5, 6), rand(1, 3, 24, 28, seed=5)
    outs = []
    for method in ("vectorised", "chunked"):
        net = make(name, match_method=method, max_elements=64)
        with torch.no_grad():
            outs.append(net(lr, ref))
    assert torch.allclose(outs[0], outs[1], atol=1e-6)


@pytest.mark.parametrize("name", TINY)
def test_unrelated_or_empty_references_give_finite_outputs_and_gradients(name):
    net = make(name, train_lte=True) if name.startswith("ttsr") else make(name)
    lr = rand(2, 3, 6, 6)
    for ref in (torch.zeros(2, 3, 24, 24), torch.full((1, 3, 24, 24), 0.5), rand(2, 3, 32, 20, seed=6)):
        net.zero_grad()
        sr = net(lr, ref)
        assert torch.isfinite(sr).all()
        sr.mean().backward()
        assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


# -------------------------------------------------------------------------------------------- losses

def test_weighted_gram_loss():
    a, b = rand(2, 4, 5, 5), rand(2, 4, 5, 5, seed=1)
    assert weighted_gram_loss([a], [a.clone()], [None]) == 0
    g = lambda f: f.flatten(2) @ f.flatten(2).transpose(1, 2) / f[0].numel()  # noqa: E731
    assert torch.allclose(weighted_gram_loss([a, b], [b, a], [None, None]), (g(a) - g(b)).square().mean() / 4)
    assert weighted_gram_loss([a], [b], [torch.zeros(2, 1, 5, 5)]) == 0  # zero weight: no texture constraint


def test_srntt_loss_variants():
    net = make("srntt_tiny")
    lr, ref, hr = rand(2, 3, 6, 6), rand(2, 3, 24, 24, seed=1), rand(2, 3, 24, 24, seed=2)
    sr, swap = net.forward_with_textures(lr, ref)
    rec = SRNTTLoss("rec", reconstruction="mse")(sr, hr, lr, swap)
    assert set(rec) == {"reconstruction", "total"} and torch.allclose(rec["total"], F.mse_loss(sr, hr))
    loss = SRNTTLoss("perceptual")
    assert all(torch.equal(p, q) for p, q in zip(loss.perceptual.extractor.parameters(), net.extractor.parameters()))
    parts = loss(sr, hr, lr, swap)
    assert set(parts) == {"reconstruction", "back_projection", "perceptual", "texture", "total"}
    assert all(torch.isfinite(v) and v >= 0 for v in parts.values()) and parts["texture"] > 0
    parts["total"].backward()
    assert net.tail[1].weight.grad.abs().sum() > 0
    unweighted = SRNTTLoss("perceptual", weighted_texture=False)(sr.detach(), hr, lr, swap)["texture"]
    assert not torch.isclose(unweighted, parts["texture"], rtol=1e-2, atol=0)  # the weights matter
    with pytest.raises(ValueError, match="variant"):
        SRNTTLoss("gan")


def test_ttsr_transferal_perceptual_loss_trains_the_lte_through_the_textures_only():
    net = make("ttsr_tiny", train_lte=True)
    lr, ref = rand(1, 3, 6, 6), rand(1, 3, 24, 24, seed=1)
    sr, swap = net.forward_with_textures(lr, ref)
    sr_leaf = sr.detach().requires_grad_()
    net.transferal_perceptual_loss(sr_leaf, swap).backward()
    assert sr_leaf.grad.abs().sum() > 0  # the MainNet is trained through the output
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.lte.parameters())  # through T
    net.zero_grad()
    swap.textures = [t.detach() for t in swap.textures]
    net.transferal_perceptual_loss(sr_leaf, swap).backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in net.lte.parameters())  # the yardstick is frozen
    for use_similarity in (False, True):
        for gram in (False, True):
            assert torch.isfinite(net.transferal_perceptual_loss(sr, swap, use_similarity, gram))


def test_ttsr_loss_variants():
    net = make("ttsr_tiny")
    lr, ref, hr = rand(1, 3, 6, 6), rand(1, 3, 24, 24, seed=1), rand(1, 3, 24, 24, seed=2)
    sr, swap = net.forward_with_textures(lr, ref)
    assert set(TTSRLoss("rec")(net, sr, hr, swap)) == {"reconstruction", "total"}
    parts = TTSRLoss("all")(net, sr, hr, swap)
    assert set(parts) == {"reconstruction", "perceptual", "tpl", "total"}
    assert all(torch.isfinite(v) and v > 0 for v in parts.values())
    parts["total"].backward()
    assert net.main.tail[1].weight.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------ training

@pytest.mark.parametrize("name", TINY)
def test_a_few_training_steps_lower_the_loss(name, smooth_image):
    # references: the HR patch seen through a small warp (XH-like), so there is texture to transfer
    net = make(name)
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=2e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(16):
        tops, lefts = torch.randint(4, 48 - 32 - 4 + 1, (2, 4), generator=g)
        hr = torch.stack([smooth_image[:, t:t + 32, s:s + 32] for t, s in zip(tops, lefts)])
        ref = torch.stack([warped_crop(smooth_image, int(t), int(s), 32, angle=2.0, shift=(1.0, -1.0))
                           for t, s in zip(tops, lefts)])
        loss = F.l1_loss(net(bicubic_downscale(hr, 4), ref), hr)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-4:]) < sum(losses[:4]), losses
    assert all(torch.isfinite(p).all() for p in net.parameters())
