"""CLIP (and Chinese-CLIP) through Hugging Face `transformers`, behind the `Encoder` interface.

Everything comes from a local Hugging Face directory (config.json, model.safetensors or
pytorch_model.bin, tokenizer files, preprocessor_config.json) because the machines we run on have
no internet. A hub id works too when its files are already in the local Hugging Face cache.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from imagination.errors import UserError
from imagination.models.base import Encoder

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "vocab.txt")


def missing_clip_files(directory: Path) -> list[str]:
    """What a user still has to put in `directory` for a CLIP model to load (empty when ready)."""
    directory = Path(directory)
    missing = []
    if not (directory / "config.json").is_file():
        missing.append(f"{directory}/config.json")
    if not any((directory / f).is_file() for f in WEIGHT_FILES):
        missing.append(f"{directory}/model.safetensors (or pytorch_model.bin)")
    if not any((directory / f).is_file() for f in TOKENIZER_FILES):
        missing.append(f"{directory}/tokenizer.json (or vocab.json + merges.txt, or vocab.txt)")
    return missing


def _features(output) -> torch.Tensor:
    """transformers 5 returns an output object from get_*_features (4.x returned the tensor)."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _preprocessing(directory: Path | None, image_size: int) -> tuple[int, tuple, tuple]:
    """Input side and mean/std, from preprocessor_config.json when the folder has one."""
    size, mean, std = image_size, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
    path = directory / "preprocessor_config.json" if directory else None
    if path is not None and path.is_file():
        cfg = json.loads(path.read_text())
        mean = tuple(cfg.get("image_mean", mean))
        std = tuple(cfg.get("image_std", std))
        crop = cfg.get("crop_size") if cfg.get("do_center_crop", True) else cfg.get("size")
        if isinstance(crop, dict):
            crop = crop.get("height") or crop.get("shortest_edge")
        size = int(crop or size)
    return size, mean, std


class CLIPEncoder(Encoder):
    """A frozen `CLIPModel` or `ChineseCLIPModel`; text pooling and projection are the model's own."""

    def __init__(self, model: nn.Module, tokenizer, name: str, directory: Path | None = None):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        config = model.config
        self.chinese = config.model_type == "chinese_clip"
        self.languages = ("zh",) if self.chinese else ("en",)
        self.input_size, self.mean, self.std = _preprocessing(directory, config.vision_config.image_size)
        self.embed_dim = config.projection_dim
        self.max_text_len = min(
            config.text_config.max_position_embeddings, tokenizer.model_max_length or 10**6
        )
        self.freeze()

    def neuron_layers(self) -> dict[str, int]:
        """The MLP hidden units of each vision transformer block (the "neurons" of a ViT)."""
        return {
            f"model.vision_model.encoder.layers.{i}.mlp.fc1": layer.mlp.fc1.out_features
            for i, layer in enumerate(self.model.vision_model.encoder.layers)
        }

    def _embed_text(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_text_len, return_tensors="pt"
        ).to(self.device)
        if not self.chinese:
            tokens.pop("token_type_ids", None)
        return _features(self.model.get_text_features(**tokens))

    def _embed_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return _features(self.model.get_image_features(pixel_values=pixels))


def load_clip(source: str | Path, name: str | None = None, device: str = "cpu") -> CLIPEncoder:
    """Load a CLIP from a local Hugging Face directory, or from a hub id already in the local cache."""
    from transformers import AutoModel, AutoTokenizer  # heavy import, only when a model is loaded
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress bar is the one a user should see

    directory = Path(source) if Path(source).exists() else None
    if directory is not None:
        missing = missing_clip_files(directory)
        if missing:
            raise UserError(f"CLIP model in {directory}/ is incomplete: missing {', '.join(missing)}")
    try:
        model = AutoModel.from_pretrained(str(source), local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    except Exception as error:  # transformers/safetensors raise many types for a bad file
        if directory is not None:
            raise UserError(f"could not load CLIP from {directory}/: {str(error).splitlines()[0]}")
        raise UserError(
            f"CLIP '{source}' is not available offline: download config.json, model.safetensors, "
            f"the tokenizer files and preprocessor_config.json from huggingface.co/{source} "
            f"and put them in checkpoints/{Path(str(source)).name}/"
        ) from None
    if model.config.model_type not in ("clip", "chinese_clip"):
        raise UserError(f"{source} holds a '{model.config.model_type}' model, not a CLIP")
    return CLIPEncoder(model, tokenizer, name or Path(str(source)).name, directory).to(device)
