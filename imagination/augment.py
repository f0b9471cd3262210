"""Random cutouts and augmentations, built as one batched warp per step with `kornia`.

The encoder must agree with the prompt on many random views of the image, not just one, or the
optimisation finds adversarial pixel patterns instead of content. The classic VQGAN+CLIP notebook
builds its ~32 cutouts one by one in a Python loop and then augments them; here every cutout's crop,
flip, small affine and perspective jitter are composed into a single 3x3 homography, and one
`kornia.geometry.warp_perspective` call samples all B x cutn views at once.

Before the cutouts, feature visualisation moves the *whole* image a little every step (lucid's
`standard_transforms`: pad, jitter, scale, rotate), so no pattern can rely on sitting at an exact
pixel position or scale: `ImageJitter` draws one such similarity transform per image per step, and
it is composed into the same homographies, so it costs nothing beyond the cutouts' own warp.

All randomness comes from an explicit `torch.Generator`, so a run is reproducible from its seed
(kornia's augmentation classes draw from torch's global RNG, which a multi-threaded app cannot own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import kornia
import torch

AUGMENTATIONS = ("flip", "affine", "perspective", "noise")
GREY = 0.5  # what shows where a view reaches past a padded image's edge


@dataclass(frozen=True)
class ImageJitter:
    """One random similarity transform per image per step, applied before the cutouts are cut.

    The image is placed in a grey frame `pad` px wider on each side, moved by up to `jitter` px,
    scaled by a factor in [scale_min, scale_max] and rotated by up to `rotate` degrees about its
    centre; cutouts are then cut from that frame. All zeros: off (the cutouts see the image as it is).
    """

    pad: int = 0
    jitter: int = 0
    scale_min: float = 1.0
    scale_max: float = 1.0
    rotate: float = 0.0

    @property
    def active(self) -> bool:
        return bool(self.pad or self.jitter or self.rotate or self.scale_min != 1 or self.scale_max != 1)

    def to_image(self, points: torch.Tensor, side: int, rand) -> torch.Tensor:
        """Map (batch, n, 2) points of each image's transformed frame back to its pixels."""
        batch = points.shape[0]
        centre = (side - 1) / 2
        shift = (rand(batch, 1, 2) * 2 - 1) * self.jitter
        scale = self.scale_min + (self.scale_max - self.scale_min) * rand(batch)
        angle = (rand(batch) * 2 - 1) * math.radians(self.rotate)
        cos, sin = angle.cos() / scale, angle.sin() / scale  # the inverse rotation and scale
        inverse = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)  # (batch, 2, 2)
        return (points - centre - shift) @ inverse.transpose(1, 2) + centre


@dataclass
class Cutouts:
    """Make `cutn` augmented square views of side `cut_size` from each image of a batch.

    cut_pow > 1 favours small cutouts (details), < 1 favours large ones (composition).
    """

    cut_size: int
    cutn: int = 16
    cut_pow: float = 1.0
    augmentations: tuple[str, ...] = AUGMENTATIONS
    min_fraction: float = 0.25  # smallest cutout side, as a fraction of the image side
    generator: torch.Generator | None = None
    jitter: ImageJitter = ImageJitter()

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

        Built as four corner correspondences: cutout box, corner jitter, rotation/scale, then flip;
        with an active `jitter`, the box lies in each image's padded, moved frame and its corners are
        mapped back through that image's transform.
        """
        n, s = batch * self.cutn, self.cut_size
        lo, pad = self.min_fraction, self.jitter.pad
        frame = side + 2 * pad
        sizes = frame * (lo + (1 - lo) * self._rand(n) ** self.cut_pow)  # (n,) cutout sides in px
        x0 = self._rand(n) * (frame - sizes) - pad
        y0 = self._rand(n) * (frame - sizes) - pad
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
        if self.jitter.active:  # image-major rows: the cutouts of image b share its transform
            src = self.jitter.to_image(src.view(batch, self.cutn * 4, 2), side, self._rand).view(n, 4, 2)
        dst = unit[None] * (s - 1)
        if "flip" in self.augmentations:  # mirror half the cutouts left-right
            flip = self._rand(n) < 0.5
            dst = torch.where(flip[:, None, None], dst[:, [1, 0, 3, 2]], dst)
        return kornia.geometry.transform.get_perspective_transform(src, dst.expand(n, 4, 2))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B*cutn, 3, s, s), image-major: rows b*cutn..(b+1)*cutn-1 are image b."""
        batch, _, height, width = images.shape
        with torch.autocast(images.device.type, enabled=False):  # corner geometry in fp32, always
            matrices = self.homographies(batch, min(height, width)).to(images)
        sources = images.repeat_interleave(self.cutn, dim=0)  # (B*cutn, 3, H, W)
        # A padded frame shows grey past the image's edges (lucid pads with 0.5); otherwise the
        # small overhangs of the perspective/affine jitter are filled by reflection.
        padding = dict(padding_mode="fill", fill_value=images.new_full((3,), GREY)) if self.jitter.pad \
            else dict(padding_mode="reflection")
        views = kornia.geometry.transform.warp_perspective(
            sources, matrices, (self.cut_size, self.cut_size), mode="bilinear", align_corners=True, **padding)
        if "noise" in self.augmentations:  # per-cutout noise level in [0, 0.1)
            level = (self._rand(views.shape[0]) * 0.1).to(views)[:, None, None, None]
            noise = torch.randn(views.shape, generator=self.generator, device=self.device).to(views)
            views = views + level * noise
        return views


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (B, 3, H, W) with standard deviation `sigma` px (none below 0.3 px).

    The loop blurs what the encoders see early in a run and fades it out (`blur` setting): the
    first steps then shape coarse layout, which fine detail refines later (coarse-to-fine).
    """
    if sigma < 0.3:
        return images
    radius = max(1, math.ceil(2 * sigma))
    return kornia.filters.gaussian_blur2d(images, (2 * radius + 1,) * 2, (sigma, sigma), border_type="reflect")
