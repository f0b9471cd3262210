"""BriVL (Fei et al., Nature Communications 2022), rebuilt to load `neilfei/brivl-nmi` checkpoints.

The module tree and parameter names follow the official code, so the released
`brivl-with-roberta-base.pth` (`{'learnable': state_dict}`) loads strictly into `build_brivl_learnable`'s
`nn.ModuleDict`. Sizes are inferred from tensor shapes, so a RoBERTa-large file or a small demo model
saved by `save_brivl` load the same way. Where the official code made an odd choice (no BERT attention
mask, `align_corners=False` with a theta made for `True`) we keep it: the weights were trained with it.

Image: EfficientNet features -> 37 boxes (6x6 grid + whole image) pooled by an affine grid -> 1x1 conv
-> L2 per region -> transformer over regions -> mean -> fc1/ReLU/fc2. Text: BERT tokens -> L2 per
token -> transformer -> masked mean -> fc1/ReLU/fc2. Both end in the same 2048-d space.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from imagination.errors import UserError
from imagination.models.base import Encoder

OFFICIAL_CHECKPOINT = "brivl-with-roberta-base.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_LEGACY_KEY = "bert.embeddings.position_ids"  # persistent buffer before transformers 4.31, gone now
_VOCAB_HINT = "vocab.txt (from hfl/chinese-roberta-wwm-ext)"
_INT_KEYS = ("IMG_SIZE", "GRID_SIZE", "BOX_GRID", "MAX_TEXT_LEN", "IMG_TRANSFORMER_HEAD", "TEXT_TRANSFORMER_HEAD",
             "BERT_HEADS")

# MODEL section of neilfei/brivl-nmi cfg/eval.yml, used for keys a folder's config.yml leaves out.
# MAX_TEXT_LEN is 32, not the cfg's 80: example.py lowers it to its --max_text_len default (32), and
# because BERT runs without an attention mask the embedding depends on that length (see TextLearnableEncoder).
DEFAULT_TEXT_LEN = 32
DEFAULT_CONFIG: dict = {
    "NAME": "VL", "ENCODER": "hfl/chinese-roberta-wwm-ext", "TEXT_FEATURE_DIM": 768,
    "TEXT_TRANSFORMER_HEAD": 4, "TEXT_TRANSFORMER_LAYER": 4, "MAX_TEXT_LEN": DEFAULT_TEXT_LEN,
    "CNN": "tf_efficientnet_b5_ns", "IMG_SIZE": 456, "IMG_FEATURE_DIM": 2048, "IMG_TRANSFORMER_HEAD": 4,
    "IMG_TRANSFORMER_LAYER": 4, "MAX_IMG_LEN": 37, "BOX_GRID": 6, "TOPK": 1, "QUEUE_SIZE": 9600,
    "MOMENTUM": 0.99, "TEMPERATURE": 0.07, "GRID_SIZE": 4,
}


# --- RoI grid pooling ---------------------------------------------------------------------------
def grid_boxes(img_size: int, box_grid: int) -> torch.Tensor:
    """(box_grid**2 + 1, 4) float64 boxes [x1, y1, x2, y2] in pixels, as neilfei's datasets.py makes them.

    The outer index walks along x, so box 6*i + j is column i, row j (column-major); the last box
    is the whole image. float64 because the official numpy boxes are, and theta is computed in it.
    """
    s = img_size / box_grid
    boxes = [[i * s, j * s, (i + 1) * s, (j + 1) * s] for i in range(box_grid) for j in range(box_grid)]
    return torch.tensor(boxes + [[0.0, 0.0, float(img_size), float(img_size)]], dtype=torch.float64)


def box_theta(boxes: torch.Tensor, height: int, width: int, img_size: int) -> torch.Tensor:
    """(..., 4) pixel boxes -> (..., 2, 3) float32 affine matrices, the official formula.

    Boxes are scaled by IMG_SIZE / feature height (for x too, as upstream). The formula suits
    align_corners=True but the model was trained with PyTorch's default False, so sampling is
    shifted by half a cell and edge boxes partly read zero padding: keep it to match the weights.
    Computed in float64 on the CPU (as the float64 official boxes are), then cast.
    """
    x1, y1, x2, y2 = (boxes.detach().to("cpu", torch.float64) / (img_size / height)).unbind(-1)
    zero = torch.zeros_like(x1)
    theta = torch.stack([(x2 - x1) / (width - 1), zero, (x1 + x2 - width + 1) / (width - 1),
                         zero, (y2 - y1) / (height - 1), (y1 + y2 - height + 1) / (height - 1)], dim=-1)
    return theta.view(*theta.shape[:-1], 2, 3).float()


def sampling_matrix(boxes: torch.Tensor, height: int, width: int, img_size: int, grid_size: int,
                    device=None) -> torch.Tensor:
    """(K, 4) boxes -> (H*W, K): the bilinear weights with which each box's G*G samples average the map.

    Bilinear sampling with zero padding is linear in the feature map, and the default boxes are the
    same for every image, so the official affine_grid + grid_sample + AvgPool collapses to one fixed
    matrix. It is computed by running exactly that sampling on the H*W one-hot basis maps.
    """
    k, g = boxes.shape[0], grid_size
    theta = box_theta(boxes, height, width, img_size)  # (K, 2, 3)
    grid = F.affine_grid(theta, [k, 1, g, g], align_corners=False).view(1, k * g, g, 2)  # (1, K*G, G, 2)
    basis = torch.eye(height * width).view(1, height * width, height, width)  # one-hot maps
    samples = F.grid_sample(basis, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return samples.view(height * width, k, g * g).mean(-1).to(device)  # (H*W, K)


def roi_pool(feature_map: torch.Tensor, boxes: torch.Tensor, max_pool: nn.Sequential,
             img_size: int, grid_size: int) -> torch.Tensor:
    """(B, C, H, W) features, (B or 1, K, 4) boxes -> (B, K, C): the official pooling, batched.

    Boxes shared by the batch (the fixed 37-box grid): one matrix product with `sampling_matrix`,
    forward and backward. Per-image boxes (detector boxes): all B*K sampling grids from one
    affine_grid call, stacked along the output height so one grid_sample reads the (B, C, H, W) map
    directly (no K-fold copy of the features). Either way `max_pool` (Conv1x1 then AvgPool(G), both
    linear) is applied as average-then-conv: the same function with G*G times fewer conv FLOPs.
    """
    b, c, h, w = feature_map.shape  # (B, C, H, W)
    k, g = boxes.shape[-2], grid_size
    if boxes.shape[0] == 1 or boxes.dim() == 2:
        weights = sampling_matrix(boxes.reshape(k, 4), h, w, img_size, g, feature_map.device)  # (H*W, K)
        cells = (feature_map.flatten(2) @ weights.to(feature_map.dtype)).transpose(1, 2)  # (B, K, C)
    else:
        theta = box_theta(boxes, h, w, img_size).to(feature_map.device)  # (B, K, 2, 3)
        grid = F.affine_grid(theta.view(b * k, 2, 3), [b * k, c, g, g], align_corners=False)  # (B*K, G, G, 2)
        grid = grid.view(b, k * g, g, 2).to(feature_map.dtype)  # (B, K*G, G, 2)
        samples = F.grid_sample(feature_map, grid, mode="bilinear", padding_mode="zeros",
                                align_corners=False)  # (B, C, K*G, G)
        cells = samples.view(b, c, k, g * g).mean(-1).transpose(1, 2)  # (B, K, C): AvgPool(G) of each box
    conv = max_pool[0]
    return F.linear(cells, conv.weight.flatten(1), conv.bias)  # (B, K, C): the 1x1 conv


def roi_pool_per_image_reference(feature_map: torch.Tensor, boxes: torch.Tensor, max_pool: nn.Sequential,
                                 img_size: int, grid_size: int) -> torch.Tensor:
    """The official per-image loop (vl_model.py `roi_grid_pool`), kept as ground truth for tests and
    the speed benchmark: theta in the boxes' dtype, features expanded K times, conv then AvgPool."""
    b, c, h, w = feature_map.shape
    boxes = boxes.expand(b, *boxes.shape[-2:])  # (B, K, 4)
    out = []
    for i in range(b):
        x1, y1, x2, y2 = (boxes[i].detach() / (img_size / h)).unbind(-1)  # (K,) each
        zero = torch.zeros_like(x1)
        theta = torch.stack((
            (x2 - x1) / (w - 1), zero, (x1 + x2 - w + 1) / (w - 1),
            zero, (y2 - y1) / (h - 1), (y1 + y2 - h + 1) / (h - 1),
        ), dim=1).view(-1, 2, 3).float().to(feature_map.device)  # (K, 2, 3)
        k = theta.shape[0]
        grid = F.affine_grid(theta, [k, c, grid_size, grid_size], align_corners=False)  # (K, G, G, 2)
        crops = F.grid_sample(feature_map[i:i + 1].expand(k, c, h, w), grid,
                              align_corners=False)  # (K, C, G, G)
        out.append(max_pool(crops).flatten(1))  # (K, C)
    return torch.stack(out)  # (B, K, C)


