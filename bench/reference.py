"""The classic VQGAN+CLIP loop, as most repositories copy it, written plainly for comparison.

This follows the structure of Katherine Crowson's notebook and nerdyrodent/VQGAN-CLIP `generate.py`
(written here from their published description, not copied):

- `MakeCutouts`: a Python loop over `cutn` cutouts; each has side `min + (max - min) * rand**cut_pow`,
  a random offset, and is resized with `F.adaptive_avg_pool2d`; then `torch.cat` and kornia's
  augmentation *classes* (each draws its own parameters and warps the whole batch once), then noise.
- `vector_quantize`: distances to every code, argmin, one-hot @ codebook, straight-through gradient.
- `synth`: quantize, `post_quant_conv` + decoder, `(x + 1) / 2`, `clamp_with_grad`.
- the loss: normalise, `encode_image`, `Prompt` (spherical distance, weight sign), summed over prompts.
- Adam at lr 0.1 on z, then z clamped to the codebook's per-channel range after each step.

One image per run: a poem is 8 runs. Text embeddings are computed once, like ours.

`precision="bf16"` runs the decoder, the cutouts and the encoder under bf16 autocast, as ours can,
with the nearest-code search kept in fp32 (as ours keeps it): so a ratio between the two loops can
compare like with like. The notebooks themselves run fp32 (the default here).

Differences from the notebooks, chosen so that only the implementation differs from ours:
- the cutout sides are drawn from [min_fraction * side, side] like `imagination.augment.Cutouts`.
  The notebook uses min = min(side, cut_size), which degenerates to "every cutout is the whole
  image, upsampled" whenever the image is no larger than the encoder input (128 px vs 224 px).
- the perceptor is our frozen encoder's raw image tower (same weights, same attention kernels).
"""

from __future__ import annotations

import contextlib

import kornia.augmentation as K
import torch
import torch.nn.functional as F
from torch import nn


class ReplaceGrad(torch.autograd.Function):
    """Forward x_forward, backward into x_backward (the notebook's straight-through trick)."""

    @staticmethod
    def forward(ctx, x_forward, x_backward):
        ctx.shape = x_backward.shape
        return x_forward

    @staticmethod
    def backward(ctx, grad_in):
        return None, grad_in.sum_to_size(ctx.shape)


replace_grad = ReplaceGrad.apply


class ClampWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, min, max):
        ctx.min, ctx.max = min, max
        ctx.save_for_backward(input)
        return input.clamp(min, max)

    @staticmethod
    def backward(ctx, grad_in):
        (input,) = ctx.saved_tensors
        return grad_in * (grad_in * (input - input.clamp(ctx.min, ctx.max)) >= 0), None, None


clamp_with_grad = ClampWithGrad.apply


