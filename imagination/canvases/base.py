"""What every canvas (image parameterisation) offers the loop.

A canvas owns the tensors being optimised and renders them as a batch of images in [0, 1]. The
loop only calls `forward()`; `settings()` feeds the reproducibility record in the PNG metadata.
"""

from __future__ import annotations

import torch
from torch import nn


class Canvas(nn.Module):
    """A batch of `batch` square images of side `size`, rendered from trainable parameters."""

    kind: str = "canvas"

    def __init__(self, batch: int, size: int):
        super().__init__()
        self.batch = batch
        self.size = size

    def forward(self) -> torch.Tensor:
        """-> (batch, 3, size, size) in [0, 1], differentiable w.r.t. the canvas parameters."""
        raise NotImplementedError

    def settings(self) -> dict:
        return {"canvas": self.kind, "size": self.size}

    @torch.no_grad()
    def share_first(self) -> None:
        """Give every image image 0's starting point: a sequence then shares one initial canvas
        (with a shared seed, that is what keeps a poem's images in one style)."""
        for parameter in self.parameters():  # frozen submodules (a VQGAN decoder) are never touched
            if parameter.requires_grad and parameter.dim() and parameter.shape[0] == self.batch:
                parameter[1:] = parameter[:1].clone()
