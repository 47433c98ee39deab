import json

import pytest
import torch

import srlib
from srlib import zoo


def test_checkpoint_round_trip(tmp_path):
    net = srlib.create_model("learned_upscaler_tiny", scale=2, num_feat=8)
    path = zoo.save_checkpoint(net, tmp_path / "a.pt", meta={"note": "test"})
    loaded = zoo.load_checkpoint(path)
    assert loaded.srlib_meta == {"note": "test"} and loaded.srlib_overrides == {"num_feat": 8}
    lr = torch.rand(1, 3, 6, 6)
    net.eval()
    assert torch.equal(loaded(lr), net(lr))


def test_checkpoint_of_another_model_or_scale_is_refused(tmp_path):
    path = zoo.save_checkpoint(srlib.create_model("learned_upscaler_tiny", scale=2), tmp_path / "a.pt")
    with pytest.raises(zoo.CheckpointError, match="holds a 'learned_upscaler_tiny' checkpoint, not 'learned_upscaler'"):
        zoo.load_checkpoint(path, model="learned_upscaler")
    with pytest.raises(zoo.CheckpointError, match="trained for x2, not x4"):
        zoo.load_checkpoint(path, scale=4)


def test_foreign_and_corrupt_files_are_refused(tmp_path):
    bare = tmp_path / "bare.pt"
    torch.save(srlib.create_model("learned_upscaler_tiny", scale=2).state_dict(), bare)
    with pytest.raises(zoo.CheckpointError, match="not an srlib checkpoint"):
        zoo.load_checkpoint(bare)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(zoo.CheckpointError, match="not a readable torch checkpoint"):
        zoo.load_checkpoint(junk)
    good = zoo.save_checkpoint(srlib.create_model("learned_upscaler_tiny", scale=2), tmp_path / "g.pt")
    with pytest.raises(zoo.CheckpointError, match="sha256"):
        zoo.load_checkpoint(good, sha256="0" * 64)


def test_every_zoo_entry_loads_and_matches_its_metadata():
    entries = zoo.list_pretrained()
    for e in entries:
        assert {"name", "model", "scale", "kind", "reference_based", "sha256", "provenance"} <= set(e)
        assert e["provenance"].get("command"), f"{e['name']} does not say how it was made"
        net = zoo.load_pretrained(e["name"])
        assert net.srlib_name == e["model"] and net.srlib_scale == e["scale"]


def test_zoo_index_is_valid_json():
    if zoo.ZOO_INDEX.exists():
        json.loads(zoo.ZOO_INDEX.read_text())


def test_reference_checkpoints_reproduce_their_xh_score_and_beat_their_single_image_baseline():
    # chapter 6's requirement: with an XH reference a reference-based checkpoint beats the single-image one
    from srlib.refsr_data import refsr_benchmark
    from srlib.train import validate

    entries = [e for e in zoo.list_pretrained() if e["reference_based"]]
    assert entries, "the zoo ships no reference-based checkpoint"
    groups = refsr_benchmark(size=160, scale=4, seed=0)
    hr = {g.name: g.hr for g in groups}
    xh = {g.name: g.refs["XH"] for g in groups}
    for e in entries:
        assert "size=160" in e["provenance"]["validation_data"], f"{e['name']}: scored on another benchmark"
        score = validate(zoo.load_pretrained(e["name"]), hr, 4, references=xh)["psnr"]
        baseline = validate(zoo.load_pretrained(e["baseline"]), hr, 4)["psnr"]
        assert abs(score - e["level_psnr"]["XH"]) < 0.01, (e["name"], score)
        assert abs(baseline - e["baseline_val_psnr"]) < 0.01, (e["baseline"], baseline)
        assert score > baseline, f"{e['name']} at XH: {score:.2f} dB, not above {e['baseline']} ({baseline:.2f} dB)"


