"""The scripts that make the zoo checkpoints run end to end (a few steps, into a temporary zoo)."""
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

import srlib
from srlib import zoo

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def temporary_zoo(tmp_path, monkeypatch):
    """A copy of the zoo index and two single-image checkpoints in tmp_path; runs from tmp_path (_build/)."""
    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copy(zoo.ZOO_INDEX, weights / "zoo.json")
    shutil.copy(zoo.WEIGHTS_DIR / "enhancenet_tiny_x4.pt", weights)
    shutil.copy(zoo.WEIGHTS_DIR / "rrdbnet_tiny_x4.pt", weights)  # the start of the GAN fine-tuning
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", weights)
    monkeypatch.setattr(zoo, "ZOO_INDEX", weights / "zoo.json")
    monkeypatch.chdir(tmp_path)
    return weights


def test_train_zoo_adds_a_loadable_entry_with_its_command(temporary_zoo):
    args = ["--model", "espcn_tiny", "--scale", "2", "--steps", "2", "--patch-size", "16", "--batch-size", "2",
            "--name", "espcn_tiny_x2_test", "--threads", "1"]
    assert load_script("train_zoo").main(args) == 0
    entry = json.loads((temporary_zoo / "zoo.json").read_text())["checkpoints"]
    entry = {e["name"]: e for e in entry}["espcn_tiny_x2_test"]
    assert entry["provenance"]["command"] == "python scripts/train_zoo.py " + " ".join(args)
    assert entry["provenance"]["device"] == "cpu" or entry["provenance"]["device"].startswith("cuda")
    assert entry["provenance"]["torch_threads"] == 1 and entry["provenance"]["wall_time_s"] > 0
    assert entry["model"] == "espcn_tiny" and entry["scale"] == 2 and not entry["reference_based"]
    assert srlib.load_pretrained("espcn_tiny_x2_test") is not None


def test_train_refsr_zoo_scores_every_similarity_level(temporary_zoo):
    args = ["--model", "ttsr_tiny", "--steps", "2", "--batch-size", "2", "--patch-size", "16", "--bench-size", "48",
            "--name", "ttsr_tiny_x4_test", "--threads", "1"]
    assert load_script("train_refsr_zoo").main(args) == 0
    entry = {e["name"]: e for e in json.loads((temporary_zoo / "zoo.json").read_text())["checkpoints"]}
    entry = entry["ttsr_tiny_x4_test"]
    assert entry["reference_based"] and set(entry["level_psnr"]) == {"XH", "H", "M", "L", "XL"}
    assert entry["val_psnr"] == entry["level_psnr"]["XH"] and entry["baseline"] == "enhancenet_tiny_x4"


def test_train_refsr_zoo_refuses_single_image_models(temporary_zoo):
    with pytest.raises(SystemExit):
        load_script("train_refsr_zoo").main(["--model", "edsr_tiny", "--steps", "1", "--name", "x"])


@pytest.mark.parametrize("model", ["dasr_tiny", "ikc_tiny"])
def test_train_blind_zoo_scores_every_kernel_width_against_its_baseline(temporary_zoo, model):
    args = ["--model", model, "--stage1-steps", "2", "--stage2-steps", "2", "--batch-size", "2",
            "--patch-size", "32", "--baseline", "enhancenet_tiny_x4", "--name", f"{model}_x4_test", "--threads", "1"]
    assert load_script("train_blind_zoo").main(args) == 0
    entry = {e["name"]: e for e in json.loads((temporary_zoo / "zoo.json").read_text())["checkpoints"]}
    entry = entry[f"{model}_x4_test"]
    widths = {"0", "1.2", "2.4", "3.6"}
    assert set(entry["width_psnr"]) == set(entry["baseline_width_psnr"]) == set(entry["bicubic_width_psnr"]) == widths
    assert entry["provenance"]["steps"] == [2, 2] and entry["baseline"] == "enhancenet_tiny_x4"
    assert srlib.load_pretrained(f"{model}_x4_test")(srlib.data.bundled_images("val")["astronaut"][None, :, :32, :32]
                                                     ).shape == (1, 3, 128, 128)


