"""Decode a stem once into the two views the published pipeline took of it.

The published code decoded every stem twice more: Essentia's MonoLoader for the speech gate
(floats in [-1, 1), stereo averaged) and pydub for the silence trim (integer PCM as pydub
holds it, stereo mixed by ``set_channels(1)``). Both views are derived here from one decode:

- PCM wav (8/16/24/32-bit) is read with soundfile; it gives the same samples as both
  published decoders, including pydub's quirks (8-bit made signed, 24-bit widened to 32 bits
  with a low byte of 0xFF for negative samples). FLAC (Slakh2100's stems; no published
  behaviour) is lossless PCM and is read the same way, as a wav of its samples would be.
- Float wav (32- or 64-bit; no published behaviour) is read with soundfile too. The
  Essentia view is the file's floats as float32, as Essentia's loader gives them (not
  rescaled); the pydub view is 32-bit PCM, ``round(x * 2**31)`` clipped to the int32 range,
  which is what pydub holds for a 32-bit float wav (ffmpeg converts it so; tested), and
  the same rule for 64-bit float, which pydub itself cannot hold.
- Anything else (mp3, ...) is decoded by pydub itself (ffmpeg to integer PCM),
  and the Essentia view is taken from those integers. For mp3, Essentia's own decoder can
  differ from ffmpeg's 16-bit output by a few least significant bits and by encoder-delay
  trimming, so the speech score of an mp3 stem may differ slightly from the published one.
"""

import os
from dataclasses import dataclass

import numpy as np
import soundfile

# Imported inside the functions that use them, so that what needs none of them starts without them:
# pydub.