# --- modules with the official names ------------------------------------------------------------
class FakeTransformer(nn.Module):
    """fc1 -> ReLU -> fc2; the official name for the projection heads."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int):
        super().__init__()
        self.fc1, self.relu, self.fc2 = nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu(self.fc1(x)))


def _transformer(width: int, heads: int, layers: int, ffn: int) -> nn.TransformerEncoder:
    # Torch defaults as upstream: post-norm, ReLU, dropout 0.1, sequence-first. No nested tensors:
    # they need batch_first, and turning them off only silences a warning.
    layer = nn.TransformerEncoderLayer(d_model=width, nhead=heads, dim_feedforward=ffn)
    return nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)


def _attend_and_pool(att: nn.TransformerEncoder, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(B, L, D) unit vectors, (B, L) bool -> (B, D): transformer with a padding mask, masked mean."""
    y = att(x.transpose(0, 1), src_key_padding_mask=~valid).transpose(0, 1)  # (B, L, D)
    weight = valid.to(y.dtype).unsqueeze(-1)  # (B, L, 1)
    return (y * weight).sum(1) / weight.sum(1)  # (B, D)


def _timm_name(name: str) -> str:
    import timm

    # timm >= 0.9 renamed tf_efficientnet_*_ns to pretrained tags; architecture and names are unchanged.
    return name[:-3] if name.endswith("_ns") and timm.is_model(name[:-3]) else name


