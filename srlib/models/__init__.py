"""Model registry: one hop from a paper's name to an ``nn.Module``.

Each paper file registers factory functions with :func:`register_model`; :func:`create_model` builds
them by name. The paper configuration is registered under the paper's name in snake case
(``edsr``, ``rcan``, ...) and a CPU-sized preset under ``NAME_tiny``.

Example:
    >>> import torch, srlib
    >>> model = srlib.create_model("learned_upscaler_tiny", scale=2)
    >>> model(torch.rand(1, 3, 8, 8)).shape
    torch.Size([1, 3, 16, 16])
"""
from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass
from typing import Callable

from torch import nn


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows of one model name (kept beside the architecture, not inside it)."""

    name: str
    factory: Callable[..., nn.Module]
    scales: tuple[int, ...]
    paper: str
    reference_based: bool = False  # forward(lr, ref) instead of forward(lr)
    blind: bool = False  # estimates the degradation itself


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, *, scales: tuple[int, ...], paper: str, reference_based: bool = False,
                   blind: bool = False) -> Callable:
    """Decorator registering ``factory(scale, **overrides) -> nn.Module`` under ``name``.

    Args:
        name: registry name (snake case paper name, or ``NAME_tiny`` for the CPU preset).
        scales: the upscaling factors the architecture supports; others are refused by
            :func:`create_model` with a message listing these.
        paper: short citation shown by ``list``.
    """

    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} registered twice ({_REGISTRY[name].factory.__module__} "
                             f"and {factory.__module__})")
        _REGISTRY[name] = ModelEntry(name, factory, tuple(scales), paper, reference_based, blind)
        return factory

    return decorator


def model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; unknown names raise ``KeyError`` with close matches."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown model {name!r}.{hint} srlib.list_models() lists all "
                       f"{len(_REGISTRY)} models.") from None


def create_model(name: str, scale: int = 4, **overrides) -> nn.Module:
    """Build a registered model.

    Args:
        name: a name from :func:`list_models`.
        scale: upscaling factor; must be one the architecture supports.
        **overrides: config fields to change (``num_feat=32``, ...); unknown fields raise ``TypeError``.

    Returns:
        The model, mapping LR images (N, 3, h, w) in [0, 1] to (N, 3, scale*h, scale*w). It carries
        ``srlib_name``, ``srlib_scale`` and ``srlib_overrides`` so checkpoints can record what they hold.
    """
    entry = model_entry(name)
    if scale not in entry.scales:
        raise ValueError(f"{name} supports scales {', '.join(f'x{s}' for s in entry.scales)}, not x{scale}")
    model = entry.factory(scale=scale, **overrides)
    model.srlib_name = name
    model.srlib_scale = scale
    model.srlib_overrides = dict(overrides)
    return model


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (``"rcan*"``), sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters, shared modules counted once (as ``model.parameters()`` does).

    Buffers such as the mean shift are not parameters, so they are not counted.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# Importing the paper files fills the registry. Keep this list in chapter order.
from . import learned_upscaler  # noqa: E402,F401  (chapter 1)
from . import srcnn, fsrcnn, espcn, vdsr, drcn, lapsrn, edsr  # noqa: E402,F401  (chapter 2)
from . import srdensenet, rdn, memnet, dbpn, idn, carn, msrn  # noqa: E402,F401  (chapter 3)
from . import rcan, san, mirnet  # noqa: E402,F401  (chapter 4)
from . import enhancenet, srresnet, esrgan, srfeat, sftgan  # noqa: E402,F401  (chapter 5)
from . import srntt, ttsr  # noqa: E402,F401  (chapter 6)
from . import ssen  # noqa: E402,F401  (chapter 7)
from . import zssr, ikc, dasr  # noqa: E402,F401  (chapter 8)