@pytest.mark.parametrize("model", ["edsr_tiny", "zssr"])
def test_train_blind_zoo_refuses_models_it_cannot_train(temporary_zoo, model):
    with pytest.raises(SystemExit):
        load_script("train_blind_zoo").main(["--model", model, "--stage1-steps", "1", "--stage2-steps", "1",
                                             "--name", "x"])


def test_train_refsr_zoo_refuses_to_zero_the_output_of_ssen_which_has_no_bicubic_path(temporary_zoo):
    with pytest.raises(SystemExit):
        load_script("train_refsr_zoo").main(["--model", "ssen_tiny", "--steps", "1", "--name", "x"])


def test_train_refsr_zoo_offset_learning_rate_needs_offset_estimators(temporary_zoo):
    with pytest.raises(SystemExit):
        load_script("train_refsr_zoo").main(["--model", "ttsr_tiny", "--steps", "1", "--offset-lr-mult", "0.1",
                                             "--name", "x"])


def test_train_zoo_set_changes_the_configuration_and_the_checkpoint_rebuilds_it(temporary_zoo):
    args = ["--model", "edsr_tiny", "--scale", "2", "--steps", "1", "--patch-size", "16", "--batch-size", "2",
            "--set", "num_feat=8", "--set", "num_block=1", "--name", "edsr_8x1_x2_test", "--threads", "1"]
    assert load_script("train_zoo").main(args) == 0
    entry = zoo.pretrained_info("edsr_8x1_x2_test")
    assert entry["provenance"]["overrides"] == {"num_feat": 8, "num_block": 1}
    net = srlib.load_pretrained("edsr_8x1_x2_test")
    assert srlib.count_parameters(net) == srlib.count_parameters(srlib.create_model("edsr_tiny", 2, num_feat=8,
                                                                                     num_block=1))
    for bad in (["--set", "num_fet=8"], ["--set", "num_feat"]):
        with pytest.raises(SystemExit):
            load_script("train_zoo").main(args[:-2] + bad)


def test_train_zoo_grad_clip_reaches_the_loop_and_the_provenance(temporary_zoo, monkeypatch, capsys):
    script = load_script("train_zoo")
    seen = {}
    real_fit = script.fit

    def recording_fit(*args, **kwargs):
        seen["grad_clip"] = kwargs.get("grad_clip")
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(script, "fit", recording_fit)
    args = ["--model", "espcn_tiny", "--scale", "2", "--steps", "1", "--patch-size", "16", "--batch-size", "2",
            "--grad-clip", "0.2", "--name", "espcn_clip_x2_test", "--threads", "1"]
    assert script.main(args) == 0
    assert seen["grad_clip"] == 0.2
    assert zoo.pretrained_info("espcn_clip_x2_test")["provenance"]["grad_clip"] == 0.2
    for bad in ("0", "-1"):
        with pytest.raises(SystemExit):
            script.main(args[:-4] + ["--grad-clip", bad] + args[-4:])
    assert "--grad-clip must be a positive norm" in capsys.readouterr().err


