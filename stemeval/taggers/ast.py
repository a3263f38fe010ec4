"""The published AST path as a Tagger: its rows are those of the published system.

Features: the excerpt at 16 kHz by Essentia's ``Resample`` (quality 4, as the published
``MonoLoader``), then the normalised 128-bin kaldi fbank cut or padded to the model's input
length (the first 1024 frames for the AudioSet AST). The embedding is the token the head
reads (``ASTModel.pooled``), taken from the same forward pass as the scores.
"""

import torch

from stemeval.audio.resample import SAMPLE_RATE, resample_16k
from stemeval.labels.audioset import AUDIOSET_LABELS
from stemeval.taggers.ast_features import fbank_features
from stemeval.taggers.interface import Tagger, TaggerOutput

# Imported inside the functions that use them, so that what needs none of them starts without them:
# stemeval.taggers.published_files.


class AstTagger(Tagger):
    sample_rate = SAMPLE_RATE
    labels = AUDIOSET_LABELS  # the weights' labels are checked to be these, in this order
    embedding = "pooled: mean of the cls and distillation tokens after the final norm"

    def __init__(self, model, weights, name="ast"):
        self.model = model.eval()
        self.weights = str(weights)
        self.name = name
        self.frames = model.config.input_tdim

    def features(self, excerpt):
        wave = resample_16k(excerpt.to_float(), excerpt.rate)
        return fbank_features(wave, self.frames)

    def forward(self, features, device):
        batch = torch.stack(features).to(device)
        with torch.inference_mode():
            pooled = self.model.pooled(batch)
            logits = self.model.mlp_head(pooled)
            # under fp16 autocast the sigmoid runs on the fp16 logits, as published on CUDA
            scores = torch.sigmoid(logits if logits.dtype == torch.float16 else logits.float())
        return TaggerOutput(scores=scores.float().cpu(), embeddings=pooled.float().cpu())


def load(checkpoint=None, categories=None, name="ast"):
    """The checked AudioSet AST named by ``checkpoint`` (see ``stemeval.taggers.published_files``)."""
    from stemeval.taggers.published_files import load_ast_file

    model, path = load_ast_file(checkpoint)
    return AstTagger(model, path, name=name)