class ImgLearnableEncoder(nn.Module):
    """Image tower: `backbone` (timm CNN) + `learnable` {imgFC, imgAtt, max_pool}, as upstream."""

    def __init__(self, cfg: Mapping):
        super().__init__()
        import timm

        self.cnn, self.img_size = cfg["CNN"], int(cfg["IMG_SIZE"])
        self.grid_size, self.box_grid = int(cfg["GRID_SIZE"]), int(cfg["BOX_GRID"])
        # pretrained=False always (no downloads): every backbone weight is in the checkpoint, the
        # 1000-class classifier included, so the default num_classes is kept.
        self.backbone = timm.create_model(_timm_name(self.cnn), pretrained=False)
        width = self.backbone.num_features  # = IMG_FEATURE_DIM: the 1x1 conv reads the CNN features
        self.learnable = nn.ModuleDict({
            "imgFC": FakeTransformer(width, width, width),
            "imgAtt": _transformer(width, int(cfg["IMG_TRANSFORMER_HEAD"]), int(cfg["IMG_TRANSFORMER_LAYER"]),
                                   int(cfg.get("IMG_FFN_DIM", 2048))),
            "max_pool": nn.Sequential(nn.Conv2d(width, width, kernel_size=1),
                                      nn.AvgPool2d(self.grid_size, stride=1)),
        })

    def forward(self, pixels: torch.Tensor, boxes: torch.Tensor | None = None,
                img_len: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 3, S, S) normalised pixels -> (B, D) unnormalised. Default boxes: the fixed 37-box grid."""
        fmap = self.backbone.forward_features(pixels)  # (B, C, S/32, S/32)
        if boxes is None:
            boxes = grid_boxes(self.img_size, self.box_grid).unsqueeze(0)  # (1, 37, 4)
        regions = roi_pool(fmap, boxes, self.learnable["max_pool"], self.img_size, self.grid_size)  # (B,K,C)
        k = regions.shape[1]
        lengths = torch.full((regions.shape[0], 1), k) if img_len is None else img_len.view(-1, 1)  # (B, 1)
        valid = torch.arange(k, device=regions.device) < lengths.to(regions.device)  # (B, K)
        pooled = _attend_and_pool(self.learnable["imgAtt"], F.normalize(regions, dim=-1), valid)  # (B, C)
        return self.learnable["imgFC"](pooled)  # (B, D)


class Bert(nn.Module):
    """Holds `bert` so keys read `backbone.bert.*`, as upstream's models/bert.py."""

    def __init__(self, bert_config):
        super().__init__()
        from transformers import BertModel

        self.bert = BertModel(bert_config, add_pooling_layer=True)  # pooler unused but in the checkpoint

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        # input_ids only, like upstream: no attention_mask (BERT attends to [PAD] too) and default
        # all-zero token types. The weights were trained this way; adding a mask would change them.
        return self.bert(input_ids=input_ids).last_hidden_state  # (N, L, H)


