"""Train a registered model on the bundled training images and add the checkpoint to the srlib zoo.

Every checkpoint shipped under srlib/weights/ is made by this script; the zoo entry records the exact
command, the data, the steps, the device, the wall time and the validation numbers, so anyone can
reproduce it. Example (the chapter-1 checkpoints):

    python scripts/train_zoo.py --model learned_upscaler --scale 4 --steps 6000 --name learned_upscaler_x4
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import sys
from pathlib import Path

import torch

import srlib
from srlib import zoo
from srlib.data import PatchDataset, bundled_images
from srlib.degrade import upscale_bicubic
from srlib.train import fit, validate


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--scale", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--name", required=True, help="zoo name, e.g. learned_upscaler_x4")
    p.add_argument("--kind", default="distortion", choices=["distortion", "perceptual"])
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--patch-size", type=int, default=96, help="HR patch side")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--loss", default="l1")
    p.add_argument("--grad-clip", type=float, default=None, metavar="NORM",
                   help="clip the gradients' total norm to NORM (default: no clipping); a high learning rate "
                        "that diverges now and then can train with it")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change one field of the model's configuration, e.g. --set num_feat=16 (repeatable; the "
                        "checkpoint records it, so load_pretrained rebuilds the same network)")
    p.add_argument("--init-from", metavar="ZOO_NAME",
                   help="start from a zoo checkpoint instead of random weights: of the same network, or of one "
                        "whose convolutions have smaller kernels (srlib.zoo.grow_from), e.g. --model srcnn "
                        "--init-from srcnn_915_x4")
    args = zoo.parse_run_args(p, argv)
    if args.grad_clip is not None and not args.grad_clip > 0:
        p.error(f"--grad-clip must be a positive norm, got {args.grad_clip}")
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            p.error(f"--set expects KEY=VALUE, got {item!r}")
        try:
            overrides[key] = ast.literal_eval(value)  # numbers, booleans, tuples
        except (ValueError, SyntaxError):
            overrides[key] = value  # a bare word: a string option

    torch.manual_seed(args.seed)
    try:
        net = srlib.create_model(args.model, scale=args.scale, **overrides)
    except TypeError as exc:  # an unknown configuration field: the message lists the valid ones
        p.error(str(exc))
    init = None
    if args.init_from:
        try:
            init = zoo.pretrained_info(args.init_from)
        except KeyError as exc:
            p.error(f"--init-from: {exc.args[0]}")
        if init["scale"] != args.scale:
            p.error(f"--init-from {args.init_from} is a x{init['scale']} checkpoint, this run trains x{args.scale}")
        try:
            grown = zoo.grow_from(net, srlib.load_pretrained(args.init_from))
        except ValueError as exc:
            p.error(f"--init-from {args.init_from} ({init['model']}) cannot start {args.model}: {exc}")
        print(f"starting from {args.init_from}" + (f", grown: {', '.join(grown)}" if grown else ""))
    train, val = bundled_images("train"), bundled_images("val")
    data = PatchDataset(list(train.values()), scale=args.scale, patch_size=args.patch_size, seed=args.seed)
    # Resumable training state, not shipped. Its name carries a digest of the run's settings, so a run with
    # another loss, lr, patch size... never resumes from this one's state (and so never mislabels it).
    settings = [args.model, args.scale, args.steps, args.batch_size, args.patch_size, args.lr, args.loss, args.seed]
    settings += [sorted(overrides.items())] if overrides else []  # unchanged digests for runs without --set
    settings += [("grad_clip", args.grad_clip)] if args.grad_clip is not None else []
    settings += [("init", args.init_from, init["sha256"])] if init else []
    digest = hashlib.sha256(repr(settings).encode()).hexdigest()[:10]
    work = Path("_build/zoo") / f"{args.name}.{digest}.train.pt"
    result = fit(net, data, args.steps, batch_size=args.batch_size, lr=args.lr, loss=args.loss, val_images=val,
                 scale=args.scale, seed=args.seed, device=args.device, checkpoint=work, checkpoint_every=500,
                 resume=True, progress=sys.stderr.isatty(), grad_clip=args.grad_clip)
    net.cpu()
    final = validate(net, val, args.scale)
    bicubic = validate(lambda lr: upscale_bicubic(lr, args.scale), val, args.scale)
    provenance = {
        "training_data": f"srlib.data bundled 'train' split ({len(train)} scikit-image images: {', '.join(train)})",
        "validation_data": f"bundled 'val' split ({', '.join(val)})",
        "steps": args.steps, "batch_size": args.batch_size, "hr_patch": args.patch_size, "lr": args.lr,
        "loss": args.loss, "grad_clip": args.grad_clip, "overrides": overrides, "seed": args.seed,
        # a warm start: its own training (command, wall time) is in its zoo entry, so the whole cost is traceable
        **({"init": args.init_from, "init_sha256": init["sha256"],
            "init_wall_time_s": init["provenance"]["wall_time_s"]} if init else {}),
        **zoo.run_provenance("train_zoo.py", argv or sys.argv[1:], result.device, result.seconds),
    }
    path = zoo.save_checkpoint(net, zoo.WEIGHTS_DIR / f"{args.name}.pt", meta=provenance)
    entry = zoo.add_to_zoo(args.name, path, args.kind, provenance, {
        "val_psnr": round(final["psnr"], 3), "val_ssim": round(final["ssim"], 4),
        "bicubic_val_psnr": round(bicubic["psnr"], 3), "bicubic_val_ssim": round(bicubic["ssim"], 4),
        "params": srlib.count_parameters(net),
    })
    print(f"{args.name}: val {entry['val_psnr']:.2f} dB / {entry['val_ssim']:.4f} "
          f"(bicubic {entry['bicubic_val_psnr']:.2f} dB) after {args.steps} steps, {result.seconds:.0f} s on "
          f"{provenance['device']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