def test_blind_checkpoints_reproduce_their_kernel_width_scores_and_dasr_beats_its_bicubic_trained_baseline():
    # chapter 8's requirement: on blurred held-out inputs DASR beats the bicubic-trained model of similar size
    from srlib.blind import validate_blurred
    from srlib.data import bundled_images

    entries = {e["name"]: e for e in zoo.list_pretrained() if "width_psnr" in e}
    assert {"dasr_tiny_x4", "ikc_tiny_x4"} <= set(entries), "the zoo ships no blind checkpoints"
    val = bundled_images("val")
    for name, e in entries.items():
        widths = [float(w) for w in e["width_psnr"]]
        scores = validate_blurred(zoo.load_pretrained(name), val, e["scale"], widths)
        baseline = validate_blurred(zoo.load_pretrained(e["baseline"]), val, e["scale"], widths)
        for w in widths:
            assert abs(scores[w] - e["width_psnr"][f"{w:g}"]) < 0.01, (name, w, scores[w])
            assert abs(baseline[w] - e["baseline_width_psnr"][f"{w:g}"]) < 0.01, (e["baseline"], w, baseline[w])
        base = zoo.pretrained_info(e["baseline"])
        assert base["kind"] == "distortion" and "width_psnr" not in base, f"{e['baseline']} is not bicubic-trained"
        assert 0.5 < base["params"] / e["params"] < 2, f"{e['baseline']} is not of similar size to {name}"
    dasr = entries["dasr_tiny_x4"]
    blurred = [w for w in dasr["width_psnr"] if float(w) > 0]
    mean = sum(dasr["width_psnr"][w] for w in blurred) / len(blurred)
    baseline_mean = sum(dasr["baseline_width_psnr"][w] for w in blurred) / len(blurred)
    assert mean > baseline_mean, f"dasr_tiny_x4 on blurred inputs: {mean:.2f} dB, {dasr['baseline']}: {baseline_mean:.2f} dB"


def test_gan_checkpoints_start_from_the_shipped_psnr_checkpoint_and_reproduce_their_scores():
    # chapter 5: each perceptual checkpoint records its start; the start it names must be the file the zoo ships
    from srlib.data import bundled_images
    from srlib.gan import validate_texture_distance
    from srlib.train import validate

    entries = [e for e in zoo.list_pretrained() if e["kind"] == "perceptual"]
    assert entries, "the zoo ships no GAN (kind: perceptual) checkpoint"
    val = bundled_images("val")
    for e in entries:
        init = zoo.pretrained_info(e["init"])
        assert init["kind"] == "distortion" and init["model"] == e["model"], (e["name"], e["init"])
        assert e["provenance"]["init_sha256"] == init["sha256"], f"{e['init']} was retrained after {e['name']}"
        net = zoo.load_pretrained(e["name"])
        assert abs(validate(net, val, e["scale"])["psnr"] - e["val_psnr"]) < 0.01, e["name"]
        assert abs(validate_texture_distance(net, val, e["scale"]) - e["val_tsd"]) < 0.01, e["name"]


def test_grow_from_starts_a_bigger_kernel_network_at_the_trained_function():
    torch.manual_seed(0)
    small = srlib.create_model("srcnn_915", scale=3)  # random weights stand in for trained ones
    big = srlib.create_model("srcnn", scale=3)
    assert zoo.grow_from(big, small) == ["mapping.0.weight"]
    x = torch.rand(2, 3, 11, 9)
    torch.testing.assert_close(big(x), small(x), atol=1e-6, rtol=0)
    kernel = big.mapping[0].weight  # (32, 64, 5, 5): the 1x1 taps in the centre, zeros around
    torch.testing.assert_close(kernel[:, :, 2, 2], small.mapping[0].weight[:, :, 0, 0])
    assert kernel.abs().sum() == kernel[:, :, 2, 2].abs().sum()
    same = srlib.create_model("srcnn", scale=3)
    assert zoo.grow_from(same, big) == []  # same shapes: a plain copy
    torch.testing.assert_close(same(x), big(x))


def test_grow_from_refuses_networks_that_differ_in_more_than_kernel_size():
    with pytest.raises(ValueError, match="different layers"):
        zoo.grow_from(srlib.create_model("srcnn", scale=2), srlib.create_model("espcn", scale=2))
    with pytest.raises(ValueError, match="extraction.0.weight: cannot start"):  # 32 filters, not 64
        zoo.grow_from(srlib.create_model("srcnn", scale=2), srlib.create_model("srcnn_tiny", scale=2))
    with pytest.raises(ValueError, match="cannot start"):  # shrinking is not growing
        zoo.grow_from(srlib.create_model("srcnn_915", scale=2), srlib.create_model("srcnn", scale=2))
