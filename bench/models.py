"""Models for the benchmark: real-size architectures with random weights (no downloads), tiny ones
for the smoke test, and the demo models from `checkpoints/` when they have been trained.

Random weights give the real FLOPs, memory and kernel mix; similarity figures from them mean
"the optimiser moves the embedding", not "the image shows the prompt" (only the demo models say that).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import shutil
import string
import tempfile
from pathlib import Path

import torch

# taming's ImageNet f16 VQGAN (vqgan_imagenet_f16_1024 / _16384 configs/model.yaml), 1024 codes.
VQGAN_F16_DDCONFIG = dict(double_z=False, z_channels=256, resolution=256, in_channels=3, out_ch=3, ch=128,
                          ch_mult=[1, 1, 2, 2, 4], num_res_blocks=2, attn_resolutions=[16], dropout=0.0)
VQGAN_F16_N_EMBED, VQGAN_F16_EMBED_DIM = 1024, 256

TINY_VQGAN_DDCONFIG = dict(double_z=False, z_channels=32, resolution=32, in_channels=3, out_ch=3, ch=32,
                           ch_mult=[1, 2], num_res_blocks=1, attn_resolutions=[16], dropout=0.0)

# neilfei/brivl-nmi cfg/eval.yml MODEL section (RoBERTa-base text tower: 12 layers, 768 wide, 21128 tokens).
BRIVL_PUBLIC = {"CNN": "tf_efficientnet_b5_ns", "IMG_SIZE": 456, "GRID_SIZE": 4, "BOX_GRID": 6,
                "IMG_TRANSFORMER_HEAD": 4, "IMG_TRANSFORMER_LAYER": 4, "TEXT_FEATURE_DIM": 768,
                "TEXT_TRANSFORMER_HEAD": 4, "TEXT_TRANSFORMER_LAYER": 4, "MAX_TEXT_LEN": 32}
BRIVL_TINY = {"CNN": "test_efficientnet", "IMG_SIZE": 64, "GRID_SIZE": 4, "BOX_GRID": 6,
              "IMG_TRANSFORMER_HEAD": 4, "IMG_TRANSFORMER_LAYER": 1, "TEXT_FEATURE_DIM": 32,
              "TEXT_TRANSFORMER_HEAD": 2, "TEXT_TRANSFORMER_LAYER": 1, "MAX_TEXT_LEN": 16, "BERT_HEADS": 2}

DEMO = {"clip": "clip-demo", "brivl": "brivl-demo", "vqgan": "vqgan-demo"}


@contextlib.contextmanager
def seeded(seed: int):
    """Deterministic random weights without touching the caller's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _char_tokenizer(directory: Path, max_length: int):
    """A character-level CLIP BPE tokenizer (no merges), as tests/fixtures_clip.py writes one.
    Token ids stay far below the real vocabulary size, so it drives any CLIP text tower."""
    from transformers import CLIPTokenizer

    symbols = list(string.ascii_lowercase + string.digits + ".,'!?-")
    tokens = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"), model_max_length=max_length)


def cache_root() -> Path:
    """Where built random models are kept between the per-case processes of a run (and across runs)."""
    return Path(os.environ.get("IMAGINATION_BENCH_CACHE", Path(tempfile.gettempdir()) / "imagination-bench-cache"))


def _build_clip_dir(kind: str, directory: Path) -> None:
    """Write a random CLIP as a Hugging Face folder (config, safetensors, tokenizer): building the
    real one takes seconds of weight init, loading it back well under one."""
    from transformers import CLIPConfig, CLIPModel

    tmp = Path(tempfile.mkdtemp(prefix=directory.name + "-", dir=directory.parent))
    tokenizer = _char_tokenizer(tmp, 77 if kind == "real" else 40)
    eot = len(tokenizer) - 1
    ids = dict(bos_token_id=eot - 1, eos_token_id=eot, pad_token_id=eot)
    if kind == "real":
        config = CLIPConfig(text_config=ids)
    else:
        config = CLIPConfig(
            text_config=dict(vocab_size=eot + 1, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, max_position_embeddings=40, **ids),
            vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                               image_size=32, patch_size=8),
            projection_dim=16)
    with seeded(0):
        CLIPModel(config).save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(directory)
    except OSError:  # another process got there first
        shutil.rmtree(tmp, ignore_errors=True)


