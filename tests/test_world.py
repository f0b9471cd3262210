"""The procedural landscape world: determinism, consistency, captions, poems, balance, looks.

Every test here can fail on a plausible regression: a global-random call breaks determinism, a
new phrase outside the vocabulary breaks the tokenizers, a sampling rule change breaks balance
or constraints, a palette change makes night look like day or snow look like rock.
"""

from __future__ import annotations

import re
import time
from collections import Counter

import numpy as np
import pytest

from imagination.world import (EVAL_PROMPTS, GROUPS, POEM_LINES, PROMPT_FAMILY, caption, captions,
                               chinese_charset, english_tokens, english_words, parse_prompt,
                               poem_lines_for, render, render_batch, sample_scene,
                               sample_scene_for)
from imagination.world.scene import mountain_top

N_BALANCE = 2000


@pytest.fixture(scope="module")
def many_scenes():
    return [sample_scene(s) for s in range(N_BALANCE)]


# -- determinism ---------------------------------------------------------------------------------


def test_same_seed_same_scene_pixels_and_captions():
    a, b = sample_scene(1234), sample_scene(1234)
    assert a == b
    assert render(a).tobytes() == render(b).tobytes()
    def caps(scene):
        return (captions(scene, "zh", np.random.default_rng(5), 4)
                + captions(scene, "en", np.random.default_rng(6), 4))

    ca, cb = caps(a), caps(b)
    assert ca == cb
    # a Generator works as well as an int, and sampling does not touch global random state
    np.random.seed(0)
    before = np.random.random()
    np.random.seed(0)
    assert sample_scene(np.random.default_rng(9)) == sample_scene(9)
    assert np.random.random() == before


def test_different_seeds_different_images():
    imgs = render_batch(range(8))
    for i in range(8):
        for j in range(i + 1, 8):
            assert not np.array_equal(imgs[i], imgs[j])
    assert len({sample_scene(s) for s in range(50)}) == 50


def test_image_shape_dtype_range():
    img = render(sample_scene(3))
    assert img.shape == (128, 128, 3) and img.dtype == np.uint8
    assert img.min() < 80 and img.max() > 180  # a picture, not a flat fill
    assert render(sample_scene(3), size=64).shape == (64, 64, 3)
    batch = render_batch([3, 4, 5], size=32)
    assert batch.shape == (3, 32, 32, 3) and batch.dtype == np.uint8
    assert render_batch([]).shape == (0, 128, 128, 3)


def test_render_is_fast_enough():
    scenes = [sample_scene(s) for s in range(40)]
    render(scenes[0])
    t = time.process_time()  # CPU time: other processes on a shared machine do not count
    for s in scenes:
        render(s)
    per_scene = (time.process_time() - t) / len(scenes)
    assert per_scene < 0.02, f"{per_scene * 1e3:.1f} ms per scene (target ~5 ms)"


# -- consistency and balance ---------------------------------------------------------------------


def test_labels_cover_groups_and_physics(many_scenes):
    for s in many_scenes:
        lab = s.labels()
        assert list(lab) == list(GROUPS)
        assert all(lab[g] in GROUPS[g] for g in GROUPS)
        assert lab["boat"] == "no" or lab["water"] != "none"
        assert lab["birds"] == "no" or lab["time"] != "night"
        assert lab["flowers"] == "no" or lab["ground"] == "grass"
        if lab["tree"] in ("peach", "willow", "bamboo_peach"):
            assert lab["ground"] == "grass"
        if lab["ground"] == "desert":
            assert lab["tree"] == "none"
        lay = s.layout
        assert bool(lay.peaks) == (lab["mountain"] != "none")
        assert len(lay.boats) > 0 if lab["boat"] == "yes" else not lay.boats
        assert len(lay.birds) > 0 if lab["birds"] == "yes" else not lay.birds
        assert len(lay.clouds) > 0 if lab["clouds"] == "yes" else not lay.clouds
        bx, by, br = lay.body
        top = mountain_top(lay.peaks + lay.far_peaks, lay.horizon, bx)
        if lab["time"] == "dusk" and lay.peaks:  # the sun sets behind the mountains
            assert top - 1e-9 <= by < top + br
        elif lab["time"] == "dusk":  # ... or on the horizon
            assert lay.horizon - br < by < lay.horizon
        else:  # sun or moon high, clear of the mountains
            assert by + br < top


