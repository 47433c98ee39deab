"""Chapter 8 models: ZSSR, IKC, DASR (blind SR), and the InfoNCE loss.

Shapes at every registered scale, loud refusal of other scales, gradients, the reference parameter
counts (reference sheet 2.21, 2.23, 2.24: IKC without the unused branch, DASR's deployable count
with the momentum encoder as buffers), the IKC loop, DA conv's per-sample kernels against a loop
reference, InfoNCE against a direct computation, the MoCo queue and momentum update, DASR's two
stages, and a few training steps of every CPU preset. Tiny presets and small inputs throughout.
"""
import math

import pytest
import torch
import torch.nn.functional as F

import srlib
from srlib.blind import BlindPatchSource, DegradationParams, DegradationSpace
from srlib.data import PatchDataset
from srlib.degrade import upscale_bicubic
from srlib.losses import info_nce
from srlib.models import dasr, ikc, zssr  # noqa: F401  (registers the chapter 8 models)
from srlib.train import fit
from model_checks import assert_gradients_reach_every_parameter, assert_upscales_at, make

PAPERS = ["zssr", "ikc", "dasr"]
TINY = [f"{p}_tiny" for p in PAPERS]

# Reference parameter counts (reference sheet, section 1 and entries 2.21, 2.23, 2.24), by (name, scale).
# IKC: SFTMD as it runs (4,234,691 at x4; the official module reports 7,966,147 with its unused
# 3,731,456-parameter branch) + predictor 430,730 + corrector 649,930. DASR: G + query encoder.
SFTMD_PARAMS = {2: 4_086_979, 3: 4_271_619, 4: 4_234_691}
REFERENCE_PARAMS = {
    **{("zssr", s): 224_640 for s in (2, 3, 4)},
    **{("ikc", s): SFTMD_PARAMS[s] + 430_730 + 649_930 for s in (2, 3, 4)},
    ("dasr", 2): 5_821_571, ("dasr", 3): 6_006_211, ("dasr", 4): 5_969_283,
}


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------------------- registry

def test_registered_as_blind_models_with_their_scales():
    names = set(srlib.list_models())
    for name in PAPERS + TINY:
        assert name in names, name
        entry = srlib.model_entry(name)
        assert entry.scales == (2, 3, 4) and entry.blind and not entry.reference_based, name


@pytest.mark.parametrize("name", TINY)
def test_output_shape_at_every_supported_scale(name):
    assert_upscales_at(name, (2, 3, 4))


@pytest.mark.parametrize("name", PAPERS + TINY)
def test_unsupported_scale_is_refused_clearly(name):
    with pytest.raises(ValueError, match="supports scales .* not x5"):
        srlib.create_model(name, scale=5)


def test_model_classes_refuse_bad_scales_themselves():
    with pytest.raises(ValueError, match="integer scale"):
        zssr.ZSSR(scale=1)
    with pytest.raises(ValueError, match="scales 2, 3 and 4"):
        ikc.IKC(scale=8, num_feat=4, num_block=1, sft_feat=2, estimator_feat=2)
    with pytest.raises(ValueError, match="Supported scales: 2\\^n and 3"):
        dasr.DASR(scale=5)


def test_unknown_override_is_refused():
    for name in PAPERS:
        with pytest.raises(TypeError, match="num_feat"):
            srlib.create_model(name, scale=2, num_feats=8)


# ---------------------------------------------------------------------------------- parameter counts

@pytest.mark.parametrize("name,scale", sorted(REFERENCE_PARAMS))
def test_paper_config_parameter_count_equals_reference(name, scale):
    net = srlib.create_model(name, scale=scale)  # 0.2-6M parameters: built on CPU, never run
    assert srlib.count_parameters(net) == REFERENCE_PARAMS[(name, scale)]


