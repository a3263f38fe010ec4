"""Small random transformers AST classifiers, and a Hugging Face hub cache holding them."""

from pathlib import Path

import torch

from stemeval.audioset import AUDIOSET_LABELS

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hf_model(labels=AUDIOSET_LABELS, seed=0):
    """A small random ASTForAudioClassification with every parameter perturbed."""
    from transformers import ASTConfig, ASTForAudioClassification

    config = ASTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=1,
                       intermediate_size=128, id2label=dict(enumerate(labels)),
                       label2id={label: index for index, label in enumerate(labels)})
    torch.manual_seed(seed)
    model = ASTForAudioClassification(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    return model


def put_in_hub_cache(cache, repo_id, model):
    """Save ``model`` where huggingface_hub looks for ``repo_id`` at revision main."""
    repo = Path(cache) / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / COMMIT
    model.save_pretrained(snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return snapshot.resolve()
