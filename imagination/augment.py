"""Random cutouts and augmentations, built as one batched warp per step with `kornia`.

The encoder must agree with the prompt on many random views of the image, not just one, or the
optimisation finds adversarial pixel patterns instead of content. The classic VQGAN+CLIP notebook
builds its ~32 cutouts one by one in a Python loop and then augments them; here every cutout's crop,
flip, small affine and perspective jitter are composed into a single 3x3 homography, and one
`kornia.geometry.warp_perspective` call samples all B x cutn views at once.

All randomness comes from an explicit `torch.Generator`, so a run is reproducible from its seed
(kornia's augmentation classes draw from torch's global RNG, which a multi-threaded app cannot own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import kornia
import torch

AUGMENTATIONS = ("flip", "affine", "perspective", "noise")


@dataclass
class Cutouts:
    """Make `cutn` augmented square views of side `cut_size` from each image of a batch.

    cut_pow > 1 favours small cutouts (details), < 1 favours large ones (composition).
    """

    cut_size: int
    cutn: int = 32
    cut_pow: float = 1.0
    augmentations: tuple[str, ...] = AUGMENTATIONS
    min_fraction: float = 0.25  # smallest cutout side, as a fraction of the image side
    generator: torch.Generator | None = None

    def __post_init__(self):
        unknown = set(self.augmentations) - set(AUGMENTATIONS)
        if unknown:
            raise ValueError(f"unknown augmentation(s) {sorted(unknown)}; known: {AUGMENTATIONS}")

    @property
    def device(self) -> torch.device:
        # Random numbers are drawn where the generator lives: no host-to-device copy inside a step.
        return self.generator.device if self.generator is not None else torch.device("cpu")

    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator, device=self.device)

    def homographies(self, batch: int, side: int) -> torch.Tensor:
        """(batch*cutn, 3, 3) homographies from source-image pixels to cutout pixels.

        Built as four corner correspondences: cutout box, corner jitter, rotation/scale, then flip.
        """
        n, s = batch * self.cutn, self.cut_size
        lo = self.min_fraction
        sizes = side * (lo + (1 - lo) * self._rand(n) ** self.cut_pow)  # (n,) cutout sides in px
        x0 = self._rand(n) * (side - sizes)
        y0 = self._rand(n) * (side - sizes)
        # Corners of each cutout in the source image, clockwise from top-left.            (n, 4, 2)
        unit = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], device=self.device)
        src = torch.stack([x0, y0], -1)[:, None, :] + unit[None] * (sizes - 1)[:, None, None]
        if "perspective" in self.augmentations:  # jitter corners by up to 10% of the cutout
            src = src + (self._rand(n, 4, 2) - 0.5) * 0.2 * sizes[:, None, None]
        if "affine" in self.augmentations:  # rotate up to 15 degrees and rescale 0.9-1.1 about the centre
            angle = (self._rand(n) - 0.5) * math.radians(30)
            scale = 0.9 + 0.2 * self._rand(n)
            cos, sin = angle.cos() * scale, angle.sin() * scale
            rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
            centre = src.mean(1, keepdim=True)
            src = (src - centre) @ rot.transpose(1, 2) + centre
        dst = unit[None] * (s - 1)
        if "flip" in self.augmentations:  # mirror half the cutouts left-right
            flip = self._rand(n) < 0.5
            dst = torch.where(flip[:, None, None], dst[:, [1, 0, 3, 2]], dst)
        return kornia.geometry.transform.get_perspective_transform(src, dst.expand(n, 4, 2))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B*cutn, 3, s, s), image-major: rows b*cutn..(b+1)*cutn-1 are image b."""
        batch, _, height, width = images.shape
        matrices = self.homographies(batch, min(height, width)).to(images)
        sources = images.repeat_interleave(self.cutn, dim=0)  # (B*cutn, 3, H, W)
        views = kornia.geometry.transform.warp_perspective(
            sources, matrices, (self.cut_size, self.cut_size), mode="bilinear",
            padding_mode="reflection", align_corners=True,
        )
        if "noise" in self.augmentations:  # per-cutout noise level in [0, 0.1)
            level = (self._rand(views.shape[0]) * 0.1).to(views)[:, None, None, None]
            noise = torch.randn(views.shape, generator=self.generator, device=self.device).to(views)
            views = views + level * noise
        return views
