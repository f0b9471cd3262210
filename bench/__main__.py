"""python -m bench: the speed benchmark suite (see bench/__init__.py and bench/RESULTS.md).

    python -m bench                         # full run, CPU (about 15 minutes on 2 quiet cores)
    python -m bench --quick                 # 1 repetition, 2 steps, 64 px, 8 cutouts: a smoke run
    python -m bench --only loop-vqgan --only poem --json out.json
    python -m bench --device cuda           # 256 and 512 px, bf16 autocast (the library default on CUDA)
    python -m bench --list                  # the case names

Each case runs in its own subprocess (its lifetime peak RSS is reported; one crash does not stop
the rest) unless --in-process. Exit status 1 when a check FAILs or a case errors.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--quick", action="store_true", help="1 repetition, 2 steps, small sizes: a smoke run")
    p.add_argument("--tiny", action="store_true", help="tiny random models instead of real-size ones (tests)")
    p.add_argument("--only", action="append", default=[], metavar="CASE",
                   help="run only cases matching this name, prefix or glob (repeatable, or comma-separated)")
    p.add_argument("--skip", action="append", default=[], metavar="CASE", help="leave these cases out")
    p.add_argument("--json", metavar="PATH", help="write machine-readable results here")
    p.add_argument("--reps", type=int, help="alternating repetitions per case (default 3 CPU, 5 CUDA, 1 quick)")
    p.add_argument("--steps", type=int, help="timed steps per repetition (default 1 CPU, 10 CUDA, 2 quick)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per variant before timing (default 1)")
    p.add_argument("--sizes", help="image sides for the loop/cutout cases, e.g. 128,256 (default 128,256 "
                                   "CPU, 256,512 CUDA, 64 quick)")
    p.add_argument("--cutn", type=int, help="cutouts per image (default 32; 8 quick)")
    p.add_argument("--check-steps", type=int, help="steps of the similarity check (default 50)")
    p.add_argument("--spi-steps", type=int, help="steps of the seconds-per-image runs (default 150)")
    p.add_argument("--brivl-batch", type=int, help="cutouts through the BriVL tower (default 4 CPU, 32 CUDA)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's, = cores)")
    p.add_argument("--in-process", action="store_true", help="run the cases in this process (no per-case RSS)")
    p.add_argument("--list", action="store_true", help="print the case names and exit")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    return p


def _config(args):
    from bench.common import Config

    sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else None
    return Config(device=args.device, quick=args.quick, tiny=args.tiny, reps=args.reps, steps=args.steps,
                  warmup=args.warmup, sizes=sizes, cutn=args.cutn, check_steps=args.check_steps,
                  spi_steps=args.spi_steps, brivl_batch=args.brivl_batch,
                  log=lambda *a: print(*a, flush=True)).resolved()


def _selected(specs, only: list[str], skip: list[str]):
    def matches(name: str, patterns: list[str]) -> bool:
        pats = [q.strip() for p in patterns for q in p.split(",") if q.strip()]
        return any(fnmatch.fnmatch(name, p) or name.startswith(p) for p in pats)

    chosen = [s for s in specs if matches(s.name, only)] if only else [s for s in specs if s.default]
    return [s for s in chosen if not matches(s.name, skip)]


def _setup_torch(args) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


def run_case(spec, cfg):
    """Run one case here; never raises: errors become the result's `error`."""
    from bench.harness import CaseResult, process_maxrss_mib

    t0 = time.perf_counter()
    try:
        result = spec.run(cfg)
    except Exception as exc:  # one broken case must not hide the others
        result = CaseResult(spec.name, spec.title, error=f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
    result.name, result.title = spec.name, spec.title
    result.seconds = round(time.perf_counter() - t0, 1)
    result.process_maxrss_mib = round(process_maxrss_mib(), 1)
    return result


def _worker(args) -> int:
    from bench.cases import all_cases

    cfg = _config(args)
    (spec,) = [s for s in all_cases(cfg) if s.name == args.worker]
    result = run_case(spec, cfg)
    with open(args.result, "w") as f:
        json.dump(result.to_json(), f)
    return 0


def _in_subprocess(spec, argv: list[str]):
    from bench.harness import CaseResult

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        out = os.path.join(tmp, "result.json")
        cmd = [sys.executable, "-m", "bench", *argv, "--worker", spec.name, "--result", out]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env)
        if proc.returncode == 0 and os.path.exists(out):
            with open(out) as f:
                return CaseResult.from_json(json.load(f))
        return CaseResult(spec.name, spec.title, seconds=round(time.perf_counter() - t0, 1),
                          error=f"worker exited with status {proc.returncode} (killed for memory if -9)")


def machine_info(device: str) -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(), "platform": platform.platform(), "device": device,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        with open("/proc/cpuinfo") as f:
            cpuinfo = f.read()
        lines = cpuinfo.splitlines()
        info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "")
        flags = next((ln for ln in lines if ln.startswith("flags")), "")
        info["cpu_bf16"] = [f for f in ("avx512_bf16", "amx_bf16", "amx_tile") if f" {f}" in flags]
    except OSError:
        pass
    try:
        info["load_average"] = os.getloadavg()
    except OSError:
        pass
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    for name in ("transformers", "timm", "kornia"):
        try:
            info[name] = __import__(name).__version__
        except Exception:
            pass
    return info


