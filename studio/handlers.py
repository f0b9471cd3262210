"""The studio's event handlers: generators over plain values that stream a run into the page.

Each compute handler yields once per optimisation step (so Stop, which closes the generator at a
`yield`, takes effect within one step), sends a new image only on preview steps (`gr.skip()`
otherwise), saves every finished image under the outputs folder with its settings, and turns a
`UserError` into a `gr.Error` with its one-line message. All computation is a call into
`imagination`; nothing here touches torch state across a `yield`.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import pandas as pd
import torch

from imagination.errors import UserError
from imagination.io import slug, to_pil
from imagination.models import registry
from imagination.pipeline import ImagineSettings, Neuron, Run, default_settings, score
from imagination import media
from studio import forms
from studio.guard import refuse
from studio.live import Live, StopBoard, finish_in_background
from studio.outputs import Outputs

SKIP = gr.skip


def session_of(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "local"


@contextmanager
def user_errors(what: str):
    """Show a UserError as a notice with its message, and log it as one line; never a traceback."""
    try:
        yield
    except UserError as error:
        raise refuse(what, str(error)) from None


class Handlers:
    """Every handler of the app, sharing the outputs folder, the device and the stop board."""

    def __init__(self, outputs: Outputs, device: str = "auto"):
        self.outputs, self.device = outputs, device
        self.board = StopBoard()

    # --- shared machinery -------------------------------------------------------------------------
    def _start(self, settings: ImagineSettings, name: str = "") -> Live:
        with user_errors("a run"):
            return Live(Run(settings), name)

    def _save(self, live: Live, hints: list[str] | None = None) -> list[Path]:
        return self.outputs.save_result(live.run.result, hints)

    def _watch(self, request: gr.Request | None) -> "Watch":
        return Watch(self, session_of(request))

    # --- Imagine ----------------------------------------------------------------------------------
    def imagine(self, prompt, second_prompt, negative, model, canvas, steps, size, seed, lock_seed,
                lr, cutn, cut_pow, augmentations, init_image, image_prompts, preview_every,
                pad=None, jitter=None, scale_min=None, scale_max=None, rotate=None, mean_weight=None,
                grey_weight=None, tv_weight=None, blur=None, until_plateau=False, request: gr.Request = None):
        """Stream one run: yields (image, status, similarity plot, seed, film of the run)."""
        with user_errors("/imagine"):
            seed = forms.draw_seed(seed, lock_seed)
            settings = forms.imagine_settings(
                prompt, second_prompt, negative, model, canvas, steps, size, seed, lr=lr, cutn=cutn,
                cut_pow=cut_pow, augmentations=augmentations, preview_every=preview_every,
                init_image=(_paths(init_image) or [None])[0], image_prompts=_paths(image_prompts), device=self.device,
                pad=pad, jitter=jitter, scale_min=scale_min, scale_max=scale_max, rotate=rotate,
                mean_weight=mean_weight, grey_weight=grey_weight, tv_weight=tv_weight, blur=blur,
                until_plateau=forms.check_flag("stop when done", until_plateau))
        with self._watch(request) as watch:
            yield SKIP(), "loading models…", SKIP(), seed, None
            live = watch.add(self._start(settings))
            film = media.Film()
            for event in live:
                film.add(event)
                if not event.done:
                    image = to_pil(event.images[0]) if event.images is not None else SKIP()
                    plot = live.plot() if event.images is not None and live.plot_due() else SKIP()
                    yield image, live.status(), plot, SKIP(), SKIP()
            paths = watch.done(self._save(live), live.summary())
            try:  # the image is saved: a film that fails to encode costs only the film
                video = str(film.save(self.outputs.new_path(f"{paths[0].stem} forming", media.film_suffix(),
                                                            self.outputs.sequences)))
            except UserError:
                video = None
            yield str(paths[0]), f"{live.summary()} · saved {paths[0].name}", live.plot(), seed, video

    def after_stop(self, request: gr.Request = None):
        """Runs after Stop: show the image the stopped run saved, and say so. -> (image, status)."""
        record = self.board.take_stopped(session_of(request))
        if record is None:
            return SKIP(), "stopped · none of your runs was computing (a waiting one leaves the queue)"
        return (str(record["images"][0]) if record["images"] else SKIP()), record["message"]

    def after_stop_status(self, request: gr.Request = None) -> str:
        """Runs after Stop on tabs whose status line is all that changes."""
        return self.after_stop(request)[1]

    # --- Poem -> sequence -------------------------------------------------------------------------
    def poem(self, text, model, canvas, steps, size, seed, lock_seed, chain, request: gr.Request = None):
        """All lines in one batched run (or line by line when chained): yields (gallery, status, files, seed)."""
        with user_errors("/poem"):
            lines = forms.check_lines(text)
            forms.check_choice("model", model, forms.MODEL_CHOICES[:3])
            seed = forms.draw_seed(seed, lock_seed)
            base = dict(models=None if model == "auto" else [model], seed=seed, share_init=True,
                        preview_every=5, device=self.device, **forms.basics(canvas, steps, size))
        batches = [[line] for line in lines] if chain else [lines]
        with self._watch(request) as watch:
            yield SKIP(), "loading models…", SKIP(), seed
            done: list[tuple[str, str]] = []
            for i, batch in enumerate(batches):
                init = done[-1][0] if done else None  # chained: start from the previous line's image
                name = f"line {i + 1}/{len(lines)}" if chain else ""
                live = watch.add(self._start(ImagineSettings(prompts=batch, init_image=init, **base), name), batch)
                for event in live:
                    if event.images is not None and not event.done:
                        previews = [(to_pil(im), line) for im, line in zip(event.images, batch)]
                        yield done + previews, live.status(), SKIP(), SKIP()
                    elif not event.done:
                        yield SKIP(), live.status(), SKIP(), SKIP()
                done += [(str(p), line) for p, line in zip(self._save(live, batch), batch)]
            with user_errors("/poem"):
                files = self._sequence_files([Path(p) for p, _ in done], lines)
            note = "" if media.find_cjk_font() else " · no CJK font found: captions on the sheet are ASCII only"
            status = f"done · {len(lines)} images, seed {seed}{note}"
            watch.done([Path(p) for p, _ in done], status)
            yield done, status, [str(f) for f in files], seed

    def _sequence_files(self, paths: list[Path], lines: list[str]) -> list[Path]:
        """GIF, contact sheet and (where ffmpeg works) MP4 of a finished sequence."""
        from PIL import Image

        images = [Image.open(p).convert("RGB") for p in paths]
        stem = self.outputs.new_path(f"poem {slug(lines[0])}", "", self.outputs.sequences)
        return media.save_sequence(images, lines, stem)

    # --- Compare BriVL <-> CLIP -------------------------------------------------------------------
    def compare(self, chinese, english, canvas, steps, size, seed, lock_seed, request: gr.Request = None):
        """Same seed and settings, one run per model, stepped alternately.

        Yields (BriVL image, CLIP image, status, cross-score table, seed).
        """
        with user_errors("/compare"):
            chinese, english = forms.check_text(chinese, "Chinese text"), forms.check_text(english, "English text")
            seed = forms.draw_seed(seed, lock_seed)
            common = dict(seed=seed, preview_every=5, device=self.device, **forms.basics(canvas, steps, size))
            both = default_settings(common["canvas"], ["brivl", "clip"])  # one footing: what a run with both gets
            common.update(steps=common["steps"] or both["steps"], lr=both["lr"])
        with self._watch(request) as watch:
            yield SKIP(), SKIP(), "loading models…", SKIP(), seed
            lives = [watch.add(self._start(ImagineSettings(prompts=[chinese], models=["brivl"], **common), "BriVL")),
                     watch.add(self._start(ImagineSettings(prompts=[english], models=["clip"], **common), "CLIP"))]
            while not all(live.finished for live in lives):
                images = []
                for live in lives:
                    event = None if live.finished else next(live)
                    new = event is not None and event.images is not None and not event.done
                    images.append(to_pil(event.images[0]) if new else SKIP())
                yield images[0], images[1], " | ".join(live.status() for live in lives), SKIP(), SKIP()
            paths = [self._save(live)[0] for live in lives]
            with user_errors("/compare"):
                table = cross_scores(torch.cat([live.run.result.images for live in lives]), chinese, english,
                                     self.device)
            status = " | ".join(live.summary() for live in lives)
            watch.done(paths, status)
            yield str(paths[0]), str(paths[1]), status, table, seed

    # --- Prompt family ----------------------------------------------------------------------------
    def family(self, template, fillers, model, canvas, steps, size, seed, lock_seed, request: gr.Request = None):
        """One batched run, one image per filler, same seed: yields (gallery, status, seed)."""
        with user_errors("/family"):
            prompts = family_prompts(template, fillers)
            forms.check_choice("model", model, forms.MODEL_CHOICES[:3])
            seed = forms.draw_seed(seed, lock_seed)
            settings = ImagineSettings(prompts=prompts, models=None if model == "auto" else [model], seed=seed,
                                       share_init=True, preview_every=5, device=self.device,
                                       **forms.basics(canvas, steps, size))
        with self._watch(request) as watch:
            yield SKIP(), "loading models…", seed
            live = watch.add(self._start(settings), prompts)
            for event in live:
                if event.images is not None and not event.done:
                    yield [(to_pil(im), p) for im, p in zip(event.images, prompts)], live.status(), SKIP()
                elif not event.done:
                    yield SKIP(), live.status(), SKIP()
            paths = watch.done(self._save(live, prompts), live.summary())
            yield [(str(p), c) for p, c in zip(paths, prompts)], f"{live.summary()} · seed {seed}", seed

    # --- Neurons ----------------------------------------------------------------------------------
    def neuron_layers(self, model):
        """Model choice -> (layer dropdown update, channel slider update, note)."""
        try:
            name = registry.resolve(model).name
            layers = registry.load(model, _device(self.device)).neuron_layers()
        except UserError as error:
            return gr.update(choices=[], value=None), gr.update(), str(error)
        if not layers:
            return gr.update(choices=[], value=None), gr.update(), f"{name} exposes no layers to visualise"
        first = next(iter(layers))
        return (gr.update(choices=list(layers), value=first), gr.update(maximum=layers[first] - 1, value=0),
                f"{name}: {len(layers)} layers; pick one and a channel")

    def neuron_channels(self, model, layer):
        """Layer choice -> the channel slider's range."""
        try:
            count = registry.load(model, _device(self.device)).neuron_layers().get(layer)
        except UserError:
            return gr.update()
        return gr.update(maximum=count - 1, value=0) if count else gr.update()

    def neuron(self, model, layer, channel, text, weight, canvas, steps, size, seed, lock_seed,
               request: gr.Request = None):
        """A channel alone, or with weight x similarity to a text: yields (image, status, activation plot, seed,
        text similarity plot)."""
        with user_errors("/neuron"):
            forms.check_choice("model", model, forms.MODEL_CHOICES[1:3])
            if not layer:
                raise UserError("pick a layer (the list is filled when a model is chosen)")
            weight = forms.check_number("weight", weight, integer=False)
            constraint = forms.constraint_prompt(forms.check_text(text, "constraint text", required=False), weight)
            channel = forms.check_number("channel", channel)
            seed = forms.draw_seed(seed, lock_seed)
            settings = ImagineSettings(prompts=[constraint] if constraint else [], models=[model],
                                       neuron=Neuron(model, layer, channel), seed=seed, preview_every=5,
                                       device=self.device, **forms.basics(canvas, steps, size))
        hint = [f"neuron {' '.join(layer.split('.')[-3:])} c{channel}"]
        with self._watch(request) as watch:
            yield SKIP(), "loading models…", SKIP(), seed, SKIP()
            live = watch.add(self._start(settings), hint)
            for event in live:
                if not event.done:
                    image = to_pil(event.images[0]) if event.images is not None else SKIP()
                    if event.images is not None and live.plot_due():
                        yield image, live.status(), live.activation_plot(), SKIP(), live.plot() if constraint else SKIP()
                    else:
                        yield image, live.status(), SKIP(), SKIP(), SKIP()
            paths = watch.done(self._save(live, hint), live.summary())
            yield (str(paths[0]), f"{live.summary()} · saved {paths[0].name}", live.activation_plot(), seed,
                   live.plot() if constraint else None)

    # --- Gallery ----------------------------------------------------------------------------------
    def gallery(self):
        """(gallery items newest first, the file names in the same order) for the Gallery tab."""
        files = self.outputs.listing()
        items = []
        for path in files:
            try:
                meta = self.outputs.metadata(path.name)
            except UserError:
                meta = {}
            caption = meta.get("prompt") or " | ".join(meta.get("prompts") or []) or path.stem
            if meta.get("seed") is not None:
                caption += f" · seed {meta['seed']}"
            items.append((str(path), caption))
        return items, [p.name for p in files]

    def load_settings(self, name: str) -> tuple[dict, dict]:
        """A file name from the gallery -> (Imagine field values, the stored metadata)."""
        with user_errors("loading settings"):
            meta = self.outputs.metadata(name)
            return forms.form_from_metadata(meta), meta

    # --- Models -----------------------------------------------------------------------------------
    def models_table(self) -> str:
        return models_markdown(registry.status())


