"""What the image is optimised towards: weighted text prompts, image prompts, neurons, priors.

A run optimises a batch of B images at once; image b has its own prompt set (one line of a poem,
one member of a prompt family). For each encoder, all distinct target embeddings are stacked into
one (P, D) matrix with a (B, P) weight matrix, so the loss of the whole batch is a couple of matrix
products per step, whatever B is. Text embeddings are computed here, once, never in the loop.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from imagination.errors import UserError
from imagination.models.base import Encoder

LOSSES = ("spherical", "cosine")


@dataclass(frozen=True)
class WeightedText:
    text: str
    weight: float = 1.0


MAX_WEIGHT = 100  # weights are relative; 1e308 summed over a few parts overflows the loss to NaN


def parse_prompt(spec: str, *, allow_empty: bool = False) -> list[WeightedText]:
    """'snowy mountains:1|night:-0.5' -> [WeightedText('snowy mountains', 1.0), ('night', -0.5)].

    A part without ':number' has weight 1. The weight is whatever follows the last ':', so a text
    may itself contain colons only if it also ends with an explicit weight.
    """
    control = next((c for c in spec or "" if unicodedata.category(c) == "Cc"), None)
    if control is not None:
        raise UserError(f"the prompt {spec[:40]!r} contains the control character {control!r}: type plain text")
    parts = [part.strip() for part in (spec or "").split("|")]
    if not any(parts):
        if allow_empty:
            return []
        raise UserError("the prompt is empty: type some text, e.g. 'snowy mountains at night'")
    prompts = []
    for part in parts:
        if not part:
            raise UserError(f"empty part in prompt '{spec}': remove the extra '|'")
        text, weight = part, 1.0
        if ":" in part:
            text, raw = (s.strip() for s in part.rsplit(":", 1))
            try:
                weight = float(raw)
            except ValueError:
                raise UserError(f"weight '{raw}' in '{part}' is not a number (write text:weight, e.g. 'sea:0.5')") from None
            if not math.isfinite(weight) or abs(weight) > MAX_WEIGHT:
                raise UserError(f"weight '{raw}' in '{part}' must be a number from -{MAX_WEIGHT} to {MAX_WEIGHT}")
            if not text:
                raise UserError(f"the part '{part}' has a weight but no text")
        prompts.append(WeightedText(text, weight))
    if not allow_empty and not any(p.weight for p in prompts):
        raise UserError(f"every weight in '{spec}' is 0: nothing to imagine")
    return prompts


def spherical_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared great-circle distance between unit vectors, as in the classic VQGAN+CLIP loop.

    (..., D) x (P, D) -> (..., P). It equals 2*arccos(cos)^2 / 2 and, unlike 1 - cos, keeps a
    useful gradient when an image is already close to its prompt.
    """
    chord = (a[..., None, :] - b).norm(dim=-1)
    return chord.div(2).clamp(max=1).arcsin().pow(2).mul(2)