def test_label_balance(many_scenes):
    for group, labels in GROUPS.items():
        counts = Counter(s.labels()[group] for s in many_scenes)
        floor = 0.08 if len(labels) > 2 else 0.2
        for label in labels:
            share = counts[label] / len(many_scenes)
            assert share >= floor, f"{group}={label} only {share:.1%} of scenes"


def test_impossible_constraints_are_refused():
    with pytest.raises(ValueError):
        sample_scene_for({"birds": "yes", "time": "night"}, 0)
    with pytest.raises(ValueError):
        sample_scene_for({"boat": "yes", "water": "none"}, 0)
    with pytest.raises(ValueError):
        sample_scene_for({"tree": "oak"}, 0)


# -- captions ------------------------------------------------------------------------------------


def test_captions_name_only_what_is_there():
    rng = np.random.default_rng(0)
    en_vocab, zh_chars = set(english_words()), set(chinese_charset())
    sizes = Counter()
    for seed in range(150):
        scene = sample_scene(seed)
        items = set(scene.labels().items())
        for lang in ("en", "zh"):
            caps = captions(scene, lang, rng, 5) + captions(scene, lang, rng, 2, poem_prob=1.0)
            assert caps
            for c in caps:
                assert c.text and c.elements
                assert set(c.elements.items()) <= items, (c, scene.labels())
                if lang == "zh":
                    assert not re.search(r"[A-Za-z\s]", c.text), c.text
                    assert set(c.text) <= zh_chars, set(c.text) - zh_chars
                else:
                    assert c.text == c.text.lower()
                    assert set(english_tokens(c.text)) <= en_vocab
                sizes[len(c.elements)] += 1
    # partial mentions: many one- and two-element captions, some rich ones
    total = sum(sizes.values())
    assert sizes[1] / total > 0.15 and sizes[2] / total > 0.15
    assert sum(n for k, n in sizes.items() if k >= 4) / total > 0.05


def test_caption_elements_are_exactly_what_the_text_names():
    """Parsing a generated caption recovers its elements: nothing named is missing from
    `elements` and nothing in `elements` is unnamed."""
    rng = np.random.default_rng(1)
    for seed in range(200):
        scene = sample_scene(seed)
        for lang in ("en", "zh"):
            for c in captions(scene, lang, rng, 3):
                assert parse_prompt(c.text) == c.elements, (lang, c)


def test_captions_use_synonyms_and_word_order():
    scene = sample_scene_for({"mountain": "snow", "water": "lake", "time": "night"}, 2)
    rng = np.random.default_rng(2)
    for lang in ("en", "zh"):
        texts = {caption(scene, lang, rng, groups=["mountain"]).text for _ in range(200)}
        assert len(texts) >= 6, texts
        pair = [caption(scene, lang, rng, groups=["mountain", "water"]).text for _ in range(300)]
        assert len(set(pair)) >= 20
    zh = [caption(scene, "zh", rng, groups=["mountain"]).text for _ in range(300)]
    assert {"雪山", "积雪的山", "有积雪的山脉"} <= {t for t in zh}


def test_prompt_family_is_producible():
    rng = np.random.default_rng(3)
    for en, zh, elements in PROMPT_FAMILY:
        scene = sample_scene_for(elements, 11)
        for lang, want in (("en", en), ("zh", zh)):
            seen = {caption(scene, lang, rng).text for _ in range(4000)}
            assert want in seen, (lang, want)
            c = next(c for c in (caption(scene, lang, rng) for _ in range(4000)) if c.text == want)
            assert c.elements == elements


def test_vocabularies_are_sorted_and_clean():
    words, chars = english_words(), chinese_charset()
    assert words == sorted(set(words)) and chars == sorted(set(chars))
    assert all(w == w.lower() and " " not in w for w in words)
    assert not [c for c in chars if c.isascii()]
    for w in ("mountains", "snow", "waterfall", "stones", "forest", "boat", "sea", "river"):
        assert w in words
    assert set("有森林石头积雪瀑布的山脉") <= set(chars)


# -- poems and prompts ---------------------------------------------------------------------------


