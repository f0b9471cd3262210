"""Evaluation of the demo models on held-out scenes of the procedural world (see __main__)."""
