"""Pixel canvases: the size of one optimiser step, and starting from a picture."""

import numpy as np
import pytest
import torch

from imagination.canvases.pixels import FourierCanvas, PlainCanvas, PyramidCanvas


def _unit_adam_step_rms(canvas, lr: float = 1.0) -> float:
    """RMS change of the canvas's logits after one Adam step of `lr` along a random direction.

    Adam's first step moves every parameter by lr * sign(gradient), so this is the per-step
    pixel change the learning rate stands for.
    """
    before = canvas.logits().detach().clone()
    direction = torch.randn(before.shape, generator=torch.Generator().manual_seed(1))
    optimizer = torch.optim.Adam(canvas.parameters(), lr=lr)
    (canvas.logits() * direction).sum().backward()
    optimizer.step()
    return (canvas.logits().detach() - before).pow(2).mean().sqrt().item()


def _lucent_unit_step_rms(size: int, seed: int = 0) -> float:
    """The same figure for lucent's `fft_image`, written out from its definition with numpy:
    scale = 1 / max(|f|, 1/size), image = irfft2(scale * spectrum, norm="ortho") / 4."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    scale = 1.0 / np.maximum(np.sqrt(fy**2 + fx**2), 1.0 / size)
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(3, size, size // 2 + 1, 2))
    step = (signs[..., 0] + 1j * signs[..., 1]) * scale
    return float(np.sqrt(np.mean((np.fft.irfft2(step, s=(size, size), norm="ortho") / 4) ** 2)))


@pytest.mark.parametrize("size", [64, 128, 256])
def test_a_fourier_step_moves_pixels_as_much_as_lucents(size):
    ours = _unit_adam_step_rms(FourierCanvas(1, size, generator=torch.Generator().manual_seed(0)))
    lucent = _lucent_unit_step_rms(size)
    # Same order of magnitude at every size: the old `* size / 4` scale was `size` times larger.
    assert 0.5 < ours / lucent < 2, (ours, lucent)
    assert 0.5 < ours < 3  # a unit step moves a logit by about one, whatever the image side


def test_a_pyramid_step_moves_pixels_about_as_much_as_a_fourier_step():
    generator = torch.Generator().manual_seed(0)
    pyramid = _unit_adam_step_rms(PyramidCanvas(1, 128, generator=generator))
    fourier = _unit_adam_step_rms(FourierCanvas(1, 128, generator=generator))
    assert 0.25 < pyramid / fourier < 4, (pyramid, fourier)


def test_pyramid_layers_run_from_4_px_to_the_full_size():
    assert PyramidCanvas(2, 128).sides == [4, 8, 16, 32, 64, 128]
    assert PyramidCanvas(2, 96).sides == [6, 12, 24, 48, 96]


@pytest.mark.parametrize("kind", [FourierCanvas, PyramidCanvas, PlainCanvas])
def test_pixel_canvases_start_from_a_given_picture(kind):
    picture = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(4)) * 0.9 + 0.05
    canvas = kind(2, 32, generator=torch.Generator().manual_seed(0))
    canvas.set_image(1, picture)
    with torch.no_grad():
        images = canvas()
    assert images.shape == (2, 3, 32, 32) and 0 <= images.min() and images.max() <= 1
    assert torch.allclose(images[1], picture, atol=2e-3)
    assert not torch.allclose(images[0], picture, atol=0.1)


def test_fourier_canvas_starts_near_grey():
    with torch.no_grad():
        image = FourierCanvas(1, 128, generator=torch.Generator().manual_seed(0))()
    assert (image - 0.5).abs().max() < 0.1  # lucent's start: a faint 1/f noise around grey
