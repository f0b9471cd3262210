"""Pixel canvases: Fourier-parameterised pixels, a multi-resolution pyramid, and plain pixels.

Optimising raw pixels against a CNN/ViT quickly produces high-frequency adversarial noise. The
Fourier canvas optimises a spectrum scaled by 1/f^decay instead, so every Adam step moves low
frequencies as much as high ones, and it decorrelates colours so a step in parameter space is a
step along the natural-image colour axes (Olah et al., "Feature Visualization", Distill 2017;
lucid/lucent's `param.fft_image` / `param.color`). The pyramid canvas sums pixel layers from 4 px
up to the full size (Fort & Whitaker 2025), another way to make coarse structure cheap. The plain
canvas is the paper's "noise image".

All three render "logits" in decorrelated colour space and squash them with a sigmoid, so the
same learning rate means the same thing on each of them: one unit Adam step of every parameter
moves a pixel's logit by an amount of order one (see `tests/test_canvases.py`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from imagination.canvases.base import Canvas

# Square root of the ImageNet colour covariance (from lucid/lucent), normalised by its largest column norm.
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOR_CORRELATION = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()

# lucid's constant: the inverse FFT's output is divided by it ("increasing it seems to reduce saturation").
FOURIER_DAMPING = 4.0


def _to_rgb(logits: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) decorrelated logits -> RGB in [0, 1]."""
    return torch.sigmoid(torch.einsum("bchw,dc->bdhw", logits, COLOR_CORRELATION.to(logits)))


def _to_logits(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) RGB in [0, 1] -> decorrelated logits that `_to_rgb` maps back to it."""
    logits = torch.logit(image.clamp(1e-3, 1 - 1e-3))
    return torch.einsum("chw,cd->dhw", logits, torch.linalg.inv(COLOR_CORRELATION).T)


def fourier_scale(size: int, decay: float = 1.0) -> torch.Tensor:
    """(size, size//2+1) gain of each rfft2 frequency: 1/f^decay, DC capped at `size`, / damping.

    With the orthonormal inverse FFT this is lucent's `fft_image`: a unit change of the DC
    coefficient moves every pixel by 1/damping, a unit change of frequency f by 1/(f*size*damping)
    spread over the image. No factor of the image side: an earlier version multiplied by size/4,
    which made each Adam step `size` times too large (128x at 128 px) and saturated the image.
    """
    fy = torch.fft.fftfreq(size)[:, None]  # cycles per pixel, (H, 1)
    fx = torch.fft.rfftfreq(size)[None, :]  # (1, W//2+1)
    freqs = (fy**2 + fx**2).sqrt()
    return 1.0 / freqs.clamp(min=1.0 / size) ** decay / FOURIER_DAMPING


class FourierCanvas(Canvas):
    """A batch of images as decorrelated-colour Fourier spectra; sigmoid keeps pixels in [0, 1]."""

    kind = "pixels"

    def __init__(self, batch: int, size: int, generator: torch.Generator | None = None,
                 decay: float = 1.0, init_std: float = 0.01):
        super().__init__(batch, size)
        self.decay = decay
        self.register_buffer("scale", fourier_scale(size, decay), persistent=False)
        shape = (batch, 3, size, size // 2 + 1, 2)  # real and imaginary parts
        self.spectrum = torch.nn.Parameter(torch.randn(shape, generator=generator) * init_std)

    def logits(self) -> torch.Tensor:
        """(B, 3, H, W) decorrelated colour logits, before the colour transform and the sigmoid."""
        spectrum = torch.view_as_complex(self.spectrum) * self.scale  # (B, 3, H, W//2+1)
        return torch.fft.irfft2(spectrum, s=(self.size, self.size), norm="ortho")

    def forward(self) -> torch.Tensor:
        return _to_rgb(self.logits())

    def settings(self) -> dict:
        return {**super().settings(), "decay": self.decay}

    @torch.no_grad()
    def set_image(self, index: int, image: torch.Tensor) -> None:
        """Start image `index` from a picture in [0, 1] (init image, or the previous poem line)."""
        spectrum = torch.fft.rfft2(_to_logits(image), norm="ortho") / self.scale
        self.spectrum[index] = torch.view_as_real(spectrum)


class PyramidCanvas(Canvas):
    """The image as a sum of pixel layers at 4, 8, 16 ... size px, each upsampled bilinearly.

    A coarse layer's parameter moves a whole block of the image, so Adam (which moves every
    parameter by about lr) changes coarse structure as readily as fine detail; the layers are
    averaged so a step of all of them moves a pixel's logit by about lr, as on the other canvases.
    """

    kind = "pyramid"

    def __init__(self, batch: int, size: int, generator: torch.Generator | None = None,
                 init_std: float = 0.01, smallest: int = 4):
        super().__init__(batch, size)
        sides, side = [], size
        while side >= smallest:
            sides.insert(0, side)
            side //= 2
        self.sides = sides or [size]
        self.layers = torch.nn.ParameterList(
            torch.nn.Parameter(torch.randn((batch, 3, s, s), generator=generator) * init_std) for s in self.sides)

    def logits(self) -> torch.Tensor:
        """(B, 3, H, W) decorrelated colour logits, before the colour transform and the sigmoid."""
        total = sum(F.interpolate(layer, size=(self.size, self.size), mode="bilinear", align_corners=False)
                    if layer.shape[-1] != self.size else layer for layer in self.layers)
        return total / len(self.layers)

    def forward(self) -> torch.Tensor:
        return _to_rgb(self.logits())

    def settings(self) -> dict:
        return {**super().settings(), "layers": self.sides}

    @torch.no_grad()
    def set_image(self, index: int, image: torch.Tensor) -> None:
        """The picture goes into the finest layer (the others zeroed): renders exactly the picture."""
        for layer in self.layers:
            layer[index] = 0
        self.layers[-1][index] = _to_logits(image) * len(self.layers)


class PlainCanvas(Canvas):
    """Raw pixels behind a sigmoid, started from uniform noise: the paper's "noise image"."""

    kind = "plain"

    def __init__(self, batch: int, size: int, generator: torch.Generator | None = None):
        super().__init__(batch, size)
        noise = torch.rand((batch, 3, size, size), generator=generator).clamp(0.02, 0.98)
        self.logits = torch.nn.Parameter(torch.logit(noise))

    def forward(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)

    @torch.no_grad()
    def set_image(self, index: int, image: torch.Tensor) -> None:
        self.logits[index] = torch.logit(image.clamp(1e-3, 1 - 1e-3))
