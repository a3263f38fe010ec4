"""CLAP as a zero-shot tagger: each stem's audio embedding against one text prompt per category.

The model is any Hugging Face ``ClapModel`` with its processor (feature extractor and
tokenizer): ``laion/larger_clap_music`` by default, ``hf:<repo id>`` for another on the hub,
or a local model folder. Each dataset category is scored against its prompt, read from the
data files of ``stemeval.datasets.clap_prompts`` ("other_keys" -> "the sound of a synthesizer
or an organ"; ``PROMPT``, "the sound of {category}", where no file names the categories); the
prompts' text embeddings are computed once, at load.

Reading an excerpt: CLAP hears ``max_length_s`` (10 s) at 48 kHz. The 30-60 s excerpt is
resampled to 48 kHz and cut into ``ceil(length / 10 s)`` windows of exactly 10 s, spread
evenly from its start to its end (overlapping a little where the length is not a multiple
of 10 s), so every sample is heard and no window is padded or cropped; an excerpt shorter
than a window is one window, repeat-padded by the feature extractor as CLAP was trained.
The feature extractor's own handling of longer audio is not used: "fusion" and
"rand_trunc" both pick random crops, so rows would change from run to run, and an unfused
model would hear only one 10 s crop. Windows go in with ``is_longer`` false, as audio of
the model's own length.

Scores and embedding: the embedding is the mean of the windows' audio embeddings (the
model's projected, L2-normalised ``audio_embeds``), and the scores are the model's
``logits_per_audio`` of that mean against the prompts (logit scale times cosine), which
equals the mean of the windows' ``logits_per_audio``: raw logits, not a softmax (the best
category is the same).
"""

import json
import math
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from stemeval.audio.resample import resample
from stemeval.common.errors import UserError, one_line

# PROMPT and prompt (the template for categories no prompts file names) are read here too
from stemeval.datasets.clap_prompts import PROMPT, prompt, prompts_for  # noqa: F401
from stemeval.taggers import TAGGERS
from stemeval.taggers.interface import Tagger, TaggerOutput
from stemeval.weights.hub import hub_folder, hub_repo_id
from stemeval.weights.sources import HF_PREFIX

# Imported inside the functions that use them, so that what needs none of them starts without them:
# transformers.

DEFAULT_MODEL = TAGGERS["clap"].weights.repo_id
# Besides the weights: the model's config, the processor's (feature extractor and tokenizer).
HUB_FILES = TAGGERS["clap"].weights.files


def load(checkpoint=None, categories=None, prompts=None):
    """The CLAP tagger over ``categories`` with the model ``checkpoint`` names (None: default).

    ``checkpoint``: a local Hugging Face CLAP folder or ``hf:<repo id>``; ``prompts``: a
    ``clap_prompts.Prompts`` (None: ``prompts_for(categories)``).
    """
    if not categories:
        raise UserError("the clap tagger scores the dataset's categories, and none were given")
    folder, weights = _resolve(checkpoint)
    model, processor = _load_checked(folder, weights)
    return ClapTagger(model, processor, prompts or prompts_for(categories), weights)


def _resolve(checkpoint):
    """``(local folder, name for the sidecar)`` of the model ``checkpoint`` names."""
    if checkpoint is None:
        return _hub_folder(DEFAULT_MODEL), DEFAULT_MODEL
    spec = str(checkpoint)
    repo_id = hub_repo_id(spec, example=DEFAULT_MODEL)
    if repo_id is not None:
        return _hub_folder(repo_id), repo_id
    folder = Path(spec)
    if not folder.is_dir():
        raise UserError(f"CLAP model {spec}: no such folder (give a Hugging Face CLAP model "
                        f"folder or {HF_PREFIX}<repo id>)")
    return folder, spec


def _hub_folder(repo_id):
    """The hub model's folder in huggingface_hub's cache, fetched where online."""
    return hub_folder(repo_id, HUB_FILES, what="CLAP model", cache="the Hugging Face cache",
                      advice=f"; on a machine that is online run \"hf download {repo_id}\" and "
                             f"copy the cache, or pass --checkpoint a local CLAP model folder")


