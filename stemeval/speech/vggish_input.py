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

``patch_bands`` computes the same patches with Essentia's own ``TensorflowInputVGGish``
on frames cut as that ``FrameCutter`` cuts them, patch by patch, so that a caller can
compute only the patches it needs. The one difference is the
streaming ``FrameCutter``'s ``silentFrames='noise'``: Essentia adds random
noise at -100 dB (not seeded the same way twice) to frames whose mean power is below
-100 dB. The noise moves those frames' log-mel values by about 1e-6, and by a
different amount on every run, so Essentia does not reproduce itself there
either; here there is no such noise and the patches are deterministic. On every other
frame the patches are bit-identical to Essentia's (checked through a graph
whose output is its input; see ``tests/test_speech_graph.py``).

``DevicePatches`` computes them with PyTorch on a device, many frames at once, for the GPU
where the speech graph runs: Essentia's frame by frame loop is half of a stem's CPU steps.
Its window and mel filterbank are Essentia's, read off Essentia's ``Windowing`` and
``MelBands`` as ``TensorflowInputVGGish`` configures them; only the FFT and the sums are
PyTorch's, so its patches differ from Essentia's by float32 rounding (about 1e-7 in the
log-mel values on average, up to 4e-4 in near-empty bands beside a pure tone, where
Essentia's own float32 FFT is as far from a float64 one), and the speech gate settles close
calls on Essentia's patches (``stemeval.speech.gate.CLOSE_CALL``).
"""

from __future__ import annotations

import numpy as np

from stemeval.common.essentia_setup import essentia_standard

# Imported inside the functions that use them, so that what needs none of them starts without them:
# torch.

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


def patch_span(index: int) -> tuple[int, int]:
    """The samples ``[start, stop)`` that patch ``index`` is computed from (may overhang)."""
    first = index * PATCH_HOP * HOP_SIZE - FRAME_SIZE // 2
    return first, first + (PATCH_FRAMES - 1) * HOP_SIZE + FRAME_SIZE


def patch_bands(audio_16k: np.ndarray, indices) -> np.ndarray:
    """The patches ``indices`` ([n, 96, 64] float32), each computed from its own samples.

    Frame k is the 400 samples centred on sample 160 k, zero beyond the audio's ends, as
    Essentia's FrameCutter cuts it; any patch can so be computed without the others.
    """
    audio = np.ascontiguousarray(audio_16k, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {audio.shape}")
    # one per call: thread-safe; its C++ compute is called without the Python wrapper's
    # per-call type checks (the frames are float32 vectors already), which cost as much again
    mel = essentia_standard().TensorflowInputVGGish().__compute__
    padded = np.concatenate([np.zeros(FRAME_SIZE // 2, np.float32), audio,
                             np.zeros(PATCH_FRAMES * HOP_SIZE + FRAME_SIZE, np.float32)])
    out = np.empty((len(indices), PATCH_FRAMES, MEL_BANDS), np.float32)
    for row, index in enumerate(indices):
        start = patch_span(index)[0] + FRAME_SIZE // 2
        for frame in range(PATCH_FRAMES):
            offset = start + frame * HOP_SIZE
            out[row, frame] = mel(padded[offset:offset + FRAME_SIZE])
    return out


class DevicePatches:
    """``patch_bands`` by PyTorch on ``device``: ``(audio_16k, indices)`` -> [n, 96, 64]
    float32 tensor on the device (see the module docstring for how it differs)."""

    FFT_SIZE = 512
    LOG_SHIFT = 0.01

    def __init__(self, device):
        import torch

        standard = essentia_standard()
        bins = self.FFT_SIZE // 2 + 1
        # TensorflowInputVGGish's own configuration of its steps
        window = standard.Windowing(type="hann", size=FRAME_SIZE,
                                    zeroPadding=self.FFT_SIZE - FRAME_SIZE, normalized=False,
                                    zeroPhase=False)(np.ones(FRAME_SIZE, np.float32))
        mel = standard.MelBands(inputSize=bins, numberBands=MEL_BANDS, sampleRate=16000,
                                lowFrequencyBound=125, highFrequencyBound=7500,
                                warpingFormula="htkMel", weighting="warping",
                                normalize="unit_max", type="magnitude")
        filterbank = np.stack([mel(row) for row in np.eye(bins, dtype=np.float32)])  # linear
        self.device = torch.device(device)
        self.window = torch.from_numpy(window[:FRAME_SIZE]).to(self.device)
        self.filterbank = torch.from_numpy(filterbank).to(self.device)
        self._offsets = (torch.arange(PATCH_FRAMES)[:, None] * HOP_SIZE +
                         torch.arange(FRAME_SIZE)[None, :]).to(self.device)

    def __call__(self, audio_16k, indices):
        import torch

        if len(indices) == 0:
            return torch.empty((0, PATCH_FRAMES, MEL_BANDS), device=self.device)
        audio = torch.from_numpy(np.ascontiguousarray(audio_16k, dtype=np.float32))
        padded = torch.nn.functional.pad(audio.to(self.device), (
            FRAME_SIZE // 2, PATCH_FRAMES * HOP_SIZE + FRAME_SIZE))
        # patch i's first frame starts at sample i * 93 * 160 of the padded audio
        starts = torch.as_tensor(np.asarray(indices, np.int64) * PATCH_HOP * HOP_SIZE,
                                 device=self.device)
        frames = padded[starts[:, None, None] + self._offsets] * self.window
        spectrum = torch.fft.rfft(frames, n=self.FFT_SIZE).abs()
        return torch.log(spectrum @ self.filterbank + self.LOG_SHIFT)
