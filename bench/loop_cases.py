"""Cases that time whole imagination loops: ours vs the classic notebook loop, a poem batched vs
run line by line, seconds per image with the demo models, and the similarity check."""

from __future__ import annotations

import contextlib
import time
from typing import Callable

import torch

from bench import levers, models
from bench.common import (LR, MIN_STEPS_TO_JUDGE, POEM, PROMPT, PROMPT_ZH, Config, Scorer, clip_model, make_canvas,
                          ours_images, ours_state, ours_step, reference_state, render, similarity_check, size_for,
                          vqgan_model)
from bench.harness import CaseResult, MiB, PeakRSS, Variant, VariantResult, measure
from bench.reference import ReferenceRun
from imagination.loop import autocast_for


# --- our loop vs the classic loop ---------------------------------------------------------------------------
def loop_case(canvas_kind: str, size: int) -> Callable[[Config], CaseResult]:
    def run(cfg: Config) -> CaseResult:
        device = cfg.torch_device
        encoder = clip_model(cfg)
        vqgan = vqgan_model(cfg) if canvas_kind == "vqgan" else None
        if vqgan is not None:
            size_ = size_for(vqgan, size)
        else:
            size_ = size
        lr = LR[canvas_kind]
        result = CaseResult(f"loop-{canvas_kind}-{size}", "", settings=dict(
            encoder=encoder.name, vqgan=vqgan.name if vqgan else None, size=size_, cutn=cfg.cutn, lr=lr,
            reps=cfg.reps, steps=cfg.steps, warmup=cfg.warmup))
        new = lambda: make_canvas(canvas_kind, 1, size_, vqgan=vqgan, device=device)  # noqa: E731

        def reference(precision):
            return Variant(f"reference-{precision}", lambda: reference_state(
                encoder, new(), PROMPT, cutn=cfg.cutn, lr=lr, vqgan=vqgan, precision=precision),
                ReferenceRun.step, similarity=lambda s: scorer(s.image()))

        def ours(name, precision):
            return Variant(name, lambda: ours_state(encoder, new(), [PROMPT], cutn=cfg.cutn, lr=lr, precision=precision),
                           ours_step, similarity=lambda s: scorer(ours_images(s)))

        # Three ratios, measured side by side: what a user switching tools gets (our default against the
        # notebooks' fp32), and the implementations at equal precision (both bf16; both fp32).
        variants = [reference("fp32"), reference("bf16"), ours("ours", "auto"), ours("ours-fp32", "fp32"),
                    ours("ours-bf16", "bf16")]
        scorer = Scorer(encoder, [PROMPT])
        start = scorer(render(new()))
        result.variants, result.ratios = measure(
            variants, device=device, reps=cfg.reps, steps=cfg.steps, warmup=cfg.warmup, log=cfg.log,
            ratios=[("ours", "reference-fp32", None), ("ours-bf16", "reference-bf16", None),
                    ("ours-fp32", "reference-fp32", None)])
        done = cfg.warmup + cfg.reps * cfg.steps
        for mine, theirs in (("ours", "reference-fp32"), ("ours-bf16", "reference-bf16"),
                             ("ours-fp32", "reference-fp32")):
            similarity_check(result, start, mine, theirs, f"similarity after {done} steps, {mine} vs {theirs}", done)
        default = "fp32" if isinstance(autocast_for(device, "auto"), contextlib.nullcontext) else "bf16 autocast"
        result.notes.append(f"ours = the library default here ({default}); the notebooks run fp32, so "
                            "ours / reference-fp32 includes the precision lever and the equal-precision rows do not")
        return result

    return run


# --- a poem: one batch vs separate runs ---------------------------------------------------------------------
def poem_case(cfg: Config) -> CaseResult:
    device = cfg.torch_device
    missing = models.demo_missing() if not cfg.tiny else ["(tiny mode)"]
    demo = not missing
    if demo:
        encoder, vqgan = models.demo("clip", cfg.device), models.demo("vqgan", cfg.device)
        size, cutn = 128, cfg.cutn
    else:
        encoder, vqgan = clip_model(cfg), vqgan_model(cfg)
        size = cfg.sizes[0] if cfg.quick or cfg.tiny else (256 if cfg.cuda else 128)
        cutn = cfg.cutn if cfg.cuda or cfg.tiny else min(cfg.cutn, 4)  # 8 lines x 32 real CLIP cutouts: ~40 s a step
    # real models on CPU: ~15 s a variant step, so 2 repetitions keep the full run within its 15 minutes
    reps = cfg.reps if demo or cfg.cuda or cfg.quick or cfg.tiny else min(cfg.reps, 2)
    size = size_for(vqgan, size)
    lines = POEM
    result = CaseResult("poem", "", settings=dict(encoder=encoder.name, vqgan=vqgan.name, size=size, cutn=cutn,
                                                  lines=len(lines), reps=reps, steps=cfg.steps))
    if not demo:
        result.notes.append(f"demo models absent ({', '.join(missing)}): real-size random models"
                            + ("" if cutn == cfg.cutn else f", cutn {cutn} and {reps} repetitions to keep the CPU "
                                                           "run short"))
    new = lambda b: make_canvas("vqgan", b, size, vqgan=vqgan, device=device)  # noqa: E731
    lr = LR["vqgan"]
    scorer = Scorer(encoder, lines)

    def build_separate():
        return [ours_state(encoder, new(1), [line], cutn=cutn, lr=lr) for line in lines]

    def step_separate(states):  # the same work as 8 runs one after another: one step of each
        for s in states:
            ours_step(s)

    variants = [
        Variant("one-batch", lambda: ours_state(encoder, new(len(lines)), lines, cutn=cutn, lr=lr), ours_step,
                similarity=lambda s: scorer(ours_images(s)), units=len(lines), unit="line-steps/s"),
        Variant("separate-runs", build_separate, step_separate, units=len(lines), unit="line-steps/s",
                similarity=lambda ss: scorer(torch.cat([ours_images(s) for s in ss]))),
    ]
    result.variants, result.ratios = measure(variants, device=device, reps=reps, steps=cfg.steps,
                                             warmup=cfg.warmup, log=cfg.log,
                                             ratios=[("one-batch", "separate-runs", 1.2)])
    result.notes.append("each line gets the same steps either way; 'separate-runs' interleaves the 8 runs' "
                        "steps, which is the same work as running them one after another")
    return result


