"""The Audio Spectrogram Transformer (Gong et al., 2021) on a current timm, in one file.

A DeiT-base distilled ViT whose patch embedding reads a 1-channel fbank with overlapping
16x16 patches (stride 10 in both axes for the AudioSet model), cls and distillation tokens,
and a head ``LayerNorm + Linear`` applied to the mean of the two token outputs.

Two weight formats load into it:
- the authors' checkpoint (``audio_mdl.pth`` / ``audioset_10_10_0.4593.pth``), saved from a
  ``DataParallel`` model: keys ``module.v.*`` and ``module.mlp_head.*``;
- Hugging Face ``ASTForAudioClassification`` weights (q/k/v separate), converted on load.
Loading is strict: a missing, left-over or misshapen tensor is an error that names it.
"""

import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from timm.models.vision_transformer import Block
from torch import nn

from stemeval.weights.checks import CheckpointError, check_shapes, hf_labels
from stemeval.weights.safe_load import NotWeights, PickledObjects, load_tensors, state_dict_of

# Imported inside the functions that use them, so that what needs none of them starts without them:
# safetensors.

PATCH = 16
MEL_BINS = 128
INPUT_FRAMES = 1024
HEAD_DIM = 64  # every DeiT size (tiny 192/3, small 384/6, base 768/12) has 64-wide heads

# The authors' checkpoint keeps the ImageNet heads of the timm DeiT it started from; unused.
IMAGENET_HEAD_KEYS = ("v.head.weight", "v.head.bias", "v.head_dist.weight", "v.head_dist.bias")


