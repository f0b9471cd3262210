"""`python -m imagination batch`: a job file (or a list of prompts) in, a folder of images out."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter

from imagination.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("batch", help="render a job file (JSONL/YAML) or a prompt list, in-process or on Ray",
                       description="Render every item of a job file into --out, skipping items already done "
                                   "there (an interrupted job resumes). See README, 'Batch jobs'.")
    p.add_argument("job", nargs="?", help="job file: .jsonl, .yaml/.yml, or .txt (one prompt per line)")
    p.add_argument("--prompts", metavar="FILE.txt", help="one prompt per line (the settings from the flags below)")
    p.add_argument("--out", required=True, help="output folder: images, manifest.jsonl, index.html")
    defaults = p.add_argument_group("defaults for every item (an item's own settings win)")
    defaults.add_argument("--model", action="append", dest="models", help="clip, brivl, ...; repeat for an ensemble")
    defaults.add_argument("--canvas")
    defaults.add_argument("--steps", type=int)
    defaults.add_argument("--size", type=int)
    defaults.add_argument("--seed", type=int)
    defaults.add_argument("--cutn", type=int)
    defaults.add_argument("--lr", type=float)
    defaults.add_argument("--negative")
    defaults.add_argument("--set", default="{}", metavar="JSON", help="any other settings, e.g. '{\"pad\": 8}'")
    engine = p.add_argument_group("engine")
    engine.add_argument("--ray", action="store_true", help="start a local Ray and spread items over --workers")
    engine.add_argument("--ray-address", help="use an existing Ray cluster: auto or ray://HOST:10001")
    engine.add_argument("--workers", type=int, default=2, help="Ray actors (default 2)")
    engine.add_argument("--threads", type=int, help="torch threads per run (default: all cores in-process, "
                                                     "cores / workers on a local Ray); equal counts give "
                                                     "byte-identical images on either engine")
    engine.add_argument("--retries", type=int, default=2, help="times an item is retried after its worker died")
    engine.add_argument("--device", default="auto")
    p.add_argument("--dry-run", action="store_true", help="list the expanded items and their files; run nothing")
    p.add_argument("--verbose", action="store_true", help="a line per finished item: worker, seconds, similarity")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_batch)


def overrides_from(args) -> dict:
    try:
        extra = json.loads(args.set)
    except json.JSONDecodeError as error:
        raise UserError(f"--set is not JSON ({error.msg}): e.g. '{{\"pad\": 8}}'") from None
    if not isinstance(extra, dict):
        raise UserError("--set must be a JSON object of settings")
    flags = {name: getattr(args, name) for name in ("models", "canvas", "steps", "size", "seed", "cutn", "lr",
                                                      "negative")}
    return {**extra, **{k: v for k, v in flags.items() if v is not None}}


def build_engine(args):
    from imagination.batch.engines import InProcess, RayEngine

    if args.workers < 1 or (args.threads is not None and args.threads < 1) or args.retries < 0:
        raise UserError("--workers and --threads must be at least 1, --retries at least 0")
    if not (args.ray or args.ray_address):
        return InProcess(args.threads, args.device)
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise UserError("--ray needs Ray: pip install -r requirements.txt (it pins ray)")
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
    return RayEngine(args.workers, threads, args.ray_address, args.device, args.retries)


def cmd_batch(args) -> int:
    from tqdm import tqdm

    from imagination.batch.jobs import read_job, unique
    from imagination.batch.run import done_keys, run_job

    if bool(args.job) == bool(args.prompts):
        raise UserError("give a job file or --prompts FILE.txt (one of them)")
    items, repeated = unique(read_job(args.job or args.prompts, overrides_from(args)))
    if args.dry_run:
        finished = done_keys(args.out)
        for item in items:
            state = "done   " if item.key in finished else "to do  "
            print(f"{state} line {item.line:<4} {item.kind:<6} {item.key}  {', '.join(item.files)}")
        print(f"{len(items)} items ({repeated} duplicates dropped), {len(finished & {i.key for i in items})} "
              f"already done in {args.out}")
        return 0
    engine = build_engine(args)
    finished = done_keys(args.out)
    bar = tqdm(total=sum(item.key not in finished for item in items), unit="item", disable=args.quiet,
               file=sys.stderr)

    def progress(item, record):
        bar.update(1)
        if args.verbose:
            scores = " ".join(f"{m} {v[0]:.3f}" for m, v in (record.get("similarity") or {}).items())
            bar.write(f"{record.get('worker')}: {record['status']} {item.stem} {record.get('seconds')} s {scores} "
                      f"{record.get('error', '')}".rstrip())

    start = time.perf_counter()
    try:
        records = run_job(items, args.out, engine, progress)
    except KeyboardInterrupt:
        bar.close()
        print(f"interrupted: what finished is in {args.out}/manifest.jsonl; run the same command again to resume",
              file=sys.stderr)
        return 130
    finally:
        engine.close()
    bar.close()
    return summarise(records, time.perf_counter() - start, repeated)


def summarise(records: list[dict], seconds: float, repeated: int) -> int:
    counts = Counter(r["status"] for r in records)
    images = sum(len([f for f in r.get("files", []) if f.endswith(".png") and not f.endswith("-sheet.png")])
                 for r in records if r["status"] == "done")
    print(f"{'done':>8} {'skipped':>8} {'failed':>7} {'seconds':>8} {'images/s':>9}")
    print(f"{counts['done']:>8} {counts['skipped']:>8} {counts['failed']:>7} {seconds:>8.1f} "
          f"{images / seconds if seconds else 0:>9.2f}")
    if repeated:
        print(f"({repeated} duplicate items dropped)")
    for record in records:
        if record["status"] == "failed":
            print(f"failed: line {record['line']}: {record.get('error')}", file=sys.stderr)
    return 0 if not counts["failed"] else 1
