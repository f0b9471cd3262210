"""Shared fixtures: a checkpoints folder of tiny random models written in the real formats.

Tests never touch the repository's checkpoints/ unless they say so (test_demo_models.py): the
registry is pointed at a temporary folder through $IMAGINATION_CHECKPOINTS.
"""

from __future__ import annotations

import os
import socket

import pytest
import torch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)  # 2 cores: thread contention costs more than it gains in small tests


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory):
    """A checkpoints root holding clip-demo, brivl-demo, vqgan-demo and a Chinese-CLIP as tiny random models."""
    from imagination.models import registry
    from tests.fixtures_brivl import write_tiny_brivl
    from tests.fixtures_clip import write_tiny_chinese_clip, write_tiny_clip
    from tests.fixtures_vqgan import write_tiny_vqgan

    root = tmp_path_factory.mktemp("checkpoints")
    write_tiny_clip(root / "clip-demo")
    write_tiny_brivl(root / "brivl-demo")
    write_tiny_vqgan(root / "vqgan-demo")
    write_tiny_chinese_clip(root / "chinese-clip-vit-base-patch16")
    previous = os.environ.get("IMAGINATION_CHECKPOINTS")
    os.environ["IMAGINATION_CHECKPOINTS"] = str(root)
    registry._load_cached.cache_clear()
    yield root
    registry._load_cached.cache_clear()
    if previous is None:
        os.environ.pop("IMAGINATION_CHECKPOINTS", None)
    else:
        os.environ["IMAGINATION_CHECKPOINTS"] = previous


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def studio_server(tiny_checkpoints, tmp_path_factory):
    """(url, outputs folder) of the studio launched in-process on a free local port."""
    from studio import build_app, launch

    outputs = tmp_path_factory.mktemp("studio-outputs")
    demo = build_app(outputs, device="cpu")
    _, url, _ = launch(demo, outputs, port=free_port(), prevent_thread_lock=True, quiet=True)
    yield url, outputs
    demo.close()
