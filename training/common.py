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


def warmup_cosine(step: int, total: int, warmup: int = 200) -> float:
    """Learning-rate factor: linear warm-up, then cosine decay to 5%."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def batches(count: int, batch: int, generator: torch.Generator):
    """Endless random index batches over `count` items (a new permutation each epoch)."""
    while True:
        order = torch.randperm(count, generator=generator)
        for start in range(0, count - batch + 1, batch):
            yield order[start:start + batch]
