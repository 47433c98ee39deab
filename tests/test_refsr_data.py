"""srlib.refsr_data: the CUFED5-like benchmark built from the bundled images, and reference-SR patches.

Determinism with a seed, shapes and the LR protocol, where each level's reference comes from (the
boxes recorded in ``sources`` checked against the bundled images), that the levels are ordered by
a measurable similarity (XH far above XL in every group, the mean strictly decreasing from XH to
XL), the CUFED5 file layout read back by ``ReferenceFolder``, and the training sampler.
The benchmark is built once at 96 px (the similarity pass is the slow part: about 30 matchings).
"""
import pytest
import torch

from srlib.data import ReferenceFolder, bundled_image
from srlib.degrade import bicubic_downscale, round_to_uint8
from srlib.refsr_data import (GROUPS, LEVELS, ReferencePatchSampler, ShiftedCopySampler, refsr_benchmark,
                              reference_similarity, save_refsr_benchmark, shifted_crop, warped_crop)

SIZE = 96


@pytest.fixture(scope="module")
def groups():
    return refsr_benchmark(size=SIZE, seed=0)


@pytest.fixture(scope="module")
def similarity(groups):
    return {g.name: {level: reference_similarity(g.hr, g.refs[level]) for level in LEVELS} for g in groups}


def box(source, size=SIZE):
    name, top, left = source
    return bundled_image(name)[:, top:top + size, left:left + size]


def overlap(a, b, size=SIZE):
    return max(0, size - abs(a[1] - b[1])) * max(0, size - abs(a[2] - b[2])) / size ** 2


# ------------------------------------------------------------------------------------------ building

def test_groups_shapes_and_lr_protocol(groups):
    assert [g.name for g in groups] == [spec.name for spec in GROUPS]
    for g in groups:
        assert g.hr.shape == (3, SIZE, SIZE) and list(g.refs) == list(LEVELS)
        assert all(r.shape == (3, SIZE, SIZE) and 0 <= r.min() and r.max() <= 1 for r in g.refs.values())
        assert torch.equal(g.lr, bicubic_downscale(g.hr[None], 4)[0])  # MATLAB bicubic, uint8-rounded
        assert set(g.notes) == set(LEVELS)


def test_deterministic_for_a_seed_and_different_for_another(groups):
    again = refsr_benchmark(size=SIZE, seed=0)
    other = refsr_benchmark(size=SIZE, seed=1)
    for a, b, c in zip(groups, again, other):
        assert torch.equal(a.hr, b.hr) and all(torch.equal(a.refs[k], b.refs[k]) for k in LEVELS)
        assert a.sources == b.sources and a.sources != c.sources


def test_each_level_comes_from_where_it_says(groups):
    for g, spec in zip(groups, GROUPS):
        src = g.sources
        assert torch.equal(g.hr, box(src["input"])) and src["input"][0] == spec.image
        # XH: the input's own box, resampled (close to the input, but not a copy)
        assert src["XH"] == src["input"] and not torch.equal(g.refs["XH"], g.hr)
        assert (g.refs["XH"] - g.hr).abs().mean() < (g.refs["XL"] - g.hr).abs().mean()
        # H: an overlapping box of the same image (a quarter to a half of the size away per axis)
        assert src["H"][0] == spec.image and torch.equal(g.refs["H"], box(src["H"]))
        assert 0.25 <= overlap(src["H"], src["input"]) < 1  # at least half of each side
        # M: the stereo partner at the same box, or the neighbouring box with no overlap
        assert torch.equal(g.refs["M"], box(src["M"]))
        if spec.other_view:
            assert src["M"] == (spec.other_view, *src["input"][1:])
        else:
            assert src["M"][0] == spec.image and overlap(src["M"], src["input"]) == 0
        # L and XL: other images
        assert (src["L"][0], src["XL"][0]) == (spec.similar, spec.unrelated) != (spec.image, spec.image)
        assert torch.equal(g.refs["L"], box(src["L"])) and torch.equal(g.refs["XL"], box(src["XL"]))


def test_inputs_are_not_training_images_except_the_stereo_pair():
    from srlib.data import BUNDLED_IMAGES

    for spec in GROUPS:
        assert BUNDLED_IMAGES[spec.image] == "val" or spec.other_view is not None, spec.name


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="multiple of the scale 4"):
        refsr_benchmark(size=98)


# ---------------------------------------------------------------------------------------- similarity

def test_xh_is_far_more_similar_than_xl_in_every_group(similarity):
    for name, s in similarity.items():
        assert s["XH"] > s["XL"] + 0.2, (name, s)
        assert s["XH"] == max(s.values()), (name, s)


def test_mean_similarity_decreases_from_xh_to_xl(similarity):
    mean = [sum(s[level] for s in similarity.values()) / len(similarity) for level in LEVELS]
    assert all(a > b for a, b in zip(mean, mean[1:])), dict(zip(LEVELS, mean))


