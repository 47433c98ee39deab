"""Feature-space patch matching and texture swapping, shared by SRNTT and TTSR (chapter 6).

Reference-based SR looks up, for every small patch of the input's features, the most similar patch
of a reference image's features, and copies ("swaps") the reference's *high-resolution* features of
that patch into place. SRNTT (Zhang et al., CVPR 2019 [zhang2019srntt], ZZUTK/SRNTT ``swap.py``) and
TTSR (Yang et al., CVPR 2020 [yang2020ttsr], researchmm/TTSR ``SearchTransfer.py``) do the same
three steps; this module is the one implementation both models use.

1. **Relevance** between a query patch :math:`q_i` (from the upsampled input, LR↑) and a key patch
   :math:`k_j` (from the reference blurred the same way, Ref↓↑, so that both are in the same
   frequency band): the normalised inner product of the two 3x3xC patches,

   .. math:: r_{i,j} = \\left\\langle \\frac{q_i}{\\|q_i\\|}, \\frac{k_j}{\\|k_j\\|} \\right\\rangle .

   For all query positions at once it is a **convolution of the query features with the normalised
   reference patches as kernels** (SRNTT's swapping): one output channel per reference patch.
2. **Hard attention**: the best match :math:`h_i = \\arg\\max_j r_{i,j}` (an index into the
   reference's patch grid) and its confidence :math:`s_i = \\max_j r_{i,j}` (the similarity map;
   TTSR's soft attention, SRNTT's weighting map).
3. **Swap (transfer)**: each query position receives the patch of a *value* map (reference features,
   un-blurred) at the matched position, and overlapping patches are averaged. A value map ``r``
   times finer than the key map uses patches ``r`` times larger with stride ``r`` (TTSR: 3x3 / stride
   1 at relu3_1, 6x6 / 2 at relu2_1, 12x12 / 4 at relu1_1): unfold the value map, select the patches
   by index, fold them back, divide by the overlap count.

Implementations (``method=``), with the same results:

* ``"naive"``: Python loops over query positions (and over reference patches to build them); the
  reference the tests compare with, fine for a 10x10 map, hopeless beyond.
* ``"vectorised"``: the whole correlation volume (N, L_ref, h, w) as one grouped convolution, then a
  max over it; swapping by literal ``F.unfold`` -> index selection -> ``F.fold`` (TTSR's code).
  Memory grows as (query positions) x (reference patches): about 1 GB for a 128x128 LR input
  against a 512x512 reference (16,384 x 16,384 floats at relu3_1), and the unfolded value patches
  hold 9x the output (plus 9x the whole relu1_1 map of the reference).
* ``"chunked"`` (default): the same convolution, a chunk of reference patches (kernels) at a time,
  keeping a running max/arg max: at most ``max_elements`` floats of correlations whatever the sizes,
  for the same arithmetic. Swapping goes one of the 3x3 block offsets of a patch at a time
  (:func:`matched_blocks`): a ``3r x 3r`` patch with stride ``r`` is a 3x3 grid of ``r x r`` blocks,
  so the fold is nine gathers of output-sized maps, each added at its offset; no unfolded patches
  and no ``F.fold`` buffers (``col2im`` is also slow on CPU).

``scripts/bench_texture_match.py`` measures time and peak memory of the three.

Conventions: feature maps are float tensors (N, C, H, W); a *patch grid* of a map with patch size
``k`` and zero padding ``p`` has ``(H + 2p - k + 1) x (W + 2p - k + 1)`` positions, numbered row-major
(index ``row * grid_w + col``). SRNTT matches without padding (``padding=0``, 'VALID'), TTSR with
``padding=1`` ('same' grid). Gradients: the arg max is not differentiable and is computed without
them; the returned similarity is recomputed from the two matched patches, so it carries gradients to
both feature maps (TTSR's texture extractor learns through it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "METHODS", "DEFAULT_MAX_ELEMENTS", "PatchMatch", "SwapResult", "patch_grid", "gather_patches", "match_patches",
    "matched_blocks", "patch_similarity", "overlap_count", "swap_features", "TextureSwap", "similarity_at",
    "reference_inputs",
]

METHODS = ("naive", "vectorised", "chunked")
DEFAULT_MAX_ELEMENTS = 1 << 24  # floats per chunk of the correlation volume: 64 MB in float32
EPS = 1e-12  # as F.normalize: a zero patch has similarity 0 with everything (no NaN)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def _check_features(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a feature map (N, C, H, W), got {shape}")


def patch_grid(size: Sequence[int], patch_size: int, padding: int = 0, stride: int = 1) -> tuple[int, int]:
    """Rows and columns of the patch grid of an (H, W) map (the positions ``F.unfold`` visits).

    Raises:
        ValueError: a map smaller than one patch, with the size it needs.

    Example:
        >>> patch_grid((10, 8), 3), patch_grid((10, 8), 3, padding=1), patch_grid((40, 32), 12, 4, stride=4)
        ((8, 6), (10, 8), (10, 8))
    """
    h, w = int(size[0]), int(size[1])
    rows, cols = (h + 2 * padding - patch_size) // stride + 1, (w + 2 * padding - patch_size) // stride + 1
    if h + 2 * padding < patch_size or w + 2 * padding < patch_size:
        raise ValueError(f"a {h}x{w} feature map has no {patch_size}x{patch_size} patch with padding {padding}; "
                         f"it needs at least {patch_size - 2 * padding} pixels per side (use a larger image)")
    return rows, cols


# --------------------------------------------------------------------------------- patch extraction

def gather_patches(x: Tensor, index: Tensor, patch_size: int, stride: int = 1, padding: int = 0) -> Tensor:
    """The patches of ``x`` at chosen positions of its patch grid, without unfolding all of them.

    Equal to ``F.unfold(x, patch_size, padding=padding, stride=stride).gather(2, index)`` (index
    expanded over the rows), but only the selected patches are ever built: the unfold of a whole
    512x512 relu1_1 map with 12x12 patches would hold 150 M floats.

    Args:
        x: (N, C, H, W).
        index: (N, L) int64, positions in the patch grid of ``x`` (row-major).
        patch_size, stride, padding: the grid, as ``F.unfold`` takes them.

    Returns:
        (N, C * patch_size**2, L), in ``F.unfold``'s layout (channel-major, then patch rows, columns).

    Example:
        >>> x = torch.rand(2, 3, 8, 8)
        >>> idx = torch.tensor([[0, 5, 8], [15, 1, 1]])
        >>> ref = F.unfold(x, 4, padding=2, stride=2).gather(2, idx[:, None].expand(-1, 48, -1))
        >>> torch.equal(gather_patches(x, idx, 4, stride=2, padding=2), ref)
        True
    """
    n, c, h, w = x.shape
    _, grid_w = patch_grid((h, w), patch_size, padding, stride)
    padded = F.pad(x, [padding] * 4) if padding else x
    width = w + 2 * padding
    origin = (index // grid_w) * (stride * width) + (index % grid_w) * stride  # (N, L): top-left, flat
    steps = torch.arange(patch_size, device=x.device)
    offsets = (steps[:, None] * width + steps[None, :]).flatten()  # (k*k,): inside a patch, flat
    flat = (offsets[None, :, None] + origin[:, None, :]).flatten(1)  # (N, k*k*L)
    values = padded.flatten(2).gather(2, flat[:, None, :].expand(n, c, -1))  # (N, C, k*k*L)
    return values.view(n, c * patch_size * patch_size, index.shape[1])  # (N, C*k*k, L)


# ---------------------------------------------------------------------------------------- matching

@dataclass
class PatchMatch:
    """The best reference patch of every query patch.

    Attributes:
        index: (N, h', w') int64, the matched position in the reference's patch grid (row-major).
        score: (N, h', w') the relevance (cosine similarity, in [-1, 1]) of that match; carries
            gradients to both feature maps when they have them.
        ref_grid: (rows, cols) of the reference's patch grid.
        patch_size, padding: of the query and reference grids.
    """

    index: Tensor
    score: Tensor
    ref_grid: tuple[int, int]
    patch_size: int
    padding: int

    @property
    def query_size(self) -> tuple[int, int]:
        """(h, w) of the query feature map the grid was taken from."""
        extra = self.patch_size - 1 - 2 * self.padding
        return self.index.shape[-2] + extra, self.index.shape[-1] + extra

    def similarity_map(self) -> Tensor:
        """The score at the query map's size, (N, 1, h, w).

        A 'same' grid (TTSR, ``padding=1``) already has that size. A 'VALID' grid (SRNTT) is smaller by
        ``patch_size - 1``; its border is replicated, as SRNTT pads its weight map (``np.pad(..., 'edge')``).
        """
        score = self.score[:, None]  # (N, 1, h', w')
        pad = (self.patch_size - 1) // 2 - self.padding
        return F.pad(score, [pad] * 4, mode="replicate") if pad > 0 else score


def _naive_match(query: Tensor, key: Tensor, k: int, p: int) -> tuple[Tensor, Tensor]:
    """Loops: every query patch against a list of every normalised reference patch (tests, tiny maps)."""
    qp, kp = F.pad(query, [p] * 4), F.pad(key, [p] * 4)
    (qh, qw), (kh, kw) = patch_grid(query.shape[-2:], k, p), patch_grid(key.shape[-2:], k, p)
    index = torch.zeros(query.shape[0], qh, qw, dtype=torch.long, device=query.device)
    score = torch.zeros(query.shape[0], qh, qw, dtype=query.dtype, device=query.device)
    for b in range(query.shape[0]):
        refs = torch.stack([F.normalize(kp[b, :, i:i + k, j:j + k].flatten(), dim=0, eps=EPS)
                            for i in range(kh) for j in range(kw)])  # (L_ref, C*k*k), row-major
        for i in range(qh):
            for j in range(qw):
                q = F.normalize(qp[b, :, i:i + k, j:j + k].flatten(), dim=0, eps=EPS)
                r = refs @ q  # (L_ref,): the relevance to every reference patch
                index[b, i, j] = torch.argmax(r)  # the first of equal maxima, as torch.max
                score[b, i, j] = r[index[b, i, j]]
    return index, score


def _correlate(query: Tensor, kernels: Tensor, k: int, p: int) -> Tensor:
    """Inner products of every query patch with each kernel: one grouped conv for the whole batch.

    query (N, C, h, w), kernels (N, C*k*k, L) normalised reference patches -> (N, L, h', w').
    """
    n, c, h, w = query.shape
    weight = kernels.transpose(1, 2).reshape(n * kernels.shape[2], c, k, k)  # (N*L, C, k, k)
    out = F.conv2d(query.reshape(1, n * c, h, w), weight, padding=p, groups=n)  # (1, N*L, h', w')
    return out.view(n, kernels.shape[2], out.shape[-2], out.shape[-1])


def match_patches(query: Tensor, key: Tensor, patch_size: int = 3, padding: int = 0, method: str = "chunked",
                  max_elements: int = DEFAULT_MAX_ELEMENTS) -> PatchMatch:
    """For every ``patch_size`` patch of ``query``, the most relevant patch of ``key`` (normalised inner product).

    Args:
        query: (N, C, h, w) features of the input (LR↑).
        key: (N, C, H, W) features of the reference, in the same band (Ref↓↑); any size.
        patch_size: side of the patches (SRNTT, TTSR: 3). Default: 3.
        padding: zero padding of both grids: 0 for SRNTT's 'VALID' matching, 1 for TTSR's. Default: 0.
        method: ``"naive"``, ``"vectorised"`` or ``"chunked"`` (see the module docstring). Default: chunked.
        max_elements: ``"chunked"``: floats of the correlation volume computed at once. Default: 2**24.

    Returns:
        A :class:`PatchMatch`: the arg max index and its relevance per query position. The three
        methods give the same indices (ties: the first reference patch in row-major order).

    Example:
        >>> key = torch.rand(1, 4, 6, 7)
        >>> query = key[..., 1:5, 2:7] * 3.0  # a scaled crop: each query patch exists in the key
        >>> m = match_patches(query, key)
        >>> m.index.tolist()  # grid of the key is 4x5: row 1, cols 2..4 -> 7, 8, 9; row 2 -> 12, 13, 14
        [[[7, 8, 9], [12, 13, 14]]]
        >>> bool(torch.allclose(m.score, torch.ones(1, 2, 3)))
        True
    """
    _check_method(method)
    _check_features(query, "query")
    _check_features(key, "key")
    if key.shape[0] != query.shape[0] or key.shape[1] != query.shape[1]:
        raise ValueError(f"query {tuple(query.shape)} and key {tuple(key.shape)} must have the same batch size and "
                         "channels (features of the same extractor layer)")
    k, p = patch_size, padding
    if k < 1 or not 0 <= p < k:
        raise ValueError(f"need patch_size >= 1 and 0 <= padding < patch_size, got {patch_size} and {padding}")
    ref_grid = patch_grid(key.shape[-2:], k, p)
    qh, qw = patch_grid(query.shape[-2:], k, p)
    if method == "naive":
        index, score = _naive_match(query, key, k, p)
        return PatchMatch(index, score, ref_grid, k, p)
    n, num_ref = query.shape[0], ref_grid[0] * ref_grid[1]
    with torch.no_grad():
        if method == "vectorised":  # every reference patch is a kernel, all at once
            kernels = F.normalize(F.unfold(key, k, padding=p), dim=1, eps=EPS)  # (N, C*k*k, L_ref)
            index = _correlate(query, kernels, k, p).argmax(dim=1)  # (N, h', w')
        else:  # a chunk of kernels at a time, with a running max
            chunk = max(1, min(num_ref, max_elements // (n * qh * qw)))  # kernels per chunk
            best = torch.full((n, qh, qw), -float("inf"), dtype=query.dtype, device=query.device)
            index = torch.zeros(n, qh, qw, dtype=torch.long, device=query.device)
            for start in range(0, num_ref, chunk):
                ids = torch.arange(start, min(start + chunk, num_ref), device=query.device).expand(n, -1)
                kernels = F.normalize(gather_patches(key, ids, k, 1, p), dim=1, eps=EPS)  # (N, C*k*k, chunk)
                value, arg = _correlate(query, kernels, k, p).max(dim=1)  # (N, h', w')
                better = value > best  # strict: an earlier chunk keeps a tie, as one arg max over all would
                best = torch.where(better, value, best)
                index = torch.where(better, arg + start, index)
    score = patch_similarity(query, key, index, k, p)
    return PatchMatch(index, score, ref_grid, k, p)


def matched_blocks(x: Tensor, index: Tensor, grid_w: int, patch_size: int, ratio: int = 1,
                   padding: int = 0) -> Iterator[tuple[int, int, Tensor]]:
    """The matched patches of ``x``, one ``ratio`` x ``ratio`` block offset at a time.

    A patch of ``patch_size * ratio`` pixels taken every ``ratio`` pixels is a ``patch_size`` x
    ``patch_size`` grid of ``ratio`` x ``ratio`` blocks. For each block offset ``(a, b)`` this yields
    the block at (matched patch origin + (a, b)) for every query position, with the block's pixels in
    channels (``pixel_unshuffle``): one gather of a query-sized map per offset, never the patches of
    every position at once.

    Args:
        x: (N, C, r*H, r*W), the map the index points into (``r = ratio``).
        index: (N, h', w') positions in the patch grid of ``x`` (``grid_w`` columns).
        patch_size, ratio, padding: the grid: ``patch_size * r`` patches, stride ``r``, padding ``padding * r``.

    Yields:
        ``(a, b, block)`` with block (N, C*r*r, h', w').
    """
    padded = F.pad(x, [padding * ratio] * 4) if padding else x
    blocks = F.pixel_unshuffle(padded, ratio) if ratio > 1 else padded  # (N, C*r*r, H + 2p, W + 2p)
    n, depth, _, width = blocks.shape
    flat = blocks.flatten(2)  # (N, C*r*r, (H + 2p) * (W + 2p))
    rows, cols = index // grid_w, index % grid_w  # (N, h', w'): top-left block of each matched patch
    for a in range(patch_size):
        for b in range(patch_size):
            source = ((rows + a) * width + cols + b).view(n, 1, -1).expand(-1, depth, -1)  # (N, C*r*r, h'*w')
            yield a, b, flat.gather(2, source).view(n, depth, *index.shape[-2:])


def patch_similarity(query: Tensor, key: Tensor, index: Tensor, patch_size: int = 3, padding: int = 0) -> Tensor:
    """Cosine similarity of each query patch with the key patch ``index`` names, with gradients.

    Summed over the ``patch_size**2`` pixel offsets of a patch (:func:`matched_blocks`), so the memory
    is a few query-sized maps.

    Args:
        query, key: (N, C, h, w) and (N, C, H, W).
        index: (N, h', w') positions in the key's patch grid, one per query patch.
        patch_size, padding: of both grids.

    Returns:
        (N, h', w') in [-1, 1]; 0 where either patch is all zeros.
    """
    qh, qw = index.shape[-2:]
    grid_w = patch_grid(key.shape[-2:], patch_size, padding)[1]
    padded = F.pad(query, [padding] * 4) if padding else query
    dot = q_sq = k_sq = 0.0
    for a, b, k_pix in matched_blocks(key, index, grid_w, patch_size, 1, padding):  # (N, C, h', w')
        q_pix = padded[:, :, a:a + qh, b:b + qw]
        dot = dot + (q_pix * k_pix).sum(dim=1)
        q_sq, k_sq = q_sq + q_pix.square().sum(dim=1), k_sq + k_pix.square().sum(dim=1)
    # clamp before the root: a zero patch gives 0, with finite gradients
    return dot * q_sq.clamp_min(EPS ** 2).rsqrt() * k_sq.clamp_min(EPS ** 2).rsqrt()


# ---------------------------------------------------------------------------------------- swapping

def overlap_count(match: PatchMatch, ratio: int = 1) -> Tensor:
    """How many swapped patches cover each pixel of the output of :func:`swap_features`, (1, 1, r*h, r*w).

    Interior pixels are covered by ``patch_size**2`` patches at every ratio (a 3r x 3r patch every r
    pixels); border pixels by fewer. Equal to ``F.fold`` of ones with the swap's kernel, stride, padding.
    """
    k, p = match.patch_size, match.padding
    qh, qw = match.index.shape[-2:]
    count = match.index.new_zeros(1, 1, qh + k - 1, qw + k - 1, dtype=torch.float32)  # blocks, padded
    for a in range(k):
        for b in range(k):
            count[..., a:a + qh, b:b + qw] += 1
    count = count[..., p:count.shape[-2] - p, p:count.shape[-1] - p]  # (1, 1, h, w)
    return count.repeat_interleave(ratio, dim=-2).repeat_interleave(ratio, dim=-1)  # constant per r x r block


def swap_features(value: Tensor, match: PatchMatch, divisor: float | None = None,
                  method: str = "chunked") -> Tensor:
    """Build the swapped (transferred) feature map: the matched patches of ``value``, overlaps averaged.

    ``value`` may be finer than the key map by an integer ratio ``r`` (read from the shapes): its
    patches are then ``r * patch_size`` wide, taken every ``r`` pixels with ``r * padding`` zero
    padding, so that its patch grid is the key's. The output is ``r`` times the query map's size.

    Args:
        value: (N, C_v, r*H, r*W) reference features (un-blurred), ``(H, W)`` the key map's size.
        match: from :func:`match_patches`.
        divisor: ``None`` divides each pixel by the number of patches that overlap it (an exact
            average, SRNTT's count map); a number divides everything by it (TTSR: 9, the interior
            count, which darkens the border pixels a little). Default: None.
        method: ``"naive"`` (paste patch by patch, SRNTT's loop), ``"vectorised"`` (TTSR: ``F.unfold``
            every reference patch, select by index, ``F.fold``: 9 x the output in unfolded patches,
            plus the unfold of the whole value map) or ``"chunked"`` (one block offset at a time with
            :func:`matched_blocks`: nine gathers and shifted adds of output-sized maps, no unfold,
            no fold buffers). Default: chunked.

    Returns:
        (N, C_v, r*h, r*w), ``(h, w) = match.query_size``.

    Example:
        >>> feat = torch.rand(1, 8, 6, 6)
        >>> m = match_patches(feat, feat, padding=1)  # every patch finds itself
        >>> fine = torch.rand(1, 2, 24, 24)  # 4x finer values: 12x12 patches, stride 4, padding 4
        >>> torch.allclose(swap_features(fine, m), fine)  # exact average: the identity
        True
    """
    _check_method(method)
    _check_features(value, "value")
    k, p, (kh, kw) = match.patch_size, match.padding, match.ref_grid
    key_size = (kh + k - 1 - 2 * p, kw + k - 1 - 2 * p)
    r = value.shape[-1] // key_size[1]
    if r < 1 or value.shape[-2:] != (r * key_size[0], r * key_size[1]) or value.shape[0] != match.index.shape[0]:
        raise ValueError(f"value {tuple(value.shape)} must be (N, C, r*H, r*W) for the key map of {key_size} that was "
                         f"matched (N = {match.index.shape[0]}, r an integer): value and key must come from the "
                         "same reference image")
    n, c = value.shape[:2]
    qh, qw = match.index.shape[-2:]
    h, w = match.query_size
    if method == "vectorised":
        patches = F.unfold(value, k * r, padding=p * r, stride=r)  # (N, C*(kr)^2, L_ref): every reference patch
        chosen = patches.gather(2, match.index.reshape(n, 1, -1).expand(-1, patches.shape[1], -1))  # (N, ., L_q)
        out = F.fold(chosen, (r * h, r * w), k * r, padding=p * r, stride=r)  # overlapping patches summed
    elif method == "naive":
        out = value.new_zeros(n, c, r * (h + 2 * p), r * (w + 2 * p))  # in padded coordinates
        src, size = (F.pad(value, [p * r] * 4) if p else value), k * r
        for b in range(n):
            for i in range(qh):
                for j in range(qw):
                    ri, rj = divmod(int(match.index[b, i, j]), kw)
                    out[b, :, i * r:i * r + size, j * r:j * r + size] += \
                        src[b, :, ri * r:ri * r + size, rj * r:rj * r + size]
        out = out[:, :, p * r:p * r + r * h, p * r:p * r + r * w]
    else:
        out = value.new_zeros(n, c * r * r, qh + k - 1, qw + k - 1)  # in r x r blocks, padded
        for a, b, block in matched_blocks(value, match.index, kw, k, r, p):  # block: (N, C*r*r, h', w')
            out[:, :, a:a + qh, b:b + qw] += block
        out = out[:, :, p:p + h, p:p + w]  # (N, C*r*r, h, w)
        out = F.pixel_shuffle(out, r) if r > 1 else out  # (N, C, r*h, r*w)
    count = overlap_count(match, r).to(value.device, value.dtype) if divisor is None else divisor
    return out / count


@dataclass
class SwapResult:
    """What :class:`TextureSwap` returns.

    Attributes:
        similarity: (N, 1, h, w) relevance of the best match at the query map's size (TTSR's S).
        textures: swapped maps, one per value map, in the order given (each r times the query size).
        match: the :class:`PatchMatch` (indices, for figures).
    """

    similarity: Tensor
    textures: list[Tensor]
    match: PatchMatch


class TextureSwap(nn.Module):
    """Match query patches to key patches, then swap value maps: the search-and-transfer step as a module.

    No parameters. A forward hook on it receives the :class:`SwapResult`, so figures can collect
    similarity maps and swapped textures without touching the model's ``forward``.

    Args:
        patch_size: matching patch side. Default: 3.
        padding: 0 (SRNTT, 'VALID') or 1 (TTSR). Default: 0.
        divisor: see :func:`swap_features` (None: exact overlap average; TTSR: 9). Default: None.
        method: ``"naive"``, ``"vectorised"`` or ``"chunked"``. Default: chunked.
        max_elements: chunk size of the chunked method, in floats. Default: 2**24.

    ``forward(query, key, values)``: (N, C, h, w), (N, C, H, W) and a sequence of (N, C_l, r_l*H, r_l*W)
    -> :class:`SwapResult`.

    Example:
        >>> swap = TextureSwap(padding=1, divisor=9.0)
        >>> q, k = torch.rand(2, 16, 5, 6), torch.rand(2, 16, 7, 7)
        >>> out = swap(q, k, [k, torch.rand(2, 4, 14, 14), torch.rand(2, 3, 28, 28)])
        >>> out.similarity.shape, [tuple(t.shape) for t in out.textures]
        (torch.Size([2, 1, 5, 6]), [(2, 16, 5, 6), (2, 4, 10, 12), (2, 3, 20, 24)])
    """

    def __init__(self, patch_size: int = 3, padding: int = 0, divisor: float | None = None,
                 method: str = "chunked", max_elements: int = DEFAULT_MAX_ELEMENTS):
        super().__init__()
        _check_method(method)
        self.patch_size, self.padding, self.divisor = patch_size, padding, divisor
        self.method, self.max_elements = method, max_elements

    def forward(self, query: Tensor, key: Tensor, values: Sequence[Tensor]) -> SwapResult:
        match = match_patches(query, key, self.patch_size, self.padding, self.method, self.max_elements)
        textures = [swap_features(v, match, self.divisor, self.method) for v in values]
        return SwapResult(match.similarity_map(), textures, match)

    def extra_repr(self) -> str:
        return (f"patch_size={self.patch_size}, padding={self.padding}, divisor={self.divisor}, "
                f"method={self.method!r}")


# ------------------------------------------------------------------------------------- the images

def similarity_at(similarity: Tensor, size: Sequence[int]) -> Tensor:
    """The similarity map resized (bicubic, as both papers) to a finer feature level's (h, w).

    TTSR multiplies each level's fused residual by it (soft attention); SRNTT weights its swapped maps
    and its texture loss with it. Returns ``similarity`` itself at its own size.
    """
    if tuple(similarity.shape[-2:]) == tuple(size):
        return similarity
    return F.interpolate(similarity, size=tuple(size), mode="bicubic", align_corners=False)


def reference_inputs(lr: Tensor, ref: Tensor, scale: int) -> tuple[Tensor, Tensor, Tensor]:
    """The three images both models extract features from: LR↑, the reference, and Ref↓↑.

    LR↑ is the input upscaled by bicubic ``scale`` x (MATLAB ``imresize``); Ref↓↑ is the reference
    bicubically ``scale`` x down then up: the reference with the detail an LR input lacks removed,
    so that the two compare fairly (both papers). The reference is first cropped to a multiple of
    ``scale`` (at most ``scale - 1`` rows/columns at the bottom/right, as TTSR's test code does), which
    keeps the patch grids of the feature levels aligned; a batch of one reference serves every input.

    Args:
        lr: (N, 3, h, w) RGB in [0, 1].
        ref: (N, 3, H, W) or (1, 3, H, W) RGB in [0, 1], any size (not necessarily ``scale`` x the input).

    Returns:
        ``(lr_up, ref, ref_down_up)``: (N, 3, s*h, s*w), (N, 3, H', W') and (N, 3, H', W').
    """
    from .degrade import imresize, mod_crop, upscale_bicubic

    if lr.dim() != 4 or lr.shape[1] != 3:
        raise ValueError(f"expected LR images (N, 3, h, w) in [0, 1], got shape {tuple(lr.shape)}")
    if ref.dim() != 4 or ref.shape[1] != 3 or ref.shape[0] not in (1, lr.shape[0]) or min(ref.shape[-2:]) < scale:
        raise ValueError(f"expected reference images (N, 3, H, W) or (1, 3, H, W) in [0, 1] with H, W >= {scale} for "
                         f"LR {tuple(lr.shape)}, got shape {tuple(ref.shape)}")
    ref = mod_crop(ref, scale).expand(lr.shape[0], -1, -1, -1)
    return upscale_bicubic(lr, scale), ref, imresize(imresize(ref, scale=1 / scale), scale=scale)
