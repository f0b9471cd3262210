"""Sequences as files: an animated GIF, an MP4 (where imageio-ffmpeg works) and a contact sheet,
for a poem's images and for a run's preview frames ("watch it form", `Film`).

The contact sheet writes each line under its image, so Chinese lines need a CJK font. The font is
looked for in the pip package `noto-cjk-sans-otc`, then through fontconfig, then at the usual
Debian/Noto/WenQuanYi paths; without one, non-ASCII characters are dropped from the captions
(`CJK_FONT` is None and the studio says so) rather than drawn as empty boxes.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from imagination.errors import UserError

FONT_PATHS = [
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
]


@functools.lru_cache(maxsize=1)
def find_cjk_font() -> Path | None:
    """A font file that has Chinese glyphs, or None."""
    try:
        import noto_cjk_sans_otc  # pip install noto-cjk-sans-otc

        path = Path(str(noto_cjk_sans_otc.FONT_PATH))
        if path.is_file():
            return path
    except ImportError:
        pass
    if shutil.which("fc-match"):
        try:
            found = subprocess.run(["fc-match", "-f", "%{file}", ":lang=zh-cn"], capture_output=True,
                                   text=True, timeout=5).stdout.strip()
            if found and _has_cjk(found):
                return Path(found)
        except (OSError, subprocess.SubprocessError):
            pass
    return next((Path(p) for p in FONT_PATHS if Path(p).is_file() and _has_cjk(p)), None)


def _has_cjk(path: str) -> bool:
    try:
        font = ImageFont.truetype(path, 16)
        return font.getmask("山").getbbox() is not None and font.getlength("山") > 0
    except OSError:
        return False


def _simplified_face(path: Path) -> int:
    """The Simplified Chinese face of a font collection (Noto CJK .ttc: JP, KR, SC, TC, HK)."""
    if path.suffix.lower() != ".ttc":
        return 0
    for index in range(8):
        try:
            if ImageFont.truetype(str(path), 12, index=index).getname()[0].endswith(" SC"):
                return index
        except OSError:
            break
    return 0


def caption_font(size: int) -> tuple[ImageFont.ImageFont, bool]:
    """(font, reads CJK): the CJK font when there is one, else DejaVu/PIL's default (ASCII only)."""
    path = find_cjk_font()
    if path is not None:
        return ImageFont.truetype(str(path), size, index=_simplified_face(path)), True
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size), False
    except OSError:
        return ImageFont.load_default(size), False


def _wrap(text: str, font, width: int, max_lines: int = 3) -> list[str]:
    """Break text into lines no wider than `width` pixels, at spaces, or anywhere for CJK."""
    lines, current = [], ""
    tokens = text.split(" ") if " " in text else list(text)
    joiner = " " if " " in text else ""
    for token in tokens:
        trial = f"{current}{joiner}{token}" if current else token
        if font.getlength(trial) <= width or not current:
            current = trial
        else:
            lines.append(current)
            current = token
    lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1].rstrip() + "…"
    return lines