def test_paper_config_parts_match_the_reference_sheet():
    net = srlib.create_model("ikc", scale=4)
    assert srlib.count_parameters(net.sftmd) == 4_234_691 == 7_966_147 - 3_731_456
    assert srlib.count_parameters(net.predictor) == 430_730
    assert srlib.count_parameters(net.corrector) == 649_930
    assert len(net.sftmd.body) == 16 and net.num_iter == 7 and net.kernel_pca.code_len == 10
    model = srlib.create_model("dasr", scale=4)
    assert srlib.count_parameters(model.sr) == 4_690_499
    assert srlib.count_parameters(model.encoder) == 1_278_784
    assert srlib.count_parameters(model.encoder.mlp) == 131_584  # 5,837,699 without it ("5.8M" in the paper)
    assert sum(p.numel() for p in model.encoder_k.parameters()) == 0  # the momentum copy: buffers only
    assert sum(b.numel() for b in model.encoder_k.buffers()) >= 1_278_784
    assert model.queue.shape == (8192, 256) and model.momentum == 0.999 and model.temperature == 0.07
    z = srlib.create_model("zssr", scale=4)
    convs = [m for m in z.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 8 and all(c.bias is None for c in convs)


def test_tiny_presets_are_cpu_sized():
    for name in TINY:
        count = srlib.count_parameters(srlib.create_model(name, scale=4))
        assert 5_000 <= count <= 65_000, (name, count)


# --------------------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("name", TINY)
def test_gradients_reach_every_parameter(name):
    net = make(name, 2)
    lr = torch.rand(2, 3, 12, 12)
    if name.startswith("dasr"):
        # the MLP head only feeds the contrastive loss: the joint training loss reaches everything
        two_views = torch.stack([lr, torch.rand(2, 3, 12, 12)], dim=1)
        loss = net.training_loss(two_views, torch.rand(2, 3, 24, 24), F.l1_loss)
    else:
        loss = (net(lr) - 0.5).square().mean()
    loss.backward()
    assert_gradients_reach_every_parameter(net, name)


# ------------------------------------------------------------------------------------------------ ZSSR

def test_zssr_is_bicubic_plus_a_residual_with_the_paper_init():
    net = make("zssr", 3)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    for conv in convs:
        fan_in = conv.in_channels * 9
        assert abs(conv.weight.std().item() - math.sqrt(0.1 / fan_in)) < 0.15 * math.sqrt(0.1 / fan_in)
    torch.nn.init.zeros_(convs[-1].weight)
    lr = torch.rand(1, 3, 8, 7)
    with torch.no_grad():
        assert torch.allclose(net(lr), upscale_bicubic(lr, 3), atol=1e-6)
    net.reset_parameters(gen(1))
    first = convs[0].weight.clone()
    net.reset_parameters(gen(1))
    assert torch.equal(first, convs[0].weight) and convs[-1].weight.abs().sum() > 0


# ------------------------------------------------------------------------------------------------- IKC

def test_ikc_loop_shapes_and_output_is_the_last_step():
    net = make("ikc_tiny", 4).eval()
    lr = torch.rand(2, 3, 10, 12)
    with torch.no_grad():
        srs, codes = net.forward_iterations(lr)
        out = net(lr)
    assert len(srs) == net.num_iter == 3 and len(codes) == net.num_iter + 1
    assert all(s.shape == (2, 3, 40, 48) for s in srs) and all(c.shape == (2, 10) for c in codes)
    assert torch.equal(out, srs[-1]) and out.min() >= 0 and out.max() <= 1  # SFTMD clamps
    with torch.no_grad():
        assert len(net.forward_iterations(lr, num_iter=5)[0]) == 5
        # the corrector changes the code, and the code changes the SR image (SFT conditioning)
        assert not torch.allclose(codes[0], codes[1])
        assert not torch.allclose(net.sftmd(lr, codes[0]), net.sftmd(lr, codes[0] + 1.0))
    kernels = net.kernel_pca.decode(codes[-1])
    assert kernels.shape == (2, 21, 21)


def test_ikc_staged_losses():
    net = make("ikc_tiny", 2)
    lr, hr = torch.rand(2, 3, 12, 12), torch.rand(2, 3, 24, 24)
    kernels = DegradationParams.isotropic([1.0, 2.0]).kernels()
    codes = net.kernel_pca.encode(kernels)
    assert torch.allclose(net.sftmd_loss(lr, hr, kernels), F.l1_loss(net.sftmd(lr, codes), hr))
    predictor_loss, corrector_loss = net.estimator_loss(lr, kernels)
    assert torch.allclose(predictor_loss, F.mse_loss(net.predictor(lr), codes))
    (predictor_loss + corrector_loss).backward()
    assert all(p.grad is None for p in net.sftmd.parameters())  # SFTMD is frozen in stage 2
    assert all(p.grad is not None for p in net.corrector.parameters())


# ------------------------------------------------------------------------------------------------ DASR

def test_da_conv_applies_each_samples_own_kernels():
    torch.manual_seed(0)
    conv = dasr.DAConv(num_feat=8, kernel_size=3, reduction=4)
    x, v = torch.randn(3, 8, 6, 7), torch.randn(3, 8)
    out = conv(x, v)
    kernels = conv.kernels(v)  # (3, 8, 3, 3)
    assert kernels.shape == (3, 8, 3, 3) and not torch.allclose(kernels[0], kernels[1])
    for b in range(3):  # loop reference: sample b, channel c, with its own kernel
        depthwise = torch.stack([F.conv2d(x[b, c][None, None], kernels[b, c][None, None], padding=1)[0, 0]
                                 for c in range(8)])
        expected = conv.conv(F.leaky_relu(depthwise, 0.1)[None])[0]
        expected = expected + x[b] * torch.sigmoid(conv.modulation(v[b][None, :, None, None]))[0]
        assert torch.allclose(out[b], expected, atol=1e-5), b
        assert torch.allclose(conv(x[b:b + 1], v[b:b + 1])[0], out[b], atol=1e-5)  # batch-independent


def test_dasr_conditions_on_the_pooled_feature_not_the_mlp():
    net = make("dasr_tiny", 2).eval()
    lr = torch.rand(2, 3, 12, 12)
    with torch.no_grad():
        fea, out = net.encoder(lr * 255)
        assert torch.allclose(net.represent(lr), fea)
        assert torch.allclose(net(lr), net.sr(lr, fea))
        torch.nn.init.zeros_(net.encoder.mlp[-1].weight)  # the MLP head does not change the SR
        assert torch.allclose(net(lr), net.sr(lr, fea))
        assert fea.shape == (2, 32) and net.sr.compress[0].in_features == 32


def test_info_nce_matches_a_direct_computation():
    q, k = torch.randn(4, 5, generator=gen(1)), torch.randn(4, 5, generator=gen(2))
    queue = torch.randn(7, 5, generator=gen(3))
    temperature = 0.2
    total = 0.0
    for i in range(4):
        qi, ki = q[i] / q[i].norm(), k[i] / k[i].norm()
        positive = math.exp(float(qi @ ki) / temperature)
        negatives = sum(math.exp(float(qi @ (n / n.norm())) / temperature) for n in queue)
        total += -math.log(positive / (positive + negatives))
    assert abs(info_nce(q, k, queue, temperature).item() - total / 4) < 1e-5
    assert info_nce(q, q, queue, 0.07) < info_nce(q, k, queue, 0.07)  # aligned positives: lower loss
    with pytest.raises(ValueError, match="queue"):
        info_nce(q, k, torch.randn(7, 6), 0.07)


def test_moco_queue_update_and_momentum():
    net = make("dasr_tiny", 2)
    size = net.queue.shape[0]
    before = net.queue.clone()
    keys = torch.randn(5, net.encoder.dim)
    net.queue_ptr.fill_(size - 2)  # wrap around the end of the queue
    net.enqueue(keys)
    normalised = F.normalize(keys, dim=1)
    assert torch.allclose(net.queue[size - 2:], normalised[:2]) and torch.allclose(net.queue[:3], normalised[2:])
    assert torch.equal(net.queue[3:size - 2], before[3:size - 2]) and int(net.queue_ptr) == 3
    # momentum update: key = m * key + (1 - m) * query, parameter by parameter
    name, param = next(iter(net.encoder.named_parameters()))
    with torch.no_grad():
        param.add_(1.0)
    old = net.encoder_k.get_buffer(name).clone()
    net.momentum_update()
    assert torch.allclose(net.encoder_k.get_buffer(name), 0.99 * old + 0.01 * param.detach())
    # a training step enqueues the (normalised) keys of the key encoder
    net.queue_ptr.zero_()
    two_views = torch.rand(4, 2, 3, 12, 12)
    net.training_loss(two_views, torch.rand(4, 3, 24, 24), F.l1_loss)
    _, expected = net.encoder_k(two_views[:, 1] * 255)
    assert int(net.queue_ptr) == 4 and torch.allclose(net.queue[:4], F.normalize(expected, dim=1), atol=1e-5)


def test_momentum_copy_runs_like_the_original_with_buffers_only():
    encoder = dasr.DegradationEncoder(4).eval()
    copy = dasr.momentum_copy(encoder).eval()
    x = torch.rand(2, 3, 12, 12)
    assert torch.allclose(copy(x)[1], encoder(x)[1])
    assert list(copy.parameters()) == [] and set(copy.state_dict()) == set(encoder.state_dict())
    assert copy.to(torch.float64).features[0].weight.dtype == torch.float64  # buffers move with .to()


def test_dasr_stages():
    net = make("dasr_tiny", 2)
    lr, hr = torch.rand(3, 2, 3, 12, 12), torch.rand(3, 2, 3, 24, 24)
    net.stage = "encoder"
    loss = net.training_loss(lr, hr, F.l1_loss)
    loss.backward()
    assert all(p.grad is None for p in net.sr.parameters())  # stage 1: the encoder alone
    assert all(p.grad is not None for p in net.encoder.parameters())
    assert 0 < loss.item() < 2 * math.log(net.queue.shape[0] + 1)
    net.stage = "joint"
    joint = net.training_loss(lr, hr, F.l1_loss)
    assert joint > 0 and joint.requires_grad
    with pytest.raises(ValueError, match="views=2"):
        net.training_loss(lr[:, 0], hr[:, 0], F.l1_loss)
    net.stage = "decoder"
    with pytest.raises(ValueError, match="stage"):
        net.training_loss(lr, hr, F.l1_loss)


def test_dasr_train_two_stage(smooth_image):
    net = make("dasr_tiny", 2)
    src = BlindPatchSource([smooth_image], 2, DegradationSpace(sigma_range=(0.2, 2.0)), patch_size=24, views=2)
    first, second = dasr.train_two_stage(net, src, 3, 3, batch_size=4, progress=False, verbose=False, device="cpu")
    assert first.steps == 3 and second.steps == 3 and net.stage == "joint"
    # each stage has its own Adam and learning rate (fit records it after the first cosine step)
    assert 5e-4 < first.history["lr"][0] <= 1e-3 and 5e-5 < second.history["lr"][0] <= 1e-4


# ------------------------------------------------------------------------------------------- training

def assert_decreasing(history):
    assert all(math.isfinite(v) for v in history)
    assert sum(history[-4:]) < sum(history[:4]), history


def edges_image():
    """(3, 48, 48) stripes with sharp edges: bicubic blurs them, so a residual has something to learn."""
    y, x = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 48), indexing="ij")
    stripes = [(3 * x + 2 * y) % 0.5 < 0.25, (5 * y - x) % 0.4 < 0.2, (6 * x * y) % 1 < 0.5]
    return 0.1 + 0.8 * torch.stack(stripes).float()


