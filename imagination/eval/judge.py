"""The scene judge: a small CNN that reads a world scene's elements from its pixels.

It is only ever used to *evaluate* imagined images (does "mountains with snow" show snowy
mountains?), never as an optimisation target, so a good score cannot come from fooling it.
Stored as safetensors + a JSON list of its groups and labels.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from imagination.errors import UserError


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SceneJudge(nn.Module):
    """(B, 3, 128, 128) in [0, 1] -> {group: (B, labels) logits}."""

    def __init__(self, groups: dict[str, list[str]]):
        super().__init__()
        self.groups = {g: list(labels) for g, labels in groups.items()}
        self.features = nn.Sequential(_block(3, 16), _block(16, 32), _block(32, 64), _block(64, 96),
                                      _block(96, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.heads = nn.ModuleDict({g: nn.Linear(128, len(labels)) for g, labels in self.groups.items()})

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features(images * 2 - 1)  # (B, 128)
        return {g: head(h) for g, head in self.heads.items()}

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 128) penultimate features: what the realism (Fréchet) figure compares."""
        return self.features(images * 2 - 1)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> list[dict[str, str]]:
        """Per image: {group: predicted label}."""
        logits = self(images)
        picks = {g: l.argmax(-1).tolist() for g, l in logits.items()}
        return [{g: self.groups[g][picks[g][i]] for g in self.groups} for i in range(images.shape[0])]

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, directory / "judge.safetensors")
        (directory / "groups.json").write_text(json.dumps(self.groups, ensure_ascii=False, indent=1))


def load_judge(directory: str | Path, device: str = "cpu") -> SceneJudge:
    directory = Path(directory)
    if not (directory / "judge.safetensors").is_file():
        raise UserError(f"scene judge not found: run `python -m training judge` to write {directory}/judge.safetensors")
    judge = SceneJudge(json.loads((directory / "groups.json").read_text()))
    judge.load_state_dict(load_file(directory / "judge.safetensors"))
    return judge.eval().requires_grad_(False).to(device)
