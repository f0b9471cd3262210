"""Speed benchmark suite of the imagination library: `python -m bench` (options: `--help`).

Modules:
  harness    side-by-side timing (alternating variants, repetitions, medians) and peak memory
  reference  the classic VQGAN+CLIP notebook loop, the baseline
  models     real-size random-weight models (CLIP ViT-B/32, VQGAN f16/1024, BriVL public config),
             tiny ones for the smoke test, the demo models from checkpoints/
  levers     prototypes of speed-ups that would need a library change
  cases      the cases: what is compared, with which targets and checks
Results of a quiet run: bench/RESULTS.md.
"""