class Watch:
    """The runs of one handler call, so that a Stop (GeneratorExit) saves what they have so far.

    Used as `with handlers._watch(request) as watch:` around everything a handler yields.
    """

    def __init__(self, handlers: Handlers, session: str):
        self.handlers, self.session = handlers, session
        self.lives: list[tuple[Live, list[str] | None]] = []

    def __enter__(self) -> "Watch":
        self.handlers.board.started(self.session)
        return self

    def add(self, live: Live, hints: list[str] | None = None) -> Live:
        self.lives.append((live, hints))
        return live

    def done(self, paths: list[Path], message: str) -> list[Path]:
        self.handlers.board.finished(self.session, message, paths)
        return paths

    def __exit__(self, kind, error, trace) -> None:
        board, session = self.handlers.board, self.session
        if kind is None:
            return
        if kind is not GeneratorExit:  # a failure: nothing to show after a Stop
            board.finished(session, "failed", [])
            return
        pending = [(live, hints) for live, hints in self.lives if not live.finished]
        if not pending and not self.lives:
            board.finished(session, "stopped before the first step", [], stopped=True)
        elif pending:
            hints = {id(live): h for live, h in pending}
            finish_in_background([live for live, _ in pending],
                                 lambda live: self.handlers._save(live, hints[id(live)]),
                                 lambda message, paths: board.finished(session, message, paths, stopped=True))


