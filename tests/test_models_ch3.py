"""Chapter 3 models: SRDenseNet, RDN, MemNet, D-DBPN, IDN, CARN, CARN-M, MSRN.

Shapes at every registered scale, loud refusal of other scales, gradients, the reference parameter
counts (reference sheet; Y-channel counts for the luma models, MeanShift excluded), the structural
pitfalls the sheet lists (RDN D16 C8 G64, MemNet's sharing and multi-supervision, the 10.4M D-DBPN,
IDN's output size at x3/x4, CARN-M's shared residual-E unit), a few training steps of every CPU preset.
Tiny presets and 12x12 LR inputs keep the file within a few tens of seconds on one core.
"""
import math

import pytest
import torch
import torch.nn.functional as F

import srlib
from srlib.color import rgb_to_y, rgb_to_ycbcr
from srlib.data import PatchDataset
from srlib.degrade import upscale_bicubic
from srlib.models import common
from srlib.models import carn, dbpn, idn, memnet, msrn, rdn, srdensenet
from srlib.train import fit
from model_checks import assert_gradients_reach_every_parameter, assert_upscales_at, make

PAPERS = ["srdensenet", "rdn", "memnet", "dbpn", "idn", "carn", "carn_m", "msrn"]
TINY = [f"{p}_tiny" for p in PAPERS]
SCALES = {"srdensenet": (4,), "rdn": (2, 3, 4), "memnet": (2, 3, 4), "dbpn": (2, 4, 8), "idn": (2, 3, 4),
          "carn": (2, 3, 4), "carn_m": (2, 3, 4), "msrn": (2, 3, 4, 8)}
Y_CHANNEL = ["srdensenet", "memnet", "idn"]

# Reference parameter counts (reference sheet, section 1 and entries 2.8-2.13), by (name, scale).
# CARN/CARN-M: the released multi-scale networks (all three upsamplers), as the paper counts them.
REFERENCE_PARAMS = {
    ("rdn", 2): 22_123_395, ("rdn", 3): 22_308_035, ("rdn", 4): 22_271_107,
    ("memnet", 2): 695_497, ("memnet", 3): 695_497, ("memnet", 4): 695_497,
    ("dbpn", 2): 5_953_526, ("dbpn", 4): 10_426_358, ("dbpn", 8): 23_205_878,
    ("idn", 2): 552_769, ("idn", 3): 552_769, ("idn", 4): 552_769,
    ("carn", 2): 1_591_939, ("carn", 3): 1_591_939, ("carn", 4): 1_591_939,
    ("carn_m", 2): 414_787, ("carn_m", 3): 414_787, ("carn_m", 4): 414_787,
    ("msrn", 2): 5_930_307, ("msrn", 3): 6_114_947, ("msrn", 4): 6_078_019, ("msrn", 8): 6_225_731,
}
# Single-scale CARN / CARN-M (multi_scale=False), reference sheet entry 2.12.
SINGLE_SCALE_PARAMS = {("carn", 2): 964_163, ("carn", 3): 1_148_803, ("carn", 4): 1_111_875,
                       ("carn_m", 2): 257_027, ("carn_m", 4): 294_147}
# SRDenseNet is not in the reference sheet (nor a checked paper count): the layer list of the most-used
# port (yjn870/SRDenseNet-pytorch models.py, "SRDenseNet_All"), every conv with a bias, 3x3 deconvolutions.
G, L, B, W = 16, 8, 8, 256
DENSE_BLOCK_PARAMS = [9 * (b + 1) * G * L * G + G + sum(9 * i * G * G + G for i in range(1, L)) for b in range(B)]
SRDENSENET_PORT_PARAMS = ((9 * 1 + 1) * G * L  # low-level conv 1 -> 128
                          + sum(DENSE_BLOCK_PARAMS)  # block b: first layer on (b + 1)*128 channels, then i*16
                          + (B + 1) * G * L * W + W  # bottleneck 1x1
                          + 2 * (9 * W * W + W)  # two deconvolutions
                          + 9 * W + 1)  # reconstruction
# A big model is built on the meta device (same modules and shapes, no memory) unless its init calls
# normal_, which is slow on meta the first time (torch._refs): those are built on CPU.
ON_META = {"rdn", "msrn", "carn", "carn_m"}


# ----------------------------------------------------------------------------------------- registry