@dataclass(frozen=True)
class ASTConfig:
    """The model's size; the AudioSet AST is the default."""

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_hidden: int = 3072
    fstride: int = 10
    tstride: int = 10
    input_fdim: int = MEL_BINS
    input_tdim: int = INPUT_FRAMES
    num_classes: int = 527
    norm_eps: float = 1e-6  # timm's DeiT LayerNorms (Hugging Face's port uses 1e-12)
    head_norm_eps: float = 1e-5  # torch's LayerNorm default, as in the authors' mlp_head

    @property
    def grid(self):
        """Patches along frequency and time."""
        return ((self.input_fdim - PATCH) // self.fstride + 1,
                (self.input_tdim - PATCH) // self.tstride + 1)

    @property
    def num_patches(self):
        freq, time = self.grid
        return freq * time


class PatchEmbed(nn.Module):
    """Overlapping 16x16 patches of a 1-channel spectrogram, projected to the embedding."""

    def __init__(self, config):
        super().__init__()
        self.proj = nn.Conv2d(1, config.embed_dim, kernel_size=PATCH,
                              stride=(config.fstride, config.tstride))

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class DistilledViT(nn.Module):
    """The DeiT distilled backbone: tokens, position embedding, blocks, final norm."""

    def __init__(self, config):
        super().__init__()
        dim = config.embed_dim
        self.patch_embed = PatchEmbed(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_patches + 2, dim))
        norm = partial(nn.LayerNorm, eps=config.norm_eps)
        self.blocks = nn.ModuleList(
            Block(dim, config.num_heads, mlp_ratio=config.mlp_hidden / dim, qkv_bias=True,
                  norm_layer=norm)
            for _ in range(config.depth))
        self.norm = norm(dim)

    def forward(self, x):
        x = self.patch_embed(x)
        batch = x.shape[0]
        tokens = (self.cls_token.expand(batch, -1, -1), self.dist_token.expand(batch, -1, -1))
        x = torch.cat((*tokens, x), dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class ASTModel(nn.Module):
    """Fbank batch ``[B, frames, mel bins]`` -> AudioSet logits ``[B, classes]``."""

    def __init__(self, config=ASTConfig()):
        super().__init__()
        self.config = config
        self.v = DistilledViT(config)
        self.mlp_head = nn.Sequential(nn.LayerNorm(config.embed_dim, eps=config.head_norm_eps),
                                      nn.Linear(config.embed_dim, config.num_classes))

    def pooled(self, fbank):
        """The token the head reads: the mean of the cls and distillation tokens after the
        final norm (Hugging Face's ``pooler_output``); the stem's embedding."""
        x = self.v(fbank.unsqueeze(1).transpose(2, 3))
        return (x[:, 0] + x[:, 1]) / 2

    def forward(self, fbank):
        return self.mlp_head(self.pooled(fbank))


def _strides_from_patches(num_patches):
    """Equal frequency/time stride and input frames that give ``num_patches`` patches.

    Several strides can factor the same count; the one whose grid fits the AudioSet input
    of 1024 frames wins, as every released AST (strides 10, 12, 14, 16) was trained on it.
    """
    candidates, audioset = [], []
    for stride in range(1, PATCH + 1):
        freq = (MEL_BINS - PATCH) // stride + 1
        if num_patches % freq:
            continue
        time = num_patches // freq
        if (INPUT_FRAMES - PATCH) // stride + 1 == time:
            audioset.append((stride, INPUT_FRAMES))
        candidates.append((stride, (time - 1) * stride + PATCH))
    for found in (audioset, candidates):
        if len(found) == 1:
            return found[0]
    raise CheckpointError(
        f"cannot tell the patch stride from a position embedding of {num_patches} patches")


def config_from_state_dict(state):
    """Read the model's size from the tensors of a state dict in this module's key names."""
    try:
        embed_dim = state["v.pos_embed"].shape[2]
        num_patches = state["v.pos_embed"].shape[1] - 2
        num_classes = state["mlp_head.1.weight"].shape[0]
        mlp_hidden = state["v.blocks.0.mlp.fc1.weight"].shape[0]
    except (KeyError, IndexError) as error:
        raise CheckpointError(f"not an AST state dict: no tensor {error}") from None
    depth = len({key.split(".")[2] for key in state if key.startswith("v.blocks.")})
    stride, frames = _strides_from_patches(num_patches)
    return ASTConfig(embed_dim=embed_dim, depth=depth, num_heads=max(1, embed_dim // HEAD_DIM),
                     mlp_hidden=mlp_hidden, fstride=stride, tstride=stride,
                     input_tdim=frames, num_classes=num_classes)


def build_model(state, config):
    """An eval-mode ASTModel holding exactly the tensors of ``state`` (else CheckpointError),
    in float32. Built on the meta device: no weights are initialised only to be replaced."""
    with torch.device("meta"):
        model = ASTModel(config)
    check_shapes(state, {name: tensor.shape for name, tensor in model.state_dict().items()})
    model.load_state_dict({name: tensor.float().contiguous() for name, tensor in state.items()},
                          assign=True)
    return model.eval()


PICKLED_OBJECTS = ("the file holds more than tensors (pickled Python objects) and is refused, "
                   "because loading it could run code")


def _read_state_dict(path):
    """The tensors of an authors' ``.pth`` or a Hugging Face ``.bin``, read safely."""
    try:
        return state_dict_of(load_tensors(path))
    except PickledObjects:
        raise CheckpointError(PICKLED_OBJECTS) from None
    except NotWeights as error:
        reason = ("not a pickle of tensors" if error.refused
                  else str(error.error).strip().splitlines()[0] if str(error.error).strip()
                  else type(error.error).__name__)
        raise CheckpointError(f"not a PyTorch weights file ({reason})") from None


def load_original_checkpoint(path):
    """Load the authors' checkpoint format (``module.v.*``, ``module.mlp_head.*``)."""
    state = _read_state_dict(path)
    if not all(key.startswith("module.") for key in state):
        odd = next(key for key in state if not key.startswith("module."))
        raise CheckpointError(f"unexpected key {odd} (the AST checkpoint's keys start with module.)")
    state = {key[len("module."):]: value for key, value in state.items()}
    for key in IMAGENET_HEAD_KEYS:
        state.pop(key, None)
    return build_model(state, config_from_state_dict(state))


def convert_hf_state_dict(hf_state, depth):
    """Rename Hugging Face ``ASTForAudioClassification`` tensors to this module's, fusing q/k/v."""
    prefix = "audio_spectrogram_transformer."
    renames = {
        prefix + "embeddings.cls_token": "v.cls_token",
        prefix + "embeddings.distillation_token": "v.dist_token",
        prefix + "embeddings.position_embeddings": "v.pos_embed",
        prefix + "layernorm.weight": "v.norm.weight",
        prefix + "layernorm.bias": "v.norm.bias",
        "classifier.layernorm.weight": "mlp_head.0.weight",
        "classifier.layernorm.bias": "mlp_head.0.bias",
        "classifier.dense.weight": "mlp_head.1.weight",
        "classifier.dense.bias": "mlp_head.1.bias",
    }
    for kind in ("weight", "bias"):
        renames[f"{prefix}embeddings.patch_embeddings.projection.{kind}"] = \
            f"v.patch_embed.proj.{kind}"
    layer_renames = {
        "attention.output.dense": "attn.proj",
        "layernorm_before": "norm1",
        "layernorm_after": "norm2",
        "intermediate.dense": "mlp.fc1",
        "output.dense": "mlp.fc2",
    }
    state = {}
    remaining = dict(hf_state)
    for source, target in renames.items():
        if source in remaining:
            state[target] = remaining.pop(source)
    for index in range(depth):
        layer = f"{prefix}encoder.layer.{index}."
        for kind in ("weight", "bias"):
            for source, target in layer_renames.items():
                key = f"{layer}{source}.{kind}"
                if key in remaining:
                    state[f"v.blocks.{index}.{target}.{kind}"] = remaining.pop(key)
            qkv = [remaining.pop(f"{layer}attention.attention.{name}.{kind}", None)
                   for name in ("query", "key", "value")]
            if all(part is not None for part in qkv):
                state[f"v.blocks.{index}.attn.qkv.{kind}"] = torch.cat(qkv)
    if remaining:
        raise CheckpointError(f"unexpected key {sorted(remaining)[0]} in Hugging Face AST weights")
    return state


def config_from_hf(hf_config):
    """The model's size from a Hugging Face ``ASTConfig`` (as a dict from config.json)."""
    try:
        return ASTConfig(
            embed_dim=hf_config["hidden_size"], depth=hf_config["num_hidden_layers"],
            num_heads=hf_config["num_attention_heads"], mlp_hidden=hf_config["intermediate_size"],
            fstride=hf_config["frequency_stride"], tstride=hf_config["time_stride"],
            input_fdim=hf_config["num_mel_bins"], input_tdim=hf_config["max_length"],
            num_classes=len(hf_config["id2label"]),
            norm_eps=hf_config["layer_norm_eps"], head_norm_eps=hf_config["layer_norm_eps"])
    except KeyError as error:
        raise CheckpointError(f"config.json lacks {error}: not an AST audio classifier") from None


def read_hf_folder(folder):
    """(config dict, state dict) of a Hugging Face model folder (safetensors or .bin)."""
    folder = Path(folder)
    try:
        hf_config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"no readable config.json in {folder} ({error})") from None
    if hf_config.get("model_type") != "audio-spectrogram-transformer":
        raise CheckpointError(f"{folder} holds a {hf_config.get('model_type')!r} model, not an AST")
    if (folder / "model.safetensors").is_file():
        from safetensors.torch import load_file

        hf_state = load_file(folder / "model.safetensors")
    elif (folder / "pytorch_model.bin").is_file():
        hf_state = _read_state_dict(folder / "pytorch_model.bin")
    else:
        raise CheckpointError(f"no model.safetensors or pytorch_model.bin in {folder}")
    return hf_config, hf_state


def load_hf_folder(folder):
    """Load a Hugging Face ``ASTForAudioClassification`` folder into an ASTModel.

    Returns ``(model, labels)``; the labels are the config's ``id2label`` in output order.
    """
    hf_config, hf_state = read_hf_folder(folder)
    config = config_from_hf(hf_config)
    return build_model(convert_hf_state_dict(hf_state, config.depth), config), hf_labels(hf_config)