class TextLearnableEncoder(nn.Module):
    """Text tower: `backbone.bert` (BertModel) + `learnable` {textFC, textAtt}, as upstream.

    The padding mask reaches only `textAtt` and the mean; BERT itself sees the [PAD] tokens, so the
    same sentence embeds differently at another MAX_TEXT_LEN. Use the length the model is used with.
    """

    def __init__(self, cfg: Mapping):
        super().__init__()
        from transformers import BertConfig

        width, out = int(cfg["TEXT_FEATURE_DIM"]), int(cfg["IMG_FEATURE_DIM"])
        self.backbone = Bert(BertConfig(
            vocab_size=int(cfg["BERT_VOCAB_SIZE"]), hidden_size=width,
            num_hidden_layers=int(cfg["BERT_LAYERS"]), num_attention_heads=int(cfg["BERT_HEADS"]),
            intermediate_size=int(cfg["BERT_INTERMEDIATE"]),
            max_position_embeddings=int(cfg["BERT_MAX_POSITIONS"]),
            type_vocab_size=int(cfg.get("BERT_TYPE_VOCAB", 2)),
            attn_implementation="eager",  # SDPA is close but not bit-identical to the original
        ))
        self.learnable = nn.ModuleDict({
            "textFC": FakeTransformer(width, out, out),
            "textAtt": _transformer(width, int(cfg["TEXT_TRANSFORMER_HEAD"]), int(cfg["TEXT_TRANSFORMER_LAYER"]),
                                    int(cfg.get("TEXT_FFN_DIM", 2048))),
        })

    def forward(self, input_ids: torch.Tensor, text_len: torch.Tensor) -> torch.Tensor:
        """(N, L) token ids, (N,) counts of non-pad tokens -> (N, D) unnormalised."""
        tokens = F.normalize(self.backbone(input_ids), dim=-1)  # (N, L, H)
        valid = torch.arange(input_ids.shape[1], device=input_ids.device) < text_len.view(-1, 1)  # (N, L)
        return self.learnable["textFC"](_attend_and_pool(self.learnable["textAtt"], tokens, valid))  # (N, D)


def _full_config(config: Mapping) -> dict:
    """eval.yml-style keys (flat or under MODEL) over the public defaults."""
    section = config["MODEL"] if isinstance(config.get("MODEL"), Mapping) else config
    return {**DEFAULT_CONFIG, **section}


def _build(cfg: Mapping, twins_device=None) -> nn.ModuleDict:
    img = ImgLearnableEncoder(cfg)
    cfg = {**cfg, "IMG_FEATURE_DIM": img.backbone.num_features}  # textFC must end in the image's space
    text = TextLearnableEncoder(cfg)
    if twins_device is None:  # trainable: twins are frozen copies, as upstream's init_param
        img_mom = copy.deepcopy(img).requires_grad_(False)
        text_mom = copy.deepcopy(text).requires_grad_(False)
    else:
        with torch.device(twins_device):
            img_mom, text_mom = ImgLearnableEncoder(cfg), TextLearnableEncoder(cfg)
    return nn.ModuleDict({"imgencoder": img, "imgencoder_mom": img_mom,
                          "textencoder": text, "textencoder_mom": text_mom})


