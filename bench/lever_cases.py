"""Cases that time one lever alone: BriVL RoI pooling and tower, cutouts, bf16, channels_last,
torch.compile, per-step overheads."""

from __future__ import annotations

import contextlib
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F

from bench import levers, models
from bench.common import (LR, POEM, PROMPT, Config, Scorer, clip_model, make_canvas, ours_images, ours_state,
                          ours_step, render, similarity_check, size_for, vqgan_model)
from bench.harness import CaseResult, Check, Variant, measure, sync
from bench.reference import MakeCutouts
from imagination.augment import Cutouts
from imagination.loop import autocast_for


# --- BriVL RoI pooling and image tower ----------------------------------------------------------------------
def brivl_pool_case(cfg: Config) -> CaseResult:
    from torch import nn

    from imagination.models.brivl import grid_boxes, roi_pool, roi_pool_per_image_reference

    device = cfg.torch_device
    channels, side, img_size = (256, 2, 64) if cfg.tiny else (2048, 15, 456)
    batch = 4 if cfg.tiny else 32
    with models.seeded(3):
        max_pool = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.AvgPool2d(4, stride=1)).to(device)
        features = torch.randn(batch, channels, side, side, device=device)
    max_pool.requires_grad_(False)
    boxes = grid_boxes(img_size, 6)[None]
    result = CaseResult("brivl-pool", "", settings=dict(features=[batch, channels, side, side], boxes=37,
                                                        grid=4, reps=cfg.reps, steps=cfg.steps))
    autocast = autocast_for(device, "auto")

    def make(fn):
        def step(x):
            with autocast:
                out = fn(x, boxes, max_pool, img_size, 4)
            out.float().square().mean().backward()
        return step

    build = lambda: features.clone().requires_grad_(True)  # noqa: E731
    variants = [Variant("batched", build, make(roi_pool)),
                Variant("per-image", build, make(roi_pool_per_image_reference))]
    result.variants, result.ratios = measure(variants, device=device, reps=cfg.reps, steps=cfg.steps,
                                             warmup=cfg.warmup, log=cfg.log,
                                             ratios=[("batched", "per-image", 3.0)])
    with torch.no_grad():
        a = roi_pool(features, boxes, max_pool, img_size, 4)
        b = roi_pool_per_image_reference(features, boxes, max_pool, img_size, 4)
    err = (a - b).abs().max().item() / b.abs().max().item()
    tol = 1e-3 if cfg.cuda else 1e-4  # cuDNN convolutions use TF32 by default: ~3e-4 relative
    result.checks.append(Check("batched pooling equals the per-image loop", err < tol,
                               f"max |difference| / max |value| = {err:.2e} (fp32 inputs, tolerance {tol:g})"))
    return result


def brivl_tower_case(cfg: Config) -> CaseResult:
    device = cfg.torch_device
    tower = models.brivl_image_tower(cfg.kind, cfg.device)
    side, batch = tower.img_size, cfg.brivl_batch
    reps = cfg.reps if cfg.cuda or cfg.quick or cfg.tiny else min(cfg.reps, 2)  # CPU: ~7 s a variant step
    result = CaseResult("brivl-tower", "", settings=dict(cnn=tower.cnn, size=side, cutouts=batch,
                                                         reps=reps, steps=cfg.steps))
    if not cfg.cuda and not cfg.tiny:
        result.notes.append(f"{batch} cutouts a step on CPU (32 would need ~15 GB of activations); "
                            "the pooling's share grows with the batch")
    cl_tower = levers.channels_last_copy(tower)
    with models.seeded(4):
        pixels = torch.randn(batch, 3, side, side, device=device)
    autocast = autocast_for(device, "auto")

    def make(model, pool=contextlib.nullcontext, channels_last=False):
        def step(x):
            with autocast, pool():
                out = model(x)
            out.float().square().mean().backward()
        build = lambda: pixels.clone().contiguous(  # noqa: E731
            memory_format=torch.channels_last if channels_last else torch.contiguous_format).requires_grad_(True)
        return build, step

    variants = [Variant("batched", *make(tower)),
                Variant("per-image", *make(tower, levers.per_image_roi_pool)),
                Variant("batched+channels_last", *make(cl_tower, channels_last=True))]
    result.variants, result.ratios = measure(
        variants, device=device, reps=reps, steps=cfg.steps, warmup=cfg.warmup, log=cfg.log,
        ratios=[("batched", "per-image", None), ("batched+channels_last", "batched", None)])
    for v in result.variants:
        v.extra["images_per_s"] = round(v.it_s * batch, 3)
    return result


