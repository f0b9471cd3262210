"""`index.html`: a static contact-sheet gallery of a job's output folder that opens with no server.

Items appear in job-file order, each image with its prompt (or poem line, in order), model, seed and
final similarity; failed items show their one-line reason, items not yet run are listed as pending.
"""

from __future__ import annotations

import html
from pathlib import Path

STYLE = """
body { font-family: system-ui, "Noto Sans CJK SC", sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } .summary { color: #555; margin-bottom: 1em; }
.item { margin: 1.2em 0; } .item h2 { font-size: 1em; margin: 0 0 .4em; font-weight: 600; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
figure { margin: 0; width: 200px; } figure img { width: 200px; height: 200px; object-fit: contain; background: #eee; }
figcaption { font-size: .8em; color: #444; overflow-wrap: anywhere; }
.failed { color: #a00; } .pending { color: #777; } .files a { font-size: .85em; margin-right: .8em; }
"""


def write_index(out: Path, items, records: list[dict]) -> Path:
    latest = {record["key"]: record for record in records}  # the last word on each item
    done = sum(1 for item in items if latest.get(item.key, {}).get("status") == "done")
    failed = sum(1 for item in items if latest.get(item.key, {}).get("status") == "failed")
    parts = [f"<!doctype html><meta charset='utf-8'><title>imagination batch</title><style>{STYLE}</style>",
             "<h1>Imagination batch</h1>",
             f"<p class='summary'>{done} of {len(items)} items done · {failed} failed · "
             f"{len(items) - done - failed} pending</p>"]
    for item in items:
        parts.append(_item(item, latest.get(item.key)))
    path = Path(out) / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _item(item, record: dict | None) -> str:
    s = item.settings
    title = html.escape(item.name or " / ".join(item.settings.prompts))
    head = (f"<h2>{title} <small>· {html.escape(item.kind)} · {html.escape(', '.join(s.models))} · "
            f"{s.canvas} · seed {s.seed}</small></h2>")
    if record is None or record.get("status") not in ("done", "failed"):
        return f"<div class='item pending'>{head}pending</div>"
    if record["status"] == "failed":
        return f"<div class='item failed'>{head}failed: {html.escape(record.get('error', ''))}</div>"
    images = [f for f in record["files"] if f.endswith(".png") and not f.endswith("-sheet.png")]
    scores = record.get("similarity") or {}
    figures = []
    for index, (name, caption) in enumerate(zip(images, item.captions)):
        score = " · ".join(f"{html.escape(model)} {values[index]:.3f}" for model, values in scores.items()
                           if index < len(values))
        figures.append(f"<figure><a href='{html.escape(name)}'><img src='{html.escape(name)}' loading='lazy' "
                       f"alt='{html.escape(caption)}'></a><figcaption>{html.escape(caption)}<br>{score}"
                       f"</figcaption></figure>")
    extras = [f for f in record["files"] if f not in images]
    label = {".gif": "GIF", ".mp4": "film", ".png": "contact sheet"}
    links = "".join(f"<a href='{html.escape(f)}'>{label[Path(f).suffix]}</a>" for f in extras)
    return f"<div class='item'>{head}<div class='grid'>{''.join(figures)}</div><div class='files'>{links}</div></div>"
