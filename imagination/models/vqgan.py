"""The taming-transformers VQGAN (Esser et al. 2021) as a plain, Lightning-free module.

taming's `VQModel` needs pytorch_lightning and `taming.main` (broken on modern stacks), so the model
is rebuilt from taming's own blocks under VQModel's attribute names: released `last.ckpt` state dicts
load strictly once the training-only `loss.*` keys are dropped. Those files are pytorch-lightning
1.0.8 pickles referencing its ModelCheckpoint class; we read them with `weights_only=True` plus
stand-ins for Lightning paths only, and write our own models in the same shape.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from imagination.errors import UserError

try:
    import taming.modules.diffusionmodules.model as _taming_model
    from taming.modules.diffusionmodules.model import Decoder, Encoder
    from taming.modules.vqvae.quantize import GumbelQuantize, VectorQuantizer2

    # taming's swish is x * sigmoid(x) in three kernels (more in backward); F.silu is the same
    # function in one. bench/ measured the decoder 1.1x faster on CPU and GPU, -22% GPU memory.
    _taming_model.nonlinearity = F.silu
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise UserError("taming is missing: pip install --no-deps taming-transformers-rom1504==0.0.6") from exc

VQ_TARGET = "taming.models.vqgan.VQModel"
GUMBEL_TARGET = "taming.models.vqgan.GumbelVQ"
MODEL_CHECKPOINT = "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint"
YAML_PATHS = ("configs/model.yaml", "model.yaml")  # released layout first, then flat
CKPT_PATHS = ("ckpts/last.ckpt", "last.ckpt")


def nearest_code(z: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, h, w) latents, (N, C) codebook -> (z_q (B, C, h, w), indices (B, h, w)).

    z_q equals the nearest codebook vectors in value but passes gradients straight through to z,
    which is what lets a text loss steer discrete tokens (VQ-VAE's straight-through estimator).
    Distances are float32 even under bf16 autocast: near-ties would otherwise pick wrong tokens.
    """
    b, c, h, w = z.shape
    real = z.device.type in ("cpu", "cuda")  # autocast knows no meta device (shape checks)
    with torch.autocast(z.device.type, enabled=False) if real else contextlib.nullcontext():
        flat = z.detach().float().permute(0, 2, 3, 1).reshape(-1, c)  # (B*h*w, C)
        book = codebook.detach().float()
        # |z - e|^2 = |z|^2 - 2 z.e + |e|^2, without materialising (B*h*w, N, C)
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ book.T + book.pow(2).sum(1)
        indices = dist.argmin(1).view(b, h, w)
    hard = F.embedding(indices, codebook).permute(0, 3, 1, 2).to(z.dtype)  # (B, C, h, w)
    return z + (hard - z).detach(), indices


class _Nearest:
    """Mixin for taming's quantizers: same parameters and keys, but calling one = `nearest_code`."""

    def forward(self, z):
        return nearest_code(z, self.codebook)


class _VectorQuantizer(_Nearest, VectorQuantizer2):
    codebook = property(lambda self: self.embedding.weight)  # (N, C)

    def __init__(self, n_embed: int, embed_dim: int):
        super().__init__(n_embed, embed_dim, beta=0.25)


class _GumbelQuantizer(_Nearest, GumbelQuantize):
    """Encoding takes argmax(proj(h)), not a Gumbel sample, so it is deterministic; after that
    canvases live in `embed` space exactly like plain VQ."""

    codebook = property(lambda self: self.embed.weight)  # (N, C)

    def __init__(self, z_channels: int, n_embed: int, embed_dim: int):
        super().__init__(z_channels, embed_dim, n_embed, kl_weight=1e-8, temp_init=1.0)


