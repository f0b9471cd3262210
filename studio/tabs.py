"""One function per tab: its controls, and the wiring of its buttons to `studio.handlers`.

Every model-running listener gets `Wiring.compute` (one shared queue, `concurrency_id="compute"`) and
a progress indicator on its status box, not over the image. Each Stop button only cancels (a Gradio
listener with both a function and `cancels=` does not cancel), then shows what the stopped run kept.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import gradio as gr

from imagination.augment import AUGMENTATIONS
from studio import forms
from studio.handlers import Handlers

PROMPT_HELP = ("Weights: split parts with | and add :weight — `snowy mountains:1|night:-0.5` pulls towards "
               "snowy mountains and away from night.")

EXAMPLES = [
    (["白日依山尽，黄河入海流", "auto", ""], "白日依山尽，黄河入海流 · BriVL"),
    (["snowy mountains at night", "auto", ""], "snowy mountains at night · CLIP"),
    (["a lighthouse on a cliff in a storm|sunshine:-0.5", "clip", ""], "a lighthouse in a storm, not sunny · weights"),
    (["雪山之夜", "both", "snowy mountains at night"], "雪山之夜 + snowy mountains at night · both"),
]

POEMS = [
    ["白日依山尽\n黄河入海流\n欲穷千里目\n更上一层楼"],
    ["床前明月光\n疑是地上霜\n举头望明月\n低头思故乡"],
    ["the sun sets behind the mountains\nthe river flows into the sea\nclimb one more floor\nto see a thousand miles"],
]

FAMILY_DEFAULTS = {
    "zh": ("有{}的山脉", "森林 / 石头 / 积雪 / 瀑布", "brivl"),
    "en": ("mountains with {}", "forest / stones / snow / a waterfall", "clip"),
}

# The Imagine fields a gallery image's settings are loaded into, in `forms.form_from_metadata` names.
IMAGINE_FIELDS = ["prompt", "second_prompt", "negative", "model", "canvas", "steps", "size", "seed", "lock_seed",
                  "lr", "cutn", "cut_pow", "augmentations", "preview_every", *forms.PRIORS]

# Label and one-line explanation of each transform/prior field (empty = the canvas's default).
PRIOR_FIELDS = {
    "pad": ("Pad (px)", "grey border the image may move into"),
    "jitter": ("Jitter (px)", "random shift of the whole image each step"),
    "scale_min": ("Scale from", "random zoom of the whole image each step…"),
    "scale_max": ("Scale to", "…up to this factor"),
    "rotate": ("Rotate (°)", "random turn of the whole image, either way"),
    "mean_weight": ("Whole-picture weight", "share of the loss on the mean of the cutouts (0–1)"),
    "grey_weight": ("Grey pull", "pulls pixels towards grey: against saturation"),
    "tv_weight": ("TV weight", "smoothness prior"),
    "blur": ("Blur (px)", "the model sees a blurred image at first, sharp by mid-run"),
}


@dataclass
class Wiring:
    """The handlers and the listener settings every tab shares."""

    handlers: Handlers
    compute: dict  # keyword arguments of every model-running listener
    private: dict = field(default_factory=lambda: dict(api_visibility="private", queue=False))  # UI-only
    after: dict = field(default_factory=lambda: dict(api_visibility="private", concurrency_limit=None))

    def stop_button(self, stop: gr.Button, run_event, fn, outputs):
        """Stop cancels the run (the generator closes at its next yield), then `fn` shows what was kept."""
        return stop.click(None, cancels=[run_event]).then(fn, None, outputs, **self.after)


# --- shared widgets -------------------------------------------------------------------------------
def _slider(name: str, label: str, info: str | None = None, step: float = 1, elem_id: str | None = None):
    low, high, default = forms.LIMITS[name]
    return gr.Slider(low, high, value=default, step=step, label=label, info=info, elem_id=elem_id,
                     precision=0 if isinstance(step, int) else None)


def run_controls(prefix: str) -> dict:
    """Canvas, steps, size and seed fields, the same on every tab."""
    info = "VQGAN: natural textures · Fourier pixels: smooth · plain: the paper's noise image"
    controls = {"canvas": gr.Radio(forms.CANVAS_CHOICES, value="vqgan", label="Canvas", info=info,
                                   elem_id=f"{prefix}canvas")}
    with gr.Row():
        controls["steps"] = _slider("steps", "Steps", elem_id=f"{prefix}steps")
        controls["size"] = _slider("size", "Size (px)", step=16, elem_id=f"{prefix}size")
    with gr.Row(equal_height=True):
        controls["seed"] = gr.Number(value=secrets.randbelow(forms.LIMITS["seed"][1]), label="Seed", precision=0,
                                     minimum=0, maximum=forms.LIMITS["seed"][1], elem_id=f"{prefix}seed", scale=3)
        controls["lock_seed"] = gr.Checkbox(value=False, label="Lock seed", info="unlocked: each run draws a new seed",
                                            elem_id=f"{prefix}lock", scale=2)
    return controls


def _ordered(controls: dict) -> list:
    return [controls[k] for k in ("canvas", "steps", "size", "seed", "lock_seed")]


def _buttons(prefix: str, label: str):
    with gr.Row():
        run = gr.Button(label, variant="primary", elem_id=f"{prefix}run", scale=3)
        stop = gr.Button("Stop", variant="stop", elem_id=f"{prefix}stop", scale=1)
    return run, stop


def _status(elem_id: str):
    return gr.Textbox(label="Progress", interactive=False, elem_id=elem_id, elem_classes=["status"],
                      placeholder="press the button; the image updates live every few steps")


def _plot(elem_id: str):
    return gr.LinePlot(x="step", y="similarity", color="target", label="Similarity per target over the steps",
                       color_title="", elem_id=elem_id, x_title="step", y_title="cosine similarity")


def _image(label: str, elem_id: str, height: int = 440):
    return gr.Image(label=label, format="png", interactive=False, height=height, elem_id=elem_id,
                    elem_classes=["live-image"])


# --- tabs -----------------------------------------------------------------------------------------
def imagine_tab(w: Wiring) -> tuple[dict, list]:
    """-> (the fields by IMAGINE_FIELDS name, [run event, stop event])."""
    h = w.handlers
    with gr.Tab("Imagine", id="imagine", elem_id="tab_imagine"):
        with gr.Row():
            with gr.Column(scale=5, min_width=340):
                prompt = gr.Textbox(label="Prompt", lines=2, max_lines=6, elem_id="prompt", info=PROMPT_HELP,
                                    placeholder="snowy mountains at night  ·  白日依山尽，黄河入海流")
                model = gr.Radio(forms.MODEL_CHOICES, value="auto", label="Model", elem_id="model",
                                 info="BriVL reads Chinese, CLIP reads English; both = an ensemble")
                second = gr.Textbox(label="The same text in the other language", visible=False, lines=1,
                                    elem_id="prompt2", value="",
                                    info="both models: Chinese goes to BriVL, English to CLIP, whichever box it is in")
                negative = gr.Textbox(label="Negative prompt", lines=1, elem_id="negative", value="",
                                      placeholder="what to stay away from, e.g. text|watermark")
                controls = run_controls("")
                with gr.Accordion("Advanced", open=False, elem_id="advanced"):
                    lr = gr.Number(value=0, label="Learning rate", minimum=0, maximum=1, step=0.01,
                                   info="0 = the canvas's default", elem_id="lr")
                    with gr.Row():
                        cutn = _slider("cutn", "Cutouts", "random views per step", elem_id="cutn")
                        cut_pow = _slider("cut_pow", "Cut power", ">1 favours small details", 0.1, elem_id="cut_pow")
                    augmentations = gr.CheckboxGroup(list(AUGMENTATIONS), value=list(AUGMENTATIONS),
                                                     label="Augmentations of the cutouts", elem_id="augs")
                    preview_every = _slider("preview_every", "Live image every N steps", elem_id="preview")
                    priors = prior_fields()
                    with gr.Row():
                        init_image = gr.File(label="Start from an image (optional)", file_count="single",
                                             file_types=["image"], height=140, elem_id="init_image")
                        image_prompts = gr.File(label="Image prompts (optional)", file_count="multiple",
                                                file_types=["image"], height=140, elem_id="image_prompts")
                run, stop = _buttons("", "Imagine")
                gr.Examples([values for values, _ in EXAMPLES], inputs=[prompt, model, second], label="Examples",
                            example_labels=[label for _, label in EXAMPLES])
            with gr.Column(scale=6, min_width=340):
                result = _image("Imagined", "result")
                status = _status("status")
                film = gr.File(label="Watch it form: the run's live frames as a film", interactive=False,
                               elem_id="film")
                plot = _plot("plot")
    model.change(lambda m: gr.update(visible=m == "both"), model, second, **w.private)
    inputs = [prompt, second, negative, model, *_ordered(controls), lr, cutn, cut_pow, augmentations,
              priors["tv_weight"], init_image, image_prompts, preview_every,
              *(priors[name] for name in forms.PRIORS if name != "tv_weight")]
    run_event = run.click(h.imagine, inputs, [result, status, plot, controls["seed"], film], api_name="imagine",
                          show_progress_on=status, **w.compute)
    stop_event = w.stop_button(stop, run_event, h.after_stop, [result, status])
    fields = dict(zip(IMAGINE_FIELDS, [prompt, second, negative, model, *_ordered(controls), lr, cutn, cut_pow,
                                       augmentations, preview_every, *(priors[name] for name in forms.PRIORS)]))
    return fields, [run_event, stop_event]


def prior_fields() -> dict:
    """The transforms and priors, empty by default: each canvas then uses its own measured values."""
    from imagination.pipeline import describe_defaults

    lines = "\n".join(f"- {label}: {describe_defaults(key)}" for label, key in forms.CANVAS_CHOICES)
    gr.Markdown(f"**Transforms and priors** — each empty field takes the canvas's measured default:\n{lines}",
                elem_id="priors_help")
    fields = {}
    names = list(forms.PRIORS)
    for row in (names[:3], names[3:6], names[6:]):
        with gr.Row():
            for name in row:
                low, high, integer = forms.PRIOR_LIMITS[name]
                label, info = PRIOR_FIELDS[name]
                fields[name] = gr.Number(value=None, label=label, info=info, minimum=low, maximum=high,
                                         step=1 if integer else 0.05,
                                         elem_id=f"prior_{name}")
    return fields
