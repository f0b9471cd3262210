"""Which seeds are for training and which are held out.

Training renders seeds from 0 upward; evaluation and tests use seeds from HELD_OUT_SEED_BASE on,
far beyond any training run, so a held-out scene is never one a model has seen.
"""

from __future__ import annotations

import numpy as np

from .render import render
from .scene import Scene, sample_scene

HELD_OUT_SEED_BASE = 10_000_000


def held_out_scenes(count: int, size: int = 128, offset: int = 0) -> tuple[list[Scene], np.ndarray]:
    """`count` held-out scenes and their pictures, (N, size, size, 3) uint8."""
    scenes = [sample_scene(np.random.default_rng(HELD_OUT_SEED_BASE + offset + i)) for i in range(count)]
    return scenes, np.stack([render(s, size) for s in scenes])
