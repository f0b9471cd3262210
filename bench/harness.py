"""Timing and memory measurement: variants of one case measured side by side in one process.

Method (see bench/RESULTS.md): every variant is built and warmed up first, then the variants run
in alternating order (A B C, C B A, A B C, ...) for `reps` repetitions of `steps` steps each, so a
change of machine load hits all of them alike. A variant's speed is the median over repetitions
of steps/second; a ratio is the median of the per-repetition ratios (paired, so drift cancels).

Memory: on CUDA, `torch.cuda.max_memory_allocated` over the variant's timed steps (reset before).
On CPU, the peak resident set size (VmRSS) sampled every 2 ms by a thread while the variant's
timed steps run, after `malloc_trim` has handed back what earlier variants freed. Both are given
absolute ("peak", everything alive in the process: models included) and as the increase over the
value just before the steps ("step", the step's own working memory). The case's subprocess also
reports its whole-life `ru_maxrss` (RUSAGE_SELF, in the child).
"""

from __future__ import annotations

import ctypes
import gc
import os
import resource
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

MiB = 2**20


# --- results --------------------------------------------------------------------------------------
@dataclass
class VariantResult:
    name: str
    it_s: float  # median work units (steps, or line-steps) per second
    it_s_reps: list[float]
    unit: str = "it/s"
    peak_mib: float | None = None  # max over repetitions of the peak during timed steps
    step_mib: float | None = None  # max over repetitions of (peak - memory just before the steps)
    build_s: float | None = None  # construction time (not timed as steps)
    warmup_s: float | None = None  # the warm-up steps (compilation, first-call allocations)
    similarity: float | None = None  # mean cosine to the target(s) reached, where the case measures it
    extra: dict = field(default_factory=dict)


@dataclass
class Ratio:
    name: str  # "A / B"
    median: float
    low: float
    high: float
    target: float | None = None

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.median >= self.target


@dataclass
class Check:
    name: str
    passed: bool | None  # None: not applicable (e.g. too few steps to judge)
    detail: str


@dataclass
class CaseResult:
    name: str
    title: str
    variants: list[VariantResult] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    skipped: str | None = None
    error: str | None = None
    seconds: float = 0.0
    process_maxrss_mib: float | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        for r, ratio in zip(data["ratios"], self.ratios):
            r["met"] = ratio.met
        return data

    @classmethod
    def from_json(cls, data: dict) -> "CaseResult":
        data = dict(data)
        data["variants"] = [VariantResult(**v) for v in data.get("variants", [])]
        data["ratios"] = [Ratio(**{k: v for k, v in r.items() if k != "met"}) for r in data.get("ratios", [])]
        data["checks"] = [Check(**c) for c in data.get("checks", [])]
        return cls(**data)


# --- measurement ------------------------------------------------------------------------------------
class Variant:
    """One way of doing a case's work. `step()` does one unit of work (`units` items of `unit`).

    `build` makes the state (called once, timed separately); `step(state)` advances it;
    `similarity(state)` (optional) scores where it got to, after all timed steps.
    """

    def __init__(self, name: str, build: Callable[[], object], step: Callable[[object], None], *,
                 similarity: Callable[[object], float] | None = None, units: float = 1.0, unit: str = "it/s"):
        self.name, self.build, self.step_fn, self.similarity_fn = name, build, step, similarity
        self.units, self.unit = units, unit
        self.state = None


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Samples VmRSS every `interval` s in a thread while the `with` block runs."""

    def __init__(self, interval: float = 0.002):
        self.interval, self.peak, self.before = interval, 0, 0
        self._stop = threading.Event()

    def __enter__(self):
        self.before = self.peak = _rss_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss_bytes())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(variants: list[Variant], *, device: torch.device, reps: int, steps: int, warmup: int = 1,
            ratios: list[tuple[str, str, float | None]] = (), log=print) -> tuple[list[VariantResult], list[Ratio]]:
    """Build, warm up, then time the variants in alternating order; see the module docstring.

    ratios: (numerator variant, denominator variant, target) on speed: numerator's it/s over the
    denominator's, per repetition, median.
    """
    results: dict[str, VariantResult] = {}
    for v in variants:
        gc.collect()
        t0 = time.perf_counter()
        v.state = v.build()
        sync(device)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(warmup):
            v.step_fn(v.state)
        sync(device)
        results[v.name] = VariantResult(v.name, 0.0, [], unit=v.unit, build_s=round(build_s, 3),
                                        warmup_s=round(time.perf_counter() - t0, 3))
        log(f"    built {v.name} in {build_s:.1f} s, warm-up {results[v.name].warmup_s:.1f} s")
    peaks: dict[str, list[float]] = {v.name: [] for v in variants}
    deltas: dict[str, list[float]] = {v.name: [] for v in variants}
    for rep in range(reps):
        order = variants if rep % 2 == 0 else variants[::-1]
        for v in order:
            gc.collect()
            _malloc_trim()
            sync(device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
                before = torch.cuda.memory_allocated(device)
                t0 = time.perf_counter()
                for _ in range(steps):
                    v.step_fn(v.state)
                sync(device)
                elapsed = time.perf_counter() - t0
                peak = torch.cuda.max_memory_allocated(device)
            else:
                with PeakRSS() as probe:
                    t0 = time.perf_counter()
                    for _ in range(steps):
                        v.step_fn(v.state)
                    elapsed = time.perf_counter() - t0
                before, peak = probe.before, probe.peak
            results[v.name].it_s_reps.append(steps * v.units / elapsed)
            peaks[v.name].append(peak / MiB)
            deltas[v.name].append((peak - before) / MiB)
        log("    rep %d: %s" % (rep + 1, ", ".join(f"{v.name} {results[v.name].it_s_reps[-1]:.3g}" for v in variants)))
    for v in variants:
        r = results[v.name]
        r.it_s = statistics.median(r.it_s_reps)
        r.peak_mib = round(max(peaks[v.name]), 1)
        r.step_mib = round(max(deltas[v.name]), 1)
        if v.similarity_fn is not None:
            r.similarity = round(float(v.similarity_fn(v.state)), 4)
    out_ratios = []
    for a, b, target in ratios:
        per_rep = [x / y for x, y in zip(results[a].it_s_reps, results[b].it_s_reps)]
        out_ratios.append(Ratio(f"{a} / {b}", round(statistics.median(per_rep), 3), round(min(per_rep), 3),
                                round(max(per_rep), 3), target))
    return [results[v.name] for v in variants], out_ratios


def process_maxrss_mib() -> float:
    """This process's lifetime peak RSS (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
