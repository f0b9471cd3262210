"""The studio end to end: the app on a free local port, driven through gradio_client, on tiny models.

Every run is small (size 32, a few steps, 4 cutouts) so the whole file takes seconds of compute;
the models are the random tiny ones of the `tiny_checkpoints` fixture.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import imageio
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from imagination.errors import UserError
from imagination.io import load_image, read_metadata, save_png
from imagination.pipeline import score

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def studio(studio_server):
    """(client, outputs folder, url) of a running studio."""
    url, outputs = studio_server
    client = Client(url, verbose=False)
    yield client, outputs, url
    client.close()


def imagine_args(**overrides) -> dict:
    args = dict(prompt="snowy mountains at night", second_prompt="", negative="", model="clip", canvas="pixels",
                steps=10, size=32, seed=7, lock_seed=True, lr=0, cutn=4, cut_pow=1.0,
                augmentations=["flip"], tv_weight=0, init_image=None, image_prompts=[], preview_every=3)
    args.update(overrides)
    return args


def wait_for(condition, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_endpoints_are_named(studio):
    client, _, _ = studio
    named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/imagine", "/poem", "/compare", "/family", "/neuron"} <= set(named)
    assert not {"/after_stop", "/gallery", "/load_selected"} & set(named)  # helpers stay private
    params = [p["parameter_name"] for p in named["/imagine"]["parameters"]]
    assert params[:8] == ["prompt", "second_prompt", "negative", "model", "canvas", "steps", "size", "seed"]
    # What the README promises: every field may be left out but these three (a prior field placed
    # before the uploads once made tv_weight required too).
    required = {p["parameter_name"] for p in named["/imagine"]["parameters"] if not p["parameter_has_default"]}
    assert required == {"prompt", "init_image", "image_prompts"}


def test_imagine_streams_and_similarity_rises(studio):
    client, outputs, _ = studio
    job = client.submit(**imagine_args(), api_name="/imagine")
    updates = list(job)
    image, status, plot, seed, film = job.result()
    assert status.startswith("done · 10 steps") and seed == 7
    frames = imageio.v3.imread(film, index=None)  # the live frames as a film: steps 1, 3, 6, 9 and the end
    assert film.endswith(".mp4") and frames.shape[0] >= 5 and frames.shape[1] >= 64
    live = [u for u in updates if isinstance(u[0], str) and "step " in u[1] and not u[1].startswith("done")]
    assert live and int(live[0][1].split("step ")[1].split("/")[0]) < 10  # an image mid-run
    first = load_image(live[0][0])[None]
    final = load_image(image)[None]
    text = ["snowy mountains at night"]
    assert score(final, text, "clip")[0][0] > score(first, text, "clip")[0][0]
    rows = plot["data"]  # [step, similarity, target]
    assert rows[-1][0] == 10 and rows[-1][1] > rows[0][1]
    saved = sorted(outputs.glob("*snowy-mountains-at-night.png"))[-1]
    meta = read_metadata(saved)
    assert meta["prompt"] == "snowy mountains at night" and meta["seed"] == 7 and meta["steps"] == 10


def test_ensemble_and_start_image(studio, tmp_path):
    client, _, _ = studio
    start = tmp_path / "start.png"
    Image.new("RGB", (40, 40), (200, 30, 30)).save(start)
    image, status, plot, _, _ = client.predict(
        **imagine_args(prompt="雪山之夜", model="both", second_prompt="snowy mountains at night", steps=2,
                       init_image=handle_file(str(start))), api_name="/imagine")
    meta = read_metadata(image)
    assert sorted(meta["models"]) == ["brivl-demo", "clip-demo"]
    assert meta["model_prompts"] == {"clip": ["snowy mountains at night"]} and meta["init_image"]
    assert "BriVL" in status and "CLIP" in status
    assert {row[2].split(" · ")[0] for row in plot["data"]} == {"BriVL", "CLIP"}


def test_transforms_and_priors_reach_the_run_and_empty_means_the_canvas_default(studio):
    from imagination.pipeline import CANVAS_DEFAULTS

    client, _, _ = studio
    image = client.predict(**imagine_args(steps=2, pad=5, jitter=3, rotate=7.5, mean_weight=0.25, grey_weight=2,
                                          blur=1.5), api_name="/imagine")[0]
    meta = read_metadata(image)
    assert (meta["pad"], meta["jitter"], meta["rotate"], meta["mean_weight"], meta["grey_weight"], meta["blur"]) == \
        (5, 3, 7.5, 0.25, 2, 1.5)
    assert meta["scale_min"] == CANVAS_DEFAULTS["pixels"]["scale_min"]  # left empty: the canvas's default
    vqgan = read_metadata(client.predict(**imagine_args(steps=1, canvas="vqgan"), api_name="/imagine")[0])
    assert vqgan["pad"] == CANVAS_DEFAULTS["vqgan"]["pad"] and vqgan["jitter"] == CANVAS_DEFAULTS["vqgan"]["jitter"]


def test_stop_when_done_ends_a_flat_run_early(studio):
    client, _, _ = studio
    image, status, *_ = client.predict(**imagine_args(steps=300, lr=1e-9, until_plateau=True), api_name="/imagine")
    assert "plateaued after" in status and read_metadata(image)["plateaued"] is True
    assert read_metadata(image)["steps_done"] < 300


def test_unlocked_seed_is_drawn_and_shown(studio):
    client, _, _ = studio
    seeds = {client.predict(**imagine_args(steps=1, lock_seed=False), api_name="/imagine")[3] for _ in range(3)}
    assert len(seeds) > 1 and 7 not in seeds


def test_poem_one_image_per_line_with_downloads(studio):
    client, _, _ = studio
    lines = ["白日依山尽", "黄河入海流", "欲穷千里目"]
    gallery, status, files, seed = client.predict(
        text="\n".join(lines) + "\n\n", model="auto", canvas="pixels", steps=3, size=32, seed=5, lock_seed=True,
        chain=False, api_name="/poem")
    assert [item["caption"] for item in gallery] == lines
    assert status.startswith("done · 3 images")
    names = [Path(f).name for f in files]
    assert names[0].endswith(".gif") and names[1].endswith("-sheet.png")
    gif, sheet = Image.open(files[0]), Image.open(files[1])
    assert gif.n_frames == 3 and sheet.width > 3 * 32
    metas = [read_metadata(item["image"]) for item in gallery]
    assert [m["prompt"] for m in metas] == lines and {m["seed"] for m in metas} == {5}
    assert all(m["models"] == ["brivl-demo"] and m["share_init"] for m in metas)


def test_poem_chained_starts_each_line_from_the_previous_image(studio):
    client, outputs, _ = studio
    gallery, status, files, _ = client.predict(
        text="snowy mountains\na river at dawn", model="clip", canvas="pixels", steps=2, size=32, seed=3,
        lock_seed=True, chain=True, api_name="/poem")
    assert [item["caption"] for item in gallery] == ["snowy mountains", "a river at dawn"]
    first, second = (read_metadata(item["image"]) for item in gallery)
    assert first["init_image"] is None
    assert Path(second["init_image"]).parent == outputs.resolve()  # line 1's saved image


def test_compare_cross_scores(studio):
    client, _, _ = studio
    brivl, clip, status, table, seed = client.predict(
        chinese="雪山", english="snowy mountains", canvas="pixels", steps=3, size=32, seed=11, lock_seed=True,
        api_name="/compare")
    assert Path(brivl).is_file() and Path(clip).is_file() and seed == 11
    assert "BriVL: done" in status and "CLIP: done" in status
    assert table["headers"] == ["image", "BriVL · 雪山", "CLIP · snowy mountains"]
    assert [row[0] for row in table["data"]] == ["BriVL's image", "CLIP's image"]
    assert all(isinstance(v, float) for row in table["data"] for v in row[1:])


def test_compare_runs_both_models_on_one_footing(studio, monkeypatch):
    """Steps left at 0: both runs take the same steps and lr, though CLIP alone would get fewer (README, Speed)."""
    from imagination import pipeline

    monkeypatch.setitem(pipeline.CANVAS_DEFAULTS, "pixels", dict(pipeline.CANVAS_DEFAULTS["pixels"], steps=4))
    for precision in ("fp32", "bf16"):  # whichever this CPU's "auto" is
        monkeypatch.setitem(pipeline.KIND_DEFAULTS, ("pixels", "clip", precision), dict(steps=2, lr=0.5))
    client, _, _ = studio
    brivl, clip, *_ = client.predict(chinese="雪山", english="snowy mountains", canvas="pixels", steps=0, size=32,
                                     seed=11, lock_seed=True, api_name="/compare")
    metas = [read_metadata(path) for path in (brivl, clip)]
    assert [(m["steps"], m["lr"]) for m in metas] == [(4, 0.05)] * 2


def test_family_one_image_per_filler(studio):
    client, _, _ = studio
    gallery, status, seed = client.predict(
        template="有{}的山脉", fillers="森林 / 石头\n积雪 / 瀑布", model="brivl", canvas="pixels", steps=2, size=32,
        seed=2, lock_seed=True, api_name="/family")
    assert [item["caption"] for item in gallery] == ["有森林的山脉", "有石头的山脉", "有积雪的山脉", "有瀑布的山脉"]
    assert {read_metadata(item["image"])["seed"] for item in gallery} == {2}


def test_neuron_alone_and_under_a_text(studio):
    from imagination.models import registry

    client, _, _ = studio
    layer = next(iter(registry.load("clip").neuron_layers()))
    for text in ("", "snow|night:-1"):
        image, status, activation, _, similarity = client.predict(
            model="clip", layer=layer, channel=3, text=text, weight=0.5, canvas="pixels", steps=3, size=32,
            seed=1, lock_seed=True, api_name="/neuron")
        meta = read_metadata(image)
        assert meta["neuron"]["channel"] == 3 and meta["prompts"] == (["snow:0.5|night:-0.5"] if text else [])
        # The channel is plotted as what it is (a mean activation), the text apart as a similarity.
        assert activation["columns"] == ["step", "activation", "channel"] and len(activation["data"]) == 3
        assert activation["data"][0][2] == "CLIP · channel 3 of " + ".".join(layer.split(".")[-3:])
        assert "activation" in status
        if text:
            assert {row[2] for row in similarity["data"]} == {"CLIP · snow", "CLIP · night"}
        else:
            assert similarity is None and "similarity" not in status


def _hostile_file(path: Path) -> str:
    """bomb.png claims 60000 x 60000 pixels, big.png 5000 x 5000 (both tiny files); anything else is text."""
    from fixtures_images import write_png_header

    sides = {"bomb.png": 60000, "big.png": 5000}
    return str(write_png_header(path, sides[path.name], sides[path.name])) if path.name in sides else \
        _write(path, "not an image")


@pytest.mark.parametrize("overrides, message", [
    ({"prompt": "   "}, "the prompt is empty"),
    ({"prompt": "sea:abc"}, "weight 'abc' in 'sea:abc' is not a number"),
    ({"prompt": "a" * 600}, "at most 500"),
    ({"steps": 5000}, "steps must be from 0 to 1000, got 5000"),
    ({"size": 8}, "size must be from 32 to 512, got 8"),
    ({"model": "both", "second_prompt": ""}, "prompt in the other language is empty"),
    ({"init_image": "fake.png"}, "the start image 'fake.png' is not an image"),
    ({"init_image": "bomb.png"}, "the start image 'bomb.png' claims over 179 megapixels: at most 4096×4096"),
    ({"image_prompts": ["big.png"]}, "the image prompt 'big.png' is 5000×5000 pixels: at most 4096×4096"),
    ({"image_prompts": ["notes.txt"]}, "Invalid file type"),
    ({"rotate": 90}, "rotate must be from 0.0 to 45.0, got 90"),
    ({"jitter": 2.5}, "jitter must be a whole number"),
])
def test_bad_inputs_get_their_message(studio, tmp_path, overrides, message):
    client, _, _ = studio
    for key in ("init_image", "image_prompts"):
        if key in overrides:
            names = overrides[key] if isinstance(overrides[key], list) else [overrides[key]]
            files = [handle_file(_hostile_file(tmp_path / name)) for name in names]
            overrides[key] = files if isinstance(overrides[key], list) else files[0]
    with pytest.raises(Exception) as error:
        client.predict(**imagine_args(**overrides), api_name="/imagine")
    assert message in str(error.value)
    assert "Traceback" not in str(error.value)


def test_other_tabs_refuse_bad_input(studio):
    client, _, _ = studio
    with pytest.raises(Exception, match="exactly one slot"):
        client.predict(template="mountains", fillers="snow", model="clip", canvas="pixels", steps=1, size=32,
                       seed=1, lock_seed=True, api_name="/family")
    with pytest.raises(Exception, match="the poem is empty"):
        client.predict(text="\n \n", model="auto", canvas="pixels", steps=1, size=32, seed=1, lock_seed=True,
                       chain=False, api_name="/poem")
    with pytest.raises(Exception, match="has no layer"):
        client.predict(model="clip", layer="nope", channel=0, text="", weight=1, canvas="pixels", steps=1,
                       size=32, seed=1, lock_seed=True, api_name="/neuron")


def test_stop_ends_the_run_early_and_keeps_the_image(studio):
    client, outputs, _ = studio
    before = set(outputs.glob("*-stopped.png"))
    job = client.submit(**imagine_args(prompt="a stopped lighthouse", steps=1000, preview_every=5),
                        api_name="/imagine")
    wait_for(lambda: any("step 5/1000" in o[1] for o in job.outputs()))
    job.cancel()
    stopped = wait_for(lambda: set(outputs.glob("*-stopped.png")) - before)
    meta = read_metadata(stopped.pop())
    assert meta["stopped"] is True and 5 <= meta["steps_done"] < 1000
    assert meta["prompt"] == "a stopped lighthouse"
    time.sleep(0.3)
    assert not any("done" in o[1] for o in job.outputs())


def test_files_outside_the_outputs_folder_are_refused(studio):
    client, outputs, url = studio
    inside = save_png(Image.new("RGB", (8, 8)), outputs / "probe.png", {"prompt": "probe"})
    assert httpx.get(f"{url}gradio_api/file={inside}").status_code == 200
    for path in ("/etc/passwd", REPO / "README.md", REPO / "app.py", outputs.parent):
        assert httpx.get(f"{url}gradio_api/file={path}").status_code in (403, 404), path


def test_gallery_reads_only_pngs_inside_outputs(tmp_path):
    from studio.handlers import Handlers
    from studio.outputs import Outputs

    handlers = Handlers(Outputs(tmp_path / "out"))
    meta = {"prompts": ["雪山之夜"], "prompt": "雪山之夜", "models": ["brivl-demo", "clip-demo"],
            "model_prompts": {"clip-demo": ["snowy mountains at night"]}, "canvas": "plain", "steps": 42,
            "size": 64, "seed": 99, "lr": 0.05, "cutn": 8, "cut_pow": 1.5, "augmentations": ["flip"],
            "tv_weight": 0.1, "negative": "text", "preview_every": 7, "image_index": 0, "pad": 12, "jitter": 8,
            "rotate": 99.0}
    save_png(Image.new("RGB", (8, 8)), tmp_path / "out" / "a.png", meta)
    (tmp_path / "secret.png").write_bytes((tmp_path / "out" / "a.png").read_bytes())
    (tmp_path / "out" / "link.png").symlink_to(tmp_path / "secret.png")
    values, stored = handlers.load_settings("a.png")
    assert stored == meta
    assert values == {"prompt": "雪山之夜", "second_prompt": "snowy mountains at night", "negative": "text",
                      "model": "both", "canvas": "plain", "steps": 42, "size": 64, "seed": 99, "lock_seed": True,
                      "lr": 0.05, "cutn": 8, "cut_pow": 1.5, "augmentations": ["flip"], "tv_weight": 0.1,
                      "preview_every": 7, "pad": 12, "jitter": 8, "rotate": 45.0,  # moved inside the field's range
                      # absent from an older image: empty, i.e. the canvas's default
                      "scale_min": None, "scale_max": None, "mean_weight": None, "grey_weight": None, "blur": None}
    for name in ("../secret.png", str(tmp_path / "secret.png"), "..", "link.png", "/etc/passwd", "sequences"):
        with pytest.raises(Exception, match="not an image in the outputs folder"):
            handlers.load_settings(name)
    items, names = handlers.gallery()
    assert names[0] in ("a.png", "link.png") and "secret.png" not in names


def test_compute_listeners_share_one_queue(tiny_checkpoints, tmp_path):
    from studio import build_app

    demo = build_app(tmp_path, concurrency=2)
    compute = [fn for fn in demo.fns.values() if fn.api_name in ("imagine", "poem", "compare", "family", "neuron")]
    assert len(compute) == 5
    assert {fn.concurrency_id for fn in compute} == {"compute"} and {fn.concurrency_limit for fn in compute} == {2}


def test_models_report_says_what_is_missing(tiny_checkpoints):
    from imagination.models import registry
    from studio.handlers import models_markdown

    report = models_markdown(registry.status())
    assert "**clip** → `clip-demo`" in report and "● ready" in report
    assert "brivl-with-roberta-base.pth" in report  # the real BriVL is missing, and the report says what to put


def test_contact_sheet_writes_the_lines(tmp_path):
    from imagination import media

    images = [Image.new("RGB", (32, 32), c) for c in ("red", "green")]
    sheet = media.contact_sheet(images, ["白日依山尽", "snowy mountains"], cell=64)
    assert sheet.size[0] == 2 * 64 + 3 * 4
    caption_band = sheet.crop((0, 64 + 4, sheet.width, sheet.height)).convert("L")
    assert min(caption_band.getdata()) < 128  # text was drawn
    assert media.save_gif(images, tmp_path / "a.gif").stat().st_size > 0


def test_forms_check_numbers_and_text():
    from studio import forms

    assert forms.check_number("steps", "150") == 150
    for bad in (-1, 1001, 2.5, "x", None, float("nan")):
        with pytest.raises(UserError):
            forms.check_number("steps", bad)
    with pytest.raises(UserError, match="Chinese text"):
        forms.models_for("both", "snow", "mountains")
    assert forms.models_for("both", "snowy mountains", "雪山") == (["clip", "brivl"], {"brivl": ["雪山"]})
    assert forms.draw_seed(5, True) == 5


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)



def test_the_studio_loads_its_models_off_the_main_thread_and_still_reports_a_failure(monkeypatch):
    """The main thread must run no parallel op: its idle OpenMP team beside the run's made every studio
    step 1.2x slower (app.py, `preload_off_the_main_thread`). A loading error still reaches the user."""
    import threading

    import app

    seen = []
    monkeypatch.setattr(app, "preload", lambda device: seen.append((device, threading.current_thread())))
    app.preload_off_the_main_thread("cpu")
    assert seen and seen[0][0] == "cpu" and seen[0][1] is not threading.main_thread()

    def missing(device):
        raise UserError("no 'clip' model is available")

    monkeypatch.setattr(app, "preload", missing)
    with pytest.raises(UserError, match="no 'clip' model"):
        app.preload_off_the_main_thread("cpu")
