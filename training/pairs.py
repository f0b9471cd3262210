"""Counterfactual scene pairs: a scene and a copy that differs in exactly one named element.

Why: after plain contrastive training, most retrieval failures were small elements the caption
names but the top image lacks (a boat, birds, flowers, clouds) and look-alike trees (bamboo vs
pine, peach vs willow). In a random batch, an image that differs from the captioned scene only
there is rare, so the loss seldom pays for looking at a boat. Putting the scene and its
counterfactual in the same batch, with the original's caption naming the changed element, makes
each such pair a hard negative: the only way to tell the two apart is the element itself.

The pair keeps the layout and detail seed, so everything else in the two images is the same.
This stays contrastive learning on captions; the labels only decide which element to change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from imagination import world

_TREE_SWAPS = {"bamboo": "pine", "pine": "bamboo", "peach": "willow", "willow": "peach"}


def _without(scene: world.Scene, group: str) -> world.Scene:
    """`scene` with a present small element (boat, birds, flowers, clouds) removed."""
    empty = {"boat": {"boats": ()}, "birds": {"birds": ()}, "flowers": {"flowers": 0},
             "clouds": {"clouds": ()}}[group]
    return replace(scene, **{group: "no"}, layout=replace(scene.layout, **empty))


def _other_trees(scene: world.Scene, rng: np.random.Generator) -> world.Scene:
    """`scene` with its trees changed into their look-alikes in the same places (bamboo <-> pine,
    peach <-> willow), or one half of a bamboo-and-peach grove removed."""
    if scene.tree == "bamboo_peach":
        keep = "bamboo" if rng.random() < 0.5 else "peach"
        trees = tuple(t for t in scene.layout.trees if t[0] == keep)
        return replace(scene, tree=keep, layout=replace(scene.layout, trees=trees))
    kind = _TREE_SWAPS[scene.tree]
    trees = tuple((kind, *t[1:]) for t in scene.layout.trees)
    return replace(scene, tree=kind, layout=replace(scene.layout, trees=trees))


def counterfactual(scene: world.Scene, rng: np.random.Generator) -> tuple[world.Scene, str] | None:
    """A one-element variant of `scene` and the group that changed, or None when none applies."""
    options = [g for g in ("boat", "birds", "flowers", "clouds") if getattr(scene, g) == "yes"]
    if scene.tree != "none":  # look-alikes obey the same ground rules, so the variant is valid
        options.append("tree")
    if not options:
        return None
    group = options[int(rng.integers(len(options)))]
    variant = _other_trees(scene, rng) if group == "tree" else _without(scene, group)
    return variant, group


def _render_pairs(seeds):
    images, scenes, focus = [], [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        made = None
        while made is None:
            scene = world.sample_scene(rng)
            made = counterfactual(scene, rng)
        variant, group = made
        images += [world.render(scene), world.render(variant)]
        scenes += [scene, variant]
        focus.append(group)
    return np.stack(images), scenes, focus


@dataclass
class PairSet:
    """2P images: entries 2k and 2k+1 are a scene and its counterfactual, differing in focus[k]."""

    pixels: np.ndarray  # (2P, H, W, 3) uint8
    scenes: list
    focus: list[str]

    def __len__(self) -> int:
        return len(self.focus)


def render_pairs(count: int, seed_base: int, workers: int | None = None) -> PairSet:
    from training.data import default_workers, map_in_workers, seed_chunks

    workers = workers or default_workers()
    results = map_in_workers(_render_pairs, seed_chunks(range(seed_base, seed_base + count), workers), workers)
    return PairSet(np.concatenate([r[0] for r in results]), [s for r in results for s in r[1]],
                   [f for r in results for f in r[2]])


def pair_captions(pairs: PairSet, indices, lang: str, rng: np.random.Generator) -> list[str]:
    """Captions for pairs[indices], two per pair; the changed element is always named where the
    scene has something to name for it (a removed boat cannot be named, a cloudless sky can)."""
    texts = []
    for k in indices:
        group = pairs.focus[k]
        for scene in pairs.scenes[2 * k:2 * k + 2]:
            drawn = world.caption(scene, lang, rng)
            if group not in drawn.elements:
                try:  # the world's own rule decides what can be named
                    drawn = world.caption(scene, lang, rng, groups=sorted({*drawn.elements, group}))
                except ValueError:
                    pass
            texts.append(drawn.text)
    return texts
