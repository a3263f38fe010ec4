"""The input patches Essentia's ``TensorflowPredictVGGish`` feeds to its graph.

``TensorflowPredictVGGish`` (essentia-tensorflow 2.1b6.dev1389, the version of
the published numbers) is a composite: a streaming ``FrameCutter`` configured
with ``frameSize=400, hopSize=160`` and every other parameter at its default
(``startFromZero=False``, so the first frame is centred on sample 0 with 200
zeros before it; ``validFrameThresholdRatio=0``; ``lastFrameToEndOfFile=False``,
so the last frame is the first one whose centre reaches the end of the
signal; ``silentFrames='noise'``), then ``TensorflowInputVGGish`` on every
frame (64 log-mel bands), then ``VectorRealToTensor`` with patches of 96
frames, a hop of ``patchHopSize=93`` frames, and ``lastPatchMode='discard'``
(a trailing partial patch is dropped), one patch per TensorFlow run.

This module computes the same patches with Essentia's own ``FrameCutter`` and
``TensorflowInputVGGish`` in standard mode. The one difference is the
streaming ``FrameCutter``'s ``silentFrames='noise'``: Essentia adds random
noise at -100 dB (not seeded the same way twice) to frames whose mean power is below
-100 dB. The noise moves those frames' log-mel values by about 1e-6, and by a
different amount on every run, so Essentia does not reproduce itself there
either; standard mode has no such noise and is deterministic. On every other
frame the patches are bit-identical to Essentia's (checked through a graph
whose output is its input; see ``tests/test_speech_graph.py``).
"""

from __future__ import annotations

import numpy as np

from stemeval.essentia_setup import essentia_standard

SAMPLE_RATE = 16000
FRAME_SIZE = 400
HOP_SIZE = 160
PATCH_FRAMES = 96
PATCH_HOP = 93
MEL_BANDS = 64


def frame_count(n_samples: int) -> int:
    """How many frames Essentia's FrameCutter (400/160, centred start) cuts from ``n_samples``."""
    if n_samples <= 0:
        return 0
    # Frame k starts at 160k - 200; it is the last when its centre 160k >= n_samples.
    return -(-n_samples // HOP_SIZE) + 1


def patch_count(n_samples: int) -> int:
    """How many patches ``TensorflowPredictVGGish`` makes from ``n_samples`` samples (at 16 kHz)."""
    frames = frame_count(n_samples)
    if frames < PATCH_FRAMES:
        return 0
    return (frames - PATCH_FRAMES) // PATCH_HOP + 1


def vggish_bands(audio_16k: np.ndarray, n_frames: int | None = None) -> np.ndarray:
    """The log-mel frames ([n_frames, 64] float32) Essentia computes for VGGish models.

    ``n_frames`` limits the work to the first frames (default: all of them).
    """
    audio = np.ascontiguousarray(audio_16k, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {audio.shape}")
    total = frame_count(len(audio))
    n_frames = total if n_frames is None else min(n_frames, total)
    bands = np.empty((n_frames, MEL_BANDS), np.float32)
    if n_frames == 0:
        return bands
    es = essentia_standard()  # new instances per call: safe to call from several threads
    cutter = es.FrameCutter(frameSize=FRAME_SIZE, hopSize=HOP_SIZE, startFromZero=False,
                            validFrameThresholdRatio=0, lastFrameToEndOfFile=False)
    mel = es.TensorflowInputVGGish()
    for index in range(n_frames):
        frame = cutter(audio)
        if len(frame) != FRAME_SIZE:  # frame_count must agree with FrameCutter itself
            raise RuntimeError(f"FrameCutter stopped after {index} frames, expected {total}")
        bands[index] = mel(frame)
    return bands


def vggish_patches(audio_16k: np.ndarray) -> np.ndarray:
    """The [n, 96, 64] float32 patches ``TensorflowPredictVGGish`` feeds to its graph.

    Patches of 96 frames every 93 frames; a trailing partial patch is dropped,
    so audio shorter than one patch (fewer than 15041 samples) gives [0, 96, 64].
    """
    audio = np.asarray(audio_16k)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {audio.shape}")
    n_patches = patch_count(len(audio))
    if n_patches == 0:
        return np.zeros((0, PATCH_FRAMES, MEL_BANDS), np.float32)
    bands = vggish_bands(audio, (n_patches - 1) * PATCH_HOP + PATCH_FRAMES)
    index = (np.arange(n_patches) * PATCH_HOP)[:, None] + np.arange(PATCH_FRAMES)[None, :]
    return np.ascontiguousarray(bands[index])
