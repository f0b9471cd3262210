"""Which models the library knows, where their files live under `checkpoints/`, and loading them once.

A user names a model either exactly ("clip-vit-base-patch32") or by family ("clip", "brivl",
"vqgan"); a family resolves to its best model whose files are present, falling back to the small
demo model shipped in the repository. So a fresh clone works offline, and dropping real weights
into the documented folder upgrades every command without a flag.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from imagination.errors import UserError

REPO_CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"


def checkpoints_root() -> Path:
    """`$IMAGINATION_CHECKPOINTS` if set (tests, shared model stores), else the repo's checkpoints/."""
    return Path(os.environ.get("IMAGINATION_CHECKPOINTS", REPO_CHECKPOINTS))


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str  # "clip" | "brivl" | "vqgan": selects the loader
    folder: str  # under the checkpoints root
    source: str  # where a user gets the files
    description: str
    demo: bool = False

    @property
    def directory(self) -> Path:
        return checkpoints_root() / self.folder

    def missing(self) -> list[str]:
        """Human-readable list of files still to be placed; empty when the model can load."""
        if self.kind == "clip":
            from imagination.models.clip import missing_clip_files

            return missing_clip_files(self.directory)
        if self.kind == "brivl":
            from imagination.models.brivl import missing_brivl_files

            return missing_brivl_files(self.directory)
        from imagination.models.vqgan import missing_vqgan_files

        return missing_vqgan_files(self.directory)

    @property
    def ready(self) -> bool:
        return not self.missing()


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec("clip-vit-base-patch32", "clip", "clip-vit-base-patch32",
                  "huggingface.co/openai/clip-vit-base-patch32", "OpenAI CLIP ViT-B/32, English"),
        ModelSpec("clip-vit-large-patch14", "clip", "clip-vit-large-patch14",
                  "huggingface.co/openai/clip-vit-large-patch14", "OpenAI CLIP ViT-L/14, English"),
        ModelSpec("chinese-clip-vit-base-patch16", "clip", "chinese-clip-vit-base-patch16",
                  "huggingface.co/OFA-Sys/chinese-clip-vit-base-patch16", "Chinese-CLIP ViT-B/16"),
        ModelSpec("clip-demo", "clip", "clip-demo", "shipped in this repository",
                  "small CLIP trained on the procedural landscape world, English", demo=True),
        ModelSpec("brivl-roberta-base", "brivl", "brivl",
                  "github.com/neilfei/brivl-nmi (brivl-with-roberta-base.pth, cfg/eval.yml) and "
                  "huggingface.co/hfl/chinese-roberta-wwm-ext (vocab.txt)",
                  "BriVL with RoBERTa-base, Chinese (Nature Communications release)"),
        ModelSpec("brivl-demo", "brivl", "brivl-demo", "shipped in this repository",
                  "small BriVL trained on the procedural landscape world, Chinese", demo=True),
        ModelSpec("vqgan-imagenet-f16-16384", "vqgan", "vqgan_imagenet_f16_16384",
                  "github.com/CompVis/taming-transformers (configs/model.yaml, ckpts/last.ckpt)",
                  "taming VQGAN, ImageNet, f16, 16384 codes"),
        ModelSpec("vqgan-imagenet-f16-1024", "vqgan", "vqgan_imagenet_f16_1024",
                  "github.com/CompVis/taming-transformers (configs/model.yaml, ckpts/last.ckpt)",
                  "taming VQGAN, ImageNet, f16, 1024 codes"),
        ModelSpec("vqgan-demo", "vqgan", "vqgan-demo", "shipped in this repository",
                  "small VQGAN (f8, 512 codes) trained on the procedural landscape world", demo=True),
    ]
}

# A family name resolves to the first of its members whose files are present.
FAMILIES: dict[str, list[str]] = {
    "clip": ["clip-vit-base-patch32", "clip-vit-large-patch14", "clip-demo"],
    "chinese-clip": ["chinese-clip-vit-base-patch16"],
    "brivl": ["brivl-roberta-base", "brivl-demo"],
    "vqgan": ["vqgan-imagenet-f16-16384", "vqgan-imagenet-f16-1024", "vqgan-demo"],
}


def kind_of(name: str) -> str | None:
    """"clip", "brivl" or "vqgan" for a model or family name, without looking for its files; None if unknown."""
    key = name.strip().lower()
    key = FAMILIES[key][0] if key in FAMILIES else key
    return MODELS[key].kind if key in MODELS else None


def resolve(name: str) -> ModelSpec:
    """A model or family name -> the spec to load; a clear UserError when it cannot be loaded."""
    key = name.strip().lower()
    if key in FAMILIES:
        for member in FAMILIES[key]:
            if MODELS[member].ready:
                return MODELS[member]
        spec = MODELS[FAMILIES[key][0]]
        raise UserError(
            f"no '{key}' model is available: put {', '.join(spec.missing())} ({spec.source})"
        )
    if key not in MODELS:
        known = ", ".join(sorted(FAMILIES) + sorted(MODELS))
        raise UserError(f"unknown model '{name}': choose one of {known}")
    spec = MODELS[key]
    missing = spec.missing()
    if missing:
        raise UserError(f"model '{key}' is missing files: put {', '.join(missing)} ({spec.source})")
    return spec


def load(name: str, device: str = "cpu", max_text_len: int | None = None):
    """Load (once per process, device and text length) the encoder or VQGAN that `name` resolves to.

    max_text_len: BriVL's text length in tokens (default 32, the official example.py's; see
    `load_brivl`); other models take their own from their config.
    """
    spec = resolve(name)
    if max_text_len is not None and spec.kind != "brivl":
        max_text_len = None  # only BriVL's embedding depends on a chosen length
    return _load_cached(spec.name, str(spec.directory), str(device), max_text_len)


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, directory: str, device: str, max_text_len: int | None = None):
    spec = MODELS[name]
    if spec.kind == "clip":
        from imagination.models.clip import load_clip

        return load_clip(directory, name=name, device=device)
    if spec.kind == "brivl":
        from imagination.models.brivl import load_brivl

        encoder = load_brivl(directory, device=device, max_text_len=max_text_len)
        encoder.name = name
        return encoder
    from imagination.models.vqgan import load_vqgan

    return load_vqgan(directory, device=device)


def status() -> list[dict]:
    """One row per known model, for `imagination models` and the studio's Models tab."""
    rows = []
    for spec in MODELS.values():
        missing = spec.missing()
        rows.append({
            "name": spec.name, "kind": spec.kind, "demo": spec.demo, "ready": not missing,
            "folder": str(spec.directory), "missing": missing, "source": spec.source,
            "description": spec.description,
        })
    return rows
