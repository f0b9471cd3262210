"""From names and numbers to a running imagination: the one entry point of the CLI and the studio.

`Run(settings)` validates everything and loads what it needs *before* the first step (so mistakes
surface at once, as `UserError`), then iterating it yields `Progress` events; `run.result` holds
the finished images, their final similarities and the metadata that reproduces them.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field, replace

import torch

import imagination
from imagination.allocator import keep_freed_memory
from imagination.augment import AUGMENTATIONS, Cutouts, ImageJitter
from imagination.canvases.pixels import FourierCanvas, PlainCanvas, PyramidCanvas
from imagination.errors import UserError
from imagination.io import load_image
from imagination.loop import CutoutRamp, Plateau, Progress, Schedule, optimise, runs_in_bf16
from imagination.memory import check_fits
from imagination.models import registry
from imagination.objectives import ChannelTarget, Objective, Priors, Targets, parse_prompt

CANVASES = ("vqgan", "pixels", "pyramid", "plain")
PIXEL_CANVASES = {"pixels": FourierCanvas, "pyramid": PyramidCanvas, "plain": PlainCanvas}

# What a setting left at None means on each canvas. The VQGAN's decoder is an image prior of its
# own; the pixel canvases need the feature-visualisation toolkit instead (see README, "Pixel canvases").
_NO_PRIORS = dict(pad=0, jitter=0, scale_min=1.0, scale_max=1.0, rotate=0.0, mean_weight=0.0, grey_weight=0.0,
                  tv_weight=0.0, blur=0.0)
_PIXEL_PRIORS = dict(pad=12, jitter=8, scale_min=0.7, scale_max=1.1, rotate=20.0, mean_weight=0.0,
                     grey_weight=0.0, tv_weight=0.0, blur=0.0)
CANVAS_DEFAULTS = {
    "vqgan": dict(steps=150, lr=0.2, schedule="cosine", warmup=0.0, **_NO_PRIORS),  # bench/RESULTS.md, time to quality
    "pixels": dict(steps=150, lr=0.05, schedule="constant", warmup=0.0, **_PIXEL_PRIORS),
    "pyramid": dict(steps=150, lr=0.2, schedule="constant", warmup=0.0, **_PIXEL_PRIORS),
    "plain": dict(steps=150, lr=0.1, schedule="constant", warmup=0.0, **{**_PIXEL_PRIORS, "tv_weight": 5.0}),
}
# Refinements for a run whose models are all of one kind, by the precision its steps run in (README,
# Speed; the eval's figures): in fp32, CLIP's VQGAN images are as good after 100 steps at a higher
# rate; in bf16 they are not (judge 0.778 / 0.70 against 0.867 / 0.75 at 150), and BriVL's lose the
# other model's recognition below 150 (0.60 at 100 steps, 0.70 at 150), so those keep 150.
KIND_DEFAULTS = {("vqgan", "clip", "fp32"): dict(steps=100, lr=0.3)}
KIND_NAMES = {"clip": "CLIP", "brivl": "BriVL"}
SCHEDULES = ("constant", "cosine")


def default_settings(canvas: str, models: list[str], bf16: bool = False) -> dict:
    """What the settings left at None become for this canvas, these models and this precision."""
    kinds = {registry.kind_of(m) for m in models}
    key = (canvas, kinds.pop(), "bf16" if bf16 else "fp32") if len(kinds) == 1 else None
    return {**CANVAS_DEFAULTS[canvas], **KIND_DEFAULTS.get(key, {})}


def describe_defaults(canvas: str) -> str:
    """A canvas's defaults in words, e.g. '150 steps · lr 0.05 · pad 12 px · jitter 8 px · scale 0.7–1.1 · rotate ±20°'."""
    d = CANVAS_DEFAULTS[canvas]
    parts = [f"{d['steps']} steps · lr {d['lr']:g}" + (f" ({d['schedule']})" if d["schedule"] != "constant" else "")]
    for (on, kind, precision), refined in KIND_DEFAULTS.items():
        if on == canvas:
            parts[0] += f", {KIND_NAMES[kind]} alone in {precision} " + ", ".join(
                f"{v} steps" if k == "steps" else f"{k} {v:g}" for k, v in refined.items())
    if d["pad"] or d["jitter"]:
        parts.append(f"pad {d['pad']} px · jitter {d['jitter']} px")
    if (d["scale_min"], d["scale_max"]) != (1, 1):
        parts.append(f"scale {d['scale_min']:g}–{d['scale_max']:g}")
    if d["rotate"]:
        parts.append(f"rotate ±{d['rotate']:g}°")
    names = {"mean_weight": "whole-picture", "grey_weight": "grey pull", "tv_weight": "TV", "blur": "blur"}
    parts += [f"{label} {d[key]:g}" for key, label in names.items() if d[key]]
    return " · ".join(parts) if len(parts) > 1 else parts[0] + " · no transforms or priors"
