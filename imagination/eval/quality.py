"""How good an imagined batch is, judged without the model that made it.

Three figures for a batch of images imagined from `world.EVAL_PROMPTS` (image i from prompt i):
- judge element hit rate: the scene judge reads each prompt's elements off its image;
- recognition: a model ranks, among the 20 prompts, image i's own prompt first (chance 5%); by
  the other model it says whether the picture carries over, by the same model whether the whole
  image (not only the optimised cutouts) reads as the prompt;
- realism: the Fréchet distance between the judge's penultimate features of the imagined images
  and of held-out world scenes (lower is more like the world's pictures). With 20 images it is
  biased upwards; `realism_floor` gives the figure for 20 real held-out scenes as the yardstick.
The judge is never part of any objective, so none of these can be won by fooling it.
"""

from __future__ import annotations

import numpy as np
import torch

from imagination import world
from imagination.eval.judge import SceneJudge
from imagination.models import registry

LANGUAGE = {"clip": "en", "brivl": "zh"}


def prompts(lang: str) -> list[str]:
    return [p.en if lang == "en" else p.zh for p in world.EVAL_PROMPTS]


def judge_hit_rate(judge: SceneJudge, images: torch.Tensor) -> float:
    verdicts = judge.predict(images.to(next(judge.parameters()).device))
    hits = [v[g] == label for v, prompt in zip(verdicts, world.EVAL_PROMPTS) for g, label in prompt.elements.items()]
    return float(np.mean(hits))


def recognition(images: torch.Tensor, model: str, device: str) -> float:
    """Share of images whose own prompt `model` ranks first among the 20 (in its language)."""
    return recognition_of(images, list(range(len(images))), model, device)


@torch.no_grad()
def recognition_of(images: torch.Tensor, indices: list[int], model: str, device: str) -> float:
    """The same for images made from the prompts `indices` (each still ranked among all 20)."""
    encoder = registry.load(model, device)
    scores = encoder.encode_image(images.to(device)) @ encoder.encode_text(prompts(LANGUAGE[model])).T  # (N, 20)
    return (scores.argmax(1).cpu() == torch.tensor(indices)).float().mean().item()


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a (N, D) and b (M, D)."""
    a, b = a.double().cpu(), b.double().cpu()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    values, vectors = torch.linalg.eigh(cov_a)
    root_a = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()  # Tr sqrt(A B)
    return float((mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * cross)


def realism(judge: SceneJudge, images: torch.Tensor, reference_features: torch.Tensor) -> float:
    return frechet_distance(judge.embed(images.to(reference_features.device)), reference_features)


def realism_floor(judge: SceneJudge, reference_features: torch.Tensor, count: int = 20, offset: int = 5000) -> float:
    """The realism figure of `count` real held-out scenes (not among the reference ones)."""
    _, pixels = world.held_out_scenes(count, offset=offset)
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255
    return realism(judge, images, reference_features)


def quality(images: torch.Tensor, model: str, judge: SceneJudge, reference_features: torch.Tensor,
            device: str) -> dict[str, float]:
    """Every figure of one model's imagined batch (20 images, in EVAL_PROMPTS order)."""
    other = "brivl" if model == "clip" else "clip"
    return {
        "judge_element_hit_rate": judge_hit_rate(judge, images),
        f"recognised_by_{other}": recognition(images, other, device),
        "recognised_by_self": recognition(images, model, device),
        "frechet_to_world": realism(judge, images, reference_features),
    }
