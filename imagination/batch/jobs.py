"""A job file -> the list of items to render, every one checked before anything runs.

A job is JSON Lines (an optional first line `{"defaults": {...}}`, then one item per line) or YAML
(`defaults:` and `items:`), or a plain text file of prompts (one per line). An item is what
`ImagineSettings` takes (`prompt` or `prompts`, `model` or `models`, canvas, steps, size, seed, cutn,
lr, negative, ...) plus an optional `name`, or:
  - `poem: [line, ...]` (or one string with a line per row): the lines as one batched sequence in one
    style, written with its GIF, contact sheet and MP4;
  - `family: {template: "mountains with {}", fillers: [forest, stones]}`: one batched run;
  - `seeds: [1, 2, 3]` or `repeat: N` (seeds seed, seed+1, ...): one item per seed.
Every item gets a key, a hash of its resolved settings, so a re-run knows what is already done.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from imagination.errors import UserError
from imagination.io import slug
from imagination.models import registry
from imagination.pipeline import ImagineSettings

SETTINGS_FIELDS = set(ImagineSettings.__dataclass_fields__) - {"neuron", "device"}
ITEM_FIELDS = {"name", "prompt", "model", "poem", "family", "seeds", "repeat"}
MAX_REPEAT = 10_000


@dataclass
class Item:
    """One unit of work: a batched run whose images are written under `stem`."""

    key: str
    name: str
    kind: str  # "image" | "poem" | "family"
    settings: ImagineSettings
    captions: list[str]  # one per image: the prompt, the poem line or the filler
    line: int  # where the item was written in the job file
    stem: str = ""  # output file names start with this
    files: list[str] = field(default_factory=list)  # what the item writes, relative to the output folder

    def describe(self) -> dict:
        return {"key": self.key, "name": self.name, "kind": self.kind, "line": self.line, "files": self.files}


def read_job(path: str | Path, overrides: dict | None = None) -> list[Item]:
    """All items of a job file, expanded and validated; a UserError naming the line otherwise."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"job file {path} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"job file {path} is not UTF-8 text") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        defaults, raw = _read_yaml(text, path)
    elif path.suffix.lower() == ".txt":
        defaults, raw = {}, [({"prompt": line.strip()}, n) for n, line in enumerate(text.splitlines(), 1)
                             if line.strip() and not line.lstrip().startswith("#")]
    else:
        defaults, raw = _read_jsonl(text, path)
    defaults = {**defaults, **(overrides or {})}
    if not raw:
        raise UserError(f"{path} holds no items")
    items = []
    for fields, line in raw:
        try:
            items += expand({**defaults, **fields}, line)
        except UserError as error:
            raise UserError(f"{path.name} line {line}: {error}") from None
    _name_outputs(items)
    return items


def _read_jsonl(text: str, path: Path) -> tuple[dict, list[tuple[dict, int]]]:
    defaults, raw = {}, []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{path.name} line {number}: not JSON ({error.msg})") from None
        if not isinstance(value, dict):
            raise UserError(f"{path.name} line {number}: an item must be a JSON object")
        if set(value) == {"defaults"}:
            if raw:
                raise UserError(f"{path.name} line {number}: defaults must come before the items")
            defaults = _mapping(value["defaults"], f"{path.name} line {number}: defaults")
        else:
            raw.append((value, number))
    return defaults, raw


def _read_yaml(text: str, path: Path) -> tuple[dict, list[tuple[dict, int]]]:
    import yaml

    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise UserError(f"{path.name} line {mark.line + 1 if mark else '?'}: not YAML") from None
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise UserError(f"{path.name}: expected 'items:' (a list) and optionally 'defaults:'")
    unknown = set(data) - {"defaults", "items"}
    if unknown:
        raise UserError(f"{path.name}: unknown top-level key {sorted(unknown)[0]!r} (use defaults and items)")
    nodes = next(v for k, v in root.value if k.value == "items").value
    raw = []
    for node, value in zip(nodes, data["items"]):
        line = node.start_mark.line + 1
        raw.append((_mapping(value, f"{path.name} line {line}: an item"), line))
    return _mapping(data.get("defaults") or {}, f"{path.name}: defaults"), raw


