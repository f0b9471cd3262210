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
    info = ("VQGAN: natural textures · Fourier and multi-resolution pixels: feature visualisation · plain: the "
            "paper's noise image")
    controls = {"canvas": gr.Radio(forms.CANVAS_CHOICES, value="vqgan", label="Canvas", info=info,
                                   elem_id=f"{prefix}canvas")}
    with gr.Row():
        controls["steps"] = _slider("steps", "Steps", info="0 = the default: 100 for CLIP alone on the VQGAN "
                                    "canvas in fp32, else 150", elem_id=f"{prefix}steps")
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


def _plot(elem_id: str, label: str = "Similarity per target over the steps"):
    return gr.LinePlot(x="step", y="similarity", color="target", label=label, color_title="", elem_id=elem_id,
                       x_title="step", y_title="cosine similarity")


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
                until_plateau = gr.Checkbox(value=False, label="Stop when done", elem_id="plateau",
                                            info="end before the last step once the loss stops improving")
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
    # Picking a canvas fills in its defaults (`input`: a gallery load sets the canvas without resetting them).
    controls["canvas"].input(prior_values, controls["canvas"], [priors[name] for name in forms.PRIORS], **w.private)
    inputs = [prompt, second, negative, model, *_ordered(controls), lr, cutn, cut_pow, augmentations,
              init_image, image_prompts, preview_every, *(priors[name] for name in forms.PRIORS), until_plateau]
    run_event = run.click(h.imagine, inputs, [result, status, plot, controls["seed"], film], api_name="imagine",
                          show_progress_on=status, **w.compute)
    stop_event = w.stop_button(stop, run_event, h.after_stop, [result, status])
    fields = dict(zip(IMAGINE_FIELDS, [prompt, second, negative, model, *_ordered(controls), lr, cutn, cut_pow,
                                       augmentations, preview_every, *(priors[name] for name in forms.PRIORS)]))
    return fields, [run_event, stop_event]


def prior_values(canvas: str) -> list:
    """A canvas's defaults for the transform/prior fields, in `forms.PRIORS` order."""
    from imagination.pipeline import CANVAS_DEFAULTS

    return [CANVAS_DEFAULTS[canvas][name] for name in forms.PRIORS]


