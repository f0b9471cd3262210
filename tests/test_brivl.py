"""BriVL encoder: official checkpoint layout, faithful pooling/text path, frozen-but-differentiable use,
and one-line user errors. Everything runs on tiny random models except the `slow` meta-device check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from imagination.errors import UserError
from imagination.models import brivl
from imagination.models.brivl import (
    DEFAULT_CONFIG, box_theta, build_brivl_learnable, grid_boxes, load_brivl, missing_brivl_files,
    roi_pool, roi_pool_per_image_reference, save_brivl,
)
from tests.fixtures_brivl import TINY_CONFIG, write_tiny_brivl, write_tiny_vocab

CKPT = "brivl-with-roberta-base.pth"
TEXTS = ["一只猫在草地上", "红色苹果", "海边日落", "城市夜景"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return write_tiny_brivl(tmp_path_factory.mktemp("brivl"))


@pytest.fixture(scope="module")
def enc(tiny_dir):
    return load_brivl(tiny_dir)


@pytest.fixture
def folder(tiny_dir, tmp_path) -> Path:
    """A private copy of the tiny folder that a test may break."""
    return Path(shutil.copytree(tiny_dir, tmp_path / "brivl"))


# --- loading ------------------------------------------------------------------------------------
def test_tiny_checkpoint_uses_every_key_and_infers_dims(tiny_dir, enc):
    file_keys = set(torch.load(tiny_dir / CKPT, weights_only=True)["learnable"])
    legacy = {f"{e}.backbone.bert.embeddings.position_ids" for e in ("textencoder", "textencoder_mom")}
    assert set(enc.ignored_keys) == legacy  # dropped: a non-persistent buffer in transformers >= 4.31
    query = {k for k in file_keys - legacy if k.split(".")[0] in ("imgencoder", "textencoder")}
    twins = {k.replace("_mom.", ".", 1) for k in file_keys - legacy if "_mom." in k}
    assert set(enc.learnable.state_dict()) == query == twins  # no missing, no unexpected, twins mirror
    assert (enc.embed_dim, enc.input_size, enc.max_text_len) == (256, 64, 32)  # not config.yml's 16: see below
    assert enc.config["TEXT_FEATURE_DIM"] == 32 and enc.config["BERT_LAYERS"] == 2
    assert enc.config["IMG_FFN_DIM"] == 64 and enc.config["BERT_MAX_POSITIONS"] == 40
    assert enc.languages == ("zh",) and enc.mean == (0.485, 0.456, 0.406)


def test_dims_come_from_tensor_shapes_not_the_config(folder):
    # The public eval.yml sizes (768 / 2048 / 4 layers) are wrong for this file; shapes win.
    cfg = {**DEFAULT_CONFIG, "CNN": "test_efficientnet", "IMG_SIZE": 64, "BERT_HEADS": 2}
    (folder / "config.yml").write_text(yaml.safe_dump({"MODEL": cfg}))
    e = load_brivl(folder)
    assert e.embed_dim == 256 and e.config["TEXT_FEATURE_DIM"] == 32 and e.config["IMG_TRANSFORMER_LAYER"] == 2


def test_vocab_in_roberta_subfolder_and_missing_files(folder, tmp_path):
    assert missing_brivl_files(folder) == []
    (folder / "chinese-roberta-wwm-ext").mkdir()
    (folder / "vocab.txt").rename(folder / "chinese-roberta-wwm-ext" / "vocab.txt")
    assert missing_brivl_files(folder) == []
    load_brivl(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    problems = missing_brivl_files(empty)
    assert problems == [f"{empty}/{CKPT}", f"{empty}/vocab.txt"]  # paths, like the other families' lists
    assert missing_brivl_files(tmp_path / "absent") == [f"{tmp_path / 'absent'}/{CKPT}", f"{tmp_path / 'absent'}/vocab.txt"]


# --- RoI pooling --------------------------------------------------------------------------------
def test_batched_roi_pool_equals_official_loop():
    torch.manual_seed(0)
    fmap = torch.randn(3, 8, 5, 5)
    max_pool = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 1), torch.nn.AvgPool2d(4, stride=1))
    grid = grid_boxes(160, 6)  # (37, 4)
    corners = torch.rand(3, 5, 2, 2, dtype=torch.float64) * 160
    own = torch.cat([corners.min(-1).values, corners.max(-1).values], -1)[..., [0, 2, 1, 3]]  # (3, 5, 4)
    # (1, K, 4): boxes shared by the batch take the sampling-matrix path; (B, K, 4): grid_sample.
    for boxes in (grid[None], grid.expand(3, -1, -1), torch.cat([grid.expand(3, -1, -1), own], 1)):
        ref = roi_pool_per_image_reference(fmap, boxes, max_pool, 160, 4)
        assert ref.shape == (3, boxes.shape[1], 8)
        torch.testing.assert_close(roi_pool(fmap, boxes, max_pool, 160, 4), ref, atol=1e-5, rtol=1e-5)


def test_box_order_and_official_sampling_positions():
    boxes = grid_boxes(456, 6)
    assert boxes.dtype == torch.float64 and boxes.shape == (37, 4)
    assert boxes[1].tolist() == [0, 76, 76, 152]  # outer index walks x: column-major
    assert boxes[36].tolist() == [0, 0, 456, 456]  # whole image last
    # Whole-image box on the 15x15 map of a 456 px B5: with align_corners=False the 4 sample
    # columns land at feature x = 1.51, 5.53, 9.54, 13.56 (not 0..14: part of the official quirk).
    grid = F.affine_grid(box_theta(boxes[36:], 15, 15, 456), [1, 1, 4, 4], align_corners=False)
    xs = ((grid[0, 0, :, 0] + 1) * 15 - 1) / 2
    torch.testing.assert_close(xs, torch.tensor([1.509, 5.527, 9.545, 13.563]), atol=2e-3, rtol=0)


# --- encoding -----------------------------------------------------------------------------------
def test_text_unit_vectors_and_batch_invariance(enc):
    z = enc.encode_text(TEXTS)
    assert z.shape == (4, enc.embed_dim)
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(4))
    one_by_one = torch.cat([enc.encode_text(t) for t in TEXTS])
    torch.testing.assert_close(z, one_by_one, atol=1e-5, rtol=1e-5)
    assert (z[0] - z[1]).abs().max() > 1e-3


def test_text_embedding_depends_on_max_text_len(tiny_dir):
    # Faithful to upstream: BERT gets no attention mask, so [PAD] tokens change the token features
    # and the same sentence embeds differently at another padded length (use the model's own length).
    a = load_brivl(tiny_dir, max_text_len=8).encode_text(TEXTS[:1])
    b = load_brivl(tiny_dir, max_text_len=16).encode_text(TEXTS[:1])
    assert (a - b).abs().max() > 1e-4


def test_one_text_length_rule_32_unless_asked(tiny_dir, tmp_path):
    """The README has users place the official cfg/eval.yml as config.yml; its MAX_TEXT_LEN (80, the
    training length) must not silently change every embedding: 32 (example.py's) unless asked for."""
    folder = tmp_path / "brivl"
    shutil.copytree(tiny_dir, folder)
    config = yaml.safe_load((folder / "config.yml").read_text(encoding="utf-8"))
    config["MODEL"]["MAX_TEXT_LEN"] = 40
    (folder / "config.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    assert load_brivl(folder).max_text_len == 32
    default, asked = load_brivl(folder).encode_text(TEXTS[:1]), load_brivl(folder, max_text_len=40).encode_text(TEXTS[:1])
    assert load_brivl(folder, max_text_len=40).max_text_len == 40 and (default - asked).abs().max() > 1e-4
    with pytest.raises(UserError, match="text length 41 must lie in 2..40"):
        load_brivl(folder, max_text_len=41)


def test_the_text_length_reaches_the_encoder_from_registry_and_cli(tiny_checkpoints, tmp_path, capsys):
    from imagination.cli import main
    from imagination.io import read_metadata
    from imagination.models import registry

    assert registry.load("brivl").max_text_len == 32 and registry.load("brivl", max_text_len=12).max_text_len == 12
    assert registry.load("clip", max_text_len=12) is registry.load("clip")  # only BriVL's length is a choice
    out = tmp_path / "a.png"
    assert main(["imagine", "雪山", "--brivl-text-len", "12", "--size", "32", "--steps", "1", "--cutn", "2",
                 "--out", str(out)]) == 0
    assert read_metadata(out)["brivl_text_len"] == 12
    capsys.readouterr()
    scores = []
    for extra in ([], ["--brivl-text-len", "12"]):
        assert main(["score", str(out), "雪山", "--model", "brivl", "--json", *extra]) == 0
        scores.append(json.loads(capsys.readouterr().out)[0]["similarity"])
    assert scores[0] != scores[1]


def test_image_gradients_reach_pixels_and_never_the_model(enc):
    pixels = torch.rand(3, 3, 64, 64, requires_grad=True)
    z = enc.encode_image(pixels)
    assert z.shape == (3, enc.embed_dim)
    (z @ enc.encode_text(TEXTS[:1]).T).sum().backward()
    assert pixels.grad is not None and torch.isfinite(pixels.grad).all() and pixels.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in enc.parameters())
    with torch.no_grad():  # batch-invariant too (eval BatchNorm, per-image boxes)
        torch.testing.assert_close(z.detach()[1:2], enc.encode_image(pixels[1:2]), atol=1e-5, rtol=1e-5)


def test_grad_checkpointing_gives_the_same_pixel_gradient(tiny_dir):
    e = load_brivl(tiny_dir)
    pixels = torch.rand(2, 3, 64, 64)
    grads = []
    for flag in (False, True):
        x = pixels.clone().requires_grad_()
        e.set_grad_checkpointing(flag).encode_image(x).sum().backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_trainer_build_save_load_round_trip(tmp_path):
    cfg = {**TINY_CONFIG, "MAX_TEXT_LEN": 12}
    vocab = write_tiny_vocab(tmp_path / "v.txt")
    n_vocab = len(vocab.read_text(encoding="utf-8").split())
    learnable = build_brivl_learnable(cfg, vocab_size=n_vocab, bert_layers=2, bert_heads=4,
                                      bert_intermediate=64, max_positions=32, ffn_dim=48)
    assert all(p.requires_grad for p in learnable["imgencoder"].parameters())
    assert not any(p.requires_grad for p in learnable["textencoder_mom"].parameters())
    del learnable["imgencoder_mom"], learnable["textencoder_mom"]  # a trainer may keep only the query side
    path = save_brivl(learnable, cfg, vocab, tmp_path / "out")
    assert {k.split(".")[0] for k in torch.load(path, weights_only=True)["learnable"]} == {
        "imgencoder", "imgencoder_mom", "textencoder", "textencoder_mom"}
    e = load_brivl(tmp_path / "out")
    assert e.config["BERT_HEADS"] == 4 and e.max_text_len == 32 and e.config["TEXT_FFN_DIM"] == 48
    learnable.eval()
    with torch.no_grad():
        ids, lengths = e.tokenize(TEXTS[:2])
        expected = F.normalize(learnable["textencoder"](ids, lengths), dim=-1)
    torch.testing.assert_close(e.encode_text(TEXTS[:2]), expected)


# --- user errors --------------------------------------------------------------------------------
class Pickled:  # a non-tensor global that weights_only loading refuses
    pass


def _rewrite(folder: Path, edit) -> None:
    ckpt = torch.load(folder / CKPT, weights_only=True)
    torch.save(edit(ckpt), folder / CKPT)


def _drop_key(c):
    c["learnable"].pop("imgencoder.learnable.imgFC.fc2.bias")
    return c


def _extra_key(c):
    c["learnable"]["textencoder.learnable.extra"] = torch.zeros(1)
    return c


BREAKS = {
    "missing folder": (lambda f: shutil.rmtree(f), "not found"),
    "no checkpoint": (lambda f: (f / CKPT).unlink(), CKPT),
    "two checkpoints": (lambda f: shutil.copy(f / CKPT, f / "other.pth"), "other.pth"),
    "no vocab": (lambda f: (f / "vocab.txt").unlink(), "vocab.txt"),
    "corrupt file": (lambda f: (f / CKPT).write_bytes(b"not a checkpoint at all"), CKPT),
    "truncated file": (lambda f: (f / CKPT).write_bytes((f / CKPT).read_bytes()[:5000]), CKPT),
    "not a dict": (lambda f: _rewrite(f, lambda c: [1, 2]), "'learnable'"),
    "no learnable": (lambda f: _rewrite(f, lambda c: {"state_dict": c["learnable"]}), "'learnable'"),
    "pickled object": (lambda f: _rewrite(f, lambda c: {**c, "extra": Pickled()}), "Pickled"),
    "missing key": (lambda f: _rewrite(f, _drop_key), "imgFC.fc2.bias"),
    "unexpected key": (lambda f: _rewrite(f, _extra_key), "learnable.extra"),
    "wrong vocab": (lambda f: (f / "vocab.txt").write_text("[PAD]\n[UNK]\n"), "vocab.txt"),
    "wrong cnn": (lambda f: (f / "config.yml").write_text(
        yaml.safe_dump({"MODEL": {**TINY_CONFIG, "CNN": "mobilenetv3_small_050"}})), "mobilenetv3_small_050"),
    "bad value": (lambda f: (f / "config.yml").write_text(
        yaml.safe_dump({"MODEL": {**TINY_CONFIG, "IMG_SIZE": "big"}})), "IMG_SIZE"),
    "heads do not divide": (lambda f: (f / "config.yml").write_text(
        yaml.safe_dump({"MODEL": {**TINY_CONFIG, "TEXT_TRANSFORMER_HEAD": 3}})), "_HEAD"),
    "bad yaml": (lambda f: (f / "config.yml").write_text("MODEL: [unclosed"), "config.yml"),
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_user_errors_are_one_line_and_name_the_file(folder, case):
    breaker, needle = BREAKS[case]
    breaker(folder)
    with pytest.raises(UserError) as info:
        load_brivl(folder)
    message = str(info.value)
    assert "\n" not in message and needle in message and str(folder) in message, message


# --- real size, shapes only ---------------------------------------------------------------------
@pytest.mark.slow
def test_public_config_key_layout_on_meta_device():
    """The public cfg (B5 at 456 px, RoBERTa-base) gives the documented layout and loads strictly."""
    sd = build_brivl_learnable(DEFAULT_CONFIG, vocab_size=21128, bert_layers=12, device="meta").state_dict()
    for enc in ("imgencoder", "imgencoder_mom"):
        assert sum(k.startswith(f"{enc}.backbone.") for k in sd) == 854
        assert sd[f"{enc}.learnable.imgAtt.layers.3.self_attn.in_proj_weight"].shape == (6144, 2048)
        assert sd[f"{enc}.learnable.max_pool.0.weight"].shape == (2048, 2048, 1, 1)
        assert f"{enc}.backbone.classifier.weight" in sd
    bert = "textencoder.backbone.bert."
    assert sd[bert + "embeddings.word_embeddings.weight"].shape == (21128, 768)
    assert sd[bert + "encoder.layer.11.output.dense.weight"].shape == (768, 3072)
    assert bert + "pooler.dense.weight" in sd and bert + "embeddings.position_ids" not in sd
    assert sd["textencoder_mom.learnable.textAtt.layers.3.self_attn.in_proj_weight"].shape == (2304, 768)
    assert sd["textencoder.learnable.textFC.fc1.weight"].shape == (2048, 768)
    assert 547e6 < sum(v.numel() for v in sd.values()) < 549e6  # ~548 M with the momentum twins

    # What the loader does with such a file: infer sizes, rebuild, strict-load (meta, no memory).
    cfg = brivl._infer_config(DEFAULT_CONFIG, sd, "meta")
    assert (cfg["BERT_LAYERS"], cfg["BERT_HEADS"], cfg["BERT_INTERMEDIATE"], cfg["BERT_MAX_POSITIONS"]) == (
        12, 12, 3072, 512)
    with torch.device("meta"):
        model = brivl._build(cfg, twins_device="meta")
    assert brivl._mismatch(model.state_dict(), sd) == ""
    model.load_state_dict(sd, strict=True, assign=True)