# --- cutouts, precision, memory layout, compile, overheads --------------------------------------------------
def cutouts_case(size: int) -> Callable[[Config], CaseResult]:
    def run(cfg: Config) -> CaseResult:
        device = cfg.torch_device
        cut = 32 if cfg.tiny else 224
        result = CaseResult(f"lever-cutouts-{size}", "", settings=dict(image=size, cut_size=cut, cutn=cfg.cutn,
                                                                     reps=cfg.reps, steps=cfg.steps * 3))
        with models.seeded(5):
            image = torch.rand(1, 3, size, size, device=device)
        ours = Cutouts(cut, cfg.cutn, generator=torch.Generator(device).manual_seed(0))
        ref = MakeCutouts(cut, cfg.cutn)

        def make(fn):
            def step(x):
                fn(x).square().mean().backward()
            return step

        build = lambda: image.clone().requires_grad_(True)  # noqa: E731
        variants = [Variant("one-warp", build, make(ours)), Variant("python-loop", build, make(ref))]
        result.variants, result.ratios = measure(variants, device=device, reps=cfg.reps, steps=cfg.steps * 3,
                                                 warmup=cfg.warmup, log=cfg.log,
                                                 ratios=[("one-warp", "python-loop", None)])
        result.notes.append("forward + backward to the image; python-loop = per-cutout adaptive_avg_pool2d, "
                            "torch.cat, kornia RandomHorizontalFlip/RandomAffine/RandomPerspective, noise")
        return result

    return run


def bf16_case(cfg: Config) -> CaseResult:
    device = cfg.torch_device
    encoder, vqgan = clip_model(cfg), vqgan_model(cfg)
    size = size_for(vqgan, cfg.sizes[0])
    lr = LR["vqgan"]
    result = CaseResult("lever-bf16", "", settings=dict(encoder=encoder.name, vqgan=vqgan.name, size=size,
                                                        cutn=cfg.cutn, reps=cfg.reps, steps=cfg.steps))
    scorer = Scorer(encoder, [PROMPT])
    new = lambda: make_canvas("vqgan", 1, size, vqgan=vqgan, device=device)  # noqa: E731
    sim = lambda s: scorer(ours_images(s))  # noqa: E731
    variants = [
        Variant("fp32", lambda: ours_state(encoder, new(), [PROMPT], cutn=cfg.cutn, lr=lr, precision="fp32"),
                ours_step, similarity=sim),
        Variant("bf16-whole-step", lambda: ours_state(encoder, new(), [PROMPT], cutn=cfg.cutn, lr=lr,
                                                      precision="bf16"), ours_step, similarity=sim),
        Variant("bf16-encoder-only", lambda: ours_state(levers.AutocastEncoder(encoder), new(), [PROMPT],
                                                        cutn=cfg.cutn, lr=lr, precision="fp32"),
                ours_step, similarity=sim),
    ]
    start = scorer(render(new()))
    result.variants, result.ratios = measure(
        variants, device=device, reps=cfg.reps, steps=cfg.steps, warmup=cfg.warmup, log=cfg.log,
        ratios=[("bf16-whole-step", "fp32", None), ("bf16-encoder-only", "fp32", None)])
    done = cfg.warmup + cfg.reps * cfg.steps
    for name in ("bf16-whole-step", "bf16-encoder-only"):
        similarity_check(result, start, name, "fp32", f"similarity after {done} steps, {name} vs fp32", done)
    result.notes.append("bf16-whole-step = the library's precision='bf16' (canvas/VQGAN decoder too); "
                        "bf16-encoder-only = bench/levers.py AutocastEncoder; quality over 50 steps: case 'check'")
    result.notes.append(_cpu_bf16_note() if not cfg.cuda else "CUDA bf16 autocast")
    return result


def _cpu_bf16_note() -> str:
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
    return f"CPU: AMX tiles {'yes' if amx else 'no'}, AVX-512 BF16 {'yes' if bf16 else 'no'}"


