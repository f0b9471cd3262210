"""Training data from the procedural world: rendered once in parallel, captioned afresh every batch.

Rendering is the expensive part, so a run renders N scenes once (all CPU cores) into a uint8 tensor
kept on the training device; captions are cheap, so each batch draws new ones (new templates,
partial mentions, synonyms, poem lines), which is what teaches weakly-correlated text.
Held-out evaluation uses seeds from EVAL_SEED_BASE on, which training never renders.
"""

from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass

import numpy as np
import torch

from imagination import world
from training.common import batches

EVAL_SEED_BASE = world.HELD_OUT_SEED_BASE  # held-out scenes: never rendered for training
POEM_FRACTION = 0.15  # share of training samples whose scene is drawn for, and captioned by, a poem line


def _render_chunk(args):
    seeds, size, poem = args
    images, labels, scenes = [], [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        if poem is not None:
            scene = world.sample_scene_for(world.POEM_LINES[poem[seed % len(poem)]].elements, rng)
        else:
            scene = world.sample_scene(rng)
        images.append(world.render(scene, size))
        labels.append(scene.labels())
        scenes.append(scene)
    return np.stack(images), labels, scenes


@dataclass
class SceneSet:
    pixels: np.ndarray  # (N, H, W, 3) uint8; numpy so the parent process never runs a torch op
    # before forking trainers (an OpenMP pool created before fork deadlocks the children).
    labels: list[dict]  # per scene: {group: label}
    scenes: list  # world.Scene objects, for captioning
    poem_index: list[int | None]  # the poem line a scene was drawn for, else None

    def __len__(self) -> int:
        return len(self.scenes)

    def tensor(self) -> torch.Tensor:
        """(N, 3, H, W) uint8, made in the process that trains."""
        return torch.from_numpy(self.pixels).permute(0, 3, 1, 2).contiguous()

    def label_tensor(self) -> torch.Tensor:
        """(N, groups) class indices, in world.GROUPS order."""
        groups = list(world.GROUPS)
        return torch.tensor([[world.GROUPS[g].index(l[g]) for g in groups] for l in self.labels])


def seed_chunks(seeds, workers: int) -> list[list[int]]:
    """`seeds` in about 4 chunks per worker, so that uneven chunks still keep every worker busy."""
    seeds = list(seeds)
    size = max(1, len(seeds) // (workers * 4))
    return [seeds[i:i + size] for i in range(0, len(seeds), size)]


def map_in_workers(fn, jobs: list, workers: int) -> list:
    """fn over jobs in forked processes. They run numpy/PIL only: no torch op may run in the parent
    before the fork (an OpenMP pool created before fork deadlocks the children)."""
    with mp.get_context("fork").Pool(workers) as pool:
        return pool.map(fn, jobs)


def default_workers() -> int:
    return max(1, mp.cpu_count() - 1)


def render_scenes(count: int, seed_base: int = 0, size: int = 128, workers: int | None = None,
                  poem_fraction: float = 0.0) -> SceneSet:
    """Render `count` scenes with seeds seed_base.. in parallel; a fraction drawn for poem lines."""
    workers = workers or default_workers()
    poem_count = int(count * poem_fraction)
    jobs = []
    for part in seed_chunks(range(seed_base, seed_base + count), workers):
        plain = [s for s in part if s - seed_base >= poem_count]
        poem = [s for s in part if s - seed_base < poem_count]
        if poem:
            jobs.append((poem, size, list(range(len(world.POEM_LINES)))))
        if plain:
            jobs.append((plain, size, None))
    results = map_in_workers(_render_chunk, jobs, workers)
    images = np.concatenate([r[0] for r in results])
    labels = [l for r in results for l in r[1]]
    scenes = [s for r in results for s in r[2]]
    poem_index = [(s % len(world.POEM_LINES)) if job[2] is not None else None
                  for job in jobs for s in job[0]]
    return SceneSet(images, labels, scenes, poem_index)


def sample_captions(scenes: SceneSet, indices, lang: str, rng: np.random.Generator) -> list[str]:
    """One fresh caption per scene; a poem-drawn scene is captioned by its line half of the time."""
    texts = []
    for i in indices:
        line = scenes.poem_index[i]
        if line is not None and rng.random() < 0.5:
            poem = world.POEM_LINES[line]
            texts.append(poem.zh if lang == "zh" else poem.en)
        else:
            texts.append(world.caption(scenes.scenes[i], lang, rng).text)
    return texts


def random_crops(images: torch.Tensor, out_size: int, generator: torch.Generator,
                 min_scale: float = 0.5, pairs: bool = False) -> torch.Tensor:
    """Random square crops (side min_scale..1 of the image) + flips, resized, as float in [0, 1].

    The encoders meet random cutouts during imagination, so they are trained on crops too.
    pairs: images 2k and 2k+1 get the same crop and flip (counterfactual pairs must differ only
    in their element, never in framing).
    """
    from torchvision.ops import roi_align

    n, _, h, w = images.shape
    dev = images.device
    if pairs:
        n //= 2
    side = (min_scale + (1 - min_scale) * torch.rand(n, generator=generator, device=dev)) * w
    x0 = torch.rand(n, generator=generator, device=dev) * (w - side)
    y0 = torch.rand(n, generator=generator, device=dev) * (h - side)
    flip = torch.rand(n, generator=generator, device=dev) < 0.5
    if pairs:
        side, x0, y0, flip = (t.repeat_interleave(2) for t in (side, x0, y0, flip))
    index = torch.arange(len(images), device=dev, dtype=side.dtype)
    boxes = torch.stack([index, x0, y0, x0 + side, y0 + side], 1)
    crops = roi_align(images.float() / 255, boxes, out_size, spatial_scale=1.0, sampling_ratio=2, aligned=True)
    return torch.where(flip[:, None, None, None], crops.flip(-1), crops)


def caption_batches(train: SceneSet, lang: str, size: int, batch: int, device, seed: int,
                    pairs=None, pair_count: int = 0, min_scale: float = 0.5):
    """Endless (pixels in [0, 1], captions) for contrastive training of a text-image model.

    Each batch is `batch - 2 * pair_count` random training scenes, freshly captioned and cropped,
    then `pair_count` counterfactual pairs (training.pairs) that share their crop.
    """
    from training.pairs import pair_captions

    images = train.tensor().to(device)
    rng, generator = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    crop_generator = torch.Generator(device).manual_seed(seed)
    pair_batches = None
    if pair_count:
        pair_images = torch.from_numpy(pairs.pixels).permute(0, 3, 1, 2).contiguous().to(device)
        pair_batches = batches(len(pairs), pair_count, generator)
    for index in batches(len(train), batch - 2 * pair_count, generator):
        pixels = random_crops(images[index.to(device)], size, crop_generator, min_scale)
        texts = sample_captions(train, index.tolist(), lang, rng)
        if pair_batches is not None:
            chosen = next(pair_batches)
            rows = torch.stack([2 * chosen, 2 * chosen + 1], 1).flatten()
            pair_pixels = random_crops(pair_images[rows.to(device)], size, crop_generator, min_scale, pairs=True)
            pixels = torch.cat([pixels, pair_pixels])
            texts += pair_captions(pairs, chosen.tolist(), lang, rng)
        yield pixels, texts