def test_every_paper_config_and_preset_is_registered_with_its_scales():
    names = set(srlib.list_models())
    for paper in PAPERS:
        for name in (paper, paper + "_tiny"):
            assert name in names, name
            assert srlib.model_entry(name).scales == SCALES[paper], name


@pytest.mark.parametrize("name", TINY)
def test_output_shape_at_every_supported_scale(name):
    assert_upscales_at(name, SCALES[name.removesuffix("_tiny")])


@pytest.mark.parametrize("name", PAPERS + TINY)
def test_unsupported_scale_is_refused_clearly(name):
    paper = name.removesuffix("_tiny")
    for bad in (5, 6) + tuple(s for s in (2, 3, 4, 8) if s not in SCALES[paper]):
        with pytest.raises(ValueError, match=f"supports scales .* not x{bad}"):
            srlib.create_model(name, scale=bad)


def test_model_classes_refuse_bad_scales_themselves():
    with pytest.raises(ValueError, match="RDN supports scales 2, 3 and 4"):
        rdn.RDN(scale=8)
    with pytest.raises(ValueError, match="no x3"):
        dbpn.DBPN(scale=3)
    with pytest.raises(ValueError, match="power-of-two"):
        srdensenet.SRDenseNet(scale=3)
    with pytest.raises(ValueError, match="integer scale from 2 to 9"):
        idn.IDN(scale=10)
    with pytest.raises(ValueError, match="integer scale >= 2"):
        memnet.MemNet(scale=1)
    with pytest.raises(ValueError, match="multi_scale=False"):
        carn.CARN(scale=8)
    single = carn.CARN(scale=8, num_feat=8, num_block=1, num_unit=1, multi_scale=False)
    assert single(torch.rand(1, 3, 4, 4)).shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="Supported scales: 2\\^n and 3"):
        msrn.MSRN(scale=5)


def test_bad_configs_are_refused():
    with pytest.raises(TypeError, match="num_feat"):
        srlib.create_model("rdn_tiny", scale=2, num_feats=8)
    with pytest.raises(ValueError, match="groups dividing"):
        idn.IDN(scale=2, num_feat=24, distill=6, groups=4)  # 24 - 6 = 18 channels in 4 groups
    with pytest.raises(ValueError, match="efficient=True"):
        carn.CARN(scale=2, group=4)
    net = srlib.create_model("carn_tiny", scale=2)
    with pytest.raises(ValueError, match="upsamplers for x2, not x3"):
        net(torch.rand(1, 3, 8, 8), scale=3)


# --------------------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("name", TINY)
def test_gradients_reach_every_parameter(name):
    scale = SCALES[name.removesuffix("_tiny")][0]
    net = make(name, scale)
    sr = net(torch.rand(2, 3, 12, 12))
    sr.square().mean().backward()
    assert_gradients_reach_every_parameter(net, name)


# ---------------------------------------------------------------------------------- parameter counts

@pytest.mark.parametrize("name,scale", sorted(REFERENCE_PARAMS))
def test_paper_config_parameter_count_equals_reference(name, scale):
    with torch.device("meta" if name in ON_META else "cpu"):
        net = srlib.create_model(name, scale=scale)
    assert srlib.count_parameters(net) == REFERENCE_PARAMS[(name, scale)]


@pytest.mark.parametrize("name,scale", sorted(SINGLE_SCALE_PARAMS))
def test_single_scale_carn_parameter_count_equals_reference(name, scale):
    net = srlib.create_model(name, scale=scale, multi_scale=False)
    assert srlib.count_parameters(net) == SINGLE_SCALE_PARAMS[(name, scale)]
    assert list(net.upsample) == [f"x{scale}"]


def test_srdensenet_parameter_count_equals_the_port_layer_list():
    net = srlib.create_model("srdensenet", scale=4)
    assert srlib.count_parameters(net) == SRDENSENET_PORT_PARAMS


@pytest.mark.parametrize("name", ["srdensenet", "memnet", "idn", "carn", "carn_m"])
def test_small_paper_configs_run(name):
    scale = SCALES[name][0]
    net = make(name, scale).eval()
    with torch.no_grad():
        sr = net(torch.rand(1, 3, 7, 6))
    assert sr.shape == (1, 3, 7 * scale, 6 * scale) and torch.isfinite(sr).all()