def test_train_zoo_init_from_grows_a_zoo_checkpoint_and_records_it(temporary_zoo, capsys):
    shutil.copy(Path(srlib.__file__).parent / "weights" / "srcnn_915_x4.pt", temporary_zoo)
    args = ["--model", "srcnn", "--scale", "4", "--steps", "1", "--patch-size", "24", "--batch-size", "2",
            "--lr", "1e-9", "--init-from", "srcnn_915_x4", "--name", "srcnn_grown_x4_test", "--threads", "1"]
    script = load_script("train_zoo")
    assert script.main(args) == 0
    assert "grown: mapping.0.weight" in capsys.readouterr().out
    entry, init = zoo.pretrained_info("srcnn_grown_x4_test"), zoo.pretrained_info("srcnn_915_x4")
    assert entry["model"] == "srcnn" and entry["params"] == 57_281
    assert entry["provenance"]["init"] == "srcnn_915_x4"
    assert entry["provenance"]["init_sha256"] == init["sha256"]
    assert entry["provenance"]["init_wall_time_s"] == init["provenance"]["wall_time_s"]
    # one step at a vanishing learning rate leaves the grown network where the 9-1-5 was
    assert entry["val_psnr"] == pytest.approx(init["val_psnr"], abs=0.01)
    for bad, message in ((["--scale", "2"], "is a x4 checkpoint, this run trains x2"),
                         (["--model", "espcn"], "cannot start espcn: the two networks have different layers"),
                         (["--init-from", "no_such_x4"], "no zoo checkpoint named 'no_such_x4'")):
        flag = args.index(bad[0])
        with pytest.raises(SystemExit):
            script.main(args[:flag] + bad + args[flag + 2:])
        assert message in capsys.readouterr().err


def test_train_gan_zoo_adds_a_perceptual_entry_with_its_start_and_tsd(temporary_zoo):
    args = ["--init", "rrdbnet_tiny_x4", "--recipe", "esrgan", "--steps", "2", "--batch-size", "2",
            "--log-every", "1", "--pixel-weight", "1.5", "--lr-d", "1e-5", "--name", "rrdbnet_tiny_esrgan_x4_test",
            "--threads", "1"]
    assert load_script("train_gan_zoo").main(args) == 0
    entries = {e["name"]: e for e in json.loads((temporary_zoo / "zoo.json").read_text())["checkpoints"]}
    entry = entries["rrdbnet_tiny_esrgan_x4_test"]
    assert entry["kind"] == "perceptual" and entry["model"] == "rrdbnet_tiny" and not entry["reference_based"]
    assert entry["provenance"]["command"] == "python scripts/train_gan_zoo.py " + " ".join(args)
    assert entry["init"] == entry["provenance"]["init"] == "rrdbnet_tiny_x4"
    assert entry["provenance"]["init_sha256"] == entries["rrdbnet_tiny_x4"]["sha256"]
    assert entry["recipe"] == "esrgan" and entry["provenance"]["recipe"]["gan_kind"] == "ragan"
    assert entry["provenance"]["recipe"]["pixel_weight"] == 1.5  # the override is recorded
    assert entry["provenance"]["lr_d"] == 1e-5 and entry["provenance"]["lr"] != 1e-5
    assert entry["init_val_psnr"] == pytest.approx(entries["rrdbnet_tiny_x4"]["val_psnr"], abs=0.01)
    for key in ("val_tsd", "init_val_tsd", "bicubic_val_tsd"):
        assert entry[key] > 0
    assert entry["bicubic_val_tsd"] > entry["init_val_tsd"]  # bicubic is smoother than the trained network
    assert entry["loss_history"]["step"] == [1, 2] and len(entry["loss_history"]["loss_d"]) == 2
    assert isinstance(entry["gan_health"], str) and entry["provenance"]["steps"] == 2
    assert srlib.load_pretrained("rrdbnet_tiny_esrgan_x4_test") is not None


@pytest.mark.parametrize("init", ["ttsr_tiny_x4", "rrdbnet_tiny_esrgan_x4_test", "no_such_checkpoint"])
def test_train_gan_zoo_refuses_starts_that_are_not_single_image_distortion_checkpoints(temporary_zoo, init, capsys):
    index = temporary_zoo / "zoo.json"
    data = json.loads(index.read_text())
    fake = dict({e["name"]: e for e in data["checkpoints"]}["rrdbnet_tiny_x4"], name="rrdbnet_tiny_esrgan_x4_test",
                kind="perceptual")
    index.write_text(json.dumps({"checkpoints": data["checkpoints"] + [fake]}))
    with pytest.raises(SystemExit):
        load_script("train_gan_zoo").main(["--init", init, "--recipe", "srgan", "--steps", "1", "--name", "x"])
    message = capsys.readouterr().err
    assert {"ttsr_tiny_x4": "reference-based", "rrdbnet_tiny_esrgan_x4_test": "kind: perceptual",
            "no_such_checkpoint": "no zoo checkpoint named"}[init] in message


