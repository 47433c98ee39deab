import pytest
import torch

import srlib
from srlib.models import common


def test_registry_lists_and_creates():
    assert "learned_upscaler" in srlib.list_models()
    assert srlib.list_models("learned_*_tiny") == ["learned_upscaler_tiny"]
    net = srlib.create_model("learned_upscaler", scale=3)
    assert (net.srlib_name, net.srlib_scale) == ("learned_upscaler", 3)
    assert net(torch.rand(2, 3, 7, 9)).shape == (2, 3, 21, 27)


def test_unknown_name_suggests_close_match():
    with pytest.raises(KeyError, match="learned_upscaler"):
        srlib.create_model("learned_upscalr")


def test_unsupported_scale_and_unknown_override_are_refused():
    with pytest.raises(ValueError, match="x2, x3, x4, x8"):
        srlib.create_model("learned_upscaler", scale=5)
    with pytest.raises(TypeError, match="num_feat"):
        srlib.create_model("learned_upscaler", scale=2, num_feats=8)


@pytest.mark.parametrize("scale,steps", [(2, 1), (3, 1), (4, 2), (8, 3)])
def test_upsample_shapes(scale, steps):
    up = common.Upsample(scale, 8)
    assert up(torch.rand(1, 8, 5, 6)).shape == (1, 8, 5 * scale, 6 * scale)
    assert sum(isinstance(m, torch.nn.PixelShuffle) for m in up) == steps


@pytest.mark.parametrize("scale", [1, 5, 6, 2.0])
def test_upsample_fails_loudly(scale):
    with pytest.raises(ValueError, match="Supported scales: 2\\^n and 3"):
        common.Upsample(scale, 8)


def test_mean_shift_is_a_buffer_not_a_parameter():
    sub, add = common.MeanShift(sign=-1), common.MeanShift(sign=+1)
    assert list(sub.parameters()) == [] and "mean" in sub.state_dict()
    x = torch.rand(1, 3, 4, 4)
    assert torch.allclose(add(sub(x)), x)
    assert torch.allclose(sub(x)[:, 0], x[:, 0] - common.DIV2K_RGB_MEAN[0])


def test_res_block_scaling():
    block = common.ResBlock(4, res_scale=0.0)
    x = torch.rand(1, 4, 6, 6)
    assert torch.equal(block(x), x)  # a zero-scaled residual is the identity


def test_learned_upscaler_starts_as_bicubic():
    from srlib.degrade import upscale_bicubic

    net = srlib.create_model("learned_upscaler_tiny", scale=4)
    lr = torch.rand(1, 3, 10, 12)
    assert torch.allclose(net(lr), upscale_bicubic(lr, 4), atol=1e-6)


def test_learned_upscaler_gradients_reach_every_parameter():
    net = srlib.create_model("learned_upscaler_tiny", scale=2)
    torch.nn.init.normal_(net.tail.weight, std=0.01)  # from the zero init, only the tail would get gradients
    net(torch.rand(2, 3, 8, 8)).square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_count_parameters_and_flops():
    net = srlib.create_model("learned_upscaler_tiny", scale=2)
    # head 3->16, 2 body convs 16->16, tail 16->12 (3x3 kernels with biases)
    expected = (3 * 16 * 9 + 16) + 2 * (16 * 16 * 9 + 16) + (16 * 12 * 9 + 12)
    assert srlib.count_parameters(net) == expected
    assert common.count_flops(net, torch.rand(1, 3, 8, 8)) > 2 * expected * 64 * 0.9
