"""Tiny random taming VQGANs written in the released format (PL-1.0.8 `last.ckpt` + `model.yaml`).

Small enough for CPU tests (0.74 M parameters) yet shaped like the real ones: attention at the
lowest level like the ImageNet f16 models, and every channel count a multiple of 32 because taming's
GroupNorm uses 32 groups. The factor is 2 (32 px -> 16x16 tokens) on purpose: at f8 a 32 px test
image has only 4x4 tokens, too few for a short run to reliably raise a tiny random CLIP's score.
"""

from __future__ import annotations

from pathlib import Path

import torch

from imagination.models.vqgan import build_vqgan, save_vqgan

TINY_DDCONFIG = {
    "double_z": False,
    "z_channels": 32,
    "resolution": 32,
    "in_channels": 3,
    "out_ch": 3,
    "ch": 32,
    "ch_mult": [1, 2],
    "num_res_blocks": 1,
    "attn_resolutions": [16],
    "dropout": 0.0,
}
TINY_N_EMBED = 16
TINY_EMBED_DIM = 8  # plain VQ; Gumbel needs embed_dim == z_channels (32)

# Training-only weights the real files carry (discriminator, LPIPS heads): the loader must drop them.
LOSS_KEYS = {
    "loss.discriminator.main.0.weight": (64, 3, 4, 4),
    "loss.perceptual_loss.lin0.model.1.weight": (1, 64, 1, 1),
}


def write_tiny_vqgan(directory, gumbel: bool = False, seed: int = 0) -> Path:
    """Save a seeded tiny VQGAN under `directory` (configs/model.yaml, ckpts/last.ckpt)."""
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG untouched
        torch.manual_seed(seed)
        embed_dim = TINY_DDCONFIG["z_channels"] if gumbel else TINY_EMBED_DIM
        model = build_vqgan(TINY_DDCONFIG, TINY_N_EMBED, embed_dim, gumbel=gumbel)
        with torch.no_grad():  # taming's uniform(+-1/N) init makes all tokens look alike; spread them
            model.codebook.normal_()
        loss = {k: torch.randn(shape) for k, shape in LOSS_KEYS.items()}
        # an empty Adam state as torch 1.7 wrote it (building a real Adam imports dynamo: ~1.5 s)
        adam = {"state": {}, "param_groups": [{"lr": 4.5e-6, "betas": (0.5, 0.9), "eps": 1e-8,
                "weight_decay": 0, "amsgrad": False, "params": list(range(len(list(model.parameters()))))}]}
    return save_vqgan(model, directory, global_step=7, extra_state=loss, optimizer_states=[adam])
