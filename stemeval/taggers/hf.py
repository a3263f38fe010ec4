"""``--tagger hf:<repo id>``: any Hugging Face audio classifier whose labels are AudioSet's.

An AST on the hub (``model_type`` audio-spectrogram-transformer) runs as the ``ast`` tagger
(the same weights, converted, with the published features), so ``--tagger hf:<id>`` and
``--tagger ast --checkpoint hf:<id>`` give the same rows. Any other model runs through
transformers' ``AutoModelForAudioClassification`` and its own feature extractor, on the
excerpt resampled to the extractor's rate; its scores are sigmoids of its logits (AudioSet
is multi-label) and its embedding is the input of its ``classifier`` head.
"""

import json
from pathlib import Path

import torch

from stemeval.audio.resample import resample
from stemeval.common.errors import UserError, one_line
from stemeval.labels.audioset import AUDIOSET_LABELS
from stemeval.taggers import ast
from stemeval.taggers.interface import Tagger, TaggerOutput
from stemeval.weights.checks import check_audioset_labels, hf_labels
from stemeval.weights.hub import hub_folder
from stemeval.weights.sources import HF_PREFIX

# Imported inside the functions that use them, so that what needs none of them starts without them:
# transformers.

AST_MODEL_TYPE = "audio-spectrogram-transformer"
EXTRACTOR_FILES = ("preprocessor_config.json",)  # the feature extractor's settings


class HfTagger(Tagger):
    """A transformers audio classifier with AudioSet labels, loaded strictly from a folder."""

    labels = AUDIOSET_LABELS
    networks = ("model", "head")
    embedding = "the input of the classifier head"

    def __init__(self, folder, config, name):
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

        self.name = name
        self.weights = str(folder)
        try:
            model, info = AutoModelForAudioClassification.from_pretrained(
                folder, output_loading_info=True)
            check_audioset_labels(hf_labels(config))
            self.extractor = AutoFeatureExtractor.from_pretrained(folder)
        except (OSError, ValueError, KeyError) as error:  # CheckpointError is a ValueError
            raise UserError(f"Hugging Face model {folder} is not usable: {one_line(error)}") from None
        problems = [f"{kind.replace('_', ' ')} {', '.join(map(str, keys[:3]))}"
                    for kind, keys in info.items() if keys and kind != "error_msgs"]
        if problems:
            raise UserError(f"Hugging Face model {folder} does not load strictly: "
                            f"{'; '.join(problems)}")
        self.head = getattr(model, "classifier", None)
        if not isinstance(self.head, torch.nn.Module):
            raise UserError(f"Hugging Face model {folder} has no classifier head to take "
                            f"an embedding from")
        self.model = model.eval()
        self.sample_rate = self.extractor.sampling_rate
        self.input_name = self.extractor.model_input_names[0]

    def features(self, excerpt):
        wave = resample(excerpt.to_float(), excerpt.rate, self.sample_rate).numpy()
        inputs = self.extractor(wave, sampling_rate=self.sample_rate, return_tensors="pt")
        return inputs[self.input_name][0]

    def forward(self, features, device):
        # variable-length inputs (raw waveforms) cannot be stacked: run them one by one
        same = all(item.shape == features[0].shape for item in features)
        groups = [features] if same else [[item] for item in features]
        scores, embeddings = [], []
        for group in groups:
            head_inputs = []
            hook = self.head.register_forward_pre_hook(
                lambda module, args: head_inputs.append(args[0]))
            try:
                with torch.inference_mode():
                    logits = self.model(**{self.input_name: torch.stack(group).to(device)}).logits
            finally:
                hook.remove()
            scores.append(torch.sigmoid(logits.float()).cpu())
            embeddings.append(head_inputs[0].float().reshape(len(group), -1).cpu())
        return TaggerOutput(scores=torch.cat(scores), embeddings=torch.cat(embeddings))


def load(repo_id, checkpoint=None, categories=None):
    """The tagger for hub model ``repo_id``; ``checkpoint``: a local copy of its folder."""
    name = HF_PREFIX + repo_id
    folder = Path(checkpoint) if checkpoint else hub_folder(repo_id, also=EXTRACTOR_FILES)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserError(f"{folder}: not a Hugging Face model folder "
                        f"(no readable config.json: {one_line(error)})") from None
    if config.get("model_type") == AST_MODEL_TYPE:
        return ast.load(str(folder), name=name)
    return HfTagger(folder, config, name)
