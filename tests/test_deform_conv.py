"""Deformable convolution from scratch (srlib.models.deform_conv), checked against independent references.

* zero offsets and unit masks give ``F.conv2d`` (stride, padding, dilation, groups, offset groups);
* integer offsets give a convolution of the shifted input; a constant mask scales the output;
* fractional offsets agree with a naive per-pixel loop written from the DCNv2 equation with scalar
  arithmetic (no shared code), on small inputs, including samples that fall outside the image;
* ``gradcheck`` in float64 for the input, offsets, mask, weight and bias;
* clear errors naming the expected shapes; the "pack" modules start as plain convs.
Every tensor is tiny, so the whole file takes a few seconds on one core.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from srlib.models.deform_conv import (DeformConvPack, ModulatedDeformConv2d, OffsetMask, bilinear_sample,
                                      deform_conv2d, deform_output_size)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def rand(*shape, seed=0, dtype=torch.float64):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def fractional_offsets(shape, seed=0, spread=2):
    """Offsets with an integer part in [-spread, spread] and a fractional part in [0.2, 0.8].

    Away from integers, so the bilinear interpolation is smooth there (gradcheck needs it), and
    large enough that some samples land outside a 5x5 image.
    """
    g = torch.Generator().manual_seed(seed)
    whole = torch.randint(-spread, spread + 1, shape, generator=g).double()
    return whole + 0.2 + 0.6 * torch.rand(shape, generator=g, dtype=torch.float64)


# ------------------------------------------------------------------------- independent references

def naive_deform_conv2d(x, offset, weight, bias=None, mask=None, stride=(1, 1), padding=(0, 0),
                        dilation=(1, 1), groups=1, offset_groups=1):
    """DCNv2 Eq. 3 pixel by pixel, with Python floats: y(p) = sum_k w_k m_k x(p + p_k + dp_k)."""
    n, c_in, h, w = x.shape
    c_out, c_group, kh, kw = weight.shape
    h_out, w_out = offset.shape[-2:]
    taps = kh * kw
    xs, offs, ws = x.tolist(), offset.tolist(), weight.tolist()
    masks = mask.tolist() if mask is not None else None

    def pixel(b, c, row, col):
        return xs[b][c][row][col] if 0 <= row < h and 0 <= col < w else 0.0  # zero padding

    def bilinear(b, c, py, px):
        r0, c0 = math.floor(py), math.floor(px)
        fy, fx = py - r0, px - c0
        return ((1 - fy) * (1 - fx) * pixel(b, c, r0, c0) + (1 - fy) * fx * pixel(b, c, r0, c0 + 1)
                + fy * (1 - fx) * pixel(b, c, r0 + 1, c0) + fy * fx * pixel(b, c, r0 + 1, c0 + 1))

    out = torch.zeros(n, c_out, h_out, w_out, dtype=x.dtype)
    for b in range(n):
        for o in range(c_out):
            group = o // (c_out // groups)
            for oy in range(h_out):
                for ox in range(w_out):
                    acc = float(bias[o]) if bias is not None else 0.0
                    for ci in range(c_group):
                        c = group * c_group + ci
                        og = c // (c_in // offset_groups)  # this channel's offset group
                        for i in range(kh):
                            for j in range(kw):
                                k = og * taps + i * kw + j
                                py = oy * stride[0] - padding[0] + i * dilation[0] + offs[b][2 * k][oy][ox]
                                px = ox * stride[1] - padding[1] + j * dilation[1] + offs[b][2 * k + 1][oy][ox]
                                m = masks[b][k][oy][ox] if masks is not None else 1.0
                                acc += ws[o][ci][i][j] * m * bilinear(b, c, py, px)
                    out[b, o, oy, ox] = acc
    return out


def zeros_offset(x, weight, offset_groups=1, **geometry):
    h_out, w_out = deform_output_size(*x.shape[-2:], weight.shape[-2:], **geometry)
    taps = weight.shape[-2] * weight.shape[-1]
    return torch.zeros(x.shape[0], 2 * offset_groups * taps, h_out, w_out, dtype=x.dtype, device=x.device)


# -------------------------------------------------------------------------------- equal to conv2d

GEOMETRIES = [  # (kernel, stride, padding, dilation, groups, offset_groups)
    (3, 1, 1, 1, 1, 1),
    (3, 2, 1, 1, 1, 1),
    (3, 1, 2, 2, 1, 1),
    (3, 1, 0, 1, 2, 1),
    (3, 1, 1, 1, 2, 4),
    ((3, 2), (2, 1), (1, 0), (1, 2), 1, 2),
    (1, 1, 0, 1, 4, 1),
    (5, 1, 2, 1, 1, 2),
]


@pytest.mark.parametrize("kernel,stride,padding,dilation,groups,offset_groups", GEOMETRIES)
def test_zero_offsets_and_unit_masks_equal_conv2d(kernel, stride, padding, dilation, groups, offset_groups):
    x = rand(2, 4, 9, 8, seed=1)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    weight, bias = rand(8, 4 // groups, kh, kw, seed=2) - 0.5, rand(8, seed=3)
    geometry = dict(stride=stride, padding=padding, dilation=dilation)
    expected = F.conv2d(x, weight, bias, groups=groups, **geometry)
    offset = zeros_offset(x, weight, offset_groups, **geometry)
    unit = torch.ones(offset.shape[0], offset.shape[1] // 2, *offset.shape[-2:], dtype=x.dtype)
    for mask in (None, unit):
        out = deform_conv2d(x, offset, weight, bias, mask, groups=groups, offset_groups=offset_groups, **geometry)
        assert out.shape == expected.shape
        assert torch.allclose(out, expected, atol=1e-12), (out - expected).abs().max()


def test_constant_mask_scales_the_convolution():
    x, weight, bias = rand(1, 3, 6, 6, seed=4), rand(5, 3, 3, 3, seed=5), rand(5, seed=6)
    offset = zeros_offset(x, weight, padding=1)
    mask = torch.full((1, 9, 6, 6), 0.3, dtype=x.dtype)
    out = deform_conv2d(x, offset, weight, bias, mask, padding=1)
    assert torch.allclose(out, 0.3 * F.conv2d(x, weight, padding=1) + bias.view(1, -1, 1, 1), atol=1e-12)
    off = deform_conv2d(x, offset, weight, bias, torch.zeros_like(mask), padding=1)
    assert torch.allclose(off, bias.view(1, -1, 1, 1).expand_as(off))  # a zero mask silences every tap


@pytest.mark.parametrize("shift,stride,dilation", [((1, -2), 1, 1), ((-3, 2), 2, 2), ((0, 4), 1, 1)])
def test_integer_offsets_equal_a_shifted_convolution(shift, stride, dilation):
    # Moving every tap by the same integer (dy, dx) reads x(p + p_k + (dy, dx)): the convolution of the
    # input translated by (-dy, -dx), zero outside. Built on a canvas padded wide enough for any shift.
    dy, dx = shift
    x, weight = rand(2, 3, 8, 7, seed=7), rand(4, 3, 3, 3, seed=8)
    pad, margin = 1, 5
    geometry = dict(stride=stride, padding=pad, dilation=dilation)
    offset = zeros_offset(x, weight, **geometry)
    offset[:, 0::2], offset[:, 1::2] = float(dy), float(dx)
    out = deform_conv2d(x, offset, weight, **geometry)
    canvas = F.pad(x, (pad + margin,) * 4)  # zeros around the image
    h, w = x.shape[-2:]
    shifted = canvas[..., margin + dy: margin + dy + h + 2 * pad, margin + dx: margin + dx + w + 2 * pad]
    expected = F.conv2d(shifted, weight, stride=stride, dilation=dilation)
    assert out.shape == expected.shape
    assert torch.allclose(out, expected, atol=1e-12)
    assert not torch.allclose(out, F.conv2d(x, weight, **geometry))  # the shift did move something


# ---------------------------------------------------------------------------- fractional offsets

@pytest.mark.parametrize("stride,padding,dilation,groups,offset_groups", [
    ((1, 1), (1, 1), (1, 1), 1, 1),
    ((1, 1), (1, 1), (1, 1), 2, 2),
    ((2, 1), (1, 2), (2, 1), 1, 2),
])
def test_fractional_offsets_match_a_naive_per_pixel_loop(stride, padding, dilation, groups, offset_groups):
    x = rand(2, 4, 5, 6, seed=9)
    weight, bias = rand(4, 4 // groups, 3, 3, seed=10) - 0.5, rand(4, seed=11)
    h_out, w_out = deform_output_size(5, 6, 3, stride, padding, dilation)
    offset = fractional_offsets((2, 2 * offset_groups * 9, h_out, w_out), seed=12)
    mask = rand(2, offset_groups * 9, h_out, w_out, seed=13)
    geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, offset_groups=offset_groups)
    out = deform_conv2d(x, offset, weight, bias, mask, **geometry)
    expected = naive_deform_conv2d(x, offset, weight, bias, mask, **geometry)
    assert torch.allclose(out, expected, atol=1e-12), (out - expected).abs().max()
    # the offsets sent samples beyond the border: those read zeros, which the reference also does
    without = naive_deform_conv2d(x, offset, weight, bias, None, **geometry)
    assert torch.allclose(deform_conv2d(x, offset, weight, bias, None, **geometry), without, atol=1e-12)


def test_bilinear_sample_zero_outside_and_exact_on_pixels():
    x = rand(1, 2, 4, 5, seed=14)
    rows = torch.tensor([[0.0, 3.0, 1.0, -1.0, 4.0, -0.5]], dtype=x.dtype)
    cols = torch.tensor([[0.0, 4.0, 2.0, 2.0, 0.0, 0.0]], dtype=x.dtype)
    out = bilinear_sample(x, rows, cols)  # (1, 2, 6)
    assert torch.equal(out[0, :, 0], x[0, :, 0, 0]) and torch.equal(out[0, :, 1], x[0, :, 3, 4])
    assert torch.equal(out[0, :, 2], x[0, :, 1, 2])
    assert torch.all(out[0, :, 3:5] == 0)  # a whole pixel outside: zero
    assert torch.allclose(out[0, :, 5], 0.5 * x[0, :, 0, 0])  # half a pixel outside: half the border value


# -------------------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("groups,offset_groups,fast", [(1, 1, False), (2, 2, False), (1, 2, True)])
def test_gradcheck_input_offset_mask_weight_bias(groups, offset_groups, fast):
    # 3x3 images keep the full (element by element) check to a few seconds; the fast mode (random
    # projections of the Jacobian) covers a larger case with stride and dilation.
    size, geometry = (3, dict(padding=1)) if not fast else (6, dict(stride=2, padding=2, dilation=2))
    x = rand(1, 2, size, size, seed=15).requires_grad_()
    weight = (rand(2, 2 // groups, 3, 3, seed=16) - 0.5).requires_grad_()
    bias = rand(2, seed=17).requires_grad_()
    h_out, w_out = deform_output_size(size, size, 3, **geometry)
    offset = fractional_offsets((1, 2 * offset_groups * 9, h_out, w_out), seed=18, spread=1).requires_grad_()
    mask = rand(1, offset_groups * 9, h_out, w_out, seed=19).requires_grad_()

    def fn(x, offset, mask, weight, bias):
        return deform_conv2d(x, offset, weight, bias, mask, groups=groups, offset_groups=offset_groups, **geometry)

    assert torch.autograd.gradcheck(fn, (x, offset, mask, weight, bias), eps=1e-6, atol=1e-7, fast_mode=fast)


def test_offset_gradient_points_toward_a_brighter_pixel():
    # one bright pixel right of centre: a small positive dx of the centre tap must raise the output
    x = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    x[0, 0, 1, 2] = 1.0
    weight = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    weight[0, 0, 1, 1] = 1.0  # only the centre tap
    offset = torch.zeros(1, 18, 1, 1, dtype=torch.float64, requires_grad=True)
    deform_conv2d(x, offset, weight).sum().backward()
    assert offset.grad[0, 2 * 4 + 1].item() == pytest.approx(1.0)  # d/d(dx) of the centre tap (k = 4)
    assert offset.grad[0, 2 * 4].item() == pytest.approx(0.0)  # the row direction sees nothing


# ----------------------------------------------------------------------------------------- errors

def test_clear_errors_name_the_expected_shapes():
    x, weight = torch.rand(2, 4, 6, 6), torch.rand(8, 4, 3, 3)
    good = torch.zeros(2, 18, 6, 6)
    with pytest.raises(ValueError, match=r"offset must have shape .* = \(2, 18, 6, 6\), got \(2, 9, 6, 6\)"):
        deform_conv2d(x, torch.zeros(2, 9, 6, 6), weight, padding=1)
    with pytest.raises(ValueError, match=r"offset .* = \(2, 18, 4, 4\), got \(2, 18, 6, 6\)"):
        deform_conv2d(x, good, weight, padding=0)  # the output is 4x4 without padding
    with pytest.raises(ValueError, match=r"offset .* = \(2, 36, 6, 6\)"):
        deform_conv2d(x, good, weight, padding=1, offset_groups=2)
    with pytest.raises(ValueError, match=r"mask must have shape .* = \(2, 9, 6, 6\), got \(2, 18, 6, 6\)"):
        deform_conv2d(x, good, weight, mask=torch.ones(2, 18, 6, 6), padding=1)
    with pytest.raises(ValueError, match=r"expected \(8, 2, kh, kw\)"):
        deform_conv2d(x, good, weight, padding=1, groups=2)
    with pytest.raises(ValueError, match="offset_groups=3 must divide C_in=4"):
        deform_conv2d(x, torch.zeros(2, 54, 6, 6), weight, padding=1, offset_groups=3)
    with pytest.raises(ValueError, match=r"bias must have shape \(8,\)"):
        deform_conv2d(x, good, weight, torch.zeros(4), padding=1)
    with pytest.raises(ValueError, match="stride must be an int >= 1"):
        deform_conv2d(x, good, weight, padding=1, stride=0)
    with pytest.raises(ValueError, match="padding must be an int >= 0"):
        deform_conv2d(x, good, weight, padding="same")
    with pytest.raises(ValueError, match="too small"):
        deform_conv2d(torch.rand(1, 4, 2, 2), torch.zeros(1, 18, 1, 1), weight)
    with pytest.raises(ValueError, match=r"input must be \(N, C_in, H, W\)"):
        deform_conv2d(x[0], good, weight, padding=1)
    with pytest.raises(ValueError, match=r"offset is torch.float64 .* \.to\(input\)"):
        deform_conv2d(x, good.double(), weight, padding=1)
    with pytest.raises(ValueError, match="padding must be"):
        ModulatedDeformConv2d(4, 8, 3, padding="same")
    with pytest.raises(ValueError, match="offset_groups must be a positive int dividing in_ch=4"):
        ModulatedDeformConv2d(4, 8, 3, offset_groups=3)


# ---------------------------------------------------------------------------------------- modules

def test_modules_start_as_plain_convolutions():
    torch.manual_seed(0)
    x = torch.rand(2, 4, 7, 6)
    dcn1 = DeformConvPack(4, 6, 3, stride=2, padding=1, modulated=False)
    assert torch.allclose(dcn1(x), F.conv2d(x, dcn1.weight, dcn1.bias, stride=2, padding=1), atol=1e-6)
    dcn2 = DeformConvPack(4, 6, 3, padding=2, dilation=2, offset_groups=2)  # DCNv2: masks start at 0.5
    assert torch.allclose(dcn2(x), F.conv2d(x, dcn2.weight / 2, dcn2.bias, padding=2, dilation=2), atol=1e-6)
    plain = ModulatedDeformConv2d(4, 6, 3, padding=1)
    assert isinstance(plain, torch.nn.Conv2d) and plain.weight.shape == (6, 4, 3, 3)
    assert "offset_groups=1" in repr(plain)


def test_pack_learns_offsets_and_a_hook_collects_them():
    torch.manual_seed(0)
    dcn = DeformConvPack(2, 2, 3, padding=1)
    x = torch.rand(1, 2, 6, 6)
    dcn(x).square().mean().backward()
    assert dcn.offset_mask.conv.weight.grad.abs().sum() > 0  # the zero conv is not stuck at zero
    seen = []
    handle = dcn.offset_mask.register_forward_hook(lambda module, args, out: seen.append(out))
    with torch.no_grad():
        dcn.offset_mask.conv.bias[:18].fill_(0.25)  # every tap moves by a quarter pixel
        dcn(x)
    handle.remove()
    offset, mask = seen[0]
    assert offset.shape == (1, 18, 6, 6) and mask.shape == (1, 9, 6, 6)
    assert torch.allclose(offset, torch.tensor(0.25)) and torch.allclose(mask, torch.tensor(0.5))
    head = OffsetMask(2, 3, padding=1, modulated=False)
    assert head(x)[1] is None and head.conv.out_channels == 18


def test_autocast_runs_the_sampling_in_float32():
    # under autocast a conv hands over bfloat16 features and offsets while the weight stays float32
    torch.manual_seed(0)
    dcn = DeformConvPack(4, 4, 3, padding=1)
    with torch.no_grad():
        dcn.offset_mask.conv.bias[:18].uniform_(-3, 3)
    x = torch.rand(1, 4, 8, 8)
    expected = dcn(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = dcn(x)
    assert torch.allclose(out.float(), expected, atol=0.05, rtol=0.05)


@pytest.mark.parametrize("device", DEVICES)
def test_devices_agree_with_the_naive_reference(device):
    x = rand(1, 2, 5, 5, seed=20, dtype=torch.float32)
    weight, mask = rand(3, 2, 3, 3, seed=21, dtype=torch.float32), rand(1, 9, 5, 5, seed=22, dtype=torch.float32)
    offset = fractional_offsets((1, 18, 5, 5), seed=23).float()
    expected = naive_deform_conv2d(x.double(), offset.double(), weight.double(), None, mask.double(), padding=(1, 1))
    out = deform_conv2d(*(t.to(device) for t in (x, offset, weight)), None, mask.to(device), padding=1)
    assert out.device.type == device
    assert torch.allclose(out.cpu().double(), expected, atol=1e-5)
