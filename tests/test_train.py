import math

import pytest
import torch
import torch.nn.functional as F

import srlib
from srlib.train import TrainState, fit, guarded_step, validate


class CropSource:
    """A minimal batch source: random crops of one image, LR by 2x2 average pooling."""

    def __init__(self, image: torch.Tensor, patch: int = 16):
        self.image, self.patch = image, patch

    def sample_batch(self, batch_size, generator):
        _, h, w = self.image.shape
        tops = torch.randint(0, h - self.patch + 1, (batch_size,), generator=generator)
        lefts = torch.randint(0, w - self.patch + 1, (batch_size,), generator=generator)
        hr = torch.stack([self.image[:, t:t + self.patch, l:l + self.patch] for t, l in zip(tops, lefts)])
        return F.avg_pool2d(hr, 2), hr


def make_model(seed=0):
    torch.manual_seed(seed)
    return srlib.create_model("learned_upscaler_tiny", scale=2)


def test_fit_lowers_the_loss_and_records_history(smooth_image):
    net = make_model()
    result = fit(net, CropSource(smooth_image), steps=40, batch_size=4, lr=3e-3, progress=False, verbose=False,
                 val_images={"img": smooth_image}, scale=2, val_every=20)
    h = result.history
    assert h["step"] == list(range(1, 41)) and len(h["loss"]) == 40
    assert sum(h["loss"][-5:]) < sum(h["loss"][:5])
    assert h["val_step"] == [20, 40] and result.val_psnr == h["val_psnr"][-1]
    assert all(math.isfinite(v) for v in h["loss"])
    assert not net.training  # fit leaves the model in eval mode


def test_same_seed_same_result(smooth_image):
    runs = [fit(make_model(), CropSource(smooth_image), steps=15, batch_size=4, seed=7, progress=False,
                verbose=False, val_images={"img": smooth_image}, scale=2) for _ in range(2)]
    assert abs(runs[0].val_psnr - runs[1].val_psnr) < 0.01
    assert runs[0].history["loss"] == runs[1].history["loss"]


def test_resume_is_exact(tmp_path, smooth_image):
    data = CropSource(smooth_image)
    straight = make_model()
    fit(straight, data, steps=12, batch_size=4, seed=3, progress=False, verbose=False)

    ckpt = tmp_path / "run.pt"
    first = make_model()
    fit(first, data, steps=12, batch_size=4, seed=3, progress=False, verbose=False, checkpoint=ckpt, checkpoint_every=6)
    # simulate an interruption after step 6: rebuild the checkpoint by a run that stops there
    interrupted = make_model()
    with pytest.raises(KeyboardInterrupt):
        def stop_at_7(state: TrainState):
            if state.step == 7:
                raise KeyboardInterrupt
        fit(interrupted, data, steps=12, batch_size=4, seed=3, progress=False, verbose=False, checkpoint=ckpt,
            checkpoint_every=6, callbacks=[stop_at_7])
    resumed = make_model(seed=99)  # different init: everything must come from the checkpoint
    result = fit(resumed, data, steps=12, batch_size=4, seed=3, progress=False, verbose=False, checkpoint=ckpt,
                 resume=True)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert result.history["step"] == list(range(1, 13))


def test_callbacks_see_every_event(smooth_image):
    events = []
    fit(make_model(), CropSource(smooth_image), steps=6, batch_size=2, progress=False, verbose=False,
        val_images={"img": smooth_image}, scale=2, val_every=3, callbacks=[lambda s: events.append((s.event, s.step))])
    assert events.count(("validate", 3)) == 1 and events[-1] == ("end", 6)
    assert [e for e in events if e[0] == "step"] == [("step", i) for i in range(1, 7)]


def test_fit_rejects_bad_arguments(smooth_image):
    with pytest.raises(ValueError, match="needs scale"):
        fit(make_model(), CropSource(smooth_image), steps=2, val_images={"a": smooth_image}, verbose=False)
    with pytest.raises(ValueError, match="steps"):
        fit(make_model(), CropSource(smooth_image), steps=0, verbose=False)


def test_nan_loss_stops_training(smooth_image):
    with pytest.raises(FloatingPointError, match="step 1"):
        fit(make_model(), CropSource(smooth_image), steps=3, loss=lambda sr, hr: (sr - hr).mean() * float("nan"),
            progress=False, verbose=False)


