"""Training of the demo models shipped in checkpoints/ (never imported by the library or studio).

`python -m training all --device cuda` trains the VQGAN, CLIP, BriVL and the evaluation-only scene
judge on the procedural world (imagination.world) and saves them in the real checkpoint formats.
"""
