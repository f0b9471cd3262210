"""A `Run` as the studio watches it: progress lines, the similarity history, and a clean stop.

Gradio stops a streaming handler by closing its generator at a `yield` (`GeneratorExit`). The run
is then paused between two steps; `finish_in_background` asks it to stop, lets it render its
final image once and saves that image (metadata `stopped: true`) on a worker thread, so the server's
event loop, which performs the close, is never blocked by model work.
"""

from __future__ import annotations

import threading
import time

import pandas as pd

from imagination.errors import UserError
from imagination.loop import Progress
from imagination.pipeline import Run

PLOT_COLUMNS = ["step", "similarity", "target"]
ACTIVATION_COLUMNS = ["step", "activation", "channel"]  # a neuron's mean activation is not a similarity


def short_name(model: str) -> str:
    return "BriVL" if "brivl" in model else "CLIP" if "clip" in model else model


def _thinned(rows: list[tuple], max_steps: int) -> list[tuple]:
    """Every k-th step (and the last), k chosen so at most about `max_steps` steps remain."""
    last = rows[-1][0] if rows else 0
    stride = max(1, -(-last // max_steps))
    return rows if stride == 1 else [row for row in rows if row[0] % stride == 0 or row[0] == last]


class Live:
    """Iterate a Run while recording what the UI shows about it."""

    def __init__(self, run: Run, name: str = ""):
        self.run, self.name = run, name
        self.labels = {t.encoder.name: t.labels for t in run.objective.targets}
        self.history: list[tuple[int, float, str]] = []  # (step, similarity, target) of image 0
        self.activations: list[tuple[int, float, str]] = []  # (step, mean activation, channel) of image 0
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.event: Progress | None = None
        self._events = iter(run)
        self._plotted = 0.0  # when the plot was last sent

    def __iter__(self):
        return self

    @property
    def finished(self) -> bool:
        return self.event is not None and self.event.done

    def __next__(self) -> Progress:
        self.event = event = next(self._events)
        self._record(event)
        return event

    def _record(self, event: Progress) -> None:
        if event.done:  # repeats the last step's numbers
            return
        for key, values in event.similarity.items():
            model, _, neuron = key.partition("/")
            if neuron:  # 'layer:channel'
                layer, _, channel = neuron.rpartition(":")
                series = f"{short_name(model)} · channel {channel} of {'.'.join(layer.split('.')[-3:])}"
                self.activations.append((event.step, values[0, 0].item(), series))
                continue
            for label, value in zip(self.labels.get(key, []), values[0].tolist()):  # image 0 of the batch
                series = f"{short_name(model)} · {label}"
                self.history.append((event.step, value, series))
                self.first.setdefault(series, value)
                self.last[series] = value

    def headline(self) -> dict[str, float]:
        """The main target of each model (its first label) -> latest similarity."""
        main = {}
        for series, value in self.last.items():
            model = series.split(" · ")[0]
            main.setdefault(model, value)
        return main

    def plot(self, max_steps: int = 300) -> pd.DataFrame:
        """The similarity history, thinned to at most about `max_steps` steps so the browser keeps up."""
        self._plotted = time.monotonic()
        return pd.DataFrame(_thinned(self.history, max_steps), columns=PLOT_COLUMNS)

    def activation_plot(self, max_steps: int = 300) -> pd.DataFrame:
        """A neuron run's channel activation history, thinned like `plot`."""
        return pd.DataFrame(_thinned(self.activations, max_steps), columns=ACTIVATION_COLUMNS)

    def plot_due(self, every: float = 1.0) -> bool:
        """Redraw the plot at most once per `every` seconds (it is the costliest thing to send)."""
        enough = self.event is not None and self.event.step >= 2  # a single point draws an empty chart
        return enough and time.monotonic() - self._plotted >= every

    def status(self) -> str:
        event = self.event
        if event is None:
            return "starting…"
        scores = " · ".join(f"{m} {v:.3f}" for m, v in self.headline().items())
        scores = f" · similarity {scores}" if scores else ""
        activation = f" · activation {self.activations[-1][1]:.3f}" if self.activations else ""
        prefix = f"{self.name}: " if self.name else ""
        return f"{prefix}step {event.step}/{event.steps} · {event.it_per_s:.1f} it/s{activation}{scores}"

    def summary(self) -> str:
        """One line for a finished run: steps, time, and how each main similarity moved."""
        event = self.event
        moved = []
        for series, value in self.last.items():
            model = series.split(" · ")[0]
            if not any(m.startswith(model) for m in moved):
                moved.append(f"{model} {self.first[series]:.3f} → {value:.3f}")
        moved = f" · similarity {', '.join(moved)}" if moved else ""
        if self.activations:
            moved = f" · activation {self.activations[0][1]:.3f} → {self.activations[-1][1]:.3f}{moved}"
        word = (f"stopped at step {event.step}/{event.steps}: the loss became NaN or infinite (lower the weights "
                f"or the lr)" if event.diverged else
                f"stopped at step {event.step}/{event.steps}" if event.stopped else
                f"done · plateaued after {event.step} of {event.steps} steps" if event.plateaued else
                f"done · {event.step} steps")
        prefix = f"{self.name}: " if self.name else ""
        return f"{prefix}{word} in {event.elapsed:.1f} s ({event.it_per_s:.1f} it/s){moved}"

    def finish(self) -> Progress:
        """Stop after the current step and run to the final event (the images so far)."""
        self.run.stop()
        for _ in self:
            pass
        return self.event


class StopBoard:
    """Per browser session: how its latest run ended, so the Stop button can show what was kept."""

    def __init__(self):
        self._lock = threading.Lock()
        self._runs: dict[str, dict] = {}

    def started(self, session: str) -> None:
        with self._lock:
            self._runs[session] = {"finished": False, "stopped": False, "message": "", "images": []}

    def finished(self, session: str, message: str, images: list, stopped: bool = False) -> None:
        with self._lock:
            self._runs[session] = {"finished": True, "stopped": stopped, "message": message, "images": images}

    def take_stopped(self, session: str, timeout: float = 15.0) -> dict | None:
        """The outcome of this session's stopped run, once saved (and only once); None if none was stopped."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                record = self._runs.get(session)
                if record is None or (record["finished"] and not record["stopped"]):
                    return None
                if record["finished"]:
                    record["stopped"] = False  # shown once
                    return dict(record)
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)


def finish_in_background(lives: list[Live], save, on_done) -> threading.Thread:
    """Stop each run, render and save what it has (`save(live) -> [paths]`), then `on_done(message, paths)`."""

    def work():
        paths, lines = [], []
        try:
            for live in lives:
                if live.finished:
                    continue  # already finished and saved
                live.finish()
                paths += save(live)
                lines.append(live.summary())
            message = " | ".join(lines) if lines else "stopped"
            on_done(f"{message} · saved {', '.join(p.name for p in paths)}" if paths else message, paths)
        except (UserError, OSError, RuntimeError) as error:  # never lose the stop itself
            on_done(f"stopped (could not save: {error})", paths)

    thread = threading.Thread(target=work, name="studio-stop", daemon=True)
    thread.start()
    return thread
