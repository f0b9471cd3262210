"""python -m bench.profile_step — where one default step's time goes (torch.profiler).

Runs the studio's default imagination (`imagine "snowy mountains at night"`: demo CLIP, VQGAN
canvas, 128 px, 16 cutouts) for a few warm-up steps, then profiles `--steps` steps with each part of
the step labelled: the canvas (VQGAN decode), the cutouts, the encoder, the loss, backward and the
optimiser. Prints the share of each part and torch's own operator table. Figures in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import functools

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from imagination.pipeline import ImagineSettings, Run

PARTS = ("canvas", "cutouts", "encoder", "loss", "backward", "optimiser")


def _labelled(label: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with record_function(label):
            return fn(*args, **kwargs)
    return wrapper


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_step", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompt", default="snowy mountains at night")
    parser.add_argument("--canvas", default="vqgan")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rows", type=int, default=15)
    args = parser.parse_args(argv)
    run = Run(ImagineSettings(prompts=[args.prompt], canvas=args.canvas, steps=args.steps + 3, preview_every=10**4))
    encoder = next(iter(run.encoders.values()))
    run.canvas.forward = _labelled("canvas", run.canvas.forward)
    cutouts_call = type(run.cutouts).__call__  # a dunder is looked up on the class, so label it there
    type(run.cutouts).__call__ = _labelled("cutouts", cutouts_call)
    encoder.encode_image = _labelled("encoder", encoder.encode_image)
    for target in run.objective.targets:
        target.loss = _labelled("loss", target.loss)
    backward, step = torch.Tensor.backward, torch.optim.Adam.step
    torch.Tensor.backward = _labelled("backward", backward)
    torch.optim.Adam.step = _labelled("optimiser", step)
    events = iter(run)
    for _ in range(3):  # warm-up
        next(events)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            with record_function("step"):
                next(events)
    torch.Tensor.backward, torch.optim.Adam.step, type(run.cutouts).__call__ = backward, step, cutouts_call
    totals = {e.key: e.cpu_time_total for e in prof.key_averages() if e.key in ("step", *PARTS)}
    step_us = totals["step"]
    print(f"one default step ({args.canvas}, {encoder.name}, {run.settings.cutn} cutouts, "
          f"{run.settings.size} px, {torch.get_num_threads()} threads): {step_us / args.steps / 1000:.1f} ms")
    for part in PARTS:
        share = totals.get(part, 0) / step_us
        print(f"  {part:<10} {totals.get(part, 0) / args.steps / 1000:8.1f} ms  {share:6.1%}")
    rest = step_us - sum(totals.get(p, 0) for p in PARTS)
    print(f"  {'other':<10} {rest / args.steps / 1000:8.1f} ms  {rest / step_us:6.1%}  (the loop, Python, events)")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