def prior_fields() -> dict:
    """The transforms and priors. They start empty, which is what an API call that leaves them out
    sends (the canvas's defaults); the page fills in the chosen canvas's values when it loads and
    whenever a canvas is picked (see `build_app`)."""
    from imagination.pipeline import describe_defaults

    lines = "\n".join(f"- {label}: {describe_defaults(key)}" for label, key in forms.CANVAS_CHOICES)
    gr.Markdown(f"**Transforms and priors** — picking a canvas fills in its measured defaults:\n{lines}",
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


def poem_tab(w: Wiring) -> list:
    h = w.handlers
    with gr.Tab("Poem → sequence", id="poem", elem_id="tab_poem"):
        with gr.Row():
            with gr.Column(scale=4, min_width=320):
                text = gr.Textbox(label="Poem: one line per image", lines=5, elem_id="poem_text", value=POEMS[0][0],
                                  info="Chinese or English, one line per image")
                model = gr.Radio(forms.MODEL_CHOICES[:3], value="auto", label="Model", elem_id="poem_model",
                                 info="auto: BriVL when the poem is Chinese, else CLIP")
                controls = run_controls("poem_")
                chain = gr.Checkbox(label="Start each line from the previous line's result", elem_id="poem_chain",
                                    info="runs line by line (slower); otherwise all lines run together in one "
                                         "batch from the same start")
                run, stop = _buttons("poem_", "Imagine the poem")
                gr.Examples(POEMS, inputs=[text], label="Poems")
            with gr.Column(scale=6, min_width=340):
                gallery = gr.Gallery(label="Sequence", columns=4, height="auto", format="png", object_fit="contain",
                                     elem_id="poem_gallery")
                status = _status("poem_status")
                files = gr.File(label="Downloads: GIF, contact sheet, MP4", file_count="multiple",
                                interactive=False, elem_id="poem_files")
    run_event = run.click(h.poem, [text, model, *_ordered(controls), chain],
                          [gallery, status, files, controls["seed"]], api_name="poem", show_progress_on=status,
                          **w.compute)
    return [run_event, w.stop_button(stop, run_event, h.after_stop_status, status)]


def compare_tab(w: Wiring) -> list:
    h = w.handlers
    with gr.Tab("Compare BriVL ⟷ CLIP", id="compare", elem_id="tab_compare"):
        with gr.Row():
            zh = gr.Textbox(label="Chinese, for BriVL", value="雪山之夜", elem_id="cmp_zh")
            en = gr.Textbox(label="English, for CLIP", value="snowy mountains at night", elem_id="cmp_en")
        with gr.Accordion("Settings (shared by both runs)", open=False):
            controls = run_controls("cmp_")
        run, stop = _buttons("cmp_", "Imagine with both")
        with gr.Row():
            brivl = _image("BriVL imagines", "cmp_brivl", 360)
            clip = _image("CLIP imagines", "cmp_clip", 360)
        status = _status("cmp_status")
        table = gr.Dataframe(label="Cross scores: each model scores each image (cosine similarity)",
                             interactive=False, elem_id="cmp_table")
    run_event = run.click(h.compare, [zh, en, *_ordered(controls)], [brivl, clip, status, table, controls["seed"]],
                          api_name="compare", show_progress_on=status, **w.compute)
    return [run_event, w.stop_button(stop, run_event, h.after_stop_status, status)]


def family_tab(w: Wiring) -> list:
    h = w.handlers
    with gr.Tab("Prompt family", id="family", elem_id="tab_family"):
        with gr.Row():
            with gr.Column(scale=4, min_width=320):
                language = gr.Radio([("中文 · BriVL", "zh"), ("English · CLIP", "en")], value="zh", label="Language",
                                    elem_id="fam_language")
                template = gr.Textbox(label="Template (the slot {} takes each filler)", value=FAMILY_DEFAULTS["zh"][0],
                                      elem_id="fam_template")
                fillers = gr.Textbox(label="Fillers (one per line, or separated by /)", lines=3,
                                     value=FAMILY_DEFAULTS["zh"][1], elem_id="fam_fillers")
                model = gr.Radio(forms.MODEL_CHOICES[:3], value="brivl", label="Model", elem_id="fam_model")
                controls = run_controls("fam_")
                run, stop = _buttons("fam_", "Imagine the family")
            with gr.Column(scale=6, min_width=340):
                gallery = gr.Gallery(label="One image per filler, same seed", columns=2, height="auto", format="png",
                                     object_fit="contain", elem_id="fam_gallery")
                status = _status("fam_status")
    language.change(lambda lang: FAMILY_DEFAULTS[lang], language, [template, fillers, model], **w.private)
    run_event = run.click(h.family, [template, fillers, model, *_ordered(controls)],
                          [gallery, status, controls["seed"]], api_name="family", show_progress_on=status,
                          **w.compute)
    return [run_event, w.stop_button(stop, run_event, h.after_stop_status, status)]


def neurons_tab(w: Wiring) -> list:
    h = w.handlers
    with gr.Tab("Neurons", id="neurons", elem_id="tab_neurons") as tab:
        with gr.Row():
            with gr.Column(scale=4, min_width=320):
                gr.Markdown("Maximise one channel of a layer of the image tower — alone, or under a semantic "
                            "constraint: activation + weight × similarity to a text.")
                model = gr.Radio(forms.MODEL_CHOICES[1:3], value="clip", label="Model", elem_id="n_model")
                with gr.Row():
                    layer = gr.Dropdown([], label="Layer", elem_id="n_layer", scale=3, allow_custom_value=True)
                    channel = gr.Slider(0, 4095, value=0, step=1, precision=0, label="Channel", elem_id="n_channel",
                                        scale=2)
                note = gr.Markdown(elem_id="n_note")
                text = gr.Textbox(label="Constraint text (optional)", elem_id="n_text",
                                  placeholder="leave empty to see the channel alone")
                weight = _slider("weight", "Constraint weight", "how much the text counts", 0.1, elem_id="n_weight")
                controls = run_controls("n_")
                run, stop = _buttons("n_", "Visualise")
            with gr.Column(scale=6, min_width=340):
                result = _image("The neuron imagines", "neuron_result")
                status = _status("n_status")
                plot = gr.LinePlot(x="step", y="activation", color="channel", label="The channel's mean activation "
                                   "over the steps (what is maximised)", color_title="", elem_id="n_plot",
                                   x_title="step", y_title="mean activation")
                text_plot = _plot("n_text_plot", "Similarity to the constraint text (when one is set)")
    tab.select(h.neuron_layers, model, [layer, channel, note], api_visibility="private")
    model.change(h.neuron_layers, model, [layer, channel, note], api_visibility="private")
    layer.change(h.neuron_channels, [model, layer], channel, api_visibility="private")
    run_event = run.click(h.neuron, [model, layer, channel, text, weight, *_ordered(controls)],
                          [result, status, plot, controls["seed"], text_plot], api_name="neuron",
                          show_progress_on=status,
                          **w.compute)
    return [run_event, w.stop_button(stop, run_event, h.after_stop, [result, status])]


def gallery_tab(w: Wiring, tabs: gr.Tabs, fields: dict):
    """-> (gallery, names state): refreshed by the caller after every run."""
    h = w.handlers
    with gr.Tab("Gallery", id="gallery", elem_id="tab_gallery") as tab:
        gr.Markdown("Every finished or stopped image, newest first, with its settings inside the PNG. "
                    "Click one to load its settings into the Imagine tab.")
        names = gr.State([])  # the file names shown, in order: clicks are resolved on the server side
        gallery = gr.Gallery(label="Outputs", columns=6, height="auto", allow_preview=False, object_fit="cover",
                             elem_id="gallery")
        with gr.Row():
            refresh = gr.Button("Refresh", size="sm", elem_id="gallery_refresh")
            to_imagine = gr.Button("Open in Imagine →", size="sm", variant="primary", elem_id="to_imagine")
        picked = gr.Markdown(elem_id="gallery_info")
        with gr.Accordion("Stored settings", open=False):
            picked_meta = gr.JSON(show_label=False, elem_id="gallery_meta")

    def load_selected(listing, event: gr.SelectData):
        """One click in the gallery -> its settings in the Imagine fields (only files inside outputs/)."""
        index = event.index if isinstance(event.index, int) else -1
        if not 0 <= index < len(listing):
            raise gr.Error("pick an image from the gallery", print_exception=False)
        values, meta = h.load_settings(listing[index])
        updates = [values[name] for name in IMAGINE_FIELDS]
        updates[1] = gr.update(value=values["second_prompt"], visible=values["model"] == "both")
        message = f"Loaded **{listing[index]}** into the Imagine tab (seed {values['seed']} locked)."
        return (*updates, message, meta)

    gallery.select(load_selected, names, [*(fields[name] for name in IMAGINE_FIELDS), picked, picked_meta],
                   api_visibility="private")
    to_imagine.click(lambda: gr.Tabs(selected="imagine"), None, tabs, **w.private)
    for trigger in (refresh.click, tab.select):
        trigger(h.gallery, None, [gallery, names], api_visibility="private")
    return gallery, names


def models_tab(w: Wiring) -> None:
    h = w.handlers
    with gr.Tab("Models", id="models", elem_id="tab_models") as tab:
        table = gr.Markdown(h.models_table(), elem_id="models_table")
        refresh = gr.Button("Refresh", size="sm")
    for trigger in (refresh.click, tab.select):
        trigger(h.models_table, None, table, api_visibility="private")
