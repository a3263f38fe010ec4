"""The in-memory silence trim equals pydub's own split_on_silence + join on real files."""

import pytest

from stemeval.audio.decode import decode
from stemeval.audio.silence import SilentStem, trim_silence
from tests.helpers.published import pydub_excerpt
from tests.helpers.signals import concat, silence, tone, write_wav


def pydub_bytes(path):
    """What the published code kept of a stem, as raw PCM (None where it failed)."""
    joined = pydub_excerpt(path)
    return None if joined is None else (joined.raw_data, joined.sample_width, joined.frame_rate)


R = 44100
CASES = {
    "tone": lambda: (tone(3, R), R, "PCM_16"),
    "gaps": lambda: (concat(tone(1, R), silence(1, R), tone(2, R, 220), silence(0.7, R), tone(0.3, R)), R, "PCM_16"),
    "short_gap_kept": lambda: (concat(tone(1, R), silence(0.4, R), tone(1, R)), R, "PCM_16"),
    "gap_600ms": lambda: (concat(tone(1, R), silence(0.6, R), tone(1, R)), R, "PCM_16"),
    "leading_trailing": lambda: (concat(silence(1.5, R), tone(2, R), silence(2.3, R)), R, "PCM_16"),
    "all_silent": lambda: (silence(3, R), R, "PCM_16"),
    "faint_noise_only": lambda: (silence(3, R, level=1e-3), R, "PCM_16"),
    "under_500ms": lambda: (tone(0.3, R), R, "PCM_16"),
    "under_500ms_silent": lambda: (silence(0.4, R), R, "PCM_16"),
    "long_over_60s": lambda: (concat(*[concat(tone(7, R, 300 + 10 * i, seed=i), silence(1, R)) for i in range(10)]), R, "PCM_16"),
    "long_but_trimmed_under_60s": lambda: (concat(tone(30, R), silence(40, R), tone(25, R)), R, "PCM_16"),
    "stereo": lambda: (concat(tone(1, R, channels=2), silence(1, R, 2), tone(1, R, 330, channels=2)), R, "PCM_16"),
    "stereo_odd_values": lambda: (concat(tone(1, R, level=0.9, channels=2, seed=3), silence(0.8, R, 2, 1e-4)), R, "PCM_16"),
    "8bit": lambda: (concat(tone(1, 22050), silence(1, 22050), tone(1, 22050, 600)), 22050, "PCM_U8"),
    "8bit_stereo": lambda: (concat(tone(1, 22050, channels=2), silence(0.9, 22050, 2)), 22050, "PCM_U8"),
    "24bit": lambda: (concat(tone(1, 48000, level=0.3), silence(1, 48000), tone(1, 48000, 100)), 48000, "PCM_24"),
    "24bit_stereo": lambda: (concat(silence(0.7, 48000, 2, 1e-5), tone(1.2, 48000, channels=2)), 48000, "PCM_24"),
    "32bit": lambda: (concat(tone(1, 44100, level=0.7), silence(1, 44100), tone(0.5, 44100)), 44100, "PCM_32"),
    "rate_16k": lambda: (concat(tone(2, 16000), silence(1, 16000), tone(1, 16000)), 16000, "PCM_16"),
    "rate_11025_odd_length": lambda: (concat(tone(1.2345, 11025), silence(0.98765, 11025), tone(0.777, 11025)), 11025, "PCM_16"),
    "quiet_bursts": lambda: (concat(*[concat(tone(0.15, R, level=0.05, seed=i), silence(0.55, R)) for i in range(8)]), R, "PCM_16"),
    "rate_22050_gaps": lambda: (concat(tone(0.9, 22050), silence(0.55, 22050), tone(0.6, 22050), silence(2, 22050)), 22050, "PCM_16"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_trim_equals_pydub(tmp_path, name):
    frames, rate, subtype = CASES[name]()
    path = str(write_wav(tmp_path / f"{name}.wav", frames, rate, subtype))
    expected = pydub_bytes(path)
    pcm = decode(path).pcm_mono
    if expected is None:
        with pytest.raises(SilentStem):
            trim_silence(pcm)
        return
    excerpt = trim_silence(pcm)
    assert (excerpt.samples.tobytes(), excerpt.sample_width, excerpt.rate) == expected