def test_meanshift_is_a_buffer_where_the_original_has_one():
    for name in ("carn", "carn_m", "msrn"):
        state = srlib.create_model(name + "_tiny", scale=2).state_dict()
        assert "sub_mean.mean" in state and "add_mean.mean" in state, name
    for name in ("rdn", "dbpn"):  # EDSR-PyTorch's RDN and alterzero's D-DBPN have no mean shift
        net = srlib.create_model(name + "_tiny", scale=2)
        assert not any(isinstance(m, common.MeanShift) for m in net.modules()), name


# ------------------------------------------------------------------------------- paper-specific details

def test_rdn_is_d16_c8_g64_with_1x1_fusions():
    with torch.device("meta"):
        net = srlib.create_model("rdn", scale=2)
    assert len(net.blocks) == 16 and all(len(b.layers) == 8 for b in net.blocks)
    assert [layer[0].out_channels for layer in net.blocks[0].layers] == [64] * 8
    assert net.blocks[0].fusion.kernel_size == (1, 1) and net.blocks[0].fusion.in_channels == 64 + 8 * 64
    assert net.fusion[0].kernel_size == (1, 1) and net.fusion[0].in_channels == 16 * 64
    assert net.fusion[1].kernel_size == (3, 3)


def test_rdn_residuals_local_and_global_from_the_first_shallow_conv():
    net = make("rdn_tiny", 2)
    block = net.blocks[0]
    torch.nn.init.zeros_(block.fusion.weight)
    torch.nn.init.zeros_(block.fusion.bias)
    x = torch.rand(1, 16, 6, 6)
    assert torch.equal(block(x), x)  # zero local fusion: the block is its local skip
    torch.nn.init.zeros_(net.fusion[1].weight)
    torch.nn.init.zeros_(net.fusion[1].bias)
    lr = torch.rand(1, 3, 6, 6)
    with torch.no_grad():  # zero global fusion: only the global skip from F_-1 (SFE1, not SFE2) reaches the upsampler
        expected = net.upsample(net.sfe1(lr * net.img_range)) / net.img_range
        assert torch.allclose(net(lr), expected, atol=1e-5)
    shallow, outputs = net.features(lr)
    assert len(outputs) == len(net.blocks) and all(o.shape == (1, 16, 6, 6) for o in outputs + [shallow])


def test_memnet_shares_recursion_and_reconstruction_convs_but_not_batch_norms():
    net = srlib.create_model("memnet", scale=2)
    assert len(net.blocks) == 6
    for m, block in enumerate(net.blocks, start=1):
        convs = [c for c in block.modules() if isinstance(c, torch.nn.Conv2d)]
        assert len(convs) == 3  # conv_a, conv_b (applied 6 times each) and the gate's 1x1
        assert sum(isinstance(b, torch.nn.BatchNorm2d) for b in block.modules()) == 2 * 6 + 1
        assert block.gate[1].kernel_size == (1, 1) and block.gate[1].in_channels == (m + 6) * 64  # long + short memory
    assert sum(isinstance(c, torch.nn.Conv2d) for c in net.modules()) == 1 + 6 * 3 + 1  # one shared recon conv
    assert len(net.recon_pre) == 6 and torch.allclose(net.output_weights, torch.full((6,), 1 / 6))


def test_memnet_multi_supervision():
    net = make("memnet_tiny", 2)
    lr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16)
    target = rgb_to_y(hr)
    predictions, output = net.forward_memories(rgb_to_y(lr))
    assert len(predictions) == len(net.blocks) and all(p.shape == (2, 1, 16, 16) for p in predictions)
    # the output is the weighted average; at init (weights 1/M) the plain mean of the reconstructions
    assert torch.allclose(output, torch.stack(predictions).mean(0), atol=1e-6)
    losses = [F.mse_loss(p, target) for p in predictions] + [F.mse_loss(output, target)]
    expected = sum(losses) / len(losses)
    assert torch.allclose(net.training_loss(lr, hr, F.mse_loss, progress=0.5), expected, atol=1e-6)
    net.zero_grad()
    net.training_loss(lr, hr, F.mse_loss).backward()
    assert net.output_weights.grad is not None and net.output_weights.grad.abs().sum() > 0
    assert all(pre[0].weight.grad.abs().sum() > 0 for pre in net.recon_pre)  # every branch is supervised


