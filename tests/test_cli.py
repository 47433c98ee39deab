"""The command line on good and bad input: clear messages, the other images still evaluated."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import srlib
from srlib import zoo
from srlib.__main__ import main


@pytest.fixture
def hr_dir(tmp_path, smooth_image):
    folder = tmp_path / "hr"
    folder.mkdir()
    rgb = (smooth_image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(rgb).save(folder / "rgb.png")
    Image.fromarray(rgb[..., 1]).save(folder / "gray.png")
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).save(folder / "rgba.png")
    Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(folder / "sixteen.png")
    Image.fromarray(rgb[:3, :3]).save(folder / "tiny.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_json_contract_and_skips(capsys, hr_dir):
    code, out, err = run(capsys, "eval", "--model", "bicubic", "--scale", 4, "--hr-dir", hr_dir, "--json")
    assert code == 0
    report = json.loads(out)
    assert {"model", "scale", "images", "psnr", "ssim"} <= set(report)
    assert sorted(r["name"] for r in report["images"]) == ["gray.png", "rgb.png", "rgba.png", "sixteen.png"]
    assert all({"name", "psnr", "ssim"} <= set(r) for r in report["images"])
    skipped = {s["name"]: s["reason"] for s in report["skipped"]}
    assert set(skipped) == {"notes.txt", "tiny.png"}
    assert "too small" in skipped["tiny.png"]
    assert "notes.txt" in err and "tiny.png" in err
    assert abs(report["psnr"] - np.mean([r["psnr"] for r in report["images"]])) < 1e-9


def test_eval_missing_folder(capsys, tmp_path):
    code, _, err = run(capsys, "eval", "--model", "bicubic", "--scale", 2, "--hr-dir", tmp_path / "nope")
    assert code == 2 and "does not exist" in err


def test_eval_checkpoint_for_another_scale_or_foreign(capsys, tmp_path, hr_dir):
    ckpt = zoo.save_checkpoint(srlib.create_model("learned_upscaler_tiny", scale=2), tmp_path / "x2.pt")
    code, _, err = run(capsys, "eval", "--model", ckpt, "--scale", 4, "--hr-dir", hr_dir)
    assert code == 2 and "trained for x2, not x4" in err
    bare = tmp_path / "bare.pt"
    torch.save({"weight": torch.zeros(1)}, bare)
    code, _, err = run(capsys, "eval", "--model", bare, "--scale", 2, "--hr-dir", hr_dir)
    assert code == 2 and "not an srlib checkpoint" in err
    code, _, err = run(capsys, "eval", "--model", "no_such_zoo_name", "--scale", 2, "--hr-dir", hr_dir)
    assert code == 2 and "no zoo checkpoint named" in err


def test_eval_checkpoint_path_runs(capsys, tmp_path, hr_dir):
    ckpt = zoo.save_checkpoint(srlib.create_model("learned_upscaler_tiny", scale=2), tmp_path / "x2.pt")
    code, out, _ = run(capsys, "eval", "--model", ckpt, "--scale", 2, "--hr-dir", hr_dir, "--json")
    bicubic = json.loads(run(capsys, "eval", "--model", "bicubic", "--scale", 2, "--hr-dir", hr_dir, "--json")[1])
    assert code == 0
    # The untrained upscaler is float bicubic; the CLI's bicubic rounds between passes as MATLAB does on
    # uint8 images: the two differ by hundredths of a dB, no more.
    assert abs(json.loads(out)["psnr"] - bicubic["psnr"]) < 0.05


def test_upscale_and_bad_input(capsys, tmp_path, hr_dir):
    out_path = tmp_path / "out" / "sr.png"
    code, out, _ = run(capsys, "upscale", hr_dir / "rgba.png", out_path, "--model", "bicubic", "--scale", 2)
    assert code == 0 and Image.open(out_path).size == (96, 96)
    code, _, err = run(capsys, "upscale", hr_dir / "notes.txt", out_path, "--model", "bicubic", "--scale", 2)
    assert code == 2 and "notes.txt" in err
    code, _, err = run(capsys, "upscale", tmp_path / "missing.png", out_path, "--model", "bicubic", "--scale", 2)
    assert code == 2 and "missing.png" in err


def test_upscale_tiled_equals_whole_for_a_pointwise_safe_model(tmp_path):
    from srlib.inference import super_resolve, upscale_tiled

    net = srlib.create_model("learned_upscaler_tiny", scale=2)
    torch.nn.init.normal_(net.tail.weight, std=0.05)
    lr = torch.rand(3, 40, 52)
    whole, tiled = super_resolve(net, lr), upscale_tiled(net, lr, 2, tile=24, overlap=6)
    # receptive field of the tiny model (4 convs: 4 px) < overlap, and bicubic reads 2 px: tiles agree
    # except near the image border where bicubic's mirror padding differs inside a tile.
    assert torch.allclose(whole[:, 8:-8, 8:-8], tiled[:, 8:-8, 8:-8], atol=1e-5)


def test_list_json(capsys):
    code, out, _ = run(capsys, "list", "--json")
    assert code == 0 and isinstance(json.loads(out), list)
    for entry in json.loads(out):
        assert {"name", "model", "scale", "kind", "reference_based"} <= set(entry)
    code, out, _ = run(capsys, "list", "--models", "--json")
    assert "learned_upscaler" in [m["name"] for m in json.loads(out)]


@pytest.mark.filterwarnings("ignore:PatchDataset skipped")  # tiny.png is smaller than the patch
@pytest.mark.filterwarnings("ignore:ImageFolder")  # the CLI lists the skipped files itself (asserted below)
def test_train_on_a_folder_skips_bad_files(capsys, tmp_path, hr_dir):
    out = tmp_path / "run.pt"
    (hr_dir / "broken.png").write_text("not a png")  # an image by name only: must be skipped, named
    code, stdout, err = run(capsys, "train", "--model", "learned_upscaler_tiny", "--scale", 2, "--steps", 2,
                            "--out", out, "--hr-dir", hr_dir, "--patch-size", 16, "--batch-size", 2, "--device", "cpu")
    assert code == 0 and out.is_file() and "broken.png" in err
    assert zoo.load_checkpoint(out, model="learned_upscaler_tiny", scale=2).srlib_meta["steps"] == 2
    code, _, err = run(capsys, "train", "--model", "learned_upscaler_tiny", "--scale", 2, "--steps", 2,
                       "--out", out, "--hr-dir", tmp_path / "missing")
    assert code == 2 and "missing" in err


def test_reference_based_models_need_and_use_a_reference(capsys, tmp_path, hr_dir):
    ckpt = zoo.save_checkpoint(srlib.create_model("ttsr_tiny", scale=4), tmp_path / "ttsr.pt")
    lr_path, ref_path, out = hr_dir / "rgb.png", hr_dir / "gray.png", tmp_path / "sr.png"
    code, _, err = run(capsys, "upscale", lr_path, out, "--model", ckpt, "--scale", 4)
    assert code == 2 and "reference-based model: give a high-resolution reference image with --ref" in err
    code, _, err = run(capsys, "eval", "--model", ckpt, "--scale", 4, "--hr-dir", hr_dir)
    assert code == 2 and "reference-based model" in err and "references=" in err
    code, out_text, _ = run(capsys, "upscale", lr_path, out, "--model", ckpt, "--scale", 4, "--ref", ref_path)
    assert code == 0 and "with reference" in out_text
    assert Image.open(out).size == (4 * 48, 4 * 48)
    code, _, err = run(capsys, "upscale", lr_path, out, "--model", "bicubic", "--scale", 4, "--ref", ref_path)
    assert code == 2 and "takes no --ref" in err
    code, _, err = run(capsys, "train", "--model", "ttsr_tiny", "--steps", 1, "--out", tmp_path / "t.pt")
    assert code == 2 and "scripts/train_refsr_zoo.py" in err
    code, _, err = run(capsys, "train", "--model", "no_such_net", "--steps", 1, "--out", tmp_path / "t.pt")
    assert code == 2 and "unknown model 'no_such_net'" in err


def test_a_reference_of_the_wrong_size_is_a_clear_error(capsys, tmp_path, hr_dir):
    # SSEN aligns the reference pixel for pixel, so it must be exactly scale x the input
    ckpt = zoo.save_checkpoint(srlib.create_model("ssen_tiny", scale=4), tmp_path / "ssen.pt")
    code, _, err = run(capsys, "upscale", hr_dir / "tiny.png", tmp_path / "sr.png", "--model", ckpt, "--scale", 4,
                       "--ref", hr_dir / "rgb.png")
    assert code == 2 and err.startswith("error: ") and "rgb.png does not fit" in err
    assert "(1, 3, 12, 12)" in err and "Traceback" not in err and not (tmp_path / "sr.png").exists()
