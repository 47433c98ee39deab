"""Score every single-image zoo checkpoint on a standard benchmark, against bicubic, with the paper protocol.

The chapters' acceptance bar for the zoo is "at least 1.0 dB above bicubic at x4 on held-out standard
benchmarks". Those benchmarks are not in the repository and cannot be downloaded where the course is built,
so the zoo records only the bundled validation photos (``val_psnr``). This script is the check on the real
benchmarks, for anyone who has them:

    python scripts/check_zoo_benchmarks.py --dataset Set5 --download       # fetch, verify, score
    python scripts/check_zoo_benchmarks.py --dataset Urban100 --min-gain 1.0 --json
    python scripts/check_zoo_benchmarks.py --dataset DIV2K --split valid
    python scripts/check_zoo_benchmarks.py --hr-dir path/to/any/HR/folder --pattern "edsr*"

For each checkpoint of the chosen scale whose kind is ``distortion`` (the PSNR-oriented ones: the GAN
fine-tunes trade PSNR for texture on purpose), it prints the mean PSNR/SSIM on Y with a ``scale``-pixel
shave (``srlib.train.validate``, the function that made the zoo's validation numbers), bicubic's, the
gain, and whether the gain reaches ``--min-gain``. Reference-based checkpoints need a reference per image
and blind ones are scored per blur width in their own chapter, so both are left out (and listed).
Exit status: 0 if every scored checkpoint reaches the bar, 1 if one does not, 2 on a usage error.
"""
from __future__ import annotations

import argparse
import json
import sys

from srlib import zoo
from srlib.data import ImageFolder, load_benchmark
from srlib.degrade import upscale_bicubic
from srlib.train import validate


def left_out_because(entry: dict) -> str | None:
    """Why a zoo entry is not scored on a plain HR folder, or None if it is."""
    if entry["kind"] != "distortion":
        return f"kind {entry['kind']!r} (not PSNR-oriented)"
    if entry.get("reference_based"):
        return "reference-based (needs a reference per image)"
    if "width_psnr" in entry:
        return "blind SR (scored per blur width by scripts/train_blind_zoo.py)"
    return None


def score(images: dict, scale: int, pattern: str, min_gain: float) -> dict:
    """Bicubic and every eligible checkpoint on ``images`` (name -> HR); the report as a dict."""
    bicubic = validate(lambda lr: upscale_bicubic(lr, scale), images, scale)
    rows, skipped = [], []
    for entry in zoo.list_pretrained(pattern):
        if entry["scale"] != scale:
            continue
        reason = left_out_because(entry)
        if reason:
            skipped.append({"name": entry["name"], "reason": reason})
            continue
        result = validate(zoo.load_pretrained(entry["name"]), images, scale)
        gain = result["psnr"] - bicubic["psnr"]
        rows.append({"name": entry["name"], "model": entry["model"], "params": entry["params"],
                     "psnr": result["psnr"], "ssim": result["ssim"], "gain": gain, "passes": gain >= min_gain,
                     "val_psnr_gain": entry["val_psnr"] - entry["bicubic_val_psnr"]})
    return {"scale": scale, "images": len(images), "min_gain": min_gain, "bicubic_psnr": bicubic["psnr"],
            "bicubic_ssim": bicubic["ssim"], "checkpoints": rows, "skipped": skipped,
            "all_pass": bool(rows) and all(r["passes"] for r in rows)}


def print_report(report: dict, source: str) -> None:
    print(f"{source}: {report['images']} images, x{report['scale']}, Y channel, {report['scale']}-px shave; "
          f"bicubic {report['bicubic_psnr']:.2f} dB / {report['bicubic_ssim']:.4f}")
    print(f"{'checkpoint':<24} {'params':>9} {'PSNR':>7} {'SSIM':>7} {'gain':>6} {'val gain':>9}  "
          f">= {report['min_gain']:.1f} dB")
    for r in sorted(report["checkpoints"], key=lambda r: -r["gain"]):
        print(f"{r['name']:<24} {r['params']:>9,} {r['psnr']:7.2f} {r['ssim']:7.4f} {r['gain']:+6.2f} "
              f"{r['val_psnr_gain']:+9.2f}  {'yes' if r['passes'] else 'NO'}")
    for s in report["skipped"]:
        print(f"left out {s['name']}: {s['reason']}")
    passed = sum(r["passes"] for r in report["checkpoints"])
    print(f"{passed} of {len(report['checkpoints'])} checkpoints reach the bar")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--dataset", help="Set5, Set14, B100, Urban100 or DIV2K (srlib.data.load_benchmark)")
    where.add_argument("--hr-dir", help="a folder of HR images instead")
    p.add_argument("--root", help="data root for --dataset (default: $SRLIB_DATA, else ~/.cache/srlib/datasets)")
    p.add_argument("--split", help="for --dataset: e.g. 'valid' for DIV2K's 100 validation images (default: the first)")
    p.add_argument("--download", action="store_true", help="fetch --dataset if missing (checks its sha256)")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--pattern", default="*", help="zoo names to score (fnmatch), e.g. 'rcan*'")
    p.add_argument("--min-gain", type=float, default=1.0, help="the bar, in dB above bicubic")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)

    if args.dataset:
        if args.dataset.lower() == "cufed5":
            p.error("CUFED5 is a reference-based benchmark: scripts/train_refsr_zoo.py scores its models")
        try:
            folder = load_benchmark(args.dataset, root=args.root, download=args.download, scale=args.scale,
                                    split=args.split)
        except (FileNotFoundError, ValueError) as exc:  # not there (the message says where), unknown name
            p.error(str(exc))
        source = f"{args.dataset} ({folder.root})"
    else:
        try:
            folder = ImageFolder(args.hr_dir, mod_crop=args.scale)
        except (FileNotFoundError, ValueError) as exc:
            p.error(str(exc))
        source = args.hr_dir
    images = dict(folder)
    report = score(images, args.scale, args.pattern, args.min_gain)
    if not report["checkpoints"]:
        p.error(f"no distortion checkpoint at x{args.scale} matches {args.pattern!r}")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report, source)
    return 0 if report["all_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
