"""Train the self-supervised VGG19 front that srlib ships as ``srlib/weights/vgg19_selfsup.pt``.

Pretrained ImageNet VGG weights cannot be downloaded here, so the course trains its own feature
extractor on the bundled images and ships it (``VGGFeatureExtractor(..., weights="selfsup")``).
The network is VGG19's own front (torchvision layout, layers up to ``relu3_4`` by default), so the
same perceptual-loss code runs with random, self-trained or real VGG weights.

The task: **which degradation was applied?** Each HR patch (a random crop of a bundled training
image, flipped/rotated) is left clean or degraded in one of six ways: bicubic down-and-up x2 or
x4, Gaussian blur, Gaussian noise, JPEG, over-sharpening (all rounded back to 8-bit levels, so
that "off the uint8 grid" is not a shortcut). A linear classifier on the global average of
``relu1_2``, ``relu2_2``, ``relu3_4`` (the last ReLU of each block trained) must name the
degradation; the loss is the sum of their cross-entropies (deep supervision, so every block gets a
direct signal). The classifier heads are thrown away; only the VGG layers are saved.

Why this task and not another:

* A perceptual loss for SR must tell a sharp, natural patch from a blurry, noisy, ringing or
  blocky version of it: exactly the labels here. Detecting them needs multi-scale statistics of
  edges and textures (x2 and x4 blur differ in scale; blur and bicubic differ in aliasing), the
  kind of features VGG's early blocks hold.
* Rotation prediction would be ill-posed: half of the bundled images are textures, microscopy or
  astronomy, with no upright orientation (and the patches are augmented with rotations).
* Denoising/autoencoding rewards keeping every pixel, so a loss on its features stays close to a
  pixel loss; contrastive learning needs large batches and long training to beat random features,
  and its augmentations make features *invariant* to what SR must see.

Honest limits: 13 images and ~15 CPU minutes are not ImageNet. These features know degradations,
not objects; the chapter compares them with random and (when available) real VGG features.

Runtime: the default (1,500 steps of 24 patches of 48 px, layers up to relu3_4) needs ~0.8 s of
CPU time per step on one core, so about 15 minutes on 2 idle cores (20 on one). Output: the
weights (float16, only the trained layers: ~4.7 MB up to relu3_4, ~1.1 MB with ``--up-to relu3_1``)
and a provenance JSON beside them (command, data, steps, time, accuracies, sha256)::

    python scripts/train_feature_extractor.py --threads 2
    python scripts/train_feature_extractor.py --steps 5 --out /tmp/vgg19_smoke.pt   # smoke run
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from srlib import zoo
from srlib.data import PatchDataset, bundled_images
from srlib.degrade import (add_gaussian_noise, blur, imresize, isotropic_gaussian_kernel, jpeg, round_to_uint8,
                           upscale_bicubic)
from srlib.features import (IMAGENET_MEAN, IMAGENET_STD, SELFSUP_WEIGHTS, VGG19_LAYERS, WEIGHTS_FORMAT, init_vgg_,
                            layer_index, make_vgg19_features)


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _gaussian_kernels(sigmas: torch.Tensor) -> torch.Tensor:
    return torch.stack([isotropic_gaussian_kernel(9, float(s)) for s in sigmas])  # (N, 9, 9)


def down_up(factor: int):
    def degrade(hr: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return upscale_bicubic(imresize(hr, scale=1 / factor), factor)
    return degrade


def gaussian_blur(hr: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return blur(hr, _gaussian_kernels(_uniform(len(hr), 0.8, 2.0, generator)))


def gaussian_noise(hr: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return add_gaussian_noise(hr, _uniform(len(hr), 3.0, 15.0, generator), generator)  # sigma in [0, 255] units


def jpeg_compression(hr: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return jpeg(hr, torch.randint(10, 50, (len(hr),), generator=generator).tolist())


def oversharpen(hr: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    # unsharp masking: halos and amplified noise, what an over-eager GAN generator produces
    amount = _uniform(len(hr), 0.8, 2.0, generator).view(-1, 1, 1, 1)
    return hr + amount * (hr - blur(hr, isotropic_gaussian_kernel(9, 1.5)))


#: label -> (name, degradation(hr (N, 3, P, P), generator) -> (N, 3, P, P)); label 0 is "clean"
DEGRADATIONS = [
    ("clean", lambda hr, g: hr),
    ("bicubic_x2", down_up(2)),
    ("bicubic_x4", down_up(4)),
    ("gaussian_blur", gaussian_blur),
    ("gaussian_noise", gaussian_noise),
    ("jpeg", jpeg_compression),
    ("oversharpen", oversharpen),
]


def degrade_batch(hr: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A random degradation per patch, rounded to 8-bit levels: ``(images, labels)``."""
    labels = torch.randint(len(DEGRADATIONS), (len(hr),), generator=generator)
    out = hr.clone()
    for label, (_, degrade) in enumerate(DEGRADATIONS):
        chosen = (labels == label).nonzero().flatten()
        if len(chosen):
            out[chosen] = degrade(hr[chosen], generator)
    return round_to_uint8(out), labels


