"""srlib.features: the plain-torch VGG19 and the frozen feature extractor.

Key/shape compatibility with torchvision's vgg19 state dict (written out here by hand, since
torchvision cannot be imported), loading real-format weights from a dict or a file, layer
selection and cutting, before/after activation, the errors for unknown layers and foreign
architectures, freezing, and the self-supervised training script (a few steps, tiny patches).
"""
import importlib.util
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import srlib
from srlib import features
from srlib.features import VGG19, VGGFeatureExtractor

# torchvision vgg19(): features.N convs (index: in, out channels) and the classifier, written out by hand.
TORCHVISION_CONVS = {0: (3, 64), 2: (64, 64), 5: (64, 128), 7: (128, 128), 10: (128, 256), 12: (256, 256),
                     14: (256, 256), 16: (256, 256), 19: (256, 512), 21: (512, 512), 23: (512, 512), 25: (512, 512),
                     28: (512, 512), 30: (512, 512), 32: (512, 512), 34: (512, 512)}
TORCHVISION_CLASSIFIER = {0: (4096, 25088), 3: (4096, 4096), 6: (1000, 4096)}


def torchvision_shapes() -> dict[str, tuple[int, ...]]:
    shapes = {}
    for i, (cin, cout) in TORCHVISION_CONVS.items():
        shapes[f"features.{i}.weight"], shapes[f"features.{i}.bias"] = (cout, cin, 3, 3), (cout,)
    for i, (cout, cin) in TORCHVISION_CLASSIFIER.items():
        shapes[f"classifier.{i}.weight"], shapes[f"classifier.{i}.bias"] = (cout, cin), (cout,)
    return shapes


def fake_vgg19_features(up_to: int = 34, seed: int = 0) -> dict[str, torch.Tensor]:
    """A torchvision-format state dict of the convs up to features.{up_to}, random values."""
    g = torch.Generator().manual_seed(seed)
    shapes = torchvision_shapes()
    return {k: 0.05 * torch.randn(shapes[k], generator=g) for k in shapes
            if k.startswith("features.") and int(k.split(".")[1]) <= up_to}


# --------------------------------------------------------------------------------------- layout

def test_vgg19_has_torchvisions_keys_shapes_and_parameter_count():
    with torch.device("meta"):
        net = VGG19()
    got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert got == torchvision_shapes()
    assert srlib.count_parameters(net) == 143_667_240  # reference sheet 0.3 (torchvision VGG19)


def test_layer_names_match_torchvision_indices():
    assert len(features.VGG19_LAYERS) == 37
    assert [i for i, n in enumerate(features.VGG19_LAYERS) if n.startswith("conv")] == sorted(TORCHVISION_CONVS)
    assert features.layer_index("relu2_2") == 8 and features.layer_index("relu5_4") == 35
    assert features.layer_index("pool5") == 36 and features.layer_index("conv3_1") == 10
    strides = [features.layer_stride(n) for n in ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4")]
    assert strides == [1, 2, 4, 8, 16]
    assert features.feature_size("relu5_4", 96) == 6


# -------------------------------------------------------------------------------------- loading

def test_extractor_loads_torchvision_format_weights_and_reads_the_right_layers():
    state = fake_vgg19_features(up_to=7)
    state["classifier.6.bias"] = torch.zeros(1000)  # keys the cut network does not need are ignored
    ext = VGGFeatureExtractor(("relu1_1", "relu2_2"), weights=state)
    x = torch.rand(2, 3, 16, 16)
    out = ext(x)
    # by hand: ImageNet normalisation, conv1_1, ReLU
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (features.IMAGENET_MEAN, features.IMAGENET_STD))
    normed = (x - mean) / std
    relu1_1 = F.relu(F.conv2d(normed, state["features.0.weight"], state["features.0.bias"], padding=1))
    assert torch.allclose(out["relu1_1"], relu1_1, atol=1e-5)
    h = F.relu(F.conv2d(relu1_1, state["features.2.weight"], state["features.2.bias"], padding=1))
    h = F.max_pool2d(h, 2)
    h = F.relu(F.conv2d(h, state["features.5.weight"], state["features.5.bias"], padding=1))
    h = F.relu(F.conv2d(h, state["features.7.weight"], state["features.7.bias"], padding=1))
    assert torch.allclose(out["relu2_2"], h, atol=1e-5)
    assert list(out) == ["relu1_1", "relu2_2"] and len(ext.features) == 9  # cut after relu2_2
    assert ext.weights_source == "given state dict"


