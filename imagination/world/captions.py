"""Bilingual captions for scenes, in the weak-correlation spirit of the paper.

Why this shape: BriVL and CLIP learn from loosely matching image-text pairs, not exhaustive
descriptions. So a caption names a random subset of what is in the picture (sometimes one
element, sometimes many), picks among synonyms, varies word order and wraps the mention in varied
templates. `Caption.elements` records exactly the (group, label) pairs the text names, so
retrieval can be checked ("the top-1 image shows every element the caption names") and a caption
can never name something the scene lacks.

All text comes from the tables in this module (plus poems.py), which is what lets
`english_words()` and `chinese_charset()` list the full vocabulary without sampling, and lets
`parse_prompt` map a studio prompt back onto the world's elements.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from .scene import GROUPS, Scene

LANGS = ("en", "zh")


@dataclass(frozen=True)
class Caption:
    """A caption and exactly the {group: label} elements its text names."""

    text: str
    elements: dict[str, str]


# ----------------------------------------------------------------------------------------------
# Phrase tables: group -> label -> phrases. The first three phrases of each label are noun
# phrases that fit inside relation templates ("a boat on {water}", "{water}上的{boat}").

EN: dict[str, dict[str, list[str]]] = {
    "mountain": {
        "plain": ["mountains", "a mountain range", "distant mountains", "bare mountains", "peaks",
                  "a mountain"],
        "forest": ["mountains with forest", "forested mountains", "wooded mountains",
                   "mountains covered with forest", "green mountains with dense forest"],
        "stones": ["mountains with stones", "rocky mountains", "stony mountains",
                   "mountains covered with boulders", "mountains with big grey stones"],
        "snow": ["mountains with snow", "snowy mountains", "snow-capped peaks",
                 "snow-capped mountains", "mountains covered in snow"],
        "waterfall": ["mountains with a waterfall", "a mountain with a waterfall",
                      "cliffs with a waterfall", "a waterfall",
                      "a waterfall pouring down the mountain"],
    },
    "water": {
        "river": ["a river", "a winding river", "a long river", "a stream"],
        "lake": ["a lake", "a calm lake", "a quiet lake", "a pond"],
        "sea": ["the sea", "the ocean", "the open sea", "the vast sea"],
        "river_to_sea": ["a river flowing into the sea", "a river running into the sea",
                         "a river meeting the sea", "an estuary where the river meets the sea"],
    },
    "tree": {
        "bamboo": ["bamboo", "a bamboo grove", "green bamboo", "bamboo stalks"],
        "peach": ["peach blossoms", "a peach tree in bloom", "pink peach blossoms",
                  "blossoming peach trees"],
        "pine": ["pine trees", "a pine tree", "pines", "green pines"],
        "willow": ["willows", "a willow tree", "weeping willows", "green willows"],
        "bamboo_peach": ["peach blossoms beyond bamboo", "bamboo and peach blossoms",
                         "peach blossoms and bamboo", "a few peach blossoms beyond the bamboo"],
    },
    "ground": {
        "grass": ["grassland", "a green meadow", "grass", "a grassy plain", "green fields"],
        "desert": ["a desert", "sand dunes", "the vast desert", "a sandy desert"],
        "snowfield": ["a snowfield", "snowy fields", "a field of snow", "snow-covered ground",
                      "white snow"],
    },
    "boat": {"yes": ["a boat", "a small boat", "a fishing boat"]},
    "birds": {"yes": ["birds", "flying birds", "a flock of birds", "birds in flight"]},
    "flowers": {"yes": ["flowers", "wildflowers", "colorful flowers", "blooming flowers"]},
}
EN_TIME_ADVERB = {
    "day": ["in the daytime", "on a sunny day", "by day", "under the sun", "in daylight",
            "at noon"],
    "dusk": ["at dusk", "at sunset", "in the evening", "under the setting sun", "at sundown"],
    "night": ["at night", "under the moon", "in the moonlight", "on a starry night",
              "by moonlight"],
}
EN_TIME_NOUN = {
    "day": ["the bright sun", "the midday sun", "a sunny sky"],
    "dusk": ["the setting sun", "a red sunset", "a sunset sky"],
    "night": ["the moon and stars", "a bright moon", "a starry sky"],
}
EN_MOON = {True: ["a crescent moon"], False: ["a full moon"]}
EN_CLOUDS = {  # never implies a time of day: the caption would name more than its elements
    ("yes", "day"): ["white clouds", "clouds", "fluffy clouds"],
    ("yes", "dusk"): ["pink clouds", "clouds", "glowing clouds"],
    ("yes", "night"): ["clouds", "dark clouds", "grey clouds"],
    ("no", "day"): ["a clear sky", "a cloudless sky"],
    ("no", "dusk"): ["a clear sky", "a cloudless sky"],
    ("no", "night"): ["a clear sky", "a cloudless sky"],
}
EN_BOATS = {"sail": ["a sailboat", "a white sail"], 1: ["a lone boat"], 2: ["boats", "two boats"]}

ZH: dict[str, dict[str, list[str]]] = {
    "mountain": {
        "plain": ["群山", "远山", "山峦", "山", "山脉"],
        "forest": ["有森林的山脉", "森林覆盖的山", "林木茂密的山", "长满树林的山"],
        "stones": ["有石头的山脉", "乱石嶙峋的山", "多石的山", "布满岩石的山"],
        "snow": ["有积雪的山脉", "雪山", "积雪的山", "白雪覆盖的山峰"],
        "waterfall": ["有瀑布的山脉", "挂着瀑布的山", "有瀑布的山", "瀑布", "飞流直下的瀑布"],
    },
    "water": {
        "river": ["河", "小河", "河流", "江水", "一条河"],
        "lake": ["湖", "湖泊", "平静的湖面", "湖水"],
        "sea": ["大海", "海", "海面", "辽阔的大海"],
        "river_to_sea": ["流入大海的河", "奔流入海的江河", "入海口", "河流入海"],
    },
    "tree": {
        "bamboo": ["竹子", "竹林", "翠竹", "一丛竹子"],
        "peach": ["桃花", "桃树", "盛开的桃花", "粉色的桃花"],
        "pine": ["松树", "青松", "松林", "苍松"],
        "willow": ["柳树", "垂柳", "杨柳", "翠柳"],
        "bamboo_peach": ["竹外桃花", "竹林和桃花", "桃花与翠竹", "竹外的桃花"],
    },
    "ground": {
        "grass": ["草原", "草地", "绿色的草原", "青草地"],
        "desert": ["沙漠", "大漠", "沙丘", "茫茫沙漠"],
        "snowfield": ["雪原", "雪地", "白茫茫的雪地", "积雪的原野"],
    },
    "boat": {"yes": ["小船", "船", "渔船", "一叶扁舟"]},
    "birds": {"yes": ["飞鸟", "鸟儿", "一群鸟", "群鸟"]},
    "flowers": {"yes": ["野花", "鲜花", "花丛", "五颜六色的花"]},
}
ZH_TIME_ADVERB = {
    "day": ["白天", "晴天", "阳光下", "正午"],
    "dusk": ["黄昏", "傍晚", "日落时分", "夕阳下"],
    "night": ["夜晚", "夜里", "月光下", "月夜"],
}
ZH_TIME_NOUN = {
    "day": ["太阳", "明亮的太阳", "白日"],
    "dusk": ["落日", "夕阳", "西沉的太阳"],
    "night": ["明月", "月亮和星星", "满天星斗", "星空"],
}
ZH_MOON = {True: ["弯月", "一弯新月"], False: ["满月", "圆月"]}
ZH_CLOUDS = {
    ("yes", "day"): ["白云", "朵朵白云", "云朵"],
    ("yes", "dusk"): ["彩霞", "云霞", "云朵"],
    ("yes", "night"): ["云", "云朵", "灰色的云"],
    ("no", "day"): ["晴空", "无云的天空", "晴朗的天空"],
    ("no", "dusk"): ["晴空", "无云的天空", "晴朗的天空"],
    ("no", "night"): ["无云的天空", "晴朗的天空"],
}
ZH_BOATS = {"sail": ["帆船", "孤帆"], 1: ["孤舟", "一只小船"], 2: ["两只小船", "几只船"]}

_ANY = lambda lab: True  # noqa: E731


@dataclass(frozen=True)
class _Relation:
    """A template that names several groups at once ('{boat} on {water}')."""

    groups: tuple[str, ...]
    when: Callable[[Mapping[str, str]], bool]
    en: tuple[str, ...]
    zh: tuple[str, ...]


RELATIONS: tuple[_Relation, ...] = (
    _Relation(("boat", "water"), _ANY,
              ("{boat} on {water}", "{boat} sailing on {water}", "{boat} floating on {water}"),
              ("{water}上的{boat}", "{boat}漂在{water}上")),
    _Relation(("birds", "ground"), _ANY,
              ("{birds} over {ground}", "{birds} flying over {ground}"),
              ("{ground}上空的{birds}", "{birds}飞过{ground}")),
    _Relation(("birds", "water"), _ANY,
              ("{birds} over {water}", "{birds} flying over {water}"),
              ("{water}上空的{birds}", "{birds}飞过{water}")),
    _Relation(("birds", "mountain"), _ANY,
              ("{birds} over {mountain}", "{birds} flying over {mountain}"),
              ("{mountain}上空的{birds}", "{birds}飞过{mountain}")),
    _Relation(("time", "mountain"), lambda lab: lab["time"] == "dusk",
              ("the sun setting behind {mountain}", "a red sun sinking behind {mountain}",
               "sunset behind {mountain}"),
              ("夕阳落在{mountain}后面", "太阳落到{mountain}后面", "{mountain}后的落日")),
    _Relation(("time", "mountain"), lambda lab: lab["time"] == "night",
              ("the moon over {mountain}", "{mountain} under the moon",
               "{mountain} in the moonlight"),
              ("{mountain}上的明月", "明月照着{mountain}", "月光下的{mountain}")),
    _Relation(("time", "water"), lambda lab: lab["time"] == "night",
              ("moonlight on {water}", "the moon over {water}", "{water} under the moon"),
              ("月光照在{water}上", "{water}上的明月", "月光下的{water}")),
    _Relation(("time", "water"), lambda lab: lab["time"] == "dusk",
              ("the setting sun over {water}", "sunset over {water}"),
              ("{water}上的落日", "夕阳下的{water}")),
    _Relation(("tree", "water"), _ANY,
              ("{tree} by {water}", "{tree} beside {water}", "{tree} along {water}"),
              ("{water}边的{tree}", "{water}岸边的{tree}")),
    _Relation(("flowers", "ground"), _ANY,
              ("{flowers} on {ground}", "{flowers} in {ground}"),
              ("{ground}上的{flowers}", "开满{flowers}的{ground}")),
    _Relation(("tree", "ground"), _ANY,
              ("{tree} on {ground}", "{tree} in {ground}"),
              ("{ground}上的{tree}", "{ground}里的{tree}")),
    _Relation(("mountain", "water"), _ANY,
              ("{mountain} by {water}", "{mountain} above {water}", "{water} below {mountain}"),
              ("{water}边的{mountain}", "{mountain}下的{water}")),
    _Relation(("clouds", "mountain"), lambda lab: lab["clouds"] == "yes",
              ("{clouds} over {mountain}", "{mountain} under {clouds}"),
              ("{mountain}上的{clouds}", "{clouds}下的{mountain}")),
    _Relation(("mountain", "ground"), _ANY,
              ("{mountain} above {ground}", "{ground} at the foot of {mountain}"),
              ("{mountain}下的{ground}", "{ground}尽头的{mountain}")),
)

# Sentence frames. {x}: the joined mentions; {t}: a time adverb.
EN_FRAMES = ("{x}", "{x}", "a painting of {x}", "a landscape with {x}", "a view of {x}",
             "a picture of {x}", "a photo of {x}")
EN_FRAMES_TIME = ("{x} {t}", "{t}, {x}", "a painting of {x} {t}", "a landscape with {x} {t}",
                  "a view of {x} {t}", "{x}, {t}")
EN_FRAMES_ONLY_TIME = ("a landscape {t}", "the sky {t}", "a view {t}")
EN_JOIN = (" and ", ", ")
ZH_FRAMES = ("{x}", "{x}", "一幅{x}的画", "{x}的风景", "{x}的景色")
ZH_FRAMES_TIME = ("{t}的{x}", "{t}，{x}", "{t}的{x}", "一幅{t}{x}的画")
ZH_FRAMES_ONLY_TIME = ("{t}的风景", "{t}的天空", "{t}的景色")
ZH_JOIN = ("和", "与", "，", "、")

# How readily a caption mentions each group, and how many groups it mentions.
_MENTION_WEIGHT = {"mountain": 3.0, "water": 3.0, "tree": 2.5, "time": 2.5, "ground": 1.5,
                   "boat": 2.0, "birds": 1.5, "flowers": 1.5, "clouds": 1.0}
_COUNT_P = np.asarray([0.24, 0.3, 0.23, 0.13, 0.06, 0.04])


def _mentionable(labels: Mapping[str, str]) -> list[str]:
    out = []
    for g in GROUPS:
        lab = labels[g]
        if g in ("time", "ground", "clouds") or lab not in ("none", "no"):
            out.append(g)
    return out


def phrases(group: str, scene: Scene, lang: str) -> list[str]:
    """Every phrase that names `group`'s label in `scene` (label-conditional synonyms)."""
    lab = scene.labels()[group]
    en = lang == "en"
    if group == "time":
        out = list((EN_TIME_NOUN if en else ZH_TIME_NOUN)[lab])
        if lab == "night":
            out += (EN_MOON if en else ZH_MOON)[scene.layout.crescent]
        return out
    if group == "clouds":
        return list((EN_CLOUDS if en else ZH_CLOUDS)[(lab, scene.time)])
    out = list((EN if en else ZH)[group][lab])
    if group == "boat":
        table = EN_BOATS if en else ZH_BOATS
        if any(b[3] for b in scene.layout.boats):
            out += table["sail"]
        out += table[1 if len(scene.layout.boats) == 1 else 2]
    return out