def test_reference_similarity_is_one_for_the_input_itself_and_lower_for_noise(groups):
    hr = groups[1].hr
    assert reference_similarity(hr, hr) == pytest.approx(1.0, abs=1e-5)
    noise = torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    assert reference_similarity(hr, noise) < 0.6


# ------------------------------------------------------------------------------------ files and crops

def test_saved_benchmark_reads_back_as_cufed5(tmp_path, groups):
    root = save_refsr_benchmark(tmp_path / "refsr", size=SIZE, seed=0)
    folder = ReferenceFolder(root)
    assert sorted(folder.names) == sorted(g.name for g in groups)
    name, hr, refs = folder[folder.names.index("camera")]
    group = next(g for g in groups if g.name == "camera")
    assert torch.equal(hr, round_to_uint8(group.hr))
    assert all(torch.equal(r, round_to_uint8(group.refs[level])) for r, level in zip(refs, LEVELS))  # XH = 1


def test_warped_crop_without_a_warp_is_the_crop():
    image = torch.rand(3, 40, 50, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(warped_crop(image, 10, 12, 16), image[:, 10:26, 12:28].clamp(0, 1), atol=1e-5)
    shifted = warped_crop(image, 10, 12, 16, shift=(2.0, -3.0))
    assert torch.allclose(shifted, image[:, 12:28, 9:25], atol=1e-5)  # integer shifts move the box exactly


# ----------------------------------------------------------------------------------------- sampler

def test_sampler_shapes_determinism_and_lr():
    sampler = ReferencePatchSampler(patch_size=24)
    lr, hr, ref = sampler.sample_batch(3, torch.Generator().manual_seed(0))
    assert lr.shape == (3, 3, 6, 6) and hr.shape == ref.shape == (3, 3, 24, 24)
    assert torch.equal(lr, bicubic_downscale(hr, 4))
    again = sampler.sample_batch(3, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip((lr, hr, ref), again))
    assert len(sampler.images) == 11  # the 13 training images without the motorcycle stereo pair


def test_sampler_reference_kinds():
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(3)
    only_overlap = ReferencePatchSampler(patch_size=16, images={"x": image}, p_warp=0.0, p_overlap=1.0)
    hr, ref = only_overlap.sample(g)
    assert not torch.equal(hr, ref)
    # an overlapping crop shares an exact block of pixels with the patch
    found = any(torch.equal(hr[:, i:i + 4, j:j + 4], ref[:, u:u + 4, v:v + 4])
                for i in range(0, 13, 4) for j in range(0, 13, 4) for u in range(13) for v in range(13))
    assert found
    with pytest.raises(ValueError, match="p_warp, p_overlap"):
        ReferencePatchSampler(p_warp=0.8, p_overlap=0.5)
    with pytest.raises(ValueError, match="multiple of the scale"):
        ReferencePatchSampler(patch_size=30)


def test_shifted_crop_moves_the_box_and_refuses_to_leave_the_image():
    image = torch.rand(3, 20, 30, generator=torch.Generator().manual_seed(4))
    assert torch.equal(shifted_crop(image, 5, 6, 8, (2, -3)), image[:, 7:15, 3:11])
    assert torch.equal(shifted_crop(image, 5, 6, 8, (0, 0)), image[:, 5:13, 6:14])
    with pytest.raises(ValueError, match="leaves the 20x30 image"):
        shifted_crop(image, 5, 6, 8, (-6, 0))


def test_shifted_copy_sampler_references_are_the_patch_translated():
    image = torch.rand(3, 40, 44, generator=torch.Generator().manual_seed(5))
    exact = ShiftedCopySampler(patch_size=16, max_shift=0, images={"x": image})
    lr, hr, ref = exact.sample_batch(4, torch.Generator().manual_seed(0))
    assert torch.equal(ref, hr) and torch.equal(lr, bicubic_downscale(hr, 4))
    moved = ShiftedCopySampler(patch_size=16, max_shift=3, images={"x": image})
    g, shifts = torch.Generator().manual_seed(1), set()
    for _ in range(20):
        hr, ref = moved.sample(g)
        # the reference is the patch moved by whole pixels: some offset within +-3 lines them up exactly
        # (up to the shared flip/rotation, which keeps the overlap an exact block of both)
        match = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                 if torch.equal(hr[:, max(dy, 0):16 + min(dy, 0), max(dx, 0):16 + min(dx, 0)],
                                ref[:, max(-dy, 0):16 + min(-dy, 0), max(-dx, 0):16 + min(-dx, 0)])]
        assert match
        shifts.add(match[0])
    assert len(shifts) > 5  # many different shifts are drawn
    with pytest.raises(ValueError, match="no image is at least 56 px"):
        ShiftedCopySampler(patch_size=16, max_shift=20, images={"x": image})
    with pytest.raises(ValueError, match="whole number of HR pixels"):
        ShiftedCopySampler(max_shift=-1)