def contact_sheet(images: list[Image.Image], captions: list[str], columns: int | None = None,
                  cell: int = 256) -> Image.Image:
    """Images in a grid, each with its caption written underneath, on a white sheet."""
    columns = columns or min(len(images), 4)
    rows = -(-len(images) // columns)
    font, cjk = caption_font(max(12, cell // 14))
    line_height = int(font.size * 1.35)
    pad, text_h = cell // 16, line_height * 3 + cell // 32
    sheet = Image.new("RGB", (columns * (cell + pad) + pad, rows * (cell + pad + text_h) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (image, caption) in enumerate(zip(images, captions)):
        x = pad + (i % columns) * (cell + pad)
        y = pad + (i // columns) * (cell + pad + text_h)
        sheet.paste(image.convert("RGB").resize((cell, cell), Image.Resampling.LANCZOS), (x, y))
        if not cjk:
            caption = caption.encode("ascii", "ignore").decode().strip() or f"#{i + 1}"
        for k, line in enumerate(_wrap(caption, font, cell)):
            draw.text((x, y + cell + cell // 32 + k * line_height), line, fill=(40, 40, 40), font=font)
    return sheet


def _frames(images: list[Image.Image], side: int) -> list[Image.Image]:
    return [image.convert("RGB").resize((side, side), Image.Resampling.LANCZOS) for image in images]


def save_gif(images: list[Image.Image], path: Path, seconds: float = 1.2, side: int = 256) -> Path:
    """One frame per image, each held `seconds`, looping."""
    import imageio.v2 as imageio

    side = max(side, images[0].width)
    imageio.mimsave(path, [np.asarray(f) for f in _frames(images, side)], format="GIF",
                    duration=seconds * 1000, loop=0)
    return path


def ffmpeg_works() -> bool:
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
        return True
    except (ImportError, RuntimeError):
        return False


def save_mp4(images: list[Image.Image], path: Path, seconds: float = 1.2, fade: float = 0.5,
             fps: int = 12, side: int = 256) -> Path | None:
    """Each image held `seconds`, cross-fading into the next; None when ffmpeg is not available."""
    if not ffmpeg_works():
        return None
    side = max(side, images[0].width) // 16 * 16
    frames = [np.asarray(f, dtype=np.float32) for f in _frames(images, side)]
    hold, blend = max(1, int(seconds * fps)), int(fade * fps)

    def crossfaded():
        for i, frame in enumerate(frames):
            for _ in range(hold):
                yield frame.astype(np.uint8)
            if i + 1 < len(frames):
                for t in range(1, blend + 1):
                    yield (frame + (frames[i + 1] - frame) * (t / (blend + 1))).round().astype(np.uint8)

    return path if _write_mp4(crossfaded(), path, fps) else None


def _write_mp4(frames, path: Path, fps: int) -> bool:
    """H.264 frames (sides multiples of 16) to `path`; False, and no partial file, when ffmpeg fails."""
    import imageio.v2 as imageio

    try:
        with imageio.get_writer(path, format="FFMPEG", fps=fps, codec="libx264", quality=8,
                                macro_block_size=16, ffmpeg_log_level="error") as writer:
            for frame in frames:
                writer.append_data(frame)
    except (OSError, RuntimeError):
        Path(path).unlink(missing_ok=True)
        return False
    return True



def save_sequence(images: list[Image.Image], captions: list[str], stem: Path) -> list[Path]:
    """A sequence (a poem's lines) as STEM.gif, STEM-sheet.png (captioned) and, where ffmpeg works,
    STEM.mp4: what the studio's Poem tab offers and a batch job writes for a poem item."""
    gif = save_gif(images, stem.with_name(f"{stem.name}.gif"))
    sheet = stem.with_name(f"{stem.name}-sheet.png")
    contact_sheet(images, captions).save(sheet)
    film = save_mp4(images, stem.with_name(f"{stem.name}.mp4"))
    return [gif, sheet] + ([film] if film else [])

VIDEO_SUFFIXES = (".mp4", ".gif")


def film_suffix() -> str:
    """The best film format this machine can write."""
    return ".mp4" if ffmpeg_works() else ".gif"


class Film:
    """The preview frames of a run, kept as it goes, written at the end as an MP4 or a GIF.

    Each frame shows every image of the batch side by side (a poem's lines form one strip). Feed it
    every `Progress` event; it keeps the ones that carry images (preview steps and the end). Past
    `max_frames` it keeps every other frame, so memory stays bounded however long the run.
    """

    def __init__(self, max_frames: int = 240):
        self.frames: list[tuple[int, Image.Image]] = []
        self.max_frames = max_frames

    def add(self, event) -> None:
        if event.images is None:
            return
        from torchvision.utils import make_grid

        from imagination.io import to_pil

        grid = make_grid(event.images, nrow=len(event.images), padding=2, pad_value=1.0)
        if self.frames and self.frames[-1][0] == event.step:  # the final event repeats the last step
            self.frames.pop()
        self.frames.append((event.step, to_pil(grid)))
        if len(self.frames) > self.max_frames:  # thin out, always keeping the newest frame
            self.frames = self.frames[:-1:2] + self.frames[-1:]

    def save(self, path: str | Path, seconds: float = 6.0, hold: float = 1.5) -> Path:
        """Write the frames over about `seconds`, the last one held `hold` s longer; MP4 or GIF by suffix."""
        path = Path(path)
        if not self.frames:
            raise UserError("no frames were recorded: the run ended before its first step")
        zoom = max(1, 256 // self.frames[0][1].height)  # a 128 px image is shown at 256 px
        images = [image.resize((image.width * zoom, image.height * zoom), Image.Resampling.LANCZOS)
                  for _, image in self.frames]
        fps = max(2, min(30, round(len(images) / seconds)))
        if path.suffix.lower() == ".gif":
            import imageio.v2 as imageio

            durations = [1000 / fps] * (len(images) - 1) + [1000 / fps + hold * 1000]
            imageio.mimsave(path, [np.asarray(image) for image in images], format="GIF", duration=durations, loop=0)
            return path
        if not ffmpeg_works():
            raise UserError(f"cannot write {path.name}: ffmpeg is not available here; ask for a .gif instead")
        width, height = (-(-d // 16) * 16 for d in images[0].size)  # x264 wants multiples of 16
        frames = [np.asarray(image.resize((width, height), Image.Resampling.LANCZOS)) for image in images]
        frames += [frames[-1]] * round(hold * fps)
        if not _write_mp4(frames, path, fps):
            raise UserError(f"ffmpeg could not write {path.name}; ask for a .gif instead")
        return path


def check_video_path(path: str | Path) -> Path:
    """A --video path a user gave, checked before the run: its folder must exist and its suffix say
    a format this machine can write."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise UserError(f"video {path} must end in .mp4 or .gif")
    if not path.parent.is_dir():
        raise UserError(f"video folder {path.parent} does not exist")
    if path.suffix.lower() == ".mp4" and not ffmpeg_works():
        raise UserError(f"cannot write {path.name}: ffmpeg is not available here; ask for a .gif instead")
    return path
