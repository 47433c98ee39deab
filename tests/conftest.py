"""Shared fixtures. Tests run on CPU with small tensors; none touches the network."""
import os

import pytest
import torch

# Keep the suite within 2 cores whatever the machine, and quiet.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def smooth_image(rng) -> torch.Tensor:
    """A (3, 48, 48) image in [0, 1] with structure at several frequencies (not pure noise)."""
    y, x = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 48), indexing="ij")
    base = torch.stack([torch.sin(6 * x + 2 * y), torch.cos(5 * y - 3 * x), torch.sin(9 * x * y)])
    return (0.5 + 0.35 * base + 0.05 * torch.rand(3, 48, 48, generator=rng)).clamp(0, 1)


@pytest.fixture(scope="session")
def smoke_site():
    """The book built in the smoke budget (every notebook executed); fails the test on a build error."""
    from book_build import build_smoke_book

    html, proc = build_smoke_book()
    if proc.returncode != 0:
        pytest.fail("the book build failed:\n" + (proc.stdout + proc.stderr)[-6000:], pytrace=False)
    return html
