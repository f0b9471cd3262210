"""Small pieces every trainer uses: the contrastive loss, the schedule, logging."""

from __future__ import annotations

import math
import sys
import time

import torch
import torch.nn.functional as F

START = time.time()


def log(*parts) -> None:
    print(f"[{time.time() - START:7.1f}s]", *parts, file=sys.stderr, flush=True)


def contrastive_loss(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE over the batch (CLIP's loss; BriVL's MoCo loss without the queue)."""
    image, text = F.normalize(image.float(), dim=-1), F.normalize(text.float(), dim=-1)
    logits = image @ text.T * logit_scale  # (N, N)
    target = torch.arange(len(image), device=image.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


class Schedule:
    """Steps with a wall-clock budget: training ends at `steps` or `seconds`, whichever comes first,
    and the learning rate follows warm-up + cosine over that same fraction, so a run cut short by
    the budget still anneals properly."""

    def __init__(self, steps: int, seconds: float | None = None, warmup: int = 200):
        self.steps, self.seconds, self.warmup, self.start = steps, seconds, warmup, time.time()

    def fraction(self, step: int) -> float:
        done = step / self.steps
        if self.seconds:
            done = max(done, (time.time() - self.start) / self.seconds)
        return done

    def lr_factor(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, self.fraction(step))))

    def __iter__(self):
        step = 0
        while self.fraction(step) < 1:
            yield step
            step += 1


def batches(count: int, batch: int, generator: torch.Generator):
    """Endless random index batches over `count` items (a new permutation each epoch)."""
    while True:
        order = torch.randperm(count, generator=generator)
        for start in range(0, count - batch + 1, batch):
            yield order[start:start + batch]
