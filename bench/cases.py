"""The benchmark cases. Each builds its variants, measures them side by side (bench.harness.measure)
and returns a CaseResult with speeds, memory, ratios against their targets and PASS/FAIL checks.

Case names (select with --only: a name, a prefix or a glob; see bench/RESULTS.md for the method):
  loop-{canvas}-{size}     our loop vs the classic notebook loop (bench/reference.py), CLIP ViT-B/32,
                           canvas vqgan (f16, 1024 codes) or pixels (Fourier): our default vs the
                           notebooks' fp32, and both loops in bf16, and both in fp32
  poem                     8 lines as one batch vs 8 separate runs (demo models if present)
  brivl-pool               RoI pooling alone: batched vs the official per-image loop
  brivl-tower              BriVL image tower (EfficientNet-B5, 456 px) forward+backward, both poolings
  spi-{clip,brivl}-demo    seconds per image with the demo models at the studio defaults
  lever-cutouts-{size}     cutouts + augmentations: one batched warp vs the Python loop + kornia
  lever-bf16               fp32 vs bf16 for the whole step vs bf16 for the encoder only
  lever-channels-last      VQGAN decoder: fp32/bf16 x NCHW/channels_last x taming's swish/fused SiLU
  lever-compile            torch.compile (CUDA: the whole step's models; CPU: opt-in, decoder only)
  lever-overheads          text embedded once vs every step; no sync vs .item() every step
  check                    similarity reached after N steps: ours vs reference, bf16 vs fp32"""

from __future__ import annotations

from bench.common import CaseSpec, Config
from bench.lever_cases import (bf16_case, brivl_pool_case, brivl_tower_case, channels_last_case, compile_case,
                               cutouts_case, overheads_case)
from bench.loop_cases import check_case, loop_case, poem_case, spi_case


# --- the list ------------------------------------------------------------------------------------------------
def all_cases(cfg: Config) -> list[CaseSpec]:
    cases = []
    for size in cfg.sizes:
        for kind in ("vqgan", "pixels"):
            cases.append(CaseSpec(f"loop-{kind}-{size}", f"{'VQGAN' if kind == 'vqgan' else 'Fourier pixels'}"
                                  f"+CLIP {size} px: our loop vs the classic loop", loop_case(kind, size)))
    cases += [
        CaseSpec("poem", "a poem of 8 lines: one batch vs 8 separate runs", poem_case),
        CaseSpec("brivl-pool", "BriVL RoI pooling fwd+bwd: batched vs per-image loop", brivl_pool_case),
        CaseSpec("brivl-tower", "BriVL image tower fwd+bwd: batched vs per-image pooling", brivl_tower_case),
        CaseSpec("spi-clip-demo", "seconds per image, clip-demo + vqgan-demo, studio defaults", spi_case("clip")),
        CaseSpec("spi-brivl-demo", "seconds per image, brivl-demo + vqgan-demo, studio defaults", spi_case("brivl")),
    ]
    for size in cfg.sizes:
        cases.append(CaseSpec(f"lever-cutouts-{size}", f"cutouts at {size} px: one warp vs Python loop + kornia",
                              cutouts_case(size)))
    cases += [
        CaseSpec("lever-bf16", "bf16 autocast: whole step vs encoder only vs fp32", bf16_case),
        CaseSpec("lever-channels-last", "VQGAN decoder: fp32|bf16 x NCHW|channels_last x swish|fused SiLU",
                 channels_last_case),
        CaseSpec("lever-compile", "torch.compile: VQGAN decoder (CPU), the whole step's models (CUDA)" +
                 ("" if cfg.cuda else " [CPU: only with --only: a 2-3 min compile that did not pay]"),
                 compile_case, default=cfg.cuda),
        CaseSpec("lever-overheads", "text embedded every step, sync every step", overheads_case),
        CaseSpec("check", "similarity reached: ours vs reference, bf16 vs fp32", check_case),
    ]
    return cases
