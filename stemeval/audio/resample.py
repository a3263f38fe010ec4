"""Every resampling the pipeline does, in one place.

- ``resample_16k``: what the published pipeline did before the speech gate and the AST's
  fbank: Essentia's ``Resample`` at quality 4 (libsamplerate's linear interpolator), as
  ``MonoLoader(sampleRate=16000, resampleQuality=4)``. Kept exactly, for the rows' sake.
- ``resample``: the other taggers' band-limited resampling with torchaudio's windowed sinc
  (no aliasing): its default filter (CLAP, ``hf:`` models), or with ``kaiser_best`` the
  parameters of resampy's ``kaiser_best`` that ``librosa.load`` used when PANNs and PaSST
  resampled AudioSet to 32 kHz.
"""

import threading

import numpy as np

from stemeval.common.essentia_setup import essentia_standard

# Imported inside the functions that use them, so that what needs none of them starts without them:
# torch, torchaudio.

SAMPLE_RATE = 16000  # what the speech gate and the AST read
RESAMPLE_QUALITY = 4  # libsamplerate's linear interpolator, as MonoLoader(resampleQuality=4)

# resampy's kaiser_best filter, as torchaudio names it
_KAISER_BEST = dict(lowpass_filter_width=64, rolloff=0.9475937167399596,
                    resampling_method="sinc_interp_kaiser", beta=14.769656459379492)

_per_thread = threading.local()


def _resampler(rate):
    """One Essentia Resample per input rate and thread: Essentia algorithms are not thread-safe."""
    cache = _per_thread.__dict__.setdefault("resamplers", {})
    if rate not in cache:
        cache[rate] = essentia_standard().Resample(
            inputSampleRate=rate, outputSampleRate=SAMPLE_RATE, quality=RESAMPLE_QUALITY)
    return cache[rate]


def resample_16k(samples, rate):
    """Mono float32 samples at ``rate`` -> 16 kHz numpy, as MonoLoader(resampleQuality=4) does."""
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if rate == SAMPLE_RATE:
        return samples
    return _resampler(rate)(samples)


def resample(samples, rate, target_rate, kaiser_best=False):
    """Mono float32 samples at ``rate`` -> ``target_rate``, a float32 torch tensor, with
    torchaudio's windowed sinc (its default filter, or resampy's ``kaiser_best``)."""
    import torch
    import torchaudio

    wave = torch.as_tensor(np.ascontiguousarray(samples, dtype=np.float32))
    if rate == target_rate:
        return wave
    return torchaudio.functional.resample(wave, rate, target_rate,
                                          **(_KAISER_BEST if kaiser_best else {}))