def channels_last_case(cfg: Config) -> CaseResult:
    """The decoder's share of a step under each combination of precision, memory layout and SiLU."""
    device = cfg.torch_device
    vqgan = vqgan_model(cfg)
    size = size_for(vqgan, cfg.sizes[-1] if cfg.cuda else cfg.sizes[0])
    side = size // vqgan.factor
    result = CaseResult("lever-channels-last", "", settings=dict(vqgan=vqgan.name, size=size, reps=cfg.reps,
                                                                 steps=cfg.steps))
    cl = levers.channels_last_copy(vqgan)
    with models.seeded(6):
        tokens = torch.randint(vqgan.n_embed, (1, side, side), device=device)
    latent = vqgan.embed_indices(tokens).detach()

    def make(precision: str, channels_last: bool, silu: bool):
        model = cl if channels_last else vqgan

        def build():
            z = latent.clone()
            if channels_last:
                z = z.contiguous(memory_format=torch.channels_last)
            return z.requires_grad_(True)

        def step(z):
            with autocast_for(device, precision), levers.decoder_activation(F.silu if silu else levers.taming_swish):
                image = model.decode(model.quantize(z)[0])
            image.float().square().mean().backward()
        name = precision + ("+channels_last" if channels_last else "") + ("+silu" if silu else "")
        return Variant(name, build, step)

    variants = [make(p, c, f) for p in ("fp32", "bf16") for c in (False, True) for f in (False, True)]
    result.variants, result.ratios = measure(variants, device=device, reps=cfg.reps, steps=cfg.steps,
                                             warmup=cfg.warmup, log=cfg.log,
                                             ratios=[(v.name, "fp32", None) for v in variants[1:]])
    with torch.no_grad():
        with levers.decoder_activation(levers.taming_swish):
            a = vqgan.decode(vqgan.quantize(latent)[0]).float()
        with levers.decoder_activation(F.silu):
            b = cl.decode(cl.quantize(latent.contiguous(memory_format=torch.channels_last))[0]).float()
    err = (a - b).abs().max().item()
    tol = 1e-2 if cfg.cuda else 1e-3  # cuDNN convolutions run TF32 by default
    result.checks.append(Check("fp32+channels_last+silu decodes the same image as fp32", err < tol,
                               f"max |difference| = {err:.2e} on [0, 1] pixels (tolerance {tol:g})"))
    result.notes.append("VQGAN quantize + decode forward and backward to the latent (the canvas's share of a step); "
                        "bf16 = torch.autocast as the loop applies it")
    return result


def compile_case(cfg: Config) -> CaseResult:
    """CPU: the VQGAN decoder alone, eager vs compiled (a CLIP compile on 2 cores costs minutes).
    CUDA: the whole loop step, eager vs VQGAN decoder + CLIP image tower compiled, also with CUDA
    graphs (mode="reduce-overhead"): a step's many small kernels leave the GPU idle between launches."""
    device = cfg.torch_device
    vqgan = vqgan_model(cfg)
    size = size_for(vqgan, cfg.sizes[0])
    side = size // vqgan.factor
    result = CaseResult("lever-compile", "", settings=dict(vqgan=vqgan.name, size=size, reps=cfg.reps,
                                                           steps=cfg.steps))
    autocast = autocast_for(device, "auto")
    if cfg.cuda:
        encoder = clip_model(cfg)
        result.settings.update(encoder=encoder.name, cutn=cfg.cutn)
        lr = LR["vqgan"]
        variants = [Variant("eager", lambda: ours_state(encoder, make_canvas("vqgan", 1, size, vqgan=vqgan,
                                                                                device=device),
                                                          [PROMPT], cutn=cfg.cutn, lr=lr), ours_step)]
        for name, mode in (("compiled", None), ("compiled-cudagraphs", "reduce-overhead")):
            def build(mode=mode):
                options = {"mode": mode} if mode else {}
                twin = levers.compiled_decoder_copy(vqgan, **options)
                enc = levers.CompiledEncoder(encoder, **options)
                return ours_state(enc, make_canvas("vqgan", 1, size, vqgan=twin, device=device), [PROMPT],
                                  cutn=cfg.cutn, lr=lr)
            variants.append(Variant(name, build, ours_step))
        warmup = max(cfg.warmup, 3)  # CUDA graphs record on the third call
    else:
        compiled = levers.compiled_decoder_copy(vqgan)
        with models.seeded(6):
            tokens = torch.randint(vqgan.n_embed, (1, side, side), device=device)
        latent = vqgan.embed_indices(tokens).detach()

        def make(model):
            def step(z):
                with autocast:
                    image = model.decode(model.quantize(z)[0])
                image.float().square().mean().backward()
            return (lambda: latent.clone().requires_grad_(True)), step

        variants = [Variant("eager", *make(vqgan)), Variant("compiled-decoder", *make(compiled))]
        warmup = max(cfg.warmup, 1)
        result.notes.append("VQGAN decode forward+backward alone; CLIP is not compiled on CPU (minutes of compile)")
    result.variants, result.ratios = measure(variants, device=device, reps=cfg.reps, steps=cfg.steps,
                                             warmup=warmup, log=cfg.log,
                                             ratios=[(v.name, "eager", None) for v in variants[1:]])
    eager = result.variants[0]
    for comp in result.variants[1:]:
        compile_s = comp.warmup_s - eager.warmup_s
        comp.extra["compile_s"] = round(compile_s, 1)
        saving = 1 / eager.it_s - 1 / comp.it_s
        if saving > 0:
            result.notes.append(f"{comp.name}: compiles in {compile_s:.0f} s, saves {saving * 1000:.1f} ms a step: "
                                f"pays after {compile_s / saving:.0f} steps (a studio run is 150)")
        else:
            result.notes.append(f"{comp.name}: compiles in {compile_s:.0f} s and saves nothing a step: does not pay")
    return result