class DegradationClassifier(nn.Module):
    """VGG19 front (torchvision indices) + a linear head on the global average of each block's last ReLU."""

    def __init__(self, up_to: str, num_classes: int, seed: int):
        super().__init__()
        self.features = make_vgg19_features(layer_index(up_to) + 1)
        init_vgg_(self.features, torch.Generator().manual_seed(seed))
        taps = [i for i in range(len(self.features)) if VGG19_LAYERS[i].startswith("relu")
                and (i + 1 == len(self.features) or VGG19_LAYERS[i + 1].startswith("pool"))]
        self.taps = {i: VGG19_LAYERS[i] for i in taps}  # relu1_2, relu2_2, relu3_4 (, relu4_4)
        # BN on the pooled features: their scale differs by orders of magnitude between blocks and
        # at init; normalising them lets one learning rate train every head (the heads are not saved)
        self.heads = nn.ModuleDict({VGG19_LAYERS[i]: nn.Sequential(nn.BatchNorm1d(self.features[i - 1].out_channels),
                                                                   nn.Linear(self.features[i - 1].out_channels,
                                                                             num_classes))
                                    for i in taps})
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (x - self.mean) / self.std  # the normalisation VGGFeatureExtractor applies
        logits = {}
        for i, module in enumerate(self.features):
            x = module(x)
            if i in self.taps:
                name = self.taps[i]
                logits[name] = self.heads[name](x.mean(dim=(2, 3)))  # (N, C) -> (N, K)
        return logits


@torch.no_grad()
def evaluate(model: DegradationClassifier, data: PatchDataset, batches: int, batch_size: int) -> dict[str, float]:
    """Accuracy of each head on fixed-seed batches."""
    generator = torch.Generator().manual_seed(12345)
    correct = {name: 0 for name in model.heads}
    for _ in range(batches):
        _, hr = data.sample_batch(batch_size, generator)
        images, labels = degrade_batch(hr, generator)
        for name, logits in model(images).items():
            correct[name] += int((logits.argmax(1) == labels).sum())
    return {name: round(c / (batches * batch_size), 4) for name, c in correct.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=24)
    p.add_argument("--patch-size", type=int, default=48, help="HR patch side (a multiple of 4)")
    p.add_argument("--up-to", default="relu3_4", help="last VGG19 layer trained and saved (relu3_4 or relu4_4)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--out", type=Path, default=SELFSUP_WEIGHTS, help="weights file; provenance goes to .json beside it")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.up_to.startswith("relu") or layer_index(args.up_to) < layer_index("relu2_2"):
        raise SystemExit(f"--up-to must be a ReLU layer at or after relu2_2 (e.g. relu3_4), got {args.up_to!r}")

    torch.manual_seed(args.seed)
    identity = lambda hr, generator: hr  # noqa: E731  (scale 1: the "LR" is the HR patch itself)
    train = PatchDataset(bundled_images("train"), scale=1, patch_size=args.patch_size, degradation=identity,
                         seed=args.seed)
    val = PatchDataset(bundled_images("val"), scale=1, patch_size=args.patch_size, degradation=identity, augment=False)
    model = DegradationClassifier(args.up_to, len(DEGRADATIONS), args.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / args.steps)))
    generator = torch.Generator().manual_seed(args.seed)
    chance = 1 / len(DEGRADATIONS)
    print(f"training VGG19 up to {args.up_to} to classify {len(DEGRADATIONS)} degradations "
          f"(chance {chance:.3f}), {args.steps} steps, batch {args.batch_size} x {args.patch_size} px")
    t0, running = time.perf_counter(), []
    for step in range(1, args.steps + 1):
        _, hr = train.sample_batch(args.batch_size, generator)
        images, labels = degrade_batch(hr, generator)
        logits = model(images)
        loss = sum(F.cross_entropy(z, labels) for z in logits.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower --lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        running.append(loss.item())
        if step % 50 == 0 or step == args.steps:
            top = logits[args.up_to]
            print(f"step {step:5d}  loss {sum(running) / len(running):.3f}  "
                  f"acc({args.up_to}) {(top.argmax(1) == labels).float().mean():.2f}  "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
            running = []
    seconds = time.perf_counter() - t0
    model.eval()
    accuracy = evaluate(model, val, batches=8, batch_size=32)
    print(f"validation accuracy per head (bundled 'val' split, chance {chance:.3f}): {accuracy}")

    provenance = {
        "command": "python scripts/train_feature_extractor.py " + " ".join(
            shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "task": "self-supervised degradation classification (linear heads on global-average relu1_2/relu2_2/"
                f"relu3_4...): {', '.join(n for n, _ in DEGRADATIONS)}",
        "layers": f"VGG19 features.0 .. features.{layer_index(args.up_to)} ({args.up_to}), torchvision indices",
        "training_data": f"srlib.data bundled 'train' split ({len(train.images)} scikit-image images)",
        "steps": args.steps, "batch_size": args.batch_size, "patch_size": args.patch_size, "lr": args.lr,
        "seed": args.seed, "device": "cpu", "torch_threads": torch.get_num_threads(),
        "wall_time_s": round(seconds, 1), "final_train_loss": round(loss.item(), 4),
        "val_accuracy": accuracy, "chance_accuracy": round(chance, 4),
        "torch": str(torch.__version__), "python": platform.python_version(), "date": datetime.date.today().isoformat(),
    }
    state = {f"features.{k}": v.detach().half().clone() for k, v in model.features.state_dict().items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": WEIGHTS_FORMAT, "version": 1, "up_to": args.up_to, "state_dict": state,
                "provenance": provenance}, args.out)
    record = {"file": args.out.name, "sha256": zoo.sha256_of(args.out), "bytes": args.out.stat().st_size,
              "params": sum(v.numel() for v in state.values()), **provenance}
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out} ({record['bytes'] / 1e6:.1f} MB) and {args.out.with_suffix('.json').name} "
          f"after {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
