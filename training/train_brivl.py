"""Train the demo BriVL: the official architecture at small size, on Chinese world captions.

timm `test_efficientnet` backbone at 128 px (a 4x4 feature map) with the 37-box grid pooling kept,
a 3-layer BERT of width 192 over a character vocabulary, 1-layer region/token transformers. The
loss is in-batch InfoNCE (the paper trained with MoCo queues; at this size the batch suffices).
Saved as the official `{'learnable': ...}` dict with momentum twins, config.yml and vocab.txt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from imagination import world
from imagination.models.brivl import IMAGENET_MEAN, IMAGENET_STD, build_brivl_learnable, save_brivl
from training.common import contrastive_loss, log, Schedule
from training.data import caption_batches
from training.vocab import write_bert_vocab

CONFIG = {"MODEL": {"CNN": "test_efficientnet", "IMG_SIZE": 128, "GRID_SIZE": 4, "BOX_GRID": 6,
                    "MAX_IMG_LEN": 37, "MAX_TEXT_LEN": 32, "TEXT_FEATURE_DIM": 192,
                    "IMG_TRANSFORMER_HEAD": 4, "TEXT_TRANSFORMER_HEAD": 4,
                    "IMG_TRANSFORMER_LAYER": 1, "TEXT_TRANSFORMER_LAYER": 1}}


def train_brivl(train, held_out, out_dir, device, steps=5000, batch=256, lr=1e-3, seed=0, seconds=None, resume=False,
                pairs=None, pair_count=0, min_scale=0.5):
    from transformers import BertTokenizer

    out_dir = Path(out_dir)
    vocab_path = out_dir / "vocab.txt"
    vocab_size = write_bert_vocab(vocab_path, world.chinese_charset())
    tokenizer = BertTokenizer(vocab=str(vocab_path))
    torch.manual_seed(seed)
    learnable = build_brivl_learnable(CONFIG, vocab_size=vocab_size, bert_layers=3, bert_heads=4,
                                      max_positions=64, ffn_dim=512).to(device)
    if resume:  # continue from the saved checkpoint
        saved = torch.load(out_dir / "brivl-demo.pth", map_location="cpu", weights_only=True)["learnable"]
        learnable.load_state_dict({k: v for k, v in saved.items() if "position_ids" not in k})
    img, text = learnable["imgencoder"].train(), learnable["textencoder"].train()
    params = list(img.parameters()) + list(text.parameters())
    logit_scale = torch.nn.Parameter(torch.tensor(np.log(1 / 0.07 if not resume else 15.0), device=device))
    optimizer = torch.optim.AdamW(params + [logit_scale], lr=lr, weight_decay=0.05)
    size = CONFIG["MODEL"]["IMG_SIZE"]
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    data = caption_batches(train, "zh", size, batch, device, seed + 1, pairs, pair_count, min_scale)
    max_len = CONFIG["MODEL"]["MAX_TEXT_LEN"]
    schedule = Schedule(steps, seconds, warmup=20 if resume else 200)
    for step, (pixels, texts) in zip(schedule, data):
        for group in optimizer.param_groups:
            group["lr"] = lr * schedule.lr_factor(step)
        pixels = (pixels - mean) / std
        enc = tokenizer(texts, padding="max_length", truncation=True, max_length=max_len, return_tensors="pt")
        ids, lengths = enc.input_ids.to(device), enc.attention_mask.sum(1).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            image_embedding = img(pixels)
            text_embedding = text(ids, lengths)
        loss = contrastive_loss(image_embedding, text_embedding, logit_scale.exp().clamp(max=100))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 250 == 249:
            log(f"brivl step {step + 1} loss {loss.item():.4f} scale {logit_scale.exp().item():.1f}")
    # No MoCo here: save_brivl stores the trained weights as their own momentum twins.
    trained = torch.nn.ModuleDict({"imgencoder": img, "textencoder": text})
    save_brivl(trained.eval().cpu(), CONFIG, vocab_path, out_dir, filename="brivl-demo.pth")
    return {"steps": step + 1, "batch": batch, "pair_count": pair_count, "min_scale": min_scale, "vocab_size": vocab_size}
