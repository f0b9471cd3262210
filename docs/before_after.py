"""Makes docs/pixels-before-after.png: the same prompts, seed and model on each canvas, one row each.

    python docs/before_after.py --before /tmp/before      # PNGs of the old Fourier canvas, see README

The first row ("before") is read from PNGs made by an earlier version of the library (the README's
command runs commit cedcf8a's CLI with the same prompts, seed and steps); the other rows are
imagined now, at each canvas's defaults. Captions say what each row is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402

from imagination import media  # noqa: E402
from imagination.io import to_pil  # noqa: E402
from imagination.pipeline import ImagineSettings, Run  # noqa: E402

PROMPTS = ["snowy mountains at night", "a boat on the sea", "mountains with a waterfall and white clouds",
           "a desert at sunset"]
ROWS = [("pixels", "Fourier pixels, now"), ("pyramid", "multi-resolution pixels"), ("plain", "plain noise pixels"),
        ("vqgan", "VQGAN (for comparison)")]


def imagine(canvas: str, model: str, steps: int, seed: int) -> list[Image.Image]:
    run = Run(ImagineSettings(prompts=PROMPTS, models=[model], canvas=canvas, steps=steps, seed=seed,
                              share_init=False))
    for _ in run:
        pass
    return [to_pil(image) for image in run.result.images]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="folder with before-1.png ... before-4.png")
    parser.add_argument("--model", default="clip")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).with_name("pixels-before-after.png")))
    args = parser.parse_args()
    images = [Image.open(Path(args.before) / f"before-{i + 1}.png").convert("RGB") for i in range(len(PROMPTS))]
    captions = [f"before: Fourier · {p}" for p in PROMPTS]
    for canvas, label in ROWS:
        images += imagine(canvas, args.model, args.steps, args.seed)
        captions += [f"{label} · {p}" for p in PROMPTS]
    media.contact_sheet(images, captions, columns=len(PROMPTS), cell=160).save(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