class Targets:
    """For one encoder: the embeddings to agree with, and how much each image wants each of them."""

    def __init__(self, encoder: Encoder, labels: list[str], embeddings: torch.Tensor, weights: torch.Tensor):
        self.encoder = encoder
        self.labels = labels  # (P,) what each row is, for progress reports
        self.embeddings = embeddings  # (P, D) unit vectors
        self.weights = weights  # (B, P)

    @classmethod
    def from_prompts(
        cls,
        encoder: Encoder,
        prompts_per_image: Sequence[Sequence[WeightedText]],
        negatives: Sequence[WeightedText] = (),
        image_targets: Sequence[tuple[str, torch.Tensor, float]] = (),
    ) -> "Targets":
        """Texts are embedded in one batch; negatives and image prompts apply to every image.

        image_targets: (label, image (3, H, W) in [0, 1], weight) triples.
        """
        texts: list[str] = []
        for prompts in [*prompts_per_image, negatives]:
            texts += [p.text for p in prompts if p.text not in texts]
        labels, rows = list(texts), [encoder.encode_text(texts)]
        for label, image, _ in image_targets:
            labels.append(label)
            with torch.no_grad():
                rows.append(encoder.encode_image(image[None].to(encoder.device)))
        weights = torch.zeros(len(prompts_per_image), len(labels))
        for b, prompts in enumerate(prompts_per_image):
            for p in prompts:
                weights[b, texts.index(p.text)] += p.weight
        for p in negatives:
            weights[:, texts.index(p.text)] -= abs(p.weight)
        for j, (_, _, weight) in enumerate(image_targets):
            weights[:, len(texts) + j] += weight
        return cls(encoder, labels, torch.cat(rows), weights.to(rows[0].device))

    def loss(self, image_embeddings: torch.Tensor, kind: str, mean_weight: float = 0.0
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, cutn, D) -> loss per image (B,) and mean cosine similarity per image and target (B, P).

        mean_weight moves that share of the loss from the single cutouts to the mean of their
        embeddings (deep-daze's `averaging_weight`): the views then have to agree with the prompt
        together, as one picture, rather than each on its own.
        """
        targets = self.embeddings.to(image_embeddings.dtype)
        cosine = image_embeddings @ targets.T  # (B, cutn, P)
        distance = spherical_distance(image_embeddings, targets) if kind == "spherical" else 1 - cosine
        distance = distance.mean(1)  # (B, P)
        if mean_weight:
            mean = F.normalize(image_embeddings.mean(1), dim=-1)  # (B, D)
            whole = spherical_distance(mean, targets) if kind == "spherical" else 1 - mean @ targets.T
            distance = (1 - mean_weight) * distance + mean_weight * whole
        per_image = (distance * self.weights).sum(-1)  # (B,)
        return per_image, cosine.mean(1).detach()


class ChannelTarget:
    """Maximise one channel of one layer of an encoder's image tower (a "neuron" in the paper).

    A forward hook records the layer output while the loop encodes the cutouts; `close()` removes
    it, so a long-lived studio does not pile up hooks run after run.
    """

    def __init__(self, encoder: Encoder, layer: str, channel: int, weight: float = 1.0):
        layers = encoder.neuron_layers()
        if layer not in layers:
            raise UserError(f"{encoder.name} has no layer '{layer}': choose one of {', '.join(layers)}")
        if not 0 <= channel < layers[layer]:
            raise UserError(f"channel {channel} is out of range for {layer} (0..{layers[layer] - 1})")
        self.encoder, self.layer, self.channel, self.weight = encoder, layer, channel, weight
        self.label = f"{layer}:{channel}"
        self._activation: torch.Tensor | None = None
        module = encoder.get_submodule(layer)
        self._hook = module.register_forward_hook(self._record)

    def _record(self, module, inputs, output) -> None:
        self._activation = output[0] if isinstance(output, tuple) else output

    def loss(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """-> loss per image (B,) and mean activation per image (B, 1), after the encoder ran."""
        act = self._activation
        if act.dim() == 4:  # (B*cutn, C, h, w) from a CNN
            value = act[:, self.channel].mean((1, 2))
        else:  # (B*cutn, L, C) tokens from a transformer
            value = act[..., self.channel].mean(-1)
        value = value.float().view(batch, -1).mean(1)  # (B,)
        return -self.weight * value, value[:, None].detach()

    def close(self) -> None:
        self._hook.remove()


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbouring pixels per image (B,): a smoothness prior."""
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs().mean((1, 2, 3))
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs().mean((1, 2, 3))
    return dx + dy


def grey_pull(images: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of the pixels from mid-grey per image (B,): a prior against saturation
    (Goh et al. 2021 add it with weight 10 when visualising CLIP's neurons)."""
    return (images - 0.5).pow(2).mean((1, 2, 3))


@dataclass(frozen=True)
class Priors:
    """Weights of the image priors added to the loss, and of the whole-picture (mean-embedding) term."""

    tv: float = 0.0  # total variation: smoothness
    grey: float = 0.0  # L2 pull towards grey: against saturation
    mean: float = 0.0  # share of the loss on the mean of the cutouts' embeddings (0..1)


class Objective:
    """Sum of target losses over encoders, neurons and the image priors; one encoder pass per encoder."""

    def __init__(self, targets: Sequence[Targets] = (), channels: Sequence[ChannelTarget] = (),
                 priors: Priors = Priors(), kind: str = "spherical"):
        if kind not in LOSSES:
            raise UserError(f"unknown loss '{kind}': choose one of {', '.join(LOSSES)}")
        if not targets and not channels:
            raise UserError("nothing to optimise: give a prompt, an image prompt or a neuron")
        self.targets, self.channels = list(targets), list(channels)
        self.priors, self.kind = priors, kind
        self.encoders: list[Encoder] = []
        for item in [*self.targets, *self.channels]:
            if all(item.encoder is not e for e in self.encoders):
                self.encoders.append(item.encoder)

    @property
    def cut_size(self) -> int:
        """Cutouts are made at the largest input size any encoder needs; smaller ones resize down."""
        return max(e.input_size for e in self.encoders)

    def __call__(self, images: torch.Tensor, cutouts: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """images (B, 3, H, W), cutouts (B*cutn, 3, s, s) -> scalar loss, {name: (B, P) similarity}."""
        batch = images.shape[0]
        loss, report = images.new_zeros(batch), {}
        for encoder in self.encoders:
            embeddings = encoder.encode_image(cutouts)  # (B*cutn, D)
            embeddings = embeddings.view(batch, -1, embeddings.shape[-1])  # (B, cutn, D)
            for t in self.targets:
                if t.encoder is encoder:
                    per_image, similarity = t.loss(embeddings, self.kind, self.priors.mean)
                    loss, report[encoder.name] = loss + per_image, similarity
            for c in self.channels:
                if c.encoder is encoder:
                    per_image, activation = c.loss(batch)
                    loss, report[f"{encoder.name}/{c.label}"] = loss + per_image, activation
        if self.priors.tv:
            loss = loss + self.priors.tv * total_variation(images)
        if self.priors.grey:
            loss = loss + self.priors.grey * grey_pull(images)
        return loss.sum(), report  # sum, not mean: each image's gradient is independent of B

    def close(self) -> None:
        for c in self.channels:
            c.close()

