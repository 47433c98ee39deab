"""Helpers shared by the model test files (tests/test_models_*.py)."""
import torch

import srlib


def make(name: str, scale: int, seed: int = 0, **overrides) -> torch.nn.Module:
    """A registered model built after seeding torch, so each test gets the same weights every run."""
    torch.manual_seed(seed)
    return srlib.create_model(name, scale=scale, **overrides)


def make_meta(name: str, scale: int) -> torch.nn.Module:
    """A model built on the meta device: shapes and parameter counts without memory or initialisation."""
    with torch.device("meta"):
        return srlib.create_model(name, scale=scale)


def scales_of(name: str) -> tuple[int, ...]:
    return srlib.model_entry(name).scales


def assert_gradients_reach_every_parameter(net: torch.nn.Module, label: str = "") -> None:
    """After a backward pass: every trainable parameter has a finite, non-zero gradient (frozen ones,
    such as a fixed VGG, are skipped)."""
    trainable = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    assert trainable, f"{label}: no trainable parameters"
    for pname, p in trainable:
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, f"{label}: {pname}"


def assert_upscales_at(name: str, scales) -> None:
    """At each scale, a fresh (eval-mode) model maps an odd-sized LR batch to exactly scale times its size,
    with finite values."""
    lr = torch.rand(2, 3, 12, 11)
    for scale in scales:
        net = make(name, scale).eval()
        with torch.no_grad():
            sr = net(lr)
        assert sr.shape == (2, 3, 12 * scale, 11 * scale), (name, scale)
        assert torch.isfinite(sr).all(), (name, scale)
