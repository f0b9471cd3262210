"""The studio's page: `build_app(outputs)` makes the Blocks, `launch(demo, outputs, ...)` serves it.

Building starts nothing and loads no model. Launching sets up the queue (one job per device at a time by
default, a capped waiting line) and serves the page with only the outputs folder readable.
"""

from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr

from studio import forms, tabs
from studio.guard import GuardedBlocks
from studio.handlers import Handlers
from studio.outputs import Outputs

COMPUTE = "compute"  # the concurrency pool every model-running listener shares

INTRO = """
# The imagination studio
What do frozen image–text models **imagine** when they read a text? Each run optimises an image until
BriVL (Chinese) or CLIP (English) finds it closest to your words — as in *Fei et al., Towards artificial
general intelligence via a multimodal foundation model*, Nature Communications 2022.
"""

CSS = """
#intro h1 { margin-bottom: 0.2em; }
#intro p { color: var(--body-text-color-subdued); max-width: 60em; }
.status textarea { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.9em; }
.live-image img { width: 100% !important; height: 100% !important; object-fit: contain; }
#models_table td:nth-child(-n+2), #models_table th:nth-child(-n+2) { white-space: nowrap; }
footer { opacity: 0.7; }
"""

THEME = gr.themes.Soft(
    primary_hue="indigo", secondary_hue="amber", neutral_hue="slate",
    font=["ui-sans-serif", "system-ui", "Segoe UI", "Noto Sans CJK SC", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
).set(button_primary_background_fill="*primary_600", button_primary_background_fill_hover="*primary_700",
      button_primary_text_color="white")


def build_app(outputs: str | Path = "outputs", device: str = "auto", concurrency: int = 1) -> gr.Blocks:
    """The whole studio; nothing loads or runs until a button is pressed."""
    handlers = Handlers(Outputs(outputs), device)
    wiring = tabs.Wiring(handlers, compute=dict(concurrency_id=COMPUTE, concurrency_limit=concurrency,
                                                trigger_mode="once", show_progress="minimal"))
    with GuardedBlocks(title="The imagination studio", delete_cache=(1800, 3600)) as demo:
        gr.Markdown(INTRO, elem_id="intro")
        with gr.Tabs(elem_id="tabs") as tab_set:
            fields, events = tabs.imagine_tab(wiring)
            for make in (tabs.poem_tab, tabs.compare_tab, tabs.family_tab, tabs.neurons_tab):
                events += make(wiring)
            gallery = tabs.gallery_tab(wiring, tab_set, fields)
            tabs.models_tab(wiring)
        refresh = dict(fn=handlers.gallery, inputs=None, outputs=list(gallery), api_visibility="private")
        demo.load(**refresh)
        demo.load(tabs.prior_values, fields["canvas"], [fields[name] for name in forms.PRIORS], api_visibility="private")
        for event in events:  # every run and every stop may have added images
            event.then(**refresh)
    return demo


def log_refusals_to_stderr() -> None:
    """One line per refused request on stderr (`studio.guard`), whatever logging the host set up."""
    log = logging.getLogger("studio")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def launch(demo: gr.Blocks, outputs: str | Path = "outputs", *, host: str = "127.0.0.1", port: int = 7860,
           queue_size: int = 16, concurrency: int = 1, **kwargs):
    """Queue (capped) and serve; only the outputs folder is readable through the app."""
    outputs = Path(outputs).resolve()
    outputs.mkdir(parents=True, exist_ok=True)
    log_refusals_to_stderr()
    demo.queue(max_size=queue_size, default_concurrency_limit=concurrency)
    return demo.launch(server_name=host, server_port=port, allowed_paths=[str(outputs)], theme=THEME, css=CSS,
                       max_file_size="20mb", footer_links=["api", "gradio"], run_history=False, **kwargs)
