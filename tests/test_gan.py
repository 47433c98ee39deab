"""srlib.gan: the adversarial fine-tuning loop, its recipes and its health check; the texture-statistics distance."""
import math

import pytest
import torch
from torch import nn

import srlib
from srlib.data import PatchDataset
from srlib.gan import (HISTORY_KEYS, RECIPES, chance_level, compact_history, finetune_gan, finetune_with_recipe,
                       gan_health)
from srlib.metrics import texture_distance
from srlib.models.esrgan import vgg_discriminator_tiny


@pytest.fixture(scope="module")
def data():
    torch.manual_seed(0)
    return PatchDataset([torch.rand(3, 64, 64), torch.rand(3, 64, 64)], scale=4, patch_size=48)


def small_generator():
    torch.manual_seed(0)
    return srlib.create_model("rrdbnet_tiny", scale=4)


def l1(sr, hr):
    return (sr - hr).abs().mean()


def snapshot(net):
    return [p.detach().clone() for p in net.parameters()]


def changed(before, net):
    return any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))


@pytest.mark.parametrize("kind", ["vanilla", "ragan"])
def test_one_step_changes_both_networks_and_records_every_loss(data, kind):
    G, D = small_generator(), vgg_discriminator_tiny()
    g0, d0 = snapshot(G), snapshot(D)
    history = finetune_gan(G, D, data, 1, content=l1, gan_kind=kind, gan_weight=5e-3, pixel_weight=1e-2,
                           batch_size=2)
    assert changed(g0, G) and changed(d0, D)
    assert set(history) == set(HISTORY_KEYS) and all(len(v) == 1 for v in history.values())
    assert history["step"] == [1] and all(math.isfinite(v) for v in history["loss_d"] + history["loss_g"])
    assert not G.training  # handed back in eval mode


def test_the_discriminator_can_have_its_own_learning_rate(data):
    G, D = small_generator(), vgg_discriminator_tiny()
    g0, d0 = snapshot(G), snapshot(D)
    finetune_gan(G, D, data, 1, content=l1, gan_kind="ragan", lr_d=0.0, batch_size=2)
    assert changed(g0, G) and not changed(d0, D)  # lr_d = 0 freezes D, G still learns


def test_non_finite_loss_raises(data):
    G, D = small_generator(), vgg_discriminator_tiny()
    with pytest.raises(FloatingPointError, match="step 1: non-finite generator loss"):
        finetune_gan(G, D, data, 2, content=lambda sr, hr: l1(sr, hr) * float("nan"), batch_size=2)
    with torch.no_grad():  # a discriminator whose scores are NaN
        D.classifier[-1].bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite discriminator loss"):
        finetune_gan(small_generator(), D, data, 1, content=l1, batch_size=2)


def test_gan_health_reads_the_last_window():
    steps = list(range(1, 101))
    healthy = {"step": steps, "loss_d": [1.0] * 100, "score_gap": [0.5] * 100}
    assert gan_health(healthy, "vanilla").startswith("healthy")
    wins = {"step": steps, "loss_d": [1.0] * 80 + [1e-3] * 20, "score_gap": [9.0] * 100}
    assert gan_health(wins, "vanilla").startswith("discriminator wins outright")
    assert gan_health(wins, "vanilla", window=100).startswith("healthy")  # the mean over 100 steps is still 0.8
    collapsed = {"step": steps, "loss_d": [math.log(2)] * 100, "score_gap": [0.0] * 100}
    assert gan_health(collapsed, "ragan").startswith("discriminator learns nothing")
    assert chance_level("vanilla") == pytest.approx(2 * math.log(2))


def test_compact_history_averages_blocks():
    history = {"step": [1, 2, 3, 4, 5], "loss_d": [1.0, 3.0, 5.0, 7.0, 9.0]}
    assert compact_history(history, 2) == {"step": [2, 4, 5], "loss_d": [2.0, 6.0, 9.0]}


@pytest.mark.parametrize("name", ["srgan", "esrgan"])
def test_recipes_run_and_keep_the_papers_settings(data, name):
    recipe = RECIPES[name]
    assert (recipe.gan_kind, recipe.gan_weight, recipe.pixel_weight) == {
        "srgan": ("vanilla", 1e-3, 0.0), "esrgan": ("ragan", 5e-3, 1e-2)}[name]
    G = small_generator()
    history, D = finetune_with_recipe(G, data, name, 1, features=None, batch_size=2)
    assert D(torch.rand(2, 3, 48, 48)).shape == (2, 1)
    # the content loss is calibrated on another batch, so it starts near (not exactly at) 1
    assert 0.2 < history["loss_content"][0] < 5


def test_texture_distance_is_zero_for_identical_images_and_positive_for_a_blurred_one():
    torch.manual_seed(0)
    hr = torch.rand(3, 48, 48)
    assert texture_distance(hr, hr, 4) == 0.0
    blurred = nn.functional.avg_pool2d(hr[None], 3, stride=1, padding=1, count_include_pad=False)[0]
    assert texture_distance(blurred, hr, 4) > 5  # grey levels: blur shrinks every neighbour difference
    batch = texture_distance(torch.stack([hr, blurred]), torch.stack([hr, hr]), 4)
    assert batch.shape == (2,) and batch[0] == 0 and batch[1] == pytest.approx(texture_distance(blurred, hr, 4))
    # a distance between distributions: the transposed image has the same pooled neighbour differences
    assert texture_distance(hr.transpose(-1, -2), hr, 4) == pytest.approx(0.0, abs=1e-9)
