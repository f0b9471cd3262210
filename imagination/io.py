"""Images in and out: tensors <-> PIL, and PNGs that carry the settings that made them.

A PNG written here holds a JSON text chunk "imagination" with every setting of the run, so an image
found later can be re-run or varied (the studio's gallery reads it back). Writes go to a temporary
file that is renamed into place, so a failed or interrupted write never leaves half a PNG.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from imagination.errors import UserError

METADATA_KEY = "imagination"
MAX_SIDE = 4096  # a user's image may have at most MAX_SIDE x MAX_SIDE pixels (64 MB as RGB float)


def to_pil(image: torch.Tensor) -> Image.Image:
    """(3, H, W) in [0, 1] -> RGB PIL image."""
    array = (image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round()
    return Image.fromarray(array.astype(np.uint8))


def to_tensor(image: Image.Image, size: int | None = None) -> torch.Tensor:
    """PIL image -> (3, size, size) in [0, 1] (resized to a square when size is given)."""
    image = image.convert("RGB")
    if size is not None and image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255


@contextmanager
def open_user_image(path: str | Path, label: str | None = None, unreadable: str = "is not a readable image"):
    """A user's image file, opened lazily: its header is checked before any pixel is decoded, so a
    decompression bomb (a small file that claims 60000 x 60000 pixels) costs nothing but a message."""
    path = Path(path)
    label = label or str(path)
    limit = f"at most {MAX_SIDE}×{MAX_SIDE}"
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_SIDE * MAX_SIDE:
                raise UserError(f"{label} is {width}×{height} pixels: {limit}")
            yield image
    except Image.DecompressionBombError:  # PIL refuses to even describe it (over 2 x MAX_IMAGE_PIXELS)
        raise UserError(f"{label} claims over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels: {limit}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise UserError(f"{label} {unreadable} ({error.__class__.__name__})") from None


def load_image(path: str | Path, size: int | None = None) -> torch.Tensor:
    """Read an image file a user named; a clear UserError when it is missing, too large or not an image."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"image not found: {path}")
    with open_user_image(path) as image:
        return to_tensor(image, size)


def check_writable(path: str | Path) -> Path:
    """Fail before a long run, not after it, when the output cannot be written."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UserError(f"output {path} is a folder: give a file name such as {path / 'image.png'}")
    if not folder.is_dir():
        raise UserError(f"output folder {folder} does not exist")
    if path.suffix.lower() != ".png":
        raise UserError(f"output {path} must end in .png (the settings are stored in PNG metadata)")
    try:  # os.access says yes to root even in /proc or /sys: only writing a file there tells
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".imagination-check-", suffix=".png"):
            pass
    except OSError:
        raise UserError(f"output folder {folder} is not writable") from None
    return path


def png_bytes(image: torch.Tensor | Image.Image, metadata: dict | None = None) -> bytes:
    """A PNG with `metadata` as JSON in its "imagination" text chunk, as bytes (a batch worker's result)."""
    pil = image if isinstance(image, Image.Image) else to_pil(image)
    info = PngImagePlugin.PngInfo()
    if metadata is not None:
        info.add_text(METADATA_KEY, json.dumps(metadata, ensure_ascii=False))
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def save_png(image: torch.Tensor | Image.Image, path: str | Path, metadata: dict | None = None) -> Path:
    """Write atomically a PNG with `metadata` as JSON in its "imagination" text chunk."""
    return write_atomically(Path(path), png_bytes(image, metadata))


def write_atomically(path: Path, data: bytes) -> Path:
    """`data` to `path` through a temporary file in the same folder: a reader never sees half a file."""
    handle, temporary = tempfile.mkstemp(suffix=f"{path.suffix}.part", dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def read_metadata(path: str | Path) -> dict:
    """The settings stored by `save_png`, or {} for a PNG made elsewhere."""
    try:
        with Image.open(path) as image:
            raw = image.text.get(METADATA_KEY) if hasattr(image, "text") else None
    except (UnidentifiedImageError, OSError):
        raise UserError(f"{path} is not a readable image") from None
    return json.loads(raw) if raw else {}


def slug(text: str, limit: int = 40) -> str:
    """A short, ASCII-only file-name part of a prompt ('' when the prompt has no ASCII words)."""
    words = re.findall(r"[A-Za-z0-9]+", text.split("|")[0].split(":")[0])
    return "-".join(words).lower()[:limit].strip("-")
