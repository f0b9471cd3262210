"""The studio's page: tabs, controls and the wiring of events to `studio.handlers`.

`build_app(outputs)` makes the Blocks without starting anything; `launch(demo, outputs, ...)` sets
up the queue (one job per device at a time by default, a capped waiting line) and serves the page
with only the outputs folder readable.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import gradio as gr

from imagination.augment import AUGMENTATIONS
from studio import forms
from studio.handlers import Handlers
from studio.outputs import Outputs

COMPUTE = "compute"  # the concurrency pool every model-running listener shares

INTRO = """
# The imagination studio
What do frozen image–text models **imagine** when they read a text? Each run optimises an image until
BriVL (Chinese) or CLIP (English) finds it closest to your words — as in *Fei et al., Towards artificial
general intelligence via a multimodal foundation model*, Nature Communications 2022.
"""

PROMPT_HELP = ("Weights: split parts with | and add :weight — `snowy mountains:1|night:-0.5` pulls towards "
               "snowy mountains and away from night.")

POEMS = [
    ["白日依山尽\n黄河入海流\n欲穷千里目\n更上一层楼"],
    ["床前明月光\n疑是地上霜\n举头望明月\n低头思故乡"],
    ["the sun sets behind the mountains\nthe river flows into the sea\nclimb one more floor\nto see a thousand miles"],
]

FAMILY_DEFAULTS = {
    "zh": ("有{}的山脉", "森林 / 石头 / 积雪 / 瀑布", "brivl"),
    "en": ("mountains with {}", "forest / stones / snow / a waterfall", "clip"),
}

CSS = """
#intro h1 { margin-bottom: 0.2em; }
#intro p { color: var(--body-text-color-subdued); max-width: 60em; }
.status textarea { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.9em; }
.live-image img { width: 100% !important; height: 100% !important; object-fit: contain; }
#poem_files, #poem_files .file-preview-holder { min-height: 0; }
.examples-hint { font-size: 0.85em; color: var(--body-text-color-subdued); }
footer { opacity: 0.7; }
"""

THEME = gr.themes.Soft(
    primary_hue="indigo", secondary_hue="amber", neutral_hue="slate",
    font=["ui-sans-serif", "system-ui", "Segoe UI", "Noto Sans CJK SC", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
).set(button_primary_background_fill="*primary_600", button_primary_background_fill_hover="*primary_700",
      button_primary_text_color="white")


def _random_seed() -> int:
    return secrets.randbelow(forms.LIMITS["seed"][1])


def _slider(name: str, label: str, info: str | None = None, step: float = 1, elem_id: str | None = None):
    low, high, default = forms.LIMITS[name]
    return gr.Slider(low, high, value=default, step=step, label=label, info=info, elem_id=elem_id)


def _run_controls(prefix: str) -> dict:
    """Canvas, steps, size and seed fields, the same on every tab."""
    controls = {"canvas": gr.Radio(forms.CANVAS_CHOICES, value="vqgan", label="Canvas",
                                   info="VQGAN: natural textures · Fourier pixels: smooth · plain: the paper's noise image",
                                   elem_id=f"{prefix}canvas")}
    with gr.Row():
        controls["steps"] = _slider("steps", "Steps", elem_id=f"{prefix}steps")
        controls["size"] = _slider("size", "Size (px)", step=16, elem_id=f"{prefix}size")
    with gr.Row(equal_height=True):
        controls["seed"] = gr.Number(value=_random_seed, label="Seed", precision=0, minimum=0,
                                     maximum=forms.LIMITS["seed"][1], elem_id=f"{prefix}seed", scale=3)
        controls["lock_seed"] = gr.Checkbox(value=False, label="Lock seed",
                                            info="unlocked: each run draws a new seed", elem_id=f"{prefix}lock",
                                            scale=2)
    return controls


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
                       height=260, elem_id=elem_id, x_title="step", y_title="cosine similarity")


def build_app(outputs: str | Path = "outputs", device: str = "auto", concurrency: int = 1) -> gr.Blocks:
    """The whole studio; nothing loads or runs until a button is pressed."""
    h = Handlers(Outputs(outputs), device)
    compute = dict(concurrency_id=COMPUTE, concurrency_limit=concurrency, trigger_mode="once",
                   show_progress="minimal")
    private = dict(api_visibility="private", queue=False)

    with gr.Blocks(title="The imagination studio", delete_cache=(1800, 3600)) as demo:
        gr.Markdown(INTRO, elem_id="intro")
        with gr.Tabs(elem_id="tabs") as tabs:
            # --- Imagine -------------------------------------------------------------------------------
            with gr.Tab("Imagine", id="imagine", elem_id="tab_imagine"):
                with gr.Row():
                    with gr.Column(scale=5, min_width=340):
                        prompt = gr.Textbox(label="Prompt", lines=2, max_lines=6, elem_id="prompt",
                                            placeholder="snowy mountains at night  ·  白日依山尽，黄河入海流",
                                            info=PROMPT_HELP)
                        model = gr.Radio(forms.MODEL_CHOICES, value="auto", label="Model", elem_id="model",
                                         info="BriVL reads Chinese, CLIP reads English; both = an ensemble")
                        second = gr.Textbox(label="The same text in the other language", visible=False, lines=1,
                                            elem_id="prompt2", info="both models: Chinese goes to BriVL, "
                                            "English to CLIP, whichever box it is in")
                        negative = gr.Textbox(label="Negative prompt", lines=1, elem_id="negative",
                                              placeholder="what to stay away from, e.g. text|watermark")
                        run_controls = _run_controls("")
                        with gr.Accordion("Advanced", open=False, elem_id="advanced"):
                            with gr.Row():
                                lr = gr.Number(value=0, label="Learning rate", minimum=0, maximum=1, step=0.01,
                                               info="0 = the canvas's default", elem_id="lr")
                                tv = gr.Number(value=0, label="TV weight", minimum=0, maximum=10, step=0.01,
                                               info="smoothness prior", elem_id="tv")
                            with gr.Row():
                                cutn = _slider("cutn", "Cutouts", "random views per step", elem_id="cutn")
                                cut_pow = _slider("cut_pow", "Cut power", ">1 favours small details", 0.1,
                                                  elem_id="cut_pow")
                            augmentations = gr.CheckboxGroup(list(AUGMENTATIONS), value=list(AUGMENTATIONS),
                                                             label="Augmentations of the cutouts", elem_id="augs")
                            preview_every = _slider("preview_every", "Live image every N steps", elem_id="preview")
                            with gr.Row():
                                init_image = gr.File(label="Start from an image (optional)", file_count="single",
                                                     file_types=["image"], height=140, elem_id="init_image")
                                image_prompts = gr.File(label="Image prompts (optional)", file_count="multiple",
                                                        file_types=["image"], height=140, elem_id="image_prompts")
                        run, stop = _buttons("", "Imagine")
                        gr.Examples([["白日依山尽，黄河入海流", "auto", ""], ["snowy mountains at night", "auto", ""],
                                     ["a lighthouse on a cliff in a storm|sunshine:-0.5", "clip", ""],
                                     ["雪山之夜", "both", "snowy mountains at night"]],
                                    inputs=[prompt, model, second], label="Examples",
                                    example_labels=["白日依山尽，黄河入海流 · BriVL", "snowy mountains at night · CLIP",
                                                    "a lighthouse in a storm, not sunny · weights",
                                                    "雪山之夜 + snowy mountains at night · both"])
                    with gr.Column(scale=6, min_width=340):
                        result = gr.Image(label="Imagined", format="png", interactive=False, height=440,
                                          elem_id="result", elem_classes=["live-image"])
                        status = _status("status")
                        plot = _plot("plot")
            model.change(lambda m: gr.update(visible=m == "both"), model, second, **private)
            imagine_inputs = [prompt, second, negative, model, run_controls["canvas"], run_controls["steps"],
                              run_controls["size"], run_controls["seed"], run_controls["lock_seed"], lr, cutn,
                              cut_pow, augmentations, tv, init_image, image_prompts, preview_every]
            imagine = run.click(h.imagine, imagine_inputs, [result, status, plot, run_controls["seed"]],
                                api_name="imagine", show_progress_on=status, **compute)
            stop_imagine = stop.click(h.after_stop, None, [result, status], cancels=[imagine],
                                      api_visibility="private", concurrency_limit=None)

            # --- Poem -> sequence ----------------------------------------------------------------------
            with gr.Tab("Poem → sequence", id="poem", elem_id="tab_poem"):
                with gr.Row():
                    with gr.Column(scale=4, min_width=320):
                        poem_text = gr.Textbox(label="Poem: one line per image", lines=5, elem_id="poem_text",
                                               value=POEMS[0][0], info="Chinese or English, one line per image")
                        poem_model = gr.Radio(forms.MODEL_CHOICES[:3], value="auto", label="Model",
                                              info="auto: BriVL when the poem is Chinese, else CLIP",
                                              elem_id="poem_model")
                        poem_controls = _run_controls("poem_")
                        chain = gr.Checkbox(label="Start each line from the previous line's result",
                                            info="runs line by line (slower); otherwise all lines run together "
                                            "in one batch from the same start", elem_id="poem_chain")
                        poem_run, poem_stop = _buttons("poem_", "Imagine the poem")
                        gr.Examples(POEMS, inputs=[poem_text], label="Poems")
                    with gr.Column(scale=6, min_width=340):
                        poem_gallery = gr.Gallery(label="Sequence", columns=4, height="auto", format="png",
                                                  object_fit="contain", elem_id="poem_gallery")
                        poem_status = _status("poem_status")
                        poem_files = gr.File(label="Downloads: GIF, contact sheet, MP4", file_count="multiple",
                                             interactive=False, height=120, elem_id="poem_files")
            poem = poem_run.click(h.poem, [poem_text, poem_model, poem_controls["canvas"], poem_controls["steps"],
                                           poem_controls["size"], poem_controls["seed"], poem_controls["lock_seed"],
                                           chain],
                                  [poem_gallery, poem_status, poem_files, poem_controls["seed"]], api_name="poem",
                                  show_progress_on=poem_status, **compute)
            stop_poem = poem_stop.click(h.after_stop_status, None, poem_status,
                                        cancels=[poem], api_visibility="private", concurrency_limit=None)

            # --- Compare -------------------------------------------------------------------------------
            with gr.Tab("Compare BriVL ⟷ CLIP", id="compare", elem_id="tab_compare"):
                with gr.Row():
                    zh = gr.Textbox(label="Chinese, for BriVL", value="雪山之夜", elem_id="cmp_zh")
                    en = gr.Textbox(label="English, for CLIP", value="snowy mountains at night", elem_id="cmp_en")
                with gr.Accordion("Settings (shared by both runs)", open=False):
                    cmp_controls = _run_controls("cmp_")
                cmp_run, cmp_stop = _buttons("cmp_", "Imagine with both")
                with gr.Row():
                    cmp_brivl = gr.Image(label="BriVL imagines", format="png", interactive=False, height=360,
                                         elem_id="cmp_brivl", elem_classes=["live-image"])
                    cmp_clip = gr.Image(label="CLIP imagines", format="png", interactive=False, height=360,
                                        elem_id="cmp_clip", elem_classes=["live-image"])
                cmp_status = _status("cmp_status")
                cmp_table = gr.Dataframe(label="Cross scores: each model scores each image (cosine similarity)",
                                         interactive=False, elem_id="cmp_table")
            compare = cmp_run.click(h.compare, [zh, en, cmp_controls["canvas"], cmp_controls["steps"],
                                                cmp_controls["size"], cmp_controls["seed"], cmp_controls["lock_seed"]],
                                    [cmp_brivl, cmp_clip, cmp_status, cmp_table, cmp_controls["seed"]],
                                    api_name="compare", show_progress_on=cmp_status, **compute)
            stop_compare = cmp_stop.click(h.after_stop_status, None, cmp_status,
                                          cancels=[compare], api_visibility="private", concurrency_limit=None)

            # --- Prompt family -------------------------------------------------------------------------
            with gr.Tab("Prompt family", id="family", elem_id="tab_family"):
                with gr.Row():
                    with gr.Column(scale=4, min_width=320):
                        language = gr.Radio([("中文 · BriVL", "zh"), ("English · CLIP", "en")], value="zh",
                                            label="Language", elem_id="fam_language")
                        template = gr.Textbox(label="Template (the slot {} takes each filler)",
                                              value=FAMILY_DEFAULTS["zh"][0], elem_id="fam_template")
                        fillers = gr.Textbox(label="Fillers (one per line, or separated by /)",
                                             value=FAMILY_DEFAULTS["zh"][1], lines=3, elem_id="fam_fillers")
                        fam_model = gr.Radio(forms.MODEL_CHOICES[:3], value="brivl", label="Model",
                                             elem_id="fam_model")
                        fam_controls = _run_controls("fam_")
                        fam_run, fam_stop = _buttons("fam_", "Imagine the family")
                    with gr.Column(scale=6, min_width=340):
                        fam_gallery = gr.Gallery(label="One image per filler, same seed", columns=4, height="auto",
                                                 format="png", object_fit="contain", elem_id="fam_gallery")
                        fam_status = _status("fam_status")
            language.change(lambda lang: FAMILY_DEFAULTS[lang], language, [template, fillers, fam_model], **private)
            family = fam_run.click(h.family, [template, fillers, fam_model, fam_controls["canvas"],
                                              fam_controls["steps"], fam_controls["size"], fam_controls["seed"],
                                              fam_controls["lock_seed"]],
                                   [fam_gallery, fam_status, fam_controls["seed"]], api_name="family",
                                   show_progress_on=fam_status, **compute)
            stop_family = fam_stop.click(h.after_stop_status, None, fam_status,
                                         cancels=[family], api_visibility="private", concurrency_limit=None)

            # --- Neurons -------------------------------------------------------------------------------
            with gr.Tab("Neurons", id="neurons", elem_id="tab_neurons") as neurons_tab:
                with gr.Row():
                    with gr.Column(scale=4, min_width=320):
                        gr.Markdown("Maximise one channel of a layer of the image tower — alone, or under a "
                                    "semantic constraint: activation + weight × similarity to a text.")
                        n_model = gr.Radio(forms.MODEL_CHOICES[1:3], value="clip", label="Model", elem_id="n_model")
                        with gr.Row():
                            n_layer = gr.Dropdown([], label="Layer", elem_id="n_layer", scale=3, allow_custom_value=True)
                            n_channel = gr.Slider(0, 4095, value=0, step=1, label="Channel", elem_id="n_channel",
                                                  scale=2)
                        n_note = gr.Markdown(elem_id="n_note")
                        n_text = gr.Textbox(label="Constraint text (optional)", elem_id="n_text",
                                            placeholder="leave empty to see the channel alone")
                        n_weight = _slider("weight", "Constraint weight", "how much the text counts", 0.1,
                                           elem_id="n_weight")
                        n_controls = _run_controls("n_")
                        n_run, n_stop = _buttons("n_", "Visualise")
                    with gr.Column(scale=6, min_width=340):
                        n_result = gr.Image(label="The neuron imagines", format="png", interactive=False, height=440,
                                            elem_id="neuron_result", elem_classes=["live-image"])
                        n_status = _status("n_status")
                        n_plot = _plot("n_plot")
            layer_outputs = [n_layer, n_channel, n_note]
            neurons_tab.select(h.neuron_layers, n_model, layer_outputs, api_visibility="private")
            n_model.change(h.neuron_layers, n_model, layer_outputs, api_visibility="private")
            n_layer.change(h.neuron_channels, [n_model, n_layer], n_channel, api_visibility="private")
            neuron = n_run.click(h.neuron, [n_model, n_layer, n_channel, n_text, n_weight, n_controls["canvas"],
                                            n_controls["steps"], n_controls["size"], n_controls["seed"],
                                            n_controls["lock_seed"]],
                                 [n_result, n_status, n_plot, n_controls["seed"]], api_name="neuron",
                                 show_progress_on=n_status, **compute)
            stop_neuron = n_stop.click(h.after_stop, None, [n_result, n_status], cancels=[neuron],
                                       api_visibility="private", concurrency_limit=None)

            # --- Gallery -------------------------------------------------------------------------------
            with gr.Tab("Gallery", id="gallery", elem_id="tab_gallery") as gallery_tab:
                gr.Markdown("Every finished or stopped image, newest first, with its settings inside the PNG. "
                            "Click one to load its settings into the Imagine tab.")
                names = gr.State([])
                gallery = gr.Gallery(label="Outputs", columns=6, height="auto", allow_preview=False,
                                     object_fit="cover", elem_id="gallery")
                with gr.Row():
                    refresh = gr.Button("Refresh", size="sm", elem_id="gallery_refresh")
                    to_imagine = gr.Button("Open in Imagine →", size="sm", variant="primary", elem_id="to_imagine")
                picked = gr.Markdown(elem_id="gallery_info")
                picked_meta = gr.JSON(label="Stored settings", open=False, elem_id="gallery_meta")
            field_order = ["prompt", "second_prompt", "negative", "model", "canvas", "steps", "size", "seed",
                           "lock_seed", "lr", "cutn", "cut_pow", "augmentations", "tv_weight", "preview_every"]
            field_components = [prompt, second, negative, model, run_controls["canvas"], run_controls["steps"],
                                run_controls["size"], run_controls["seed"], run_controls["lock_seed"], lr, cutn,
                                cut_pow, augmentations, tv, preview_every]

            def load_selected(listing, event: gr.SelectData):
                """One click in the gallery -> its settings in the Imagine fields (only files in outputs/)."""
                index = event.index if isinstance(event.index, int) else -1
                if not 0 <= index < len(listing):
                    raise gr.Error("pick an image from the gallery", print_exception=False)
                values, meta = h.load_settings(listing[index])
                message = f"Loaded **{listing[index]}** into the Imagine tab (seed {values['seed']} locked)."
                fields = [values[name] for name in field_order]
                fields[1] = gr.update(value=values["second_prompt"], visible=values["model"] == "both")
                return (*fields, message, meta)

            gallery.select(load_selected, names, [*field_components, picked, picked_meta], api_visibility="private")
            to_imagine.click(lambda: gr.Tabs(selected="imagine"), None, tabs, **private)
            for trigger in (refresh.click, gallery_tab.select, demo.load):
                trigger(h.gallery, None, [gallery, names], api_visibility="private")
            for event in (imagine, poem, compare, family, neuron, stop_imagine, stop_poem, stop_compare,
                          stop_family, stop_neuron):
                event.then(h.gallery, None, [gallery, names], api_visibility="private")

            # --- Models --------------------------------------------------------------------------------
            with gr.Tab("Models", id="models", elem_id="tab_models") as models_tab:
                models_md = gr.Markdown(h.models_table, elem_id="models_table")
                models_refresh = gr.Button("Refresh", size="sm")
            for trigger in (models_refresh.click, models_tab.select):
                trigger(h.models_table, None, models_md, api_visibility="private")
    return demo


def launch(demo: gr.Blocks, outputs: str | Path = "outputs", *, host: str = "127.0.0.1", port: int = 7860,
           queue_size: int = 16, concurrency: int = 1, **kwargs):
    """Queue (capped) and serve; only the outputs folder is readable through the app."""
    outputs = Path(outputs).resolve()
    outputs.mkdir(parents=True, exist_ok=True)
    demo.queue(max_size=queue_size, default_concurrency_limit=concurrency)
    return demo.launch(server_name=host, server_port=port, allowed_paths=[str(outputs)], theme=THEME, css=CSS,
                       max_file_size="20mb", footer_links=["api", "gradio"], run_history=False, **kwargs)
