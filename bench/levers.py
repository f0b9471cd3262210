"""Prototypes of speed levers that would need a library change, built here without touching
`imagination/`, so the benchmark can measure them next to the library as it is.

Each is a drop-in for one library object, used only by the variants that name it:
- `AutocastEncoder`: bf16 autocast around an encoder's image tower only (the canvas, the cutouts
  and the loss stay fp32), unlike `optimise(precision="bf16")` which autocasts the whole step.
- `channels_last_copy`: a VQGAN / CNN copy with NHWC weights (oneDNN's and cuDNN's preferred layout).
- `decoder_activation(fn)`: taming's module-level `nonlinearity` set to `fn` while the block runs:
  `taming_swish` (its own `x * sigmoid(x)`, three kernels forward, more backward) or `F.silu` (one
  kernel, same function; the library installs it at import, so a baseline must ask for the swish).
- `compiled_decoder_copy`, `CompiledEncoder`: a VQGAN copy whose decoder is `torch.compile`d, an
  encoder whose image tower is.
- `per_image_roi_pool`: BriVL's image tower with the official per-image pooling loop in place of
  the library's batched `roi_pool` (the "before" of that optimisation).
- `RecomputedTargets`: text embeddings recomputed every step (what the library avoids).
"""

from __future__ import annotations

import contextlib
import copy

import torch

from imagination.models.base import Encoder
from imagination.objectives import Targets


class AutocastEncoder(Encoder):
    """Shares `inner`'s weights; its image tower runs under autocast(dtype), its text tower as is."""

    def __init__(self, inner: Encoder, dtype: torch.dtype = torch.bfloat16):
        super().__init__()
        self.inner = inner  # a submodule, so .device and .parameters() work
        self.dtype = dtype
        self.name, self.languages, self.input_size = inner.name, inner.languages, inner.input_size
        self.mean, self.std, self.embed_dim = inner.mean, inner.std, inner.embed_dim

    def _embed_text(self, texts):
        return self.inner._embed_text(texts)

    def _embed_image(self, pixels):
        with torch.autocast(pixels.device.type, dtype=self.dtype):
            return self.inner._embed_image(pixels)


class CompiledEncoder(AutocastEncoder):
    """Shares `inner`'s weights; its image tower runs through `torch.compile` (under the loop's autocast)."""

    def __init__(self, inner: Encoder, **options):
        super().__init__(inner)
        self._compiled = torch.compile(inner._embed_image, **options)

    def _embed_image(self, pixels):
        return self._compiled(pixels)


def channels_last_copy(module: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(module).to(memory_format=torch.channels_last)


def compiled_decoder_copy(vqgan, **options):
    twin = copy.deepcopy(vqgan)
    twin.decoder = torch.compile(twin.decoder, **options)
    return twin


@contextlib.contextmanager
def _swapped(module, name: str, value):
    """Set `module.name` to `value` while the block runs (both patched names are looked up at call time)."""
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)


def taming_swish(x: torch.Tensor) -> torch.Tensor:
    """taming's own `nonlinearity`, as released."""
    return x * torch.sigmoid(x)


def decoder_activation(fn):
    import taming.modules.diffusionmodules.model as taming_model

    return _swapped(taming_model, "nonlinearity", fn)


def per_image_roi_pool():
    import imagination.models.brivl as brivl

    return _swapped(brivl, "roi_pool", brivl.roi_pool_per_image_reference)


class RecomputedTargets(Targets):
    """Re-embeds its texts at every loss call: the cost the library's once-per-run embedding avoids."""

    def loss(self, image_embeddings, kind, mean_weight=0.0):
        self.embeddings = self.encoder.encode_text(self.labels)
        return super().loss(image_embeddings, kind, mean_weight)
