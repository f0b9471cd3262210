"""VQGAN canvas: the image is a grid of codebook tokens, rendered by a frozen VQGAN decoder.

The classic VQGAN+CLIP parameterisation: a continuous latent grid is optimised, snapped to the
nearest codebook entry in the forward pass (straight-through gradient) and decoded. Images stay
on the VQGAN's manifold of natural-looking textures, unlike raw pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from imagination.canvases.base import Canvas
from imagination.errors import UserError
from imagination.models.vqgan import VQGAN


class VQGANCanvas(Canvas):
    """`batch` images of side `size`, each a (size/f)^2 grid of VQGAN tokens.

    The trainable parameter is `latent` (batch, embed_dim, size/f, size/f), created on the VQGAN's
    device. The frozen VQGAN is a submodule so `canvas.to(device)` moves it along (it is the
    registry's shared instance: load it on the target device to avoid moving it); `train()` never
    switches it out of eval mode.
    """

    kind = "vqgan"

    def __init__(
        self,
        vqgan: VQGAN,
        batch: int,
        size: int,
        generator: torch.Generator | None = None,
        init_images: torch.Tensor | None = None,
        clamp: bool = True,
    ):
        super().__init__(batch, size)
        self.factor = f = vqgan.factor  # pixels per token side
        if size <= 0 or size % f:
            lo = max(size // f * f, f)  # the nearest multiples around size
            raise UserError(
                f"size {size} cannot be tiled by this VQGAN: use a multiple of {f}, e.g. {lo} or {lo + f}"
            )
        self.vqgan = vqgan
        self.clamp = clamp
        self.tokens_side = size // f  # tokens per image side
        codebook = vqgan.codebook.detach()  # (N, C)
        # The classic notebook keeps z inside the codebook's per-channel range, so the latent
        # never drifts where every step snaps to the same far-away token and learning stalls.
        self.register_buffer("z_min", codebook.min(0).values.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("z_max", codebook.max(0).values.view(1, -1, 1, 1), persistent=False)
        if init_images is None:
            latent = self._random_latent(generator)
        else:
            latent = self._encode(init_images)
        self.latent = nn.Parameter(latent)  # (batch, embed_dim, h, w)

    def _random_latent(self, generator: torch.Generator | None) -> torch.Tensor:
        """Uniformly random tokens' codebook vectors, as the classic notebook starts."""
        side, n = self.tokens_side, self.vqgan.n_embed
        rng_device = generator.device if generator is not None else "cpu"
        tokens = torch.randint(n, (self.batch, side, side), generator=generator, device=rng_device)
        return self.vqgan.embed_indices(tokens.to(self.vqgan.device)).detach().clone()

    @torch.no_grad()
    def _encode(self, images: torch.Tensor) -> torch.Tensor:
        """(batch or 1, 3, H, W) in [0, 1] -> their quantised latents, resized to `size` first."""
        if images.dim() == 3:
            images = images[None]
        if images.shape[0] not in (1, self.batch) or images.shape[1] != 3:
            raise UserError(
                f"init images must be 1 or {self.batch} RGB images, got a tensor of shape {tuple(images.shape)}"
            )
        images = images.to(self.vqgan.device, torch.float32)
        if images.shape[-2:] != (self.size, self.size):
            images = F.interpolate(images, size=(self.size, self.size), mode="bilinear", antialias=True)
        z_q, _ = self.vqgan.quantize(self.vqgan.encode(images.clamp(0, 1)))
        return z_q.expand(self.batch, -1, -1, -1).clone()

    def _current_latent(self) -> torch.Tensor:
        if self.clamp:  # in place, like the notebook's post-step clamp (one step later, same effect)
            with torch.no_grad():
                self.latent.data.clamp_(min=self.z_min, max=self.z_max)
        return self.latent

    def forward(self) -> torch.Tensor:
        """-> (batch, 3, size, size) in [0, 1]; gradients reach `latent` through the tokens."""
        z_q, _ = self.vqgan.quantize(self._current_latent())
        return self.vqgan.decode(z_q)

    @torch.no_grad()
    def tokens(self) -> torch.Tensor:
        """Current token indices (batch, size/f, size/f): what `forward()` renders."""
        return self.vqgan.quantize(self._current_latent())[1]

    @torch.no_grad()
    def set_latent(self, index: int, latent: torch.Tensor) -> None:
        """Start image `index` from another latent (embed_dim, h, w), e.g. a previous poem line's."""
        self.latent[index].copy_(latent.reshape(self.latent.shape[1:]))

    def copy_from(self, source: int, target: int) -> None:
        """Start image `target` from image `source`'s current latent."""
        self.set_latent(target, self.latent[source])

    @torch.no_grad()
    def set_image(self, index: int, image: torch.Tensor) -> None:
        """Start image `index` from a picture (3, H, W) in [0, 1] (init image, previous poem line)."""
        self.latent[index] = self._encode(image[None])[0]

    @torch.no_grad()
    def share_first(self) -> None:
        """Every image starts from image 0's latent (the base version would also hit VQGAN weights
        whose first dimension happens to equal the batch)."""
        self.latent[1:] = self.latent[:1].clone()

    def train(self, mode: bool = True) -> "VQGANCanvas":
        super().train(mode)
        self.vqgan.eval()  # frozen decoder: no train-mode behaviour, whoever calls .train()
        return self

    def settings(self) -> dict:
        return {**super().settings(), "vqgan": self.vqgan.name, "tokens": self.tokens_side, "clamp": self.clamp}
