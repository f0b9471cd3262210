"""Train the demo VQGAN: taming Encoder/Decoder/quantizer, f=8, 512 codes, on world scenes.

Loss: L1 + L2 reconstruction, the VQ-VAE codebook and commitment terms, and dead-code restarts
(unused codes are moved onto random encoder outputs) so the small codebook is fully used. No
discriminator or LPIPS (their weights would need a download); the world's flat-shaded scenes
reconstruct well without them (PSNR is reported on held-out scenes).

What ships is an exponential moving average of the weights, not the last step: on a CPU the run is
short and noisy, and the average is the better reconstructor at any moment, so the trainer keeps
whichever average scored best on held-out scenes at its periodic checks.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel

from imagination.loop import autocast_for
from imagination.models.vqgan import build_vqgan, load_vqgan, save_vqgan
from training.common import batches, log, Schedule

DDCONFIG = dict(double_z=False, z_channels=64, resolution=128, in_channels=3, out_ch=3, ch=32,
                ch_mult=[1, 2, 2, 4], num_res_blocks=1, attn_resolutions=[16], dropout=0.0)
N_EMBED, EMBED_DIM = 512, 64
# periodic checks of the averaged weights use the *last* held-out scenes: imagination.eval reports
# on the first 200, so with --held-out 300 or more picking the best average never sees the reported scenes
CHECK_EVERY, CHECK_SCENES = 250, 100


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB for images in [0, 1]."""
    mse = (a.float() - b.float()).pow(2).mean((1, 2, 3)).clamp(min=1e-10)
    return -10 * torch.log10(mse)


def train_vqgan(train, held_out, out_dir, device, steps=6000, batch=64, lr=4e-4, seed=0, seconds=None, resume=False,
                ema_decay=0.998):
    torch.manual_seed(seed)
    model = load_vqgan(out_dir) if resume else build_vqgan(DDCONFIG, N_EMBED, EMBED_DIM)
    model = model.requires_grad_(True).train().to(device, memory_format=torch.channels_last)
    average = AveragedModel(model, avg_fn=_moving_average(ema_decay, warm_up=not resume), use_buffers=True)
    # a fresh Adam moves every weight by about lr per step until its moment estimates settle, which
    # knocks a resumed model off its optimum: a resumed run warms up for longer
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.99))
    images = train.tensor().to(device)
    usage = torch.zeros(N_EMBED, device=device)
    generator = torch.Generator().manual_seed(seed)
    schedule = Schedule(steps, seconds, warmup=100 if resume else 200)
    best_score, best_state = -1.0, None
    autocast = autocast_for(device, "auto")
    for step, index in zip(schedule, batches(len(train), batch, generator)):
        for group in optimizer.param_groups:
            group["lr"] = lr * schedule.lr_factor(step)
        x = (images[index.to(device)].float() / 255).contiguous(memory_format=torch.channels_last)
        with autocast:
            z = model.quant_conv(model.encoder(x * 2 - 1))  # (B, C, h, w)
        z = z.float()
        z_st, indices = model.quantize(z)
        hard = model.embed_indices(indices)  # the chosen codes, with gradient to the codebook
        with autocast:
            recon = model.decoder(model.post_quant_conv(z_st))
        recon = (recon.float() + 1) / 2
        loss = (F.l1_loss(recon, x) + F.mse_loss(recon, x)
                + F.mse_loss(hard, z.detach()) + 0.25 * F.mse_loss(z, hard.detach()))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        average.update_parameters(model)
        usage.index_add_(0, indices.flatten(), torch.ones(indices.numel(), device=device))
        if step % CHECK_EVERY == CHECK_EVERY - 1:  # restart codes unused since the last check on random latents
            dead = (usage == 0).nonzero().flatten()
            if len(dead) and schedule.fraction(step) < 0.8:
                flat = z.detach().permute(0, 2, 3, 1).reshape(-1, EMBED_DIM)
                fresh = flat[torch.randint(len(flat), (len(dead),), device=device)]
                model.quantize.embedding.weight.data[dead] = fresh
                average.module.quantize.embedding.weight.data[dead] = fresh  # not a blend of old and new
            score = evaluate_psnr(average.module, held_out, device, last=CHECK_SCENES)
            if score > best_score:
                best_score, best_state = score, copy.deepcopy(average.module.state_dict())
            log(f"vqgan step {step + 1} loss {loss.item():.4f} train psnr {psnr(recon, x).mean().item():.2f} "
                f"averaged held-out psnr {score:.2f} (best {best_score:.2f}) dead codes {len(dead)}")
            usage.zero_()
    final = evaluate_psnr(average.module, held_out, device, last=CHECK_SCENES)
    if best_state is not None and best_score > final:
        average.module.load_state_dict(best_state)
    model = average.module.freeze()
    score = evaluate_psnr(model, held_out, device)
    log(f"vqgan held-out PSNR {score:.2f} dB on {len(held_out)} scenes")
    save_vqgan(model.cpu().to(memory_format=torch.contiguous_format), out_dir, global_step=step + 1)
    return {"psnr_db": round(score, 2), "steps": step + 1, "batch": batch, "ema_decay": ema_decay}


def _moving_average(decay: float, warm_up: bool):
    """EMA update for AveragedModel. A fresh model's first weights are noise, so its average starts
    with a short memory that grows to `decay` ((1 + n) / (10 + n) after n updates); a resumed model's
    weights are already good and are averaged at `decay` from the start."""
    def update(averaged, current, n):
        rate = min(decay, (1 + n.item()) / (10 + n.item())) if warm_up else decay
        return torch.lerp(current, averaged, rate)
    return update


@torch.no_grad()
def evaluate_psnr(model, held_out, device, batch=50, last=None) -> float:
    was_training = model.training
    model.eval()
    values, held_out_images = [], held_out.tensor()[-last if last else 0:]
    for start in range(0, len(held_out_images), batch):
        x = held_out_images[start:start + batch].to(device).float() / 255
        values.append(psnr(model(x), x))
    model.train(was_training)
    return torch.cat(values).mean().item()