# --- seconds per image with the demo models -----------------------------------------------------------------
def spi_case(family: str) -> Callable[[Config], CaseResult]:
    def run(cfg: Config) -> CaseResult:
        from imagination.pipeline import ImagineSettings, Run

        name = f"spi-{family}-demo"
        result = CaseResult(name, "")
        missing = models.demo_missing()
        if missing:
            result.skipped = f"demo models not in checkpoints/ yet: {', '.join(missing)}"
            return result
        steps = cfg.spi_steps
        prompt = PROMPT if family == "clip" else PROMPT_ZH
        settings = ImagineSettings(prompts=[prompt], models=[models.DEMO[family]], vqgan=models.DEMO["vqgan"],
                                   canvas="vqgan", steps=steps, device=cfg.device)  # the rest at its defaults
        result.settings = dict(model=models.DEMO[family], vqgan=models.DEMO["vqgan"], size=settings.size,
                               cutn=settings.cutn, steps=steps, precision=settings.precision)
        t0 = time.perf_counter()
        run_ = Run(settings)
        setup = time.perf_counter() - t0
        if cfg.cuda:
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            events = list(run_)
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            with PeakRSS() as probe:
                events = list(run_)
            before, peak = probe.before, probe.peak
        total = time.perf_counter() - t0
        loop_s = events[-1].elapsed
        it_s = run_.result.steps / loop_s
        per_image_150 = setup + 150 / it_s
        sim = next(iter(run_.result.similarity.values()))[0][prompt]
        result.variants = [VariantResult("studio-defaults", round(it_s, 3), [it_s], similarity=round(sim, 4),
                                         build_s=round(setup, 2), peak_mib=round(peak / MiB, 1),
                                         step_mib=round((peak - before) / MiB, 1),
                                         extra={"seconds_total": round(total, 2), "steps": run_.result.steps,
                                                "seconds_per_image_at_150_steps": round(per_image_150, 1)})]
        result.notes.append(f"{total:.1f} s for {steps} steps incl. {setup:.1f} s set-up (models were cached "
                            f"by the registry: first load not included); at 150 steps: {per_image_150:.1f} s/image")
        return result

    return run


# --- correctness: similarity reached ------------------------------------------------------------------------
def check_case(cfg: Config) -> CaseResult:
    device = cfg.torch_device
    missing = models.demo_missing() if not cfg.tiny else ["(tiny mode)"]
    steps = cfg.check_steps
    if not missing:
        encoder, vqgan, size, cutn = models.demo("clip", cfg.device), models.demo("vqgan", cfg.device), 128, 32
    else:
        encoder, vqgan = clip_model(cfg), vqgan_model(cfg)
        size, cutn = cfg.sizes[0], cfg.cutn
        if not (cfg.quick or cfg.tiny or cfg.cuda):  # real CLIP on 2 CPU cores: keep it to a minute or two
            size, cutn, steps = 64, 8, min(steps, MIN_STEPS_TO_JUDGE)
    size = size_for(vqgan, size)
    lr = LR["vqgan"]
    result = CaseResult("check", "", settings=dict(encoder=encoder.name, vqgan=vqgan.name, size=size, cutn=cutn,
                                                   steps=steps))
    if missing:
        result.notes.append(f"demo models absent ({', '.join(missing)}): real-size random weights, so the "
                            "similarity says the optimiser works, not that the image shows the prompt")
    scorer = Scorer(encoder, [PROMPT])
    new = lambda: make_canvas("vqgan", 1, size, vqgan=vqgan, device=device)  # noqa: E731
    sim = lambda s: scorer(ours_images(s))  # noqa: E731
    variants = [
        Variant("reference", lambda: reference_state(encoder, new(), PROMPT, cutn=cutn, lr=lr, vqgan=vqgan),
                ReferenceRun.step, similarity=lambda s: scorer(s.image())),
        Variant("ours", lambda: ours_state(encoder, new(), [PROMPT], cutn=cutn, lr=lr, precision="fp32"),
                ours_step, similarity=sim),
        Variant("ours-bf16-whole-step", lambda: ours_state(encoder, new(), [PROMPT], cutn=cutn, lr=lr,
                                                           precision="bf16"), ours_step, similarity=sim),
        Variant("ours-bf16-encoder-only", lambda: ours_state(levers.AutocastEncoder(encoder), new(), [PROMPT],
                                                             cutn=cutn, lr=lr, precision="fp32"),
                ours_step, similarity=sim),
    ]
    start = scorer(render(new()))
    result.variants, result.ratios = measure(variants, device=device, reps=1, steps=steps, warmup=0, log=cfg.log)
    for name in ("ours", "ours-bf16-whole-step", "ours-bf16-encoder-only"):
        other = "reference" if name == "ours" else "ours"
        label = f"similarity after {steps} steps, {name} vs {'reference' if name == 'ours' else 'ours fp32'}"
        similarity_check(result, start, name, other, label, steps)
    return result
