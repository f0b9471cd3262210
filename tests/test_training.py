"""The demo models' training code: counterfactual pairs, paired crops, and the training command.

The studio never imports `training/`, but the shipped weights come from it, so a broken pair
(two images that differ in more than the named element) or a command that writes files the real
loaders reject would silently ruin the next retraining.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from imagination import world
from imagination.models.brivl import load_brivl
from imagination.models.clip import load_clip
from imagination.models.vqgan import build_vqgan, load_vqgan
from training.data import random_crops
from training.pairs import counterfactual, pair_captions, render_pairs
from training.train_vqgan import DDCONFIG, EMBED_DIM, N_EMBED, psnr

REPO = Path(__file__).resolve().parent.parent


def test_a_counterfactual_changes_exactly_one_group_and_stays_a_valid_scene():
    changed = set()
    for seed in range(200):
        rng = np.random.default_rng(seed)
        scene = world.sample_scene(rng)
        made = counterfactual(scene, rng)
        if made is None:
            continue
        variant, group = made
        before, after = scene.labels(), variant.labels()
        assert {g for g in world.GROUPS if before[g] != after[g]} == {group}
        labels = list(after.items())
        assert all(world.compatible(ga, la, gb, lb) for ga, la in labels for gb, lb in labels if ga != gb)
        assert not np.array_equal(world.render(scene), world.render(variant)), (seed, group)
        changed.add(group)
    assert changed == {"boat", "birds", "flowers", "clouds", "tree"}


def test_pair_captions_name_the_changed_element_of_the_original():
    pairs = render_pairs(24, 5_000_000, workers=1)
    texts = pair_captions(pairs, range(len(pairs)), "en", np.random.default_rng(0))
    zh = pair_captions(pairs, range(len(pairs)), "zh", np.random.default_rng(0))
    assert len(texts) == len(zh) == 2 * len(pairs)
    for k, group in enumerate(pairs.focus):
        original = pairs.scenes[2 * k]
        for text in (texts[2 * k], zh[2 * k]):
            assert world.parse_prompt(text).get(group) == getattr(original, group), (group, text)


def test_paired_crops_frame_both_images_of_a_pair_identically():
    same = torch.randint(0, 255, (3, 3, 32, 32), dtype=torch.uint8)
    images = same.repeat_interleave(2, dim=0)  # pairs of identical images
    crops = random_crops(images, 16, torch.Generator().manual_seed(0), min_scale=0.5, pairs=True)
    assert torch.equal(crops[0::2], crops[1::2])
    unpaired = random_crops(images, 16, torch.Generator().manual_seed(0), min_scale=0.5)
    assert not torch.equal(unpaired[0::2], unpaired[1::2])


@pytest.mark.slow
def test_the_training_command_writes_models_the_real_loaders_load(tmp_path):
    command = [sys.executable, "-m", "training", "clip", "brivl", "--device", "cpu", "--scenes", "96",
               "--held-out", "8", "--pairs", "16", "--pair-count", "4", "--batch", "24",
               "--steps-scale", "0.001", "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    clip = load_clip(tmp_path / "clip-demo")
    brivl = load_brivl(tmp_path / "brivl-demo")
    image = torch.rand(1, 3, 128, 128)
    for encoder, text in ((clip, "a boat on a lake"), (brivl, "湖上的小船")):
        assert encoder.encode_image(image).shape[-1] == encoder.encode_text([text]).shape[-1]


@pytest.mark.slow
def test_the_vqgan_trainer_ships_averaged_weights_that_reconstruct_better_than_its_start(tmp_path):
    """The trainer saves a moving average of its weights; an average that lagged at its random start
    (or a save of the wrong module) would reconstruct no better than the untrained model."""
    command = [sys.executable, "-m", "training", "vqgan", "--device", "cpu", "--scenes", "64", "--held-out", "8",
               "--batch", "8", "--lr", "2e-3", "--steps-scale", "0.005", "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    trained = load_vqgan(tmp_path / "vqgan-demo")
    torch.manual_seed(0)  # the trainer's seed: the same random start
    untrained = build_vqgan(DDCONFIG, N_EMBED, EMBED_DIM)
    _, pictures = world.held_out_scenes(8)
    images = torch.from_numpy(pictures).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        before, after = psnr(untrained(images), images).mean(), psnr(trained(images), images).mean()
    # 30 steps: the shipped average gains about 2 dB; an average without its warm-up would still be
    # ~94% the random start (0.998 ** 30) and gain nearly nothing
    assert after > before + 1, (before.item(), after.item())
