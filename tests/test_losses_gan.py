"""Chapter 5 losses: Gram matrices, perceptual and texture losses, vanilla and relativistic GAN losses.

Hand-computed values (a Gram matrix, BCE at known logits, a one-patch texture difference), the
properties each loss is chosen for (perceptual: zero only for equal features; texture: blind to
the layout inside a patch but not across patches; RaGAN: only differences of scores matter, and
the generator's loss is the discriminator's with the roles swapped), gradients, and a few
adversarial steps with the tiny generators and discriminators.
"""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import srlib
from srlib.losses import PerceptualLoss, TextureLoss, discriminator_loss, generator_loss, gram_matrix
from srlib.models import esrgan, srresnet  # noqa: F401  (registers the models)


class Pixels(nn.Module):
    """An 'extractor' that returns the image itself, so the losses can be checked by hand."""

    def forward(self, x):
        return {"pixels": x}


# -------------------------------------------------------------------------------------------- gram

def test_gram_matrix_by_hand():
    f = torch.tensor([[[[1.0, 2.0], [0.0, 1.0]], [[3.0, 0.0], [1.0, 1.0]]]])  # (1, C=2, 2, 2)
    # <f0, f0> = 1 + 4 + 0 + 1 = 6, <f0, f1> = 3 + 0 + 0 + 1 = 4, <f1, f1> = 9 + 0 + 1 + 1 = 11; / (C H W) = 8
    assert torch.allclose(gram_matrix(f), torch.tensor([[[6.0, 4.0], [4.0, 11.0]]]) / 8)
    batch = torch.randn(3, 4, 5, 6)
    g = gram_matrix(batch)
    assert g.shape == (3, 4, 4) and torch.allclose(g, g.transpose(1, 2))
    assert torch.allclose(g[1:2], gram_matrix(batch[1:2]))  # per image
    shuffled = batch.flatten(2)[..., torch.randperm(30)].view(3, 4, 5, 6)
    assert torch.allclose(gram_matrix(shuffled), g, atol=1e-6)  # blind to where things are
    with pytest.raises(ValueError, match="N, C, H, W"):
        gram_matrix(torch.rand(4, 5, 6))


# -------------------------------------------------------------------------------------- perceptual

def test_perceptual_loss_with_a_pixel_extractor_is_the_pixel_loss():
    sr, hr = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)
    assert PerceptualLoss({"pixels": 1.0}, extractor=Pixels())(sr, hr).item() == pytest.approx(0.25)
    assert PerceptualLoss({"pixels": 3.0}, criterion="l1", extractor=Pixels())(sr, hr).item() == pytest.approx(1.5)
    with pytest.raises(ValueError, match="criterion"):
        PerceptualLoss({"pixels": 1.0}, criterion="huber", extractor=Pixels())


def test_perceptual_loss_is_zero_for_identical_images_and_positive_otherwise():
    torch.manual_seed(0)
    loss = PerceptualLoss({"relu1_2": 1.0, "relu2_2": 0.5})
    x = torch.rand(2, 3, 16, 16)
    assert loss(x, x.clone()).item() == 0.0
    noisy = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    assert loss(noisy, x).item() > 0
    # the total is the weighted sum of the per-layer losses
    per_layer = [PerceptualLoss({name: 1.0})(noisy, x) for name in ("relu1_2", "relu2_2")]
    assert torch.allclose(loss(noisy, x), per_layer[0] + 0.5 * per_layer[1], rtol=1e-5)


def test_perceptual_loss_gradients_go_to_sr_only():
    loss = PerceptualLoss({"relu2_2": 1.0}, criterion="l1", before_activation=True)
    sr = torch.rand(1, 3, 16, 16, requires_grad=True)
    hr = torch.rand(1, 3, 16, 16, requires_grad=True)
    loss(sr, hr).backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert hr.grad is None  # the target's features are computed without a graph
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())
    assert loss.extractor.before_activation


# ----------------------------------------------------------------------------------------- texture

def test_texture_loss_by_hand():
    hr = torch.zeros(1, 2, 2, 4)  # two 2x2 patches side by side, all zero
    sr = torch.zeros(1, 2, 2, 4)
    sr[0, 0, 0, 0] = 1.0  # one pixel in the left patch: G = [[1 / (C p p), 0], [0, 0]] = [[1/8, 0], [0, 0]]
    loss = TextureLoss({"pixels": 1.0}, patch_size=2, extractor=Pixels())
    # squared Frobenius norm (1/8)^2 in the left patch, 0 in the right one; mean over the 2 patches
    assert loss(sr, hr).item() == pytest.approx((1 / 8) ** 2 / 2)


