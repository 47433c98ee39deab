"""Train a blind model (DASR, IKC) on the blur-kernel range and add the checkpoint to the srlib zoo.

The blind counterpart of ``scripts/train_zoo.py``. Batches are patches of the bundled training images,
each degraded with its own random isotropic Gaussian kernel, σ ~ U(0.2, 4.0) (the x4 range of the released
IKC and DASR code; ``srlib.blind.BlindPatchSource``), then bicubic-downscaled and rounded. Both models
train in two stages, as in their papers:

* DASR: the degradation encoder alone (InfoNCE on two patches per image), then everything jointly
  (L1 + InfoNCE); ``srlib.models.dasr.train_two_stage``.
* IKC: SFTMD given the true kernel codes, then the predictor and corrector with SFTMD frozen;
  ``srlib.models.ikc.train_ikc``.

The checkpoint is scored with DASR's Table 2 protocol (``srlib.blind.validate_blurred``: the bundled
validation photos blurred with σ = 0, 1.2, 2.4, 3.6 at x4) next to bicubic interpolation and a
bicubic-trained zoo checkpoint (``--baseline``); ``val_psnr`` is the plain bicubic-degraded validation
(``srlib.train.validate``), comparable with every other zoo entry. Example (the chapter-8 checkpoints):

    python scripts/train_blind_zoo.py --model dasr_tiny --stage1-steps 1000 --stage2-steps 4000 --name dasr_tiny_x4
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

import srlib
from srlib import zoo
from srlib.blind import TABLE2_WIDTHS, BlindPatchSource, DegradationSpace, validate_blurred
from srlib.data import bundled_images
from srlib.degrade import upscale_bicubic
from srlib.models.dasr import DASR, train_two_stage
from srlib.models.ikc import IKC, train_ikc
from srlib.train import pick_device, validate

STAGES = {DASR: ("encoder (InfoNCE)", "joint (L1 + InfoNCE)"), IKC: ("SFTMD on true kernels", "predictor + corrector")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a blind model: dasr_tiny, ikc_tiny (or the paper sizes)")
    p.add_argument("--stage1-steps", type=int, required=True, help="DASR: encoder steps; IKC: SFTMD steps")
    p.add_argument("--stage2-steps", type=int, required=True, help="DASR: joint steps; IKC: estimator steps")
    p.add_argument("--name", required=True, help="zoo name, e.g. dasr_tiny_x4")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--patch-size", type=int, default=96, help="HR patch side (DASR, IKC: 192)")
    p.add_argument("--lr1", type=float, default=1e-3, help="Adam learning rate of stage 1")
    p.add_argument("--lr2", type=float, default=1e-3, help="Adam learning rate of stage 2")
    p.add_argument("--baseline", default="learned_upscaler_x4",
                   help="bicubic-trained zoo checkpoint to compare with on blurred inputs")
    args = zoo.parse_run_args(p, argv)
    scale = 4
    if not srlib.model_entry(args.model).blind:
        p.error(f"{args.model} is not a blind model; use scripts/train_zoo.py for models trained on bicubic inputs")
    torch.manual_seed(args.seed)
    net = srlib.create_model(args.model, scale=scale)
    if type(net) not in STAGES:
        p.error(f"{args.model} is blind but trains at test time (no checkpoint to make); this script trains DASR and IKC")
    train, val = bundled_images("train"), bundled_images("val")
    space = DegradationSpace()  # isotropic, σ ~ U(0.2, 4.0), noise-free
    device = pick_device(args.device)
    start = time.perf_counter()
    if isinstance(net, DASR):
        data = BlindPatchSource(train, scale, space, patch_size=args.patch_size, views=2)
        train_two_stage(net, data, args.stage1_steps, args.stage2_steps, encoder_lr=args.lr1, joint_lr=args.lr2,
                        seed=args.seed, batch_size=args.batch_size, device=device, progress=sys.stderr.isatty())
    else:
        if args.lr1 != args.lr2:
            p.error("IKC trains both stages with one learning rate (train_ikc): give --lr1 and --lr2 the same value")
        data = BlindPatchSource(train, scale, space, patch_size=args.patch_size)
        train_ikc(net.to(device), data, args.stage1_steps, args.stage2_steps, batch_size=args.batch_size,
                  lr=args.lr1, seed=args.seed, progress=sys.stderr.isatty())
    seconds = time.perf_counter() - start
    net.cpu().eval()

    widths = TABLE2_WIDTHS[scale]
    blurred = validate_blurred(net, val, scale, widths)
    bicubic_blurred = validate_blurred(lambda lr: upscale_bicubic(lr, scale), val, scale, widths)
    baseline_blurred = validate_blurred(srlib.load_pretrained(args.baseline), val, scale, widths)
    plain = validate(net, val, scale)
    bicubic = validate(lambda lr: upscale_bicubic(lr, scale), val, scale)
    provenance = {
        "training_data": f"srlib.blind.BlindPatchSource on the bundled 'train' split ({len(train)} images), "
                         "isotropic Gaussian kernels σ ~ U(0.2, 4.0), bicubic downscaling, no noise",
        "validation_data": f"bundled 'val' split ({', '.join(val)}) blurred with σ = "
                           f"{', '.join(f'{w:g}' for w in widths)} (srlib.blind.validate_blurred); val_psnr: "
                           "plain bicubic degradation (srlib.train.validate)",
        "stages": list(STAGES[type(net)]), "steps": [args.stage1_steps, args.stage2_steps],
        "batch_size": args.batch_size, "hr_patch": args.patch_size, "lr": [args.lr1, args.lr2], "seed": args.seed,
        **zoo.run_provenance("train_blind_zoo.py", argv or sys.argv[1:], device, seconds),
    }
    path = zoo.save_checkpoint(net, zoo.WEIGHTS_DIR / f"{args.name}.pt", meta=provenance)

    def by_width(table):
        return {f"{w:g}": round(v, 3) for w, v in table.items()}

    entry = zoo.add_to_zoo(args.name, path, "distortion", provenance, {
        "val_psnr": round(plain["psnr"], 3), "val_ssim": round(plain["ssim"], 4),
        "bicubic_val_psnr": round(bicubic["psnr"], 3), "bicubic_val_ssim": round(bicubic["ssim"], 4),
        "width_psnr": by_width(blurred), "bicubic_width_psnr": by_width(bicubic_blurred),
        "baseline": args.baseline, "baseline_width_psnr": by_width(baseline_blurred),
        "params": srlib.count_parameters(net),
    })
    print(f"{args.name}: {args.stage1_steps} + {args.stage2_steps} steps, {seconds:.0f} s on {provenance['device']}")
    print(f"{'σ':>5s} {args.name:>14s} {args.baseline:>20s} {'bicubic':>8s}  (dB, x{scale}, bundled val photos)")
    for w in widths:
        print(f"{w:5g} {blurred[w]:14.2f} {baseline_blurred[w]:20.2f} {bicubic_blurred[w]:8.2f}")
    print(f"plain validation: {entry['val_psnr']:.2f} dB (bicubic {entry['bicubic_val_psnr']:.2f})")
    blur_only = [w for w in widths if w > 0]
    mean = sum(blurred[w] for w in blur_only) / len(blur_only)
    baseline_mean = sum(baseline_blurred[w] for w in blur_only) / len(blur_only)
    if mean <= baseline_mean:
        print(f"warning: on blurred inputs {args.name} ({mean:.2f} dB) does not beat {args.baseline} ({baseline_mean:.2f} dB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
