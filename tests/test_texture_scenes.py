"""Texture scenes for SFTGAN: composition, splits, the LR's lack of detail, and the texture judge."""
import pytest
import torch

import srlib
from srlib import texture_scenes as ts
from srlib.degrade import bicubic_downscale, round_to_uint8, upscale_bicubic


def scenes(count, size=64, split="test", seed=0):
    data = ts.TextureSceneDataset(count, size, split, seed=seed)
    return [data.scene(i) for i in range(count)]


def test_scene_shapes_and_protocol():
    s = ts.random_scene(48, torch.Generator().manual_seed(3))
    assert s.hr.shape == (3, 48, 48) and s.lr.shape == (3, 12, 12) and s.class_map.shape == (48, 48)
    assert s.class_map.dtype == torch.int64 and 0 <= s.class_map.min() and s.class_map.max() < len(ts.CLASSES)
    assert torch.equal(s.hr, round_to_uint8(s.hr))  # HR on the uint8 grid, like a PNG
    assert torch.equal(s.lr, bicubic_downscale(s.hr, 4))  # the benchmark LR
    assert s.seg.shape == (len(ts.CLASSES), 48, 48) and torch.allclose(s.seg.sum(0), torch.ones(48, 48))


def test_scenes_are_deterministic_and_differ_by_index():
    data = ts.TextureSceneDataset(3, 32, seed=5)
    a, b = data[1], ts.TextureSceneDataset(3, 32, seed=5)[1]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(data[0][1], data[1][1])


def test_flat_cells_have_no_detail_and_textured_cells_do():
    class_map = torch.zeros(64, 64, dtype=torch.int64)
    class_map[:, 32:] = 2  # left half flat, right half grass
    s = ts.compose_scene(class_map, torch.Generator().manual_seed(0))
    detail = s.hr - s.base
    assert detail[:, :, :32].abs().max() <= 0.5 / 255 + 1e-6  # only the uint8 rounding
    assert detail[:, :, 32:].std() > 0.5 * ts.DETAIL_STD
    assert (detail[0] - detail[1]).abs().mean() < 1.0 / 255  # the same grey detail on every channel, up to rounding


def test_train_and_test_textures_are_disjoint_columns():
    for c in range(1, len(ts.CLASSES)):
        train, test = ts.texture_detail(c, "train"), ts.texture_detail(c, "test")
        assert train.shape[1] + test.shape[1] == 512 and train.shape[0] == test.shape[0] == 512
        full = torch.cat([train, test], dim=1)
        assert torch.allclose(full.std(), torch.tensor(ts.DETAIL_STD), rtol=1e-3)


def test_most_detail_is_gone_from_the_lr_image():
    ratios = [ts.lr_detail_ratio(s) for s in scenes(8)]
    mean = sum(ratios) / len(ratios)
    assert 0.1 < mean < 0.5, mean  # measured 0.30: a blur of the texture survives, its detail does not


def test_one_hot_and_bad_input():
    cm = torch.tensor([[0, 1], [2, 3]])
    assert torch.equal(ts.one_hot(cm).argmax(0), cm)
    with pytest.raises(ValueError, match="0..3"):
        ts.one_hot(torch.tensor([[4]]))
    with pytest.raises(ValueError, match="integer"):
        ts.one_hot(cm.float())
    with pytest.raises(ValueError, match="split"):
        ts.TextureSceneDataset(2, 32, split="val")
    with pytest.raises(ValueError, match="multiple of 4"):
        ts.TextureSceneDataset(2, 30)
    with pytest.raises(ValueError, match="no texture"):
        ts.texture_detail(0)
    with pytest.raises(ValueError, match="square"):
        ts.compose_scene(torch.zeros(8, 12, dtype=torch.int64), torch.Generator())
    with pytest.raises(ValueError, match="do not fit"):
        ts.compose_scene(torch.ones(256, 256, dtype=torch.int64), torch.Generator(), split="test")
    with pytest.raises(IndexError):
        ts.TextureSceneDataset(2, 32).scene(2)


def test_sftgan_takes_scene_maps():
    net = srlib.create_model("sftgan_tiny", 4, num_classes=len(ts.CLASSES))
    lr, hr, seg = (torch.stack(x) for x in zip(*(ts.TextureSceneDataset(2, 32)[i] for i in range(2))))
    assert net(lr, seg).shape == hr.shape


