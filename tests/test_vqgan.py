"""VQGAN loader (released checkpoint format, strict keys, safe unpickling) and the VQGAN canvas."""

from __future__ import annotations

import pickle

import pytest
import torch

from imagination.canvases.vqgan import VQGANCanvas
from imagination.errors import UserError
from imagination.models.vqgan import (
    MODEL_CHECKPOINT,
    ModelCheckpointStub,
    build_vqgan,
    load_vqgan,
    missing_vqgan_files,
    read_checkpoint,
)
from tests.fixtures_vqgan import LOSS_KEYS, TINY_DDCONFIG, write_tiny_vqgan


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return write_tiny_vqgan(tmp_path_factory.mktemp("vqgan") / "vqgan_tiny")


@pytest.fixture(scope="module")
def vqgan(tiny_dir):
    return load_vqgan(tiny_dir)


def _rewrite_state(directory, edit):
    """Re-save the checkpoint's state_dict (plain torch.save, which the loader also accepts)."""
    path = directory / "ckpts" / "last.ckpt"
    state = dict(read_checkpoint(path)["state_dict"])
    edit(state)
    torch.save({"state_dict": state}, path)


def test_tiny_checkpoint_loads_strictly_and_frozen(tiny_dir, vqgan):
    saved = read_checkpoint(tiny_dir / "ckpts" / "last.ckpt")["state_dict"]
    assert set(LOSS_KEYS) <= set(saved)
    loaded = vqgan.state_dict()
    assert set(loaded) == set(saved) - set(LOSS_KEYS)
    for key, value in loaded.items():
        assert torch.equal(value, saved[key]), key
    assert not vqgan.training and not any(p.requires_grad for p in vqgan.parameters())
    assert (vqgan.n_embed, vqgan.embed_dim, vqgan.factor) == (16, 8, 2)
    assert vqgan.name == "vqgan_tiny"


def test_pickle_holds_the_lightning_global_and_loads_weights_only(tiny_dir):
    path = tiny_dir / "ckpts" / "last.ckpt"
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == [MODEL_CHECKPOINT]
    with pytest.raises(pickle.UnpicklingError, match="ModelCheckpoint"):
        torch.load(path, weights_only=True)  # what a naive loader hits on the real files
    ckpt = read_checkpoint(path)
    assert list(ckpt) == ["epoch", "global_step", "pytorch-lightning_version", "callbacks",
                          "optimizer_states", "lr_schedulers", "state_dict"]
    assert list(ckpt["callbacks"]) == [ModelCheckpointStub] and ckpt["global_step"] == 7
    assert ckpt["pytorch-lightning_version"] == "1.0.8" and len(ckpt["optimizer_states"]) == 1


class Payload:  # a global outside pytorch_lightning: must be refused, never unpickled
    pass


def test_foreign_globals_are_refused(tmp_path):
    directory = write_tiny_vqgan(tmp_path / "m")
    torch.save({"state_dict": {}, "evil": Payload()}, directory / "ckpts" / "last.ckpt")
    with pytest.raises(UserError, match="Payload"):
        load_vqgan(directory)


def test_missing_unexpected_and_misshapen_keys_fail(tmp_path):
    directory = write_tiny_vqgan(tmp_path / "m")
    _rewrite_state(directory, lambda s: s.pop("decoder.conv_out.bias"))
    with pytest.raises(UserError, match=r"1 missing keys \(first: decoder.conv_out.bias\)"):
        load_vqgan(directory)
    _rewrite_state(directory, lambda s: s.update({"decoder.conv_out.bias": torch.zeros(3),
                                                  "decoder.extra.weight": torch.zeros(1)}))
    with pytest.raises(UserError, match=r"1 unexpected keys \(first: decoder.extra.weight\)"):
        load_vqgan(directory)
    yaml = directory / "configs" / "model.yaml"
    yaml.write_text(yaml.read_text().replace("n_embed: 16", "n_embed: 32"))
    _rewrite_state(directory, lambda s: s.pop("decoder.extra.weight"))
    with pytest.raises(UserError, match=r"wrong shape \(first: quantize.embedding.weight \(16, 8\)"):
        load_vqgan(directory)