def test_guarded_step_updates_clips_and_refuses_non_finite_losses():
    layer = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(layer.parameters(), lr=1.0)
    before = [p.detach().clone() for p in layer.parameters()]
    with pytest.raises(FloatingPointError, match="loss is nan here"):
        guarded_step(opt, layer(torch.ones(1, 3)).sum() * float("nan"), lambda: "loss is nan here")
    assert all(torch.equal(a, b) for a, b in zip(before, layer.parameters()))  # nothing moved
    # a finite loss never builds the message (here it would raise ZeroDivisionError)
    guarded_step(opt, 1000 * layer(torch.ones(1, 3)).sum(), lambda: 1 / 0, clip=(layer.parameters(), 0.5))
    step = torch.cat([(a - b.detach()).flatten() for a, b in zip(before, layer.parameters())])
    assert math.isclose(step.norm().item(), 0.5, rel_tol=1e-5)  # lr 1 x the clipped gradient of norm 0.5


def test_validate_bicubic_callable_matches_untrained_upscaler(smooth_image):
    from srlib.degrade import upscale_bicubic

    bic = validate(lambda lr: upscale_bicubic(lr, 2), {"img": smooth_image}, scale=2)
    net = validate(make_model(), {"img": smooth_image}, scale=2)
    assert abs(bic["psnr"] - net["psnr"]) < 1e-3  # the zero-initialised tail makes the model bicubic


def test_device_auto_says_what_it_chose(capsys):
    from srlib.train import pick_device

    device = pick_device("auto")
    assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert "srlib: training on" in capsys.readouterr().out


def test_models_with_deep_supervision_get_their_own_loss(smooth_image):
    calls = []

    class Supervised(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = make_model()

        def forward(self, lr):
            return self.net(lr)

        def training_loss(self, lr, hr, criterion, progress):
            calls.append(progress)
            return criterion(self(lr), hr)

    fit(Supervised(), CropSource(smooth_image), steps=4, batch_size=2, progress=False, verbose=False)
    assert calls == [0.0, 0.25, 0.5, 0.75]


class ReferenceSource(CropSource):
    """(lr, hr, ref) triplets whose reference is the HR patch itself: a perfect reference."""

    def sample_batch(self, batch_size, generator):
        lr, hr = super().sample_batch(batch_size, generator)
        return lr, hr, hr.clone()


class CopyFromReference(torch.nn.Module):
    """Learns how much of the reference to copy: the ideal weight on a perfect reference is 1."""

    def __init__(self):
        super().__init__()
        self.mix = torch.nn.Parameter(torch.zeros(()))

    def forward(self, lr, ref):
        up = F.interpolate(lr, scale_factor=2, mode="nearest")
        return up + self.mix * (ref - up)


def test_fit_trains_reference_based_models_on_triplets(smooth_image):
    model = CopyFromReference()
    result = fit(model, ReferenceSource(smooth_image), steps=40, batch_size=2, lr=0.05, loss="mse",
                 progress=False, verbose=False)
    assert result.history["loss"][-1] < 0.1 * result.history["loss"][0]
    assert model.mix.item() > 0.8  # from 0: it learned to copy the perfect reference


def test_validate_passes_each_image_its_reference(smooth_image):
    model = CopyFromReference().eval()
    with torch.no_grad():
        model.mix.fill_(1.0)
    hr = {"a": smooth_image}
    perfect = validate(model, hr, scale=2, references={"a": smooth_image})
    unrelated = validate(model, hr, scale=2, references={"a": smooth_image.flip(-1)})
    assert perfect["psnr"] > 60 and unrelated["psnr"] < perfect["psnr"] - 10
    with pytest.raises(ValueError, match="missing: \\['a'\\]"):
        validate(model, hr, scale=2, references={"b": smooth_image})


def test_fit_validates_reference_models_with_their_references(smooth_image):
    model = CopyFromReference()
    result = fit(model, ReferenceSource(smooth_image), steps=4, batch_size=2, lr=0.1, scale=2,
                 val_images={"a": smooth_image}, val_refs={"a": smooth_image}, val_every=2,
                 progress=False, verbose=False)
    assert result.history["val_step"] == [2, 4] and result.val_psnr > 20
    with pytest.raises(ValueError, match="val_refs"):
        fit(model, ReferenceSource(smooth_image), steps=1, val_refs={"a": smooth_image}, progress=False,
            verbose=False)


def test_fit_trains_ttsr_tiny_on_reference_patches():
    from srlib.refsr_data import ReferencePatchSampler

    torch.manual_seed(0)
    model = srlib.create_model("ttsr_tiny", scale=4)
    sampler = ReferencePatchSampler(patch_size=32, scale=4, images={"x": torch.rand(3, 48, 48)})
    result = fit(model, sampler, steps=2, batch_size=2, progress=False, verbose=False)
    assert len(result.history["loss"]) == 2 and all(math.isfinite(v) for v in result.history["loss"])
