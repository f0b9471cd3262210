"""What every benchmark case shares: the run configuration, the case record, the models and canvases
both loops start from, the fixed scorer, and how each loop is stepped."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable

import torch

from bench import models
from bench.harness import CaseResult, Check
from bench.reference import ReferenceRun
from imagination.augment import Cutouts
from imagination.loop import optimise
from imagination.objectives import Objective, Targets, WeightedText

PROMPT = "a lighthouse on a cliff at sunset"
POEM = ["snowy mountains under the moon", "a lone boat on a calm lake", "pine trees on a misty hill",
        "a red sun setting over the sea", "a small village by the river", "birds flying across the sky",
        "peach blossoms in spring", "a stone bridge over a stream"]
PROMPT_ZH = "海边的灯塔和落日"
LR = {"vqgan": 0.1, "pixels": 0.05}  # the classic notebook's constant lr (ours for pixels); both loops use it


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
def clip_model(cfg: Config):
    return models.clip(cfg.kind, cfg.device)


def vqgan_model(cfg: Config):
    return models.vqgan(cfg.kind, cfg.device)


def size_for(vqgan, size: int) -> int:
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


def similarity_check(result: CaseResult, start: float, ours: str, ref: str, label: str, steps: int) -> None:
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
