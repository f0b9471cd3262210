"""A tiny random CLIP saved exactly as a Hugging Face CLIP directory (config, safetensors, tokenizer).

The tokenizer is a character-level BPE vocabulary (no merges), written as the legacy
vocab.json + merges.txt pair that `CLIPTokenizer.from_pretrained` reads.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch


def write_tiny_clip(directory: Path, seed: int = 0, image_size: int = 32) -> Path:
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    symbols = list(string.ascii_lowercase + string.digits + ".,'!?-")
    tokens = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    eot = len(tokens) - 1
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tokens), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=40, bos_token_id=eot - 1,
                         eos_token_id=eot, pad_token_id=eot),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           image_size=image_size, patch_size=8),
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(directory)
    tokenizer = CLIPTokenizer.from_pretrained(directory, model_max_length=40)
    tokenizer.save_pretrained(directory)
    (directory / "preprocessor_config.json").write_text(json.dumps({
        "crop_size": {"height": image_size, "width": image_size}, "do_center_crop": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        "size": {"shortest_edge": image_size}, "image_processor_type": "CLIPImageProcessor",
    }))
    return directory


def write_tiny_chinese_clip(directory: Path, seed: int = 0, image_size: int = 32) -> Path:
    """A tiny random Chinese-CLIP laid out like huggingface.co/OFA-Sys/chinese-clip-vit-base-patch16:
    config.json (model_type chinese_clip), pytorch_model.bin, vocab.txt for its BertTokenizer, and the
    hub's preprocessor_config.json style (a direct resize, no centre crop)."""
    from transformers import BertTokenizer, ChineseCLIPConfig, ChineseCLIPModel

    from tests.fixtures_brivl import write_tiny_vocab

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = write_tiny_vocab(directory / "vocab.txt")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = ChineseCLIPConfig(
            text_config=dict(vocab_size=len(vocab.read_text(encoding="utf-8").split()), hidden_size=32,
                             intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                             max_position_embeddings=40),
            vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                               image_size=image_size, patch_size=8),
            projection_dim=16,
        )
        model = ChineseCLIPModel(config)
    model.save_pretrained(directory)
    (directory / "model.safetensors").unlink()  # the hub repo ships the older pickle: pytorch_model.bin
    torch.save(model.state_dict(), directory / "pytorch_model.bin")
    BertTokenizer.from_pretrained(directory, model_max_length=40).save_pretrained(directory)
    (directory / "tokenizer.json").unlink()  # the hub repo has only vocab.txt and the tokenizer's config
    (directory / "preprocessor_config.json").write_text(json.dumps({
        "size": {"height": image_size, "width": image_size}, "do_center_crop": False,
        "crop_size": {"height": image_size, "width": image_size}, "do_resize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        "feature_extractor_type": "ChineseCLIPFeatureExtractor", "image_processor_type": "ChineseCLIPImageProcessor",
    }))
    return directory
