"""python -m imagination.eval — quality figures of the demo models on held-out world scenes.

1. attribute-consistent retrieval: for 200 held-out scenes, is the top-1 image for each scene's
   caption (among those 200) one that shows every element the caption names?
2. VQGAN reconstruction PSNR on 200 held-out scenes;
3. the scene judge's per-group accuracy on held-out scenes;
4. imagination quality on the 20 fixed prompts, per canvas and model, at the canvas's defaults:
   the judge's element hit rate on the imagined images, recognition by the other model and by the
   model itself (prompt i ranked first among the 20; chance is 5%), and realism (Fréchet distance
   of the judge's features to held-out scenes; see `imagination.eval.quality`).
Held-out scenes use seeds from 10,000,000 on; training never renders those.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from imagination import world
from imagination.errors import UserError
from imagination.eval.judge import load_judge
from imagination.eval.quality import LANGUAGE, prompts, quality, realism_floor
from imagination.models import registry
from imagination.pipeline import CANVASES, ImagineSettings, Run

def held_out_scenes(count: int):
    scenes, pixels = world.held_out_scenes(count)
    return scenes, torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255


def shows(labels: dict, elements: dict) -> bool:
    return all(labels.get(g) == l for g, l in elements.items())


@torch.no_grad()
def retrieval(model: str, lang: str, scenes, images, device) -> float:
    encoder = registry.load(model, device)
    rng = np.random.default_rng(0)
    captions = [world.caption(s, lang, rng) for s in scenes]
    image_embeddings = torch.cat([encoder.encode_image(images[i:i + 50].to(device)) for i in range(0, len(images), 50)])
    text_embeddings = encoder.encode_text([c.text for c in captions])
    top1 = (text_embeddings @ image_embeddings.T).argmax(1).tolist()
    return float(np.mean([shows(scenes[j].labels(), c.elements) for c, j in zip(captions, top1)]))


@torch.no_grad()
def reconstruction_psnr(images, device) -> float:
    vqgan = registry.load("vqgan", device)
    values = []
    for i in range(0, len(images), 25):
        x = images[i:i + 25].to(device)
        mse = (vqgan(x) - x).pow(2).mean((1, 2, 3)).clamp(min=1e-10)
        values.append(-10 * torch.log10(mse))
    return torch.cat(values).mean().item()


def imagine_all(model: str, canvas: str, steps: int | None, cutn: int, device: str, seed: int = 0,
                **overrides) -> tuple[torch.Tensor, int]:
    """The 20 prompts imagined in one batched run (the canvas's defaults otherwise); the images and
    the steps they took."""
    run = Run(ImagineSettings(prompts=prompts(LANGUAGE[model]), models=[model], canvas=canvas, steps=steps,
                              cutn=cutn, seed=seed, share_init=False, device=device, **overrides))
    for _ in run:
        pass
    return run.result.images, run.result.steps


def save_sheet(images: torch.Tensor, path: Path) -> None:
    from torchvision.utils import make_grid

    from imagination.io import to_pil

    path.parent.mkdir(parents=True, exist_ok=True)
    to_pil(make_grid(images, nrow=5, padding=2, pad_value=1.0)).save(path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m imagination.eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--scenes", type=int, default=200)
    parser.add_argument("--steps", type=int, help="imagination steps (default: the canvas's and model's, as the studio)")
    parser.add_argument("--cutn", type=int, default=ImagineSettings.cutn,
                        help="cutouts per image per step (the studio default)")
    parser.add_argument("--canvases", default=",".join(CANVASES), help=f"comma list from {','.join(CANVASES)}")
    parser.add_argument("--skip-imagination", action="store_true")
    parser.add_argument("--only-imagination", action="store_true", help="skip retrieval, PSNR and judge accuracy")
    parser.add_argument("--models", default="clip,brivl", help="whose imaginations to judge")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", default="{}", metavar="JSON",
                        help='ImagineSettings overrides for every run, e.g. \'{"lr": 0.1, "precision": "bf16"}\'')
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--save-images", help="folder for contact sheets of the imagined images")
    return parser


SET_BY_THE_EVAL = ("prompts", "models", "model_prompts", "canvas", "steps", "cutn", "seed", "share_init", "device")


def parse_overrides(text: str) -> dict:
    """--set's JSON, checked before any work: a mistake found after the retrieval and PSNR runs wastes them."""
    try:
        overrides = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"--set is not JSON ({e.msg}): e.g. '{{\"lr\": 0.1}}'") from None
    if not isinstance(overrides, dict):
        raise UserError("--set must be a JSON object of ImagineSettings fields, e.g. '{\"lr\": 0.1}'")
    taken = sorted(set(overrides) & set(SET_BY_THE_EVAL))
    if taken:
        raise UserError(f"--set cannot change {', '.join(taken)}: the eval sets it (use its own option if it has one)")
    unknown = sorted(set(overrides) - set(ImagineSettings.__dataclass_fields__))
    if unknown:
        raise UserError(f"--set: unknown setting {', '.join(unknown)}")
    try:
        ImagineSettings(prompts=["a lake"], **overrides).validated()
    except TypeError:
        raise UserError(f"--set: a value of the wrong type in {text}") from None
    return overrides


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    start, report = time.time(), {}
    try:
        overrides = parse_overrides(args.set)
    except UserError as e:
        parser.error(str(e))
    scenes, images = held_out_scenes(args.scenes)
    judge = load_judge(registry.checkpoints_root() / "judge", args.device)
    if not args.only_imagination:
        report["retrieval_top1_consistent"] = {
            "clip-demo (en)": retrieval("clip", "en", scenes, images, args.device),
            "brivl-demo (zh)": retrieval("brivl", "zh", scenes, images, args.device)}
        report["vqgan_psnr_db"] = reconstruction_psnr(images, args.device)
        predictions = judge.predict(images.to(args.device))
        report["judge_accuracy"] = {g: float(np.mean([p[g] == s.labels()[g] for p, s in zip(predictions, scenes)]))
                                    for g in world.GROUPS}
        print(json.dumps(report, indent=1, ensure_ascii=False), flush=True)
    if not args.skip_imagination:
        reference = judge.embed(images.to(args.device))
        report["realism_floor"] = realism_floor(judge, reference)  # 20 real scenes: the best a batch can do
        report["imagination"] = {}
        for canvas in args.canvases.split(","):
            for model in args.models.split(","):
                began = time.perf_counter()
                batch, steps = imagine_all(model, canvas, args.steps, args.cutn, args.device, args.seed, **overrides)
                figures = quality(batch, model, judge, reference, args.device)
                figures["steps"] = steps
                figures["seconds_per_image"] = (time.perf_counter() - began) / len(batch)  # one batched run
                report["imagination"][f"{canvas}/{model}"] = figures
                if args.save_images:
                    save_sheet(batch, Path(args.save_images) / f"{canvas}-{model}.png")
                print(json.dumps({f"{canvas}/{model}": report["imagination"][f"{canvas}/{model}"]}), flush=True)
    report["seconds"] = round(time.time() - start, 1)
    report["settings"] = {"device": args.device, "steps": args.steps, "cutn": args.cutn, "scenes": args.scenes,
                          "seed": args.seed, "overrides": overrides, "threads": torch.get_num_threads()}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(json.dumps(report, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
