"""Train the demo CLIP: a small `transformers` CLIPModel on English world captions.

Saved as a Hugging Face directory (config.json, model.safetensors, vocab.json + merges.txt with the
tokenizer files transformers writes, preprocessor_config.json) so `load_clip` reads it like any
CLIP from the hub.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from imagination import world
from imagination.models.clip import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from training.common import contrastive_loss, log, Schedule
from training.data import caption_batches
from training.vocab import write_clip_vocab

IMAGE_SIZE, MAX_TEXT = 64, 32


def build(vocab_size: int):
    from transformers import CLIPConfig, CLIPModel

    eot = vocab_size - 1  # <|endoftext|> is the last id; pooling takes the first eot position
    config = CLIPConfig(
        text_config=dict(vocab_size=vocab_size, hidden_size=192, intermediate_size=768, num_hidden_layers=4,
                         num_attention_heads=4, max_position_embeddings=MAX_TEXT, bos_token_id=eot - 1,
                         eos_token_id=eot, pad_token_id=eot),
        vision_config=dict(hidden_size=192, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
                           image_size=IMAGE_SIZE, patch_size=8),
        projection_dim=192,
    )
    return CLIPModel(config)


def train_clip(train, held_out, out_dir, device, steps=5000, batch=512, lr=1e-3, seed=0, seconds=None, resume=False,
               pairs=None, pair_count=0, min_scale=0.5):
    from transformers import CLIPTokenizer

    out_dir = Path(out_dir)
    vocab_size = write_clip_vocab(out_dir, world.english_words())
    tokenizer = CLIPTokenizer.from_pretrained(out_dir, model_max_length=MAX_TEXT)
    torch.manual_seed(seed)
    if resume:  # continue from the saved model (same vocabulary: it is written deterministically)
        from transformers import CLIPModel

        model = CLIPModel.from_pretrained(out_dir).to(device).train()
    else:
        model = build(vocab_size).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    mean = torch.tensor(OPENAI_CLIP_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_CLIP_STD, device=device).view(1, 3, 1, 1)
    data = caption_batches(train, "en", IMAGE_SIZE, batch, device, seed, pairs, pair_count, min_scale)
    schedule = Schedule(steps, seconds, warmup=20 if resume else 200)
    for step, (pixels, texts) in zip(schedule, data):
        for group in optimizer.param_groups:
            group["lr"] = lr * schedule.lr_factor(step)
        pixels = (pixels - mean) / std
        tokens = tokenizer(texts, padding=True, truncation=True, max_length=MAX_TEXT, return_tensors="pt").to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            image = model.get_image_features(pixel_values=pixels).pooler_output
            text = model.get_text_features(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask).pooler_output
        loss = contrastive_loss(image, text, model.logit_scale.exp().clamp(max=100))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 250 == 249:
            log(f"clip step {step + 1} loss {loss.item():.4f} scale {model.logit_scale.exp().item():.1f}")
    model.eval().cpu().save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"shortest_edge": IMAGE_SIZE},
        "do_center_crop": True, "crop_size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        "do_normalize": True, "image_mean": list(OPENAI_CLIP_MEAN), "image_std": list(OPENAI_CLIP_STD),
        "resample": 3, "do_rescale": True, "rescale_factor": 1 / 255,
    }, indent=2))
    return {"steps": step + 1, "batch": batch, "pair_count": pair_count, "min_scale": min_scale, "vocab_size": vocab_size}
