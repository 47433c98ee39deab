"""Modulated deformable convolution (DCNv2) in plain torch: bilinear sampling, then the weighted sum.

Papers: J. Dai et al., "Deformable Convolutional Networks", ICCV 2017 [dai2017dcn] (learned offsets);
X. Zhu, H. Hu, S. Lin, J. Dai, "Deformable ConvNets v2: More Deformable, Better Results", CVPR 2019
[zhu2019dcnv2] (a modulation scalar per sampling point). Reference implementations: the CUDA kernels
of msracver/Deformable-ConvNets, mmcv ``ops/modulated_deform_conv.py`` and torchvision
``ops.deform_conv2d``; this file follows torchvision's argument and offset layout so tensors and
weights carry over, but torchvision's compiled op is not used (it is not available here).

A k x k convolution reads the input on a regular grid around each output pixel ``p``:
``p_k`` for k = 1..K (K = kh * kw, dilated). The deformable version moves every tap by a learned,
fractional offset and scales it by a learned mask (DCNv2, Eq. 3)::

    y(p) = sum_k  w_k * m_k(p) * x(p + p_k + dp_k(p))

``x`` at a fractional position is bilinear interpolation of its four neighbours, with zeros outside
the image (zero padding, as every reference implementation). Offsets and masks are per output pixel
and per *offset group* (a slice of the input channels that shares one set of sampling points).

Layouts (torchvision's, also mmcv's):

* ``offset``: (N, 2 * offset_groups * kh * kw, H_out, W_out); channel ``2 * (g * K + k)`` is the
  vertical offset dy and ``2 * (g * K + k) + 1`` the horizontal dx of tap ``k = i * kw + j`` (row-major
  over the kernel) in offset group ``g``, in input pixels.
* ``mask``: (N, offset_groups * kh * kw, H_out, W_out); channel ``g * K + k``. ``None`` means all
  ones (DCNv1). DCNv2 produces it with a sigmoid, so it lies in (0, 1); any real value works here.

Why a loop over the K kernel taps: sampling every tap at once (im2col) builds an (N, C * K, L) column
tensor (L = H_out * W_out) and, during the bilinear step, the (N, C, 4 * K * L) neighbour values; one
tap at a time, those pieces are K times smaller, so inference on a whole image peaks several times
lower (``scripts/bench_deform_conv.py`` measures both against ``conv2d``: ~6x less at 2x64x48x48).
With autograd the tensors saved for the backward pass are of the same order either way. The
sampling positions and bilinear weights of all taps (no channel dimension, so small) are computed
at once; the loop has K = 9 iterations of vectorised gathers and matmuls, never a loop over pixels.

Mixed precision: under ``torch.autocast`` the op runs in float32 (bfloat16 cannot tell pixel 200 from
200.5, so sampling positions in it would be off by a pixel); outside autocast all tensors must share
the input's dtype and device.

Blocks in this file: :func:`sampling_positions` (where each tap samples) -> :func:`bilinear_weights`,
:func:`gather_bilinear`, :func:`bilinear_sample` -> :func:`deform_conv2d` -> :class:`ModulatedDeformConv2d`
(offsets and masks from the caller) -> :class:`OffsetMask` (the zero-initialised conv that predicts
them) -> :class:`DeformConvPack` (a deformable conv that predicts its own offsets and masks).
"""
from __future__ import annotations

import torch
from torch import nn


def _pair(value, name: str, minimum: int) -> tuple[int, int]:
    """``value`` as an (h, w) pair of ints >= ``minimum``; anything else raises ValueError."""
    pair = (value, value) if isinstance(value, int) else tuple(value) if isinstance(value, (tuple, list)) else None
    if pair is None or len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum
                                                 for v in pair):
        raise ValueError(f"{name} must be an int >= {minimum} or a pair (h, w) of them, got {value!r}")
    return pair


