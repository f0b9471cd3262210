"""The procedural landscape world the studio's small CLIP, BriVL and VQGAN are trained on.

Why a world of our own: to show what image-text models "imagine" we need models trained on
pictures whose content we know exactly. Every scene here is a structured description (`Scene`)
sampled from a seed, rendered fast enough to generate training data on the fly, and described by
weakly correlated English and Chinese captions that name a subset of its elements. A scene judge
trained on `GROUPS` later checks what an imagined picture shows.

Modules: scene (labels, layout, sampling rules), render (pixels), captions (text, vocabulary,
prompt parsing), poems (poem lines, evaluation prompts).
"""

from .captions import (Caption, caption, captions, chinese_charset, english_tokens, english_words,
                       parse_prompt, phrases)
from .poems import EVAL_PROMPTS, POEM_LINES, PROMPT_FAMILY, PoemLine, Prompt, poem_lines_for
from .render import contact_sheet, render, render_batch
from .scene import GROUPS, Layout, Scene, compatible, sample_scene, sample_scene_for
from .splits import HELD_OUT_SEED_BASE, held_out_scenes

__all__ = [
    "GROUPS", "Scene", "Layout", "sample_scene", "sample_scene_for", "compatible",
    "render", "render_batch", "contact_sheet",
    "Caption", "caption", "captions", "phrases", "english_words", "english_tokens",
    "chinese_charset", "parse_prompt",
    "PoemLine", "Prompt", "POEM_LINES", "EVAL_PROMPTS", "PROMPT_FAMILY", "poem_lines_for",
    "HELD_OUT_SEED_BASE", "held_out_scenes",
]
