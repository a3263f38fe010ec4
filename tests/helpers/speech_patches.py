"""Every VGGish patch and activation of a stem at once, for tests and benchmarks.

The gate computes patches lazily (``PatchActivations``); these give the whole stem, as
Essentia's ``TensorflowPredictVGGish`` returns it, to compare with.
"""

import numpy as np

from stemeval.speech.graph import PatchActivations
from stemeval.speech.vggish_input import patch_bands, patch_count


def vggish_patches(audio_16k):
    """The [n, 96, 64] float32 patches ``TensorflowPredictVGGish`` feeds to its graph
    (patches of 96 frames every 93 frames, a trailing partial patch dropped)."""
    return patch_bands(audio_16k, range(patch_count(len(audio_16k))))


def speech_activations(runner, audio_16k, batch_size=64):
    """The runner's outputs for every patch of ``audio_16k``: [n_patches, 8] float32."""
    activations = PatchActivations(runner, audio_16k)
    parts = [activations.compute(start, start + batch_size)
             for start in range(0, activations.units, batch_size)]
    units = np.concatenate(parts) if parts else np.zeros((0, 8), np.float32)
    return activations.expand(units).astype(np.float32, copy=False)