def _paths(files) -> list[str]:
    """A File component's value (None, a path, or a list of paths/file objects) -> paths."""
    if not files:
        return []
    files = files if isinstance(files, (list, tuple)) else [files]
    return [getattr(f, "name", None) or str(f) for f in files]


def _device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def family_prompts(template: str, fillers: str) -> list[str]:
    """'mountains with {}' and 'forest / stones' -> ['mountains with forest', 'mountains with stones']."""
    template = forms.check_text(template, "template")
    if template.count("{}") != 1:
        raise UserError("the template needs exactly one slot {} where each filler goes, e.g. 'mountains with {}'")
    parts = [p.strip() for chunk in (fillers or "").splitlines() for p in chunk.split("/")]
    parts = [p for p in parts if p]
    if not parts:
        raise UserError("give at least one filler (one per line, or separated by /)")
    if len(parts) > forms.MAX_LINES:
        raise UserError(f"{len(parts)} fillers: at most {forms.MAX_LINES} in one run")
    return [forms.check_text(template.replace("{}", p), f"prompt '{p}'") for p in parts]


def cross_scores(images: torch.Tensor, chinese: str, english: str, device: str) -> pd.DataFrame:
    """(2, 3, H, W) BriVL's and CLIP's images -> the 2x2 table of each model scoring each image."""
    brivl = score(images, [chinese], "brivl", _device(device))  # (2, 1)
    clip = score(images, [english], "clip", _device(device))
    return pd.DataFrame({
        "image": ["BriVL's image", "CLIP's image"],
        f"BriVL · {chinese}": [round(row[0], 4) for row in brivl],
        f"CLIP · {english}": [round(row[0], 4) for row in clip],
    })


def models_markdown(rows: list[dict]) -> str:
    """registry.status() -> a Markdown report: what is ready, what is missing and where it goes."""
    lines = ["| model | status | what it is · what to put where |", "|---|---|---|"]
    for row in rows:
        tags = " · ".join([row["kind"]] + (["demo"] if row["demo"] else []))
        if row["ready"]:
            state, detail = "● ready", f"{row['description']}<br>`{row['folder']}`"
        else:
            missing = "; ".join(m.replace(row["folder"] + "/", "") for m in row["missing"])
            state = "○ missing"
            detail = f"{row['description']}<br>put {missing} into `{row['folder']}` — from {row['source']}"
        lines.append(f"| **{row['name']}**<br>{tags} | {state} | {detail} |")
    used = []
    for family in ("brivl", "clip", "vqgan"):
        try:
            used.append(f"**{family}** → `{registry.resolve(family).name}`")
        except UserError:
            used.append(f"**{family}** → none available")
    return ("Each family uses its best model whose files are present: " + ", ".join(used) + ".\n\n"
            + "\n".join(lines)
            + "\n\nDrop real weights into the folder shown and press *Refresh*; the next run uses them.")
