"""Pixel canvases: Fourier-parameterised pixels (feature-visualisation practice) and plain pixels.

Optimising raw pixels against a CNN/ViT quickly produces high-frequency adversarial noise. The
Fourier canvas optimises a spectrum scaled by 1/f^decay instead, so every Adam step moves low
frequencies as much as high ones, and it decorrelates colours so a step in parameter space is a
step along the natural-image colour axes (Olah et al., "Feature Visualization", Distill 2017;
lucent's `param.fft_image` / `param.color`). The plain canvas is the paper's "noise image".
"""

from __future__ import annotations

import torch

from imagination.canvases.base import Canvas

# Square root of the ImageNet colour covariance (from lucid/lucent), normalised by its largest column norm.
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOR_CORRELATION = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()


class FourierCanvas(Canvas):
    """A batch of images as decorrelated-colour Fourier spectra; sigmoid keeps pixels in [0, 1]."""

    kind = "pixels"

    def __init__(self, batch: int, size: int, generator: torch.Generator | None = None,
                 decay: float = 1.0, init_std: float = 0.01):
        super().__init__(batch, size)
        self.decay = decay
        fy = torch.fft.fftfreq(size)[:, None]  # (H, 1)
        fx = torch.fft.rfftfreq(size)[None, :]  # (1, W//2+1)
        freqs = (fy**2 + fx**2).sqrt()
        scale = 1.0 / freqs.clamp(min=1.0 / size) ** decay  # (H, W//2+1): 1/f, DC capped
        self.register_buffer("scale", scale * size / 4.0, persistent=False)
        shape = (batch, 3, size, size // 2 + 1, 2)  # real and imaginary parts
        self.spectrum = torch.nn.Parameter(torch.randn(shape, generator=generator) * init_std)

    def forward(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.scale  # (B, 3, H, W//2+1)
        image = torch.fft.irfft2(spectrum, s=(self.size, self.size), norm="ortho")  # (B, 3, H, W)
        image = torch.einsum("bchw,dc->bdhw", image, COLOR_CORRELATION.to(image))
        return torch.sigmoid(image)

    def settings(self) -> dict:
        return {**super().settings(), "decay": self.decay}

    @torch.no_grad()
    def set_image(self, index: int, image: torch.Tensor) -> None:
        """Start image `index` from a picture in [0, 1] (init image, or the previous poem line)."""
        logits = torch.logit(image.clamp(1e-3, 1 - 1e-3))  # (3, H, W)
        decorrelated = torch.einsum("chw,cd->dhw", logits, torch.linalg.inv(COLOR_CORRELATION).T)
        spectrum = torch.fft.rfft2(decorrelated, norm="ortho") / self.scale
        self.spectrum[index] = torch.view_as_real(spectrum)


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