def _pick(rng: np.random.Generator, items: Sequence[str]) -> str:
    return items[int(rng.integers(len(items)))]


def _join(parts: list[str], lang: str, rng) -> str:
    if len(parts) == 1:
        return parts[0]
    if lang == "en":
        if len(parts) == 2 or rng.random() < 0.6:
            return ", ".join(parts[:-1]) + " and " + parts[-1]
        return ", ".join(parts)
    if len(parts) == 2:
        return parts[0] + _pick(rng, ("和", "与", "，")) + parts[1]
    if rng.random() < 0.5:
        return "、".join(parts[:-1]) + "和" + parts[-1]
    return _pick(rng, ("，", "、")).join(parts)


def caption(scene: Scene, lang: str, rng: np.random.Generator,
            groups: Iterable[str] | None = None, poem_prob: float = 0.0) -> Caption:
    """One random caption of `scene` in "en" or "zh".

    groups: which groups to name (each must be present in the scene); by default a random subset
    of 1-6 groups, weighted towards the salient ones (mountains, water, trees, time of day).
    poem_prob: chance of answering with a poem line that fits the scene instead (when one does
    and `groups` is None); this is how training teaches the models the poems.
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, not {lang!r}")
    if groups is None and poem_prob > 0 and rng.random() < poem_prob:
        from .poems import poem_lines_for

        lines = poem_lines_for(scene)
        if lines:
            line = lines[int(rng.integers(len(lines)))]
            return Caption(line.en if lang == "en" else line.zh, dict(line.elements))
    labels = scene.labels()
    able = _mentionable(labels)
    if groups is None:
        w = np.asarray([_MENTION_WEIGHT[g] * (0.4 if labels[g] == "no" else 1.0) for g in able])
        k = min(len(able), 1 + int(rng.choice(len(_COUNT_P), p=_COUNT_P)))
        chosen = [able[i] for i in rng.choice(len(able), size=k, replace=False, p=w / w.sum())]
    else:
        chosen = list(groups)
        bad = [g for g in chosen if g not in able]
        if bad:
            raise ValueError(f"scene has nothing to name for {bad}")
    en = lang == "en"
    left = set(chosen)
    parts: list[str] = []
    for i in rng.permutation(len(RELATIONS)):
        rel = RELATIONS[int(i)]
        if set(rel.groups) <= left and rel.when(labels) and rng.random() < 0.55:
            slots = {g: _pick(rng, phrases(g, scene, lang)[:3]) for g in rel.groups if g != "time"}
            parts.append(_pick(rng, rel.en if en else rel.zh).format(**slots))
            left -= set(rel.groups)
    adverb = None
    if "time" in left:
        left.discard("time")
        if rng.random() < 0.7:
            adverb = _pick(rng, (EN_TIME_ADVERB if en else ZH_TIME_ADVERB)[labels["time"]])
        else:
            parts.append(_pick(rng, phrases("time", scene, lang)))
    for g in sorted(left):
        parts.append(_pick(rng, phrases(g, scene, lang)))
    parts = [parts[int(i)] for i in rng.permutation(len(parts))]
    if not parts:
        frames = EN_FRAMES_ONLY_TIME if en else ZH_FRAMES_ONLY_TIME
        text = _pick(rng, frames).format(t=adverb)
    else:
        x = _join(parts, lang, rng)
        if adverb is None:
            frames = EN_FRAMES if en else ZH_FRAMES
        else:
            frames = EN_FRAMES_TIME if en else ZH_FRAMES_TIME
        if len(chosen) == 1 and adverb is None and rng.random() < 0.5:
            text = x  # bare single mentions are common: they are the studio's prompt style
        else:
            text = _pick(rng, frames).format(x=x, t=adverb)
    return Caption(text, {g: labels[g] for g in GROUPS if g in chosen})


def captions(scene: Scene, lang: str, rng: np.random.Generator, n: int,
             poem_prob: float = 0.0) -> list[Caption]:
    """n independent random captions of `scene` (duplicates possible)."""
    return [caption(scene, lang, rng, poem_prob=poem_prob) for _ in range(n)]


# ----------------------------------------------------------------------------------------------
# Vocabulary


def english_tokens(text: str) -> list[str]:
    """Lowercase words and punctuation marks, the way the English vocabulary is counted."""
    return re.findall(r"[a-z]+|[^\sa-z]", text.lower())


def _strip_slots(s: str) -> str:
    return re.sub(r"\{\w+\}", " ", s)


def _all_strings(lang: str) -> list[str]:
    from .poems import EVAL_PROMPTS, POEM_LINES, PROMPT_FAMILY

    en = lang == "en"
    out: list[str] = []
    for table in ((EN, EN_TIME_ADVERB, EN_TIME_NOUN) if en else (ZH, ZH_TIME_ADVERB, ZH_TIME_NOUN)):
        for v in table.values():
            if isinstance(v, dict):
                for lst in v.values():
                    out += lst
            else:
                out += v
    for table in ((EN_MOON, EN_CLOUDS, EN_BOATS) if en else (ZH_MOON, ZH_CLOUDS, ZH_BOATS)):
        for lst in table.values():
            out += lst
    for rel in RELATIONS:
        out += rel.en if en else rel.zh
    out += (EN_FRAMES + EN_FRAMES_TIME + EN_FRAMES_ONLY_TIME + EN_JOIN) if en else \
        (ZH_FRAMES + ZH_FRAMES_TIME + ZH_FRAMES_ONLY_TIME + ZH_JOIN)
    out += [line.en if en else line.zh for line in POEM_LINES]
    out += [p[0] if en else p[1] for p in EVAL_PROMPTS + PROMPT_FAMILY]
    return [_strip_slots(s) for s in out]


def english_words() -> list[str]:
    """Sorted list of every token (word or punctuation mark) English text of the world can use:
    captions, poem lines, prompts. Words are lowercase; punctuation is split off as its own token
    (see `english_tokens`)."""
    return sorted({tok for s in _all_strings("en") for tok in english_tokens(s)})


def chinese_charset() -> list[str]:
    """Sorted list of every character Chinese captions, poem lines and prompts can contain."""
    return sorted({ch for s in _all_strings("zh") for ch in s if not ch.isspace()})


# ----------------------------------------------------------------------------------------------
# Prompt parsing

# Hand-picked keywords beyond the caption tables: "|"-separated alternatives -> elements.
_EN_KEYWORDS: tuple[tuple[str, dict[str, str]], ...] = (
    ("night|nights|moon|moonlight|moonlit|stars|starry|midnight", {"time": "night"}),
    ("dusk|sunset|sundown|evening|twilight|setting sun|sun sets|sun setting|sunsets|red sun|"
     "sun sinking|sinking sun", {"time": "dusk"}),
    ("day|daytime|noon|midday|sunny|morning|daylight|sun", {"time": "day"}),
    ("mountain|mountains|peak|peaks|hill|hills|range", {"mountain": "plain"}),
    ("forest|forests|forested|wooded|woods", {"mountain": "forest"}),
    ("stone|stones|rock|rocks|rocky|boulder|boulders|stony", {"mountain": "stones"}),
    ("snowy mountain|snowy mountains|snowy peaks|snow-capped|snowcapped|snow mountains",
     {"mountain": "snow"}),
    ("waterfall|waterfalls|falls", {"mountain": "waterfall"}),
    ("river|rivers|stream|streams|creek", {"water": "river"}),
    ("lake|lakes|pond|pool", {"water": "lake"}),
    ("sea|seas|ocean|oceans|coast", {"water": "sea"}),
    ("into the sea|into the ocean|estuary|meets the sea|to the sea", {"water": "river_to_sea"}),
    ("bamboo", {"tree": "bamboo"}),
    ("peach|peaches|blossom|blossoms", {"tree": "peach"}),
    ("pine|pines|pine tree|pine trees", {"tree": "pine"}),
    ("willow|willows", {"tree": "willow"}),
    ("grass|grassland|grasslands|meadow|meadows|prairie|steppe|field|fields", {"ground": "grass"}),
    ("desert|deserts|dune|dunes|sand", {"ground": "desert"}),
    ("snow|snowfield|snowfields|snowy field|snowy fields|tundra", {"ground": "snowfield"}),
    ("boat|boats|ship|ships|sail|sails|sailboat|canoe|ferry", {"boat": "yes"}),
    ("bird|birds|geese|egret|egrets|oriole|orioles|swallows", {"birds": "yes"}),
    ("flower|flowers|wildflower|wildflowers|blooms", {"flowers": "yes"}),
    ("cloud|clouds|cloudy", {"clouds": "yes"}),
    ("clear sky|cloudless|clear blue sky", {"clouds": "no"}),
    ("clear night sky|cloudless night", {"time": "night", "clouds": "no"}),
)
_ZH_KEYWORDS: tuple[tuple[str, dict[str, str]], ...] = (
    ("夜|月|星|月光", {"time": "night"}),
    ("黄昏|傍晚|夕阳|落日|日落|太阳落|落山|日暮|西沉", {"time": "dusk"}),
    ("晚霞", {"time": "dusk", "clouds": "yes"}),
    ("彩霞|云霞", {"clouds": "yes"}),
    ("白天|白日|正午|阳光|晴天|太阳|烈日", {"time": "day"}),
    ("山|峰|岭", {"mountain": "plain"}),
    ("森林|树林|林", {"mountain": "forest"}),
    ("石|岩", {"mountain": "stones"}),
    ("雪山|积雪的山|雪峰", {"mountain": "snow"}),
    ("瀑布|飞瀑", {"mountain": "waterfall"}),
    ("河|江|溪", {"water": "river"}),
    ("湖|潭|池", {"water": "lake"}),
    ("海", {"water": "sea"}),
    ("入海|流入大海", {"water": "river_to_sea"}),
    ("竹", {"tree": "bamboo"}),
    ("桃", {"tree": "peach"}),
    ("松", {"tree": "pine"}),
    ("柳", {"tree": "willow"}),
    ("草原|草地|草", {"ground": "grass"}),
    ("沙漠|大漠|沙", {"ground": "desert"}),
    ("雪原|雪地|雪", {"ground": "snowfield"}),
    ("船|舟|帆", {"boat": "yes"}),
    ("鸟|鹭|雁|莺|鹂", {"birds": "yes"}),
    ("花", {"flowers": "yes"}),
    ("云", {"clouds": "yes"}),
    ("晴空|无云|碧空|晴朗的天空", {"clouds": "no"}),
)


def _lexicon(lang: str) -> dict[str, dict[str, str]]:
    en = lang == "en"
    lex: dict[str, dict[str, str]] = {}
    for group, by_label in (EN if en else ZH).items():
        for label, lst in by_label.items():
            for s in lst:
                lex[_norm(s, lang)] = {group: label}
    for table in (EN_TIME_ADVERB, EN_TIME_NOUN) if en else (ZH_TIME_ADVERB, ZH_TIME_NOUN):
        for label, lst in table.items():
            for s in lst:
                lex[_norm(s, lang)] = {"time": label}
    for s in (EN_MOON if en else ZH_MOON)[True] + (EN_MOON if en else ZH_MOON)[False]:
        lex[_norm(s, lang)] = {"time": "night"}
    for (label, _), lst in (EN_CLOUDS if en else ZH_CLOUDS).items():
        for s in lst:
            lex[_norm(s, lang)] = {"clouds": label}
    for lst in (EN_BOATS if en else ZH_BOATS).values():
        for s in lst:
            lex[_norm(s, lang)] = {"boat": "yes"}
    for keys, elements in _EN_KEYWORDS if en else _ZH_KEYWORDS:  # hand-picked ones win
        for k in keys.split("|"):
            lex[k] = elements
    return lex


def _norm(s: str, lang: str) -> str:
    if lang == "zh":
        return s
    return re.sub(r"^(a|an|the) ", "", s.lower().strip())


@functools.lru_cache(maxsize=2)
def _matcher(lang: str) -> tuple[dict[str, dict[str, str]], "re.Pattern[str]"]:
    lex = _lexicon(lang)
    body = "|".join(re.escape(k) for k in sorted(lex, key=len, reverse=True))
    pattern = rf"(?<![a-z])({body})(?![a-z])" if lang == "en" else f"({body})"
    return lex, re.compile(pattern)


def parse_prompt(text: str) -> dict[str, str]:
    """Map a free prompt (English or Chinese) onto world elements, longest phrase first.

    "snowy mountains at night" -> {"mountain": "snow", "time": "night"}. Specific mountains
    override a generic "mountains"; bamboo + peach become bamboo_peach and river + sea
    river_to_sea. Words outside the world's vocabulary are ignored.
    """
    lang = "zh" if re.search(r"[\u4e00-\u9fff]", text) else "en"
    lex, pattern = _matcher(lang)
    found: dict[str, str] = {}
    trees, waters = set(), set()
    for m in pattern.finditer(text.lower() if lang == "en" else text):
        for group, label in lex[m.group(1)].items():
            if group == "tree":
                trees.add(label)
            if group == "water":
                waters.add(label)
            if group not in found or (group == "mountain" and found[group] == "plain"):
                found[group] = label
    if {"bamboo", "peach"} <= trees:
        found["tree"] = "bamboo_peach"
    if ("river" in waters and "sea" in waters) or "river_to_sea" in waters:
        found["water"] = "river_to_sea"
    return {g: found[g] for g in GROUPS if g in found}