def test_zssr_tiny_trains_with_fit():
    # ZSSR starts as bicubic + a tiny residual: on smooth images there is little to gain in 20 steps
    net = make("zssr_tiny", 2)
    data = PatchDataset([edges_image()], scale=2, patch_size=24)  # bicubic LR: the plain (lr, hr) batches
    result = fit(net, data, steps=20, batch_size=4, lr=2e-3, progress=False, verbose=False, device="cpu")
    assert_decreasing(result.history["loss"])


def test_dasr_tiny_trains_with_fit(smooth_image):
    net = make("dasr_tiny", 2)
    src = BlindPatchSource([smooth_image], 2, DegradationSpace(sigma_range=(0.2, 2.0)), patch_size=24, views=2)
    result = fit(net, src, steps=20, batch_size=4, lr=2e-3, progress=False, verbose=False, device="cpu")
    assert_decreasing(result.history["loss"])
    net.eval()
    with torch.no_grad():
        assert torch.isfinite(net(torch.rand(1, 3, 12, 12))).all()


def test_ikc_tiny_trains_in_stages(smooth_image):
    net = make("ikc_tiny", 2)
    src = BlindPatchSource([smooth_image], 2, DegradationSpace(sigma_range=(0.2, 2.0)), patch_size=24)
    history = ikc.train_ikc(net, src, sftmd_steps=16, estimator_steps=4, batch_size=4, lr=2e-3, progress=False)
    assert len(history["sftmd"]) == 16 and len(history["predictor"]) == len(history["corrector"]) == 4
    assert_decreasing(history["sftmd"])
    assert all(math.isfinite(v) for v in history["predictor"] + history["corrector"])
    assert not net.training
