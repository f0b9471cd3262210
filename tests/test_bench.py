"""Smoke tests of the speed benchmark (bench/): the harness runs end to end on tiny random models,
both loops it compares really optimise, and its results carry the fields the report relies on.

The speed figures of a tiny run mean nothing; only the shape of the results is checked. The real
benchmark is `python -m bench` (see bench/RESULTS.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import models
from bench.__main__ import main
from bench.cases import all_cases
from bench.common import LR, PROMPT, Config, Scorer, make_canvas, ours_state, ours_step, reference_state, render
from bench.harness import Variant, measure
from imagination.pipeline import ImagineSettings

ROOT = Path(__file__).resolve().parents[1]


def _tiny(tmp_path, *only: str, extra: tuple[str, ...] = ()) -> tuple[int, dict]:
    out = tmp_path / "results.json"
    status = main(["--tiny", "--in-process", "--json", str(out), *extra,
                   *[a for name in only for a in ("--only", name)]])
    return status, json.loads(out.read_text())


def _check_shape(data: dict) -> dict:
    for case in data["cases"]:
        assert case["error"] is None, (case["name"], case["error"])
        if case["skipped"]:
            assert case["name"].startswith("spi-")  # the demo models are not trained yet
            continue
        for v in case["variants"]:
            assert v["it_s"] > 0 and len(v["it_s_reps"]) >= 1, (case["name"], v)
            assert v["peak_mib"] > 0 and v["step_mib"] is not None, (case["name"], v)
        for r in case["ratios"]:
            assert {"name", "median", "low", "high", "target", "met"} <= set(r), r
            assert r["low"] <= r["median"] <= r["high"]
    return {c["name"]: c for c in data["cases"]}


def test_a_tiny_run_reports_speeds_memory_ratios_and_targets(tmp_path):
    status, data = _tiny(tmp_path, "loop-vqgan", "brivl-pool")
    cases = _check_shape(data)
    assert status == 0 and set(cases) == {"loop-vqgan-32", "brivl-pool"}
    loop = cases["loop-vqgan-32"]
    assert [v["name"] for v in loop["variants"]] == ["reference-fp32", "reference-bf16", "ours", "ours-fp32",
                                                      "ours-bf16"]
    assert all(v["similarity"] is not None for v in loop["variants"])
    # the default against the notebooks' fp32, and each precision against itself
    assert [r["name"] for r in loop["ratios"]] == ["ours / reference-fp32", "ours-bf16 / reference-bf16",
                                                   "ours-fp32 / reference-fp32"]
    assert {r["name"]: r["target"] for r in cases["brivl-pool"]["ratios"]} == {"batched / per-image": 3.0}
    assert [c["passed"] for c in cases["brivl-pool"]["checks"]] == [True]  # batched pooling = the official loop
    assert data["machine"]["torch"] == torch.__version__ and data["config"]["tiny"] is True


@pytest.mark.slow
def test_every_default_case_runs_on_tiny_models(tmp_path):
    """Every default case in one process (15-60 s on 2 cores, depending on load)."""
    status, data = _tiny(tmp_path)
    cases = _check_shape(data)
    assert status == 0, [(c["name"], c["checks"]) for c in data["cases"]]
    assert {"loop-vqgan-32", "loop-pixels-32", "poem", "brivl-pool", "brivl-tower", "lever-cutouts-32",
            "lever-bf16", "lever-channels-last", "lever-overheads", "check"} <= set(cases)
    assert "lever-compile" not in cases  # opt-in on CPU
    assert {r["name"] for r in cases["poem"]["ratios"]} == {"one-batch / separate-runs"}


@pytest.mark.parametrize("canvas", ["pixels", "vqgan"])
def test_the_reference_loop_and_ours_both_raise_the_similarity(canvas):
    torch.manual_seed(0)  # the reference draws its cutouts from the global RNG, as the notebooks do
    encoder, vqgan = models.clip("tiny"), models.vqgan("tiny")
    new = lambda: make_canvas(canvas, 1, 32, vqgan=vqgan)  # noqa: E731
    scorer = Scorer(encoder, [PROMPT])
    start = scorer(render(new()))
    reference = reference_state(encoder, new(), PROMPT, cutn=4, lr=LR[canvas],
                                vqgan=vqgan if canvas == "vqgan" else None)
    ours = ours_state(encoder, new(), [PROMPT], cutn=4, lr=LR[canvas])
    ref_losses, our_losses = [], []
    for _ in range(40):
        ref_losses.append(reference.step().item())
        ours_step(ours)
        our_losses.append(ours.last.loss.item())
    first, last = slice(0, 5), slice(-5, None)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    assert mean(ref_losses[last]) < mean(ref_losses[first])
    assert mean(our_losses[last]) < mean(our_losses[first])
    assert scorer(reference.image()) > start + 0.05
    assert scorer(render(ours.canvas)) > start + 0.05


def test_measure_alternates_variants_and_pairs_the_ratios():
    calls = []
    variants = [Variant("a", lambda: "a", calls.append), Variant("b", lambda: "b", calls.append)]
    results, ratios = measure(variants, device=torch.device("cpu"), reps=2, steps=2, warmup=1,
                              ratios=[("a", "b", 2.0)], log=lambda *a: None)
    assert calls == ["a", "b"] + ["a", "a", "b", "b"] + ["b", "b", "a", "a"]  # warm-up, then A B, B A
    assert [len(r.it_s_reps) for r in results] == [2, 2]
    assert ratios[0].name == "a / b" and ratios[0].target == 2.0


def test_only_selects_by_prefix_and_glob_and_list_names_every_case(capsys):
    from bench.__main__ import _selected

    specs = all_cases(Config(tiny=True).resolved())
    assert [s.name for s in _selected(specs, ["loop"], [])] == ["loop-vqgan-32", "loop-pixels-32"]
    assert [s.name for s in _selected(specs, ["*-pool,poem"], [])] == ["poem", "brivl-pool"]
    assert "lever-compile" in [s.name for s in _selected(specs, ["lever-compile"], [])]
    assert main(["--tiny", "--list"]) == 0
    assert "lever-compile" in capsys.readouterr().out


def test_a_case_that_raises_is_reported_not_fatal(monkeypatch, capsys):
    import bench.cases

    def broken(cfg):
        raise RuntimeError("boom")

    monkeypatch.setattr(bench.cases, "brivl_pool_case", broken)
    assert main(["--tiny", "--in-process", "--only", "brivl-pool"]) == 1
    assert "ERROR: RuntimeError: boom" in capsys.readouterr().out


@pytest.mark.slow
def test_the_quick_run_of_a_loop_case_with_real_size_models_in_a_subprocess(tmp_path):
    """CLIP ViT-B/32 + VQGAN f16: a couple of minutes on 2 CPU cores."""
    out = tmp_path / "quick.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "loop-vqgan", "--json", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (case,) = json.loads(out.read_text())["cases"]
    assert case["settings"]["encoder"] == "clip-vit-b32-random" and case["process_maxrss_mib"] > 500
    assert {r["name"] for r in case["ratios"]} >= {"ours / reference-fp32", "ours-bf16 / reference-bf16"}


def test_seconds_per_image_runs_the_studio_defaults_on_the_demo_models(tiny_checkpoints, tmp_path):
    """tiny_checkpoints stands in for checkpoints/ (tiny random clip-demo, brivl-demo, vqgan-demo)."""
    status, data = _tiny(tmp_path, "spi", extra=("--spi-steps", "1"))
    cases = _check_shape(data)
    assert status == 0 and set(cases) == {"spi-clip-demo", "spi-brivl-demo"}
    for case in cases.values():
        assert case["skipped"] is None
        (v,) = case["variants"]
        assert (case["settings"]["size"], case["settings"]["cutn"]) == (ImagineSettings.size, ImagineSettings.cutn)
        assert v["extra"]["steps"] == 1 and v["extra"]["seconds_per_image_at_150_steps"] > 0


def test_time_to_quality_reads_both_loops_through_the_same_trailing_mean():
    from bench.ttq import SMOOTH, Curve

    rising = [0.005 * i for i in range(150)]
    classic = Curve(seconds=[0.5 * (i + 1) for i in range(150)], scores=rising)
    assert classic.bar() == pytest.approx(sum(rising[-SMOOTH:]) / SMOOTH)
    assert classic.steps_to(classic.bar()) == 150  # the classic loop meets its own bar at its end
    faster = Curve(seconds=[0.25 * (i + 1) for i in range(150)], scores=rising)  # same curve, half the step time
    assert classic.time_to(classic.bar()) / faster.time_to(classic.bar()) == pytest.approx(2.0)
    # A single lucky step of an otherwise lower curve does not count as reaching the bar.
    spiky = Curve(seconds=classic.seconds, scores=[0.5] * 60 + [2.0] + [0.5] * 89)
    assert spiky.steps_to(classic.bar()) == float("inf")