class _ClampWithGrad(torch.autograd.Function):
    """Clamp whose gradient still flows where it pulls a value back into range, so saturated pixels
    keep steering the latent (the classic VQGAN+CLIP notebook's `clamp_with_grad`)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(0, 1)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (grad * (x - x.clamp(0, 1)) >= 0)


class VQGAN(nn.Module):
    """Encoder, quantizer and decoder of a taming VQGAN; images are (B, 3, H, W) in [0, 1].

    `vqgan.quantize(z)` -> (z_q straight-through (B, C, h, w), indices (B, h, w)).
    """

    def __init__(self, ddconfig: dict, n_embed: int, embed_dim: int, gumbel: bool = False):
        super().__init__()
        self.ddconfig, self.gumbel, self.name = dict(ddconfig), gumbel, "vqgan"
        z_channels = ddconfig["z_channels"]
        if gumbel and z_channels != embed_dim:  # taming feeds quant_conv's output into proj
            raise ValueError(f"GumbelVQ needs z_channels == embed_dim, got {z_channels} and {embed_dim}")
        with contextlib.redirect_stdout(io.StringIO()):  # Decoder.__init__ prints the z shape
            self.encoder = Encoder(**ddconfig)
            self.decoder = Decoder(**ddconfig)
        self.quantize = (_GumbelQuantizer(z_channels, n_embed, embed_dim) if gumbel
                         else _VectorQuantizer(n_embed, embed_dim))
        self.quant_conv = nn.Conv2d(z_channels, embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, z_channels, 1)

    codebook = property(lambda self: self.quantize.codebook)  # (n_embed, embed_dim)
    n_embed = property(lambda self: self.codebook.shape[0])
    embed_dim = property(lambda self: self.codebook.shape[1])
    device = property(lambda self: self.codebook.device)

    # pixels per token side: every level after the first halves the resolution
    factor = property(lambda self: 2 ** (len(self.ddconfig["ch_mult"]) - 1))

    def freeze(self) -> "VQGAN":
        return self.eval().requires_grad_(False)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> latent (B, embed_dim, H/f, W/f) that `quantize` snaps to tokens:
        VQ's pre-quantisation latent after quant_conv; for Gumbel, whose pre-quant space feeds logits
        rather than codebook space, the codebook vectors of the argmax tokens."""
        z = self.quant_conv(self.encoder(images * 2 - 1))  # the model works in [-1, 1]
        return self.embed_indices(self.quantize.proj(z).argmax(1)) if self.gumbel else z

    def encode_indices(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> tokens (B, H/f, W/f)."""
        return self.quantize(self.encode(images))[1]

    def embed_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """tokens (B, h, w) -> codebook vectors (B, embed_dim, h, w)."""
        return F.embedding(indices, self.codebook).permute(0, 3, 1, 2)

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        """(B, embed_dim, h, w) -> (B, 3, h*f, w*f) in [0, 1]."""
        return _ClampWithGrad.apply((self.decoder(self.post_quant_conv(z_q)) + 1) / 2)

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        return self.decode(self.embed_indices(indices))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Reconstruction: images in [0, 1] -> images in [0, 1]."""
        return self.decode(self.quantize(self.encode(images))[0])


def build_vqgan(ddconfig: dict, n_embed: int, embed_dim: int, gumbel: bool = False) -> VQGAN:
    """A random VQGAN, frozen like a loaded one; a trainer calls `.requires_grad_(True).train()`."""
    return VQGAN(ddconfig, n_embed, embed_dim, gumbel=gumbel).freeze()


def _find(directory: Path, candidates: tuple[str, ...]) -> Path | None:
    return next((directory / c for c in candidates if (directory / c).is_file()), None)


def missing_vqgan_files(directory: str | os.PathLike) -> list[str]:
    """Released-layout names (relative to `directory`) of the files still to be put there."""
    return [names[0] for names in (YAML_PATHS, CKPT_PATHS) if _find(Path(directory), names) is None]


def _first_line(exc: BaseException) -> str:  # error messages stay one line
    return f"{type(exc).__name__}: " + (str(exc).strip().splitlines() or [""])[0][:200]


def _read_config(path: Path) -> tuple[dict, int, int, bool]:
    """model.yaml -> (ddconfig, n_embed, embed_dim, gumbel)."""
    try:
        model = OmegaConf.to_container(OmegaConf.load(path), resolve=True)["model"]
        target, params = model["target"], model["params"]
        ddconfig, n_embed, embed_dim = dict(params["ddconfig"]), params["n_embed"], params["embed_dim"]
    except Exception as exc:  # YAML syntax, missing keys, not a mapping
        raise UserError(f"cannot read VQGAN config {path} ({_first_line(exc)}): "
                        "use the configs/model.yaml that came with the checkpoint") from None
    if target not in (VQ_TARGET, GUMBEL_TARGET):
        raise UserError(f"{path}: model.target {target!r} is not {VQ_TARGET} or {GUMBEL_TARGET}")
    return ddconfig, int(n_embed), int(embed_dim), target == GUMBEL_TARGET


_STUBS: dict[str, type] = {}


def _lightning_stub(path: str) -> type:
    """A stand-in class that unpickles (and pickles) under a pytorch_lightning import path."""
    if path not in _STUBS:
        module, _, name = path.rpartition(".")
        _STUBS[path] = type(name, (), {"__module__": module, "__qualname__": name})
    return _STUBS[path]


ModelCheckpointStub = _lightning_stub(MODEL_CHECKPOINT)


def read_checkpoint(path: Path, mmap: bool = False) -> dict:
    """weights_only load of a (PL-style) checkpoint, allowing only pytorch_lightning globals. `mmap`
    leaves optimizer states on disk, but overwriting the file while its tensors live is a SIGBUS."""
    again = "download it again (a web page or an interrupted download is not a checkpoint)"
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception as exc:
        raise UserError(f"cannot read VQGAN checkpoint {path} ({_first_line(exc)}): {again}") from None
    foreign = sorted(g for g in unsafe if not g.startswith("pytorch_lightning."))
    if foreign:
        raise UserError(f"VQGAN checkpoint {path} refers to code we will not unpickle "
                        f"({', '.join(foreign)}): use the original taming-transformers last.ckpt")
    try:
        with torch.serialization.safe_globals([(_lightning_stub(g), g) for g in unsafe]):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:
        raise UserError(f"cannot read VQGAN checkpoint {path} ({_first_line(exc)}): {again}") from None


def _load_strict(model: VQGAN, ckpt: object, ckpt_path: Path, yaml_path: Path) -> None:
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise UserError(f"VQGAN checkpoint {ckpt_path} holds no state_dict: use taming's last.ckpt")
    state = {k: v for k, v in state.items() if not k.startswith("loss.")}  # LPIPS + discriminator
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and own[k].shape != getattr(state[k], "shape", None)]
    problems = [f"{len(missing)} missing keys (first: {missing[0]})"] if missing else []
    problems += [f"{len(unexpected)} unexpected keys (first: {unexpected[0]})"] if unexpected else []
    problems += [f"{len(wrong)} tensors of the wrong shape (first: {wrong[0]} {tuple(state[wrong[0]].shape)}"
                 f" vs {tuple(own[wrong[0]].shape)})"] if wrong else []
    if problems:
        raise UserError(f"VQGAN checkpoint {ckpt_path} does not match {yaml_path}: {'; '.join(problems)}: "
                        "keep last.ckpt and model.yaml from the same download")
    model.load_state_dict(state, strict=True)


