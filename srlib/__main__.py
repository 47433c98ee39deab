"""Command line: ``python -m srlib {eval,upscale,list,train}``.

    python -m srlib list [--json] [--models]
    python -m srlib eval --model MODEL --scale S --hr-dir DIR [--json]
    python -m srlib upscale IN OUT --model MODEL --scale S [--tile 128] [--ref REF]
    python -m srlib train --model NAME --scale S --steps N --out CKPT [--hr-dir DIR]

MODEL is ``bicubic``, a zoo checkpoint name (``python -m srlib list``) or a checkpoint path.
Evaluation follows the paper protocol: HR mod-cropped, MATLAB-bicubic LR rounded to uint8, SR clamped
and rounded, PSNR/SSIM on Y (BT.601) with a ``scale``-pixel border shaved.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

SSIM_WINDOW = 11  # the MATLAB ssim window: smaller images cannot be measured


class CLIError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def resolve_model(spec: str, scale: int, device: str = "cpu"):
    """``bicubic``, a zoo name or a checkpoint path -> (callable lr(1,3,h,w) -> sr, description)."""
    from . import zoo
    from .degrade import upscale_bicubic

    if spec == "bicubic":
        # MATLAB's imresize on a uint8 image rounds after each pass: that is how the published bicubic
        # baselines were made, so the CLI's bicubic does the same.
        return (lambda lr: upscale_bicubic(lr, scale, quantize=True)), "bicubic (MATLAB imresize, uint8)"
    try:
        if Path(spec).suffix in (".pt", ".pth") or Path(spec).is_file():
            net = zoo.load_checkpoint(spec, scale=scale, device=device)
        else:
            info = zoo.pretrained_info(spec)
            if info["scale"] != scale:
                raise CLIError(f"zoo checkpoint '{spec}' is for x{info['scale']}, not x{scale}; "
                               f"choose one for x{scale} from `python -m srlib list`")
            net = zoo.load_pretrained(spec, device=device)
    except (zoo.CheckpointError, FileNotFoundError) as exc:
        raise CLIError(str(exc)) from None
    except KeyError as exc:
        raise CLIError(f"{exc.args[0]} (or give a checkpoint path, or 'bicubic')") from None
    return net, f"{net.srlib_name} x{scale}"


def is_reference_based(model) -> bool:
    """Whether a resolved model needs a reference image (SRNTT, TTSR, SSEN) next to its LR input."""
    from .models import model_entry

    return isinstance(model, torch.nn.Module) and model_entry(model.srlib_name).reference_based


def _run(model, lr: torch.Tensor, scale: int, tile: int) -> torch.Tensor:
    from .inference import upscale_tiled

    if isinstance(model, torch.nn.Module):
        return upscale_tiled(model, lr, scale, tile=tile)
    with torch.no_grad():
        return model(lr[None])[0].clamp(0, 1)


def cmd_eval(args) -> int:
    from .data import ImageReadError, load_image
    from .degrade import bicubic_downscale, mod_crop
    from .metrics import psnr, ssim

    root = Path(args.hr_dir)
    if not root.is_dir():
        raise CLIError(f"HR folder {root} does not exist (or is not a folder)")
    files = sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise CLIError(f"HR folder {root} holds no files")
    model, description = resolve_model(args.model, args.scale, args.device)
    if is_reference_based(model):
        raise CLIError(f"{args.model} is a reference-based model: it needs a reference image for each HR image, "
                       "which a plain HR folder does not give; use srlib.train.validate(model, hr, scale, "
                       "references=...) or scripts/train_refsr_zoo.py")
    results, skipped = [], []
    for path in files:
        try:
            hr = load_image(path)
        except ImageReadError as exc:
            skipped.append({"name": path.name, "reason": str(exc)})
            continue
        size = tuple(hr.shape[-2:])
        hr = mod_crop(hr, args.scale)
        if min(hr.shape[-2:]) - 2 * args.scale < SSIM_WINDOW:
            skipped.append({"name": path.name, "reason": f"{size} px is too small for x{args.scale}: "
                            f"after the {args.scale}-px border shave SSIM needs at least {SSIM_WINDOW} px"})
            continue
        lr = bicubic_downscale(hr, args.scale)
        sr = _run(model, lr, args.scale, args.tile)
        results.append({"name": path.name, "psnr": float(psnr(sr, hr, args.scale)), "ssim": float(ssim(sr, hr, args.scale))})
    mean = lambda key: sum(r[key] for r in results) / len(results) if results else None  # noqa: E731
    report = {"model": args.model, "scale": args.scale, "images": results, "psnr": mean("psnr"), "ssim": mean("ssim"),
              "skipped": skipped}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{description} on {root} (Y channel, {args.scale}-px shave)")
        for r in results:
            print(f"  {r['name']:<32} {r['psnr']:7.2f} dB  SSIM {r['ssim']:.4f}")
        if results:
            print(f"  {'mean of ' + str(len(results)) + ' images':<32} {report['psnr']:7.2f} dB  SSIM {report['ssim']:.4f}")
    for s in skipped:
        print(f"skipped {s['name']}: {s['reason']}", file=sys.stderr)
    if not results:
        print(f"error: no image in {root} could be evaluated", file=sys.stderr)
        return 1
    return 0


def cmd_upscale(args) -> int:
    from .data import ImageReadError, load_image, save_image

    try:
        lr = load_image(args.input)
    except (ImageReadError, FileNotFoundError) as exc:
        raise CLIError(str(exc)) from None
    model, description = resolve_model(args.model, args.scale, args.device)
    if is_reference_based(model):
        if args.ref is None:
            raise CLIError(f"{args.model} is a reference-based model: give a high-resolution reference image "
                           "with --ref")
        try:
            ref = load_image(args.ref)
        except (ImageReadError, FileNotFoundError) as exc:
            raise CLIError(str(exc)) from None
        from .inference import super_resolve

        # one pass over the whole image: every LR patch must be free to match anywhere in the reference
        try:
            sr = super_resolve(model, lr, ref).cpu()
        except ValueError as exc:  # the model's own check of the pair, e.g. a reference of the wrong size
            raise CLIError(f"{args.ref} does not fit {args.input} for {args.model}: {exc}") from None
        description += f" with reference {args.ref}"
    else:
        if args.ref is not None:
            raise CLIError(f"{args.model} is a single-image model: it takes no --ref")
        sr = _run(model, lr, args.scale, args.tile)
    save_image(sr, args.output)
    print(f"{args.input} {tuple(lr.shape[-2:])} -> {args.output} {tuple(sr.shape[-2:])} with {description}")
    return 0


def cmd_list(args) -> int:
    from .models import list_models, model_entry
    from .zoo import list_pretrained

    if args.models:
        names = list_models(args.pattern)
        rows = [{"name": n, "scales": list(model_entry(n).scales), "paper": model_entry(n).paper,
                 "reference_based": model_entry(n).reference_based, "blind": model_entry(n).blind} for n in names]
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            for r in rows:
                print(f"{r['name']:<28} x{','.join(map(str, r['scales'])):<10} {r['paper']}")
        return 0
    entries = list_pretrained(args.pattern)
    if args.json:
        print(json.dumps(entries, indent=2))
    else:
        if not entries:
            print("no zoo checkpoints match")
        for e in entries:
            psnr = f"{e['val_psnr']:.2f} dB" if "val_psnr" in e else ""
            if e.get("reference_based") and psnr:
                psnr += " (XH reference benchmark)"
            print(f"{e['name']:<28} {e['model']:<24} x{e['scale']}  {e['kind']:<11} {psnr}")
    return 0


def cmd_train(args) -> int:
    from . import create_model, save_checkpoint
    from .data import ImageFolder, PatchDataset, bundled_images
    from .train import fit

    if args.hr_dir:
        try:
            folder = ImageFolder(args.hr_dir)
        except (FileNotFoundError, ValueError) as exc:
            raise CLIError(str(exc)) from None
        for path, reason in folder.skipped:
            print(f"skipped {path}: {reason}", file=sys.stderr)
        train = {name: hr for name, hr in folder}
    else:
        train = bundled_images("train")
    from .models import model_entry

    try:
        entry = model_entry(args.model)
    except KeyError as exc:
        raise CLIError(exc.args[0]) from None
    if entry.reference_based:
        raise CLIError(f"{args.model} is a reference-based model: train it on (LR, HR, reference) triplets "
                       "with scripts/train_refsr_zoo.py")
    net = create_model(args.model, scale=args.scale)
    data = PatchDataset(list(train.values()), scale=args.scale, patch_size=args.patch_size, seed=args.seed)
    result = fit(net, data, args.steps, batch_size=args.batch_size, lr=args.lr, val_images=bundled_images("val"),
                 scale=args.scale, seed=args.seed, device=args.device, checkpoint=args.out, resume=args.resume)
    save_checkpoint(net, args.out, meta={"steps": args.steps, "val_psnr": result.val_psnr, "val_ssim": result.val_ssim,
                                         "seconds": result.seconds, "device": result.device})
    print(f"saved {args.out}: validation {result.val_psnr:.2f} dB / SSIM {result.val_ssim:.4f} after {args.steps} steps "
          f"({result.seconds:.0f} s on {result.device})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m srlib", description="srlib: super-resolution course tools")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("eval", help="PSNR/SSIM on a folder of HR images with the paper protocol")
    p.add_argument("--model", required=True, help="bicubic, a zoo name, or a checkpoint path")
    p.add_argument("--scale", type=int, required=True)
    p.add_argument("--hr-dir", required=True)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--tile", type=int, default=256, help="LR tile size for big images")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("upscale", help="upscale one image")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--model", required=True)
    p.add_argument("--scale", type=int, required=True)
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--ref", help="the high-resolution reference image, for reference-based models (SRNTT, TTSR)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_upscale)

    p = sub.add_parser("list", help="zoo checkpoints (or, with --models, registered architectures)")
    p.add_argument("pattern", nargs="?", default="*")
    p.add_argument("--json", action="store_true")
    p.add_argument("--models", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("train", help="train a registered model on the bundled images (or a folder)")
    p.add_argument("--model", required=True)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--out", required=True, help="checkpoint path (also used to resume)")
    p.add_argument("--hr-dir")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--patch-size", type=int, default=96, help="HR patch size")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("eval", "upscale", "train") and args.scale < 1:
        print(f"error: --scale must be a positive integer, got {args.scale}", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
