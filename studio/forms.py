"""From the values of the studio's form fields to `ImagineSettings`, and back.

Everything a user can type wrong is checked here, before any model loads, and reported as a
`UserError` with one line that says how to fix it; the library checks the rest (prompt syntax,
files, model availability) when the `Run` is built. The reverse direction, `form_from_metadata`,
turns the settings stored in a PNG back into field values for the gallery's "load settings".
"""

from __future__ import annotations

import math
import secrets
from pathlib import Path

from imagination.augment import AUGMENTATIONS
from imagination.errors import UserError
from imagination.objectives import parse_prompt
from imagination.models import registry
from imagination.pipeline import ImagineSettings, reads_chinese

MAX_PROMPT_CHARS = 500
MAX_LINES = 16  # poem lines / family fillers in one batched run

MODEL_CHOICES = [("Auto · by language", "auto"), ("BriVL · 中文", "brivl"), ("CLIP · English", "clip"),
                 ("Both · ensemble", "both")]
CANVAS_CHOICES = [("VQGAN", "vqgan"), ("Fourier pixels", "pixels"), ("Multi-resolution pixels", "pyramid"),
                  ("Plain noise pixels", "plain")]

# name: (low, high, default); the sliders use the same numbers, the API is checked against them.
LIMITS = {
    "steps": (0, 1000, 0),  # 0: the default for the canvas and models (README, Speed)
    "size": (32, 512, 128),
    "cutn": (1, 128, ImagineSettings.cutn),
    "cut_pow": (0.1, 3.0, 1.0),
    "lr": (0.0, 1.0, 0.0),  # 0: the canvas's own default
    "preview_every": (1, 100, 5),
    "seed": (0, 2**31 - 1, 0),
    "weight": (-10.0, 10.0, 1.0),
    "channel": (0, 100_000, 0),
}
# The transforms and priors of the Advanced settings: empty (None) means the canvas's own default.
PRIOR_LIMITS = {
    "pad": (0, 64, True), "jitter": (0, 64, True), "scale_min": (0.5, 2.0, False), "scale_max": (0.5, 2.0, False),
    "rotate": (0.0, 45.0, False), "mean_weight": (0.0, 1.0, False), "grey_weight": (0.0, 100.0, False),
    "tv_weight": (0.0, 10.0, False), "blur": (0.0, 16.0, False),
}
PRIORS = tuple(PRIOR_LIMITS)


def check_number(name: str, value, integer: bool = True) -> int | float:
    """A form number inside its LIMITS, as int or float; a UserError naming the field otherwise."""
    low, high = (LIMITS[name] if name in LIMITS else PRIOR_LIMITS[name])[:2]
    return check_range(name.replace("_", " "), value, low, high, integer)


def check_range(label: str, value, low, high, integer: bool = True) -> int | float:
    """`value` as a number from `low` to `high` (either may be None: unbounded); a fractional value
    for a whole-number field is refused, not rounded (steps=2.5 must not quietly run 2 steps)."""
    span = f"from {low} to {high}" if low is not None and high is not None else "a finite number"
    if value is None or value == "":
        raise UserError(f"{label} is empty: give a number {span}")
    if isinstance(value, bool):
        raise UserError(f"{label} must be a number {span}, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{label} must be a number {span}, got {value!r:.60}") from None
    if not math.isfinite(number) or (low is not None and number < low) or (high is not None and number > high):
        raise UserError(f"{label} must be {span}, got {value}")
    if integer:
        if number != int(number):
            raise UserError(f"{label} must be a whole number, got {value}")
        return int(number)
    return number


def check_text(text: str | None, what: str = "prompt", required: bool = True) -> str:
    text = (text or "").strip()
    if required and not text:
        raise UserError(f"the {what} is empty: type some text, e.g. 'snowy mountains at night' or '雪山'")
    if len(text) > MAX_PROMPT_CHARS:
        raise UserError(f"the {what} has {len(text)} characters: at most {MAX_PROMPT_CHARS}")
    return text


def constraint_prompt(text: str, weight: float) -> str:
    """The Neurons tab's text constraint scaled by its weight, read with the same rules (and refused
    with the same messages) as an Imagine prompt: 'snow|night:-0.5' at weight 2 -> 'snow:2|night:-1'."""
    if not text or weight == 0:
        return ""
    return "|".join(f"{part.text}:{part.weight * weight:g}" for part in parse_prompt(text))


