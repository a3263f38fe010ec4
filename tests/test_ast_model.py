"""The AST module against transformers' ASTForAudioClassification, and strict loading."""

import os
import pickle

import pytest
import torch
from transformers import ASTConfig as HFConfig
from transformers import ASTForAudioClassification

from stemeval.taggers.ast_model import (
    ASTConfig,
    CheckpointError,
    load_hf_folder,
    load_original_checkpoint,
)
from tests.helpers.ast_weights import SMALL, random_model, save_original_checkpoint

SIZES = {
    "small": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=1,
                  intermediate_size=128),
    "full": {},
}


@pytest.mark.parametrize("size", sorted(SIZES))
def test_logits_equal_transformers(tmp_path, size):
    torch.manual_seed(1)
    hf_model = ASTForAudioClassification(HFConfig(**SIZES[size], num_labels=527)).eval()
    hf_model.save_pretrained(tmp_path)
    model, labels = load_hf_folder(tmp_path)
    fbank = torch.randn(2, 1024, 128)
    with torch.inference_mode():
        expected = hf_model(fbank).logits
        actual = model(fbank)
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=0)
    assert len(labels) == 527


@pytest.mark.parametrize("stride", [10, 12, 16])
def test_stride_variants_equal_transformers(tmp_path, stride):
    torch.manual_seed(stride)
    config = HFConfig(**SIZES["small"], num_labels=527, frequency_stride=stride,
                      time_stride=stride)
    hf_model = ASTForAudioClassification(config).eval()
    hf_model.save_pretrained(tmp_path)
    model, _ = load_hf_folder(tmp_path)
    fbank = torch.randn(1, 1024, 128)
    with torch.inference_mode():
        torch.testing.assert_close(model(fbank), hf_model(fbank).logits, atol=1e-4, rtol=0)


def test_original_format_round_trip_reads_size_from_tensors(tmp_path):
    model = random_model(SMALL, seed=3)
    loaded = load_original_checkpoint(save_original_checkpoint(model, tmp_path / "a.pth"))
    assert loaded.config == SMALL
    fbank = torch.randn(3, 1024, 128)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(fbank), model(fbank), atol=0, rtol=0)


@pytest.mark.parametrize("stride", [10, 12, 14, 16])
def test_original_format_strides(tmp_path, stride):
    config = ASTConfig(embed_dim=64, depth=1, num_heads=1, mlp_hidden=64, fstride=stride,
                       tstride=stride)
    loaded = load_original_checkpoint(
        save_original_checkpoint(random_model(config), tmp_path / "a.pth", imagenet_heads=False))
    assert (loaded.config.fstride, loaded.config.tstride) == (stride, stride)
    assert loaded.config.grid == config.grid


def test_batch_equals_one_at_a_time():
    model = random_model(SMALL, seed=4)
    fbank = torch.randn(5, 1024, 128)
    with torch.inference_mode():
        batched = model(fbank)
        single = torch.cat([model(fbank[i:i + 1]) for i in range(5)])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=0)


def _saved_state(tmp_path, edit):
    model = random_model(SMALL)
    state = {"module." + key: value for key, value in model.state_dict().items()}
    edit(state)
    torch.save(state, tmp_path / "bad.pth")
    return tmp_path / "bad.pth"


@pytest.mark.parametrize("edit,message", [
    (lambda s: s.pop("module.v.blocks.1.attn.proj.bias"), "missing v.blocks.1.attn.proj.bias"),
    (lambda s: s.update({"module.v.extra": torch.zeros(1)}), "unexpected v.extra"),
    (lambda s: s.update({"module.mlp_head.1.bias": torch.zeros(10)}),
     "mlp_head.1.bias has shape (10,), expected (527,)"),
    (lambda s: s.update({"v.no_prefix": torch.zeros(1)}), "unexpected key v.no_prefix"),
])
def test_strict_loading_names_the_key(tmp_path, edit, message):
    with pytest.raises(CheckpointError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_original_checkpoint(_saved_state(tmp_path, edit))


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/ast_checkpoint_ran_code",))


def test_checkpoint_cannot_run_code(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"module.v.pos_embed": _Exploit()}, handle)
    with pytest.raises(CheckpointError) as caught:
        load_original_checkpoint(path)
    assert str(caught.value) == ("the file holds more than tensors (pickled Python objects) and "
                                 "is refused, because loading it could run code")
    assert not os.path.exists("/tmp/ast_checkpoint_ran_code")


def test_random_bytes_are_not_called_objects(tmp_path):
    path = tmp_path / "noise.pth"
    path.write_bytes(bytes(range(140, 256)) * 8)
    with pytest.raises(CheckpointError) as caught:
        load_original_checkpoint(path)
    assert str(caught.value) == "not a PyTorch weights file (not a pickle of tensors)"


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "text.pth"
    path.write_text("hello")
    with pytest.raises(CheckpointError, match="not a PyTorch weights file"):
        load_original_checkpoint(path)


# The authors' checkpoint (audioset_10_10_0.4593.pth), key by key: a DataParallel state dict
# of the published ast_models.py on timm 0.4.5's DeiT-base distilled, stride 10 (1212 patches
# + 2 tokens), its unused ImageNet heads included.
_AUTHORS_BLOCK = {
    "norm1.weight": (768,), "norm1.bias": (768,),
    "attn.qkv.weight": (2304, 768), "attn.qkv.bias": (2304,),
    "attn.proj.weight": (768, 768), "attn.proj.bias": (768,),
    "norm2.weight": (768,), "norm2.bias": (768,),
    "mlp.fc1.weight": (3072, 768), "mlp.fc1.bias": (3072,),
    "mlp.fc2.weight": (768, 3072), "mlp.fc2.bias": (768,),
}
AUTHORS_KEYS = {
    "module.v.cls_token": (1, 1, 768),
    "module.v.pos_embed": (1, 1214, 768),
    "module.v.dist_token": (1, 1, 768),
    "module.v.patch_embed.proj.weight": (768, 1, 16, 16),
    "module.v.patch_embed.proj.bias": (768,),
    **{f"module.v.blocks.{block}.{name}": shape
       for block in range(12) for name, shape in _AUTHORS_BLOCK.items()},
    "module.v.norm.weight": (768,), "module.v.norm.bias": (768,),
    "module.v.head.weight": (1000, 768), "module.v.head.bias": (1000,),
    "module.v.head_dist.weight": (1000, 768), "module.v.head_dist.bias": (1000,),
    "module.mlp_head.0.weight": (768,), "module.mlp_head.0.bias": (768,),
    "module.mlp_head.1.weight": (527, 768), "module.mlp_head.1.bias": (527,),
}


def test_authors_key_names_and_shapes_load(tmp_path):
    """A renamed or reshaped key in this model (or in timm's Block) fails here."""
    value = torch.tensor(0.01)  # expanded views save one number each: a small file
    state = {key: value.expand(shape) for key, shape in AUTHORS_KEYS.items()}
    torch.save(state, tmp_path / "audioset_10_10_0.4593.pth")
    model = load_original_checkpoint(tmp_path / "audioset_10_10_0.4593.pth")
    assert model.config == ASTConfig()
    loaded = {"module." + key: tuple(value.shape) for key, value in model.state_dict().items()}
    imagenet_heads = {key for key in AUTHORS_KEYS if ".head" in key}
    assert loaded == {key: shape for key, shape in AUTHORS_KEYS.items() if key not in imagenet_heads}
