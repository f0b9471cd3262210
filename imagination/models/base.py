"""The one interface every frozen image-text encoder offers to the rest of the library.

Canvases, objectives and the loop only ever see an `Encoder`: a text goes in as a string, an image
as a differentiable tensor in [0, 1], and both come out as L2-normalised embeddings in one shared
space. How a model tokenises, resizes or normalises is its own business.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class Encoder(nn.Module):
    """A frozen two-tower image-text model.

    Subclasses set the attributes below in `__init__`, implement `_embed_text` and
    `_embed_image`, and call `self.freeze()` once their weights are loaded.
    """

    name: str = "encoder"
    languages: tuple[str, ...] = ("en",)  # ISO codes of the languages its text tower reads
    input_size: int = 224  # native square side the image tower was trained at
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    embed_dim: int = 0

    def freeze(self) -> "Encoder":
        """Eval mode and no parameter gradients: imagination changes the image, never the model."""
        self.eval()
        self.requires_grad_(False)
        return self

    def train(self, mode: bool = True) -> "Encoder":
        # Dropout/BatchNorm must never switch to training behaviour, whoever calls .train().
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """(N,) strings -> (N, D) unit vectors. Computed once per run, never per step."""
        if isinstance(texts, str):
            texts = [texts]
        return F.normalize(self._embed_text(list(texts)).float(), dim=-1)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1], differentiable -> (B, D) unit vectors.

        Images of another size are resized (bilinear, no antialias: the same op the reference
        code applies to tensors) so callers may pass any size; cutouts are usually already
        `input_size`.
        """
        if images.shape[-2:] != (self.input_size, self.input_size):
            images = F.interpolate(
                images, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        mean = images.new_tensor(self.mean).view(1, 3, 1, 1)
        std = images.new_tensor(self.std).view(1, 3, 1, 1)
        return F.normalize(self._embed_image((images - mean) / std).float(), dim=-1)

    def similarity(self, images: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        """(B, N) cosine similarities, for scoring finished images."""
        with torch.no_grad():
            return self.encode_image(images) @ self.encode_text(texts).T

    def neuron_layers(self) -> dict[str, int]:
        """Image-tower layers whose channels can be visualised: {module name: channel count}."""
        return {}

    # --- to implement -------------------------------------------------------------------------
    def _embed_text(self, texts: list[str]) -> torch.Tensor:
        raise NotImplementedError

    def _embed_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised pixels at input_size -> (B, D) unnormalised embeddings."""
        raise NotImplementedError
