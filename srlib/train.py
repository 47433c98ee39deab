"""A plain training loop for SR networks, with budgets, callbacks, checkpoints and exact resume.

``fit()`` is deliberately ordinary (sample a batch, forward, loss, backward, step) so a reader can
see every line; what chapters need around it (live plots, snapshots for frame scrubbers, progress)
attaches through callbacks, as in d2l's ``ProgressBoard`` or minGPT's ``set_callback``.

Images are torch float32 (N, 3, H, W) RGB in [0, 1].
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol

import torch
from torch import nn

from .inference import super_resolve
from .losses import get_loss


# --------------------------------------------------------------------------------------------- device

def pick_device(device: str | torch.device | None = "auto", verbose: bool = True) -> torch.device:
    """Choose the device: ``"auto"`` means CUDA when present, else CPU; says what it chose.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``torch.device``.
        verbose: print one line naming the device (and the GPU model).
    """
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA device; use device='auto' or 'cpu'")
    if verbose:
        if device.type == "cuda":
            print(f"srlib: training on {device} ({torch.cuda.get_device_name(device)})")
        else:
            print(f"srlib: training on CPU ({torch.get_num_threads()} threads)")
    return device


# ------------------------------------------------------------------------------------------ validation

def validate(model: nn.Module | Callable, hr_images: dict[str, torch.Tensor], scale: int,
             device: torch.device | str | None = None,
             references: dict[str, torch.Tensor] | None = None,
             degradation: Callable[[torch.Tensor], torch.Tensor] | None = None,
             texture: bool = False) -> dict[str, float]:
    """Mean PSNR/SSIM over HR images with the paper protocol (see ``srlib.metrics``).

    Each HR (3, H, W) in [0, 1] is mod-cropped, bicubic-downscaled MATLAB-style and rounded to uint8,
    super-resolved, clamped, rounded and compared on Y with a ``scale``-pixel shave.

    Args:
        model: an SR network, or any callable ``lr (1, 3, h, w) -> sr`` (e.g. bicubic interpolation).
        hr_images: name -> HR image.
        scale: upscaling factor.
        references: for reference-based models (SRNTT, TTSR, SSEN): name -> the (3, H', W') reference
            image of that HR image; the model is then called as ``model(lr, ref)``. Every HR image needs one.
        degradation: how to make the LR image from the mod-cropped HR one, (3, H, W) -> (3, H/s, W/s).
            Default: the benchmark's MATLAB bicubic downscaling (``srlib.degrade.bicubic_downscale``);
            ``srlib.blind.validate_blurred`` passes a blur first.
        texture: also measure the texture-statistics distance (``srlib.metrics.texture_distance``,
            grey levels, same protocol), the perceptual axis of chapter 5's plots.

    Returns:
        ``{"psnr": mean dB, "ssim": mean, "per_image": {name: (psnr, ssim)}}``, plus ``"tsd"`` (mean)
        with ``texture``.
    """
    from .degrade import bicubic_downscale, mod_crop
    from .metrics import psnr, ssim, texture_distance

    if not hr_images:
        raise ValueError("validate() needs at least one HR image")
    if references is not None and set(references) != set(hr_images):
        missing, unused = sorted(set(hr_images) - set(references)), sorted(set(references) - set(hr_images))
        raise ValueError(f"validate(references=...) needs exactly one reference per HR image; "
                         f"missing: {missing}, without an HR image: {unused}")
    per_image, tsd = {}, []
    for name, hr in hr_images.items():
        hr = mod_crop(hr, scale)
        lr = bicubic_downscale(hr, scale) if degradation is None else degradation(hr)
        extra = () if references is None else (references[name],)
        if isinstance(model, nn.Module):
            sr = super_resolve(model, lr, *extra).cpu()
        else:
            with torch.no_grad():
                sr = model(lr[None], *(e[None] for e in extra))[0].clamp(0, 1).cpu()
        if sr.shape != hr.shape:
            raise ValueError(f"{name}: model output {tuple(sr.shape)} does not match HR {tuple(hr.shape)} at x{scale}")
        per_image[name] = (float(psnr(sr, hr, scale)), float(ssim(sr, hr, scale)))
        if texture:
            tsd.append(float(texture_distance(sr, hr, scale)))
    result = {
        "psnr": sum(p for p, _ in per_image.values()) / len(per_image),
        "ssim": sum(s for _, s in per_image.values()) / len(per_image),
        "per_image": per_image,
    }
    if texture:
        result["tsd"] = sum(tsd) / len(tsd)
    return result


# ------------------------------------------------------------------------------------------- the loop

class BatchSource(Protocol):
    """Anything with ``sample_batch(batch_size, generator) -> (lr, hr)``, e.g. ``srlib.data.PatchDataset``,
    or ``-> (lr, hr, ref)`` for reference-based models (``srlib.refsr_data.ReferencePatchSampler``)."""

    def sample_batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass
class TrainState:
    """What callbacks see. ``event`` is ``"step"`` after each optimiser step, ``"validate"`` after a
    validation, ``"end"`` once at the end."""

    step: int
    total_steps: int
    model: nn.Module
    history: dict[str, list]
    device: torch.device
    event: str = "step"
    last_loss: float = math.nan
    elapsed: float = 0.0


@dataclass
class FitResult:
    """The outcome of :func:`fit`: history lists and the last validation."""

    history: dict[str, list]
    steps: int
    seconds: float
    device: str
    val_psnr: float | None = None
    val_ssim: float | None = None
    extra: dict = field(default_factory=dict)


def guarded_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, problem: Callable[[], str],
                 clip: tuple[Iterable[nn.Parameter], float] | None = None) -> None:
    """One optimiser step on ``loss``, refusing a non-finite one: zero the gradients, back-propagate, step.

    Every training loop in srlib goes through here, so a NaN or an infinity stops training with a
    message instead of silently filling the weights with NaN.

    Args:
        optimizer: the optimiser of the parameters ``loss`` depends on.
        loss: a scalar.
        problem: makes the message of the ``FloatingPointError`` raised when ``loss`` is not finite
            (which loss, at which step, what to try). A function, called only then: building the
            message every step would read losses off the GPU (``.item()``) in the hot loop.
        clip: ``(parameters, max_norm)`` to clip the gradients' total norm before the step, or None.

    Raises:
        FloatingPointError: ``loss`` is NaN or infinite (nothing is updated).
    """
    if not torch.isfinite(loss):
        raise FloatingPointError(problem())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        nn.utils.clip_grad_norm_(*clip)
    optimizer.step()


def _new_history() -> dict[str, list]:
    return {"step": [], "loss": [], "lr": [], "val_step": [], "val_psnr": [], "val_ssim": []}


def fit(model: nn.Module, data: BatchSource, steps: int, *, batch_size: int = 16, lr: float = 1e-3,
        loss: str | Callable = "l1", optimizer: torch.optim.Optimizer | None = None, schedule: str = "cosine",
        val_images: dict[str, torch.Tensor] | None = None, val_refs: dict[str, torch.Tensor] | None = None,
        val_every: int | None = None, scale: int | None = None,
        seed: int = 0, device: str | torch.device | None = "auto", amp: bool = False,
        callbacks: Iterable[Callable[[TrainState], None]] = (), checkpoint: str | Path | None = None,
        checkpoint_every: int | None = None, resume: bool = False, progress: bool = True,
        grad_clip: float | None = None, verbose: bool = True) -> FitResult:
    """Train ``model`` for ``steps`` optimiser steps on batches from ``data``.

    Args:
        model: an SR network mapping (N, 3, h, w) to (N, 3, scale*h, scale*w).
        data: a batch source (``sample_batch(batch_size, generator) -> (lr, hr)``). A source that gives
            ``(lr, hr, ref)`` trains a reference-based model: it is called as ``model(lr, ref)``, and its
            ``training_loss`` (if any) gets ``ref=`` too.
        steps: total optimiser steps (take it from ``srlib.get_budget().steps(cpu=...)``).
        batch_size: patches per step. Default: 16 (EDSR).
        lr: peak learning rate of Adam. Default: 1e-3 (small models; EDSR-size models want 1e-4..2e-4).
        loss: ``"l1"``, ``"mse"``, ``"charbonnier"`` or ``callable(sr, hr)``. Default: L1 (EDSR). Models
            with intermediate outputs define ``training_loss(lr, hr, criterion, progress)`` (``progress``
            in [0, 1) is the fraction of training done, for schedules such as DRCN's decaying alpha) and
            fit uses it instead of ``criterion(model(lr), hr)``.
        optimizer: a ready optimiser instead of Adam(lr) (e.g. per-layer learning rates).
        schedule: ``"cosine"`` (anneal to 0 over ``steps``) or ``"constant"``.
        val_images: HR images to validate on with the paper protocol; needs ``scale``.
        val_refs: the reference image of each validation image, for reference-based models.
        val_every: validate every this many steps (default: 5 times per run) and at the end.
        seed: seeds the batch sampler (a ``torch.Generator``) and the global torch RNG at start, so
            the same seed gives the same run on the same machine.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``.
        amp: bfloat16 autocast on CUDA (ignored on CPU, where it would slow small convs down).
        callbacks: functions called with a :class:`TrainState` (live plots, snapshots).
        checkpoint: path to save model + optimiser + RNG state every ``checkpoint_every`` steps and at
            the end; with ``resume=True`` training continues exactly from it.
        progress: show a tqdm progress bar.
        grad_clip: clip the gradient norm to this (VDSR-style); None for no clipping.

    Returns:
        A :class:`FitResult` with the history (``step``, ``loss``, ``lr``, ``val_step``, ``val_psnr``,
        ``val_ssim``), the wall time and the last validation numbers.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if val_images and scale is None:
        raise ValueError("fit(val_images=...) needs scale= to build the LR images")
    if val_refs is not None and not val_images:
        raise ValueError("fit(val_refs=...) needs val_images= (the HR images those references belong to)")
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    device = pick_device(device, verbose=verbose)
    model.to(device).train()
    criterion = get_loss(loss)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, (lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))) if schedule == "cosine" else (lambda s: 1.0))
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    history, start = _new_history(), 0
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        start, history = _restore(checkpoint, model, optimizer, scheduler, generator, steps)
        if verbose:
            print(f"srlib: resumed from {checkpoint} at step {start}/{steps}")
    val_every = val_every or max(1, steps // 5)
    use_amp = amp and device.type == "cuda"
    supervised_inside = hasattr(model, "training_loss")
    state = TrainState(start, steps, model, history, device)
    bar = _progress_bar(steps, start) if progress else None
    # wall time continues across a resume: the saved history carries the seconds spent so far
    t0 = time.perf_counter() - (history["seconds"][-1] if history.get("seconds") else 0.0)
    last = None
    for step in range(start + 1, steps + 1):
        batch = data.sample_batch(batch_size, generator)
        if len(batch) not in (2, 3):
            raise ValueError(f"sample_batch must return (lr, hr) or (lr, hr, ref), got {len(batch)} tensors")
        lr_batch, hr_batch, *refs = (t.to(device, non_blocking=True) for t in batch)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            if supervised_inside:  # deep supervision (DRCN, LapSRN, MemNet): the model combines its outputs' losses
                loss_value = model.training_loss(lr_batch, hr_batch, criterion, progress=(step - 1) / steps,
                                                 **({"ref": refs[0]} if refs else {}))
            else:
                loss_value = criterion(model(lr_batch, *refs).float(), hr_batch)
        guarded_step(optimizer, loss_value,
                     lambda: f"loss became {loss_value.item()} at step {step}; lower lr or clip gradients",
                     clip=None if grad_clip is None else (model.parameters(), grad_clip))
        scheduler.step()
        state.step, state.last_loss, state.event = step, loss_value.item(), "step"
        state.elapsed = time.perf_counter() - t0
        history["step"].append(step)
        history["loss"].append(state.last_loss)
        history["lr"].append(optimizer.param_groups[0]["lr"])
        _call(callbacks, state)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{state.last_loss:.4f}", refresh=False)
        if val_images and (step % val_every == 0 or step == steps):
            last = validate(model, val_images, scale, device, references=val_refs)
            history["val_step"].append(step)
            history["val_psnr"].append(last["psnr"])
            history["val_ssim"].append(last["ssim"])
            state.event = "validate"
            _call(callbacks, state)
            if bar is not None:
                bar.set_postfix(loss=f"{state.last_loss:.4f}", val_psnr=f"{last['psnr']:.2f}")
        if checkpoint is not None and (step == steps or (checkpoint_every and step % checkpoint_every == 0)):
            history.setdefault("seconds", []).append(time.perf_counter() - t0)
            _save(checkpoint, model, optimizer, scheduler, generator, step, history)
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - t0
    state.event, state.elapsed = "end", seconds
    _call(callbacks, state)
    model.eval()
    result = FitResult(history, steps, seconds, str(device))
    if history["val_psnr"]:
        result.val_psnr, result.val_ssim = history["val_psnr"][-1], history["val_ssim"][-1]
    return result


def _call(callbacks: Iterable[Callable], state: TrainState) -> None:
    for cb in callbacks:
        cb(state)


def _progress_bar(total: int, initial: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="training", unit="step", leave=True)


def _save(path, model, optimizer, scheduler, generator, step, history) -> None:
    from .zoo import save_checkpoint

    train_state = {
        "step": step, "history": copy.deepcopy(history),
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
    }
    if hasattr(model, "srlib_name"):
        save_checkpoint(model, path, meta={"step": step}, train_state=train_state)
    else:  # a bare nn.Module: keep the same layout without the model name
        torch.save({"format": "srlib-train-state", "state_dict": model.state_dict(), "train_state": train_state}, path)


def _restore(path, model, optimizer, scheduler, generator, steps) -> tuple[int, dict]:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if "train_state" not in payload:
        raise ValueError(f"{path} has no training state to resume from (it is a weights-only checkpoint)")
    if hasattr(model, "srlib_name") and payload.get("model") not in (None, model.srlib_name):
        raise ValueError(f"{path} is a checkpoint of '{payload['model']}', cannot resume '{model.srlib_name}'")
    ts = payload["train_state"]
    if ts["step"] > steps:
        raise ValueError(f"{path} is at step {ts['step']}, beyond the requested {steps} steps")
    model.load_state_dict(payload["state_dict"])
    optimizer.load_state_dict(ts["optimizer"])
    scheduler.load_state_dict(ts["scheduler"])
    generator.set_state(ts["generator"])
    torch.set_rng_state(ts["torch_rng"])
    return ts["step"], ts["history"]
