"""Classical poem lines and fixed prompts, each tied to the scene elements it evokes.

Why: the studio's showcase is imagining famous lines (白日依山尽, 黄河入海流, ...). Our small
models can only imagine what they were trained on, so training mixes these lines into the captions
of scenes that satisfy their `elements` (see `poem_lines_for`). The mapping is deliberately
loose and partial, like the paper's weakly correlated image-text pairs: a line names only what
it evokes, and every other group stays free.

`EVAL_PROMPTS` are 20 fixed bilingual prompts with 2-3 element constraints each; the scene judge
scores imagined images against them. `PROMPT_FAMILY` is the paper's prompt family (the studio
defaults) and must stay producible as plain captions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, NamedTuple

from .scene import Scene


@dataclass(frozen=True)
class PoemLine:
    """A line in Chinese, an English rendering, and the {group: label} it evokes."""

    zh: str
    en: str
    elements: Mapping[str, str] = field(default_factory=dict)


class Prompt(NamedTuple):
    """A fixed bilingual prompt: unpacks as (en, zh, elements) and reads as .en/.zh/.elements."""

    en: str
    zh: str
    elements: dict[str, str]


def _p(zh: str, en: str, **elements: str) -> PoemLine:
    return PoemLine(zh, en, dict(elements))


POEM_LINES: list[PoemLine] = [
    _p("白日依山尽", "the white sun sets behind the mountains", time="dusk", mountain="plain"),
    _p("黄河入海流", "the yellow river flows into the sea", water="river_to_sea"),
    _p("竹外桃花三两枝", "beyond the bamboo, a few sprays of peach blossom", tree="bamboo_peach"),
    _p("床前明月光", "bright moonlight before my bed", time="night"),
    _p("举头望明月", "i raise my head and gaze at the bright moon", time="night"),
    _p("孤帆远影碧空尽", "a lone sail fades into the clear blue sky", boat="yes", time="day",
       clouds="no"),
    _p("唯见长江天际流", "only the long river flows to the edge of the sky", water="river"),
    _p("窗含西岭千秋雪", "my window frames the western peaks and their snow of a thousand autumns",
       mountain="snow"),
    _p("飞流直下三千尺", "the waterfall plunges three thousand feet", mountain="waterfall"),
    _p("疑是银河落九天", "as if the milky way were falling from the ninth heaven",
       mountain="waterfall"),
    _p("日照香炉生紫烟", "the sun shines on the peak and purple mist rises", mountain="waterfall",
       time="day"),
    _p("千山鸟飞绝", "over a thousand mountains no bird flies", mountain="snow", birds="no"),
    _p("万径人踪灭", "on ten thousand paths no footprint remains", ground="snowfield"),
    _p("孤舟蓑笠翁", "an old man in a straw cape in a lone boat", boat="yes", ground="snowfield"),
    _p("独钓寒江雪", "fishing alone on the cold river in the snow", water="river",
       ground="snowfield"),
    _p("两个黄鹂鸣翠柳", "two orioles sing in the green willows", birds="yes", tree="willow"),
    _p("一行白鹭上青天", "a line of egrets rises into the blue sky", birds="yes", time="day"),
    _p("大漠孤烟直", "over the vast desert a lone plume of smoke rises straight", ground="desert"),
    _p("长河落日圆", "over the long river the setting sun is round", water="river", time="dusk"),
    _p("大漠沙如雪", "the desert sand is white as snow under the moon", ground="desert",
       time="night"),
    _p("明月松间照", "the bright moon shines between the pines", time="night", tree="pine"),
    _p("清泉石上流", "a clear spring flows over the stones", mountain="stones", water="river"),
    _p("远上寒山石径斜", "far up the cold mountain a stony path slants", mountain="stones"),
    _p("野渡无人舟自横", "at the wild ferry a boat drifts alone", boat="yes", water="river"),
    _p("春江潮水连海平", "the spring river tide rises level with the sea", water="river_to_sea"),
    _p("海上明月共潮生", "over the sea the bright moon rises with the tide", water="sea",
       time="night"),
    _p("直挂云帆济沧海", "hoist the sail and cross the vast sea", boat="yes", water="sea"),
    _p("轻舟已过万重山", "the light boat has passed ten thousand mountains", boat="yes",
       water="river", mountain="plain"),
    _p("天苍苍，野茫茫", "the sky is vast, the grassland boundless", ground="grass"),
    _p("草长莺飞二月天", "grass grows and orioles fly in early spring", ground="grass", birds="yes"),
    _p("万条垂下绿丝绦", "ten thousand green silk ribbons hang down", tree="willow"),
    _p("桃花潭水深千尺", "the peach blossom pool is a thousand feet deep", tree="peach",
       water="lake"),
    _p("处处闻啼鸟", "everywhere i hear the birds sing", birds="yes"),
    _p("千里莺啼绿映红", "for a thousand miles orioles sing among green and red", birds="yes",
       flowers="yes"),
    _p("白云生处有人家", "there are homes where the white clouds rise", clouds="yes", time="day"),
    _p("夕阳无限好", "the setting sun is infinitely beautiful", time="dusk"),
    _p("湖光秋月两相和", "the lake light and the autumn moon are in harmony", water="lake",
       time="night"),
    _p("悠然见南山", "at ease i see the southern mountains", mountain="plain"),
    _p("松下问童子", "under the pines i ask the boy", tree="pine"),
    # English-first lines, with Chinese renderings
    _p("太阳落到山后", "the sun sets behind the mountains", time="dusk", mountain="plain"),
    _p("月下湖上一叶孤舟", "a lone boat on the lake under the moon", boat="yes", water="lake",
       time="night"),
    _p("夕阳下飞鸟掠过草原", "birds fly home over the grassland at sunset", birds="yes",
       ground="grass", time="dusk"),
    _p("白雪落满寂静的松林", "snow falls on the silent pines", tree="pine", ground="snowfield"),
    _p("江河蜿蜒奔向大海", "the river winds down to the sea", water="river_to_sea"),
]

#: The paper's prompt family: the studio defaults. Each must be a producible caption.
PROMPT_FAMILY: list[Prompt] = [Prompt(*p) for p in (
    ("mountains with forest", "有森林的山脉", {"mountain": "forest"}),
    ("mountains with stones", "有石头的山脉", {"mountain": "stones"}),
    ("mountains with snow", "有积雪的山脉", {"mountain": "snow"}),
    ("mountains with a waterfall", "有瀑布的山脉", {"mountain": "waterfall"}),
)]

#: 20 fixed bilingual prompts with 2-3 element constraints, for judging imagined images.
EVAL_PROMPTS: list[Prompt] = [Prompt(*p) for p in (
    ("snowy mountains at night", "夜晚的雪山", {"mountain": "snow", "time": "night"}),
    ("mountains with snow at dusk", "黄昏时有积雪的山脉", {"mountain": "snow", "time": "dusk"}),
    ("a boat on the sea", "海上的小船", {"boat": "yes", "water": "sea"}),
    ("peach blossoms beyond bamboo by the river", "河边的竹外桃花",
     {"tree": "bamboo_peach", "water": "river"}),
    ("a river flowing into the sea at sunset", "夕阳下流入大海的河",
     {"water": "river_to_sea", "time": "dusk"}),
    ("birds over the grassland", "草原上空的飞鸟", {"birds": "yes", "ground": "grass"}),
    ("a desert at sunset", "日落时分的沙漠", {"ground": "desert", "time": "dusk"}),
    ("mountains with forest by a lake", "湖边有森林的山脉", {"mountain": "forest", "water": "lake"}),
    ("mountains with stones in the daytime", "白天有石头的山脉",
     {"mountain": "stones", "time": "day"}),
    ("mountains with a waterfall and white clouds", "有瀑布的山脉和白云",
     {"mountain": "waterfall", "clouds": "yes"}),
    ("a boat on the lake under the moon", "月光下湖上的小船",
     {"boat": "yes", "water": "lake", "time": "night"}),
    ("pine trees under the moon", "明月下的松树", {"tree": "pine", "time": "night"}),
    ("willows and birds by the river", "河边的垂柳和飞鸟",
     {"tree": "willow", "birds": "yes", "water": "river"}),
    ("flowers on the grassland in the daytime", "白天草地上的野花",
     {"flowers": "yes", "ground": "grass", "time": "day"}),
    ("a snowfield under snowy mountains", "雪山下的雪原", {"ground": "snowfield", "mountain": "snow"}),
    ("the sun sets behind the mountains", "太阳落到山后", {"time": "dusk", "mountain": "plain"}),
    ("bamboo in the snow", "雪地里的竹子", {"tree": "bamboo", "ground": "snowfield"}),
    ("peach blossoms by the lake", "湖边的桃花", {"tree": "peach", "water": "lake"}),
    ("a river in the desert at dusk", "黄昏沙漠中的河",
     {"water": "river", "ground": "desert", "time": "dusk"}),
    ("a lone boat on the river at night", "夜晚河上的孤舟",
     {"boat": "yes", "water": "river", "time": "night"}),
)]


def poem_lines_for(scene: Scene) -> list[PoemLine]:
    """The poem lines whose every element holds in `scene` (candidates to mix into captions)."""
    return [line for line in POEM_LINES if scene.satisfies(line.elements)]
