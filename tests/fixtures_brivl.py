"""Tiny random BriVL folders in the official neilfei/brivl-nmi format, for tests and demos.

The module tree is rebuilt here independently of `imagination.models.brivl` (mirroring upstream's
vl_model.py / bert.py / fakeTransformer.py), so a naming mistake in the loader cannot hide behind a
fixture that shares its code.
"""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from torch import nn

# 64 px -> a 2x2 feature map from timm's `test_efficientnet` (256 features, ~0.36 M parameters).
TINY_CONFIG = {
    "NAME": "VL", "ENCODER": "hfl/chinese-roberta-wwm-ext", "TEXT_FEATURE_DIM": 32,
    "TEXT_TRANSFORMER_HEAD": 2, "TEXT_TRANSFORMER_LAYER": 2, "MAX_TEXT_LEN": 16,
    "CNN": "test_efficientnet", "IMG_SIZE": 64, "IMG_FEATURE_DIM": 256, "IMG_TRANSFORMER_HEAD": 4,
    "IMG_TRANSFORMER_LAYER": 2, "MAX_IMG_LEN": 37, "BOX_GRID": 6, "TOPK": 1, "QUEUE_SIZE": 9600,
    "MOMENTUM": 0.99, "TEMPERATURE": 0.07, "GRID_SIZE": 4,
    "BERT_HEADS": 2,  # not in eval.yml: needed because 32 is not a multiple of 64-wide heads
}
TINY_FFN = 64  # the region/token transformers' FFN width (2048 upstream); the loader reads it off shapes
TINY_BERT = dict(num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=40)
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CHARS = "一只猫狗在草地上跑的红色苹果天空中飞鸟山水画海边日落城市夜景雪花月亮星"


class _Fake(nn.Module):
    def __init__(self, i, h, o):
        super().__init__()
        self.fc1, self.relu, self.fc2 = nn.Linear(i, h), nn.ReLU(), nn.Linear(h, o)


def _att(width, heads, layers):
    layer = nn.TransformerEncoderLayer(d_model=width, nhead=heads, dim_feedforward=TINY_FFN)
    return nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)


class _Img(nn.Module):  # upstream ImgLearnableEncoder
    def __init__(self, c):
        super().__init__()
        import timm

        self.backbone = timm.create_model(c["CNN"], pretrained=False)
        d = c["IMG_FEATURE_DIM"]
        self.learnable = nn.ModuleDict({
            "imgFC": _Fake(d, d, d),
            "imgAtt": _att(d, c["IMG_TRANSFORMER_HEAD"], c["IMG_TRANSFORMER_LAYER"]),
            "max_pool": nn.Sequential(nn.Conv2d(d, d, kernel_size=1), nn.AvgPool2d(c["GRID_SIZE"], stride=1)),
        })


class _Bert(nn.Module):  # upstream models/bert.py
    def __init__(self, c, vocab_size):
        super().__init__()
        from transformers import BertConfig, BertModel

        self.bert = BertModel(BertConfig(vocab_size=vocab_size, hidden_size=c["TEXT_FEATURE_DIM"], **TINY_BERT))


class _Text(nn.Module):  # upstream TextLearnableEncoder
    def __init__(self, c, vocab_size):
        super().__init__()
        self.backbone = _Bert(c, vocab_size)
        t, d = c["TEXT_FEATURE_DIM"], c["IMG_FEATURE_DIM"]
        self.learnable = nn.ModuleDict({
            "textFC": _Fake(t, d, d),
            "textAtt": _att(t, c["TEXT_TRANSFORMER_HEAD"], c["TEXT_TRANSFORMER_LAYER"]),
        })


def write_tiny_vocab(path: Path) -> Path:
    path.write_text("\n".join(SPECIALS + list(CHARS)) + "\n", encoding="utf-8")
    return path


def write_tiny_brivl(directory: str | Path, seed: int = 0, filename: str = "brivl-with-roberta-base.pth") -> Path:
    """Write `filename` ({'learnable': ...}, with legacy position_ids keys), config.yml and vocab.txt
    into `directory` (created) and return the directory. Deterministic for a seed; global RNG untouched."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab_size = len(SPECIALS) + len(CHARS)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        learnable = nn.ModuleDict({
            "imgencoder": _Img(TINY_CONFIG), "imgencoder_mom": _Img(TINY_CONFIG),
            "textencoder": _Text(TINY_CONFIG, vocab_size), "textencoder_mom": _Text(TINY_CONFIG, vocab_size),
        })
    for q, k in (("imgencoder", "imgencoder_mom"), ("textencoder", "textencoder_mom")):
        learnable[k].load_state_dict(learnable[q].state_dict())  # upstream init_param copies the twins
    state = learnable.state_dict()
    for enc in ("textencoder", "textencoder_mom"):  # old transformers saved this buffer; 5.x does not
        state[f"{enc}.backbone.bert.embeddings.position_ids"] = torch.arange(TINY_BERT["max_position_embeddings"])[None]
    torch.save({"learnable": state}, directory / filename)
    (directory / "config.yml").write_text(yaml.safe_dump({"MODEL": TINY_CONFIG}, sort_keys=False), encoding="utf-8")
    write_tiny_vocab(directory / "vocab.txt")
    return directory
