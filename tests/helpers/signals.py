"""Test signals: tones with gaps, noise, silence, written as wav files of any bit depth."""

import numpy as np
import soundfile


def tone(seconds, rate, freq=440.0, level=0.5, channels=1, seed=0):
    """A sine with a little noise, ``[frames, channels]`` floats."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    mono = level * np.sin(2 * np.pi * freq * t) + 0.01 * level * rng.standard_normal(len(t))
    return np.repeat(mono[:, None], channels, axis=1) * np.linspace(1, 0.8, channels)


def silence(seconds, rate, channels=1, level=0.0, seed=0):
    rng = np.random.default_rng(seed)
    return level * rng.standard_normal((int(seconds * rate), channels))


def concat(*parts):
    return np.concatenate(parts, axis=0)


def write_wav(path, frames, rate, subtype="PCM_16"):
    soundfile.write(str(path), np.clip(frames, -1, 0.999), rate, subtype=subtype)
    return path
