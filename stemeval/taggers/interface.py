"""The one small interface every tagger implements, so the pipeline stays tagger-agnostic.

The pipeline does the published protocol for every tagger (walk, decode, speech gate,
silence trim, 30-60 s excerpt); a tagger only turns that excerpt into scores:

1. ``features(excerpt)``: on the CPU, in worker threads (must be thread-safe): resample the
   trimmed excerpt (a ``stemeval.audio.decode.Pcm``) to the tagger's own rate and read it its own
   way (an fbank, a waveform, windows...). Returns one tensor per stem.
2. ``forward(features, device)``: the network on a list of those tensors (the tagger
   batches them as its inputs allow), under the precision the pipeline has set. Returns
   ``TaggerOutput``: one score row and one embedding per stem, computed in the same pass
   (and, for a tagger that reads windows, each window's embedding).

``labels`` says what the scores are: AudioSet display names in score order (the scores are
sigmoid probabilities; the pipeline applies the 91-label filter, the Speech rule and the
dataset map by name), or ``None`` for a zero-shot tagger whose scores are over the dataset's
categories (``categories``), whose best category is the proposed label directly.
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class TaggerOutput:
    scores: object  # torch.Tensor [stems, classes], float32 on the CPU
    embeddings: object  # torch.Tensor [stems, dim], float32 on the CPU
    windows: list = None  # per stem [windows, dim] (float32, CPU), for taggers with windows

    def stem_embeddings(self):
        """Each stem's embedding as ``pack`` lays it out: [dim], or the
        stem's followed by its windows' [1 + windows, dim]."""
        windows = self.windows or [None] * len(self.embeddings)
        return [pack(stem.numpy(), None if stem_windows is None else stem_windows.numpy())
                for stem, stem_windows in zip(self.embeddings, windows)]


class Tagger:
    """Base class: subclasses set the attributes and implement ``features`` and ``forward``."""

    name = None  # the --tagger name
    sample_rate = None  # the rate its features are computed at
    labels = None  # AudioSet display names in score order, or None (zero-shot)
    categories = None  # zero-shot taggers: the dataset's categories, in score order
    prompting = None  # zero-shot taggers: the clap_prompts.Prompts of those categories
    weights = None  # path or hub id of the weights file, for the provenance sidecar
    model = None  # the network (a torch Module)
    embedding = None  # which layer and pooling its embedding is, written with the embeddings

    networks = ("model",)  # attributes holding networks, which stay in the main process

    def __getstate__(self):
        """Sent to a worker process, which computes features, without its networks."""
        return {name: value for name, value in self.__dict__.items()
                if name not in self.networks}

    def for_categories(self, categories):
        """This tagger for a dataset with these categories: itself, but for zero-shot taggers
        (whose scores are over the categories), which share their model."""
        return self

    def to(self, device):
        """Move the network to ``device`` once, where it is built; returns self."""
        self.model.to(device)
        return self

    def features(self, excerpt):
        """The network's input for one trimmed excerpt (a ``Pcm``); CPU, thread-safe."""
        raise NotImplementedError

    def forward(self, features, device):
        """``TaggerOutput`` for a list of ``features`` tensors, in the same order."""
        raise NotImplementedError


def pack(vector, windows=None):
    """One stem's embedding as it travels and is logged: ``vector`` [D], or, with its
    windows' embeddings ``windows`` [w, D], the array [1 + w, D] of the stem's then the
    windows' (float32)."""
    vector = np.asarray(vector, np.float32)
    if windows is None:
        return vector
    return np.concatenate([vector[None], np.asarray(windows, np.float32)])


def unpack(packed):
    """``(vector, windows or None)`` of a ``pack``-ed embedding."""
    return (packed, None) if packed.ndim == 1 else (packed[0], packed[1:])
