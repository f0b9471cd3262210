"""The imagination loop end to end on tiny random models in the real formats."""

import pytest
import torch

from imagination.models import registry
from imagination.pipeline import ImagineSettings, Neuron, Run, score

pytestmark = pytest.mark.usefixtures("tiny_checkpoints")

FAST = dict(size=32, cutn=8, seed=3)


def _run(**overrides):
    settings = ImagineSettings(**{**dict(prompts=["snowy mountains"], models=["clip"], steps=40), **FAST, **overrides})
    run = Run(settings)
    events = list(run)
    return run, events


@pytest.mark.parametrize("canvas, margin", [("pixels", 0.15), ("pyramid", 0.15), ("plain", 0.15), ("vqgan", 0.05)])
def test_a_short_run_raises_the_target_similarity(canvas, margin):
    # Tiny random CLIP: the rise is large on pixels, smaller through a 16-code random VQGAN, where the
    # margin holds at a constant rate (the default cosine decay spends its last steps on fine moves).
    # test_demo_models.py checks the same on the trained demo models at their defaults, BriVL included.
    constant = dict(schedule="constant", lr=0.1) if canvas == "vqgan" else {}
    run, events = _run(prompts=["snowy mountains"], models=["clip"], canvas=canvas, steps=40, **constant)
    before = score(events[0].images, ["snowy mountains"], "clip")[0][0]  # the noise the run started from
    after = run.result.similarity["clip-demo"][0]["snowy mountains"]
    assert after > before + margin, (before, after)


def test_chinese_clip_in_the_hub_format_imagines_from_chinese_text():
    """Chinese-CLIP (BertTokenizer, [CLS] pooling, pytorch_model.bin) through the same loader and loop."""
    encoder = registry.load("chinese-clip")
    assert encoder.chinese and encoder.languages == ("zh",) and encoder.name == "chinese-clip-vit-base-patch16"
    run, events = _run(prompts=["雪山之夜"], models=["chinese-clip"], canvas="pixels", steps=30)
    before = score(events[0].images, ["雪山之夜"], "chinese-clip")[0][0]
    assert run.result.similarity["chinese-clip-vit-base-patch16"][0]["雪山之夜"] > before + 0.15
    assert Run(ImagineSettings(prompts=["雪山"], steps=1, **FAST)).settings.models == ["brivl"]  # auto stays BriVL


@pytest.mark.parametrize("canvas", ["pixels", "pyramid", "plain"])
def test_pixel_canvases_move_the_whole_image_before_the_cutouts_by_default(canvas, monkeypatch):
    from imagination.augment import ImageJitter

    run = Run(ImagineSettings(prompts=["snowy mountains"], models=["clip"], canvas=canvas, steps=2, **FAST))
    assert run.cutouts.jitter.active and run.cutouts.jitter.pad > 0  # the feature-visualisation transforms
    mapped, original = [], ImageJitter.to_image
    monkeypatch.setattr(ImageJitter, "to_image", lambda self, *args: mapped.append(1) or original(self, *args))
    list(run)
    assert len(mapped) == 2  # applied at every step
    vqgan = Run(ImagineSettings(prompts=["snowy mountains"], models=["clip"], canvas="vqgan", steps=1, **FAST))
    assert not vqgan.cutouts.jitter.active  # the VQGAN's decoder is its own prior


def test_same_seed_gives_the_identical_image_and_another_seed_does_not():
    first, _ = _run(canvas="vqgan", steps=5)
    second, _ = _run(canvas="vqgan", steps=5)
    other, _ = _run(canvas="vqgan", steps=5, seed=4)
    assert torch.equal(first.result.images, second.result.images)
    assert not torch.equal(first.result.images, other.result.images)


def test_encoders_stay_frozen_while_the_canvas_gets_gradients():
    run = Run(ImagineSettings(prompts=["snowy mountains"], models=["clip", "brivl"],
                              model_prompts={"brivl": ["有积雪的山脉"]}, canvas="vqgan", steps=3, **FAST))
    weights = {name: {k: v.clone() for k, v in e.state_dict().items()} for name, e in run.encoders.items()}
    list(run)
    for name, encoder in run.encoders.items():
        assert all(not p.requires_grad and p.grad is None for p in encoder.parameters())
        assert all(torch.equal(v, encoder.state_dict()[k]) for k, v in weights[name].items())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in run.canvas.parameters())