# --- printing -------------------------------------------------------------------------------------------------
def _fmt_ratio(r) -> str:
    text = f"{r.median:.2f}x  (range {r.low:.2f}-{r.high:.2f})"
    if r.target is not None:
        text += f"  target >= {r.target:g}x: {'MET' if r.met else 'NOT MET'}"
    return text


def print_case(result, device: str, out=None) -> None:
    w = lambda s="": print(s, file=out or sys.stdout, flush=True)  # noqa: E731
    w(f"\n== {result.name}: {result.title}  [{result.seconds:.0f} s"
      + (f", process peak RSS {result.process_maxrss_mib:.0f} MiB" if result.process_maxrss_mib else "") + "]")
    if result.skipped:
        w(f"   SKIPPED: {result.skipped}")
        return
    if result.error:
        w(f"   ERROR: {result.error}")
        return
    if result.settings:
        w("   " + ", ".join(f"{k}={v}" for k, v in result.settings.items()))
    mem = "peak CUDA MiB" if device.startswith("cuda") else "peak RSS MiB"
    w(f"   {'variant':24s} {'speed':>22s} {mem:>14s} {'step MiB':>9s} {'similarity':>10s}")
    for v in result.variants:
        speed = f"{v.it_s:.4g} {v.unit}"
        peak = f"{v.peak_mib:.0f}" if v.peak_mib is not None else "-"
        step = f"+{v.step_mib:.0f}" if v.step_mib is not None else "-"
        sim = f"{v.similarity:.4f}" if v.similarity is not None else "-"
        extra = "  " + ", ".join(f"{k}={x}" for k, x in v.extra.items()) if v.extra else ""
        w(f"   {v.name:24s} {speed:>22s} {peak:>14s} {step:>9s} {sim:>10s}{extra}")
    for r in result.ratios:
        w(f"   speed {r.name:32s} {_fmt_ratio(r)}")
    for c in result.checks:
        w(f"   {'PASS' if c.passed else ('FAIL' if c.passed is False else 'N/A ')} {c.detail}")
    for n in result.notes:
        w(f"   note: {n}")


def print_summary(results, out=None) -> None:
    w = lambda s="": print(s, file=out or sys.stdout, flush=True)  # noqa: E731
    w("\n== summary")
    for res in results:
        if res.skipped or res.error:
            w(f"   {res.name:24s} {'SKIPPED' if res.skipped else 'ERROR'}: {res.skipped or res.error}")
            continue
        for r in res.ratios:
            w(f"   {res.name:24s} {r.name:36s} {_fmt_ratio(r)}")
    checks = [(res.name, c) for res in results for c in res.checks]
    for name, c in checks:
        w(f"   {'PASS' if c.passed else ('FAIL' if c.passed is False else 'N/A ')} {name}: {c.name}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    _setup_torch(args)
    if args.worker:
        return _worker(args)
    from bench.cases import all_cases

    cfg = _config(args)
    specs = _selected(all_cases(cfg), args.only, args.skip)
    if args.list:
        for s in all_cases(cfg):
            print(f"{s.name:24s} {s.title}")
        return 0
    if not specs:
        print(f"no case matches {args.only}; see --list", file=sys.stderr)
        return 2
    info = machine_info(args.device)
    print(f"bench: {len(specs)} case(s) on {args.device} ({info.get('gpu') or info.get('cpu', '?')}, "
          f"{info['threads']} threads), reps={cfg.reps} steps={cfg.steps} warmup={cfg.warmup} sizes={cfg.sizes} "
          f"cutn={cfg.cutn}{' [quick]' if cfg.quick else ''}{' [tiny models]' if cfg.tiny else ''}", flush=True)
    worker_argv = [a for a in argv if a != "--in-process"]
    # --json/--only are parent-only options; pass the rest through to the workers.
    cleaned, skip_next = [], False
    for a in worker_argv:
        if skip_next:
            skip_next = False
            continue
        if a in ("--json", "--only", "--skip"):
            skip_next = True
            continue
        if a.startswith(("--json=", "--only=", "--skip=")) or a == "--list":
            continue
        cleaned.append(a)
    results = []
    t0 = time.perf_counter()
    for spec in specs:
        print(f"\n-- {spec.name} ...", flush=True)
        result = run_case(spec, cfg) if args.in_process else _in_subprocess(spec, cleaned)
        if args.in_process:
            result.process_maxrss_mib = None  # the whole bench process, not this case: not meaningful
        results.append(result)
        print_case(result, args.device)
    print_summary(results)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s", flush=True)
    if args.json:
        cfg_dict = {k: v for k, v in asdict(cfg).items() if k != "log"}
        with open(args.json, "w") as f:
            json.dump({"machine": info, "config": cfg_dict, "cases": [r.to_json() for r in results]}, f, indent=1)
        print(f"wrote {args.json}")
    failed = any(c.passed is False for r in results for c in r.checks) or any(r.error for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