def overheads_case(cfg: Config) -> CaseResult:
    device = cfg.torch_device
    encoder = clip_model(cfg)
    size = cfg.sizes[0]
    cutn = cfg.cutn if cfg.cuda or cfg.tiny else min(cfg.cutn, 2)  # CPU: a short step, so the overheads show
    lines = POEM
    lr = LR["pixels"]
    result = CaseResult("lever-overheads", "", settings=dict(encoder=encoder.name, canvas="pixels", size=size,
                                                             lines=len(lines), cutn=cutn, reps=cfg.reps,
                                                             steps=cfg.steps))
    new = lambda: make_canvas("pixels", len(lines), size, device=device)  # noqa: E731

    def sync_step(state):
        ours_step(state)
        state.last.loss.item()  # what a progress print each step would do
        for value in state.last.similarity.values():
            value.tolist()

    variants = [
        Variant("ours", lambda: ours_state(encoder, new(), lines, cutn=cutn, lr=lr), ours_step),
        Variant("text-every-step", lambda: ours_state(encoder, new(), lines, cutn=cutn, lr=lr,
                                                      targets_cls=levers.RecomputedTargets), ours_step),
        Variant("sync-every-step", lambda: ours_state(encoder, new(), lines, cutn=cutn, lr=lr), sync_step),
    ]
    result.variants, result.ratios = measure(
        variants, device=device, reps=cfg.reps, steps=cfg.steps, warmup=cfg.warmup, log=cfg.log,
        ratios=[("ours", "text-every-step", None), ("ours", "sync-every-step", None)])
    # What recomputing would cost per step with each text tower, timed alone (median of 3).
    text_tower, text_cfg = models.brivl_text_tower(cfg.kind, cfg.device)
    with models.seeded(8):
        ids = torch.randint(5, text_cfg["BERT_VOCAB_SIZE"], (len(lines), text_cfg["MAX_TEXT_LEN"]), device=device)
    lengths = torch.full((len(lines),), text_cfg["MAX_TEXT_LEN"] // 2, device=device)
    timings = {}
    for name, fn in (("clip_text_ms", lambda: encoder.encode_text(lines)),
                     ("brivl_text_ms", lambda: text_tower(ids, lengths))):
        runs = []
        for _ in range(4):
            sync(device)
            t0 = time.perf_counter()
            with torch.no_grad():
                fn()
            sync(device)
            runs.append(1000 * (time.perf_counter() - t0))
        timings[name] = round(statistics.median(runs[1:]), 1)
    result.variants[0].extra.update(timings)
    step_ms = 1000 / result.variants[0].it_s
    result.notes.append(f"embedding the {len(lines)} lines takes {timings['clip_text_ms']:.0f} ms with CLIP's text "
                        f"tower, {timings['brivl_text_ms']:.0f} ms with BriVL's RoBERTa-base one: once per run here, "
                        f"every step if recomputed (a step above: {step_ms:.0f} ms)")
    result.notes.append("a sync (.item() of loss and similarities) every step: free on CPU; on CUDA it drains the "
                        "launch queue, which costs only when the GPU, not the Python side, is the bottleneck")
    return result