def check_lines(text: str | None, what: str = "poem") -> list[str]:
    """Non-empty lines of a text area, each a prompt of its own."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        raise UserError(f"the {what} is empty: write one line per image")
    if len(lines) > MAX_LINES:
        raise UserError(f"the {what} has {len(lines)} lines: at most {MAX_LINES} in one run")
    return [check_text(line, f"line {i + 1}") for i, line in enumerate(lines)]


def check_images(paths: list[str], what: str) -> list[str]:
    """Uploaded files that must be images of a sane size: each header read once, a message naming
    the file otherwise (nothing is decoded here; the run decodes the ones that pass)."""
    from imagination.io import open_user_image

    for path in paths:
        with open_user_image(path, f"the {what} '{Path(path).name}'",
                             unreadable="is not an image: upload a PNG, JPEG or WebP") as image:
            image.verify()
    return list(paths)


def check_flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"{name} must be true or false, got {value!r}")
    return value


def check_choice(name: str, value: str, choices: list[tuple[str, str]]) -> str:
    keys = [key for _, key in choices]
    if value not in keys:
        raise UserError(f"unknown {name} '{value}': choose one of {', '.join(keys)}")
    return value


def draw_seed(seed, locked: bool) -> int:
    """The seed to use: the one shown when locked, a fresh random one otherwise."""
    if locked:
        return check_number("seed", seed)
    return secrets.randbelow(LIMITS["seed"][1])


def models_for(choice: str, prompt: str, second: str = "") -> tuple[list[str] | None, dict[str, list[str]]]:
    """A model choice -> (models, model_prompts) for one image; 'both' needs the text in each language."""
    check_choice("model", choice, MODEL_CHOICES)
    if choice == "auto":
        return None, {}
    if choice != "both":
        return [choice], {}
    second = check_text(second, "prompt in the other language")
    if reads_chinese(prompt) == reads_chinese(second):
        raise UserError("for both models give the Chinese text (for BriVL) in one box and the English "
                        "text (for CLIP) in the other")
    main = "brivl" if reads_chinese(prompt) else "clip"
    other = "clip" if main == "brivl" else "brivl"
    return [main, other], {other: [second]}


def optional_number(name: str, value) -> int | float | None:
    """A transform/prior field: empty means the canvas's default (None), else a number in its range."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return check_number(name, value, integer=PRIOR_LIMITS[name][2])


def advanced(lr, cutn, cut_pow, augmentations, preview_every, **priors) -> dict:
    """The Advanced accordion's fields as ImagineSettings keyword arguments."""
    augmentations = list(augmentations or [])
    unknown = set(augmentations) - set(AUGMENTATIONS)
    if unknown:
        raise UserError(f"unknown augmentation {sorted(unknown)[0]}: choose from {', '.join(AUGMENTATIONS)}")
    lr = check_number("lr", lr if lr is not None else 0, integer=False)
    return dict(lr=lr or None, cutn=check_number("cutn", cutn), cut_pow=check_number("cut_pow", cut_pow, False),
                augmentations=tuple(augmentations), preview_every=check_number("preview_every", preview_every),
                **{name: optional_number(name, priors.get(name)) for name in PRIORS})


def basics(canvas, steps, size) -> dict:
    return dict(canvas=check_choice("canvas", canvas, CANVAS_CHOICES), steps=check_number("steps", steps) or None,
                size=check_number("size", size))


def imagine_settings(prompt, second_prompt, negative, model, canvas, steps, size, seed, *, lr=0,
                     cutn=ImagineSettings.cutn, cut_pow=1.0, augmentations=AUGMENTATIONS, preview_every=5,
                     until_plateau=False, init_image=None, image_prompts=(), device="auto", **priors) -> ImagineSettings:
    """The Imagine tab's fields -> settings (seed already drawn)."""
    prompt = check_text(prompt)
    models, model_prompts = models_for(model, prompt, second_prompt)
    return ImagineSettings(
        prompts=[prompt], models=models, model_prompts=model_prompts,
        negative=check_text(negative, "negative prompt", required=False), seed=seed,
        init_image=check_images([init_image], "start image")[0] if init_image else None,
        image_prompts=check_images(list(image_prompts or []), "image prompt"), device=device,
        until_plateau=until_plateau, **basics(canvas, steps, size),
        **advanced(lr, cutn, cut_pow, augmentations, preview_every, **priors),
    )


def model_choice(model_names: list[str]) -> str:
    """Resolved model names stored in a PNG ('clip-demo', 'brivl-roberta-base') -> a model choice."""
    kinds = {registry.MODELS[name].kind if name in registry.MODELS else name for name in model_names}
    if {"brivl", "clip"} <= kinds:
        return "both"
    return next(iter(kinds & {"brivl", "clip"}), "auto")


def form_from_metadata(meta: dict) -> dict:
    """Settings stored by a run -> Imagine field values (the seed locked, so the run can be repeated)."""
    if not meta:
        raise UserError("this image carries no imagination settings (was it made elsewhere?)")
    index = int(meta.get("image_index", 0) or 0)
    prompts = meta.get("prompts") or [""]
    prompt = meta.get("prompt") or prompts[min(index, len(prompts) - 1)]
    model = model_choice(meta.get("models") or [])
    second = ""
    for texts in (meta.get("model_prompts") or {}).values():
        if texts:
            second = texts[min(index, len(texts) - 1)]
    lr = meta.get("lr")
    numbers = {name: _within(name, meta.get(name)) for name in ("steps", "size", "seed", "cutn", "cut_pow",
                                                                  "preview_every")}
    priors = {name: _prior_within(name, meta.get(name)) for name in PRIORS}
    return {
        "prompt": prompt, "second_prompt": second, "negative": meta.get("negative", ""), "model": model,
        "canvas": meta.get("canvas") if meta.get("canvas") in [k for _, k in CANVAS_CHOICES] else "vqgan",
        "lock_seed": True, "lr": _within("lr", lr if lr is not None else 0),
        "augmentations": [a for a in meta.get("augmentations", AUGMENTATIONS) if a in AUGMENTATIONS],
        **numbers, **priors,
    }


def _within(name: str, value) -> int | float:
    """A stored number moved inside the form's LIMITS (a CLI run may have used more steps); default if absent."""
    low, high, default = LIMITS[name]
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return default
    return min(max(value, low), high)


def _prior_within(name: str, value) -> int | float | None:
    """A stored transform/prior value moved inside the form's range; None (the canvas default) if absent."""
    low, high, _ = PRIOR_LIMITS[name]
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    return min(max(value, low), high)
