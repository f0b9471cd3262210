"""python -m training [vqgan clip brivl judge | all] --device cuda --out checkpoints

Renders the training scenes once (all CPU cores), then trains the requested models — in parallel
processes sharing one GPU with --parallel — and writes them in their real formats under --out,
plus training_report.json with the settings, times and held-out figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import multiprocessing as mp
import time
from pathlib import Path

import torch

from training.common import log
from training.data import EVAL_SEED_BASE, POEM_FRACTION, render_scenes
from training.pairs import render_pairs

PAIR_SEED_BASE = 5_000_000  # counterfactual pairs: apart from training (0..) and held-out seeds

FOLDERS = {"vqgan": "vqgan-demo", "clip": "clip-demo", "brivl": "brivl-demo", "judge": "judge"}


def _trainer(name):
    if name == "vqgan":
        from training.train_vqgan import train_vqgan as fn
    elif name == "clip":
        from training.train_clip import train_clip as fn
    elif name == "brivl":
        from training.train_brivl import train_brivl as fn
    else:
        from training.train_judge import train_judge as fn
    return fn


def _run(name, train, held_out, out, device, scale, seconds, results, overrides=None, threads=None):
    if threads:  # parallel trainers on a CPU share its cores instead of oversubscribing them
        torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    start = time.time()
    fn = _trainer(name)
    defaults = fn.__defaults__  # (steps, batch, lr, seed, seconds)
    steps = max(10, int(defaults[0] * scale))
    report = fn(train, held_out, Path(out) / FOLDERS[name], torch.device(device), steps=steps, seconds=seconds,
                **(overrides or {}))
    report["seconds"] = round(time.time() - start, 1)
    report["device"] = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
    results[name] = report
    log(f"{name} done in {report['seconds']} s: {report}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument("models", nargs="*", default=["all"], choices=["all", *FOLDERS])
    parser.add_argument("--device", default="cuda", help="cuda or cpu (never probed here: CUDA must first start in the trainer processes)")
    parser.add_argument("--out", default="checkpoints")
    parser.add_argument("--scenes", type=int, default=60000, help="training scenes rendered once")
    parser.add_argument("--held-out", type=int, default=500)
    parser.add_argument("--steps-scale", type=float, default=1.0, help="multiply every trainer's steps")
    parser.add_argument("--seconds", type=float, default=None, help="wall-clock budget per model")
    parser.add_argument("--resume", action="store_true", help="continue training clip/brivl from --out")
    parser.add_argument("--lr", type=float, help="override the trainers' learning rate")
    parser.add_argument("--batch", type=int, help="override the trainers' batch size")
    parser.add_argument("--parallel", action="store_true", help="one process per model on the same device")
    parser.add_argument("--pairs", type=int, default=0, help="counterfactual scene pairs rendered for clip/brivl")
    parser.add_argument("--pair-count", type=int, default=0, help="counterfactual pairs in each clip/brivl batch")
    parser.add_argument("--min-scale", type=float, help="smallest crop side (fraction) for clip/brivl")
    args = parser.parse_args(argv)
    names = list(FOLDERS) if "all" in args.models else args.models
    start = time.time()
    train = render_scenes(args.scenes, 0, poem_fraction=POEM_FRACTION)
    held_out = render_scenes(args.held_out, EVAL_SEED_BASE)
    pairs = render_pairs(args.pairs, PAIR_SEED_BASE) if args.pairs else None
    log(f"rendered {len(train)} + {len(held_out)} scenes and {args.pairs} pairs in {time.time() - start:.1f} s")
    overrides = {k: v for k, v in (("lr", args.lr), ("batch", args.batch)) if v is not None}
    if args.resume:
        overrides["resume"] = True
    text_image = {k: v for k, v in (("pairs", pairs), ("pair_count", args.pair_count), ("min_scale", args.min_scale))
                  if v is not None}

    def overrides_for(name):  # pairs and crops only concern the text-image models
        return {**overrides, **(text_image if name in ("clip", "brivl") else {})}

    manager = mp.get_context("fork").Manager() if args.parallel else None
    results = manager.dict() if manager else {}
    if args.parallel:
        ctx = mp.get_context("fork")
        threads = max(1, mp.cpu_count() // len(names)) if args.device == "cpu" else None
        procs = [ctx.Process(target=_run, args=(n, train, held_out, args.out, args.device, args.steps_scale, args.seconds, results,
                                                overrides_for(n), threads))
                 for n in names]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    else:
        for n in names:
            _run(n, train, held_out, args.out, args.device, args.steps_scale, args.seconds, results, overrides_for(n))
    report = {"command": "python -m training " + " ".join(sys.argv[1:] if argv is None else argv), "scenes": args.scenes,
              "held_out": args.held_out, "total_seconds": round(time.time() - start, 1), "models": dict(results)}
    path = Path(args.out) / "training_report.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    previous.update({n: report["models"].get(n) for n in names if n in report["models"]})
    previous["_last_run"] = {k: v for k, v in report.items() if k != "models"}
    path.write_text(json.dumps(previous, indent=2, ensure_ascii=False))
    return 0 if all(n in results for n in names) else 1


if __name__ == "__main__":
    raise SystemExit(main())