def test_extractor_loads_from_a_file_with_module_prefix_and_fp16(tmp_path):
    state = fake_vgg19_features(up_to=2)
    path = tmp_path / "vgg19.pth"
    torch.save({"module." + k: v.half() for k, v in state.items()}, path)  # DataParallel keys, float16
    ext = VGGFeatureExtractor(("conv1_2",), weights=path)
    assert torch.allclose(ext.features[2].weight, state["features.2.weight"].half().float())
    assert str(path) in ext.weights_source
    # the format the training script writes: {"format", "state_dict", ...}
    torch.save({"format": features.WEIGHTS_FORMAT, "state_dict": state, "provenance": {"steps": 1}}, path)
    assert torch.equal(VGGFeatureExtractor(("relu1_2",), weights=path).features[0].weight, state["features.0.weight"])


def test_full_vgg19_loads_a_torchvision_state_dict_strictly():
    with torch.device("meta"):
        net = VGG19()
        state = {k: torch.empty(s) for k, s in torchvision_shapes().items()}
    net.load_state_dict(state, assign=True)  # strict: raises on any missing or unexpected key
    with pytest.raises(RuntimeError, match="Missing key"):
        net.load_state_dict({k: v for k, v in state.items() if not k.startswith("classifier")}, assign=True)


# -------------------------------------------------------------------------------------- selection

def test_before_activation_reads_the_conv_output():
    x = torch.rand(1, 3, 16, 16)
    after = VGGFeatureExtractor(("relu1_2", "relu2_1"))(x)
    before = VGGFeatureExtractor(("relu1_2", "relu2_1"), before_activation=True)(x)
    assert list(before) == ["relu1_2", "relu2_1"]  # the requested names are kept
    assert (before["relu2_1"] < 0).any() and (after["relu2_1"] >= 0).all()
    for name in before:
        assert torch.allclose(F.relu(before[name]), after[name])


def test_random_weights_are_seeded_and_labelled():
    a, b = VGGFeatureExtractor(("relu1_1",), seed=0), VGGFeatureExtractor(("relu1_1",), seed=0)
    c = VGGFeatureExtractor(("relu1_1",), seed=1)
    assert torch.equal(a.features[0].weight, b.features[0].weight)
    assert not torch.equal(a.features[0].weight, c.features[0].weight)
    assert "random" in a.weights_source and "not a trained VGG" in a.weights_source
    assert "not a trained VGG" in repr(a)


def test_extractor_is_frozen_but_passes_gradients_to_its_input():
    ext = VGGFeatureExtractor(("relu2_2",))
    assert all(not p.requires_grad for p in ext.parameters())
    parent = torch.nn.Sequential(ext).train()
    assert not ext.training and not ext.features.training
    x = torch.rand(1, 3, 12, 12, requires_grad=True)
    ext(x)["relu2_2"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in parent.parameters())
    assert {"mean", "std"} <= {k for k, _ in ext.named_buffers()}  # normalisation moves with .to()


def test_no_input_norm_feeds_the_raw_image():
    state = fake_vgg19_features(up_to=0)
    x = torch.rand(1, 3, 8, 8)
    out = VGGFeatureExtractor(("conv1_1",), weights=state, use_input_norm=False)(x)["conv1_1"]
    assert torch.allclose(out, F.conv2d(x, state["features.0.weight"], state["features.0.bias"], padding=1), atol=1e-6)


# ----------------------------------------------------------------------------------------- errors

def test_unknown_layer_names_are_refused_with_suggestions():
    with pytest.raises(ValueError, match="unknown VGG19 layer 'relu2_3'.*relu2_2"):
        VGGFeatureExtractor(("relu2_3",))
    with pytest.raises(TypeError, match="sequence of names"):
        VGGFeatureExtractor("relu2_2")
    with pytest.raises(ValueError, match="empty"):
        VGGFeatureExtractor(())
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        VGGFeatureExtractor(("relu1_1",))(torch.rand(1, 1, 8, 8))