def test_dbpn_is_the_10m_t7_model_with_scale_dependent_projections():
    for scale, geometry in {2: (6, 2, 2), 4: (8, 4, 2), 8: (12, 8, 2)}.items():
        net = make("dbpn_tiny", scale)
        for unit in list(net.ups) + list(net.downs):
            for layer, transposed in ((unit.project, unit.up), (unit.back, not unit.up), (unit.error, unit.up)):
                conv = layer[0]
                assert isinstance(conv, torch.nn.ConvTranspose2d) == transposed
                assert (conv.kernel_size[0], conv.stride[0], conv.padding[0]) == geometry
    net = srlib.create_model("dbpn", scale=4)
    assert len(net.ups) == 7 and len(net.downs) == 6 and net.head[0][0].out_channels == 256
    # dense connections: a 1x1 bottleneck over every earlier map of the unit's input resolution (from up_3, down_2)
    def inputs(unit):
        first = unit.project if isinstance(unit.bottleneck, torch.nn.Identity) else unit.bottleneck
        return first[0].in_channels
    assert [inputs(u) for u in net.ups] == [64, 64, 128, 192, 256, 320, 384]
    assert [inputs(d) for d in net.downs] == [64, 128, 192, 256, 320, 384]
    assert net.reconstruction.in_channels == 7 * 64
    assert sum(isinstance(m, torch.nn.PReLU) for m in net.modules()) == 2 + 13 * 3 + 10


def test_dbpn_projection_maps_and_residual_option():
    net = make("dbpn_tiny", 4, residual=True)
    lr = torch.rand(1, 3, 5, 6)
    highs, lows = net.forward_projections(lr)
    assert [h.shape for h in highs] == [(1, 8, 20, 24)] * 3 and [low.shape for low in lows] == [(1, 8, 5, 6)] * 2
    torch.nn.init.zeros_(net.reconstruction.weight)
    torch.nn.init.zeros_(net.reconstruction.bias)
    with torch.no_grad():
        assert torch.allclose(net(lr), upscale_bicubic(lr, 4), atol=1e-6)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_idn_gives_the_exact_size_with_the_official_alignment(scale):
    net = make("idn", scale)
    for h, w in ((10, 10), (7, 9)):
        assert net.forward_y(torch.rand(1, 1, h, w)).shape == (1, 1, scale * h, scale * w)
    # official: Caffe deconv with pad 8 gives s*(h-1)+1 rows matched to HR rows s-1.. (mycrop.m);
    # srlib's row j + s - 1 must hold exactly the official row j.
    feat = torch.rand(1, 64, 7, 6)
    ours = net.upsample(feat)[..., :scale * 7, :scale * 6]
    caffe = F.conv_transpose2d(feat, net.upsample.weight, net.upsample.bias, stride=scale, padding=8)
    assert caffe.shape[-2:] == (scale * 6 + 1, scale * 5 + 1)
    assert torch.allclose(ours[..., scale - 1:, scale - 1:], caffe, atol=1e-5)


def test_idn_structure():
    net = srlib.create_model("idn", scale=4)
    block = net.blocks[0]
    assert [c.out_channels for c in block.top.modules() if isinstance(c, torch.nn.Conv2d)] == [48, 32, 64]
    assert [c.out_channels for c in block.bottom.modules() if isinstance(c, torch.nn.Conv2d)] == [64, 48, 80]
    assert [c.groups for c in block.modules() if isinstance(c, torch.nn.Conv2d)] == [1, 4, 1, 1, 4, 1, 1]
    assert block.compression[0].kernel_size == (1, 1) and block.compression[0].in_channels == 80
    slopes = {m.negative_slope for m in net.modules() if isinstance(m, torch.nn.LeakyReLU)}
    assert slopes == {0.05} and net.upsample.kernel_size == (17, 17) and net.upsample.stride == (4, 4)
    torch.nn.init.zeros_(net.upsample.weight)
    torch.nn.init.zeros_(net.upsample.bias)
    lr = torch.rand(1, 3, 6, 5)
    with torch.no_grad():  # zero deconvolution: IDN is bicubic (luma and chroma)
        assert (net(lr) - upscale_bicubic(lr, 4)).abs().max() < 1e-5


