"""The benchmark cases. Each builds its variants, measures them side by side (bench.harness.measure)
and returns a CaseResult with speeds, memory, ratios against their targets and PASS/FAIL checks.

Case names (select with --only: a name, a prefix or a glob; see bench/RESULTS.md for the method):
  loop-{canvas}-{size}     our loop vs the classic notebook loop (bench/reference.py), CLIP ViT-B/32,
                           canvas vqgan (f16, 1024 codes) or pixels (Fourier): our default vs the
                           notebooks' fp32, and both loops in bf16, and both in fp32
  poem                     8 lines as one batch vs 8 separate runs (demo models if present)
  brivl-pool               RoI pooling alone: batched vs the official per-image loop
  brivl-tower              BriVL image tower (EfficientNet-B5, 456 px) forward+backward, both poolings
  spi-{clip,brivl}-demo    seconds per image with the demo models at the studio defaults
  lever-cutouts-{size}     cutouts + augmentations: one batched warp vs the Python loop + kornia
  lever-bf16               fp32 vs bf16 for the whole step vs bf16 for the encoder only
  lever-channels-last      VQGAN decoder: fp32/bf16 x NCHW/channels_last x taming's swish/fused SiLU
  lever-compile            torch.compile (CUDA: the whole step's models; CPU: opt-in, decoder only)
  lever-overheads          text embedded once vs every step; no sync vs .item() every step
  check                    similarity reached after N steps: ours vs reference, bf16 vs fp32"""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable

import torch
import torch.nn.functional as F

from bench import levers, models
from bench.harness import CaseResult, Check, MiB, PeakRSS, Variant, VariantResult, measure, sync
from bench.reference import MakeCutouts, ReferenceRun
from imagination.augment import Cutouts
from imagination.loop import autocast_for, optimise
from imagination.objectives import Objective, Targets, WeightedText

PROMPT = "a lighthouse on a cliff at sunset"
POEM = ["snowy mountains under the moon", "a lone boat on a calm lake", "pine trees on a misty hill",
        "a red sun setting over the sea", "a small village by the river", "birds flying across the sky",
        "peach blossoms in spring", "a stone bridge over a stream"]
PROMPT_ZH = "海边的灯塔和落日"
LR = {"vqgan": 0.1, "pixels": 0.05}  # imagination.pipeline.DEFAULT_LR, used by both loops


@dataclass
class Config:
    device: str = "cpu"
    quick: bool = False  # 1 repetition, 2 steps, small sizes, fewer cutouts
    tiny: bool = False  # tiny random models instead of real-size ones (the smoke test)
    reps: int | None = None
    steps: int | None = None
    warmup: int = 1
    sizes: tuple[int, ...] | None = None
    cutn: int | None = None
    check_steps: int | None = None
    spi_steps: int | None = None
    brivl_batch: int | None = None
    log: Callable = print

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    @property
    def cuda(self) -> bool:
        return self.torch_device.type == "cuda"

    def resolved(self) -> "Config":
        """Fill every None with the default of the mode (full / quick / tiny, CPU / CUDA)."""
        quick = self.quick or self.tiny
        if self.tiny:
            sizes, cutn = (32,), 4
        elif quick:
            sizes, cutn = (64,), 8
        else:
            sizes, cutn = ((256, 512) if self.cuda else (128, 256)), 32
        brivl_batch = 2 if quick else (32 if self.cuda else 4)
        return Config(
            device=self.device, quick=self.quick, tiny=self.tiny,
            reps=self.reps or (1 if quick else (5 if self.cuda else 3)),
            steps=self.steps or (2 if quick else (10 if self.cuda else 1)),
            warmup=self.warmup, sizes=tuple(self.sizes or sizes), cutn=self.cutn or cutn,
            check_steps=self.check_steps or (3 if quick else 50),
            spi_steps=self.spi_steps or (3 if quick else 150),
            brivl_batch=self.brivl_batch or brivl_batch, log=self.log,
        )

    @property
    def kind(self) -> str:
        return "tiny" if self.tiny else "real"


@dataclass
class CaseSpec:
    name: str
    title: str
    run: Callable[[Config], CaseResult]
    default: bool = True  # part of a run without --only


# --- shared pieces ---------------------------------------------------------------------------------
def _clip(cfg: Config):
    return models.clip(cfg.kind, cfg.device)


def _vqgan(cfg: Config):
    return models.vqgan(cfg.kind, cfg.device)