_PCM_FORMATS = ("WAV", "WAVEX", "FLAC")
_PCM_WIDTHS = {"PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4}
_FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")
_FLOAT_PCM_WIDTH = 4
INT_TYPES = {1: np.int8, 2: np.int16, 4: np.int32}


@dataclass
class Pcm:
    """Mono integer PCM as pydub holds it: ``sample_width`` bytes per sample (1, 2 or 4)."""

    samples: np.ndarray
    sample_width: int
    rate: int

    @property
    def full_scale(self):
        """pydub's ``max_possible_amplitude``."""
        return float(2 ** (8 * self.sample_width) / 2)

    def to_float(self):
        """Samples in [-1, 1) as Essentia's loader scales this PCM when read from a wav."""
        return (self.samples.astype(np.float32) * np.float32(1.0 / self.full_scale))


@dataclass
class DecodedStem:
    """The two views of one stem: Essentia's mono floats and pydub's mono PCM."""

    essentia_mono: np.ndarray
    pcm_mono: Pcm

    @property
    def rate(self):
        return self.pcm_mono.rate


def _essentia_mix(samples, scale):
    """Essentia's loader and MonoMixer: each channel scaled to [-1, 1) in float32, then the
    left channel of mono audio, or the float32 average of the two."""
    left = samples[:, 0].astype(np.float32) * np.float32(scale)
    if samples.shape[1] == 1:
        return left
    return (left + samples[:, 1].astype(np.float32) * np.float32(scale)) * np.float32(0.5)


def _pydub_mix(pcm_channels, sample_width):
    """pydub's ``set_channels(1)`` on integer frames ``[n, channels]``."""
    channels = pcm_channels.shape[1]
    if channels == 1:
        return pcm_channels[:, 0]
    wide = pcm_channels.astype(np.int32 if sample_width <= 2 else np.int64)
    if channels == 2:  # audioop.tomono: floor(0.5 * left + 0.5 * right), exact in integers
        mono = (wide[:, 0] + wide[:, 1]) >> 1
    else:  # pydub adds each channel's sample floor-divided by the channel count
        mono = (wide // channels).sum(axis=1)
    return mono.astype(INT_TYPES[sample_width])


def _soundfile_path(path):
    """``path`` as soundfile can open it: it encodes a str as strict UTF-8, so a name holding
    bytes that are not UTF-8 (surrogate escapes) is given as bytes."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def _read_pcm_wav(path, width):
    """PCM as pydub holds it, and the samples and scale Essentia's loader reads it with."""
    data, rate = soundfile.read(_soundfile_path(path), dtype="int16" if width <= 2 else "int32",
                                always_2d=True)
    if width == 1:
        pcm = (data >> 8).astype(np.int8)
    elif width == 3:  # pydub widens 24-bit samples with a low byte of 0xFF when negative
        pcm = data | (data < 0).astype(np.int32) * 0xFF
        width = 4
    else:
        pcm = data
    return pcm, width, rate, data, 2.0 ** (1 - 8 * data.itemsize)


def _read_float_wav(path):
    """A float wav: the pydub view as 32-bit PCM (see the module doc), and its floats."""
    data, rate = soundfile.read(_soundfile_path(path), dtype="float64", always_2d=True)
    if not np.isfinite(data).all():
        raise ValueError("the file holds NaN or infinite samples")
    full_scale = 2.0 ** (8 * _FLOAT_PCM_WIDTH - 1)
    pcm = np.clip(np.rint(data * full_scale), -full_scale, full_scale - 1).astype(np.int32)
    return pcm, _FLOAT_PCM_WIDTH, rate, data, 1.0


def _read_with_pydub(path):
    from pydub import AudioSegment
    from pydub.exceptions import CouldntDecodeError

    try:
        try:
            segment = AudioSegment.from_file(path)
        except CouldntDecodeError as error:
            codec = _odd_width_codec(path, str(error))
            if codec is None:
                raise
            segment = AudioSegment.from_file(path, codec=codec)
    except CouldntDecodeError as error:
        raise ValueError(undecodable_reason(path, str(error))) from None
    width = segment.sample_width
    pcm = np.frombuffer(segment.raw_data, dtype=INT_TYPES[width]).reshape(-1, segment.channels)
    return pcm, width, segment.frame_rate, pcm, 1.0 / (2 ** (8 * width) / 2)


def _odd_width_codec(path, message):
    """The codec of a file pydub asked ffmpeg to write as PCM of its own odd sample width
    (IMA and MS ADPCM WAVs hold 4 bits a sample: "Unknown encoder 'pcm_s4le'"), or None.
    Named as the decoder, ffmpeg writes 16-bit PCM, as it decodes such files."""
    if "Unknown encoder 'pcm_" not in message:
        return None
    from pydub.utils import mediainfo_json

    try:
        streams = mediainfo_json(path).get("streams", [])
    except Exception:  # ffprobe's own failure: the first error stands  # noqa: BLE001
        return None
    codecs = [stream.get("codec_name") for stream in streams
              if stream.get("codec_type") == "audio"]
    return codecs[0] if codecs and codecs[0] else None


def _shorten(text, limit):
    return text if len(text) <= limit else text[:limit - 3] + "..."


def undecodable_reason(path, message):
    """A short reason for a file ffmpeg could not decode: the file name, "cannot decode", and
    ffmpeg's last line (pydub's message holds ffmpeg's whole banner and build options)."""
    last = (message.strip().splitlines() or [""])[-1].strip()
    for prefix in (f"{path}: ", f"{os.path.basename(path)}: "):
        last = last[len(prefix):] if last.startswith(prefix) else last
    return f"cannot decode {_shorten(os.path.basename(path), 60)} (ffmpeg: {_shorten(last, 100)})"


def decode(path):
    """Decode a stem file once; raises on an unreadable file."""
    try:
        info = soundfile.info(_soundfile_path(path))
    except (RuntimeError, soundfile.LibsndfileError):
        info = None
    if info is not None and info.format in _PCM_FORMATS and info.subtype in _PCM_WIDTHS:
        pcm, width, rate, samples, scale = _read_pcm_wav(path, _PCM_WIDTHS[info.subtype])
    elif info is not None and info.format in _PCM_FORMATS and info.subtype in _FLOAT_SUBTYPES:
        pcm, width, rate, samples, scale = _read_float_wav(path)
    else:
        pcm, width, rate, samples, scale = _read_with_pydub(path)
    if len(pcm) == 0:
        raise ValueError("the file holds no audio samples")
    return DecodedStem(essentia_mono=_essentia_mix(samples, scale),
                       pcm_mono=Pcm(_pydub_mix(pcm, width), width, rate))
