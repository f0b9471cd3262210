"""The demo models shipped in checkpoints/: they load through the real loaders and know the world.

These use the repository's own checkpoints (not the tiny fixtures), so they guard what a fresh
clone runs on. Held-out scenes use seeds training never rendered.
"""

import os

import numpy as np
import pytest
import torch

from imagination import world
from imagination.models import registry
from imagination.pipeline import ImagineSettings, Run, score


@pytest.fixture(autouse=True)
def repo_checkpoints(monkeypatch):
    monkeypatch.delenv("IMAGINATION_CHECKPOINTS", raising=False)
    registry._load_cached.cache_clear()
    yield
    registry._load_cached.cache_clear()


def _scenes(count=12):
    from imagination.eval.__main__ import held_out_scenes

    return held_out_scenes(count)


def test_families_resolve_to_the_shipped_demo_models_and_they_load():
    assert [registry.resolve(f).name for f in ("clip", "brivl", "vqgan")] == ["clip-demo", "brivl-demo", "vqgan-demo"]
    clip, brivl, vqgan = (registry.load(f) for f in ("clip", "brivl", "vqgan"))
    assert clip.languages == ("en",) and brivl.languages == ("zh",)
    assert brivl.ignored_keys == ()  # our own file: every key used, none left over
    assert vqgan.n_embed == 512 and vqgan.factor == 8
    total = sum(f.stat().st_size for f in registry.REPO_CHECKPOINTS.rglob("*") if f.is_file())
    assert total < 60 * 2**20, f"demo checkpoints are {total / 2**20:.1f} MB, the budget is 60 MB"


@pytest.mark.parametrize("model, lang", [("clip", "en"), ("brivl", "zh")])
def test_each_model_ranks_a_scenes_caption_above_unrelated_captions(model, lang):
    scenes, images = _scenes()
    rng = np.random.default_rng(1)
    captions = [world.caption(s, lang, rng) for s in scenes]
    sims = torch.tensor(score(images, [c.text for c in captions], model))  # (image, caption)
    wins = [sims[i, i] > sims[i, j]
            for i in range(len(scenes)) for j, c in enumerate(captions)
            if not scenes[i].satisfies(c.elements)]  # caption j names something scene i lacks
    assert len(wins) > 50 and np.mean(wins) >= 0.85, np.mean(wins)


def test_vqgan_reconstructs_held_out_scenes():
    _, images = _scenes(8)
    vqgan = registry.load("vqgan")
    with torch.no_grad():
        mse = (vqgan(images) - images).pow(2).mean((1, 2, 3))
    # the shipped weights score 24.4 dB on these 8 scenes (25.2 on the eval's 200); the earlier,
    # under-trained H100 weights scored 22.4 here and must not come back unnoticed
    assert (-10 * torch.log10(mse)).mean() > 23.5


@pytest.mark.parametrize("canvas", ["vqgan", "pixels"])
@pytest.mark.parametrize("model, prompt", [("clip", "snowy mountains at night"), ("brivl", "有积雪的山脉")])
def test_imagining_raises_the_similarity_to_the_prompt(canvas, model, prompt):
    # At the models' own scale (128 px); at 64 px the 8x8-token VQGAN image gives BriVL too little to move.
    run = Run(ImagineSettings(prompts=[prompt], models=[model], canvas=canvas, steps=20, size=128, cutn=8, seed=1))
    events = list(run)
    before = score(events[0].images, [prompt], model)[0][0]
    after = score(run.result.images, [prompt], model)[0][0]
    assert after > before + 0.1, (before, after)


def test_a_batch_of_three_prompts_pulls_each_image_toward_its_own_prompt():
    # All three images start from the same canvas (share_init). Each must gain more similarity to
    # its own prompt than to the others', and be the batch's best image for its prompt. (Raw row
    # maxima would mislead: "snowy mountains" scores high on most bright images for this small CLIP.)
    # The VQGAN canvas, the studio's default: the grey Fourier-pixel start already reads as "snowy
    # mountains" to this CLIP (0.41), which leaves that prompt little to gain on pixels.
    prompts = ["snowy mountains", "a boat on the sea", "pine trees under the moon"]
    run = Run(ImagineSettings(prompts=prompts, models=["clip"], canvas="vqgan", steps=30, size=128, cutn=8, seed=5))
    events = list(run)
    start = torch.tensor(score(events[0].images[:1], prompts, "clip"))  # (1, prompt): the shared start
    final = torch.tensor(score(run.result.images, prompts, "clip"))  # (image, prompt)
    gain = final - start
    assert (gain.argmax(1) == torch.arange(3)).all(), gain
    assert (final.argmax(0) == torch.arange(3)).all(), final


def test_the_default_command_runs_offline_on_a_fresh_clone(tmp_path):
    from imagination.cli import main
    from imagination.io import read_metadata

    out = tmp_path / "night.png"
    env_before = dict(os.environ)
    assert main(["imagine", "snowy mountains at night", "--steps", "2", "--cutn", "4", "--out", str(out)]) == 0
    meta = read_metadata(out)
    assert meta["models"] == ["clip-demo"] and meta["vqgan"] == "vqgan-demo" and meta["size"] == 128
    assert dict(os.environ) == env_before


def test_a_brivl_neuron_under_a_semantic_constraint_rises_with_its_text():
    from imagination.pipeline import Neuron

    encoder = registry.load("brivl")
    layer = "learnable.imgencoder.backbone.blocks.3"
    assert layer in encoder.neuron_layers()
    run = Run(ImagineSettings(prompts=["有积雪的山脉"], models=["brivl"], neuron=Neuron("brivl", layer, 7, 1.0),
                              canvas="pixels", steps=15, size=64, cutn=8, seed=3))
    events = list(run)
    key = f"brivl-demo/{layer}:7"
    assert events[-2].similarity[key].item() > events[0].similarity[key].item()
    assert events[-2].similarity["brivl-demo"][0, 0] > events[0].similarity["brivl-demo"][0, 0]