def _size_for(vqgan, size: int) -> int:
    f = vqgan.factor
    return max(f, size // f * f)


def make_canvas(kind: str, batch: int, size: int, *, vqgan=None, device="cpu", seed: int = 0):
    """The studio's canvas, every image starting alike (share_init, the studio default)."""
    generator = torch.Generator().manual_seed(seed)
    if kind == "vqgan":
        from imagination.canvases.vqgan import VQGANCanvas

        canvas = VQGANCanvas(vqgan, batch, size, generator=generator)
    else:
        from imagination.canvases.pixels import FourierCanvas

        canvas = FourierCanvas(batch, size, generator=generator)
    canvas.share_first()
    return canvas.to(device)


def _param(canvas) -> torch.Tensor:
    (param,) = [p for p in canvas.parameters() if p.requires_grad]
    return param


class Scorer:
    """Mean cosine of image b to text b, over the whole image and 16 fixed crops (no augmentation,
    the same crops for every variant). Independent of how either loop made its cutouts."""

    def __init__(self, encoder, texts: list[str], views: int = 16, seed: int = 1234):
        self.encoder, self.views, self.seed = encoder, views, seed
        self.text = encoder.encode_text(texts)  # (B, D)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> float:
        images = images.float().to(self.encoder.device)
        b = images.shape[0]
        generator = torch.Generator(self.encoder.device).manual_seed(self.seed)
        crops = Cutouts(self.encoder.input_size, self.views, augmentations=(), min_fraction=0.5,
                        generator=generator)(images)  # (B*views, 3, s, s)
        whole = self.encoder.encode_image(images)[:, None]  # (B, 1, D)
        parts = self.encoder.encode_image(crops).view(b, self.views, -1)
        embeddings = torch.cat([whole, parts], 1)  # (B, 1+views, D)
        return (embeddings @ self.text.to(embeddings)[:, :, None]).mean().item()


def ours_state(encoder, canvas, texts: list[str], *, cutn: int, lr: float, precision: str = "auto",
               seed: int = 0, targets_cls=Targets):
    device = _param(canvas).device
    targets = targets_cls.from_prompts(encoder, [[WeightedText(t)] for t in texts])
    cutouts = Cutouts(encoder.input_size, cutn, generator=torch.Generator(device).manual_seed(seed + 1))
    state = SimpleNamespace(canvas=canvas, last=None)
    state.gen = optimise(canvas, Objective([targets]), cutouts, steps=10**9, lr=lr, precision=precision)
    return state


def ours_step(state) -> None:
    state.last = next(state.gen)


def render(canvas) -> torch.Tensor:
    with torch.no_grad():
        return canvas()


def ours_images(state) -> torch.Tensor:
    return render(state.canvas)


def reference_state(encoder, canvas, text: str, *, cutn: int, lr: float, vqgan=None, precision: str = "fp32"):
    """The classic loop on one image, started from `canvas`'s own starting point."""
    embed = encoder.encode_text([text])
    return ReferenceRun(encoder, embed, z=_param(canvas), vqgan=vqgan, canvas=None if vqgan else canvas,
                        cutn=cutn, lr=lr, precision=precision)


MIN_STEPS_TO_JUDGE = 10


def _similarity_check(result: CaseResult, start: float, ours: str, ref: str, label: str, steps: int) -> None:
    """PASS when both raised the similarity and `ours` ends no lower than `ref` minus the tolerance
    max(0.02, 25% of the reference's gain); ending higher passes (noted). Not judged (N/A) after
    fewer than MIN_STEPS_TO_JUDGE steps: a VQGAN canvas may not have changed a single token yet."""
    sims = {v.name: v.similarity for v in result.variants}
    a, b = sims.get(ours), sims.get(ref)
    if a is None or b is None:
        return
    gain_a, gain_b = a - start, b - start
    tol = max(0.02, 0.25 * abs(gain_b))
    detail = (f"{label}: start {start:.4f}, {ours} {a:.4f} ({gain_a:+.4f}), {ref} {b:.4f} ({gain_b:+.4f}), "
              f"tolerance {tol:.3f}")
    if steps < MIN_STEPS_TO_JUDGE:
        result.checks.append(Check(label, None, detail + f" - not judged under {MIN_STEPS_TO_JUDGE} steps"))
        return
    passed = gain_a > 0 and gain_b > 0 and a >= b - tol
    if passed and a > b + tol:
        detail += " (ours higher)"
    result.checks.append(Check(label, passed, detail))


# --- 1. our loop vs the classic loop -------------------------------------------------------------------
def loop_case(canvas_kind: str, size: int) -> Callable[[Config], CaseResult]:
    def run(cfg: Config) -> CaseResult:
        device = cfg.torch_device
        encoder = _clip(cfg)
        vqgan = _vqgan(cfg) if canvas_kind == "vqgan" else None
        if vqgan is not None:
            size_ = _size_for(vqgan, size)
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
            _similarity_check(result, start, mine, theirs, f"similarity after {done} steps, {mine} vs {theirs}", done)
        default = "fp32" if isinstance(autocast_for(device, "auto"), contextlib.nullcontext) else "bf16 autocast"
        result.notes.append(f"ours = the library default here ({default}); the notebooks run fp32, so "
                            "ours / reference-fp32 includes the precision lever and the equal-precision rows do not")
        return result

    return run


# --- 2. a poem: one batch vs separate runs ------------------------------------------------------------
def poem_case(cfg: Config) -> CaseResult:
    device = cfg.torch_device
    missing = models.demo_missing() if not cfg.tiny else ["(tiny mode)"]
    demo = not missing
    if demo:
        encoder, vqgan = models.demo("clip", cfg.device), models.demo("vqgan", cfg.device)
        size, cutn = 128, cfg.cutn
    else:
        encoder, vqgan = _clip(cfg), _vqgan(cfg)
        size = cfg.sizes[0] if cfg.quick or cfg.tiny else (256 if cfg.cuda else 128)
        cutn = cfg.cutn if cfg.cuda or cfg.tiny else min(cfg.cutn, 4)  # 8 lines x 32 real CLIP cutouts: ~40 s a step
    # real models on CPU: ~15 s a variant step, so 2 repetitions keep the full run within its 15 minutes
    reps = cfg.reps if demo or cfg.cuda or cfg.quick or cfg.tiny else min(cfg.reps, 2)
    size = _size_for(vqgan, size)
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


# --- 3. BriVL RoI pooling ------------------------------------------------------------------------------
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


# --- 4. seconds per image with the demo models -----------------------------------------------------------
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
                                   canvas="vqgan", steps=steps, size=128, cutn=32, device=cfg.device)
        result.settings = dict(model=models.DEMO[family], vqgan=models.DEMO["vqgan"], size=128, cutn=32,
                               steps=steps, precision=settings.precision)
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