def test_carn_m_shares_its_residual_e_unit_and_carn_does_not():
    mobile, plain = srlib.create_model("carn_m", scale=2), srlib.create_model("carn", scale=2)
    for block in mobile.body.units:
        assert len(block.units) == 3 and all(u is block.units[0] for u in block.units)
        convs = [c for c in block.units[0].body if isinstance(c, torch.nn.Conv2d)]
        assert [(c.kernel_size[0], c.groups) for c in convs] == [(3, 4), (3, 4), (1, 1)]
    assert all(c.groups == 4 for c in mobile.upsample["x4"] if isinstance(c, torch.nn.Conv2d))
    for block in plain.body.units:
        assert len({id(u) for u in block.units}) == 3
    # cascading 1x1 fusions at both levels: 128, 192, 256 input channels
    for cascade in (plain.body, plain.body.units[0]):
        assert [f[0].in_channels for f in cascade.fuse] == [128, 192, 256]
    lr = torch.rand(1, 3, 5, 4)
    with torch.no_grad():
        assert [tuple(mobile(lr, scale=s).shape) for s in (2, 3, 4)] == [(1, 3, 10, 8), (1, 3, 15, 12), (1, 3, 20, 16)]


def test_msrn_blocks_and_hierarchical_fusion_include_the_head():
    with torch.device("meta"):
        net = srlib.create_model("msrn", scale=4)
    assert len(net.blocks) == 8
    kernels = sorted({m.kernel_size[0] for m in net.blocks[0].modules() if isinstance(m, torch.nn.Conv2d)})
    assert kernels == [1, 3, 5] and net.blocks[0].confusion.in_channels == 4 * 64
    assert net.fusion[0].in_channels == 9 * 64  # 8 blocks + the head features
    tiny = make("msrn_tiny", 2)
    tiny.fusion[0].weight.data[:, :-12] = 0  # keep only the head's slice of the fusion
    with torch.no_grad():
        lr = torch.rand(1, 3, 6, 6)
        head = tiny.head(tiny.sub_mean(lr) * tiny.img_range)
        expected = tiny.add_mean(tiny.tail(tiny.upsample(tiny.fusion(torch.cat([torch.zeros(1, 24, 6, 6), head], 1))))
                                 / tiny.img_range)
        assert torch.allclose(tiny(lr), expected, atol=1e-4)


def test_srdensenet_dense_skip_connections():
    net = srlib.create_model("srdensenet", scale=4)
    assert [b.layers[0][0].in_channels for b in net.blocks] == [128 * (b + 1) for b in range(8)]
    assert [layer[0].in_channels for layer in net.blocks[0].layers[1:]] == [16 * i for i in range(1, 8)]
    assert net.bottleneck[0].in_channels == 1152 and net.bottleneck[0].out_channels == 256
    deconvs = [m for m in net.upsample if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(deconvs) == 2 and all(d.kernel_size == (3, 3) and d.stride == (2, 2) for d in deconvs)


@pytest.mark.parametrize("name", ["memnet", "idn"])
def test_bicubic_skip_models_start_near_bicubic(name):
    # their last layer starts at N(0, 0.001) (documented deviation): the untrained residual is small (with the
    # official MSRA fillers it reaches about 2 for MemNet, 0.3 for IDN). Training mode: MemNet's batch norms
    # use batch statistics (untrained running statistics are the identity and let the features grow).
    net = make(name, 2)
    lr = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        assert (net(lr) - upscale_bicubic(lr, 2)).abs().max() < 0.05


@pytest.mark.parametrize("name", Y_CHANNEL)
def test_luma_models_change_only_luma(name):
    net = make(name + "_tiny", SCALES[name][0]).eval()
    scale = SCALES[name][0]
    lr = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        sr = net(lr)
    chroma = rgb_to_ycbcr(sr)[:, 1:]
    assert (chroma - rgb_to_ycbcr(upscale_bicubic(lr, scale))[:, 1:]).abs().max() < 1e-5
    assert isinstance(net, common.YChannelSR)


# ------------------------------------------------------------------------------------------- training

@pytest.mark.parametrize("name", TINY)
def test_a_few_training_steps_lower_the_loss(name, smooth_image):
    scale = SCALES[name.removesuffix("_tiny")][0]
    net = make(name, scale)
    data = PatchDataset([smooth_image], scale=scale, patch_size=24, seed=0)
    loss = "mse" if name.startswith("memnet") else "l1"
    result = fit(net, data, steps=25, batch_size=4, lr=2e-3, loss=loss, progress=False, verbose=False, device="cpu")
    h = result.history["loss"]
    assert all(math.isfinite(v) for v in h)
    assert sum(h[-5:]) < sum(h[:5]), h
    with torch.no_grad():
        assert torch.isfinite(net.eval()(torch.rand(1, 3, 12, 12))).all()
