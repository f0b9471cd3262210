"""Batch jobs on tiny models: in-process and on a local Ray, resuming, retrying, refusing bad job files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from imagination.batch import read_job, read_manifest, run_job
from imagination.batch.engines import InProcess
from imagination.cli import main
from imagination.errors import UserError
from imagination.io import read_metadata

pytestmark = pytest.mark.usefixtures("tiny_checkpoints")
REPO = Path(__file__).resolve().parents[1]

JOB = """\
{"defaults": {"canvas": "pixels", "size": 32, "steps": 3, "cutn": 2}}
{"prompt": "snowy mountains", "seeds": [1, 2]}
{"name": "moon", "poem": ["床前明月光", "疑是地上霜"]}
{"family": {"template": "a boat on {}", "fillers": ["a lake", "the sea"]}, "model": "clip"}
{"prompt": "a quiet lake", "repeat": 2, "seed": 5}
"""


@pytest.fixture
def job(tmp_path) -> Path:
    path = tmp_path / "job.jsonl"
    path.write_text(JOB, encoding="utf-8")
    return path


def pngs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


def pixels(folder: Path) -> dict[str, bytes]:
    """The decoded pixels of each PNG (the metadata differs: creation time, seconds, worker)."""
    from PIL import Image

    return {name: Image.open(folder / name).tobytes() for name in pngs(folder)}


def test_a_job_expands_and_writes_images_manifest_and_index(job, tmp_path):
    items = read_job(job)
    assert [(i.kind, i.settings.seed, i.line) for i in items] == [
        ("image", 1, 2), ("image", 2, 2), ("poem", 0, 3), ("family", 0, 4), ("image", 5, 5), ("image", 6, 5)]
    assert items[2].settings.prompts == ["床前明月光", "疑是地上霜"] and items[2].settings.share_init
    assert items[3].settings.prompts == ["a boat on a lake", "a boat on the sea"]
    out = tmp_path / "out"
    records = run_job(items, out, InProcess(threads=1))
    assert [r["status"] for r in records] == ["done"] * 6
    assert len(pngs(out)) == 1 + 1 + 3 + 2 + 1 + 1  # the poem: 2 lines + its contact sheet
    assert (out / items[2].files[-2]).read_bytes()[:6] == b"GIF89a"
    from imagination import media

    poem_files = read_manifest(out)[2]["files"]
    assert (f"{items[2].stem}.mp4" in poem_files) == media.ffmpeg_works()  # the film, as the studio makes it
    meta = read_metadata(out / items[0].files[0])
    assert meta["prompt"] == "snowy mountains" and meta["seed"] == 1 and meta["batch_item"] == items[0].key
    assert [json.loads(line)["key"] for line in (out / "manifest.jsonl").read_text().splitlines()] == \
        [i.key for i in items]
    family = read_manifest(out)[3]["similarity"]["clip-demo"]  # each image scored against its own prompt
    assert family == [round(read_metadata(out / name)["similarity"]["clip-demo"][text], 4)
                      for name, text in zip(items[3].files, items[3].settings.prompts)]
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "6 of 6 items done" in index and index.index("床前明月光") < index.index("疑是地上霜")
    assert all(f in index for i in items for f in i.files if f.endswith(".png") and "-sheet" not in f)


def test_an_interrupted_job_resumes_with_only_the_rest(job, tmp_path):
    items, out = read_job(job), tmp_path / "out"

    def interrupt_after_two(item, record):
        if len(read_manifest(out)) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_job(items, out, InProcess(threads=1), progress=interrupt_after_two)
    first = pngs(out)
    records = run_job(items, out, InProcess(threads=1))
    assert [r["status"] for r in records] == ["skipped"] * 2 + ["done"] * 4
    assert [r["key"] for r in read_manifest(out)] == [i.key for i in items]  # each item exactly once
    assert all(pngs(out)[name] == data for name, data in first.items())  # the first two untouched


def test_a_failing_item_is_recorded_and_the_others_go_on(job, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not an image")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(JOB + json.dumps({"prompt": "sea", "init_image": str(tmp_path / "notes.txt")}) + "\n")
    out = tmp_path / "out"
    assert main(["batch", str(bad), "--out", str(out), "--threads", "1", "--quiet"]) == 1
    records = read_manifest(out)
    assert [r["status"] for r in records] == ["done"] * 6 + ["failed"]
    assert "not a readable image" in records[-1]["error"] or "not an image" in records[-1]["error"]
    err = capsys.readouterr().err
    assert "failed: line 6:" in err and "Traceback" not in err


@pytest.mark.parametrize("line, message", [
    ('{"prompt": "sea", "steps": "abc"}', "job.jsonl line 3: steps must be a whole number"),
    ('{"prompt": "sea", "colour": 1}', "job.jsonl line 3: unknown setting 'colour'"),
    ('{"prompt": "sea", "model": "gpt"}', "job.jsonl line 3: unknown model 'gpt'"),
    ('{"prompt": "sea:abc"}', "job.jsonl line 3: weight 'abc' in 'sea:abc' is not a number"),
    ('{"family": {"template": "no slot", "fillers": ["a"]}}', "job.jsonl line 3: a family template needs exactly one {}"),
    ('{"prompt": "sea", "seeds": [1], "repeat": 2}', "job.jsonl line 3: give seeds or repeat, not both"),
    ('{"prompt": "sea"', "job.jsonl line 3: not JSON"),
    ('{"poem": []}', "job.jsonl line 3: poem lines are empty"),
    ("\udcff", "is not UTF-8 text"),
])
def test_a_malformed_job_is_refused_before_any_work(tmp_path, capsys, line, message):
    job = tmp_path / "job.jsonl"
    job.write_text('{"defaults": {"size": 32, "steps": 1}}\n{"prompt": "a lake"}\n' + line + "\n",
                   errors="surrogateescape")  # the last case writes a byte that is not UTF-8
    out = tmp_path / "out"
    assert main(["batch", str(job), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()  # nothing ran, not even the good first item


def test_an_output_folder_that_cannot_be_written_is_one_line(job, tmp_path, capsys):
    (tmp_path / "taken").write_text("a file, not a folder")
    assert main(["batch", str(job), "--out", str(tmp_path / "taken"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot write to the output folder") and len(err.splitlines()) == 1


def test_yaml_jobs_name_their_lines_and_prompt_lists_take_flags(tmp_path, capsys):
    job = tmp_path / "job.yaml"
    job.write_text("defaults:\n  size: 32\nitems:\n  - prompt: sea\n  - prompt: sky\n    steps: 0\n")
    with pytest.raises(UserError, match=r"job.yaml line 5: steps must be a whole number"):
        read_job(job)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a lake\n\n# a comment\nsnowy mountains\n")
    out = tmp_path / "out"
    assert main(["batch", "--prompts", str(prompts), "--out", str(out), "--steps", "2", "--size", "32",
                 "--canvas", "plain", "--dry-run"]) == 0
    assert capsys.readouterr().out.count("to do") == 2 and not out.exists()
    assert main(["batch", "--prompts", str(prompts), "--out", str(out), "--steps", "2", "--size", "32",
                 "--canvas", "plain", "--quiet"]) == 0
    assert sorted(read_metadata(p)["prompt"] for p in out.glob("*.png")) == ["a lake", "snowy mountains"]
    assert all(read_metadata(p)["steps"] == 2 for p in out.glob("*.png"))


def test_the_in_process_path_never_imports_ray(job, tmp_path, tiny_checkpoints):
    code = ("import sys; from imagination.cli import main; "
            f"code = main(['batch', {str(job)!r}, '--out', {str(tmp_path / 'o')!r}, '--quiet']); "
            "sys.exit(3 if 'ray' in sys.modules else code)")
    env = {**os.environ, "IMAGINATION_CHECKPOINTS": str(tiny_checkpoints)}
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True).returncode == 0


# --- Ray ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_ray(tiny_checkpoints):
    """One local Ray for the module (started by the first RayEngine, with the tiny checkpoints' path)."""
    ray = pytest.importorskip("ray")
    yield
    ray.shutdown()


@pytest.mark.usefixtures("local_ray")
def test_ray_with_two_workers_gives_the_same_bytes_as_in_process(job, tmp_path):
    from imagination.batch.engines import RayEngine

    items = read_job(job)
    run_job(items, tmp_path / "local", InProcess(threads=1))
    engine = RayEngine(workers=2, threads=1)
    try:
        records = run_job(items, tmp_path / "ray", engine)
    finally:
        engine.close()
    assert len({r["worker"] for r in records}) == 2  # both workers took items
    local, remote = pixels(tmp_path / "local"), pixels(tmp_path / "ray")
    assert local.keys() == remote.keys() and all(local[k] == remote[k] for k in local)  # byte for byte


@pytest.mark.usefixtures("local_ray")
def test_a_killed_worker_has_its_item_retried_and_every_item_lands_once(job, tmp_path):
    from imagination.batch.engines import RayEngine

    items = read_job(job)
    engine = RayEngine(workers=2, threads=1, retries=2)
    victim = engine.pids()[0]

    def kill_once(item, record):
        nonlocal victim
        if victim:
            os.kill(victim, signal.SIGKILL)  # mid-job: the other worker is still busy or about to be
            victim = None

    try:
        run_job(items, tmp_path / "out", engine, progress=kill_once)
    finally:
        engine.close()
    records = read_manifest(tmp_path / "out")
    assert sorted(r["key"] for r in records) == sorted(i.key for i in items)  # each exactly once
    assert all(r["status"] == "done" for r in records)
    assert max(r["attempts"] for r in records) == 2  # the killed worker's item ran again elsewhere
    assert len(pngs(tmp_path / "out")) == 9


def test_the_readme_job_example_is_a_valid_job(tmp_path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Batch jobs"):]
    example = section[section.index("```yaml") + len("```yaml"):section.index("```", section.index("```yaml") + 7)]
    (tmp_path / "job.yaml").write_text(example, encoding="utf-8")
    items = read_job(tmp_path / "job.yaml")
    assert [i.kind for i in items] == ["image"] * 6 + ["poem", "family"]
    assert [i.settings.seed for i in items[:6]] == [1, 2, 3, 0, 1, 2]
    assert items[-1].settings.canvas == "pixels" and len(items[-1].settings.prompts) == 4


def test_model_takes_one_name_or_a_list():
    from imagination.batch.jobs import expand

    assert expand({"prompt": "sea", "model": "clip"})[0].settings.models == ["clip"]
    assert expand({"prompt": "sea", "model": ["clip", "brivl"]})[0].settings.models == ["clip", "brivl"]
    with pytest.raises(UserError, match="give model or models, not both"):
        expand({"prompt": "sea", "model": "clip", "models": ["brivl"]})