def test_poem_lines_cover_the_classics_and_are_satisfiable():
    zh = {line.zh for line in POEM_LINES}
    for must in ("白日依山尽", "黄河入海流", "竹外桃花三两枝", "床前明月光", "举头望明月", "孤帆远影碧空尽",
                 "窗含西岭千秋雪", "飞流直下三千尺", "千山鸟飞绝", "两个黄鹂鸣翠柳", "大漠孤烟直",
                 "长河落日圆", "明月松间照", "野渡无人舟自横", "春江潮水连海平"):
        assert must in zh
    assert len(POEM_LINES) >= 22
    en_vocab, zh_chars = set(english_words()), set(chinese_charset())
    for i, line in enumerate(POEM_LINES):
        assert line.elements and set(line.zh) <= zh_chars
        assert set(english_tokens(line.en)) <= en_vocab
        for seed in range(4):
            scene = sample_scene_for(line.elements, 100 * i + seed)
            assert scene.satisfies(line.elements), (line, scene.labels())
            assert line in poem_lines_for(scene)


def test_eval_prompts_are_satisfiable_and_parse():
    assert len(EVAL_PROMPTS) == 20
    for i, (en, zh, elements) in enumerate(EVAL_PROMPTS + PROMPT_FAMILY):
        assert 1 <= len(elements) <= 3
        assert not re.search(r"[A-Za-z\s]", zh)
        assert parse_prompt(en) == elements, en
        assert parse_prompt(zh) == elements, zh
        for seed in range(4):
            assert sample_scene_for(elements, 7 * i + seed).satisfies(elements)
    assert all(2 <= len(e) <= 3 for _, _, e in EVAL_PROMPTS)


@pytest.mark.parametrize("prompt,expected", [
    ("snowy mountains at night", {"mountain": "snow", "time": "night"}),
    ("mountains with snow at dusk", {"mountain": "snow", "time": "dusk"}),
    ("a boat on the sea", {"boat": "yes", "water": "sea"}),
    ("peach blossoms beyond bamboo", {"tree": "bamboo_peach"}),
    ("a river flowing into the sea", {"water": "river_to_sea"}),
    ("birds over the grassland", {"birds": "yes", "ground": "grass"}),
    ("a desert at sunset", {"ground": "desert", "time": "dusk"}),
    ("有瀑布的山脉", {"mountain": "waterfall"}),
    ("月光下的湖", {"time": "night", "water": "lake"}),
])
def test_studio_prompts_parse(prompt, expected):
    assert parse_prompt(prompt) == expected


# -- looks ---------------------------------------------------------------------------------------


def _renders(elements, n, base):
    scenes = [sample_scene_for(elements, base + i) for i in range(n)]
    return scenes, [render(s).astype(np.float32) for s in scenes]


def test_night_is_darker_than_day():
    _, day = _renders({"time": "day"}, 16, 0)
    _, night = _renders({"time": "night"}, 16, 0)
    day_mean = np.mean([im.mean() for im in day])
    night_mean = np.mean([im.mean() for im in night])
    assert night_mean < 0.5 * day_mean
    assert max(im.mean() for im in night) < min(im.mean() for im in day)


def _white_on_mountains(scene, img):
    """Share of near-white pixels above the horizon, the sun's disc and glow masked out."""
    size = img.shape[0]
    hz = int(scene.layout.horizon * size)
    bx, by, br = (v * size for v in scene.layout.body)
    yy, xx = np.mgrid[0:hz, 0:size]
    away = (yy - by) ** 2 + (xx - bx) ** 2 > (2.5 * br) ** 2
    white = (img[:hz] > 215).all(axis=-1) & away
    return white.mean()


def test_snow_mountains_are_white():
    fixed = {"time": "day", "clouds": "no", "boat": "no", "ground": "grass"}
    snow = [_white_on_mountains(s, im)
            for s, im in zip(*_renders({**fixed, "mountain": "snow"}, 12, 50))]
    plain = [_white_on_mountains(s, im)
             for s, im in zip(*_renders({**fixed, "mountain": "plain"}, 12, 50))]
    assert np.mean(snow) > np.mean(plain) + 0.02
    assert min(snow) > max(plain)


def _green_above_horizon(scene, img):
    hz = int(scene.layout.horizon * img.shape[0])
    r, g, b = (img[:hz, :, k] for k in range(3))
    return ((g > r + 15) & (g > b + 5)).mean()


def test_forest_mountains_are_green():
    fixed = {"time": "day", "tree": "none", "clouds": "no"}
    forest = [_green_above_horizon(s, im)
              for s, im in zip(*_renders({**fixed, "mountain": "forest"}, 10, 70))]
    plain = [_green_above_horizon(s, im)
             for s, im in zip(*_renders({**fixed, "mountain": "plain"}, 10, 70))]
    assert min(forest) > max(plain)