def test_flat_layout_loads(tmp_path, tiny_dir):
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "model.yaml").write_bytes((tiny_dir / "configs" / "model.yaml").read_bytes())
    (flat / "last.ckpt").write_bytes((tiny_dir / "ckpts" / "last.ckpt").read_bytes())
    assert missing_vqgan_files(flat) == []
    assert load_vqgan(flat).n_embed == 16


@pytest.mark.parametrize("problem", ["no folder", "no yaml", "no ckpt", "garbage ckpt", "truncated ckpt"])
def test_file_problems_are_one_line_user_errors(tmp_path, problem):
    directory = write_tiny_vqgan(tmp_path / "vqgan_imagenet_f16_1024")
    ckpt = directory / "ckpts" / "last.ckpt"
    expected = {"no folder": [], "no yaml": ["configs/model.yaml"], "no ckpt": ["ckpts/last.ckpt"]}
    if problem == "no folder":
        directory = tmp_path / "absent"
    elif problem == "no yaml":
        (directory / "configs" / "model.yaml").unlink()
    elif problem == "no ckpt":
        ckpt.unlink()
    elif problem == "garbage ckpt":
        ckpt.write_bytes(b"<html>not found</html>")
    else:
        ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    with pytest.raises(UserError) as info:
        load_vqgan(directory)
    message = str(info.value)
    assert "\n" not in message
    if problem == "no folder":
        assert missing_vqgan_files(directory) == ["configs/model.yaml", "ckpts/last.ckpt"]
        assert str(directory) in message
    elif problem in expected:
        assert missing_vqgan_files(directory) == expected[problem]
        assert str(directory / expected[problem][0].split("/")[0]) in message
        assert "vqgan_imagenet_f16_1024" in message
    else:
        assert str(ckpt) in message


def test_quantize_is_nearest_with_straight_through_gradient(vqgan):
    z = torch.randn(2, 8, 3, 4, requires_grad=True)
    z_q, indices = vqgan.quantize(z)
    flat = z.detach().permute(0, 2, 3, 1).reshape(-1, 8)
    brute = torch.cdist(flat, vqgan.codebook).argmin(1).view(2, 3, 4)
    assert indices.shape == (2, 3, 4) and torch.equal(indices, brute)
    assert torch.allclose(z_q, vqgan.codebook[indices].permute(0, 3, 1, 2))
    weight = torch.randn_like(z)
    (z_q * weight).sum().backward()
    assert torch.allclose(z.grad, weight)  # identity gradient through the snap
    z.grad = None
    vqgan.decode(vqgan.quantize(z)[0]).mean().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert all(p.grad is None for p in vqgan.parameters())


def test_canvas_renders_its_tokens_and_is_seeded(vqgan):
    def canvas(seed):
        return VQGANCanvas(vqgan, batch=2, size=32, generator=torch.Generator().manual_seed(seed))

    first = canvas(0)
    assert first.latent.shape == (2, 8, 16, 16)
    assert [p for p in first.parameters() if p.requires_grad] == [first.latent]
    with torch.no_grad():
        first.latent.add_(0.3 * torch.randn_like(first.latent))  # off the codebook, as after steps
    images = first()
    assert images.shape == (2, 3, 32, 32) and 0 <= images.min() and images.max() <= 1
    assert first.tokens().shape == (2, 16, 16)
    assert torch.allclose(vqgan.decode_indices(first.tokens()), images, atol=1e-5)  # z + (e - z) ~ e
    assert torch.equal(canvas(1)(), canvas(1)())
    assert not torch.equal(canvas(1)(), canvas(2)())
    assert first.settings()["canvas"] == "vqgan"