MAX_BATCH = 64
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def reads_chinese(text: str) -> bool:
    return bool(_CJK.search(text))


@dataclass
class Neuron:
    """A channel of an image-tower layer to maximise, optionally next to the text prompts."""

    model: str
    layer: str
    channel: int
    weight: float = 1.0


@dataclass
class ImagineSettings:
    """Everything that determines a run; stored in each PNG so the image can be made again."""

    prompts: list[str]  # one per image; each may be weighted: "snowy mountains:1|night:-0.5"
    models: list[str] | None = None  # None: BriVL for Chinese prompts, CLIP otherwise
    model_prompts: dict[str, list[str]] = field(default_factory=dict)  # per-model prompts (other language)
    negative: str = ""
    canvas: str = "vqgan"  # vqgan | pixels (Fourier) | pyramid (multi-resolution) | plain (the paper's noise image)
    vqgan: str = "vqgan"
    steps: int | None = None  # None: the canvas's default (100 for CLIP alone on the VQGAN in fp32, else 150)
    size: int = 128
    seed: int = 0
    lr: float | None = None  # None: the canvas's default
    schedule: str | None = None  # constant | cosine (decay to 0.1 x lr); None: the canvas's default
    warmup: float | None = None  # share of the steps the lr ramps up over
    until_plateau: bool = False  # end early once the loss stops improving (the step is in the metadata)
    cutn_start: int | None = None  # cutouts at the first step, rising to cutn by mid-run (None: cutn throughout)
    cutn: int = 16  # every eval figure is taken at 16; 32 costs ~1.5x the wall time (README, Speed)
    cut_pow: float = 1.0
    augmentations: tuple[str, ...] = AUGMENTATIONS
    # Whole-image transforms before the cutouts, priors and blur: None = the canvas's default.
    pad: int | None = None  # grey border (px) the image may move into
    jitter: int | None = None  # random shift of the whole image (px)
    scale_min: float | None = None  # random scale of the whole image, from ...
    scale_max: float | None = None  # ... to
    rotate: float | None = None  # random rotation of the whole image (degrees, either way)
    mean_weight: float | None = None  # share of the loss on the mean cutout embedding (0..1)
    grey_weight: float | None = None  # L2 pull of the pixels towards grey
    tv_weight: float | None = None  # total-variation smoothness prior
    blur: float | None = None  # px of blur the encoders see at the start, fading out by mid-run
    loss: str = "spherical"
    init_image: str | None = None
    image_prompts: list[str] = field(default_factory=list)
    image_prompt_weight: float = 1.0
    neuron: Neuron | None = None
    share_init: bool = True  # every image starts from the same canvas: one style across a sequence
    preview_every: int = 10
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU | fp32 | bf16
    brivl_text_len: int | None = None  # BriVL's text length in tokens; None: 32, as the official example.py

    def validated(self) -> "ImagineSettings":
        """Check every field a user can get wrong; return a copy with defaults filled in."""
        if not self.prompts and self.neuron is None and not self.image_prompts:
            raise UserError("the prompt is empty: type some text, e.g. 'snowy mountains at night'")
        if len(self.prompts) > MAX_BATCH:
            raise UserError(f"{len(self.prompts)} prompts in one run: at most {MAX_BATCH}")
        if self.canvas not in CANVASES:
            raise UserError(f"unknown canvas '{self.canvas}': choose one of {', '.join(CANVASES)}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise UserError(f"precision must be auto, fp32 or bf16, got {self.precision}")
        models = self.models or (["brivl"] if any(map(reads_chinese, self.prompts)) else ["clip"])
        defaults = default_settings(self.canvas, models, runs_in_bf16(pick_device(self.device), self.precision))
        filled = {k: v if getattr(self, k) is None else getattr(self, k) for k, v in defaults.items()}
        for name, value, low, high in [("steps", filled["steps"], 1, 100_000), ("size", self.size, 16, 2048),
                                       ("cutn", self.cutn, 1, 512), ("preview_every", self.preview_every, 1, 10_000)]:
            if not isinstance(value, int) or not low <= value <= high:
                raise UserError(f"{name} must be a whole number from {low} to {high}, got {value}")
        if self.brivl_text_len is not None and (not isinstance(self.brivl_text_len, int) or self.brivl_text_len < 2):
            raise UserError(f"BriVL text length must be a whole number of tokens from 2, got {self.brivl_text_len}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed < 2**63:
            raise UserError(f"seed must be a whole number from 0 to 2^63 - 1, got {self.seed}")
        lr = filled["lr"]
        if not 0 < lr <= 10:
            raise UserError(f"lr must be above 0 and at most 10, got {lr}")
        for name, low, high in [("pad", 0, 256), ("jitter", 0, 256), ("scale_min", 0.1, 4), ("scale_max", 0.1, 4),
                                ("rotate", 0, 180), ("mean_weight", 0, 1), ("grey_weight", 0, 1000),
                                ("tv_weight", 0, 1000), ("blur", 0, 64)]:
            value = filled[name]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
                raise UserError(f"{name.replace('_', ' ')} must be a number from {low} to {high}, got {value}")
        if self.cutn_start is not None and (not isinstance(self.cutn_start, int) or not 1 <= self.cutn_start <= self.cutn):
            raise UserError(f"cutn start must be a whole number from 1 to cutn ({self.cutn}), got {self.cutn_start}")
        if filled["schedule"] not in SCHEDULES:
            raise UserError(f"unknown schedule '{filled['schedule']}': choose one of {', '.join(SCHEDULES)}")
        if not isinstance(filled["warmup"], (int, float)) or not 0 <= filled["warmup"] < 1:
            raise UserError(f"warm-up must be a share of the steps from 0 to below 1, got {filled['warmup']}")
        if filled["scale_min"] > filled["scale_max"]:
            raise UserError(f"scale min ({filled['scale_min']}) is above scale max ({filled['scale_max']})")
        if not 0.1 <= self.cut_pow <= 10:
            raise UserError(f"cut power must be from 0.1 to 10, got {self.cut_pow}")
        unknown = set(self.augmentations) - set(AUGMENTATIONS)
        if unknown:
            raise UserError(f"unknown augmentation {sorted(unknown)[0]}: choose from {', '.join(AUGMENTATIONS)}")
        for model, prompts in self.model_prompts.items():
            if model not in models:
                raise UserError(f"prompts given for '{model}', which this run does not use (it runs "
                                f"{', '.join(models)}): add the model or drop its prompts")
            if len(prompts) != len(self.prompts):
                raise UserError(f"{len(prompts)} prompts for {model} but {len(self.prompts)} images")
        for text in [*self.prompts, *(t for texts in self.model_prompts.values() for t in texts)]:
            parse_prompt(text)  # the syntax, before any model loads (the CLI, the studio, a batch job's check)
        parse_prompt(self.negative, allow_empty=True)
        return replace(self, models=list(models), augmentations=tuple(self.augmentations), **filled)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device '{name}': use auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("device cuda was asked for but no CUDA GPU is available: use --device cpu")
    return device


@dataclass
class Result:
    images: torch.Tensor  # (B, 3, H, W) in [0, 1], on CPU
    similarity: dict[str, list[dict[str, float]]]  # model -> per image {target label: cosine}
    tokens: list | None  # VQGAN token grids (B, h, w) as nested lists, else None
    metadata: list[dict]  # per image: everything that reproduces it, plus its final scores
    steps: int
    seconds: float
    stopped: bool


class Run:
    """One imagination run. Construction loads and validates; iteration optimises."""

    def __init__(self, settings: ImagineSettings):
        self.settings = s = settings.validated()
        keep_freed_memory()  # about 1.1x a CPU step: see imagination/allocator.py
        self.device = pick_device(s.device)
        self.encoders = {name: self._load_encoder(name) for name in s.models}
        batch = max(len(s.prompts), 1)
        negatives = parse_prompt(s.negative, allow_empty=True)
        image_targets = [(f"image:{p}", load_image(p), s.image_prompt_weight) for p in s.image_prompts]
        targets = []
        for name, encoder in self.encoders.items():
            texts = s.model_prompts.get(name, s.prompts)
            per_image = [parse_prompt(t) for t in texts] or [[]]
            if any(per_image) or negatives or image_targets:
                targets.append(Targets.from_prompts(encoder, per_image, negatives, image_targets))
        channels = []
        if s.neuron is not None:
            encoder = self.encoders.get(s.neuron.model) or self._load_encoder(s.neuron.model)
            channels.append(ChannelTarget(encoder, s.neuron.layer, s.neuron.channel, s.neuron.weight))
        priors = Priors(tv=s.tv_weight, grey=s.grey_weight, mean=s.mean_weight)
        self.objective = Objective(targets, channels, priors, s.loss)
        self.canvas = self._make_canvas(batch)
        jitter = ImageJitter(s.pad, s.jitter, s.scale_min, s.scale_max, s.rotate)
        self.cutouts = Cutouts(self.objective.cut_size, s.cutn, s.cut_pow, s.augmentations,
                               generator=torch.Generator(self.device).manual_seed(s.seed + 1), jitter=jitter)
        self.memory_estimate = check_fits(self.canvas, self.objective, self.cutouts, self.device, size=s.size,
                                          cutn=s.cutn, batch=batch)  # refuses before the first step, not during it
        self._stop = False
        self.result: Result | None = None

    def _load_encoder(self, name: str):
        if registry.resolve(name).kind == "vqgan":
            raise UserError(f"'{name}' is a VQGAN, not an image-text model: use it with --vqgan")
        return registry.load(name, str(self.device), max_text_len=self.settings.brivl_text_len)

    def _make_canvas(self, batch: int):
        s = self.settings
        generator = torch.Generator().manual_seed(s.seed)
        init = load_image(s.init_image, s.size) if s.init_image else None
        if s.canvas == "vqgan":
            from imagination.canvases.vqgan import VQGANCanvas

            if registry.resolve(s.vqgan).kind != "vqgan":
                raise UserError(f"'{s.vqgan}' is not a VQGAN: choose one of {', '.join(registry.FAMILIES['vqgan'])}")
            vqgan = registry.load(s.vqgan, str(self.device))  # the canvas holds the shared instance
            init_images = init[None].expand(batch, -1, -1, -1) if init is not None else None
            canvas = VQGANCanvas(vqgan, batch, s.size, generator=generator, init_images=init_images)
        else:
            canvas = PIXEL_CANVASES[s.canvas](batch, s.size, generator=generator)
            if init is not None:
                for index in range(batch):
                    canvas.set_image(index, init)
        if s.share_init and init is None:
            canvas.share_first()
        return canvas.to(self.device)

    def stop(self) -> None:
        """Ask the run to end after the current step; the images so far are kept."""
        self._stop = True

    def __iter__(self):
        s = self.settings
        try:
            for event in optimise(self.canvas, self.objective, self.cutouts, steps=s.steps, lr=s.lr,
                                  preview_every=s.preview_every, precision=s.precision, blur_sigma=s.blur,
                                  schedule=Schedule(s.schedule, s.warmup),
                                  cutout_ramp=CutoutRamp(s.cutn_start) if s.cutn_start else None,
                                  plateau=Plateau() if s.until_plateau else None,
                                  should_stop=lambda: self._stop):
                if event.done:
                    self.result = self._finish(event)
                yield event
        finally:
            self.objective.close()

    def _finish(self, event: Progress) -> Result:
        images = event.images
        similarity = {}
        with torch.no_grad():
            for t in self.objective.targets:
                scores = t.encoder.encode_image(images.to(self.device)) @ t.embeddings.T  # (B, P)
                similarity[t.encoder.name] = [dict(zip(t.labels, row)) for row in scores.tolist()]
        tokens = self.canvas.tokens().tolist() if hasattr(self.canvas, "tokens") else None
        record = self.describe()
        record.update(steps_done=event.step, stopped=event.stopped, plateaued=event.plateaued, diverged=event.diverged,
                      seconds=round(event.elapsed, 2))
        metadata = []
        for b in range(images.shape[0]):
            item = dict(record, image_index=b)
            if self.settings.prompts:
                item["prompt"] = self.settings.prompts[b]
            item["similarity"] = {m: {k: round(v, 4) for k, v in rows[b].items()} for m, rows in similarity.items()}
            metadata.append(item)
        return Result(images, similarity, tokens, metadata, event.step, event.elapsed, event.stopped)

    def describe(self) -> dict:
        """The settings with every default and model name resolved, plus the library version."""
        record = asdict(self.settings)
        record["models"] = [e.name for e in self.encoders.values()]
        if self.settings.canvas == "vqgan":
            record["vqgan"] = registry.resolve(self.settings.vqgan).name
        record["cut_size"] = self.objective.cut_size
        record["device"] = str(self.device)
        record["version"] = imagination.__version__
        record["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        return record


def score(images: torch.Tensor, texts: list[str], model: str, device: str = "cpu",
          max_text_len: int | None = None) -> list[list[float]]:
    """Cosine similarity of each image (B, 3, H, W) in [0, 1] to each text: (B, N) nested lists
    (max_text_len: BriVL's text length, see `registry.load`)."""
    texts = [t.strip() for t in texts]
    if not texts or not all(texts):
        raise UserError("give at least one non-empty text to score against")
    if registry.resolve(model).kind == "vqgan":
        raise UserError(f"'{model}' is a VQGAN and cannot score text: choose clip or brivl")
    encoder = registry.load(model, device, max_text_len=max_text_len)
    return encoder.similarity(images.to(device), texts).tolist()