def build_brivl_learnable(config: Mapping, vocab_size: int = 21128, bert_layers: int = 12,
                          bert_heads: int | None = None, bert_intermediate: int | None = None,
                          max_positions: int = 512, ffn_dim: int = 2048, device=None) -> nn.ModuleDict:
    """A fresh, randomly initialised `learnable` ModuleDict (all four encoders) in the official layout.

    `config` holds eval.yml keys (flat or under MODEL; missing ones default to the public cfg).
    TEXT_FEATURE_DIM is the BERT width; IMG_FEATURE_DIM is taken from the CNN. bert_heads defaults to
    width // 64, bert_intermediate to 4 * width; ffn_dim is the region/token transformers' FFN width
    (2048 upstream). Train `imgencoder`/`textencoder`, then `save_brivl`. device="meta" builds shapes only.
    """
    cfg = _full_config(config)
    width = int(cfg["TEXT_FEATURE_DIM"])
    cfg.update(BERT_VOCAB_SIZE=vocab_size, BERT_LAYERS=bert_layers, BERT_HEADS=bert_heads or width // 64,
               BERT_INTERMEDIATE=bert_intermediate or 4 * width, BERT_MAX_POSITIONS=max_positions,
               IMG_FFN_DIM=ffn_dim, TEXT_FFN_DIM=ffn_dim)
    with torch.device(device or "cpu"):
        return _build(cfg)