def _load_checked(folder, name):
    """Model (eval mode, CPU) and processor of a CLAP folder, every weight loaded strictly."""
    from transformers import ClapModel, ClapProcessor

    try:
        model_type = json.loads((folder / "config.json").read_text(encoding="utf-8")).get(
            "model_type")
    except (OSError, ValueError, AttributeError) as error:
        raise UserError(f"CLAP model {name} has no readable config.json "
                        f"({one_line(error)})") from None
    if model_type != "clap":
        raise UserError(f"CLAP model {name} is not a CLAP model: its config.json says "
                        f"model_type {model_type!r}")
    try:
        with _quiet_transformers():
            model, info = ClapModel.from_pretrained(folder, output_loading_info=True)
            processor = ClapProcessor.from_pretrained(folder)
    except (OSError, ValueError, RuntimeError, TypeError) as error:
        raise UserError(f"CLAP model {name} is not usable: {one_line(error)}") from None
    for key, what in (("missing_keys", "missing"), ("unexpected_keys", "left over"),
                      ("mismatched_keys", "of the wrong shape")):
        names = sorted(str(entry) for entry in info.get(key) or ())
        if names:
            raise UserError(f"CLAP model {name} is not usable: {len(names)} weight(s) "
                            f"{what}, e.g. {names[0]}")
    return model.eval(), processor


@contextmanager
def _quiet_transformers():
    """No progress bar or load report from transformers: the checks above say what matters."""
    from transformers.utils import logging

    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


class ClapTagger(Tagger):
    """Zero-shot scores of a CLAP model over the dataset's categories (see the module doc)."""

    name = "clap"
    embedding = "audio_embeds (projected, L2-normalised); mean over 10 s windows"

    def __init__(self, model, processor, prompts, weights):
        self.model = model
        self._processor = processor
        self.feature_extractor = processor.feature_extractor
        self.sample_rate = int(self.feature_extractor.sampling_rate)
        self.window = int(self.feature_extractor.nb_max_samples)
        self.categories = list(prompts.texts)
        self.prompts = list(prompts.texts.values())
        self.prompting = prompts
        self.weights = weights
        device = next(model.parameters()).device
        with torch.no_grad():
            tokens = processor.tokenizer(self.prompts, padding=True, return_tensors="pt")
            tokens = {name: value.to(device) for name, value in tokens.items()}
            self.text_embeds = model.get_text_features(**tokens).pooler_output.float()
            self.logit_scale = model.logit_scale_a.exp().float()

    def for_categories(self, categories):
        """The tagger over other categories: their prompts (``prompts_for``), the same model
        (not loaded again)."""
        prompts = prompts_for(categories)
        if prompts == self.prompting:
            return self
        return ClapTagger(self.model, self._processor, prompts, self.weights)

    def to(self, device):
        self.text_embeds = self.text_embeds.to(device)
        self.logit_scale = self.logit_scale.to(device)
        return super().to(device)

    def windows(self, wave):
        """The 48 kHz ``wave`` as windows of the model's length, spread evenly over it."""
        if len(wave) <= self.window:
            return [wave]
        count = math.ceil(len(wave) / self.window)
        starts = np.linspace(0, len(wave) - self.window, count).round().astype(int)
        return [wave[start:start + self.window] for start in starts]

    def features(self, excerpt):
        """Log-mel input of each window, ``[windows, channels, frames, mels]`` float32."""
        wave = resample(excerpt.to_float(), excerpt.rate, self.sample_rate)
        inputs = self.feature_extractor(
            [window.numpy() for window in self.windows(wave)], sampling_rate=self.sample_rate,
            return_tensors="pt")
        return inputs["input_features"].float()

    def forward(self, features, device):
        counts = [len(windows) for windows in features]
        batch = torch.cat(features).to(device)
        is_longer = torch.zeros(len(batch), 1, dtype=torch.bool, device=device)
        with torch.no_grad():
            audio = self.model.get_audio_features(input_features=batch, is_longer=is_longer)
        with torch.no_grad(), torch.autocast(device_type=torch.device(device).type,
                                             enabled=False):
            windows = [stem.float() for stem in audio.pooler_output.split(counts)]
            embeds = torch.stack([stem.mean(dim=0) for stem in windows])
            scores = self.logit_scale * embeds @ self.text_embeds.T
        return TaggerOutput(scores=scores.cpu(), embeddings=embeds.cpu(),
                            windows=[stem.cpu() for stem in windows])