def test_texture_loss_ignores_layout_within_patches_but_not_across():
    loss = TextureLoss({"pixels": 1.0}, patch_size=4, extractor=Pixels())
    torch.manual_seed(0)
    smooth = torch.rand(1, 3, 4, 1).expand(1, 3, 4, 4)  # a striped patch
    rough = torch.rand(1, 3, 4, 4)
    hr = torch.cat([smooth, rough], dim=-1)  # (1, 3, 4, 8): two patches with different textures
    within = torch.cat([smooth.transpose(-1, -2), rough.flip(-1, -2)], dim=-1)  # pixels moved inside each patch
    across = torch.cat([rough, smooth], dim=-1)  # the two textures swap places
    assert loss(within, hr).item() == pytest.approx(0.0, abs=1e-7)
    assert F.mse_loss(within, hr).item() > 1e-3  # while a pixel loss sees a change
    assert loss(across, hr).item() > 1e-4


def test_texture_loss_on_vgg_layers_and_small_images():
    loss = TextureLoss(patch_size=8)  # EnhanceNet's layers relu1_1, relu2_1, relu3_1; 8-px patches for the test
    x = torch.rand(1, 3, 16, 16)
    assert loss(x, x).item() == 0.0 and loss(torch.rand(1, 3, 16, 16), x).item() > 0
    with pytest.raises(ValueError, match="smaller than the 16-px texture patch"):
        TextureLoss({"relu1_1": 1.0})(torch.rand(1, 3, 12, 12), torch.rand(1, 3, 12, 12))


# ------------------------------------------------------------------------------------------ GAN losses

LOG2 = math.log(2.0)


def test_vanilla_gan_losses_by_hand():
    zero = torch.zeros(4, 1)
    # D(x) = sigmoid(0) = 1/2 for every image: -log(1/2) for the reals and for the fakes
    assert discriminator_loss(zero, zero).item() == pytest.approx(2 * LOG2)
    assert generator_loss(zero).item() == pytest.approx(LOG2)
    real, fake = torch.tensor([3.0]), torch.tensor([-1.0])
    assert discriminator_loss(real, fake).item() == pytest.approx(math.log1p(math.exp(-3)) + math.log1p(math.exp(-1)))
    assert generator_loss(fake).item() == pytest.approx(math.log1p(math.exp(1)))  # non-saturating: -log D(G(z))


def test_ragan_losses_by_hand_and_symmetric_cases():
    same = torch.full((5, 1), 0.7)
    # equal scores: every relativistic logit is 0, each BCE is log 2, and the halved sums too
    assert discriminator_loss(same, same, "ragan").item() == pytest.approx(LOG2)
    assert generator_loss(same, same, "ragan").item() == pytest.approx(LOG2)
    real, fake = torch.tensor([2.0]), torch.tensor([0.0])
    # D: both terms are softplus(-2); G: both are softplus(2)
    assert discriminator_loss(real, fake, "ragan").item() == pytest.approx(math.log1p(math.exp(-2)))
    assert generator_loss(fake, real, "ragan").item() == pytest.approx(math.log1p(math.exp(2)))
    torch.manual_seed(0)
    a, b = torch.randn(8, 1), torch.randn(8, 1)
    # the generator's loss is the discriminator's with the roles of real and fake swapped
    assert torch.allclose(generator_loss(a, b, "ragan"), discriminator_loss(a, b, "ragan"))
    # relativistic: adding the same constant to every score changes nothing (it does in the vanilla GAN)
    assert torch.allclose(discriminator_loss(a + 3, b + 3, "ragan"), discriminator_loss(a, b, "ragan"))
    assert not torch.allclose(discriminator_loss(a + 3, b + 3), discriminator_loss(a, b))


def test_gan_loss_arguments_are_checked():
    x = torch.zeros(2, 1)
    with pytest.raises(ValueError, match="unknown GAN loss 'wgan'"):
        discriminator_loss(x, x, "wgan")
    with pytest.raises(ValueError, match="needs real_logits"):
        generator_loss(x, kind="ragan")


# ------------------------------------------------------------------------------- adversarial steps

@pytest.mark.parametrize("kind,make_d", [("vanilla", srresnet.srgan_discriminator_tiny),
                                          ("ragan", esrgan.vgg_discriminator_tiny)])
def test_adversarial_steps_update_both_networks(kind, make_d):
    torch.manual_seed(0)
    g = srlib.create_model("srresnet_tiny" if kind == "vanilla" else "rrdbnet_tiny", scale=4)
    d = make_d()
    hr = torch.rand(4, 3, 48, 48)
    lr = F.avg_pool2d(hr, 4)
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-3)
    d_losses = []
    for _ in range(6):  # the discriminator learns to tell HR from the (fixed) untrained SR output
        with torch.no_grad():
            fake = g(lr)
        loss_d = discriminator_loss(d(hr), d(fake), kind)
        opt_d.zero_grad()
        loss_d.backward()
        for name, p in d.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
        opt_d.step()
        d_losses.append(loss_d.item())
    assert all(math.isfinite(v) for v in d_losses) and d_losses[-1] < d_losses[0], d_losses
    # generator step: pixel + adversarial, with D frozen
    for p in d.parameters():
        p.requires_grad_(False)
    sr = g(lr)
    loss_g = F.l1_loss(sr, hr) + 5e-3 * generator_loss(d(sr), d(hr).detach(), kind)
    loss_g.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())
    assert torch.isfinite(loss_g)