def load_vqgan(directory: str | os.PathLike, device: str | torch.device = "cpu") -> VQGAN:
    """A released VQGAN folder (configs/model.yaml + ckpts/last.ckpt, or both flat) -> frozen VQGAN."""
    directory = Path(directory)
    name = directory.name
    if not directory.is_dir():
        raise UserError(f"VQGAN folder not found: put configs/ and ckpts/ from {name} in {directory}/")
    yaml_path, ckpt_path = _find(directory, YAML_PATHS), _find(directory, CKPT_PATHS)
    if yaml_path is None:
        raise UserError(f"VQGAN config not found: put model.yaml from {name} in {directory / 'configs'}/")
    if ckpt_path is None:
        raise UserError(f"VQGAN weights not found: put last.ckpt from {name} in {directory / 'ckpts'}/")
    ddconfig, n_embed, embed_dim, gumbel = _read_config(yaml_path)
    try:
        model = VQGAN(ddconfig, n_embed, embed_dim, gumbel=gumbel)
    except Exception as exc:  # unknown ddconfig keys, GroupNorm(32) divisibility, ...
        raise UserError(f"{yaml_path} describes no buildable VQGAN ({_first_line(exc)})") from None
    _load_strict(model, read_checkpoint(ckpt_path, mmap=True), ckpt_path, yaml_path)  # copies
    model.name = name
    model = model.freeze().to(device)
    if torch.device(device).type == "cpu":  # bench/: 1.1x faster decoder under bf16 on CPU, slower on CUDA
        model = model.to(memory_format=torch.channels_last)
    return model