def test_train_sftgan_scenes_writes_weights_that_reload_with_their_scores(tmp_path):
    from srlib import texture_scenes as ts

    out = tmp_path / "sft.pt"
    args = ["--variant", "no_prior", "--steps", "3", "--warmup", "2", "--classifier-steps", "2", "--threads", "1",
            "--out", str(out)]
    assert load_script("train_sftgan_scenes").main(args) == 0
    model, provenance = ts.load_scene_model("no_prior", out)
    assert provenance["steps"] == 3 and provenance["command"].endswith(" ".join(args))
    assert provenance["classifier_steps"] == 2 and 0 <= provenance["benchmark"]["classifier_accuracy_sr"] <= 1
    assert json.loads(out.with_suffix(".json").read_text())["sha256"] == zoo.sha256_of(out)
    scores = ts.score_on_scenes(model, ts.benchmark_scenes(), ts.default_judge(), use_map=False)
    assert scores["psnr"] == pytest.approx(provenance["benchmark"]["psnr"], abs=1e-4)


@pytest.fixture(scope="module")
def val_photos_as_png(tmp_path_factory):
    """The bundled validation photos written as PNG files: a benchmark folder whose scores the zoo records."""
    from srlib.data import bundled_images, save_image

    folder = tmp_path_factory.mktemp("val_hr")
    for name, image in bundled_images("val").items():
        save_image(image, folder / f"{name}.png")  # uint8 photos: the PNG round trip is exact
    return folder


def test_check_zoo_benchmarks_reproduces_the_zoo_record_and_applies_the_bar(val_photos_as_png, capsys):
    check = load_script("check_zoo_benchmarks")
    record = zoo.pretrained_info("espcn_x4")
    gain = record["val_psnr"] - record["bicubic_val_psnr"]
    argv = ["--hr-dir", str(val_photos_as_png), "--pattern", "espcn_x4", "--json"]
    assert check.main(argv + ["--min-gain", f"{gain - 0.05:.2f}"]) == 0
    report = json.loads(capsys.readouterr().out)
    (row,) = report["checkpoints"]
    assert row["name"] == "espcn_x4" and report["images"] == 5
    assert abs(row["psnr"] - record["val_psnr"]) < 0.01 and abs(report["bicubic_psnr"] - record["bicubic_val_psnr"]) < 0.01
    assert check.main(argv + ["--min-gain", f"{gain + 0.05:.2f}"]) == 1  # the same scores below a higher bar
    assert not json.loads(capsys.readouterr().out)["checkpoints"][0]["passes"]


def test_check_zoo_benchmarks_leaves_out_what_a_plain_folder_cannot_score(val_photos_as_png, capsys):
    check = load_script("check_zoo_benchmarks")
    why = {e["name"]: check.left_out_because(e) for e in zoo.list_pretrained("*_x4")}
    assert "reference" in why["ttsr_tiny_x4"] and "blind" in why["dasr_tiny_x4"]
    assert "perceptual" in why["rrdbnet_tiny_esrgan_x4"] and why["rcan_tiny_x4"] is None
    with pytest.raises(SystemExit) as exc:  # nothing left to score is a usage error, not a pass
        check.main(["--hr-dir", str(val_photos_as_png), "--pattern", "*esrgan*"])
    assert exc.value.code == 2 and "no distortion checkpoint" in capsys.readouterr().err


def test_check_zoo_benchmarks_says_where_a_missing_benchmark_goes(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        load_script("check_zoo_benchmarks").main(["--dataset", "Set5", "--root", str(tmp_path)])
    assert exc.value.code == 2 and str(tmp_path) in capsys.readouterr().err