def vector_quantize(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(..., C) latents -> nearest codes, straight-through; always fp32, even under autocast."""
    with torch.autocast(x.device.type, enabled=False):
        x, codebook = x.float(), codebook.float()
        d = x.pow(2).sum(dim=-1, keepdim=True) + codebook.pow(2).sum(dim=1) - 2 * x @ codebook.T
        indices = d.argmin(-1)
        x_q = F.one_hot(indices, codebook.shape[0]).to(d.dtype) @ codebook
    return replace_grad(x_q, x)


class MakeCutouts(nn.Module):
    """cutn cutouts one by one, then kornia augmentation classes on the concatenated batch."""

    def __init__(self, cut_size: int, cutn: int, cut_pow: float = 1.0, min_fraction: float | None = 0.25,
                 noise_fac: float = 0.1):
        super().__init__()
        self.cut_size, self.cutn, self.cut_pow = cut_size, cutn, cut_pow
        self.min_fraction, self.noise_fac = min_fraction, noise_fac
        self.augs = nn.Sequential(  # flip, affine (rotate/scale), perspective: the kinds ours composes
            K.RandomHorizontalFlip(p=0.5),
            K.RandomAffine(degrees=15, scale=(0.9, 1.1), p=0.7, padding_mode="reflection"),
            K.RandomPerspective(distortion_scale=0.2, p=0.7),
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        side_y, side_x = input.shape[2:4]
        max_size = min(side_x, side_y)
        if self.min_fraction is None:  # the notebook's rule
            min_size = min(side_x, side_y, self.cut_size)
        else:
            min_size = int(self.min_fraction * max_size)
        cutouts = []
        for _ in range(self.cutn):
            size = int(torch.rand([]) ** self.cut_pow * (max_size - min_size) + min_size)
            offset_x = torch.randint(0, side_x - size + 1, ())
            offset_y = torch.randint(0, side_y - size + 1, ())
            cutout = input[:, :, offset_y:offset_y + size, offset_x:offset_x + size]
            cutouts.append(F.adaptive_avg_pool2d(cutout, self.cut_size))
        batch = self.augs(torch.cat(cutouts, dim=0))
        if self.noise_fac:
            facs = batch.new_empty([batch.shape[0], 1, 1, 1]).uniform_(0, self.noise_fac)
            batch = batch + facs * torch.randn_like(batch)
        return batch


class Prompt(nn.Module):
    def __init__(self, embed: torch.Tensor, weight: float = 1.0, stop: float = float("-inf")):
        super().__init__()
        self.register_buffer("embed", embed)
        self.register_buffer("weight", torch.as_tensor(weight))
        self.register_buffer("stop", torch.as_tensor(stop))

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        input_normed = F.normalize(input.unsqueeze(1), dim=2)
        embed_normed = F.normalize(self.embed.unsqueeze(0), dim=2)
        dists = input_normed.sub(embed_normed).norm(dim=2).div(2).arcsin().pow(2).mul(2)
        dists = dists * self.weight.sign()
        return self.weight.abs() * replace_grad(dists, torch.maximum(dists, self.stop)).mean()


class ReferenceRun:
    """One image, optimised the classic way. `synth` is either VQGAN z -> image or any canvas.

    encoder: an `imagination` Encoder; only its raw image tower (`_embed_image`), its input size and
    its mean/std are used, as the notebook uses `perceptor.encode_image` and `transforms.Normalize`.
    """

    def __init__(self, encoder, text_embeddings: torch.Tensor, *, z: torch.Tensor, vqgan=None, canvas=None,
                 cutn: int = 32, cut_pow: float = 1.0, lr: float = 0.1, recompute_text=None,
                 precision: str = "fp32"):
        self.encoder, self.vqgan, self.canvas = encoder, vqgan, canvas
        self.autocast = (lambda: torch.autocast(z.device.type, dtype=torch.bfloat16)) if precision == "bf16" \
            else contextlib.nullcontext
        self.make_cutouts = MakeCutouts(encoder.input_size, cutn, cut_pow)
        self.mean = torch.tensor(encoder.mean, device=z.device).view(1, 3, 1, 1)
        self.std = torch.tensor(encoder.std, device=z.device).view(1, 3, 1, 1)
        self.prompts = [Prompt(e[None]) for e in text_embeddings]  # (1, D) each, as the notebook
        self.recompute_text = recompute_text
        if canvas is not None:
            (self.param_name,) = [name for name, p in canvas.named_parameters() if p.requires_grad]
        self.z = z.detach().clone().requires_grad_(True)
        self.opt = torch.optim.Adam([self.z], lr=lr)
        if vqgan is not None:
            codebook = vqgan.codebook.detach()
            self.z_min = codebook.min(dim=0).values[None, :, None, None]
            self.z_max = codebook.max(dim=0).values[None, :, None, None]

    def synth(self, z: torch.Tensor) -> torch.Tensor:
        if self.vqgan is None:  # a pixel parameterisation: the canvas renders z in place of its parameter
            return torch.func.functional_call(self.canvas, {self.param_name: z}, ())
        z_q = vector_quantize(z.movedim(1, 3), self.vqgan.codebook).movedim(3, 1)
        return clamp_with_grad(self.vqgan.decoder(self.vqgan.post_quant_conv(z_q)).add(1).div(2), 0, 1)

    def ascend_txt(self) -> list[torch.Tensor]:
        out = self.synth(self.z)
        cutouts = self.make_cutouts(out)
        iii = self.encoder._embed_image((cutouts - self.mean) / self.std).float()  # the loss in fp32
        prompts = self.prompts
        if self.recompute_text is not None:
            prompts = [Prompt(e[None]) for e in self.recompute_text()]
        return [prompt(iii) for prompt in prompts]

    def step(self) -> torch.Tensor:
        self.opt.zero_grad(set_to_none=True)
        with self.autocast():
            loss = sum(self.ascend_txt())
        loss.backward()
        self.opt.step()
        if self.vqgan is not None:
            with torch.no_grad():
                self.z.copy_(self.z.maximum(self.z_min).minimum(self.z_max))
        return loss.detach()

    @torch.no_grad()
    def image(self) -> torch.Tensor:
        return self.synth(self.z)