def test_judge_recognises_hr_textures_and_not_blur():
    judge = ts.TextureJudge(scenes(12, 96, seed=100))
    test = scenes(6, 96)
    maps = [s.class_map for s in test]
    assert judge.agreement([s.hr for s in test], maps) > 0.8  # measured 0.93
    blurred = judge.agreement([upscale_bicubic(s.lr, 4) for s in test], maps)
    assert blurred < 0.5  # bicubic has no texture: every region looks flat
    swapped = torch.tensor([0, 2, 3, 1])  # the textured classes relabelled, flat kept
    flat = sum(int((m == 0).sum()) for m in maps) / sum(m.numel() for m in maps)
    assert judge.agreement([s.hr for s in test], [swapped[m] for m in maps]) < flat + 0.2
    with pytest.raises(ValueError, match="too few"):
        judge.distances(test[0].hr, torch.zeros(96, 96, dtype=torch.bool))
    by_class = judge.agreement_by_class([upscale_bicubic(s.lr, 4) for s in test], maps)
    assert by_class["flat"] > 0.9 and by_class["grass"] < 0.1  # a blur looks flat, never like grass
    pixels = {name: sum(int((m == c).sum()) for m in maps) for c, name in enumerate(ts.CLASSES)}
    weighted = sum(by_class[k] * pixels[k] for k in by_class) / sum(pixels[k] for k in by_class)
    assert weighted == pytest.approx(blurred)  # the per-class shares add up to the overall agreement


def tiny_sft():
    torch.manual_seed(0)
    return srlib.create_model("sftgan_tiny", 4, num_classes=len(ts.CLASSES), num_feat=8, num_block=1,
                              cond_feat=4, cond_hidden=8, scale_offset=1.0)


def test_training_lowers_the_l1_loss_and_feeds_the_map():
    net = tiny_sft()
    history = ts.train_on_scenes(net, 30, warmup=30, batch_size=4, size=32)
    assert history["step"] == list(range(1, 31)) and all(t == 0 for t in history["texture"])
    assert sum(history["l1"][-5:]) < sum(history["l1"][:5])
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_texture_stage_and_its_guards():
    from srlib.losses import TextureLoss

    loss = TextureLoss({"relu1_1": 1.0}, patch_size=8)
    history = ts.train_on_scenes(tiny_sft(), 4, warmup=2, texture_loss=loss, texture_weight=1.0, batch_size=2, size=32)
    assert history["texture"][:2] == [0.0, 0.0] and all(t > 0 for t in history["texture"][2:])
    with pytest.raises(ValueError, match="texture_loss"):
        ts.train_on_scenes(tiny_sft(), 4, warmup=2)
    with pytest.raises(ValueError, match="warmup"):
        ts.train_on_scenes(tiny_sft(), 4, warmup=5)
    with pytest.raises(FloatingPointError, match="non-finite"):
        ts.train_on_scenes(tiny_sft(), 2, warmup=0, texture_loss=loss, texture_weight=float("nan"), size=32)


def test_category_term_and_its_guards():
    from srlib.losses import TextureLoss

    loss = TextureLoss({"relu1_1": 1.0}, patch_size=8)
    classifier = ts.TextureClassifier()
    history = ts.train_on_scenes(tiny_sft(), 4, warmup=2, texture_loss=loss, texture_weight=1.0, pixel_weight=0.1,
                                 classifier=classifier, category_weight=0.1, batch_size=2, size=32)
    assert history["category"][:2] == [0.0, 0.0] and all(c > 0 for c in history["category"][2:])
    assert not any(p.requires_grad for p in classifier.parameters())  # frozen: the generator alone learns
    with pytest.raises(ValueError, match="classifier and a category_weight"):
        ts.train_on_scenes(tiny_sft(), 4, warmup=2, texture_loss=loss, texture_weight=1.0, category_weight=0.1)
    with pytest.raises(ValueError, match="classifier and a category_weight"):
        ts.train_on_scenes(tiny_sft(), 4, warmup=2, texture_loss=loss, texture_weight=1.0, classifier=classifier)
    with pytest.raises(ValueError, match="pixel_weight=-1"):
        ts.train_on_scenes(tiny_sft(), 4, warmup=2, texture_loss=loss, texture_weight=1.0, pixel_weight=-1)


