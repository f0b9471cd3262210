"""Train the evaluation-only scene judge (one classification head per element group)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from imagination import world
from imagination.eval.judge import SceneJudge
from training.common import batches, log, Schedule
from training.data import random_crops


def train_judge(train, held_out, out_dir, device, steps=3000, batch=256, lr=2e-3, seed=0, seconds=None):
    torch.manual_seed(seed)
    judge = SceneJudge(world.GROUPS).to(device).train()
    optimizer = torch.optim.AdamW(judge.parameters(), lr=lr, weight_decay=0.01)
    images, targets = train.tensor().to(device), train.label_tensor().to(device)
    generator, crop_generator = torch.Generator().manual_seed(seed), torch.Generator(device).manual_seed(seed)
    groups = list(world.GROUPS)
    schedule = Schedule(steps, seconds)
    for step, index in zip(schedule, batches(len(train), batch, generator)):
        for group in optimizer.param_groups:
            group["lr"] = lr * schedule.lr_factor(step)
        index = index.to(device)
        x = random_crops(images[index], 128, crop_generator, min_scale=0.85)
        x = (x + 0.03 * torch.randn_like(x)).clamp(0, 1)  # imagined images are noisier than renders
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = judge(x)
        loss = sum(F.cross_entropy(logits[g].float(), targets[index, i]) for i, g in enumerate(groups))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 500 == 499:
            log(f"judge step {step + 1} loss {loss.item():.4f}")
    judge.eval()
    accuracy = judge_accuracy(judge, held_out, device)
    log("judge held-out accuracy " + ", ".join(f"{g} {a:.3f}" for g, a in accuracy.items()))
    judge.cpu().save(out_dir)
    return {"steps": step + 1, "held_out_accuracy": {g: round(a, 4) for g, a in accuracy.items()}}


@torch.no_grad()
def judge_accuracy(judge, held_out, device) -> dict[str, float]:
    targets = held_out.label_tensor().to(device)
    correct, held_out_images = {g: 0 for g in world.GROUPS}, held_out.tensor()
    for start in range(0, len(held_out), 200):
        x = held_out_images[start:start + 200].to(device).float() / 255
        logits = judge(x)
        for i, g in enumerate(world.GROUPS):
            correct[g] += (logits[g].argmax(-1) == targets[start:start + 200, i]).sum().item()
    return {g: c / len(held_out) for g, c in correct.items()}
