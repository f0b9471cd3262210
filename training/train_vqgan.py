"""Train the demo VQGAN: taming Encoder/Decoder/quantizer, f=8, 512 codes, on world scenes.

Loss: L1 + L2 reconstruction, the VQ-VAE codebook and commitment terms, and dead-code restarts
(unused codes are moved onto random encoder outputs) so the small codebook is fully used. No
discriminator or LPIPS (their weights would need a download); the world's flat-shaded scenes
reconstruct well without them (PSNR is reported on held-out scenes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from imagination.models.vqgan import build_vqgan, load_vqgan, save_vqgan
from training.common import batches, log, Schedule

DDCONFIG = dict(double_z=False, z_channels=64, resolution=128, in_channels=3, out_ch=3, ch=32,
                ch_mult=[1, 2, 2, 4], num_res_blocks=1, attn_resolutions=[16], dropout=0.0)
N_EMBED, EMBED_DIM = 512, 64


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB for images in [0, 1]."""
    mse = (a.float() - b.float()).pow(2).mean((1, 2, 3)).clamp(min=1e-10)
    return -10 * torch.log10(mse)


def train_vqgan(train, held_out, out_dir, device, steps=6000, batch=64, lr=4e-4, seed=0, seconds=None, resume=False):
    torch.manual_seed(seed)
    model = load_vqgan(out_dir) if resume else build_vqgan(DDCONFIG, N_EMBED, EMBED_DIM)
    model = model.requires_grad_(True).train().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.5, 0.9))
    images = train.tensor().to(device)
    usage = torch.zeros(N_EMBED, device=device)
    generator = torch.Generator().manual_seed(seed)
    schedule = Schedule(steps, seconds, warmup=20 if resume else 200)
    for step, index in zip(schedule, batches(len(train), batch, generator)):
        for group in optimizer.param_groups:
            group["lr"] = lr * schedule.lr_factor(step)
        x = images[index.to(device)].float() / 255
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            z = model.quant_conv(model.encoder(x * 2 - 1))  # (B, C, h, w)
        z = z.float()
        z_st, indices = model.quantize(z)
        hard = model.embed_indices(indices)  # the chosen codes, with gradient to the codebook
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            recon = model.decoder(model.post_quant_conv(z_st))
        recon = (recon.float() + 1) / 2
        loss = (F.l1_loss(recon, x) + F.mse_loss(recon, x)
                + F.mse_loss(hard, z.detach()) + 0.25 * F.mse_loss(z, hard.detach()))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        usage.index_add_(0, indices.flatten(), torch.ones(indices.numel(), device=device))
        if step % 250 == 249:  # restart codes unused in the last 250 steps on random latents
            dead = (usage == 0).nonzero().flatten()
            if len(dead) and schedule.fraction(step) < 0.8:
                flat = z.detach().permute(0, 2, 3, 1).reshape(-1, EMBED_DIM)
                pick = torch.randint(len(flat), (len(dead),), device=device)
                model.quantize.embedding.weight.data[dead] = flat[pick]
            log(f"vqgan step {step + 1} loss {loss.item():.4f} "
                f"psnr {psnr(recon, x).mean().item():.2f} dead codes {len(dead)}")
            usage.zero_()
    model.freeze()
    score = evaluate_psnr(model, held_out, device)
    log(f"vqgan held-out PSNR {score:.2f} dB on {len(held_out)} scenes")
    save_vqgan(model.cpu(), out_dir, global_step=step + 1)
    return {"psnr_db": round(score, 2), "steps": step + 1, "batch": batch}


@torch.no_grad()
def evaluate_psnr(model, held_out, device, batch=50) -> float:
    values, held_out_images = [], held_out.tensor()
    for start in range(0, len(held_out), batch):
        x = held_out_images[start:start + batch].to(device).float() / 255
        values.append(psnr(model(x), x))
    return torch.cat(values).mean().item()