def _mapping(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise UserError(f"{what} must be a mapping of settings")
    return dict(value)


def expand(fields: dict, line: int = 0) -> list[Item]:
    """One job-file item (defaults merged in) -> one Item per seed, validated."""
    unknown = set(fields) - SETTINGS_FIELDS - ITEM_FIELDS
    if unknown:
        raise UserError(f"unknown setting {sorted(unknown)[0]!r}")
    fields = dict(fields)
    name = str(fields.pop("name", "") or "")
    seeds = _seeds(fields.pop("seeds", None), fields.pop("repeat", None), fields.get("seed", 0))
    kind, prompts, captions = _prompts(fields)
    if "model" in fields:
        if "models" in fields:
            raise UserError("give model or models, not both")
        model = fields.pop("model")
        fields["models"] = model if isinstance(model, list) else [model]
    if isinstance(fields.get("models"), str):
        fields["models"] = [fields["models"]]
    items = []
    for seed in seeds:
        try:
            settings = ImagineSettings(**{**fields, "prompts": prompts, "seed": seed}).validated()
        except TypeError as error:  # a list where a number goes, ...
            raise UserError(f"a setting has the wrong type ({error})") from None
        for model in settings.models + ([settings.vqgan] if settings.canvas == "vqgan" else []):
            registry.resolve(model)  # every model's files present, before anything runs
        items.append(Item(key=item_key(kind, settings), name=name, kind=kind, settings=settings, captions=captions,
                          line=line))
    return items


def _seeds(seeds, repeat, seed) -> list[int]:
    if seeds is not None and repeat is not None:
        raise UserError("give seeds or repeat, not both")
    if seeds is not None:
        if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                                for s in seeds):
            raise UserError(f"seeds must be a list of whole numbers, got {seeds!r:.60}")
        return list(dict.fromkeys(seeds))
    if repeat is not None:
        if not isinstance(repeat, int) or isinstance(repeat, bool) or not 1 <= repeat <= MAX_REPEAT:
            raise UserError(f"repeat must be a whole number from 1 to {MAX_REPEAT}, got {repeat!r:.60}")
        if not isinstance(seed, int):
            raise UserError(f"seed must be a whole number, got {seed!r:.60}")
        return [seed + i for i in range(repeat)]
    return [seed]


def _prompts(fields: dict) -> tuple[str, list[str], list[str]]:
    """-> (kind, prompts, captions), taking prompt/prompts/poem/family out of `fields`."""
    given = [k for k in ("prompt", "prompts", "poem", "family") if k in fields]
    if len(given) != 1:
        raise UserError("each item needs exactly one of prompt, prompts, poem or family"
                        + (f" (it has {', '.join(given)})" if given else ""))
    value = fields.pop(given[0])
    if given[0] == "family":
        if not isinstance(value, dict) or set(value) != {"template", "fillers"}:
            raise UserError("family must be {template: 'text with {}', fillers: [...]}")
        template, fillers = value["template"], value["fillers"]
        if not isinstance(template, str) or template.count("{}") != 1:
            raise UserError("a family template needs exactly one {} slot")
        fillers = _texts(fillers, "fillers")
        return "family", [template.replace("{}", f) for f in fillers], fillers
    if given[0] == "poem":
        lines = _texts(value.splitlines() if isinstance(value, str) else value, "poem lines")
        return "poem", lines, lines
    texts = _texts([value] if given[0] == "prompt" else value, given[0])
    return "image", texts, texts


def _texts(value, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise UserError(f"{what} must be text or a list of texts")
    texts = [t.strip() for t in value if t.strip()]
    if not texts:
        raise UserError(f"{what} are empty")
    return texts


def item_key(kind: str, settings: ImagineSettings) -> str:
    """A hash of everything that decides the images (not where or on what device they are made)."""
    resolved = {k: v for k, v in asdict(settings).items() if k not in ("device", "preview_every")}
    resolved["models"] = [registry.resolve(m).name for m in settings.models]
    resolved["vqgan"] = registry.resolve(settings.vqgan).name if settings.canvas == "vqgan" else None
    blob = json.dumps({"kind": kind, **resolved}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _name_outputs(items: list[Item]) -> None:
    """Readable names that stay the same when the job file is edited: snow-mountains-s3-1f0c2a9e
    (+ -1, -2 ... per image of a batched item, .gif and -sheet.png for a poem)."""
    for item in items:
        item.stem = f"{slug(item.name or item.settings.prompts[0]) or item.kind}-s{item.settings.seed}-{item.key[:8]}"
        count = len(item.captions)
        item.files = [f"{item.stem}.png"] if count == 1 else [f"{item.stem}-{i}.png" for i in range(1, count + 1)]
        if item.kind == "poem":
            item.files += [f"{item.stem}.gif", f"{item.stem}-sheet.png"]


def unique(items: list[Item]) -> tuple[list[Item], int]:
    """Items with a key seen before dropped (the same work written twice): -> (items, how many dropped)."""
    seen, kept = set(), []
    for item in items:
        if item.key not in seen:
            seen.add(item.key)
            kept.append(item)
    return kept, len(items) - len(kept)
