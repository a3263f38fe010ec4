"""Silence trimming with pydub's exact semantics, on integer PCM arrays in memory.

The published pipeline ran ``pydub.silence.split_on_silence(seg, min_silence_len=500,
silence_thresh=seg.dBFS - 10, keep_silence=200, seek_step=100)``, joined the chunks and kept
30 s to 60 s of anything longer than 60 s. pydub does this on byte strings with ``audioop``;
this module repeats the same arithmetic (millisecond-to-frame rounding, zero padding of short
slices, ``audioop.rms``'s left-to-right double sum truncated to an integer, the dB
conversions) with numpy, and is tested against pydub itself.
"""

import math

import numpy as np

from stemeval.audio.decode import Pcm

MIN_SILENCE_MS = 500
KEEP_SILENCE_MS = 200
SEEK_STEP_MS = 100
THRESHOLD_BELOW_DBFS = 10
LONG_MS = 60000
EXCERPT_MS = (30000, 60000)


class SilentStem(ValueError):
    """Nothing is left after trimming: the published code failed on such a stem."""


def length_ms(frames, rate):
    """pydub's ``len(segment)``: the duration in whole milliseconds, rounded."""
    return round(1000 * (float(frames) / rate))


def _frame(ms, rate):
    """pydub's ``_parse_position``: the frame at a millisecond position, truncated."""
    return int(ms * (rate / 1000.0))


def slice_ms(samples, rate, start, end):
    """pydub's ``segment[start:end]`` (milliseconds): clipped to the length, zero-padded."""
    total = length_ms(len(samples), rate)
    first, last = _frame(min(start, total), rate), _frame(min(end, total), rate)
    part = samples[first:last]
    if len(part) < last - first:
        part = np.concatenate([part, np.zeros(last - first - len(part), samples.dtype)])
    return part


def rms(samples):
    """``audioop.rms``: sqrt of the left-to-right double sum of squares over n, truncated.

    Up to 16-bit samples the integer sum of squares is exact; while it stays below 2**53
    every left-to-right partial sum is an exact double too, so it is that sum.
    """
    if len(samples) == 0:
        return 0
    if samples.dtype.itemsize <= 2:
        total = int(np.sum(samples.astype(np.int64) ** 2))
        if total < 2 ** 53:
            return int(math.sqrt(float(total) / len(samples)))
    squares = samples.astype(np.float64) ** 2
    return int(math.sqrt(float(np.cumsum(squares)[-1]) / len(samples)))


def _window_rms(pcm, starts, length):
    """``rms(slice_ms(samples, rate, start, start + length))`` for every start (ms).

    Up to 16-bit samples, integer prefix sums give every window's exact sum of squares at
    once; wider samples repeat audioop's left-to-right double sum window by window.
    """
    if pcm.sample_width > 2:
        return [rms(slice_ms(pcm.samples, pcm.rate, start, start + length)) for start in starts]
    total = length_ms(len(pcm.samples), pcm.rate)
    first = np.array([_frame(min(start, total), pcm.rate) for start in starts])
    last = np.array([_frame(min(start + length, total), pcm.rate) for start in starts])
    prefix = np.concatenate([[0], np.cumsum(pcm.samples.astype(np.int64) ** 2)])
    sums = prefix[np.minimum(last, len(pcm.samples))] - prefix[first]
    counts = last - first  # slices past the end are zero-padded to this length
    return [int(math.sqrt(float(total_) / count)) if count else 0
            for total_, count in zip(sums, counts)]


def dbfs(pcm):
    """pydub's ``segment.dBFS`` (``-inf`` for digital silence)."""
    level = rms(pcm.samples)
    if not level:
        return -math.inf
    return 20 * math.log(level / pcm.full_scale, 10)


def detect_silence(pcm, min_silence_len, silence_thresh, seek_step):
    """pydub's ``detect_silence``: silent [start, end] ranges in milliseconds."""
    seg_len = length_ms(len(pcm.samples), pcm.rate)
    if seg_len < min_silence_len:
        return []
    threshold = 10 ** (float(silence_thresh) / 20) * pcm.full_scale
    last_start = seg_len - min_silence_len
    starts = list(range(0, last_start + 1, seek_step))
    if last_start % seek_step:
        starts.append(last_start)
    levels = _window_rms(pcm, starts, min_silence_len)
    silent = [start for start, level in zip(starts, levels) if level <= threshold]
    if not silent:
        return []
    ranges = []
    range_start = prev = silent[0]
    for start in silent[1:]:
        continuous = start == prev + seek_step
        has_gap = start > prev + min_silence_len
        if not continuous and has_gap:
            ranges.append([range_start, prev + min_silence_len])
            range_start = start
        prev = start
    ranges.append([range_start, prev + min_silence_len])
    return ranges


def detect_nonsilent(pcm, min_silence_len, silence_thresh, seek_step):
    """pydub's ``detect_nonsilent``: the complement of the silent ranges."""
    silent = detect_silence(pcm, min_silence_len, silence_thresh, seek_step)
    seg_len = length_ms(len(pcm.samples), pcm.rate)
    if not silent:
        return [[0, seg_len]]
    if silent[0][0] == 0 and silent[0][1] == seg_len:
        return []
    ranges, prev_end = [], 0
    for start, end in silent:
        ranges.append([prev_end, start])
        prev_end = end
    if silent[-1][1] != seg_len:
        ranges.append([prev_end, seg_len])
    if ranges[0] == [0, 0]:
        ranges.pop(0)
    return ranges


def split_on_silence(pcm, min_silence_len, silence_thresh, keep_silence, seek_step):
    """pydub's ``split_on_silence``: the non-silent chunks (sample arrays) with margins."""
    ranges = [[start - keep_silence, end + keep_silence]
              for start, end in detect_nonsilent(pcm, min_silence_len, silence_thresh, seek_step)]
    for current, following in zip(ranges, ranges[1:]):
        if following[0] < current[1]:
            current[1] = (current[1] + following[0]) // 2
            following[0] = current[1]
    seg_len = length_ms(len(pcm.samples), pcm.rate)
    return [slice_ms(pcm.samples, pcm.rate, max(start, 0), min(end, seg_len))
            for start, end in ranges]


def trim_silence(pcm):
    """The published excerpt: chunks above ``dBFS - 10`` joined, 30-60 s of a longer result."""
    chunks = split_on_silence(pcm, MIN_SILENCE_MS, dbfs(pcm) - THRESHOLD_BELOW_DBFS,
                              KEEP_SILENCE_MS, SEEK_STEP_MS)
    joined = np.concatenate(chunks) if chunks else pcm.samples[:0]
    if len(joined) == 0:
        raise SilentStem("no audio left after silence trimming (a silent stem)")
    if length_ms(len(joined), pcm.rate) > LONG_MS:
        joined = slice_ms(joined, pcm.rate, *EXCERPT_MS)
    return Pcm(joined, pcm.sample_width, pcm.rate)
