"""Checkpoints: one file format, and a zoo of named checkpoints trained by this project.

A checkpoint is a plain dict saved with ``torch.save`` and read with ``torch.load(weights_only=True)``
(tensors, numbers, strings, lists and dicts only: loading one cannot run code)::

    {"format": "srlib-checkpoint", "version": 1,
     "model": "learned_upscaler", "scale": 4, "overrides": {...},
     "state_dict": {...}, "meta": {...}, "train_state": {...} (optional, for exact resume)}

The zoo lists the shipped checkpoints in ``srlib/weights/zoo.json``: for each, the model, scale,
kind (distortion or perceptual), the file's sha256, how it was made (data, steps, device, wall time,
the command) and its validation PSNR/SSIM. Every shipped file is reproduced by a script in
``scripts/``.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMAT = "srlib-checkpoint"
VERSION = 1
WEIGHTS_DIR = Path(__file__).parent / "weights"
ZOO_INDEX = WEIGHTS_DIR / "zoo.json"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used as asked (another model or scale, corrupt, foreign)."""


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(model: nn.Module, path: str | Path, meta: dict | None = None,
                    train_state: dict | None = None) -> Path:
    """Save a model built by ``srlib.create_model`` (its name, scale and overrides go with it).

    Args:
        model: the network; must carry ``srlib_name``/``srlib_scale`` (set by ``create_model``).
        path: destination file; parent folders are created. Written to a temporary file first and
            renamed, so an interrupted save never leaves a truncated checkpoint behind.
        meta: free-form provenance (numbers and strings).
        train_state: optimiser/scheduler/RNG state for exact resume (see ``srlib.train.fit``).
    """
    if not hasattr(model, "srlib_name"):
        raise CheckpointError("save_checkpoint needs a model made by srlib.create_model (it records the "
                              "model name and scale); this one has no srlib_name")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT, "version": VERSION,
        "model": model.srlib_name, "scale": int(model.srlib_scale),
        "overrides": dict(getattr(model, "srlib_overrides", {})),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        # through JSON: plain numbers/strings only (a str subclass such as torch.__version__ would make
        # the file unreadable with weights_only=True)
        "meta": json.loads(json.dumps(meta or {}, default=str)),
    }
    if train_state is not None:
        payload["train_state"] = train_state
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def read_checkpoint(path: str | Path, sha256: str | None = None) -> dict:
    """Read and validate a checkpoint dict (no model built). Checks the sha256 when given."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if sha256 is not None:
        actual = sha256_of(path)
        if actual != sha256:
            raise CheckpointError(f"checkpoint {path} has sha256 {actual}, expected {sha256}: the file is "
                                  "corrupt or not the one the zoo lists; re-create it with its script")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated zips, non-torch files
        raise CheckpointError(f"{path} is not a readable torch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an srlib checkpoint (no 'format': '{FORMAT}' entry); "
                              "a bare state_dict can be loaded with model.load_state_dict(torch.load(...))")
    return payload


def load_checkpoint(path: str | Path, model: str | None = None, scale: int | None = None,
                    sha256: str | None = None, device: str | torch.device = "cpu") -> nn.Module:
    """Build the model a checkpoint records and load its weights.

    Args:
        path: checkpoint file.
        model: if given, the model name the caller expects; another model's checkpoint is refused.
        scale: if given, the scale the caller expects; a checkpoint for another scale is refused.
        sha256: expected file hash (zoo entries pass theirs).
        device: where to put the model.

    Returns:
        The model in eval mode, with ``model.srlib_meta`` holding the checkpoint's metadata.
    """
    from .models import create_model

    payload = read_checkpoint(path, sha256)
    name, ckpt_scale = payload["model"], payload["scale"]
    if model is not None and model != name:
        raise CheckpointError(f"{path} holds a '{name}' checkpoint, not '{model}'")
    if scale is not None and scale != ckpt_scale:
        raise CheckpointError(f"{path} was trained for x{ckpt_scale}, not x{scale}; pick a checkpoint "
                              f"for x{scale} (python -m srlib list)")
    net = create_model(name, scale=ckpt_scale, **payload["overrides"])
    try:
        net.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit {name} x{ckpt_scale}: {exc}") from None
    net.srlib_meta = payload["meta"]
    return net.to(device).eval()


def grow_from(net: nn.Module, source: nn.Module) -> list[str]:
    """Start ``net`` from the trained ``source``, a network of the same layers with smaller kernels in some.

    Every tensor of ``source`` is copied into the same-named tensor of ``net``. Where a convolution of ``net``
    has a larger kernel (SRCNN's 9-5-5 against its 9-1-5 basic setting), the trained kernel goes in the
    centre of a kernel of zeros: with 'same' padding the zero taps add nothing, so ``net`` computes exactly
    ``source``'s function, and training goes on from there with the new taps free to learn. A longer run
    of the smaller network is cheaper per step, so this is how a bigger pre-upsampling model can be
    trained on a CPU.

    Returns:
        The names of the tensors that were grown.

    Raises:
        ValueError: naming the tensor, when the two networks differ in more than kernels grown on every side.

    Example:
        >>> import srlib, torch
        >>> small, big = srlib.create_model("srcnn_915", scale=2), srlib.create_model("srcnn", scale=2)
        >>> grow_from(big, small)
        ['mapping.0.weight']
        >>> x = torch.rand(1, 3, 8, 8)
        >>> torch.allclose(big(x), small(x), atol=1e-6)
        True
    """
    target, trained = net.state_dict(), source.state_dict()
    if set(target) != set(trained):
        only_net, only_source = sorted(set(target) - set(trained)), sorted(set(trained) - set(target))
        raise ValueError(f"the two networks have different layers: only in the new one {only_net}, "
                         f"only in the trained one {only_source}")
    grown = []
    for key, value in trained.items():
        shape, small = target[key].shape, value.shape
        if shape == small:
            target[key] = value.clone()
            continue
        growth = [big - s for big, s in zip(shape[2:], small[2:])]
        if (len(shape) != 4 or len(small) != 4 or shape[:2] != small[:2]
                or any(g < 0 or g % 2 for g in growth)):
            raise ValueError(f"{key}: cannot start a {tuple(shape)} tensor from a {tuple(small)} one (only a "
                             "convolution kernel can grow, by an even number of taps, channels unchanged)")
        kernel = torch.zeros_like(target[key])
        gh, gw = growth[0] // 2, growth[1] // 2
        kernel[:, :, gh:gh + small[2], gw:gw + small[3]] = value
        target[key] = kernel
        grown.append(key)
    net.load_state_dict(target)
    return grown


# ----------------------------------------------------------------------------------------- the zoo

def _zoo_entries() -> dict[str, dict[str, Any]]:
    if not ZOO_INDEX.is_file():
        return {}
    return {e["name"]: e for e in json.loads(ZOO_INDEX.read_text())["checkpoints"]}


def list_pretrained(pattern: str = "*") -> list[dict[str, Any]]:
    """Zoo entries (dicts) whose name matches ``pattern``, sorted by name."""
    return [e for n, e in sorted(_zoo_entries().items()) if fnmatch.fnmatchcase(n, pattern)]


def pretrained_info(name: str) -> dict[str, Any]:
    """The zoo entry of ``name`` (model, scale, kind, sha256, provenance, validation numbers)."""
    entries = _zoo_entries()
    if name not in entries:
        raise KeyError(f"no zoo checkpoint named {name!r}; available: {', '.join(sorted(entries)) or 'none'}")
    return entries[name]


def load_pretrained(name: str, device: str | torch.device = "cpu") -> nn.Module:
    """Load a zoo checkpoint by name, checking its sha256.

    Example:
        >>> import srlib
        >>> net = srlib.load_pretrained("learned_upscaler_x4")
        >>> net.srlib_name, net.srlib_scale
        ('learned_upscaler', 4)
    """
    entry = pretrained_info(name)
    return load_checkpoint(WEIGHTS_DIR / entry["file"], model=entry["model"], scale=entry["scale"],
                           sha256=entry["sha256"], device=device)


def add_to_zoo(name: str, checkpoint: str | Path, kind: str, provenance: dict, metrics: dict) -> dict:
    """Record a checkpoint under ``srlib/weights/`` in the zoo index (used by ``scripts/``).

    Args:
        kind: ``"distortion"`` (trained for PSNR) or ``"perceptual"`` (GAN/perceptual losses).
        provenance: data, steps, device, wall time, the command that made it.
        metrics: validation numbers, e.g. ``{"val_psnr": ..., "val_ssim": ..., "bicubic_psnr": ...}``.
    """
    if kind not in ("distortion", "perceptual"):
        raise ValueError(f"kind must be 'distortion' or 'perceptual', got {kind!r}")
    checkpoint = Path(checkpoint).resolve()
    if checkpoint.parent != WEIGHTS_DIR.resolve():
        raise ValueError(f"zoo checkpoints live in {WEIGHTS_DIR}, got {checkpoint}")
    payload = read_checkpoint(checkpoint)
    from .models import model_entry

    entry = {
        "name": name, "file": checkpoint.name, "model": payload["model"], "scale": payload["scale"],
        "kind": kind, "reference_based": model_entry(payload["model"]).reference_based,
        "sha256": sha256_of(checkpoint), "bytes": checkpoint.stat().st_size,
        **metrics, "provenance": provenance,
    }
    # Several training scripts may finish at once: read-modify-write the index under an exclusive lock,
    # and replace it atomically, so that no entry is lost and no reader sees half a file.
    import fcntl
    import os

    with open(ZOO_INDEX.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        entries = _zoo_entries()
        entries[name] = entry
        tmp = ZOO_INDEX.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"checkpoints": [entries[k] for k in sorted(entries)]}, indent=2) + "\n")
        os.replace(tmp, ZOO_INDEX)
    return entry


# ------------------------------------------------------------- for the scripts that make zoo checkpoints

def parse_run_args(parser, argv: list[str] | None = None):
    """Add ``--seed``, ``--device``, ``--threads`` (shared by ``scripts/train_*zoo.py``), parse, apply the threads."""
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def run_provenance(script: str, argv: list[str], device: str | torch.device, seconds: float) -> dict[str, Any]:
    """The provenance fields every zoo entry shares: the exact command, the device, threads, wall time, versions, date.

    Args:
        script: the script's file name in ``scripts/``, e.g. ``"train_zoo.py"``.
        argv: its command-line arguments.
        device: where it trained (a CUDA device is recorded with its name).
        seconds: the training's wall time.
    """
    import datetime
    import platform
    import shlex

    device = torch.device(device)
    return {
        "command": f"python scripts/{script} " + " ".join(shlex.quote(a) for a in argv),
        "device": "cpu" if device.type == "cpu" else f"{device} ({torch.cuda.get_device_name(device)})",
        "torch_threads": torch.get_num_threads(), "wall_time_s": round(seconds, 1), "torch": torch.__version__,
        "python": platform.python_version(), "date": datetime.date.today().isoformat(),
    }