def test_canvas_clamps_latent_to_codebook_range(vqgan):
    canvas = VQGANCanvas(vqgan, 1, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        canvas.latent.fill_(100.0)
    canvas()
    assert torch.allclose(canvas.latent.amax(dim=(0, 2, 3)), vqgan.codebook.max(0).values)


def test_canvas_from_images_and_copied_latents(vqgan):
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    canvas = VQGANCanvas(vqgan, 2, 32, init_images=images)
    resized = torch.nn.functional.interpolate(images, size=(32, 32), mode="bilinear", antialias=True)
    assert torch.equal(canvas.tokens(), vqgan.encode_indices(resized))
    canvas.copy_from(0, 1)
    out = canvas()
    assert torch.equal(out[0], out[1])
    other = VQGANCanvas(vqgan, 1, 32, generator=torch.Generator().manual_seed(3))
    canvas.set_latent(0, other.latent[0])
    assert torch.equal(canvas.tokens()[0], other.tokens()[0])
    canvas.set_image(1, images[1])
    assert torch.equal(canvas.tokens()[1], vqgan.encode_indices(resized[1:])[0])


def test_share_first_touches_only_the_latent(vqgan):
    # batch 3 == out_ch: the base share_first would also overwrite decoder.conv_out's weights
    before = {k: v.clone() for k, v in vqgan.state_dict().items()}
    canvas = VQGANCanvas(vqgan, 3, 32, generator=torch.Generator().manual_seed(0))
    canvas.share_first()
    canvas.train()
    tokens = canvas.tokens()
    assert torch.equal(tokens[1], tokens[0]) and torch.equal(tokens[2], tokens[0])
    assert all(torch.equal(before[k], v) for k, v in vqgan.state_dict().items())
    assert not vqgan.training


def test_size_must_be_a_multiple_of_the_factor(vqgan):
    message = r"^size 33 cannot be tiled by this VQGAN: use a multiple of 2, e.g. 32 or 34$"
    with pytest.raises(UserError, match=message):
        VQGANCanvas(vqgan, 1, 33)


def test_gumbel_variant_loads_and_encodes_deterministically(tmp_path, capsys):
    model = load_vqgan(write_tiny_vqgan(tmp_path / "gumbel", gumbel=True))
    assert capsys.readouterr().out == ""  # taming's Decoder prints its z shape unless silenced
    keys = set(model.state_dict())
    assert {"quantize.proj.weight", "quantize.proj.bias", "quantize.embed.weight"} <= keys
    assert "quantize.embedding.weight" not in keys
    assert model.codebook is model.quantize.embed.weight
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    tokens = model.encode_indices(images)
    logits = model.quantize.proj(model.quant_conv(model.encoder(images * 2 - 1)))
    assert torch.equal(tokens, logits.argmax(1)) and torch.equal(tokens, model.encode_indices(images))
    canvas = VQGANCanvas(model, 1, 32, init_images=images[:1])
    assert torch.equal(canvas.tokens(), tokens[:1])


@pytest.mark.slow
def test_imagenet_f16_architecture():
    ddconfig = {**TINY_DDCONFIG, "ch": 128, "ch_mult": [1, 1, 2, 2, 4], "num_res_blocks": 2,
                "z_channels": 256, "resolution": 256, "attn_resolutions": [16]}
    with torch.device("meta"):
        model = build_vqgan(ddconfig, n_embed=1024, embed_dim=256)
        tokens = model.encode_indices(torch.rand(1, 3, 256, 256))
    state = model.state_dict()
    assert len(state) == 343 and state["quantize.embedding.weight"].shape == (1024, 256)
    assert state["quant_conv.weight"].shape == (256, 256, 1, 1) and model.factor == 16
    assert tokens.shape == (1, 16, 16)
    with pytest.raises(UserError, match="^size 130 .* multiple of 16, e.g. 128 or 144$"):
        VQGANCanvas(model, 1, 130)
