"""python -m bench.ttq — seconds to a good image: our loop against the classic one, at equal precision.

What a user waits for is a picture as good as the classic loop's, not iterations per second. For
each of the eval's prompts (`world.EVAL_PROMPTS`, demo models), both loops start from the same
canvas; after every step a fixed scorer (the `check` case's: the whole image plus 16 fixed crops,
no augmentation, cosine to the prompt) reads the image, outside the timed part of the step.

- the bar: the classic loop's score at `--steps` (150) steps, read as the mean of its last
  `SMOOTH` steps (a single step's score jitters with the image's token flips);
- time to quality: wall seconds of optimisation until a loop's score, as a trailing mean over
  `SMOOTH` steps, first reaches the bar. Both loops are read the same way: without the smoothing
  the bar would be one noisy sample that the classic loop itself meets only at its last step while
  any other noisy curve crosses it early, which would flatter whichever loop is not the classic one.
  The figure is the median over prompts, and the ratio is classic / ours (higher: ours is faster);
  a loop that never reaches the bar counts as never;
- so that a faster loop cannot win by making worse pictures, the eval's judge hit rate and
  recognition by the other model are reported for the images each loop ends with.

Ours runs the library as a user does (`Run` at its defaults: steps, schedule, cutouts, transforms);
the classic loop is `bench.reference.ReferenceRun` at 150 steps, 32 cutouts (the notebooks'), constant
lr. Both run at the same `--precision`. Figures in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass, field

import torch

from bench.common import LR, Scorer
from bench.reference import ReferenceRun
from imagination import world
from imagination.eval.judge import load_judge
from imagination.eval.quality import LANGUAGE
from imagination.models import registry
from imagination.pipeline import ImagineSettings, Run

SMOOTH = 10  # steps in the trailing mean that the bar and each loop's score are read as


@dataclass
class Curve:
    """One loop on one prompt: cumulative optimisation seconds and the score after each step."""

    seconds: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    image: torch.Tensor | None = None  # the image it ends with

    def smoothed(self) -> list[float]:
        """The score after each step as the mean of the last SMOOTH steps (fewer at the start)."""
        return [sum(self.scores[max(0, i + 1 - SMOOTH):i + 1]) / min(i + 1, SMOOTH) for i in range(len(self.scores))]

    def bar(self) -> float:
        return self.smoothed()[-1]

    def steps_to(self, bar: float) -> float:
        """Steps until the smoothed score first reaches `bar` (inf when it never does)."""
        return next((i + 1 for i, s in enumerate(self.smoothed()) if s >= bar), float("inf"))

    def time_to(self, bar: float) -> float:
        step = self.steps_to(bar)
        return self.seconds[step - 1] if step != float("inf") else float("inf")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def ours(settings: ImagineSettings, scorer: Scorer) -> tuple[Curve, Run]:
    """Our loop as a user runs it; the image after each step is scored outside the timing."""
    run = Run(settings)
    curve, events, total = Curve(), iter(run), 0.0
    while True:
        event = None

        def advance():
            nonlocal event
            event = next(events)

        total += _timed(advance)
        if event.done:
            curve.image = event.images[0]
            return curve, run
        with torch.no_grad():
            image = run.canvas()[:1].float()
        curve.seconds.append(total)
        curve.scores.append(scorer(image))


def classic(run: Run, prompt: str, canvas: str, steps: int, precision: str, scorer: Scorer) -> Curve:
    """The classic loop from the same start as `run` (a fresh `Run`, before its first step)."""
    encoder = next(iter(run.encoders.values()))
    (start,) = [p for p in run.canvas.parameters() if p.requires_grad]
    vqgan = run.canvas.vqgan if canvas == "vqgan" else None
    reference = ReferenceRun(encoder, encoder.encode_text([prompt]), z=start[:1], vqgan=vqgan,
                             canvas=None if vqgan else run.canvas, cutn=32, lr=LR[canvas],
                             precision="bf16" if precision == "bf16" else "fp32")
    curve, total = Curve(), 0.0
    for _ in range(steps):
        total += _timed(reference.step)
        image = reference.image().float()
        curve.seconds.append(total)
        curve.scores.append(scorer(image))
    curve.image = image[0].cpu()
    return curve


def _median(values: list[float]) -> float:
    return statistics.median(values)


def judge_figures(images: dict[int, torch.Tensor], model: str, judge) -> dict:
    """Judge hit rate over the prompts' elements, and recognition by the other model (among all 20)."""
    from imagination.eval.quality import recognition_of

    indices = sorted(images)
    batch = torch.stack([images[i] for i in indices])
    verdicts = judge.predict(batch)
    hits = [v[g] == label for v, i in zip(verdicts, indices) for g, label in world.EVAL_PROMPTS[i].elements.items()]
    other = "brivl" if model == "clip" else "clip"
    return {"judge_hit_rate": round(sum(hits) / len(hits), 3),
            f"recognised_by_{other}": round(recognition_of(batch, indices, other, "cpu"), 3)}