@functools.lru_cache(maxsize=4)
def clip(kind: str = "real", device: str = "cpu"):
    """kind "real": CLIP ViT-B/32 (`CLIPConfig()` defaults, 224 px); "tiny": a 2-layer 32-px toy."""
    import transformers
    from transformers import CLIPModel, CLIPTokenizer
    from transformers.utils import logging as hf_logging

    from imagination.models.clip import CLIPEncoder

    hf_logging.disable_progress_bar()
    directory = cache_root() / f"clip-{kind}-seed0-transformers{transformers.__version__}"
    if not (directory / "config.json").is_file():
        directory.parent.mkdir(parents=True, exist_ok=True)
        _build_clip_dir(kind, directory)
    model = CLIPModel.from_pretrained(directory, local_files_only=True)
    tokenizer = CLIPTokenizer.from_pretrained(directory, local_files_only=True)
    return CLIPEncoder(model.eval(), tokenizer, f"clip-{'vit-b32' if kind == 'real' else 'tiny'}-random").to(device)


@functools.lru_cache(maxsize=4)
def vqgan(kind: str = "real", device: str = "cpu"):
    """kind "real": taming ImageNet f16 with 1024 codes; "tiny": f2, 16 codes."""
    from imagination.models.vqgan import build_vqgan

    with seeded(1), contextlib.redirect_stdout(io.StringIO()):
        if kind == "real":
            model = build_vqgan(VQGAN_F16_DDCONFIG, VQGAN_F16_N_EMBED, VQGAN_F16_EMBED_DIM)
        else:
            model = build_vqgan(TINY_VQGAN_DDCONFIG, 16, 8)
        with torch.no_grad():
            # taming's uniform(+-1/N) init makes all codes alike. N(0, 0.1^2) spreads them so that Adam
            # at lr 0.1 starts flipping tokens after ~4 steps; at N(0, 1) not one token changes in
            # 10 steps and a similarity check could not see the optimiser work.
            model.codebook.normal_(std=0.1 if kind == "real" else 1.0)
    model.name = f"vqgan-{'f16-1024' if kind == 'real' else 'tiny'}-random"
    return model.to(device)


def brivl_image_tower(kind: str = "real", device: str = "cpu"):
    """The BriVL image tower only (EfficientNet-B5 at 456 px + RoI pooling + region transformer)."""
    from imagination.models.brivl import DEFAULT_CONFIG, ImgLearnableEncoder

    cfg = {**DEFAULT_CONFIG, **(BRIVL_PUBLIC if kind == "real" else BRIVL_TINY)}
    with seeded(2):
        tower = ImgLearnableEncoder(cfg)
    return tower.eval().requires_grad_(False).to(device)


def brivl_text_tower(kind: str = "real", device: str = "cpu"):
    """BriVL's text tower: RoBERTa-base size (12 layers, 768 wide, 21128 tokens) + the token transformer."""
    from imagination.models.brivl import DEFAULT_CONFIG, TextLearnableEncoder

    if kind == "real":
        extra = dict(BERT_VOCAB_SIZE=21128, BERT_LAYERS=12, BERT_HEADS=12, BERT_INTERMEDIATE=3072,
                     BERT_MAX_POSITIONS=512, IMG_FEATURE_DIM=2048, TEXT_FFN_DIM=2048)
    else:
        extra = dict(BERT_VOCAB_SIZE=40, BERT_LAYERS=1, BERT_HEADS=2, BERT_INTERMEDIATE=64, BERT_MAX_POSITIONS=40,
                     IMG_FEATURE_DIM=256, TEXT_FFN_DIM=64)
    cfg = {**DEFAULT_CONFIG, **(BRIVL_PUBLIC if kind == "real" else BRIVL_TINY), **extra}
    with seeded(7):
        tower = TextLearnableEncoder(cfg)
    return tower.eval().requires_grad_(False).to(device), cfg


def demo_missing() -> list[str]:
    """Names of demo models whose files are not (yet) in checkpoints/."""
    from imagination.models import registry

    return [name for name in DEMO.values() if not registry.MODELS[name].ready]


def demo(family: str, device: str = "cpu"):
    from imagination.models import registry

    return registry.load(DEMO[family], device)
