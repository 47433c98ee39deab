"""Train a reference-based model (SRNTT, TTSR, SSEN) on reference triplets and add the checkpoint to the srlib zoo.

The reference-based counterpart of ``scripts/train_zoo.py``: batches are (LR, HR, reference) triplets from
``srlib.refsr_data.ReferencePatchSampler`` (the training images without the motorcycle stereo pair), the
model is called as ``model(lr, ref)``, and the checkpoint is scored on every similarity level of the
CUFED5-like benchmark (``srlib.refsr_data.refsr_benchmark``, 160 px, seed 0) next to bicubic and a
single-image baseline from the zoo (``--baseline``, default ``enhancenet_tiny_x4``). The zoo entry records
the exact command, the data, the steps, the device, the wall time and all those numbers; ``val_psnr`` is
the XH level. Example (the chapter-6 checkpoint):

    python scripts/train_refsr_zoo.py --model ttsr_tiny --steps 1200 --name ttsr_tiny_x4 --threads 1
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import torch

import srlib
from srlib import zoo
from srlib.degrade import upscale_bicubic
from srlib.models.ssen import SSENNet
from srlib.refsr_data import LEVELS, ReferencePatchSampler, refsr_benchmark
from srlib.train import fit, validate


def last_conv(model: torch.nn.Module) -> torch.nn.Conv2d:
    """The output convolution of SRNTT (``tail[-1]``), TTSR (``main.tail[-1]``) or SSEN (``tail``)."""
    tail = model.main.tail if hasattr(model, "main") else model.tail
    return tail[-1] if isinstance(tail, torch.nn.Sequential) else tail


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a reference-based model, e.g. ttsr_tiny or srntt_tiny")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--name", required=True, help="zoo name, e.g. ttsr_tiny_x4")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--patch-size", type=int, default=48, help="HR patch side (and reference side)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--loss", default="mse")
    p.add_argument("--zero-tail", type=int, default=1,
                   help="1: zero the output conv so training starts exactly at the bicubic global residual "
                        "(SRNTT, TTSR; SSEN has no bicubic path: give 0)")
    p.add_argument("--offset-lr-mult", type=float, default=1.0,
                   help="SSEN: learning rate of the offset estimators relative to --lr (deformable alignment "
                        "is commonly trained with a smaller one, e.g. 0.1, so that the offsets do not run away)")
    p.add_argument("--baseline", default="enhancenet_tiny_x4", help="single-image zoo checkpoint to compare with")
    p.add_argument("--bench-size", type=int, default=160)
    args = zoo.parse_run_args(p, argv)
    scale = 4
    torch.manual_seed(args.seed)
    net = srlib.create_model(args.model, scale=scale)
    if not srlib.model_entry(args.model).reference_based:
        p.error(f"{args.model} is not a reference-based model; use scripts/train_zoo.py for single-image models")
    if args.zero_tail and isinstance(net, SSENNet):
        p.error("SSEN has no bicubic path, so a zeroed output conv would start it at a flat grey image; "
                "pass --zero-tail 0")
    if args.zero_tail:
        torch.nn.init.zeros_(last_conv(net).weight)
        torch.nn.init.zeros_(last_conv(net).bias)
    estimators = [p_ for n, p_ in net.named_parameters() if ".estimator." in n]  # SSEN's offset estimators
    if args.offset_lr_mult != 1.0 and not estimators:
        p.error(f"--offset-lr-mult: {args.model} has no offset estimators")
    others = [p_ for n, p_ in net.named_parameters() if ".estimator." not in n]
    optimizer = torch.optim.Adam([{"params": others, "lr": args.lr},
                                  {"params": estimators, "lr": args.lr * args.offset_lr_mult}])
    sampler = ReferencePatchSampler(patch_size=args.patch_size, scale=scale)
    groups = refsr_benchmark(size=args.bench_size, scale=scale, seed=0)
    hr = {g.name: g.hr for g in groups}
    refs = {level: {g.name: g.refs[level] for g in groups} for level in LEVELS}
    # resumable training state, not shipped; a digest of the settings keeps other runs from resuming it
    settings = [args.model, args.steps, args.batch_size, args.patch_size, args.lr, args.loss, args.zero_tail, args.seed,
                args.offset_lr_mult]
    work = Path("_build/zoo") / f"{args.name}.{hashlib.sha256(repr(settings).encode()).hexdigest()[:10]}.train.pt"
    result = fit(net, sampler, args.steps, batch_size=args.batch_size, optimizer=optimizer, loss=args.loss, val_images=hr,
                 val_refs=refs["XH"], scale=scale, seed=args.seed, device=args.device, checkpoint=work,
                 checkpoint_every=250, resume=True, progress=sys.stderr.isatty())
    net.cpu()
    per_level = {level: validate(net, hr, scale, references=refs[level]) for level in LEVELS}
    bicubic = validate(lambda lr: upscale_bicubic(lr, scale), hr, scale)
    baseline = validate(srlib.load_pretrained(args.baseline), hr, scale)
    provenance = {
        "training_data": "srlib.refsr_data.ReferencePatchSampler on the bundled 'train' split without the "
                         f"motorcycle stereo pair ({len(sampler.images)} images); references: 50 % warped view, "
                         "25 % overlapping crop, 25 % another image",
        "validation_data": f"srlib.refsr_data.refsr_benchmark(size={args.bench_size}, seed=0): 6 inputs x 5 "
                           "reference levels; val_psnr is the XH level",
        "steps": args.steps, "batch_size": args.batch_size, "hr_patch": args.patch_size, "lr": args.lr,
        "loss": args.loss, "zero_tail": bool(args.zero_tail), "offset_lr_mult": args.offset_lr_mult,
        "seed": args.seed, **zoo.run_provenance("train_refsr_zoo.py", argv or sys.argv[1:], result.device, result.seconds),
    }
    path = zoo.save_checkpoint(net, zoo.WEIGHTS_DIR / f"{args.name}.pt", meta=provenance)
    entry = zoo.add_to_zoo(args.name, path, "distortion", provenance, {
        "val_psnr": round(per_level["XH"]["psnr"], 3), "val_ssim": round(per_level["XH"]["ssim"], 4),
        "level_psnr": {level: round(r["psnr"], 3) for level, r in per_level.items()},
        "level_ssim": {level: round(r["ssim"], 4) for level, r in per_level.items()},
        "bicubic_val_psnr": round(bicubic["psnr"], 3), "bicubic_val_ssim": round(bicubic["ssim"], 4),
        "baseline": args.baseline, "baseline_val_psnr": round(baseline["psnr"], 3),
        "params": srlib.count_parameters(net), "trainable_params": srlib.count_parameters(net, trainable_only=True),
    })
    print(f"{args.name}: " + " ".join(f"{lv} {r['psnr']:.2f}" for lv, r in per_level.items())
          + f" dB; bicubic {bicubic['psnr']:.2f}, {args.baseline} {baseline['psnr']:.2f} dB; "
          f"{args.steps} steps, {result.seconds:.0f} s on {provenance['device']}")
    if entry["val_psnr"] <= entry["baseline_val_psnr"]:
        print(f"warning: at XH {args.name} does not beat the single-image baseline {args.baseline}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