def test_block_labels_ignore_blocks_on_a_border():
    class_map = torch.zeros(1, 8, 12, dtype=torch.int64)
    class_map[:, :, 6:] = 2  # the border runs through the middle of the second block column
    labels = ts.block_labels(ts.one_hot(class_map))
    assert labels.tolist() == [[[0, -100, 2], [0, -100, 2]]]


def test_texture_classifier_learns_hr_textures_not_blur():
    torch.manual_seed(0)
    classifier, history = ts.train_texture_classifier(150, batch_size=8)
    assert sum(history[-10:]) < sum(history[:10]) and not any(p.requires_grad for p in classifier.parameters())
    test = scenes(4, 64)
    maps = torch.stack([s.class_map for s in test])
    hr_accuracy = ts.classifier_accuracy(classifier, torch.stack([s.hr for s in test]), maps)
    labels = ts.block_labels(ts.one_hot(maps))
    flat_share = float((labels == 0).sum() / (labels >= 0).sum())
    assert hr_accuracy > max(flat_share, 0.3)  # above calling everything flat, and above chance (0.25)
    assert ts.TextureClassifier()(torch.rand(2, 3, 32, 40)).shape == (2, len(ts.CLASSES), 8, 10)


def test_uniform_map_hides_the_classes():
    net = tiny_sft()
    with torch.no_grad():
        for p in net.cond_net.parameters():
            p.normal_()  # a condition network that reacts to the map
    s = ts.TextureSceneDataset(1, 32)[0]
    lr, seg = s[0][None], s[2][None]
    other = ts.one_hot((seg.argmax(1) + 1) % len(ts.CLASSES))
    with torch.no_grad():
        assert not torch.allclose(net(lr, seg), net(lr, other))  # the map matters
        assert torch.equal(net(lr, ts.uniform_map(seg)), net(lr, ts.uniform_map(other)))  # the uniform map is blind


def test_scores_bicubic_and_a_model():
    judge = ts.TextureJudge(scenes(8, 64, seed=100))
    test = scenes(2, 64)
    bicubic = ts.score_on_scenes(None, test, judge)
    assert bicubic["psnr"] > 15 and bicubic["tsd"] > 0 and 0 <= bicubic["agree_true"] <= 1
    assert bicubic["agree_given"] == bicubic["agree_true"] and len(bicubic["outputs"]) == 2
    scored = ts.score_on_scenes(tiny_sft(), test, judge, maps=[torch.zeros(64, 64, dtype=torch.int64)] * 2)
    assert scored["agree_given"] in (0.0, 1.0)  # one region (all flat) in the maps given: judged whole
    with pytest.raises(ValueError, match="maps for"):
        ts.score_on_scenes(None, test, judge, maps=[])


@pytest.mark.parametrize("variant", sorted(ts.VARIANTS))
def test_shipped_scene_models_reproduce_their_recorded_scores(variant):
    import json

    from srlib import zoo

    model, provenance = ts.load_scene_model(variant)
    path = ts.WEIGHTS_DIR / ts.VARIANTS[variant]
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["sha256"] == zoo.sha256_of(path)  # the JSON describes this very file
    assert provenance["variant"] == variant and provenance["command"].startswith("python scripts/train_sftgan_scenes.py")
    scores = ts.score_on_scenes(model, ts.benchmark_scenes(), ts.default_judge(), use_map=variant == "sft")
    recorded = provenance["benchmark"]
    for key in ("psnr", "tsd", "agree_given", "agree_true"):
        assert scores[key] == pytest.approx(recorded[key], abs=2e-4), key


def test_load_scene_model_refuses_other_files(tmp_path):
    missing = tmp_path / "none.pt"
    with pytest.raises(FileNotFoundError, match="train_sftgan_scenes.py"):
        ts.load_scene_model("sft", missing)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(ValueError, match="not a texture-scene SFTGAN checkpoint"):
        ts.load_scene_model("sft", other)
    with pytest.raises(ValueError, match="variant must be"):
        ts.load_scene_model("gan")


def test_judge_needs_every_class_in_its_scenes():
    only_flat = ts.compose_scene(torch.zeros(32, 32, dtype=torch.int64), torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="too little of class 'brick'"):
        ts.TextureJudge([only_flat])
