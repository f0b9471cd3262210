"""python -m bench.wall — the default `imagine` as a user runs it: wall seconds from launch to the PNG.

Each variant is the CLI in a fresh process (`python -m imagination imagine PROMPT --out …` plus the
variant's arguments, under the variant's environment); variants alternate, `--reps` times, so a busy
or throttled moment hits them alike. Reported per variant (medians): the wall time, the loop's own
seconds (from the PNG's metadata), start-up and saving (the rest), the process's minor page faults and
peak RSS (`wait4`), and each variant's wall time as a ratio of the first's.

A variant is `NAME=[ENV=VALUE ...] [imagine arguments]`, e.g. `'glibc=IMAGINATION_KEEP_FREED_MEMORY=0'`
or `'steps150=--steps 150'`. Without `--variant`: the defaults, the defaults with glibc's own
allocator thresholds (imagination/allocator.py off), the defaults at before's 150 steps and lr 0.2,
and before (both levers off).
Figures in bench/RESULTS.md with the command that made them.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from imagination.io import read_metadata

DEFAULT_VARIANTS = ("defaults=", "glibc-malloc=IMAGINATION_KEEP_FREED_MEMORY=0",
                    "150-steps=--steps 150 --lr 0.2",
                    "before=IMAGINATION_KEEP_FREED_MEMORY=0 --steps 150 --lr 0.2")


@dataclass
class Variant:
    name: str
    env: dict[str, str]
    args: list[str]
    rows: list[dict] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> "Variant":
        name, _, rest = text.partition("=")
        words = shlex.split(rest)
        is_env = [("=" in w and not w.startswith("-")) for w in words]  # ENV=VALUE, not --flag=value
        return cls(name, dict(w.split("=", 1) for w, e in zip(words, is_env) if e),
                   [w for w, e in zip(words, is_env) if not e])


def run_once(variant: Variant, prompt: str, folder: Path) -> dict:
    out = folder / f"{variant.name}.png"
    command = [sys.executable, "-m", "imagination", "imagine", prompt, "--out", str(out), *variant.args]
    start = time.perf_counter()
    process = subprocess.Popen(command, env={**os.environ, **variant.env}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{variant.name}: exit {process.returncode}: {stderr.strip().splitlines()[-1:]}")
    meta = read_metadata(out)
    return {"wall": wall, "loop": meta["seconds"], "steps": meta["steps_done"], "faults": usage.ru_minflt,
            "rss_mb": usage.ru_maxrss / 1024, "similarity": next(iter(meta["similarity"].values()))[prompt]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.wall", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompt", default="snowy mountains at night")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--variant", action="append", help="NAME=[ENV=VALUE ...] [imagine arguments]")
    args = parser.parse_args(argv)
    variants = [Variant.parse(v) for v in (args.variant or DEFAULT_VARIANTS)]
    with tempfile.TemporaryDirectory() as folder:
        for rep in range(args.reps):
            for variant in variants:
                row = run_once(variant, args.prompt, Path(folder))
                variant.rows.append(row)
                print(f"rep {rep + 1} {variant.name}: {row['wall']:.1f} s", file=sys.stderr, flush=True)
    first = statistics.median(r["wall"] for r in variants[0].rows)
    print(f"`imagine \"{args.prompt}\"`, medians of {args.reps} alternating runs, "
          f"{os.cpu_count()} CPUs\n")
    print("| variant | wall s | loop s | steps | s a step | start-up + save s | page faults | peak RSS MB "
          "| similarity | wall / first's |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for v in variants:
        med = {k: statistics.median(r[k] for r in v.rows) for k in v.rows[0]}
        print(f"| {v.name} | {med['wall']:.1f} | {med['loop']:.1f} | {med['steps']:.0f} | "
              f"{med['loop'] / med['steps']:.3f} | {med['wall'] - med['loop']:.1f} | {med['faults']:,.0f} | "
              f"{med['rss_mb']:.0f} | {med['similarity']:.3f} | {med['wall'] / first:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
