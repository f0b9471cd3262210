"""One item rendered where a worker runs: its files as bytes, so the driver writes them and no shared
filesystem is needed. The same function serves the in-process engine and every Ray worker."""

from __future__ import annotations

import os
import socket
import time

import torch

from imagination.batch.jobs import Item
from imagination.errors import UserError
from imagination.io import png_bytes, to_pil
from imagination.objectives import parse_prompt


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def set_threads(threads: int | None) -> None:
    """Threads per run: the same count gives byte-identical images whichever engine runs them."""
    if threads:
        torch.set_num_threads(threads)


def render(item: Item, device: str = "auto") -> dict:
    """-> {"status": "done", "files": {name: bytes}, "similarity", "seconds", "worker"}, or
    {"status": "failed", "error": one line} for a user's mistake (the job goes on). Anything else
    raises, so the engine can retry it."""
    from dataclasses import replace

    from imagination.pipeline import Run

    start = time.perf_counter()
    try:
        run = Run(replace(item.settings, device=device))
        for _ in run:
            pass
    except UserError as error:
        return {"status": "failed", "error": str(error), "worker": worker_name(),
                "seconds": round(time.perf_counter() - start, 2)}
    result = run.result
    names = [name for name in item.files if name.endswith(".png") and not name.endswith("-sheet.png")]
    files = {}
    for name, image, meta in zip(names, result.images, result.metadata):
        files[name] = png_bytes(image, dict(meta, batch_item=item.key, batch_name=item.name))
    if item.kind == "poem":
        files.update(_sequence(item, result.images))
    own = [parse_prompt(prompt)[0].text for prompt in item.settings.prompts]  # each image's own (first) text
    similarity = {model: [round(rows[b].get(text, float("nan")), 4) for b, text in enumerate(own)]
                  for model, rows in result.similarity.items()}
    return {"status": "done", "files": files, "similarity": similarity, "steps": result.steps,
            "seconds": round(time.perf_counter() - start, 2), "worker": worker_name()}


def _sequence(item: Item, images: torch.Tensor) -> dict[str, bytes]:
    """A poem's GIF, captioned contact sheet and (where ffmpeg works) MP4, as the studio's Poem tab makes them."""
    import tempfile
    from pathlib import Path

    from imagination import media

    with tempfile.TemporaryDirectory() as folder:
        paths = media.save_sequence([to_pil(image) for image in images], item.captions, Path(folder) / item.stem)
        return {path.name: path.read_bytes() for path in paths}
