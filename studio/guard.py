"""Malformed API input refused in one line, before Gradio preprocesses it.

Gradio checks what a component receives (a slider's range, a radio's choices), but a wrong *type*
sent through gradio_client or raw HTTP (`steps='abc'`, `init_image='/etc/passwd'`, a server path
dressed as an upload) fails inside its preprocessing as a TypeError or a pydantic error: the caller
gets "the upstream Gradio app has raised an exception" (raw HTTP: `{"error": null}`) and the log a
stack. `GuardedBlocks` checks each payload against its component first, with the messages the forms
use, and turns whatever Gradio still refuses into a one-line `gr.Error`. Every refusal, here or in a
handler, is logged as one line (`log_refusal`), so an operator's log has no stack for a user's mistake.
"""

from __future__ import annotations

import html
import inspect
import logging

import gradio as gr

from imagination.errors import UserError
from studio import forms

log = logging.getLogger("studio")


def log_refusal(what: str, message: str) -> None:
    log.warning("refused %s: %s", what, message)


def refuse(what: str, message: str) -> gr.Error:
    """The error a caller sees (one line, shown as text, no traceback printed), logged once."""
    message = " ".join(str(message).split()) or "the request was refused"
    log_refusal(what, message)
    return gr.Error(html.escape(message, quote=False), print_exception=False)


def parameter_names(fn) -> list[str]:
    """The handler's parameter names in input order (the request and `self` are not inputs)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters if p.name != "request"
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _check_file(label: str, value) -> None:
    if not (isinstance(value, dict) and isinstance(value.get("path"), str)):
        raise UserError(f"{label} must be an uploaded file (gradio_client: handle_file(path)), got {value!r:.60}")


def check_payload(name: str, block, value):
    """One input's raw value against its component; a UserError naming the field if it cannot be one."""
    label = name.replace("_", " ")
    if isinstance(block, (gr.Slider, gr.Number)):
        if name in forms.PRIOR_LIMITS:
            low, high, integer = forms.PRIOR_LIMITS[name]
        elif name in forms.LIMITS:
            low, high, _ = forms.LIMITS[name]
            integer = isinstance(low, int)
        else:
            low, high, integer = block.minimum, block.maximum, getattr(block, "precision", None) == 0
        if isinstance(block, gr.Slider):  # a slider's range may be narrower (the channels of the chosen layer)
            low, high = max(low, block.minimum), min(high, block.maximum)
        if value is None and isinstance(block, gr.Number):
            return  # an empty number field: the forms say what that means for it
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise UserError(f"{label} must be a number from {low} to {high}, got {value!r:.60}")
        forms.check_range(label, value, low, high, integer=integer)
    elif isinstance(block, gr.Checkbox):
        forms.check_flag(label, value)
    elif isinstance(block, gr.CheckboxGroup):
        if not isinstance(value, list):
            raise UserError(f"{label} must be a list of {', '.join(v for _, v in block.choices)}, got {value!r:.60}")
        for item in value:
            forms.check_choice(label, item, block.choices)
    elif isinstance(block, gr.Radio):
        forms.check_choice(label, value, block.choices)
    elif isinstance(block, (gr.Textbox, gr.Dropdown)):
        if value is not None and not isinstance(value, str):
            raise UserError(f"{label} must be text, got {value!r:.60}")
    elif isinstance(block, gr.File) and value is not None:
        for item in value if block.file_count != "single" and isinstance(value, list) else [value]:
            _check_file(label, item)


class GuardedBlocks(gr.Blocks):
    """gr.Blocks whose listeners refuse malformed input in one line (see the module docstring)."""

    async def preprocess_data(self, block_fn, inputs, state, explicit_call: bool = False):
        what = f"/{block_fn.api_name}" if isinstance(block_fn.api_name, str) else block_fn.name
        if len(inputs) < len(block_fn.inputs):  # more are ignored, as Gradio does
            raise refuse(what, f"expected {len(block_fn.inputs)} inputs, got {len(inputs)}")
        names = parameter_names(block_fn.fn) if block_fn.fn else []
        for i, (block, value) in enumerate(zip(block_fn.inputs, inputs)):
            if getattr(block, "stateful", False) or i in block_fn.component_prop_inputs:
                continue
            name = names[i] if i < len(names) else str(getattr(block, "label", None) or f"input {i}")
            if state is not None and block._id in state:  # this session's version of the component
                block = state[block._id]
            try:
                check_payload(name, block, value)
            except UserError as error:
                raise refuse(what, str(error)) from None
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except gr.Error as error:
            raise refuse(what, error.message) from None
        except Exception as error:  # what Gradio's own checks still refuse (a file outside the uploads)
            raise refuse(what, f"invalid input: {str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
