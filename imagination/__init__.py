"""imagination: what frozen image-text models "imagine" when they read a text.

Layers, each depending only on the ones above it:
  models/      frozen encoders (CLIP, BriVL) and the VQGAN decoder, plus the registry of checkpoints
  canvases/    image parameterisations (Fourier pixels, plain pixels, VQGAN tokens)
  augment      kornia cutouts and augmentations
  objectives   prompts -> target embeddings -> loss
  loop         the batched optimisation loop, a generator of progress events
  pipeline     one call from names and settings to a running loop (used by the CLI and the studio)
  cli          `python -m imagination`
"""

__version__ = "0.1.0"