def test_weights_of_another_architecture_are_refused():
    bn_like = fake_vgg19_features(up_to=0)
    bn_like["features.1.weight"] = torch.ones(64)  # vgg19_bn: features.1 is a BatchNorm
    with pytest.raises(ValueError, match="features.1, which is relu1_1.*vgg19_bn or vgg16"):
        VGGFeatureExtractor(("relu1_2",), weights=bn_like)
    wrong_shape = fake_vgg19_features(up_to=2)
    wrong_shape["features.2.weight"] = torch.zeros(32, 64, 3, 3)
    with pytest.raises(ValueError, match=r"features.2.weight has shape \(32, 64, 3, 3\), VGG19 has \(64, 64, 3, 3\)"):
        VGGFeatureExtractor(("relu1_2",), weights=wrong_shape)
    shallow = fake_vgg19_features(up_to=16)  # what the self-trained file holds (up to relu3_4)
    with pytest.raises(ValueError, match="stop at VGG19's conv3_4.*up to relu5_4"):
        VGGFeatureExtractor(("relu5_4",), weights=shallow)
    with pytest.raises(ValueError, match="no 'features.N.weight' keys"):
        VGGFeatureExtractor(("relu1_1",), weights={"conv1.weight": torch.zeros(1)})


def test_missing_self_supervised_file_says_how_to_make_it(monkeypatch, tmp_path):
    monkeypatch.setattr(features, "SELFSUP_WEIGHTS", tmp_path / "absent.pt")
    with pytest.raises(FileNotFoundError, match="scripts/train_feature_extractor.py"):
        VGGFeatureExtractor(("relu1_1",), weights="selfsup")
    with pytest.raises(FileNotFoundError, match="torchvision-format"):
        VGGFeatureExtractor(("relu1_1",), weights=tmp_path / "nope.pth")


# ------------------------------------------------------------------------------- training script

def test_training_script_writes_loadable_weights_and_provenance(tmp_path):
    path = Path(__file__).resolve().parents[1] / "scripts" / "train_feature_extractor.py"
    spec = importlib.util.spec_from_file_location("train_feature_extractor", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "vgg19_selfsup.pt"
    assert script.main(["--steps", "2", "--batch-size", "4", "--patch-size", "16", "--up-to", "relu2_2",
                        "--out", str(out)]) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["sha256"] == srlib.zoo.sha256_of(out) and record["steps"] == 2
    assert set(record["val_accuracy"]) == {"relu1_2", "relu2_2"}
    saved = torch.load(out, weights_only=True)
    assert saved["format"] == features.WEIGHTS_FORMAT
    assert max(int(k.split(".")[1]) for k in saved["state_dict"]) == 7  # only the trained layers (conv2_2)
    assert all(v.dtype == torch.float16 for v in saved["state_dict"].values())  # small file
    ext = VGGFeatureExtractor(("relu2_2",), weights=out)
    assert torch.isfinite(ext(torch.rand(1, 3, 16, 16))["relu2_2"]).all()
    # the degradations keep images on the 8-bit grid, so the grid is no shortcut for the classifier
    hr = torch.rand(len(script.DEGRADATIONS) * 2, 3, 16, 16)
    images, labels = script.degrade_batch(hr, torch.Generator().manual_seed(0))
    assert images.shape == hr.shape and torch.equal(images * 255, (images * 255).round())
    assert labels.max() < len(script.DEGRADATIONS)


def test_shipped_self_supervised_extractor_matches_its_provenance_and_loads():
    record = json.loads(features.SELFSUP_WEIGHTS.with_suffix(".json").read_text())
    assert record["sha256"] == srlib.zoo.sha256_of(features.SELFSUP_WEIGHTS)
    assert record["command"].startswith("python scripts/train_feature_extractor.py")
    # trained beyond chance on held-out photos at every supervised layer
    assert min(record["val_accuracy"].values()) > 2 * record["chance_accuracy"]
    trained = VGGFeatureExtractor(("relu3_4",), weights="selfsup")
    random = VGGFeatureExtractor(("relu3_4",), weights=None)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(trained(x)["relu3_4"], random(x)["relu3_4"])
