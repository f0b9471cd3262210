"""The memory guard: a run that would not fit is refused before its first step, and the estimate it uses
is within ±30% of the peak a step really adds (measured in a fresh process, demo models)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError

from imagination import memory
from imagination.cli import main
from imagination.errors import UserError
from imagination.pipeline import ImagineSettings, Run

REPO = Path(__file__).resolve().parents[1]

MEASURE = """
import json, re, sys
from imagination.pipeline import ImagineSettings, Run

def status(key):
    return int(re.search(rf"{key}:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024

run = Run(ImagineSettings(prompts=["snowy mountains at night"], canvas=sys.argv[1], size=int(sys.argv[2]), cutn=16,
                          steps=2))
before = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # restart the peak (VmHWM) from here
for _ in run:
    pass
print(json.dumps({"estimate": run.memory_estimate, "peak": status("VmHWM") - before}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux to reset the peak RSS")
@pytest.mark.parametrize("canvas, size", [("vqgan", 128), ("vqgan", 256), ("vqgan", 384), ("pixels", 384)])
def test_estimate_is_within_30_percent_of_the_measured_peak(canvas, size):
    env = {k: v for k, v in os.environ.items() if k != "IMAGINATION_CHECKPOINTS"}  # the shipped demo models
    done = subprocess.run([sys.executable, "-c", MEASURE, canvas, str(size)], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert 0.7 <= figures["estimate"] / figures["peak"] <= 1.3, figures


@pytest.fixture
def little_free_memory(monkeypatch):
    monkeypatch.setattr(memory, "free_bytes", lambda device: 40 * 2**20)


@pytest.mark.usefixtures("tiny_checkpoints", "little_free_memory")
def test_a_run_that_does_not_fit_is_refused_before_any_step():
    with pytest.raises(UserError, match=r"this run needs about [\d.]+ GB of memory, 0.0 GB is free: lower the size "
                                        r"\(512\), the cutouts \(64\) or the number of images \(2\)"):
        Run(ImagineSettings(prompts=["sea", "sky"], canvas="vqgan", size=512, cutn=64, steps=1))


@pytest.mark.usefixtures("tiny_checkpoints", "little_free_memory")
def test_the_cli_refuses_it_in_one_line(capsys, tmp_path):
    assert main(["imagine", "sea", "--size", "512", "--cutn", "64", "--out", str(tmp_path / "a.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: this run needs about") and len(err.splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_the_studio_refuses_it_per_request(studio_server, little_free_memory):
    from test_studio import imagine_args

    client = Client(studio_server[0], verbose=False)
    with pytest.raises(AppError, match="this run needs about"):
        client.predict(**imagine_args(size=512, cutn=64, canvas="vqgan"), api_name="/imagine")
    client.close()


@pytest.mark.usefixtures("tiny_checkpoints")
def test_estimating_does_not_change_the_run(monkeypatch):
    """The estimate draws cutouts on fake tensors: the run's own random cutouts must stay the same."""
    settings = ImagineSettings(prompts=["sea"], canvas="pixels", size=32, cutn=4, steps=3, seed=5)
    estimated = list(Run(settings))[-1].images
    monkeypatch.setattr("imagination.pipeline.check_fits", lambda *a, **k: None)
    plain = list(Run(settings))[-1].images
    assert torch.equal(estimated, plain)


@pytest.mark.usefixtures("tiny_checkpoints")
def test_the_estimate_grows_with_size_cutouts_and_batch():
    def estimate(**change):
        return Run(ImagineSettings(**{"prompts": ["sea"], "canvas": "vqgan", "size": 64, "cutn": 4, **change}))\
            .memory_estimate

    base = estimate()
    assert estimate(size=128) > 2 * base - memory.FIXED_BYTES
    assert estimate(cutn=32) > base and estimate(prompts=["sea", "sky", "sun"]) > 2 * base - memory.FIXED_BYTES
