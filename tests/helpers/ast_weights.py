"""Random AST weights saved in the published formats, for tests."""

import torch

from stemeval.taggers.ast_model import ASTConfig, ASTModel

SMALL = ASTConfig(embed_dim=64, depth=2, num_heads=1, mlp_hidden=128)


def random_model(config=SMALL, seed=0, label_bias=None):
    """A randomly initialised ASTModel; ``label_bias`` {class index: bias} fixes the winner."""
    torch.manual_seed(seed)
    model = ASTModel(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("token") or name.endswith("pos_embed"):
                param.normal_(0, 0.02)
        for index, bias in (label_bias or {}).items():
            model.mlp_head[1].bias[index] += bias
    return model


def random_ast(seed):
    """A full-size AST with random weights: peaked attention, logits of about unit spread
    (the sigmoid is not saturated, so small differences in the logits can show)."""
    torch.manual_seed(seed)
    model = ASTModel(ASTConfig()).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("token") or name.endswith("pos_embed"):
                param.normal_(0, 0.5)
        for block in model.v.blocks:  # sharper attention than the default init gives
            block.attn.qkv.weight.mul_(float(torch.empty(()).uniform_(1, 4)))
    return model


def save_original_checkpoint(model, path, imagenet_heads=True):
    """Save as the authors did: a DataParallel state dict, ImageNet heads of DeiT included."""
    state = {"module." + key: value for key, value in model.state_dict().items()}
    if imagenet_heads:
        dim = model.config.embed_dim
        for head in ("head", "head_dist"):
            state[f"module.v.{head}.weight"] = torch.zeros(1000, dim)
            state[f"module.v.{head}.bias"] = torch.zeros(1000)
    torch.save(state, path)
    return path
