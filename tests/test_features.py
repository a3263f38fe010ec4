"""The in-memory 16 kHz excerpt equals the published wav round trip through Essentia's
MonoLoader, and the fbank equals Hugging Face's ASTFeatureExtractor."""

import numpy as np
import pytest
from transformers import ASTFeatureExtractor

from stemeval.audio.decode import decode
from stemeval.audio.resample import resample_16k
from stemeval.audio.silence import trim_silence
from stemeval.taggers.ast_features import fbank_features
from tests.helpers.published import excerpt_16k, monoloader_16k
from tests.helpers.signals import concat, silence, tone, write_wav

CASES = [
    (44100, 1, "PCM_16"), (44100, 2, "PCM_16"), (48000, 2, "PCM_24"), (48000, 1, "PCM_32"),
    (22050, 1, "PCM_U8"), (16000, 1, "PCM_16"), (32000, 2, "PCM_16"), (11025, 1, "PCM_16"),
]


@pytest.mark.parametrize("rate,channels,subtype", CASES)
def test_excerpt_equals_monoloader_round_trip(tmp_path, rate, channels, subtype):
    frames = concat(tone(1.3, rate, channels=channels), silence(0.8, rate, channels),
                    tone(2.1, rate, 250, level=0.8, channels=channels, seed=2))
    path = str(write_wav(tmp_path / "stem.wav", frames, rate, subtype))
    excerpt = trim_silence(decode(path).pcm_mono)
    ours = resample_16k(excerpt.to_float(), excerpt.rate)
    expected = excerpt_16k(path, tmp_path / "nosilence.wav")
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, expected)


def test_speech_gate_view_equals_monoloader(tmp_path):
    for rate, channels, subtype in CASES:
        frames = tone(1.7, rate, 500, level=0.6, channels=channels, seed=rate)
        path = str(write_wav(tmp_path / f"{rate}{channels}{subtype}.wav", frames, rate, subtype))
        stem = decode(path)
        expected = monoloader_16k(path)
        np.testing.assert_array_equal(resample_16k(stem.essentia_mono, stem.rate), expected)


@pytest.mark.parametrize("seconds", [0.5, 3.0, 10.24, 14.0])
def test_fbank_equals_hugging_face_extractor(seconds):
    wave = tone(seconds, 16000, 700, level=0.3)[:, 0].astype(np.float32)
    ours = fbank_features(wave, 1024)
    theirs = ASTFeatureExtractor()(wave, sampling_rate=16000, return_tensors="pt")["input_values"][0]
    assert ours.shape == (1024, 128)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-5)


def test_four_minute_stereo_stem_equals_monoloader(tmp_path):
    """Real stems last minutes and MonoLoader resamples them in streaming chunks: a 4-minute
    stereo 44.1 kHz stem, sample for sample."""
    rate = 44100
    frames = np.random.default_rng(4).standard_normal((240 * rate, 2), dtype=np.float32)
    frames *= np.float32(0.2)
    frames[rate * 60:rate * 61] = 0  # a second of digital silence
    path = str(write_wav(tmp_path / "long.wav", frames, rate))
    stem = decode(path)
    np.testing.assert_array_equal(resample_16k(stem.essentia_mono, stem.rate), monoloader_16k(path))