# --- 5. levers ----------------------------------------------------------------------------------------------
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
    encoder, vqgan = _clip(cfg), _vqgan(cfg)
    size = _size_for(vqgan, cfg.sizes[0])
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
        _similarity_check(result, start, name, "fp32", f"similarity after {done} steps, {name} vs fp32", done)
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
    vqgan = _vqgan(cfg)
    size = _size_for(vqgan, cfg.sizes[-1] if cfg.cuda else cfg.sizes[0])
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
    vqgan = _vqgan(cfg)
    size = _size_for(vqgan, cfg.sizes[0])
    side = size // vqgan.factor
    result = CaseResult("lever-compile", "", settings=dict(vqgan=vqgan.name, size=size, reps=cfg.reps,
                                                           steps=cfg.steps))
    autocast = autocast_for(device, "auto")
    if cfg.cuda:
        encoder = _clip(cfg)
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
    encoder = _clip(cfg)
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


# --- 6. correctness: similarity reached ------------------------------------------------------------------
def check_case(cfg: Config) -> CaseResult:
    device = cfg.torch_device
    missing = models.demo_missing() if not cfg.tiny else ["(tiny mode)"]
    steps = cfg.check_steps
    if not missing:
        encoder, vqgan, size, cutn = models.demo("clip", cfg.device), models.demo("vqgan", cfg.device), 128, 32
    else:
        encoder, vqgan = _clip(cfg), _vqgan(cfg)
        size, cutn = cfg.sizes[0], cfg.cutn
        if not (cfg.quick or cfg.tiny or cfg.cuda):  # real CLIP on 2 CPU cores: keep it to a minute or two
            size, cutn, steps = 64, 8, min(steps, MIN_STEPS_TO_JUDGE)
    size = _size_for(vqgan, size)
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
        _similarity_check(result, start, name, other, label, steps)
    return result


# --- the list ------------------------------------------------------------------------------------------------
def all_cases(cfg: Config) -> list[CaseSpec]:
    cases = []
    for size in cfg.sizes:
        for kind in ("vqgan", "pixels"):
            cases.append(CaseSpec(f"loop-{kind}-{size}", f"{'VQGAN' if kind == 'vqgan' else 'Fourier pixels'}"
                                  f"+CLIP {size} px: our loop vs the classic loop", loop_case(kind, size)))
    cases += [
        CaseSpec("poem", "a poem of 8 lines: one batch vs 8 separate runs", poem_case),
        CaseSpec("brivl-pool", "BriVL RoI pooling fwd+bwd: batched vs per-image loop", brivl_pool_case),
        CaseSpec("brivl-tower", "BriVL image tower fwd+bwd: batched vs per-image pooling", brivl_tower_case),
        CaseSpec("spi-clip-demo", "seconds per image, clip-demo + vqgan-demo, studio defaults", spi_case("clip")),
        CaseSpec("spi-brivl-demo", "seconds per image, brivl-demo + vqgan-demo, studio defaults", spi_case("brivl")),
    ]
    for size in cfg.sizes:
        cases.append(CaseSpec(f"lever-cutouts-{size}", f"cutouts at {size} px: one warp vs Python loop + kornia",
                              cutouts_case(size)))
    cases += [
        CaseSpec("lever-bf16", "bf16 autocast: whole step vs encoder only vs fp32", bf16_case),
        CaseSpec("lever-channels-last", "VQGAN decoder: fp32|bf16 x NCHW|channels_last x swish|fused SiLU",
                 channels_last_case),
        CaseSpec("lever-compile", "torch.compile: VQGAN decoder (CPU), the whole step's models (CUDA)" +
                 ("" if cfg.cuda else " [CPU: only with --only: a 2-3 min compile that did not pay]"),
                 compile_case, default=cfg.cuda),
        CaseSpec("lever-overheads", "text embedded every step, sync every step", overheads_case),
        CaseSpec("check", "similarity reached: ours vs reference, bf16 vs fp32", check_case),
    ]
    return cases