# --- the encoder --------------------------------------------------------------------------------
class BriVLEncoder(Encoder):
    """BriVL behind the common `Encoder` interface (Chinese text, ImageNet-normalised square images)."""

    name = "brivl"
    languages = ("zh",)
    mean, std = IMAGENET_MEAN, IMAGENET_STD

    def __init__(self, imgencoder: ImgLearnableEncoder, textencoder: TextLearnableEncoder, tokenizer,
                 cfg: Mapping):
        super().__init__()
        self.learnable = nn.ModuleDict({"imgencoder": imgencoder, "textencoder": textencoder})
        self.tokenizer, self.config = tokenizer, dict(cfg)
        self.input_size = int(cfg["IMG_SIZE"])  # the base class resizes to it (bilinear, no antialias)
        self.max_text_len = int(cfg["MAX_TEXT_LEN"])
        self.embed_dim = imgencoder.learnable["imgFC"].fc2.out_features
        self.ignored_keys: tuple[str, ...] = ()  # checkpoint keys dropped on load (legacy position_ids)
        self.freeze()

    def neuron_layers(self) -> dict[str, int]:
        """The CNN stages of the image tower (timm's feature_info) and its final 1x1 conv head."""
        backbone = self.learnable["imgencoder"].backbone
        layers = {f"learnable.imgencoder.backbone.{info['module']}": info["num_chs"]
                  for info in backbone.feature_info}
        layers["learnable.imgencoder.backbone.conv_head"] = backbone.num_features
        return layers

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (N, MAX_TEXT_LEN) ids ([CLS] ... [SEP] [PAD]...; longer texts are cut), (N,) lengths."""
        enc = self.tokenizer(texts, padding="max_length", truncation=True, max_length=self.max_text_len,
                             return_tensors="pt")
        return enc.input_ids, enc.attention_mask.sum(1)

    def _embed_text(self, texts: list[str]) -> torch.Tensor:
        ids, lengths = self.tokenize(texts)
        return self.learnable["textencoder"](ids.to(self.device), lengths.to(self.device))  # (N, D)

    def _embed_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.learnable["imgencoder"](pixels)  # (B, D)

    def set_grad_checkpointing(self, enable: bool = True) -> "BriVLEncoder":
        """Recompute CNN activations in the backward pass instead of storing them.

        B5 at 456 px keeps ~1.2 GiB of activations per image for the pixel gradient (H100, fp32:
        48 cutouts peak at 60 GiB); with checkpointing 128 cutouts peak at 23 GiB, ~40% slower.
        """
        self.learnable["imgencoder"].backbone.set_grad_checkpointing(enable)
        return self


# --- files --------------------------------------------------------------------------------------
def _folder_problems(directory: Path) -> tuple[list[str], Path | None, Path | None]:
    """-> (one-line problems, checkpoint, vocab). Shared by the loader and `missing_brivl_files`."""
    where = f"{directory}/"
    if not directory.is_dir():
        return [f"BriVL folder {where} not found: create it and put {OFFICIAL_CHECKPOINT} "
                f"(from neilfei/brivl-nmi) and {_VOCAB_HINT} in it"], None, None
    problems, ckpt = [], None
    pths = sorted(directory.glob("*.pth"))
    if not pths:
        problems.append(f"BriVL checkpoint not found: put {OFFICIAL_CHECKPOINT} (from neilfei/brivl-nmi) "
                        f"in {where}")
    elif len(pths) > 1:
        names = ", ".join(p.name for p in pths)
        problems.append(f"BriVL folder {where} holds {len(pths)} checkpoints ({names}): keep exactly one .pth there")
    else:
        ckpt = pths[0]
    vocab = next((p for p in (directory / "vocab.txt", directory / "chinese-roberta-wwm-ext" / "vocab.txt")
                  if p.is_file()), None)
    if vocab is None:
        problems.append(f"BriVL vocabulary not found: put {_VOCAB_HINT} in {where}")
    return problems, ckpt, vocab


def missing_brivl_files(directory: str | Path) -> list[str]:
    """The files a BriVL folder still lacks, as paths like the other families' (empty when ready);
    a folder with several checkpoints says so. config.yml is optional: without it the public eval.yml
    values are used."""
    directory = Path(directory)
    problems, ckpt, vocab = _folder_problems(directory)
    if not problems:
        return []
    several = [p for p in problems if "checkpoints (" in p]
    return several + ([] if ckpt or several else [f"{directory}/{OFFICIAL_CHECKPOINT}"]) + \
        ([] if vocab else [f"{directory}/vocab.txt"])


def _read_config(directory: Path) -> dict:
    path = directory / "config.yml"
    if not path.is_file():
        return _full_config({})
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(f"BriVL config {path} is not valid YAML ({type(exc).__name__}): "
                        "fix it or copy cfg/eval.yml from neilfei/brivl-nmi") from None
    if not isinstance(data, Mapping):
        raise UserError(f"BriVL config {path} must hold a MODEL mapping like cfg/eval.yml of neilfei/brivl-nmi")
    cfg = _full_config(data)
    bad = [k for k in _INT_KEYS if k in cfg and (not isinstance(cfg[k], int) or cfg[k] < 1)]
    if bad or not isinstance(cfg["CNN"], str):
        raise UserError(f"BriVL config {path}: {', '.join(bad) or 'CNN'} must be "
                        f"{'positive integers' if bad else 'a timm model name'}, as in cfg/eval.yml")
    return cfg


def _read_learnable(path: Path) -> dict[str, torch.Tensor]:
    hint = f"download {OFFICIAL_CHECKPOINT} (from neilfei/brivl-nmi) again"
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:
            unsafe = []
        if unsafe:
            raise UserError(f"BriVL checkpoint {path} pickles objects other than tensors ({', '.join(unsafe)}): "
                            "if you trust it, re-save only {'learnable': state_dict} with torch.save") from None
        raise UserError(f"BriVL checkpoint {path} could not be read ({type(exc).__name__}): it is damaged or "
                        f"not a PyTorch file; {hint}") from None
    learnable = ckpt.get("learnable") if isinstance(ckpt, dict) else None
    if not isinstance(learnable, Mapping) or not all(isinstance(v, torch.Tensor) for v in learnable.values()):
        raise UserError(f"BriVL checkpoint {path} is not a BriVL file (expected a dict whose 'learnable' "
                        f"entry is a state dict): {hint}")
    return {k: v.float() if v.is_floating_point() else v for k, v in learnable.items()}


def _infer_config(cfg: Mapping, sd: Mapping[str, torch.Tensor], path) -> dict:
    """Overwrite every size the tensors determine; only head counts and CNN come from the config."""
    def shape(key: str) -> torch.Size:
        if key not in sd:
            raise UserError(f"BriVL checkpoint {path} lacks {key}: it is not a BriVL checkpoint; "
                            f"put {OFFICIAL_CHECKPOINT} (from neilfei/brivl-nmi) there")
        return sd[key].shape

    def depth(prefix: str) -> int:
        return 1 + max((int(k[len(prefix):].split(".")[0]) for k in sd if k.startswith(prefix)), default=-1)

    img, text, bert = "imgencoder.learnable.", "textencoder.learnable.", "textencoder.backbone.bert."
    vocab, width = shape(bert + "embeddings.word_embeddings.weight")
    out = dict(cfg)
    out.update(
        IMG_FEATURE_DIM=shape(img + "imgFC.fc1.weight")[1],
        TEXT_FEATURE_DIM=shape(text + "textFC.fc1.weight")[1],
        IMG_TRANSFORMER_LAYER=depth(img + "imgAtt.layers."),
        TEXT_TRANSFORMER_LAYER=depth(text + "textAtt.layers."),
        IMG_FFN_DIM=shape(img + "imgAtt.layers.0.linear1.weight")[0],
        TEXT_FFN_DIM=shape(text + "textAtt.layers.0.linear1.weight")[0],
        BERT_VOCAB_SIZE=vocab, BERT_LAYERS=depth(bert + "encoder.layer."),
        BERT_INTERMEDIATE=shape(bert + "encoder.layer.0.intermediate.dense.weight")[0],
        BERT_MAX_POSITIONS=shape(bert + "embeddings.position_embeddings.weight")[0],
        BERT_TYPE_VOCAB=shape(bert + "embeddings.token_type_embeddings.weight")[0],
    )
    out["BERT_HEADS"] = cfg.get("BERT_HEADS") or width // 64  # not in eval.yml: 64-wide heads, 12 base / 16 large
    return out


def _mismatch(model_sd: Mapping, file_sd: Mapping) -> str:
    """'' when keys and shapes match exactly, else a short description."""
    missing = sorted(set(model_sd) - set(file_sd))
    unexpected = sorted(set(file_sd) - set(model_sd))
    shapes = [f"{k} {tuple(file_sd[k].shape)} vs {tuple(v.shape)}"
              for k, v in model_sd.items() if k in file_sd and file_sd[k].shape != v.shape]
    parts = [f"{len(items)} {what} (e.g. {', '.join(items[:2])})"
             for what, items in (("missing key(s)", missing), ("unexpected key(s)", unexpected),
                                 ("shape mismatch(es)", shapes)) if items]
    return "; ".join(parts)


def load_brivl(directory: str | Path, device="cpu", max_text_len: int | None = None) -> BriVLEncoder:
    """Load a BriVL folder (one *.pth, vocab.txt, optional config.yml) into a frozen BriVLEncoder.

    The state dict is loaded strictly into the full official ModuleDict (so every key is checked);
    the momentum twins are built on the meta device and dropped after the check, as inference never
    uses them.

    The text length is an inference setting, not part of the architecture, and one rule sets it: 32
    tokens, as the official example.py embeds, unless `max_text_len` says otherwise. A MAX_TEXT_LEN in
    config.yml is not used: the README has users copy the official cfg/eval.yml there, whose 80 is the
    training length, and the same sentence embeds differently at 80 (cosine 0.98-0.99 to 32).
    """
    directory = Path(directory)
    problems, ckpt_path, vocab_path = _folder_problems(directory)
    if problems:
        raise UserError("; ".join(problems))
    cfg = _read_config(directory)
    source = directory / "config.yml" if (directory / "config.yml").is_file() else "the eval.yml defaults"
    sd = _read_learnable(ckpt_path)
    ignored = tuple(k for k in sd if k.endswith(_LEGACY_KEY))
    for key in ignored:
        del sd[key]
    cfg = _infer_config(cfg, sd, ckpt_path)
    cfg["MAX_TEXT_LEN"] = int(max_text_len if max_text_len is not None
                              else min(DEFAULT_TEXT_LEN, cfg["BERT_MAX_POSITIONS"]))
    if not 2 <= cfg["MAX_TEXT_LEN"] <= cfg["BERT_MAX_POSITIONS"]:
        raise UserError(f"BriVL text length {cfg['MAX_TEXT_LEN']} must lie in 2..{cfg['BERT_MAX_POSITIONS']}, "
                        "the checkpoint's BERT positions")
    tokenizer = _tokenizer(vocab_path, cfg, directory)
    try:
        learnable = _build(cfg, twins_device="meta")
    except Exception as exc:  # unknown timm name, heads that do not divide a width, ...
        raise UserError(f"BriVL model from {source} cannot be built ({str(exc).splitlines()[0][:120]}): "
                        "check CNN and the *_HEAD values in config.yml") from None
    problem = _mismatch(learnable.state_dict(), sd)
    if problem:
        raise UserError(f"BriVL checkpoint {ckpt_path} does not fit the model from {source} (CNN {cfg['CNN']}): "
                        f"{problem}; put the checkpoint's own config.yml in {directory}/ "
                        f"or download {OFFICIAL_CHECKPOINT} again")
    learnable.load_state_dict(sd, strict=True, assign=True)  # strict: every key used, none missing
    encoder = BriVLEncoder(learnable["imgencoder"], learnable["textencoder"], tokenizer, cfg)
    encoder.ignored_keys = ignored
    return encoder.to(device)


def _tokenizer(vocab_path: Path, cfg: Mapping, directory: Path):
    from transformers import BertTokenizer

    # `vocab=`, not `vocab_file=`: transformers 5 ignores the latter and silently uses 5 tokens.
    try:
        tokenizer = BertTokenizer(vocab=str(vocab_path), model_max_length=cfg["BERT_MAX_POSITIONS"])
    except Exception as exc:
        raise UserError(f"BriVL vocabulary {vocab_path} could not be read ({type(exc).__name__}): "
                        f"put the {_VOCAB_HINT} in {directory}/") from None
    if len(tokenizer) != cfg["BERT_VOCAB_SIZE"]:
        raise UserError(f"BriVL vocabulary {vocab_path} has {len(tokenizer)} entries but the checkpoint has "
                        f"{cfg['BERT_VOCAB_SIZE']}: put the {_VOCAB_HINT} that belongs to it in {directory}/")
    return tokenizer


def _arch_from_modules(learnable: nn.ModuleDict) -> dict:
    """The config values the saved tensors cannot tell (CNN, sizes, head counts), read off the modules."""
    img, bert = learnable["imgencoder"], learnable["textencoder"].backbone.bert.config
    img_att = img.learnable["imgAtt"].layers[0].self_attn
    text_att = learnable["textencoder"].learnable["textAtt"].layers[0].self_attn
    return {"CNN": img.cnn, "IMG_SIZE": img.img_size, "GRID_SIZE": img.grid_size, "BOX_GRID": img.box_grid,
            "MAX_IMG_LEN": img.box_grid ** 2 + 1, "IMG_FEATURE_DIM": img.backbone.num_features,
            "TEXT_FEATURE_DIM": bert.hidden_size, "IMG_TRANSFORMER_HEAD": img_att.num_heads,
            "TEXT_TRANSFORMER_HEAD": text_att.num_heads, "BERT_HEADS": bert.num_attention_heads,
            "IMG_TRANSFORMER_LAYER": len(img.learnable["imgAtt"].layers),
            "TEXT_TRANSFORMER_LAYER": len(learnable["textencoder"].learnable["textAtt"].layers)}


def save_brivl(model_learnable: nn.ModuleDict, config: Mapping, vocab_path: str | Path,
               directory: str | Path, filename: str = "brivl.pth") -> Path:
    """Write a folder `load_brivl` reads: `{'learnable': state_dict}` + config.yml + vocab.txt.

    `model_learnable` needs `imgencoder` and `textencoder`; missing `_mom` twins are filled with
    copies so the file has upstream's layout. Architecture values in config.yml come from the
    modules; `config` supplies the rest (MAX_TEXT_LEN, ...). Returns the checkpoint path.
    """
    import yaml

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    others = [p.name for p in directory.glob("*.pth") if p.name != filename]
    if others:
        raise ValueError(f"{directory} already holds {others}; a BriVL folder must contain exactly one .pth")
    state = {k: v.detach().cpu() for k, v in model_learnable.state_dict().items()}
    for name in ("imgencoder", "textencoder"):
        if f"{name}_mom" not in model_learnable:
            # The same tensors, not copies: torch.save writes a shared storage once, so the file has
            # upstream's keys at half the size (the twins are never used for inference).
            twin = {f"{name}_mom{k[len(name):]}": v for k, v in state.items() if k.startswith(name + ".")}
            state.update(twin)
    cfg = {**{k: v for k, v in _full_config(config).items() if not k.startswith("BERT_")},
           **_arch_from_modules(model_learnable)}
    torch.save({"learnable": state}, directory / filename)
    text = yaml.safe_dump({"MODEL": cfg}, sort_keys=False, allow_unicode=True)
    (directory / "config.yml").write_text(text, encoding="utf-8")
    vocab_path = Path(vocab_path)
    if vocab_path.resolve() != (directory / "vocab.txt").resolve():
        shutil.copyfile(vocab_path, directory / "vocab.txt")
    return directory / filename