def deform_output_size(height: int, width: int, kernel_size, stride=1, padding=0, dilation=1) -> tuple[int, int]:
    """(H_out, W_out) of a (deformable) convolution, the same formula as ``nn.Conv2d``.

    Example:
        >>> deform_output_size(12, 11, 3, stride=2, padding=1)
        (6, 6)
    """
    (kh, kw), (sh, sw) = _pair(kernel_size, "kernel_size", 1), _pair(stride, "stride", 1)
    (ph, pw), (dh, dw) = _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    return (height + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1


def sampling_positions(offset: torch.Tensor, kernel_size, stride=1, padding=0, dilation=1
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Where every tap of every output pixel samples the input: ``p + p_k + dp_k``, in input pixels.

    ``p + p_k`` is the regular grid of a plain convolution (output pixel ``p`` times the stride, minus
    the padding, plus the dilated tap ``p_k``); ``dp_k`` is the offset. This is also what the
    sampling-point figures draw.

    Args:
        offset: (N, 2 * G * kh * kw, H_out, W_out) in the layout of the module docstring (G offset groups).
        kernel_size, stride, padding, dilation: the convolution's (ints or pairs).

    Returns:
        ``(rows, cols)``, each (N, G, kh * kw, H_out, W_out), taps row-major.

    Example:
        >>> rows, cols = sampling_positions(torch.zeros(1, 18, 4, 4), 3, padding=1)
        >>> rows[0, 0, :, 2, 2].tolist(), cols[0, 0, :, 2, 2].tolist()     # the 3x3 grid around (2, 2)
        ([1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0], [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0])
    """
    (kh, kw), (sh, sw) = _pair(kernel_size, "kernel_size", 1), _pair(stride, "stride", 1)
    (ph, pw), (dh, dw) = _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    n, channels, h_out, w_out = offset.shape
    taps = kh * kw
    if channels % (2 * taps):
        raise ValueError(f"offset has {channels} channels, not a multiple of 2 * kh * kw = {2 * taps}")
    offset = offset.reshape(n, channels // (2 * taps), taps, 2, h_out, w_out)  # (N, G, K, (dy, dx), H_out, W_out)

    def arange(size: int) -> torch.Tensor:
        return torch.arange(size, device=offset.device, dtype=offset.dtype)

    grid_rows = (arange(h_out) * sh - ph).view(1, h_out, 1) + (arange(kh) * dh).repeat_interleave(kw).view(taps, 1, 1)
    grid_cols = (arange(w_out) * sw - pw).view(1, 1, w_out) + (arange(kw) * dw).repeat(kh).view(taps, 1, 1)
    return grid_rows + offset[:, :, :, 0], grid_cols + offset[:, :, :, 1]  # (K, H_out, 1) + (N, G, K, H_out, W_out)


def bilinear_weights(py: torch.Tensor, px: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The four neighbours of fractional positions and their bilinear weights, zero padding.

    Position (py, px) reads (y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1), y0 = floor(py),
    with weights (1 - ly)(1 - lx), (1 - ly) lx, ly (1 - lx), ly lx (ly = py - y0, lx = px - x0). A
    neighbour outside the image weighs 0 (zero padding), so a position a whole pixel or more outside
    reads exactly 0. The weights are differentiable in the positions (almost everywhere: the
    derivative jumps where a position crosses an integer).

    Args:
        py, px: (..., L) row and column positions in pixels (0 = centre of the first row/column).
        height, width: the image size.

    Returns:
        ``(index, weight)``, both (..., 4, L): flat pixel indices ``row * width + col`` (clamped to a
        valid pixel; those outside have weight 0) and the weights.
    """
    y0, x0 = py.floor(), px.floor()
    ly, lx = (py - y0).unsqueeze(-2), (px - x0).unsqueeze(-2)  # (..., 1, L); d(ly)/d(py) = 1
    step = torch.tensor([0, 0, 1, 1], device=py.device)[:, None]  # (4, 1): the neighbours' row step
    rows = y0.long().unsqueeze(-2) + step  # (..., 4, L)
    cols = x0.long().unsqueeze(-2) + torch.tensor([0, 1, 0, 1], device=px.device)[:, None]
    weight = torch.cat([1 - ly, 1 - ly, ly, ly], -2) * torch.cat([1 - lx, lx, 1 - lx, lx], -2)  # (..., 4, L)
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    index = rows.clamp(0, height - 1) * width + cols.clamp(0, width - 1)
    return index, weight * inside


def gather_bilinear(flat: torch.Tensor, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted sum of four gathered neighbours: (B, C, H*W), (B, 4, L), (B, 4, L) -> (B, C, L)."""
    b, c, _ = flat.shape
    value = flat.gather(2, index.reshape(b, 1, -1).expand(b, c, -1))  # (B, C, 4*L)
    return (value.view(b, c, 4, -1) * weight.unsqueeze(1)).sum(2)  # (B, C, 4, L) -> (B, C, L)


def bilinear_sample(x: torch.Tensor, py: torch.Tensor, px: torch.Tensor,
                    scale: torch.Tensor | None = None) -> torch.Tensor:
    """Sample feature maps at fractional pixel positions by bilinear interpolation, zero outside.

    Args:
        x: (B, C, H, W) feature maps.
        py, px: (B, L) row and column positions in pixels, same dtype as ``x``
            (see :func:`bilinear_weights`).
        scale: optional (B, L) factor applied to each sample (the DCNv2 mask), folded into the four
            interpolation weights so it costs no C-sized multiply.

    Returns:
        (B, C, L) the sampled values.

    Example:
        >>> x = torch.arange(4.0).view(1, 1, 2, 2)          # [[0, 1], [2, 3]]
        >>> bilinear_sample(x, torch.tensor([[0.5, 0.0]]), torch.tensor([[0.5, 1.5]]))
        tensor([[[1.5000, 0.5000]]])
    """
    b, c, h, w = x.shape
    index, weight = bilinear_weights(py, px, h, w)  # (B, 4, L) each
    if scale is not None:
        weight = weight * scale.unsqueeze(1)
    return gather_bilinear(x.reshape(b, c, h * w), index, weight)


def deform_conv2d(input: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  mask: torch.Tensor | None = None, stride=1, padding=0, dilation=1, groups: int = 1,
                  offset_groups: int = 1) -> torch.Tensor:
    """Modulated deformable 2-D convolution (DCNv2, Eq. 3), torchvision's conventions, plain torch.

    With zero offsets and unit masks (or ``mask=None``) it is exactly ``F.conv2d(input, weight, bias,
    stride, padding, dilation, groups)``.

    Args:
        input: (N, C_in, H, W) features.
        offset: (N, 2 * offset_groups * kh * kw, H_out, W_out), (dy, dx) in pixels per tap, taps
            row-major, groups outermost (see the module docstring).
        weight: (C_out, C_in / groups, kh, kw), as ``nn.Conv2d.weight``.
        bias: (C_out,) or None.
        mask: (N, offset_groups * kh * kw, H_out, W_out) modulation scalars, or None for all ones (DCNv1).
        stride, padding, dilation: ints or (h, w) pairs, as ``F.conv2d`` (zero padding).
        groups: convolution groups (``C_in`` and ``C_out`` divisible by it).
        offset_groups: input-channel groups with their own offsets and masks (``C_in`` divisible by it).

    Returns:
        (N, C_out, H_out, W_out).

    Example:
        >>> import torch.nn.functional as F
        >>> x, w = torch.rand(1, 4, 6, 6), torch.rand(8, 4, 3, 3)
        >>> offset = torch.zeros(1, 18, 6, 6)                  # 2 * 3 * 3 channels, output size 6x6
        >>> torch.allclose(deform_conv2d(x, offset, w, padding=1), F.conv2d(x, w, padding=1), atol=1e-5)
        True
    """
    (sh, sw), (ph, pw) = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    dh, dw = _pair(dilation, "dilation", 1)
    if input.dim() != 4:
        raise ValueError(f"input must be (N, C_in, H, W), got shape {tuple(input.shape)}")
    if weight.dim() != 4:
        raise ValueError(f"weight must be (C_out, C_in / groups, kh, kw), got shape {tuple(weight.shape)}")
    n, c_in, h, w = input.shape
    c_out, c_group, kh, kw = weight.shape
    for name, value in (("groups", groups), ("offset_groups", offset_groups)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups={groups} must divide C_in={c_in} and C_out={c_out}")
    if c_group * groups != c_in:
        raise ValueError(f"weight {tuple(weight.shape)} does not fit C_in={c_in} with groups={groups}: "
                         f"expected ({c_out}, {c_in // groups}, kh, kw)")
    if c_in % offset_groups:
        raise ValueError(f"offset_groups={offset_groups} must divide C_in={c_in}")
    h_out, w_out = deform_output_size(h, w, (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    if h_out < 1 or w_out < 1:
        raise ValueError(f"input {h}x{w} is too small for a {kh}x{kw} kernel with padding {(ph, pw)} and "
                         f"dilation {(dh, dw)}: the output would be {h_out}x{w_out}")
    taps = kh * kw
    expected = (n, 2 * offset_groups * taps, h_out, w_out)
    if tuple(offset.shape) != expected:
        raise ValueError(f"offset must have shape (N, 2 * offset_groups * kh * kw, H_out, W_out) = {expected}, "
                         f"got {tuple(offset.shape)}")
    if mask is not None and tuple(mask.shape) != (n, offset_groups * taps, h_out, w_out):
        raise ValueError(f"mask must have shape (N, offset_groups * kh * kw, H_out, W_out) = "
                         f"{(n, offset_groups * taps, h_out, w_out)}, got {tuple(mask.shape)}")
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise ValueError(f"bias must have shape ({c_out},), got {tuple(bias.shape)}")
    if torch.is_autocast_enabled(input.device.type):  # positions need float32 (module docstring)
        input, offset, weight = input.float(), offset.float(), weight.float()
        mask, bias = (None if t is None else t.float() for t in (mask, bias))
    for name, t in (("offset", offset), ("weight", weight), ("mask", mask), ("bias", bias)):
        if t is not None and (t.dtype != input.dtype or t.device != input.device):
            raise ValueError(f"{name} is {t.dtype} on {t.device} but input is {input.dtype} on {input.device}; "
                             f"convert it with .to(input)")
    if not input.is_floating_point():
        raise ValueError(f"input must be a floating tensor, got {input.dtype}")

    length = h_out * w_out
    bo = n * offset_groups  # offset groups folded into the batch: each has its own sampling points
    flat = input.reshape(bo, c_in // offset_groups, h * w)  # (N*G_off, C_in/G_off, H*W)
    # p + p_k + dp_k for every tap, and the four neighbours each reads there: (N*G_off, K, 4, L)
    rows, cols = sampling_positions(offset, (kh, kw), (sh, sw), (ph, pw), (dh, dw))  # (N, G_off, K, H_out, W_out)
    index, corner = bilinear_weights(rows.reshape(bo, taps, length), cols.reshape(bo, taps, length), h, w)
    if mask is not None:
        corner = corner * mask.reshape(bo, taps, 1, length)  # m_k folded into the bilinear weights
    weight = weight.reshape(groups, c_out // groups, c_group, taps)  # (G, C_out/G, C_in/G, K)
    out = None
    for k in range(taps):  # one tap at a time (see the module docstring); all pixels at once
        sampled = gather_bilinear(flat, index[:, k], corner[:, k])  # (N*G_off, C_in/G_off, L)
        sampled = sampled.reshape(n, groups, c_group, length)  # (N, G, C_in/G, L)
        term = torch.matmul(weight[..., k], sampled)  # (G, C_out/G, C_in/G) @ (N, G, C_in/G, L) -> (N, G, C_out/G, L)
        out = term if out is None else out + term
    out = out.reshape(n, c_out, h_out, w_out)
    return out if bias is None else out + bias.view(1, c_out, 1, 1)


class ModulatedDeformConv2d(nn.Conv2d):
    """A deformable convolution whose offsets and masks come from the caller.

    An ``nn.Conv2d`` (same ``weight``, ``bias``, initialisation and geometry attributes) whose
    forward samples the input where ``offset`` says, modulated by ``mask``
    (:func:`deform_conv2d`).

    Args:
        in_ch, out_ch: channels.
        kernel_size: int or (kh, kw).
        stride, padding, dilation: ints or pairs, as ``nn.Conv2d`` (zero padding only). Default: 1, 0, 1.
        groups: convolution groups. Default: 1.
        offset_groups: input-channel groups with their own offsets and masks. Default: 1.
        bias: learn a bias. Default: True.

    ``forward(x, offset, mask=None)``: x (N, in_ch, H, W), offset (N, 2 * offset_groups * kh * kw,
    H_out, W_out), mask (N, offset_groups * kh * kw, H_out, W_out) or None -> (N, out_ch, H_out, W_out).

    Example:
        >>> conv = ModulatedDeformConv2d(4, 8, 3, padding=1)
        >>> x = torch.rand(2, 4, 5, 5)
        >>> offset, mask = torch.randn(2, 18, 5, 5), torch.rand(2, 9, 5, 5)
        >>> conv(x, offset, mask).shape
        torch.Size([2, 8, 5, 5])
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size, stride=1, padding=0, dilation=1, groups: int = 1,
                 offset_groups: int = 1, bias: bool = True):
        # validated here: nn.Conv2d would also accept padding='same' and other padding modes
        stride, padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
        kernel_size, dilation = _pair(kernel_size, "kernel_size", 1), _pair(dilation, "dilation", 1)
        if not isinstance(offset_groups, int) or offset_groups < 1 or in_ch % offset_groups:
            raise ValueError(f"offset_groups must be a positive int dividing in_ch={in_ch}, got {offset_groups!r}")
        super().__init__(in_ch, out_ch, kernel_size, stride, padding, dilation, groups, bias)
        self.offset_groups = offset_groups

    def forward(self, x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return deform_conv2d(x, offset, self.weight, self.bias, mask, self.stride, self.padding, self.dilation,
                             self.groups, self.offset_groups)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", offset_groups={self.offset_groups}"


class OffsetMask(nn.Module):
    """The conv that predicts a deformable conv's offsets and masks, zero-initialised.

    One conv with the geometry of the deformable conv it feeds (so its output has that conv's
    H_out x W_out) predicts ``3 * offset_groups * K`` channels: the first ``2 * offset_groups * K``
    are the offsets, the rest go through a sigmoid to give masks in (0, 1) (DCNv2, Sec. 2.2). Its
    weights and bias start at zero, so at initialisation the offsets are 0 (the regular grid) and the
    masks 0.5 (DCNv2's initial modulation). As its own module, a forward hook on it collects
    ``(offset, mask)`` for figures without touching any ``forward``.

    Args:
        in_ch: channels of the features the offsets are predicted from.
        kernel_size, stride, padding, dilation: those of the deformable conv fed.
        offset_groups: offset groups of the deformable conv fed. Default: 1.
        modulated: predict masks (DCNv2); False predicts offsets only and returns ``mask=None``
            (DCNv1). Default: True.

    ``forward(feat)`` -> ``(offset (N, 2 * offset_groups * K, H_out, W_out), mask (N, offset_groups * K,
    H_out, W_out) or None)``.
    """

    def __init__(self, in_ch: int, kernel_size, stride=1, padding=0, dilation=1, offset_groups: int = 1,
                 modulated: bool = True):
        super().__init__()
        kh, kw = _pair(kernel_size, "kernel_size", 1)
        self.num_offset = 2 * offset_groups * kh * kw
        self.modulated = modulated
        out_ch = self.num_offset + (offset_groups * kh * kw if modulated else 0)
        self.conv = nn.Conv2d(in_ch, out_ch, (kh, kw), _pair(stride, "stride", 1), _pair(padding, "padding", 0),
                              _pair(dilation, "dilation", 1))
        nn.init.zeros_(self.conv.weight)  # start on the regular grid: the deformable conv begins as a plain conv
        nn.init.zeros_(self.conv.bias)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.conv(feat)  # (N, 3 * G_off * K, H_out, W_out): offsets then mask logits
        offset = out[:, :self.num_offset]
        return offset, (torch.sigmoid(out[:, self.num_offset:]) if self.modulated else None)


class DeformConvPack(ModulatedDeformConv2d):
    """A deformable convolution that predicts its own offsets and masks from its input (mmcv's "pack").

    ``y = deform_conv2d(x, *offset_mask(x), weight, bias)``: the :class:`OffsetMask` conv sees the
    same input with the same geometry. It starts zero, so the layer starts as a plain convolution on
    the regular grid; with ``modulated=True`` every tap is then weighted by sigmoid(0) = 0.5, i.e. it
    is exactly ``F.conv2d(x, weight / 2, bias)`` (DCNv2's initial state); with ``modulated=False``
    (DCNv1) exactly ``F.conv2d(x, weight, bias)``.

    Args:
        as :class:`ModulatedDeformConv2d`, plus ``modulated``: predict masks (DCNv2). Default: True.

    Example:
        >>> import torch.nn.functional as F
        >>> conv = DeformConvPack(4, 8, 3, padding=1, modulated=False)
        >>> x = torch.rand(1, 4, 6, 6)
        >>> torch.allclose(conv(x), F.conv2d(x, conv.weight, conv.bias, padding=1), atol=1e-5)
        True
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size, stride=1, padding=0, dilation=1, groups: int = 1,
                 offset_groups: int = 1, bias: bool = True, modulated: bool = True):
        super().__init__(in_ch, out_ch, kernel_size, stride, padding, dilation, groups, offset_groups, bias)
        self.offset_mask = OffsetMask(in_ch, self.kernel_size, self.stride, self.padding, self.dilation,
                                      offset_groups, modulated)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        offset, mask = self.offset_mask(x)
        return super().forward(x, offset, mask)
