"""Scenes of the procedural landscape world: what is in a picture, decided before any pixel.

A `Scene` is a frozen, comparable description: one label per element group (what the scene judge
must recover from pixels and what captions may name) plus a `Layout` of plain numbers (where
things are, how tall, which hue). The renderer only draws what the scene says; fine jitter that no
caption could ever mention (star positions, leaf strokes) comes from `detail_seed`, so the scene
stays small and hashable while the same seed still gives the same pixels.

Why labels are sampled with rules rather than independently: the models learn from pictures that
must make sense ("boats only on water", "no birds in a black night sky where nobody could see
them", "peach blossom and willows are spring trees on grass"). The rules are pairwise, which lets
`sample_scene_for` honour arbitrary constraints from poems or prompts by masking incompatible
choices instead of rejection sampling.

Coordinates in a Layout are fractions of the square canvas: x to the right, y downwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Union

import numpy as np

#: Element groups and their labels. The scene judge predicts one label per group from pixels.
#: `time` also fixes the sky body: day = sun high in the sky, dusk = large low sun setting (behind
#: the mountains when there are any, else on the horizon), night = moon and stars.
GROUPS: dict[str, list[str]] = {
    "time": ["day", "dusk", "night"],
    "mountain": ["none", "plain", "forest", "stones", "snow", "waterfall"],
    "water": ["none", "river", "lake", "sea", "river_to_sea"],
    "tree": ["none", "bamboo", "peach", "pine", "willow", "bamboo_peach"],
    "ground": ["grass", "desert", "snowfield"],
    "boat": ["no", "yes"],
    "birds": ["no", "yes"],
    "flowers": ["no", "yes"],
    "clouds": ["no", "yes"],
}

#: Order in which labels are drawn: a group's weights may depend only on groups before it.
_ORDER = ("time", "mountain", "water", "ground", "tree", "boat", "birds", "flowers", "clouds")

# Physical consistency, as pairwise rules (group_a, group_b, allowed(label_a, label_b)).
_SPRING_TREES = ("peach", "willow", "bamboo_peach")
_RULES = (
    ("ground", "tree", lambda g, t: not (t in _SPRING_TREES and g != "grass")),
    ("ground", "tree", lambda g, t: not (t in ("bamboo", "pine") and g == "desert")),
    ("ground", "flowers", lambda g, f: f == "no" or g == "grass"),
    ("water", "boat", lambda w, b: b == "no" or w != "none"),
    ("time", "birds", lambda t, b: b == "no" or t != "night"),
)

SeedOrRng = Union[int, np.integer, np.random.Generator]


def compatible(group_a: str, label_a: str, group_b: str, label_b: str) -> bool:
    """Whether two labels may appear in one scene (order of the pair does not matter)."""
    for ga, gb, ok in _RULES:
        if (ga, gb) == (group_a, group_b) and not ok(label_a, label_b):
            return False
        if (ga, gb) == (group_b, group_a) and not ok(label_b, label_a):
            return False
    return True


def _weights(group: str, so_far: Mapping[str, str]) -> dict[str, float]:
    """Sampling weights of `group` given the labels drawn before it (before masking by rules).

    Tuned so every label of a multi-valued group is >= ~9% of scenes although rules forbid some
    combinations (trees need grass or snow, so tree labels other than none/pine are rarer).
    """
    if group == "time":
        return {"day": 1.0, "dusk": 1.0, "night": 1.0}
    if group == "mountain":
        return {"none": 0.12, **{m: 0.176 for m in GROUPS["mountain"][1:]}}
    if group == "water":
        return {w: 0.2 for w in GROUPS["water"]}
    if group == "ground":
        return {"grass": 0.6, "desert": 0.18, "snowfield": 0.22}
    if group == "tree":
        ground = so_far.get("ground")
        if ground == "desert":
            return {"none": 1.0}
        if ground == "snowfield":
            return {"none": 0.35, "pine": 0.4, "bamboo": 0.25}
        return {"none": 0.05, **{t: 0.19 for t in GROUPS["tree"][1:]}}
    if group == "boat":
        return {"no": 1.0} if so_far.get("water") == "none" else {"no": 0.5, "yes": 0.5}
    if group == "birds":
        return {"no": 1.0} if so_far.get("time") == "night" else {"no": 0.5, "yes": 0.5}
    if group == "flowers":
        return {"no": 0.45, "yes": 0.55} if so_far.get("ground") == "grass" else {"no": 1.0}
    if group == "clouds":
        return {"no": 0.5, "yes": 0.5}
    raise KeyError(group)


def _check_constraints(constraints: Mapping[str, str]) -> None:
    for group, label in constraints.items():
        if group not in GROUPS or label not in GROUPS[group]:
            raise ValueError(f"unknown element {group}={label!r}; groups are {GROUPS}")
    items = list(constraints.items())
    for i, (ga, la) in enumerate(items):
        for gb, lb in items[i + 1:]:
            if not compatible(ga, la, gb, lb):
                raise ValueError(f"{ga}={la} and {gb}={lb} cannot appear in one scene")


def _sample_labels(rng: np.random.Generator, constraints: Mapping[str, str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for group in _ORDER:
        if group in constraints:
            labels[group] = constraints[group]
            continue
        weights = _weights(group, labels)
        options, probs = [], []
        for label in GROUPS[group]:
            fits = all(compatible(group, label, g, l) for g, l in labels.items()) and all(
                compatible(group, label, g, l) for g, l in constraints.items())
            if fits:
                options.append(label)
                probs.append(weights.get(label, 0.0))
        if not options:  # cannot happen for a consistent constraint set: none/no always fits
            raise ValueError(f"no {group} label fits {labels} and {dict(constraints)}")
        p = np.asarray(probs, dtype=float)
        p = p / p.sum() if p.sum() > 0 else np.full(len(p), 1.0 / len(p))
        labels[group] = options[int(rng.choice(len(options), p=p))]
    return labels


# ----------------------------------------------------------------------------------------------
# Layout


@dataclass(frozen=True)
class Layout:
    """Where and how big everything is, as fractions of the canvas (x right, y down).

    peaks: main range, (x, height, left half width, right half width); the first one is the
      "feature" peak, drawn last (in front) and carrying the waterfall.
    far_peaks: hazy distant range, same format, drawn first.
    body: (x, y, radius) of the sun or moon.
    river: (y_top, x_far, x_near, amp, freq, phase, w_far, w_near, flare) half widths in canvas
      fractions; see `river_center`.
    lake: (cx, cy, rx, ry). shore: y of the sea's shore line (sea, river_to_sea).
    trees: (kind, x, base_y, height) with kind in bamboo/peach/pine/willow.
    boats: (x, waterline_y, length, has_sail). birds: (x, y, size). clouds: (x, y, width).
    """

    horizon: float
    body: tuple[float, float, float]
    crescent: bool
    sky_tone: float
    peaks: tuple[tuple[float, float, float, float], ...]
    far_peaks: tuple[tuple[float, float, float, float], ...]
    mountain_colour: tuple[int, int, int]
    snowline: float
    waterfall_x: float
    ground_tone: float
    shore: float
    river: tuple[float, ...]
    lake: tuple[float, float, float, float]
    trees: tuple[tuple[str, float, float, float], ...]
    boats: tuple[tuple[float, float, float, bool], ...]
    birds: tuple[tuple[float, float, float], ...]
    clouds: tuple[tuple[float, float, float], ...]
    flowers: int
    flower_colours: tuple[int, ...]
    smoke: tuple[float, float]  # (x, base_y) of a lone desert smoke plume, (-1, -1) when none


@dataclass(frozen=True)
class Scene:
    """A structured description of one landscape: one label per group, a layout, a detail seed."""

    time: str
    mountain: str
    water: str
    tree: str
    ground: str
    boat: str
    birds: str
    flowers: str
    clouds: str
    layout: Layout
    detail_seed: int

    def labels(self) -> dict[str, str]:
        """{group: label} for every group of GROUPS, in GROUPS order."""
        return {g: getattr(self, g) for g in GROUPS}

    def satisfies(self, elements: Mapping[str, str]) -> bool:
        """True when every (group, label) of `elements` holds in this scene."""
        return all(getattr(self, g) == l for g, l in elements.items())


# ----------------------------------------------------------------------------------------------
# Geometry shared by layout sampling and rendering


def mountain_top(peaks, horizon: float, x: float) -> float:
    """Upper bound (smallest y) of the mountain silhouette at x; the horizon where there is none.

    The renderer bends slopes by f**p with p >= 0.85, which can rise above the straight triangle;
    using f**0.85 here keeps things placed "above the mountains" really in the sky.
    """
    top = horizon
    for px, h, wl, wr in peaks:
        w = wl if x < px else wr
        f = 1.0 - abs(x - px) / w
        if f > 0:
            top = min(top, horizon - h * f ** 0.85)
    return top


def river_center(river: tuple[float, ...], t: float) -> tuple[float, float, float]:
    """(x, y, half width) of the river at t in [0, 1]: t=0 far end (source or mouth), t=1 bottom.

    Wider towards the viewer (perspective); a river flowing into the sea also flares at its mouth.
    """
    y_top, x_far, x_near, amp, freq, phase, w_far, w_near, flare = river
    y = y_top + (1.03 - y_top) * t
    x = x_far + (x_near - x_far) * t + amp * math.sin(math.pi * freq * t + phase) * math.sin(math.pi * t)
    x = min(0.75, max(0.25, x))
    hw = w_far + (w_near - w_far) * t ** 1.6 + flare * (1.0 - t) ** 6
    return float(x), float(y), float(hw)


def _in_water(water: str, hz: float, shore: float, river, lake, x: float, y: float,
              margin: float = 0.0) -> bool:
    """Whether canvas point (x, y) lies on water (geometry without the renderer's shore wobble)."""
    if y < hz:
        return False
    if water in ("sea", "river_to_sea") and y <= shore + margin:
        return True
    if water in ("river", "river_to_sea") and y >= river[0]:
        cx, _, hw = river_center(river, (y - river[0]) / (1.03 - river[0]))
        if abs(x - cx) <= hw + margin:
            return True
    if water == "lake":
        cx, cy, rx, ry = lake
        return ((x - cx) / (rx + margin)) ** 2 + ((y - cy) / (ry + margin)) ** 2 <= 1.0
    return False


# ----------------------------------------------------------------------------------------------
# Layout sampling

_PLAIN_HUES = ((96, 110, 140), (118, 106, 138), (86, 104, 128), (130, 122, 152), (104, 116, 132))
_MOUNTAIN_HUES = {
    "plain": _PLAIN_HUES,
    "forest": ((72, 116, 62), (60, 102, 56), (86, 122, 66)),
    "stones": ((140, 112, 84), (124, 102, 80), (150, 124, 92)),
    "snow": ((88, 94, 112), (78, 90, 106), (100, 100, 118)),
    "waterfall": ((80, 98, 88), (92, 100, 112), (88, 92, 82)),
}


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _sample_peaks(rng, labels, hz):
    if labels["mountain"] == "none":
        return (), ()
    side = 0
    if labels["water"] == "sea":  # keep a stretch of open sea horizon visible
        side = -1 if rng.random() < 0.5 else 1
    lo, hi = {0: (0.0, 1.0), -1: (-0.05, 0.55), 1: (0.45, 1.05)}[side]
    fx = {0: _u(rng, 0.36, 0.64), -1: _u(rng, 0.3, 0.42), 1: _u(rng, 0.58, 0.7)}[side]
    fh = _u(rng, 0.26, min(0.40, hz - 0.17))
    feature = (fx, fh, fh * _u(rng, 0.95, 1.5), fh * _u(rng, 0.95, 1.5))
    others = []
    for _ in range(int(rng.integers(0, 4))):
        h = _u(rng, 0.12, fh * 0.92)
        others.append((_u(rng, lo, hi), h, h * _u(rng, 0.9, 1.8), h * _u(rng, 0.9, 1.8)))
    far = []
    if rng.random() < 0.5:
        for _ in range(int(rng.integers(2, 5))):
            h = _u(rng, 0.07, 0.2)
            far.append((_u(rng, lo, hi), h, h * _u(rng, 1.4, 2.6), h * _u(rng, 1.4, 2.6)))
    # Drawn back to front: others first, the feature peak last; stored feature-first.
    return (feature, *others), tuple(far)


def _sample_water(rng, labels, hz, waterfall_x):
    water = labels["water"]
    depth = 1.0 - hz
    shore = -1.0
    river: tuple[float, ...] = (0.0,) * 9
    lake = (0.0, 0.0, 0.0, 0.0)
    if water == "sea":
        shore = min(hz + depth * _u(rng, 0.5, 0.75), 0.86)
    if water == "river_to_sea":
        shore = hz + depth * _u(rng, 0.2, 0.32)
    if water in ("river", "river_to_sea"):
        y_top = hz if water == "river" else shore
        x_far = waterfall_x if (water == "river" and waterfall_x > 0) else _u(rng, 0.36, 0.64)
        flare = 0.0 if water == "river" else _u(rng, 0.05, 0.09)
        river = (y_top, x_far, _u(rng, 0.38, 0.62), _u(rng, 0.04, 0.11), _u(rng, 1.0, 2.0),
                 _u(rng, 0, 2 * np.pi), 0.006, _u(rng, 0.09, 0.13), flare)
    if water == "lake":
        cy = hz + depth * _u(rng, 0.32, 0.42)
        ry = min(depth * _u(rng, 0.15, 0.22), cy - hz - 0.02)
        lake = (_u(rng, 0.38, 0.62), cy, _u(rng, 0.25, 0.38), ry)
    return shore, river, lake


def _sample_body(rng, labels, hz, all_peaks):
    time = labels["time"]
    if time == "dusk":
        r = _u(rng, 0.06, 0.085)
        if all_peaks:
            px, h, wl, wr = all_peaks[int(rng.integers(len(all_peaks)))]
            x = float(np.clip(px + _u(rng, -0.35, 0.35) * (wl if rng.random() < 0.5 else wr),
                              0.1, 0.9))
            y = mountain_top(all_peaks, hz, x) + r * _u(rng, 0.0, 0.3)
        else:
            x, y = _u(rng, 0.2, 0.8), hz + r * _u(rng, -0.55, -0.1)
        return (x, y, r)
    r = _u(rng, 0.038, 0.05) if time == "day" else _u(rng, 0.035, 0.052)
    for _ in range(40):
        x, y = _u(rng, 0.1, 0.9), _u(rng, 0.07, 0.24)
        if y + r + 0.03 < mountain_top(all_peaks, hz, x):
            return (x, y, r)
    return (x, 0.07, r)  # fallback: mountains are at most 0.4 tall, so y=0.07 is always clear


def _sample_clouds(rng, hz, all_peaks, body):
    clouds = []
    bx, by, br = body
    n = int(rng.integers(2, 5))
    for _ in range(60):
        if len(clouds) >= n:
            break
        x, y, w = _u(rng, 0.05, 0.95), _u(rng, 0.07, 0.3), _u(rng, 0.2, 0.34)
        if y + 0.05 > mountain_top(all_peaks, hz, x) or y + 0.05 > hz - 0.04:
            continue
        if abs(x - bx) < w / 2 + br + 0.03 and abs(y - by) < br + 0.08:
            continue
        if any(abs(x - cx) < (w + cw) / 2.4 and abs(y - cy) < 0.06 for cx, cy, cw in clouds):
            continue
        clouds.append((x, y, w))
    if not clouds:  # the sky always has room somewhere above the mountains
        clouds.append((0.25 if bx > 0.5 else 0.75, 0.08, 0.22))
    return tuple(clouds)


def _sample_birds(rng, hz, all_peaks, body, clouds):
    birds = []
    bx, by, br = body
    for _ in range(10):  # a flock centre with sky around it
        cx, cy = _u(rng, 0.2, 0.8), _u(rng, 0.1, 0.32)
        if cy + 0.08 < mountain_top(all_peaks, hz, cx):
            break
    else:
        cx, cy = 0.5, 0.1
    n = int(rng.integers(3, 8))
    for _ in range(80):
        if len(birds) >= n:
            break
        x, y, s = cx + _u(rng, -0.18, 0.18), cy + _u(rng, -0.06, 0.06), _u(rng, 0.03, 0.045)
        if not (0.04 < x < 0.96 and 0.04 < y < mountain_top(all_peaks, hz, x) - 0.05):
            continue
        if (x - bx) ** 2 + (y - by) ** 2 < (br + s + 0.01) ** 2:
            continue
        if any((x - ox) ** 2 + (y - oy) ** 2 < (0.8 * (s + os_)) ** 2 for ox, oy, os_ in birds):
            continue
        birds.append((x, y, s))
    if not birds:
        birds.append((cx, 0.08, 0.04))
    return tuple(birds)


def _tree_base(rng, labels, shore):
    lo = 0.92 if labels["water"] not in ("sea",) else max(0.92, shore + 0.06)
    return _u(rng, lo, 1.02)


def _side_x(rng, side: str, inner: float = 0.0) -> float:
    x = _u(rng, 0.05, 0.15) + inner
    return x if side == "left" else 1.0 - x


def _sample_trees(rng, labels, shore):
    kind = labels["tree"]
    if kind == "none":
        return ()
    sides = {0: ["left"], 1: ["right"], 2: ["left", "right"]}[int(rng.integers(3))]
    trees = []
    if kind == "bamboo_peach":
        side = sides[0]
        base = _tree_base(rng, labels, shore)
        # peach "beyond" the bamboo: further in and slightly further away (drawn first)
        trees.append(("peach", _side_x(rng, side, 0.15), base - 0.04, _u(rng, 0.3, 0.38)))
        trees.append(("bamboo", _side_x(rng, side, 0.04), base, _u(rng, 0.4, 0.55)))
        return tuple(trees)
    heights = {"bamboo": (0.38, 0.56), "peach": (0.3, 0.42), "pine": (0.36, 0.58),
               "willow": (0.34, 0.48)}[kind]
    inner = 0.03  # clumps and crowns spread sideways: keep them (mostly) in frame
    for side in sides:
        count = 2 if (kind == "pine" and rng.random() < 0.5) else 1
        for i in range(count):
            trees.append((kind, _side_x(rng, side, inner + 0.07 * i),
                          _tree_base(rng, labels, shore) - 0.03 * i,
                           _u(rng, *heights) * (0.85 if i else 1.0)))
    trees.sort(key=lambda t: t[2])  # far (higher base) first
    return tuple(trees)


def _hidden_by_tree(trees, x, y, length) -> bool:
    """Whether a boat at (x, y) would sit behind a tree's crown or clump (it must stay visible)."""
    for _, tx, base, h in trees:
        if abs(x - tx) < 0.36 * h + 0.6 * length and base - 1.05 * h < y:
            return True
    return False


def _sample_boats(rng, labels, hz, shore, river, lake, trees):
    if labels["boat"] == "no":
        return ()
    water = labels["water"]
    boats = []
    want = 1 if rng.random() < 0.65 else 2
    for attempt in range(24):
        if len(boats) >= want:
            break
        on_river = water == "river" or (water == "river_to_sea" and rng.random() < 0.5)
        if on_river:
            t = _u(rng, 0.4, 0.72)
            x, y, hw = river_center(river, t)
            length = float(np.clip(1.6 * hw, 0.075, 0.15))
            y = y + 0.2 * hw
        elif water == "lake":
            cx, cy, rx, ry = lake
            x, y = cx + _u(rng, -0.55, 0.55) * rx, cy + _u(rng, -0.1, 0.5) * ry
            length = 0.075 + 0.12 * (y - hz) / (1 - hz)
        else:  # sea band
            y = _u(rng, hz + 0.035, max(hz + 0.04, shore - 0.03))
            x = _u(rng, 0.3, 0.7)
            length = 0.07 + 0.14 * (y - hz) / (1 - hz)
        if any(abs(x - bx) < (length + bl) / 2 and abs(y - by) < 0.05 for bx, by, bl, _ in boats):
            continue
        if _hidden_by_tree(trees, x, y, length) and (attempt < 20 or boats):
            continue
        boats.append((x, y, length, bool(rng.random() < 0.65)))
    return tuple(boats)


def _sample_layout(rng: np.random.Generator, labels: Mapping[str, str]) -> Layout:
    hz = _u(rng, 0.56, 0.66)
    peaks, far = _sample_peaks(rng, labels, hz)
    all_peaks = peaks + far
    waterfall_x = -1.0
    if labels["mountain"] == "waterfall":
        px, h, wl, wr = peaks[0]
        waterfall_x = px + _u(rng, -0.15, 0.15) * min(wl, wr)
    shore, river, lake = _sample_water(rng, labels, hz, waterfall_x)
    body = _sample_body(rng, labels, hz, all_peaks)
    hues = _MOUNTAIN_HUES.get(labels["mountain"], _PLAIN_HUES)
    base = np.asarray(hues[int(rng.integers(len(hues)))], dtype=float)
    colour = tuple(int(c) for c in np.clip(base + rng.uniform(-8, 8, 3), 0, 255))
    clouds = _sample_clouds(rng, hz, all_peaks, body) if labels["clouds"] == "yes" else ()
    birds = _sample_birds(rng, hz, all_peaks, body, clouds) if labels["birds"] == "yes" else ()
    smoke = (-1.0, -1.0)
    if labels["ground"] == "desert" and labels["water"] in ("none", "river") and rng.random() < 0.5:
        for _ in range(10):  # against open sky only, so it never reads as a waterfall
            x, y = _u(rng, 0.15, 0.85), hz + _u(rng, 0.04, 0.14)
            if mountain_top(all_peaks, hz, x) < hz - 0.005:
                continue
            if not _in_water(labels["water"], hz, shore, river, lake, x, y, 0.06):
                smoke = (x, y)
                break
    trees = _sample_trees(rng, labels, shore)
    return Layout(
        horizon=hz, body=body, crescent=bool(labels["time"] == "night" and rng.random() < 0.25),
        sky_tone=_u(rng, 0, 1), peaks=peaks, far_peaks=far, mountain_colour=colour,
        snowline=_u(rng, 0.38, 0.5), waterfall_x=waterfall_x, ground_tone=_u(rng, 0, 1),
        shore=shore, river=river, lake=lake, trees=trees,
        boats=_sample_boats(rng, labels, hz, shore, river, lake, trees), birds=birds,
        clouds=clouds,
        flowers=int(rng.integers(35, 70)) if labels["flowers"] == "yes" else 0,
        flower_colours=tuple(int(i) for i in rng.choice(5, size=int(rng.integers(1, 4)),
                                                        replace=False)),
        smoke=smoke,
    )


# ----------------------------------------------------------------------------------------------
# Public sampling API


def _rng(seed_or_rng: SeedOrRng) -> np.random.Generator:
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    return np.random.default_rng(int(seed_or_rng))


def sample_scene(seed_or_rng: SeedOrRng) -> Scene:
    """A random scene; the same seed always gives the same scene (and so the same pixels)."""
    return sample_scene_for({}, seed_or_rng)


def sample_scene_for(elements: Mapping[str, str], seed_or_rng: SeedOrRng) -> Scene:
    """A random scene in which every (group, label) of `elements` holds; other groups random.

    Raises ValueError for unknown labels or constraints that cannot hold together (e.g. birds=yes
    with time=night, boat=yes with water=none).
    """
    _check_constraints(elements)
    rng = _rng(seed_or_rng)
    labels = _sample_labels(rng, elements)
    layout = _sample_layout(rng, labels)
    return Scene(**labels, layout=layout, detail_seed=int(rng.integers(2 ** 31)))
