"""``--deform reverb``: a convolution reverb with a synthetic room, as an audiomentations
transform (``ApplyImpulseResponse`` reads its impulse responses only from audio files)."""

import hashlib

import numpy as np
from audiomentations.core.transforms_interface import BaseWaveformTransform
from scipy.signal import convolve


class SyntheticReverb(BaseWaveformTransform):
    """Convolution with a synthetic room, mixed with the dry signal.

    audiomentations' ``ApplyImpulseResponse`` reads impulse responses only from audio files,
    so the same convolution (``scipy.signal.convolve``, tail cut to the input's length) is
    done here on an array. The impulse response is Gaussian noise under an exponential decay
    of 60 dB over ``rt60`` seconds (``rt60`` seconds long at the stem's rate), with a direct
    path of 1 at time 0; its noise comes from a generator seeded by ``rt60`` alone, so every
    stem of a condition is played in the same room. The reverberant signal is scaled to the
    dry signal's peak (as ``ApplyImpulseResponse`` scales to a fixed peak) and mixed as
    ``(1 - wet) * dry + wet * reverberant``.
    """

    supports_multichannel = False

    def __init__(self, rt60, wet=1.0, p=1.0):
        super().__init__(p)
        self.rt60 = rt60
        self.wet = wet

    def impulse_response(self, sample_rate):
        length = max(1, int(round(self.rt60 * sample_rate)))
        seed = int.from_bytes(hashlib.sha256(repr(float(self.rt60)).encode()).digest()[:8], "big")
        noise = np.random.default_rng(seed).standard_normal(length)
        ir = noise * 10.0 ** (-3.0 * np.arange(length) / (self.rt60 * sample_rate))
        ir[0] = 1.0
        return ir.astype(np.float32)

    def apply(self, samples, sample_rate):
        reverberant = convolve(samples, self.impulse_response(sample_rate))
        peak = np.max(np.abs(reverberant))
        if peak > 0:
            reverberant *= np.max(np.abs(samples)) / peak
        reverberant = reverberant[:len(samples)]
        return ((1.0 - self.wet) * samples + self.wet * reverberant).astype(np.float32)
