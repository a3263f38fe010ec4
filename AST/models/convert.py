"""Save a Hugging Face AST as the authors' checkpoint (``module.v.*``, ``module.mlp_head.*``).

The default weights file is kept in the authors' format so that it loads, as in the
published system, with timm's LayerNorm epsilons (Hugging Face's config says 1e-12).
"""

import dataclasses

import torch

from AST.ast_model import (ASTConfig, CheckpointError, config_from_hf, convert_hf_state_dict,
                           load_original_checkpoint, read_hf_folder)
from AST.models.atomic import part_file, publish
from AST.models.checks import check_labels, labels_of


def save_hf_as_original(folder, target):
    """Convert the Hugging Face model in ``folder``; write ``target`` once the copy loads back."""
    hf_config, hf_state = read_hf_folder(folder)
    check_labels(labels_of(hf_config))
    config = config_from_hf(hf_config)
    state = {"module." + key: value.contiguous()
             for key, value in convert_hf_state_dict(hf_state, config.depth).items()}
    with part_file(target) as part:
        torch.save(state, part)
        _check_round_trip(load_original_checkpoint(part).config, config)
        return publish(part, target)


def _check_round_trip(loaded, hub):
    """The authors' format stores no config: the size read back must be the hub model's."""
    published_eps = dict(norm_eps=ASTConfig.norm_eps, head_norm_eps=ASTConfig.head_norm_eps)
    if loaded != dataclasses.replace(hub, **published_eps):
        raise CheckpointError(f"its size ({hub}) cannot be kept in the authors' format")
