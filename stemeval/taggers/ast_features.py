"""The AST's input: the trimmed excerpt at 16 kHz, as a normalised 128-bin kaldi fbank."""

import torch
import torchaudio

from stemeval.audio.resample import SAMPLE_RATE

MEL_BINS = 128
FBANK_MEAN = -4.2677393
FBANK_STD = 4.5689974


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
