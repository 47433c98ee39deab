"""Fine-tune a PSNR-trained zoo checkpoint adversarially (SRGAN or ESRGAN recipe) and add it to the zoo.

The perceptual counterpart of ``scripts/train_zoo.py``. It loads a ``kind: distortion`` zoo checkpoint
(``--init``), fine-tunes it against a fresh tiny discriminator with the losses of one paper
(``srlib.gan.RECIPES``: the same settings as the chapter page ``book/05_perceptual/srgan_esrgan.ipynb``)
on patches of the bundled training images, and records a ``kind: perceptual`` entry with:

* val_psnr / val_ssim (``srlib.train.validate`` on the bundled 'val' photos) and bicubic's;
* val_tsd: the texture-statistics distance (``srlib.metrics.texture_distance``) on the same photos, for
  this checkpoint, its init checkpoint (init_val_tsd, init_val_psnr) and bicubic, so that the entry
  shows the move in the perception-distortion plane;
* the init checkpoint's name and sha256, the recipe, the final-window ``srlib.gan.gan_health`` verdict,
  and the loss history averaged over blocks of ``--log-every`` steps (for loss curves).

Example (the chapter-5 checkpoints):

    python scripts/train_gan_zoo.py --init rrdbnet_tiny_x4 --recipe esrgan --steps 3000 --name rrdbnet_tiny_esrgan_x4 --threads 1
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import torch

import srlib
from srlib import zoo
from srlib.data import PatchDataset, bundled_images
from srlib.degrade import upscale_bicubic
from srlib.features import SELFSUP_WEIGHTS
from srlib.gan import RECIPES, compact_history, finetune_with_recipe, gan_health
from srlib.train import pick_device, validate


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init", required=True, help="a kind: distortion zoo checkpoint, e.g. rrdbnet_tiny_x4")
    p.add_argument("--recipe", required=True, choices=sorted(RECIPES))
    p.add_argument("--steps", type=int, required=True, help="GAN steps (one discriminator and one generator update)")
    p.add_argument("--name", required=True, help="zoo name, e.g. rrdbnet_tiny_esrgan_x4")
    p.add_argument("--batch-size", type=int, default=None, help="patches per step (default: the recipe's)")
    p.add_argument("--patch-size", type=int, default=None,
                   help="HR patch side; the discriminator is built for it (default: the recipe's, 48)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate of G and D (default: the recipe's)")
    p.add_argument("--lr-d", type=float, default=None,
                   help="Adam learning rate of D alone (default: --lr); a slower D keeps the game from ending in "
                        "an outright D win")
    p.add_argument("--pixel-weight", type=float, default=None,
                   help="weight of the pixel L1 loss (default: the recipe's). The self-trained features do not "
                        "hold colour and brightness in place, so long runs need a stronger pixel term than the "
                        "papers' (recorded in the entry's recipe)")
    p.add_argument("--features", default="selfsup",
                   help="VGG19 weights of the content loss: 'selfsup' (srlib/weights/vgg19_selfsup.pt) or a path "
                        "to torchvision-format weights")
    p.add_argument("--log-every", type=int, default=50, help="steps averaged into one point of the stored loss history")
    p.add_argument("--health-window", type=int, default=200, help="last steps read by the gan_health verdict")
    args = zoo.parse_run_args(p, argv)
    recipe = RECIPES[args.recipe]
    if args.pixel_weight is not None:
        if args.pixel_weight < 0:
            p.error(f"--pixel-weight must be >= 0, got {args.pixel_weight}")
        recipe = dataclasses.replace(recipe, pixel_weight=args.pixel_weight)
    batch_size, patch_size = args.batch_size or recipe.batch_size, args.patch_size or recipe.patch_size
    lr = args.lr or recipe.lr

    # The starting point must be a PSNR-trained single-image checkpoint of the zoo.
    try:
        init = zoo.pretrained_info(args.init)
    except KeyError as exc:
        p.error(str(exc.args[0]))
    if init["kind"] != "distortion":
        p.error(f"--init {args.init} is a kind: {init['kind']} checkpoint; GAN fine-tuning starts from a "
                "PSNR-trained (kind: distortion) checkpoint, as in SRGAN and ESRGAN")
    if init["reference_based"]:
        p.error(f"--init {args.init} is reference-based ({init['model']}); this script fine-tunes single-image "
                "models (the training batches carry no reference images)")
    if args.features == "selfsup" and not SELFSUP_WEIGHTS.is_file():
        p.error(f"{SELFSUP_WEIGHTS} is missing: run scripts/train_feature_extractor.py first (or pass --features PATH)")
    scale = init["scale"]

    train, val = bundled_images("train"), bundled_images("val")
    data = PatchDataset(list(train.values()), scale=scale, patch_size=patch_size, seed=args.seed)
    device = pick_device(args.device)
    torch.manual_seed(args.seed)  # the discriminator's initial weights
    net = srlib.load_pretrained(args.init)
    start = time.perf_counter()
    history, _ = finetune_with_recipe(net, data, recipe, args.steps, features=args.features, batch_size=batch_size,
                                      lr=lr, lr_d=args.lr_d, device=device, seed=args.seed)
    seconds = time.perf_counter() - start
    net.cpu().eval()
    health = gan_health(history, recipe.gan_kind, window=args.health_window)

    # Where the checkpoint lands in the perception-distortion plane, next to its start and bicubic.
    init_net = srlib.load_pretrained(args.init)
    final, init_scores = validate(net, val, scale, texture=True), validate(init_net, val, scale, texture=True)
    bicubic = validate(lambda x: upscale_bicubic(x, scale), val, scale, texture=True)
    tsd = {key: round(scores["tsd"], 3) for key, scores in (
        ("val_tsd", final), ("init_val_tsd", init_scores), ("bicubic_val_tsd", bicubic))}

    provenance = {
        "training_data": f"srlib.data bundled 'train' split ({len(train)} scikit-image images: {', '.join(train)})",
        "validation_data": f"bundled 'val' split ({', '.join(val)})",
        "init": args.init, "init_sha256": init["sha256"], "recipe": recipe.as_dict(),
        "features": "vgg19_selfsup.pt (scripts/train_feature_extractor.py)" if args.features == "selfsup"
        else str(args.features),
        "steps": args.steps, "batch_size": batch_size, "hr_patch": patch_size, "lr": lr,
        "lr_d": args.lr_d if args.lr_d is not None else lr, "seed": args.seed,
        **zoo.run_provenance("train_gan_zoo.py", argv or sys.argv[1:], device, seconds),
    }
    path = zoo.save_checkpoint(net, zoo.WEIGHTS_DIR / f"{args.name}.pt", meta=provenance)
    entry = zoo.add_to_zoo(args.name, path, "perceptual", provenance, {
        "val_psnr": round(final["psnr"], 3), "val_ssim": round(final["ssim"], 4),
        "bicubic_val_psnr": round(bicubic["psnr"], 3), "bicubic_val_ssim": round(bicubic["ssim"], 4),
        "init": args.init, "init_val_psnr": round(init_scores["psnr"], 3), "init_val_ssim": round(init_scores["ssim"], 4),
        **tsd, "recipe": args.recipe, "gan_health": health, "params": srlib.count_parameters(net),
        "loss_history": compact_history(history, args.log_every),
    })
    print(f"{args.name}: {args.recipe} from {args.init}, {args.steps} steps, {seconds:.0f} s on {provenance['device']}")
    print(f"  val PSNR {entry['init_val_psnr']:.2f} -> {entry['val_psnr']:.2f} dB (bicubic {entry['bicubic_val_psnr']:.2f}), "
          f"TSD {entry['init_val_tsd']:.2f} -> {entry['val_tsd']:.2f} grey levels (bicubic {entry['bicubic_val_tsd']:.2f})")
    print(f"  {health}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
