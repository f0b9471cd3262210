"""Freed step memory stays in the process: steps stop re-faulting their buffers' pages (imagination/allocator.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imagination import allocator

REPO = Path(__file__).resolve().parents[1]
GLIBC = sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION") is not None

MEASURE = """
import json, resource
from imagination.pipeline import ImagineSettings, Run

events = iter(Run(ImagineSettings(prompts=["snowy mountains at night"], steps=12, preview_every=1000)))
for _ in range(4):  # warm-up: the first steps fill the heap
    next(events)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    next(events)
print(json.dumps((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 8))
"""


def faults_per_step(**env) -> float:
    done = subprocess.run([sys.executable, "-c", MEASURE], cwd=REPO, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_switch_and_opt_out(monkeypatch):
    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.setenv("IMAGINATION_KEEP_FREED_MEMORY", "0")
    assert allocator.keep_freed_memory() is False
    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.delenv("IMAGINATION_KEEP_FREED_MEMORY")
    assert allocator.keep_freed_memory() is True
    assert allocator.keep_freed_memory() is True  # once per process, then remembered


@pytest.mark.slow
@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_default_steps_stop_faulting_their_memory_back_in():
    """Demo models at the defaults: about 13,000 minor faults a step with glibc's thresholds, a few dozen kept."""
    kept = faults_per_step()
    released = faults_per_step(IMAGINATION_KEEP_FREED_MEMORY="0")
    assert kept < 1000, kept
    assert released > 10 * kept, (released, kept)
