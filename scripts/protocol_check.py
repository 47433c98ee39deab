"""Check srlib's evaluation protocol against scikit-image on the photos scikit-image ships.

For every image and scale (2, 3, 4) it runs the bicubic baseline the way the papers do
(HR mod-crop -> MATLAB bicubic downscale, rounded to uint8 -> MATLAB bicubic upscale) and measures
PSNR/SSIM twice: with ``srlib.metrics`` (torch) and with ``skimage.metrics`` on Y arrays made
independently by ``skimage.color.rgb2ycbcr`` (the same BT.601 formula as MATLAB) from the
uint8-rounded images, shaved by ``scale`` pixels. The two should agree to ~1e-9.

Usage:
    python scripts/protocol_check.py            # a table and the largest differences
    python scripts/protocol_check.py --json     # the same as one JSON object

Runs on the CPU in well under a minute.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import skimage.color
import skimage.data
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srlib.degrade import bicubic_downscale, mod_crop, upscale_bicubic
from srlib.metrics import psnr, psnr_rgb, ssim

# Images bundled with scikit-image (no download). Grey ones are repeated over three channels.
# (hubble_deep_field, retina and cell are left out only to keep the run short.)
IMAGES = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "colorwheel",
          "camera", "coins", "moon", "page", "text", "clock", "brick", "grass"]
SCALES = (2, 3, 4)


def load(name: str) -> torch.Tensor:
    """skimage.data.<name>() as a (3, H, W) float32 tensor in [0, 1] (HWC uint8 only here, at I/O)."""
    arr = getattr(skimage.data, name)()
    if arr.dtype != np.uint8:
        raise ValueError(f"{name} is {arr.dtype}, not uint8")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(arr[..., :3])).permute(2, 0, 1).float() / 255


def skimage_y(img: torch.Tensor, shave: int) -> np.ndarray:
    """Y on [16, 235] of the uint8-rounded image, by scikit-image alone, shaved."""
    u8 = np.floor(img.double().clamp(0, 1).numpy().transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)
    y = skimage.color.rgb2ycbcr(u8)[..., 0]
    return y[shave:-shave, shave:-shave]


def measure(name: str, hr_full: torch.Tensor, scale: int) -> dict:
    hr = mod_crop(hr_full, scale)
    sr = upscale_bicubic(bicubic_downscale(hr, scale), scale)
    y_sr, y_hr = skimage_y(sr, scale), skimage_y(hr, scale)
    return {
        "image": name, "size": list(hr.shape[-2:]), "scale": scale,
        "psnr": psnr(sr, hr, scale),
        "psnr_skimage": float(peak_signal_noise_ratio(y_hr, y_sr, data_range=255)),
        "ssim": ssim(sr, hr, scale),
        "ssim_skimage": float(structural_similarity(y_hr, y_sr, gaussian_weights=True, sigma=1.5,
                                                    use_sample_covariance=False, data_range=255)),
        "psnr_rgb": psnr_rgb(sr, hr, scale),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    rows, skipped = [], []
    for name in IMAGES:
        try:
            hr = load(name)
        except Exception as exc:  # e.g. an image this scikit-image version would have to download
            skipped.append({"image": name, "reason": f"{type(exc).__name__}: {exc}"})
            continue
        rows.extend(measure(name, hr, s) for s in SCALES)
    max_dpsnr = max(abs(r["psnr"] - r["psnr_skimage"]) for r in rows)
    max_dssim = max(abs(r["ssim"] - r["ssim_skimage"]) for r in rows)
    means = {s: {k: float(np.mean([r[k] for r in rows if r["scale"] == s])) for k in ("psnr", "ssim", "psnr_rgb")}
             for s in SCALES}
    seconds = time.perf_counter() - start

    if args.json:
        print(json.dumps({"rows": rows, "mean": means, "max_abs_diff": {"psnr": max_dpsnr, "ssim": max_dssim},
                          "skipped": skipped, "seconds": round(seconds, 2)}, indent=2))
    else:
        print("Bicubic baseline, paper protocol (Y BT.601, shave = scale, uint8 rounding): srlib vs scikit-image")
        print(f"{'image':<22}{'HxW':>10}{'x':>3}{'PSNR srlib':>12}{'PSNR skimage':>14}{'SSIM srlib':>12}"
              f"{'SSIM skimage':>14}{'PSNR RGB':>10}")
        for r in rows:
            print(f"{r['image']:<22}{r['size'][0]:>5}x{r['size'][1]:<4}{r['scale']:>3}{r['psnr']:>12.4f}"
                  f"{r['psnr_skimage']:>14.4f}{r['ssim']:>12.6f}{r['ssim_skimage']:>14.6f}{r['psnr_rgb']:>10.4f}")
        for s in SCALES:
            m = means[s]
            print(f"{'mean x' + str(s):<35}{m['psnr']:>12.4f}{'':>14}{m['ssim']:>12.6f}{'':>14}{m['psnr_rgb']:>10.4f}")
        print(f"max |PSNR srlib - skimage| = {max_dpsnr:.3e} dB, max |SSIM srlib - skimage| = {max_dssim:.3e}")
        for s in skipped:
            print(f"skipped {s['image']}: {s['reason']}")
        print(f"{len(rows)} measurements in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