class _LightningPickler(pickle._Pickler):
    """Writes stubs as their pytorch_lightning GLOBAL; the stock pickler would import the path."""

    def save_global(self, obj, name=None):
        if isinstance(obj, type) and _STUBS.get(f"{obj.__module__}.{obj.__qualname__}") is obj:
            self.write(pickle.GLOBAL + f"{obj.__module__}\n{obj.__qualname__}\n".encode())
            self.memoize(obj)
        else:
            super().save_global(obj, name)


_LIGHTNING_PICKLE = types.SimpleNamespace(__name__="lightning_pickle", Pickler=_LightningPickler)


def save_vqgan(model: VQGAN, directory: str | os.PathLike, global_step: int = 0, epoch: int = 0,
               extra_state: dict | None = None, optimizer_states: list | None = None) -> Path:
    """Write `configs/model.yaml` + `ckpts/last.ckpt` shaped like pytorch-lightning 1.0.8's files;
    `extra_state` adds tensors to the state dict (e.g. a trainer's `loss.*` discriminator)."""
    directory = Path(directory)
    (directory / "configs").mkdir(parents=True, exist_ok=True)
    (directory / "ckpts").mkdir(exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    ckpt = {  # key order of PL 1.0.8's CheckpointConnector.dump_checkpoint
        "epoch": epoch, "global_step": global_step, "pytorch-lightning_version": "1.0.8",
        "callbacks": {ModelCheckpointStub: {"best_model_score": None, "best_model_path": ""}},
        "optimizer_states": list(optimizer_states or []), "lr_schedulers": [],
        "state_dict": {**state, **(extra_state or {})},
    }
    params = {"embed_dim": model.embed_dim, "n_embed": model.n_embed, "ddconfig": model.ddconfig,
              "lossconfig": {"target": "taming.modules.losses.vqperceptual.DummyLoss"}}
    if model.gumbel:  # what taming's GumbelVQ.__init__ requires besides the above
        schedule = {"warm_up_steps": 0, "max_decay_steps": 1000001, "lr_start": 0.9, "lr_max": 0.9, "lr_min": 1e-6}
        params.update(kl_weight=1e-8, temperature_scheduler_config={
            "target": "taming.lr_scheduler.LambdaWarmUpCosineScheduler", "params": schedule})
    config = {"model": {"target": GUMBEL_TARGET if model.gumbel else VQ_TARGET, "params": params}}
    tmp = directory / "ckpts" / "last.ckpt.tmp"  # never leave a half-written last.ckpt behind
    torch.save(ckpt, tmp, pickle_module=_LIGHTNING_PICKLE)
    tmp.replace(directory / "ckpts" / "last.ckpt")
    OmegaConf.save(OmegaConf.create(config), directory / "configs" / "model.yaml")
    return directory
