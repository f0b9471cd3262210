"""The driver: skip what the manifest already holds, hand the rest to an engine, write what comes back.

The output folder holds every image (its settings in the PNG chunk), `manifest.jsonl` with one line
per finished item (written after its files, flushed and fsync'd, so a killed driver loses at most the
item in flight and never records an item whose files are missing) and `index.html`. Re-running the
same job skips every item whose key the manifest lists as done: an interrupted job resumes.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from imagination.batch.index import write_index
from imagination.batch.jobs import Item
from imagination.errors import UserError
from imagination.io import write_atomically

MANIFEST = "manifest.jsonl"


def read_manifest(out: Path) -> list[dict]:
    path = Path(out) / MANIFEST
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a killed driver: that item is simply redone
            continue
    return records


def done_keys(out: Path) -> set[str]:
    return {r["key"] for r in read_manifest(out) if r.get("status") == "done"
            and all((Path(out) / f).is_file() for f in r.get("files", []))}


def run_job(items: list[Item], out: str | Path, engine=None, progress=None) -> list[dict]:
    """Render every item not already done into `out`; -> the manifest records of this run (skipped items
    included, with status "skipped"). `progress(item, record)` is called as each item finishes."""
    from imagination.batch.engines import InProcess

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        manifest = open(out / MANIFEST, "a", encoding="utf-8")
    except OSError as error:
        raise UserError(f"cannot write to the output folder {out}: {error.strerror}") from None
    engine = engine or InProcess()
    finished = done_keys(out)
    records = [dict(item.describe(), status="skipped") for item in items if item.key in finished]
    todo = [item for item in items if item.key not in finished]
    with manifest:
        for item, outcome in engine.run(todo):
            record = _write(out, item, outcome)
            manifest.write(json.dumps(record, ensure_ascii=False) + "\n")
            manifest.flush()
            os.fsync(manifest.fileno())
            records.append(record)
            if progress is not None:
                progress(item, record)
    write_index(out, items, read_manifest(out))
    return records


def _write(out: Path, item: Item, outcome: dict) -> dict:
    record = dict(item.describe(), status=outcome["status"], worker=outcome.get("worker"),
                  seconds=outcome.get("seconds"), attempts=outcome.get("attempts", 1),
                  finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
    if outcome["status"] != "done":
        return dict(record, files=[], error=outcome.get("error", "failed"))
    for name, data in outcome["files"].items():
        write_atomically(out / name, data)
    return dict(record, files=list(outcome["files"]), similarity=outcome["similarity"],
                steps_done=outcome.get("steps"))