def test_texts_are_embedded_once_per_run_not_per_step(monkeypatch):
    encoder = registry.load("clip")
    calls = []
    original = encoder._embed_text
    monkeypatch.setattr(encoder, "_embed_text", lambda texts: calls.append(texts) or original(texts))
    _run(prompts=["a:1|b:-1", "c"], negative="d", canvas="plain", steps=5)
    assert calls == [["a", "b", "c", "d"]]


def test_stop_ends_within_one_step_and_keeps_the_image():
    run = Run(ImagineSettings(prompts=["snowy mountains"], models=["clip"], canvas="pixels", steps=100, **FAST))
    seen = []
    for event in run:
        seen.append(event)
        if event.step == 3 and not event.done:
            run.stop()
    assert [e.step for e in seen] == [1, 2, 3, 3] and seen[-1].done and seen[-1].stopped
    assert run.result.steps == 3 and run.result.images.shape == (1, 3, 32, 32)


def test_progress_streams_previews_every_k_steps():
    _, events = _run(canvas="pixels", steps=10, preview_every=4)
    with_images = [e.step for e in events if e.images is not None and not e.done]
    assert with_images == [1, 4, 8] and events[-1].done and events[-1].images is not None


def test_a_neuron_under_a_text_constraint_raises_its_activation():
    encoder = registry.load("clip")
    layer = next(iter(encoder.neuron_layers()))
    neuron = Neuron("clip", layer, channel=5, weight=1.0)
    run, events = _run(prompts=[], neuron=neuron, canvas="pixels", steps=30)
    key = f"{encoder.name}/{layer}:5"
    assert events[-2].similarity[key].item() > events[0].similarity[key].item() + 0.05


def test_metadata_records_what_reproduces_the_image():
    run, _ = _run(canvas="vqgan", steps=3, negative="night")
    meta = run.result.metadata[0]
    for key in ("prompt", "models", "canvas", "vqgan", "steps", "lr", "size", "seed", "cutn", "cut_pow",
                "augmentations", "negative", "version", "similarity"):
        assert key in meta, key
    from imagination.loop import runs_in_bf16
    from imagination.pipeline import default_settings

    assert meta["models"] == ["clip-demo"] and meta["vqgan"] == "vqgan-demo"
    defaults = default_settings("vqgan", ["clip"], runs_in_bf16(run.device, "auto"))
    assert (meta["lr"], meta["schedule"]) == (defaults["lr"], defaults["schedule"])
    assert run.result.tokens is not None and len(run.result.tokens[0]) == 32 // run.canvas.factor


def test_until_plateau_ends_a_flat_run_early_and_says_so():
    # lr so small the image cannot change: the loss is flat from the start
    run, events = _run(canvas="pixels", steps=400, lr=1e-9, until_plateau=True)
    assert 30 <= run.result.steps < 200 and events[-1].plateaued and not events[-1].stopped
    assert run.result.metadata[0]["plateaued"] is True and run.result.metadata[0]["steps_done"] == run.result.steps
    busy, _ = _run(canvas="pixels", steps=40, until_plateau=False)
    assert busy.result.steps == 40 and busy.result.metadata[0]["plateaued"] is False


def test_a_default_vqgan_run_follows_its_canvas_schedule(monkeypatch):
    """The VQGAN default is a cosine decay (bench/RESULTS.md, time to quality): the rate the optimiser
    uses falls from the canvas's lr to a tenth of it by the last step."""
    from imagination.pipeline import default_settings

    rates, step = [], torch.optim.Adam.step
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, *a, **k: rates.append(self.param_groups[0]["lr"])
                        or step(self, *a, **k))
    _run(canvas="vqgan", steps=10, precision="fp32")
    lr = default_settings("vqgan", ["clip"])["lr"]
    assert len(rates) == 10 and rates[0] == pytest.approx(lr, rel=0.05) and rates[-1] == pytest.approx(lr / 10)
    assert all(a >= b for a, b in zip(rates, rates[1:]))


