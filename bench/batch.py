"""python -m bench.batch — batch-job throughput: in-process vs Ray, 1 vs 2 workers, one run side by side.

The same job (the eval's first `--items` prompts, demo models, the studio's defaults unless `--steps`
or `--size` say otherwise) is rendered three ways into fresh folders:
- in-process, all cores to the one run;
- Ray, 1 worker with all cores (the Ray path's overhead at equal footing);
- Ray, `--workers` workers splitting the cores (what more workers give on the same machine).
Reported: wall seconds (Ray's start-up included, and the same without it), items/s, and ratios.
Figures in bench/RESULTS.md with the command that made them.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from imagination import world
from imagination.batch import run_job
from imagination.batch.engines import InProcess
from imagination.batch.jobs import expand


def job(count: int, **settings) -> list:
    prompts = [prompt.en for prompt in world.EVAL_PROMPTS[:count]]
    return [item for prompt in prompts for item in expand({"prompt": prompt, **settings})]


def timed(label: str, items: list, make_engine) -> dict:
    start = time.perf_counter()
    engine = make_engine()
    ready = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as out:
            records = run_job(items, out, engine)
    finally:
        engine.close()
    end = time.perf_counter()
    assert all(r["status"] == "done" for r in records), records
    row = {"engine": label, "seconds": round(end - start, 1), "start_up": round(ready - start, 1),
           "items_per_s": round(len(items) / (end - start), 4)}
    print(json.dumps(row), flush=True)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, help="default: the studio's")
    parser.add_argument("--size", type=int, help="default: the studio's")
    args = parser.parse_args(argv)
    from imagination.batch.engines import RayEngine

    settings = {k: v for k, v in (("steps", args.steps), ("size", args.size)) if v}
    items = job(args.items, **settings)
    cores = os.cpu_count() or 1
    rows = [timed(f"in-process, {cores} threads", items, lambda: InProcess(threads=cores)),
            timed(f"ray, 1 worker x {cores} threads", items, lambda: RayEngine(1, cores))]
    import ray

    ray.shutdown()
    split = max(1, cores // args.workers)
    rows.append(timed(f"ray, {args.workers} workers x {split} threads", items,
                      lambda: RayEngine(args.workers, split)))
    local, one, many = rows
    print(f"\n{len(items)} items, {cores} cores, settings {settings or 'the studio defaults'}")
    print(f"Ray path overhead on 1 worker (equal threads): {one['seconds'] / local['seconds'] - 1:+.1%} of wall time "
          f"({(one['seconds'] - one['start_up']) / local['seconds'] - 1:+.1%} without Ray's start-up)")
    print(f"{args.workers} workers vs 1 worker on Ray: {many['items_per_s'] / one['items_per_s']:.2f}x items/s")
    print(f"{args.workers} Ray workers vs in-process: {many['items_per_s'] / local['items_per_s']:.2f}x items/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
