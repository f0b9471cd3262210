"""Shared fixtures: a checkpoints folder of tiny random models written in the real formats.

Tests never touch the repository's checkpoints/ unless they say so (test_demo_models.py): the
registry is pointed at a temporary folder through $IMAGINATION_CHECKPOINTS.
"""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)  # 2 cores: thread contention costs more than it gains in small tests


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory):
    """A checkpoints root holding clip-demo, brivl-demo and vqgan-demo as tiny random models."""
    from imagination.models import registry
    from tests.fixtures_brivl import write_tiny_brivl
    from tests.fixtures_clip import write_tiny_clip
    from tests.fixtures_vqgan import write_tiny_vqgan

    root = tmp_path_factory.mktemp("checkpoints")
    write_tiny_clip(root / "clip-demo")
    write_tiny_brivl(root / "brivl-demo")
    write_tiny_vqgan(root / "vqgan-demo")
    previous = os.environ.get("IMAGINATION_CHECKPOINTS")
    os.environ["IMAGINATION_CHECKPOINTS"] = str(root)
    registry._load_cached.cache_clear()
    yield root
    registry._load_cached.cache_clear()
    if previous is None:
        os.environ.pop("IMAGINATION_CHECKPOINTS", None)
    else:
        os.environ["IMAGINATION_CHECKPOINTS"] = previous
