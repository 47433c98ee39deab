"""srlib.texture_match: feature-space patch matching and texture swapping (chapter 6, SRNTT and TTSR).

The matching is checked against a brute-force double loop written here, independently of the
library; the three methods (naive, vectorised, chunked) against each other for indices, scores and
swapped maps; the swap against TTSR's own formulation (unfold 3x3 / 6x6 / 12x12, bmm, max, gather,
fold, divide by 9) restated here; folding for exact inversion where it must be exact; the chunk
bound; gradients; and the refusal of inputs that cannot match. Maps are a few pixels wide.
"""
import pytest
import torch
import torch.nn.functional as F

from srlib import texture_match as tm
from srlib.texture_match import (METHODS, TextureSwap, gather_patches, match_patches, overlap_count,
                                 patch_similarity, reference_inputs, swap_features)


def features(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def brute_force(query, key, k, p):
    """Every query patch against every key patch, one cosine at a time (first maximum wins)."""
    qp, kp = F.pad(query, [p] * 4), F.pad(key, [p] * 4)
    qh, qw = qp.shape[-2] - k + 1, qp.shape[-1] - k + 1
    kh, kw = kp.shape[-2] - k + 1, kp.shape[-1] - k + 1
    index = torch.zeros(query.shape[0], qh, qw, dtype=torch.long)
    score = torch.zeros(query.shape[0], qh, qw)
    for b in range(query.shape[0]):
        for i in range(qh):
            for j in range(qw):
                q = qp[b, :, i:i + k, j:j + k].flatten()
                best = -2.0
                for u in range(kh):
                    for v in range(kw):
                        r = kp[b, :, u:u + k, v:v + k].flatten()
                        cos = float(q @ r) / max(float(q.norm()), 1e-12) / max(float(r.norm()), 1e-12)
                        if cos > best:
                            best, index[b, i, j] = cos, u * kw + v
                score[b, i, j] = best
    return index, score


# ---------------------------------------------------------------------------------------- matching

@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("method", METHODS)
def test_matching_equals_a_brute_force_loop(method, padding):
    query, key = features(2, 4, 5, 6, seed=1), features(2, 4, 6, 5, seed=2)
    expected_index, expected_score = brute_force(query, key, 3, padding)
    m = match_patches(query, key, 3, padding, method=method, max_elements=37)
    assert torch.equal(m.index, expected_index)
    assert torch.allclose(m.score, expected_score, atol=1e-5)
    assert m.ref_grid == (6 + 2 * padding - 2, 5 + 2 * padding - 2) and m.query_size == (5, 6)


@pytest.mark.parametrize("method", METHODS)
def test_exact_match_is_found_when_the_reference_contains_the_input(method):
    key = features(1, 8, 9, 11, seed=3)
    query = 2.5 * key[:, :, 2:7, 3:10]  # scaled: the normalised inner product ignores the scale
    m = match_patches(query, key, 3, 0, method=method)
    rows, cols = torch.meshgrid(torch.arange(3), torch.arange(5), indexing="ij")
    assert torch.equal(m.index[0], (rows + 2) * 9 + cols + 3)  # key grid is 7 x 9
    assert torch.allclose(m.score, torch.ones_like(m.score), atol=1e-5)
    # and the swap rebuilds exactly the matched part of the reference
    assert torch.allclose(swap_features(key, m, method=method), key[:, :, 2:7, 3:10], atol=1e-6)


@pytest.mark.parametrize("max_elements", [1, 7, 60, 10 ** 9])
def test_chunked_equals_vectorised_for_any_chunk_size(max_elements):
    query, key = features(3, 6, 7, 5, seed=4), features(3, 6, 9, 8, seed=5)
    for padding in (0, 1):
        full = match_patches(query, key, 3, padding, method="vectorised")
        chunked = match_patches(query, key, 3, padding, method="chunked", max_elements=max_elements)
        assert torch.equal(full.index, chunked.index)
        assert torch.equal(full.score, chunked.score)


def test_chunks_bound_the_correlation_volume(monkeypatch):
    sizes = []
    original = tm._correlate

    def spy(*args):
        out = original(*args)
        sizes.append(out.numel())
        return out

    monkeypatch.setattr(tm, "_correlate", spy)
    query, key = features(2, 4, 6, 6, seed=6), features(2, 4, 12, 12, seed=7)
    match_patches(query, key, 3, 0, method="chunked", max_elements=500)
    assert len(sizes) > 1 and max(sizes) <= 500  # 2 x 16 query positions x 15 kernels per chunk
    assert sum(sizes) == 2 * 16 * 100  # every reference patch seen once


def test_zero_or_unrelated_reference_gives_finite_results():
    query = features(1, 4, 5, 5, seed=8)
    for key in (torch.zeros(1, 4, 6, 6), torch.full((1, 4, 6, 6), 3.0), -features(1, 4, 6, 6, seed=9)):
        for method in METHODS:
            m = match_patches(query, key, 3, 1, method=method)
            assert torch.isfinite(m.score).all() and m.index.min() >= 0 and m.index.max() < 36
    m = match_patches(query, torch.zeros(1, 4, 6, 6), 3, 1)
    assert torch.all(m.score == 0) and torch.all(m.index == 0)  # nothing to match: first patch, similarity 0


def test_similarity_carries_gradients_to_both_maps_and_none_is_nan():
    query = features(2, 4, 5, 6, seed=10).requires_grad_()
    key = features(2, 4, 7, 6, seed=11).requires_grad_()
    m = match_patches(query, key, 3, 1)
    m.score.sum().backward()
    for t in (query, key):
        assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
    zero_query = torch.zeros(1, 4, 5, 5, requires_grad=True)
    zero_key = torch.zeros(1, 4, 5, 5, requires_grad=True)
    match_patches(zero_query, zero_key, 3, 1).score.sum().backward()
    assert torch.isfinite(zero_query.grad).all() and torch.isfinite(zero_key.grad).all()


def test_patch_similarity_is_the_cosine_of_the_named_patches():
    query, key = features(1, 3, 4, 4, seed=12), features(1, 3, 5, 5, seed=13)
    index = torch.randint(0, 9, (1, 2, 2), generator=torch.Generator().manual_seed(0))
    score = patch_similarity(query, key, index, 3, 0)
    q = F.unfold(query, 3)[0]  # (27, 4)
    kp = F.unfold(key, 3)[0][:, index.flatten()]  # (27, 4)
    assert torch.allclose(score.flatten(), F.cosine_similarity(q, kp, dim=0), atol=1e-6)


def test_similarity_map_has_the_query_size_with_replicated_valid_borders():
    query, key = features(1, 4, 6, 7, seed=14), features(1, 4, 6, 6, seed=15)
    valid = match_patches(query, key, 3, 0)
    s = valid.similarity_map()
    assert s.shape == (1, 1, 6, 7)
    assert torch.equal(s[0, 0, 1:-1, 1:-1], valid.score[0])
    assert torch.equal(s[0, 0, 0, 1:-1], valid.score[0, 0]) and torch.equal(s[0, 0, :, 0], s[0, 0, :, 1])
    same = match_patches(query, key, 3, 1)
    assert torch.equal(same.similarity_map()[:, 0], same.score)


# ---------------------------------------------------------------------------------------- swapping

@pytest.mark.parametrize("kernel,stride,padding", [(3, 1, 0), (3, 1, 1), (6, 2, 2), (12, 4, 4), (5, 2, 0)])
def test_gather_patches_equals_unfold_then_index_selection(kernel, stride, padding):
    x = features(2, 3, 24, 20, seed=16)
    unfolded = F.unfold(x, kernel, padding=padding, stride=stride)  # (N, C*k*k, L)
    index = torch.randint(0, unfolded.shape[-1], (2, 11), generator=torch.Generator().manual_seed(1))
    expected = unfolded.gather(2, index[:, None].expand(-1, unfolded.shape[1], -1))
    assert torch.equal(gather_patches(x, index, kernel, stride, padding), expected)


@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("ratio", [1, 2, 4])
def test_swap_methods_agree(ratio, padding):
    query, key = features(2, 5, 5, 7, seed=17), features(2, 5, 6, 5, seed=18)
    m = match_patches(query, key, 3, padding)
    value = features(2, 3, 6 * ratio, 5 * ratio, seed=19)
    outs = {method: swap_features(value, m, method=method) for method in METHODS}
    assert outs["naive"].shape == (2, 3, 5 * ratio, 7 * ratio)
    for method in ("vectorised", "chunked"):
        assert torch.allclose(outs[method], outs["naive"], atol=1e-6), method
    nine = {method: swap_features(value, m, divisor=9.0, method=method) for method in METHODS}
    for method in ("vectorised", "chunked"):
        assert torch.allclose(nine[method], nine["naive"], atol=1e-6), method


@pytest.mark.parametrize("padding", [0, 1])
def test_identity_match_folds_back_exactly(padding):
    feat = features(2, 6, 7, 8, seed=20)
    m = match_patches(feat, feat, 3, padding)  # every patch finds itself
    grid = m.index.shape[-1]
    assert torch.equal(m.index[0], torch.arange(m.index[0].numel()).view(-1, grid))
    for ratio in (1, 2, 4):
        value = features(2, 3, 7 * ratio, 8 * ratio, seed=21 + ratio)
        for method in METHODS:
            assert torch.allclose(swap_features(value, m, method=method), value, atol=1e-6), (ratio, method)


def test_overlap_count_and_ttsr_constant_divisor():
    feat = features(1, 6, 7, 8, seed=24)
    m = match_patches(feat, feat, 3, 1)
    for ratio in (1, 2, 4):
        count = overlap_count(m, ratio)
        ones = torch.ones(1, (3 * ratio) ** 2, 7 * 8)
        assert torch.equal(count, F.fold(ones, (7 * ratio, 8 * ratio), 3 * ratio, padding=ratio, stride=ratio))
        interior = count[..., ratio:-ratio, ratio:-ratio]
        assert torch.all(interior == 9) and count[0, 0, 0, 0] == 4  # a corner: 2 x 2 patches
        value = features(1, 2, 7 * ratio, 8 * ratio, seed=25)
        by_nine = swap_features(value, m, divisor=9.0)  # TTSR: exact inside, darker at the border
        assert torch.allclose(by_nine, value * count / 9, atol=1e-6)


def ttsr_search_transfer(lrsr_lv3, refsr_lv3, ref_lv1, ref_lv2, ref_lv3):
    """TTSR's SearchTransfer.forward, restated: the swap must reproduce it exactly."""
    q = F.normalize(F.unfold(lrsr_lv3, 3, padding=1), dim=1)  # (N, C*9, H*W)
    k = F.normalize(F.unfold(refsr_lv3, 3, padding=1).permute(0, 2, 1), dim=2)  # (N, Hr*Wr, C*9)
    star, arg = torch.max(torch.bmm(k, q), dim=1)  # (N, H*W)

    def select(unfolded):
        return unfolded.gather(2, arg[:, None].expand(-1, unfolded.shape[1], -1))

    h, w = lrsr_lv3.shape[-2:]
    t3 = F.fold(select(F.unfold(ref_lv3, 3, padding=1)), (h, w), 3, padding=1) / 9
    t2 = F.fold(select(F.unfold(ref_lv2, 6, padding=2, stride=2)), (2 * h, 2 * w), 6, padding=2, stride=2) / 9
    t1 = F.fold(select(F.unfold(ref_lv1, 12, padding=4, stride=4)), (4 * h, 4 * w), 12, padding=4, stride=4) / 9
    return star.view(-1, 1, h, w), t3, t2, t1


@pytest.mark.parametrize("method", ["vectorised", "chunked"])
def test_texture_swap_reproduces_ttsr_search_transfer(method):
    q, k = features(2, 8, 5, 6, seed=26), features(2, 8, 6, 7, seed=27)
    values = [features(2, 8, 6, 7, seed=28), features(2, 4, 12, 14, seed=29), features(2, 3, 24, 28, seed=30)]
    out = TextureSwap(patch_size=3, padding=1, divisor=9.0, method=method)(q, k, values)
    s, t3, t2, t1 = ttsr_search_transfer(q, k, values[2], values[1], values[0])
    assert torch.allclose(out.similarity, s, atol=1e-5)
    for mine, theirs in zip(out.textures, (t3, t2, t1)):
        assert mine.shape == theirs.shape and torch.allclose(mine, theirs, atol=1e-5)


def test_swap_gradients_reach_the_values():
    q, k = features(1, 4, 5, 5, seed=31), features(1, 4, 6, 6, seed=32)
    value = features(1, 2, 12, 12, seed=33).requires_grad_()
    swap_features(value, match_patches(q, k, 3, 1)).square().sum().backward()
    assert torch.isfinite(value.grad).all() and value.grad.abs().sum() > 0


# ----------------------------------------------------------------------------------------- refusals

def test_inputs_that_cannot_match_are_refused_clearly():
    q = features(1, 4, 5, 5)
    with pytest.raises(ValueError, match="same batch size and channels"):
        match_patches(q, features(1, 3, 5, 5))
    with pytest.raises(ValueError, match="has no 3x3 patch with padding 0; it needs at least 3 pixels"):
        match_patches(q, features(1, 4, 2, 9))
    with pytest.raises(ValueError, match="method must be one of"):
        match_patches(q, q, method="fast")
    with pytest.raises(ValueError, match=r"feature map \(N, C, H, W\)"):
        match_patches(q[0], q)
    m = match_patches(q, features(1, 4, 6, 6))
    with pytest.raises(ValueError, match="value and key must come from the same reference image"):
        swap_features(features(1, 2, 13, 12), m)


def test_reference_inputs_crop_blur_and_broadcast():
    lr, ref = features(3, 3, 5, 6), features(1, 3, 22, 19)
    lr_up, ref_c, ref_du = reference_inputs(lr, ref, 4)
    assert lr_up.shape == (3, 3, 20, 24) and ref_c.shape == ref_du.shape == (3, 3, 20, 16)
    assert torch.equal(ref_c[2], ref[0, :, :20, :16])  # cropped to a multiple of 4, shared by the batch
    assert not torch.allclose(ref_du, ref_c, atol=1e-2)  # the blurred twin lost detail
    with pytest.raises(ValueError, match="reference images"):
        reference_inputs(lr, features(2, 3, 20, 20), 4)
    with pytest.raises(ValueError, match="LR images"):
        reference_inputs(features(3, 1, 5, 5), ref, 4)
