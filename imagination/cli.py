"""`python -m imagination`: imagine, score and models.

Every mistake a user can make ends as one line on stderr and exit status 2, with nothing written;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import time
from pathlib import Path

from imagination.errors import UserError

EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is reported in one line like every other user error."""

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message} (see --help)")


def _slug(text: str) -> str:
    return re.sub(r"[^\w]+", "-", text, flags=re.UNICODE).strip("-")[:40] or "image"


def _output_paths(out: str | None, prompts: list[str], seed: int) -> list[Path]:
    """One path per image: --out for a single prompt, --out with -1, -2 ... for several."""
    from imagination.io import check_writable

    if out is None:
        Path("outputs").mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return [check_writable(Path("outputs") / f"{stamp}-{_slug(p)}-{seed}.png") for p in prompts]
    path = check_writable(out)
    if len(prompts) == 1:
        return [path]
    return [check_writable(path.with_name(f"{path.stem}-{i + 1}{path.suffix}")) for i in range(len(prompts))]


def _parse_model_prompts(items: list[str]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for item in items:
        model, sep, text = item.partition("=")
        if not sep or not model.strip() or not text.strip():
            raise UserError(f"--prompt-for expects MODEL=TEXT, got '{item}'")
        result.setdefault(model.strip(), []).append(text.strip())
    return result


def cmd_imagine(args) -> int:
    from tqdm import tqdm

    from imagination.io import save_png
    from imagination.media import Film, check_video_path
    from imagination.pipeline import ImagineSettings, Run

    settings = ImagineSettings(
        prompts=args.prompt, models=args.model, model_prompts=_parse_model_prompts(args.prompt_for),
        negative=args.negative, canvas=args.canvas, vqgan=args.vqgan, steps=args.steps, size=args.size,
        seed=args.seed, lr=args.lr, schedule=args.schedule, warmup=args.warmup, until_plateau=args.until_plateau,
        cutn_start=args.cutn_start, cutn=args.cutn, cut_pow=args.cut_pow,
        augmentations=tuple(a for a in args.augment.split(",") if a), tv_weight=args.tv_weight,
        pad=args.pad, jitter=args.jitter, scale_min=args.scale_min, scale_max=args.scale_max, rotate=args.rotate,
        mean_weight=args.mean_weight, grey_weight=args.grey_weight, blur=args.blur,
        loss=args.loss, init_image=args.init_image, image_prompts=args.image_prompt,
        share_init=not args.independent_init, device=args.device, precision=args.precision,
        brivl_text_len=args.brivl_text_len,
        **({"preview_every": args.video_every} if args.video else {}),
    )
    video = check_video_path(args.video) if args.video else None
    settings = settings.validated()  # bad settings fail before the output folder is made
    paths = _output_paths(args.out, args.prompt, args.seed)  # a bad path fails now, not after loading the models
    run = Run(settings)  # loads the models; no step runs yet
    film = Film() if video else None
    previous = signal.signal(signal.SIGINT, lambda *_: run.stop())  # Ctrl-C keeps the image so far
    try:
        bar = tqdm(total=run.settings.steps, unit="step", disable=args.quiet, file=sys.stderr)
        for event in run:
            if film is not None:
                film.add(event)
            if not event.done:
                best = max((s.max().item() for s in event.similarity.values()), default=0.0)
                bar.set_postfix(similarity=f"{best:.3f}", loss=f"{event.loss.item():.3f}")
                bar.update(1)
        bar.close()
    finally:
        signal.signal(signal.SIGINT, previous)
    result = run.result
    for image, path, meta in zip(result.images, paths, result.metadata):
        save_png(image, path, meta)
        scores = "  ".join(f"{m}: " + ", ".join(f"{t}={v:.3f}" for t, v in s.items())
                           for m, s in meta["similarity"].items())
        print(f"{path}  {scores}")
    if film is not None:
        print(f"{film.save(video)}  ({len(film.frames)} frames)")
    if result.metadata[0].get("diverged"):
        print(f"error: the loss became NaN or infinite at step {result.steps + 1}: stopped, the image of step "
              f"{result.steps} is kept; lower the weights or the lr", file=sys.stderr)
        return 1
    if result.stopped:
        print(f"stopped after {result.steps} of {run.settings.steps} steps", file=sys.stderr)
    elif result.metadata[0].get("plateaued"):
        print(f"plateaued: done after {result.steps} of {run.settings.steps} steps", file=sys.stderr)
    return 0


BRIVL_TEXT_LEN_HELP = ("BriVL's text length in tokens (default 32, as the official example.py; the README "
                       "explains why config.yml's MAX_TEXT_LEN is not used)")


def cmd_score(args) -> int:
    from imagination.io import load_image
    from imagination.pipeline import score

    image = load_image(args.image)
    similarities = score(image[None], args.text, args.model, device=args.device,
                         max_text_len=args.brivl_text_len)[0]
    if args.json:
        print(json.dumps([{"text": t, "similarity": round(s, 6)} for t, s in zip(args.text, similarities)],
                         ensure_ascii=False))
    else:
        for text, value in zip(args.text, similarities):
            print(f"{value:.4f}  {text}")
    return 0


def cmd_models(args) -> int:
    from imagination.models import registry

    rows = registry.status()
    chosen = {}
    for family in registry.FAMILIES:
        try:
            chosen[family] = registry.resolve(family).name
        except UserError:
            chosen[family] = None
    if args.json:
        print(json.dumps({"models": rows, "families": chosen}, ensure_ascii=False, indent=2))
        return 0
    for row in rows:
        state = "ready  " if row["ready"] else "missing"
        demo = " (demo)" if row["demo"] else ""
        print(f"{state}  {row['name']:<32} {row['kind']:<6} {row['description']}{demo}")
        if not row["ready"]:
            print(f"         put: {'; '.join(row['missing'])}\n         from: {row['source']}")
    print("\nfamilies: " + ", ".join(f"{f} -> {n or 'nothing available'}" for f, n in chosen.items()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from imagination.augment import AUGMENTATIONS
    from imagination.pipeline import CANVASES, SCHEDULES, ImagineSettings, describe_defaults

    parser = _Parser(prog="imagination", description="What image-text models imagine when they read a text.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("imagine", help="optimise an image (or one per prompt) toward a text")
    p.add_argument("prompt", nargs="+", help="text, weighted parts allowed: 'snowy mountains:1|night:-0.5'; "
                                             "several prompts are optimised together, one image each")
    p.add_argument("--model", action="append", help="clip, brivl, chinese-clip or an exact name from "
                   "'imagination models'; repeat for an ensemble (default: brivl for Chinese, else clip)")
    p.add_argument("--prompt-for", action="append", default=[], metavar="MODEL=TEXT",
                   help="a model's own prompt in its language, once per image (ensembles)")
    p.add_argument("--negative", default="", help="what the image should not look like ('a|b:0.5')")
    p.add_argument("--canvas", choices=CANVASES, default="vqgan",
                   help="vqgan tokens, pixels (Fourier), pyramid (multi-resolution pixels) or plain (the paper's "
                        "noise image)")
    p.add_argument("--vqgan", default="vqgan", help="which VQGAN decodes the vqgan canvas")
    p.add_argument("--steps", type=int, help="default: 100 for CLIP alone on the VQGAN canvas in fp32, else 150 (README, Speed)")
    p.add_argument("--size", type=int, default=128, help="image side in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=None, help="Adam step size (default: the canvas's, see README)")
    p.add_argument("--schedule", choices=SCHEDULES, help="the lr over the run (default: the canvas's)")
    p.add_argument("--warmup", type=float, help="share of the steps the lr ramps up over (default: the canvas's)")
    p.add_argument("--until-plateau", action="store_true",
                   help="stop before --steps once the loss stops improving (the step is printed and stored)")
    p.add_argument("--cutn-start", type=int, help="cutouts at the first step, rising to --cutn by mid-run")
    p.add_argument("--cutn", type=int, default=ImagineSettings.cutn, help="random cutouts per image per step")
    p.add_argument("--cut-pow", type=float, default=1.0, help=">1 favours small cutouts, <1 large ones")
    p.add_argument("--augment", default=",".join(AUGMENTATIONS), help=f"comma list from {','.join(AUGMENTATIONS)}")
    defaults = "; ".join(f"{canvas}: {describe_defaults(canvas)}" for canvas in CANVASES)
    g = p.add_argument_group("transforms and priors", "each defaults to the canvas's own value; the canvases' "
                             f"defaults, lr and schedule included: {defaults}")
    g.add_argument("--pad", type=int, help="grey border (px) the image may be moved into before the cutouts")
    g.add_argument("--jitter", type=int, help="random shift (px) of the whole image each step")
    g.add_argument("--scale-min", type=float, help="random scale of the whole image each step, from ...")
    g.add_argument("--scale-max", type=float, help="... to")
    g.add_argument("--rotate", type=float, help="random rotation (degrees, either way) of the whole image each step")
    g.add_argument("--mean-weight", type=float, help="share (0-1) of the loss on the mean embedding of the cutouts")
    g.add_argument("--grey-weight", type=float, help="pull of the pixels towards grey (against saturation)")
    g.add_argument("--tv-weight", type=float, help="total-variation smoothness prior")
    g.add_argument("--blur", type=float, help="px of blur the model sees at the first step, fading out by mid-run")
    p.add_argument("--loss", choices=("spherical", "cosine"), default="spherical")
    p.add_argument("--init-image", help="start from this image instead of noise")
    p.add_argument("--image-prompt", action="append", default=[], help="an image whose embedding is a target")
    p.add_argument("--independent-init", action="store_true", help="each image gets its own starting noise")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    p.add_argument("--brivl-text-len", type=int, metavar="N", help=BRIVL_TEXT_LEN_HELP)
    p.add_argument("--out", help="PNG path (several prompts: PATH-1.png, PATH-2.png ...); default outputs/")
    p.add_argument("--video", help="also write the run's preview frames as a film: PATH.mp4 or PATH.gif")
    p.add_argument("--video-every", type=int, default=2, help="a film frame every N steps (with --video)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_imagine)

    p = sub.add_parser("score", help="cosine similarity of an image to one or more texts")
    p.add_argument("image")
    p.add_argument("text", nargs="+")
    p.add_argument("--model", default="clip")
    p.add_argument("--device", default="cpu")
    p.add_argument("--brivl-text-len", type=int, metavar="N", help=BRIVL_TEXT_LEN_HELP)
    p.add_argument("--json", action="store_true", help='print [{"text": ..., "similarity": ...}]')
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("models", help="every known model, and whether its files are present")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    from imagination.batch.command import add_parser as add_batch_parser

    add_batch_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
