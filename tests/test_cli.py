"""`python -m imagination` as a user meets it: files written, one-line errors, exit status 2."""

import json
import os
import subprocess
import sys

import pytest

from imagination.cli import main
from imagination.errors import UserError
from imagination.io import read_metadata

pytestmark = pytest.mark.usefixtures("tiny_checkpoints")
FAST = ["--size", "32", "--cutn", "4", "--steps", "3"]


def test_imagine_writes_a_png_with_its_settings(tmp_path, capsys):
    out = tmp_path / "snow.png"
    assert main(["imagine", "snowy mountains", "--canvas", "pixels", "--seed", "7", "--out", str(out), *FAST]) == 0
    meta = read_metadata(out)
    assert meta["prompt"] == "snowy mountains" and meta["seed"] == 7 and meta["canvas"] == "pixels"
    assert "snowy mountains" in meta["similarity"]["clip-demo"]
    assert str(out) in capsys.readouterr().out


def test_transforms_and_priors_are_applied_and_recorded(tmp_path):
    out = tmp_path / "a.png"
    assert main(["imagine", "a boat", "--canvas", "pyramid", "--pad", "4", "--jitter", "2", "--scale-min", "0.8",
                 "--scale-max", "1.2", "--rotate", "5", "--mean-weight", "0.3", "--grey-weight", "1",
                 "--tv-weight", "0.1", "--blur", "1", "--out", str(out), *FAST]) == 0
    meta = read_metadata(out)
    assert meta["canvas"] == "pyramid"
    assert {k: meta[k] for k in ("pad", "jitter", "scale_min", "scale_max", "rotate", "mean_weight", "grey_weight",
                                 "tv_weight", "blur")} == dict(pad=4, jitter=2, scale_min=0.8, scale_max=1.2, rotate=5,
                                                                mean_weight=0.3, grey_weight=1, tv_weight=0.1, blur=1)


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_video_holds_the_frames_of_the_run(tmp_path, capsys, suffix):
    import imageio.v3 as iio

    film = tmp_path / f"forming{suffix}"
    assert main(["imagine", "two boats", "a lake", "--canvas", "pixels", "--out", str(tmp_path / "a.png"),
                 "--video", str(film), "--video-every", "1", "--size", "32", "--cutn", "2", "--steps", "6"]) == 0
    frames = iio.imread(film, index=None)
    assert frames.shape[0] >= 6  # a frame per step (a GIF may merge identical ones, a film adds a held end)
    assert frames.shape[2] > frames.shape[1]  # both images side by side in each frame
    assert not (frames[0] == frames[-2]).all()  # the picture changes as it forms
    assert f"{film}" in capsys.readouterr().out


def test_several_prompts_give_numbered_files(tmp_path):
    out = tmp_path / "poem.png"
    assert main(["imagine", "白日依山尽", "黄河入海流", "--out", str(out), *FAST]) == 0
    metas = [read_metadata(tmp_path / f"poem-{i}.png") for i in (1, 2)]
    assert [m["prompt"] for m in metas] == ["白日依山尽", "黄河入海流"]
    assert metas[0]["models"] == ["brivl-demo"]  # Chinese text picks BriVL by default


