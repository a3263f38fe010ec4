"""Small random transformers audio classifiers (an AST, a wav2vec2), and a Hugging Face hub
cache holding them."""

from pathlib import Path

import torch

from stemeval.labels.audioset import AUDIOSET_LABELS

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


def hf_wav2vec2(folder, labels=AUDIOSET_LABELS):
    """A tiny non-AST audio classifier with its feature extractor, saved in ``folder``."""
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForSequenceClassification,
    )

    config = Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=64, conv_dim=(16, 16), conv_stride=(5, 4),
                            conv_kernel=(10, 8), num_conv_pos_embeddings=16,
                            num_conv_pos_embedding_groups=2, classifier_proj_size=24,
                            id2label=dict(enumerate(labels)),
                            label2id={label: index for index, label in enumerate(labels)})
    torch.manual_seed(1)
    model = Wav2Vec2ForSequenceClassification(config).eval()
    model.save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(folder)
    return model