def measure(model: str, canvas: str, precision: str, prompts: list[int], steps: int, judge,
            variants: dict[str, dict] | None = None, log=print) -> list[dict]:
    """One figure per variant of ours (name -> ImagineSettings overrides; default: the library's own
    defaults), each against the same classic curves (computed once per prompt)."""
    variants = variants or {"defaults": {}}
    lang = LANGUAGE[model]
    encoder = registry.load(model)
    rows = {name: [] for name in variants}
    finals = {name: {} for name in ["classic", *variants]}
    described = {}
    for i in prompts:
        prompt = world.EVAL_PROMPTS[i].en if lang == "en" else world.EVAL_PROMPTS[i].zh
        scorer = Scorer(encoder, [prompt])
        base = dict(prompts=[prompt], models=[model], canvas=canvas, seed=i, precision=precision, preview_every=10**4)
        old = classic(Run(ImagineSettings(**base)), prompt, canvas, steps, precision, scorer)
        finals["classic"][i] = old.image
        bar = old.bar()
        for name, overrides in variants.items():
            new, run = ours(ImagineSettings(**{**base, **overrides}), scorer)
            described[name] = {k: v for k, v in run.describe().items()
                               if k in ("steps", "lr", "schedule", "warmup", "cutn", "until_plateau")}
            rows[name].append(dict(prompt=prompt, bar=round(bar, 4), classic_s=round(old.time_to(bar), 2),
                                   ours_s=round(new.time_to(bar), 2), ours_steps_to_bar=new.steps_to(bar),
                                   ours_steps=len(new.scores), ours_final=round(new.bar(), 4),
                                   classic_steps_to_bar=old.steps_to(bar),
                                   classic_s_per_step=round(old.seconds[-1] / len(old.seconds), 3),
                                   ours_s_per_step=round(new.seconds[-1] / len(new.seconds), 3)))
            finals[name][i] = new.image
            log(json.dumps({"variant": name, **rows[name][-1]}, ensure_ascii=False))
    quality_classic = judge_figures(finals["classic"], model, judge)
    results = []
    for name in variants:
        classic_s, ours_s = _median([r["classic_s"] for r in rows[name]]), _median([r["ours_s"] for r in rows[name]])
        results.append({
            "model": model, "canvas": canvas, "precision": precision, "prompts": len(prompts), "variant": name,
            "ours_settings": described[name], "median_classic_s": classic_s, "median_ours_s": ours_s,
            "ratio": round(classic_s / ours_s, 2) if ours_s > 0 else None,
            "ours_reached_bar": sum(r["ours_s"] != float("inf") for r in rows[name]),
            "median_ours_steps_to_bar": _median([r["ours_steps_to_bar"] for r in rows[name]]),
            "quality_classic": quality_classic, "quality_ours": judge_figures(finals[name], model, judge),
            "rows": rows[name],
        })
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ttq", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="clip,brivl")
    parser.add_argument("--canvases", default="vqgan,pixels", help="vqgan and/or pixels (the classic loop's two)")
    parser.add_argument("--precisions", default="fp32,bf16", help="each run with both loops at it")
    parser.add_argument("--prompts", type=int, default=20, help="the first N of the eval's 20 prompts")
    parser.add_argument("--steps", type=int, default=150, help="the classic loop's steps (its score there is the bar)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=JSON",
                        help="ours with these ImagineSettings overrides (repeat; default: the library defaults)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    if set(args.canvases.split(",")) - set(LR):
        parser.error(f"--canvases: the classic loop runs {' and '.join(LR)} only")
    if args.threads:
        torch.set_num_threads(args.threads)
    judge = load_judge(registry.checkpoints_root() / "judge")
    variants = {name: json.loads(spec) for name, _, spec in (v.partition("=") for v in args.variant)} or None
    results = []
    for precision in args.precisions.split(","):
        for canvas in args.canvases.split(","):
            for model in args.models.split(","):
                for result in measure(model, canvas, precision, list(range(args.prompts)), args.steps, judge,
                                      variants, log=lambda line: print("  " + line, file=sys.stderr, flush=True)):
                    results.append(result)
                    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, ensure_ascii=False),
                          flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