@pytest.mark.parametrize("prompts, models, canvas, precision, steps, lr", [
    (["snow"], None, "vqgan", "fp32", 100, 0.3),  # CLIP alone on the VQGAN in fp32: as good after 100 steps
    (["snow"], ["clip-demo"], "vqgan", "fp32", 100, 0.3),
    (["snow"], None, "vqgan", "bf16", 150, 0.2),  # in bf16 it is not (README, Speed)
    (["雪山"], None, "vqgan", "fp32", 150, 0.2),  # BriVL needs 150
    (["snow"], ["clip", "brivl"], "vqgan", "fp32", 150, 0.2),  # with BriVL in the run: the canvas's own
    (["snow"], None, "pixels", "fp32", 150, 0.05),
])
def test_steps_and_lr_left_empty_follow_the_canvas_models_and_precision(prompts, models, canvas, precision, steps,
                                                                        lr):
    settings = ImagineSettings(prompts=prompts, models=models, canvas=canvas, precision=precision).validated()
    assert (settings.steps, settings.lr) == (steps, lr)
    chosen = ImagineSettings(prompts=prompts, models=models, canvas=canvas, precision=precision, steps=7,
                             lr=0.01).validated()
    assert (chosen.steps, chosen.lr) == (7, 0.01)


def test_auto_precision_picks_the_steps_of_the_precision_it_will_run_in(monkeypatch):
    """On an AMX CPU (or CUDA) "auto" steps in bf16, where 100 steps did not hold the eval: 150 there."""
    from imagination import loop

    for amx, steps in ((True, 150), (False, 100)):
        monkeypatch.setattr(loop, "cpu_has_bf16_matrix_units", lambda: amx)
        assert ImagineSettings(prompts=["snow"], device="cpu").validated().steps == steps


def test_a_default_cli_run_counts_the_steps_it_will_take(monkeypatch, tmp_path, capsys):
    """No --steps: the bar and the PNG show the resolved count, not a fixed 150."""
    from imagination import pipeline
    from imagination.cli import main
    from imagination.io import read_metadata

    monkeypatch.setitem(pipeline.KIND_DEFAULTS, ("vqgan", "clip", "fp32"), dict(steps=3, lr=0.3))
    out = tmp_path / "a.png"
    assert main(["imagine", "snow", "--size", "32", "--cutn", "2", "--precision", "fp32", "--out", str(out)]) == 0
    assert read_metadata(out)["steps"] == 3 and "3/3" in capsys.readouterr().err


def _nan_from_call(monkeypatch, first_bad: int):
    """Make the objective's loss NaN from its `first_bad`-th call on (counting after construction)."""
    from imagination.objectives import Objective

    original, calls = Objective.__call__, []

    def call(self, images, cutouts):
        loss, report = original(self, images, cutouts)
        calls.append(1)
        return (loss * float("nan") if len(calls) >= first_bad else loss), report

    return lambda: monkeypatch.setattr(Objective, "__call__", call)


def test_a_non_finite_loss_ends_the_run_keeping_the_last_good_image(monkeypatch):
    arm = _nan_from_call(monkeypatch, first_bad=4)
    run = Run(ImagineSettings(prompts=["sea"], models=["clip"], canvas="pixels", steps=10, **FAST))
    arm()
    events = list(run)
    assert [e.step for e in events[:-1]] == [1, 2, 3] and events[-1].diverged and events[-1].stopped
    assert torch.isfinite(run.result.images).all() and run.result.images.std() > 0.01  # not black, not NaN
    meta = run.result.metadata[0]
    assert meta["diverged"] and meta["steps_done"] == 3


def test_the_cli_says_so_and_keeps_the_image(monkeypatch, tmp_path, capsys):
    from imagination.cli import main
    from imagination.io import load_image

    monkeypatch.setattr("imagination.pipeline.check_fits", lambda *a, **k: None)  # count only the loop's calls
    _nan_from_call(monkeypatch, first_bad=3)()
    out = tmp_path / "a.png"
    assert main(["imagine", "sea", "--canvas", "pixels", "--size", "32", "--cutn", "2", "--steps", "5",
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: the loss became NaN or infinite at step 3: stopped, the image of step 2 is kept")
    assert torch.isfinite(load_image(out)).all() and load_image(out).std() > 0.01
