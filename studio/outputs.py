"""The outputs folder: every finished (or stopped) image lands here as a PNG carrying its settings.

It is the only folder the web app serves files from, so `resolve` is the one gate through which a
name coming from a browser becomes a path: anything that is not a PNG directly inside the folder is
refused. Sequences (GIF, MP4, contact sheets) go into its `sequences/` sub-folder.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import torch

from imagination.errors import UserError
from imagination.io import read_metadata, save_png, slug

_counter = itertools.count()


class Outputs:
    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.sequences = self.root / "sequences"
        self.sequences.mkdir(exist_ok=True)

    def new_path(self, hint: str, suffix: str = ".png", folder: Path | None = None) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"{stamp}-{next(_counter) % 10000:04d}-{slug(hint) or 'image'}{suffix}"
        return (folder or self.root) / name

    def save(self, image: torch.Tensor, metadata: dict, hint: str = "") -> Path:
        """One image (3, H, W) in [0, 1] with its settings; returns the new file's path."""
        tag = "-stopped" if metadata.get("stopped") else ""
        name = slug(hint or metadata.get("prompt") or "") or slug(" ".join(metadata.get("models") or [])) or "image"
        return save_png(image, self.new_path(f"{name}{tag}"), metadata)

    def save_result(self, result, hints: list[str] | None = None, extra: dict | None = None) -> list[Path]:
        """All images of a finished `Result`, in order, each with its own metadata."""
        paths = []
        for b, meta in enumerate(result.metadata):
            meta = dict(meta, **(extra or {}))
            paths.append(self.save(result.images[b], meta, (hints or [""] * len(result.metadata))[b]))
        return paths

    def listing(self, limit: int = 100) -> list[Path]:
        """The PNGs of the folder, newest first."""
        files = [p for p in self.root.glob("*.png") if p.is_file()]
        files.sort(key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
        return files[:limit]

    def resolve(self, name: str | Path) -> Path:
        """A file name from a client -> a PNG directly inside the folder, or a UserError."""
        name = str(name or "")
        candidate = (self.root / Path(name).name).resolve()
        if (not name or Path(name).name != name or candidate.parent != self.root
                or candidate.suffix.lower() != ".png" or not candidate.is_file()):
            raise UserError(f"'{name}' is not an image in the outputs folder")
        return candidate

    def metadata(self, name: str | Path) -> dict:
        return read_metadata(self.resolve(name))
