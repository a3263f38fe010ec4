"""The AST's input: the trimmed excerpt at 16 kHz, as a normalised 128-bin kaldi fbank.

The published code wrote the excerpt to a wav and read it back with Essentia's
``MonoLoader(sampleRate=16000, resampleQuality=4)``; the wav is PCM, so the same samples come
from scaling the integers as Essentia's loader does and running Essentia's ``Resample``.
"""

import threading

import numpy as np
import torch
import torchaudio

from stemeval.essentia_setup import essentia_standard

SAMPLE_RATE = 16000
RESAMPLE_QUALITY = 4  # libsamplerate's linear interpolator
MEL_BINS = 128
FBANK_MEAN = -4.2677393
FBANK_STD = 4.5689974


_per_thread = threading.local()


def _resampler(rate):
    """One Essentia Resample per input rate and thread: Essentia algorithms are not thread-safe."""
    cache = _per_thread.__dict__.setdefault("resamplers", {})
    if rate not in cache:
        cache[rate] = essentia_standard().Resample(
            inputSampleRate=rate, outputSampleRate=SAMPLE_RATE, quality=RESAMPLE_QUALITY)
    return cache[rate]


def resample_16k(samples, rate):
    """Mono float32 samples at ``rate`` -> 16 kHz, as MonoLoader(resampleQuality=4) does."""
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if rate == SAMPLE_RATE:
        return samples
    return _resampler(rate)(samples)


def fbank_features(wave_16k, frames):
    """Kaldi fbank of a 16 kHz wave, zero-padded or cut to ``frames``, normalised as the AST's."""
    fbank = torchaudio.compliance.kaldi.fbank(
        torch.from_numpy(wave_16k)[None], htk_compat=True, sample_frequency=SAMPLE_RATE,
        use_energy=False, window_type="hanning", num_mel_bins=MEL_BINS, dither=0.0,
        frame_shift=10)
    missing = frames - fbank.shape[0]
    if missing > 0:
        fbank = torch.nn.functional.pad(fbank, (0, 0, 0, missing))
    else:
        fbank = fbank[:frames]
    return (fbank - FBANK_MEAN) / (FBANK_STD * 2)
