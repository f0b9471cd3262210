"""The optimisation loop: Adam on the canvas, the encoders frozen, as a generator of progress events.

It does no I/O and holds no thread-local torch state (grad mode, autocast) across a `yield`:
each step enters its own contexts, because a web server may resume a generator on another thread.
It never calls `.item()` inside a step, so on CUDA a step queues its kernels without waiting for
the GPU; whoever reads a `Progress` value pays for that synchronisation, and only then.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from imagination.augment import Cutouts, blur
from imagination.canvases.base import Canvas
from imagination.objectives import Objective


@dataclass
class Progress:
    """One event per step, plus a final one with `done=True` and the finished images."""

    step: int
    steps: int
    loss: torch.Tensor  # scalar, detached
    similarity: dict[str, torch.Tensor]  # encoder name -> (B, P) mean cutout cosine per image and target
    elapsed: float  # seconds since the first step began
    images: torch.Tensor | None = None  # (B, 3, H, W) on CPU in [0, 1] on preview steps and at the end
    done: bool = False
    stopped: bool = False  # True when the caller stopped the run early
    plateaued: bool = False  # True when the run ended early because it stopped improving
    diverged: bool = False  # True when the loss became NaN/inf: the run ended before that step changed the image

    @property
    def it_per_s(self) -> float:
        return self.step / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(frozen=True)
class Schedule:
    """The learning rate over a run: a linear warm-up over `warmup` of the steps, then either constant
    or a cosine decay to `floor` x lr at the last step.

    A large step early moves the canvas out of its random start quickly; a small one late lets the
    image settle instead of flickering between tokens or textures (see bench/RESULTS.md for what it buys).
    """

    kind: str = "constant"  # constant | cosine
    warmup: float = 0.0  # share of the steps
    floor: float = 0.1

    def factor(self, step: int, steps: int) -> float:
        """lr multiplier at `step` (1-based) of `steps`."""
        ramp = self.warmup * steps
        if step <= ramp:
            return step / ramp
        if self.kind == "constant" or steps <= 1:
            return 1.0
        progress = (step - max(ramp, 1)) / max(steps - max(ramp, 1), 1)  # 0 after the warm-up, 1 at the end
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


@dataclass(frozen=True)
class CutoutRamp:
    """Fewer cutouts early: `start` at the first step, rising linearly to the full count at `until`
    of the run. The first steps only need the rough direction; cheap steps get there sooner."""

    start: int
    until: float = 0.5

    def count(self, step: int, steps: int, full: int) -> int:
        progress = min(1.0, (step - 1) / max(self.until * steps, 1))
        return max(1, round(self.start + (full - self.start) * progress))


class Plateau:
    """Says when a run has stopped improving: the mean loss of the last `window` steps is no lower,
    by at least `min_gain` (relative), than that of the `window` steps before them.

    Fed one loss per step; random cutouts make single steps noisy, hence the window means.
    """

    def __init__(self, window: int = 15, min_gain: float = 0.005, min_steps: int = 30):
        self.window, self.min_gain, self.min_steps = window, min_gain, min_steps
        self.losses: list[float] = []

    def reached(self, loss: float) -> bool:
        self.losses.append(loss)
        n = len(self.losses)
        if n < max(self.min_steps, 2 * self.window):
            return False
        recent = sum(self.losses[-self.window:]) / self.window
        before = sum(self.losses[-2 * self.window:-self.window]) / self.window
        return before - recent < self.min_gain * abs(before)


def cpu_has_bf16_matrix_units() -> bool:
    """AMX tiles (Sapphire Rapids and later): bf16 matmuls/convs there are much faster than fp32."""
    return bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


def autocast_for(device: torch.device, precision: str):
    """bf16 autocast for "bf16", and for "auto" on CUDA and on CPUs with AMX; else full fp32.

    bench/ measured the whole step 1.6x faster in bf16 on an AMX CPU with similarity within the
    stated tolerance. Without AMX it depends on the model: on a Zen 4 CPU (AVX512-BF16) real-size
    CLIP ran 2.2x faster but the small demo models 0.9-1.15x, so "auto" keeps fp32 there and
    `precision="bf16"` is the user's lever (bench/RESULTS.md).
    The nearest-code search and the losses stay fp32 (they cast up explicitly).
    """
    if runs_in_bf16(device, precision):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def runs_in_bf16(device: torch.device, precision: str) -> bool:
    """Whether a run at `precision` ("auto", "fp32" or "bf16") on `device` steps in bf16 autocast."""
    fast = device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16_matrix_units())
    return precision == "bf16" or (precision == "auto" and fast)


def optimise(
    canvas: Canvas,
    objective: Objective,
    cutouts: Cutouts,
    *,
    steps: int,
    lr: float,
    preview_every: int = 10,
    precision: str = "auto",
    blur_sigma: float = 0.0,
    blur_until: float = 0.5,
    schedule: Schedule = Schedule(),
    cutout_ramp: CutoutRamp | None = None,
    plateau: Plateau | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[Progress]:
    """Run `steps` Adam steps; yield after every step (so a caller can stop within one step).

    blur_sigma: the encoders see the images blurred by this many px at the first step, fading
    linearly to none at `blur_until` of the run (the priors and the result are never blurred).
    plateau: end the run early once it says the loss stopped improving (the final event's
    `plateaued` is then True); it reads the loss every step, which waits for the device.
    """
    parameters = [p for p in canvas.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=lr)
    full_cutn = cutouts.cutn
    device = parameters[0].device
    start, step, stopped, plateaued, diverged = time.perf_counter(), 0, False, False, False
    loss, report = torch.zeros(()), {}
    for step in range(1, steps + 1):
        if should_stop is not None and should_stop():
            step, stopped = step - 1, True
            break
        if plateau is not None and step > 1 and plateau.reached(loss.item()):
            step, plateaued = step - 1, True
            break
        for group in optimizer.param_groups:
            group["lr"] = lr * schedule.factor(step, steps)
        if cutout_ramp is not None:
            cutouts.cutn = cutout_ramp.count(step, steps, full_cutn)
        preview = step == 1 or step % preview_every == 0
        sigma = blur_sigma * max(0.0, 1 - (step - 1) / max(blur_until * steps, 1))
        images, loss, report, taken = _step(canvas, objective, cutouts, optimizer, autocast_for(device, precision),
                                            sigma)
        if not taken:  # a non-finite loss: the canvas still holds the last good image
            step, diverged = step - 1, True
            break
        yield Progress(step, steps, loss, report, time.perf_counter() - start,
                       images=images.float().cpu() if preview else None)
    with torch.no_grad():
        final = canvas().float().cpu()
    yield Progress(step, steps, loss, report, time.perf_counter() - start, images=final, done=True,
                   stopped=stopped or diverged, plateaued=plateaued, diverged=diverged)


def _step(canvas, objective, cutouts, optimizer, autocast, sigma) -> tuple[torch.Tensor, torch.Tensor, dict, bool]:
    """One Adam step; skipped (a safety net: weights are checked up front) when the loss is not finite,
    which costs one device sync per step, as reading the loss for the progress bar already does."""
    with torch.enable_grad(), autocast:
        images = canvas()  # (B, 3, H, W)
        loss, report = objective(images, cutouts(blur(images, sigma)))
    taken = bool(torch.isfinite(loss))
    if taken:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return images.detach(), loss.detach(), report, taken