def test_score_json_lists_one_similarity_per_text(tmp_path, capsys):
    out = tmp_path / "a.png"
    main(["imagine", "a boat", "--canvas", "plain", "--out", str(out), *FAST])
    capsys.readouterr()
    assert main(["score", str(out), "a boat", "snowy mountains", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["text"] for r in rows] == ["a boat", "snowy mountains"]
    assert all(-1 <= r["similarity"] <= 1 for r in rows)


def test_models_reports_ready_and_missing_with_where_to_put_files(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "ready    clip-demo" in out and "ready    chinese-clip-vit-base-patch16" in out
    assert "missing  clip-vit-base-patch32" in out and "clip-vit-base-patch32/config.json" in out
    assert "missing  brivl-roberta-base" in out and ".pth" in out


@pytest.mark.parametrize("args, message", [
    (["imagine", ""], "the prompt is empty"),
    (["imagine", " | "], "the prompt is empty"),
    (["imagine", "sea:abc"], "is not a number"),
    (["imagine", "sea", "--model", "nope"], "unknown model 'nope'"),
    (["imagine", "sea", "--canvas", "vqgan", "--size", "33"], "cannot be tiled"),
    (["imagine", "sea", "--steps", "0"], "steps must be a whole number"),
    (["imagine", "sea", "--steps", "x"], "invalid int value"),
    (["imagine", "sea", "--out", "/nonexistent/dir/a.png"], "does not exist"),
    (["imagine", "sea", "--out", "a.jpg"], "must end in .png"),
    (["imagine", "sea", "--init-image", "/no/such.png"], "image not found"),
    (["score", "/no/such.png", "sea"], "image not found"),
    (["score", "notes.txt", "sea"], "not a readable image"),
    (["imagine", "sea", "--seed", str(10**30)], "seed must be a whole number from 0 to 2^63 - 1"),
    (["imagine", "sea", "--out", "/proc/x.png"], "output folder /proc is not writable"),
    (["imagine", "a:1e308|b:1e308"], "must be a number from -100 to 100"),
    (["imagine", "a:0"], "nothing to imagine"),
    (["imagine", "sea\x07"], "contains the control character"),
    (["imagine", "sea", "--tv-weight", "nan"], "tv weight must be a number from 0 to 1000, got nan"),
    (["imagine", "sea", "--tv-weight", "inf"], "tv weight must be a number from 0 to 1000, got inf"),
    (["imagine", "sea", "--prompt-for", "gpt=x"], "prompts given for 'gpt', which this run does not use"),
    (["imagine", "sea", "--model", "clip", "--prompt-for", "brivl=海"], "prompts given for 'brivl'"),
    (["imagine", "sea", "--video", "film.avi"], "must end in .mp4 or .gif"),
    (["imagine", "sea", "--canvas", "pixels", "--rotate", "-5"], "rotate must be a number from 0 to 180"),
    (["imagine", "sea", "--canvas", "pixels", "--scale-min", "1.2", "--scale-max", "1.1"], "is above scale max"),
])
def test_bad_input_is_one_line_on_stderr_and_exit_2(args, message, capsys, tmp_path):
    monkeypatch_cwd = os.getcwd()
    os.chdir(tmp_path)  # nothing may be written: check the folder gets no image
    (tmp_path / "notes.txt").write_text("not an image")
    try:
        assert main(args) == 2
    finally:
        os.chdir(monkeypatch_cwd)
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not any(p.suffix == ".png" for p in tmp_path.rglob("*"))


def test_missing_and_corrupt_checkpoints_are_one_line_errors(tiny_checkpoints, tmp_path, capsys, monkeypatch):
    from imagination.models import registry

    broken = tmp_path / "root"
    (broken / "clip-demo").mkdir(parents=True)
    monkeypatch.setenv("IMAGINATION_CHECKPOINTS", str(broken))
    registry._load_cached.cache_clear()
    assert main(["imagine", "sea", "--canvas", "plain", *FAST]) == 2
    assert "no 'clip' model is available: put" in capsys.readouterr().err
    for name in ("config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer.json"):
        src = tiny_checkpoints / "clip-demo" / name
        if src.exists():
            (broken / "clip-demo" / name).write_bytes(src.read_bytes())
    (broken / "clip-demo" / "model.safetensors").write_bytes(b"not a safetensors file")
    assert main(["imagine", "sea", "--canvas", "plain", *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert "could not load CLIP" in err and "\n" not in err
    registry._load_cached.cache_clear()


def test_help_and_errors_from_a_real_process(tiny_checkpoints):
    env = {**os.environ, "IMAGINATION_CHECKPOINTS": str(tiny_checkpoints)}
    done = subprocess.run([sys.executable, "-m", "imagination", "imagine", "--help"], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and "--canvas" in done.stdout and "--negative" in done.stdout
    done = subprocess.run([sys.executable, "-m", "imagination", "imagine", "sea:x"], capture_output=True, text=True, env=env)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_cli_studio_and_eval_run_the_same_default_cutouts(tmp_path):
    """The eval measures the quality the studio and CLI deliver only if all three use the library's default
    (the studio once sent 32 cutouts while every eval figure was taken at 16)."""
    from imagination.eval.__main__ import build_parser
    from imagination.pipeline import ImagineSettings
    from studio import forms

    out = tmp_path / "default.png"
    assert main(["imagine", "a lake", "--size", "32", "--steps", "1", "--out", str(out)]) == 0
    assert read_metadata(out)["cutn"] == ImagineSettings.cutn
    assert forms.LIMITS["cutn"][2] == ImagineSettings.cutn
    defaults = build_parser().parse_args([])
    assert (defaults.cutn, defaults.steps) == (ImagineSettings.cutn, ImagineSettings.steps)


@pytest.mark.parametrize("text, message", [("{lr: 1}", "not JSON"), ('{"cutn": 8}', "cannot change cutn"),
                                           ('{"lr_rate": 1}', "unknown setting lr_rate"),
                                           ('{"lr": -1}', "lr must be above 0")])
def test_eval_refuses_a_bad_set_before_any_work(text, message):
    from imagination.eval.__main__ import parse_overrides

    with pytest.raises(UserError, match=message):
        parse_overrides(text)


@pytest.mark.parametrize("side, message", [(60000, "claims over 179 megapixels: at most 4096×4096"),
                                           (5000, "is 5000×5000 pixels: at most 4096×4096")])
@pytest.mark.parametrize("command", [["imagine", "sea", "--size", "32", "--steps", "1", "--init-image", "big.png"],
                                     ["imagine", "sea", "--size", "32", "--steps", "1", "--image-prompt", "big.png"],
                                     ["score", "big.png", "sea"]])
def test_an_image_too_large_to_decode_is_refused_from_its_header(command, side, message, capsys, tmp_path,
                                                                 monkeypatch):
    from fixtures_images import write_png_header

    monkeypatch.chdir(tmp_path)
    write_png_header(tmp_path / "big.png", side, side)
    assert main(command) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not list(tmp_path.glob("sea*.png"))  # no run happened


def test_a_bad_output_path_is_refused_before_the_models_load(monkeypatch, capsys):
    """Loading takes seconds; a typo in --out should not cost them."""
    from imagination.models import registry

    monkeypatch.setattr(registry, "load", lambda *a, **k: pytest.fail("a model was loaded before --out was checked"))
    assert main(["imagine", "sea", "--out", "a.jpg"]) == 2
    assert "must end in .png" in capsys.readouterr().err
