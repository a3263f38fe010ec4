"""Deformations of a decoded stem (``--deform SPEC``), built on audiomentations.

A SPEC is one deformation or a chain of them joined by ``+``; each is ``name:param=value``
with parameters separated by ``,``, e.g. ``noise:snr=10+mp3:bitrate=64`` or
``reverb:rt60=0.6,wet=0.3``. ``clean`` is the empty chain. Every step is the audiomentations
transform with ``p=1`` and its random range collapsed to the one value given, except
``reverb`` (see ``stemeval.audio.reverb.SyntheticReverb``). audiomentations is imported when a stem
is first deformed, so checking a SPEC (and a run without one) does not import it.

Determinism: audiomentations draws from Python's ``random`` and NumPy's global generator, so
each stem is deformed under a lock with both seeded from the stem's path below the dataset
folder and the canonical SPEC (``seed_for``); any copy of the dataset, in any order, on any
machine, gives the same audio. The generators' previous states are restored afterwards.

Draws: a SPEC may end in ``@seedK`` (K a whole number) to draw its random steps (``noise``;
the other kinds give the same audio whatever the seed) another time: the suffix is part of
the canonical SPEC the seed is made from. ``@seed0`` is the SPEC without a suffix, the draw
every run makes by default, so its seeds are those made before draws existed.

Both views of the stem come from the deformed signal: Essentia's float view is deformed,
requantised to the stem's PCM sample width (as a file of that width would hold it; samples
beyond full scale are clipped), and the two views are derived from those integers, so the
speech gate and the silence trim see the same deformed audio.
"""

import hashlib
import os
import random
import re
import threading
import warnings
from dataclasses import dataclass

import numpy as np

from stemeval.audio.decode import INT_TYPES, DecodedStem, Pcm
from stemeval.common.errors import UserError

# Imported inside the functions that use them, so that what needs none of them starts without them:
# audiomentations, pydub and stemeval.audio.reverb.

CLEAN = "clean"
# audiomentations' Mp3Compression.SUPPORTED_BITRATES (0.43.1), here so that a SPEC is checked
# without importing audiomentations (a test holds the two equal)
MP3_BITRATES = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 192, 224, 256, 320)


@dataclass(frozen=True)
class Param:
    """One parameter: a number in ``[low, high]`` (or one of ``choices``); ``default=None``
    means required."""

    name: str
    meaning: str
    low: float = None
    high: float = None
    integer: bool = False
    choices: tuple = None
    default: float = None

    def parse(self, step, text):
        try:
            value = int(text) if self.integer else float(text)
        except ValueError:
            kind = "an integer" if self.integer else "a number"
            raise UserError(f"{step}: {self.name} must be {kind}, not {text!r}") from None
        if not np.isfinite(value):
            raise UserError(f"{step}: {self.name} must be finite")
        if self.choices is not None and value not in self.choices:
            raise UserError(f"{step}: {self.name} must be one of "
                            f"{', '.join(map(str, self.choices))}")
        if self.low is not None and not self.low <= value <= self.high:
            raise UserError(f"{step}: {self.name} must be between {self.low:g} "
                            f"and {self.high:g}")
        return value


@dataclass(frozen=True)
class Kind:
    """A deformation: its parameters (the first is its strength), its transform, and whether
    its audio depends on the seed (``random``)."""

    params: tuple
    build: object
    random: bool = False

    @property
    def strength(self):
        return self.params[0].name


def _audiomentations():
    """audiomentations (and scipy), imported when a stem is first deformed, not before."""
    import audiomentations

    return audiomentations


def _mp3(bitrate):
    import pydub  # noqa: F401  (the backend, which audiomentations imports only when it runs)

    with warnings.catch_warnings():  # the only backend installed; deprecated but exact
        warnings.simplefilter("ignore", DeprecationWarning)
        return _audiomentations().Mp3Compression(min_bitrate=bitrate, max_bitrate=bitrate,
                                                 backend="pydub", p=1.0)


def _reverb(rt60, wet):
    from stemeval.audio.reverb import SyntheticReverb

    return SyntheticReverb(rt60, wet)


KINDS = {
    "noise": Kind((Param("snr", "signal-to-noise ratio, dB", -40, 100),),
                  lambda snr: _audiomentations().AddGaussianSNR(min_snr_db=snr, max_snr_db=snr,
                                                                p=1.0),
                  random=True),
    "mp3": Kind((Param("bitrate", "kbps", integer=True, choices=MP3_BITRATES),), _mp3),
    "gain": Kind((Param("db", "gain, dB", -120, 60),),
                 lambda db: _audiomentations().Gain(min_gain_db=db, max_gain_db=db, p=1.0)),
    "lowpass": Kind((Param("cutoff", "Hz, below half the stem's rate", 1, 1e6),
                     Param("rolloff", "dB/octave, a multiple of 6", 6, 96, integer=True,
                           choices=tuple(range(6, 97, 6)), default=12)),
                    lambda cutoff, rolloff: _audiomentations().LowPassFilter(
                        min_cutoff_freq=cutoff, max_cutoff_freq=cutoff, min_rolloff=rolloff,
                        max_rolloff=rolloff, p=1.0)),
    "pitch": Kind((Param("semitones", "shift, semitones", -24, 24),),
                  lambda semitones: _audiomentations().PitchShift(
                      min_semitones=semitones, max_semitones=semitones, p=1.0)),
    "stretch": Kind((Param("rate", "speed factor (length kept)", 0.1, 10),),
                    lambda rate: _audiomentations().TimeStretch(min_rate=rate, max_rate=rate,
                                                                p=1.0)),
    "clip": Kind((Param("percentile", "percent of samples clipped", 0, 100, integer=True),),
                 lambda percentile: _audiomentations().ClippingDistortion(
                     min_percentile_threshold=percentile, max_percentile_threshold=percentile,
                     p=1.0)),
    "reverb": Kind((Param("rt60", "reverberation time, s", 0.01, 10),
                    Param("wet", "share of the reverberant signal", 0, 1, default=1.0)),
                   _reverb),
}


def describe_kinds():
    """``clip (percentile), gain (db), ...`` for error messages."""
    return ", ".join(f"{name} ({', '.join(p.name for p in kind.params)})"
                     for name, kind in sorted(KINDS.items()))


@dataclass(frozen=True)
class Step:
    name: str
    values: tuple  # one value per parameter of the kind, defaults filled in

    @property
    def kind(self):
        return KINDS[self.name]

    @property
    def strength(self):
        """The value of the step's first parameter (what a sweep's plot puts on its x axis)."""
        return self.values[0]

    def text(self):
        return f"{self.name}:" + ",".join(f"{p.name}={v:g}" for p, v in
                                          zip(self.kind.params, self.values))

    def transform(self):
        return self.kind.build(*self.values)


def _parse_step(text):
    name, colon, params_text = text.strip().partition(":")
    name = name.strip().lower()
    if name not in KINDS:
        raise UserError(f"{text}: unknown deformation {name!r} "
                        f"(valid: {describe_kinds()})")
    kind = KINDS[name]
    by_name = {p.name: p for p in kind.params}
    given = {}
    for item in filter(None, (part.strip() for part in params_text.split(","))):
        key, equals, value = item.partition("=")
        key = key.strip().lower()
        if key not in by_name:
            raise UserError(f"{text}: unknown parameter {key!r} of {name} "
                            f"(valid: {', '.join(by_name)})")
        if not equals:
            raise UserError(f"{text}: {key} needs a value ({key}=...)")
        if key in given:
            raise UserError(f"{text}: {key} is given twice")
        given[key] = by_name[key].parse(text, value.strip())
    missing = [p.name for p in kind.params if p.default is None and p.name not in given]
    if missing:
        raise UserError(f"{text}: {name} needs {', '.join(missing)} "
                        f"(e.g. {name}:{kind.strength}=...)")
    return Step(name, tuple(given.get(p.name, p.default) for p in kind.params))


def parse_spec(spec, context="--deform"):
    """The steps of a SPEC (none for ``clean``); raises UserError naming what is wrong,
    prefixed by ``context`` (where the SPEC was given). Each step's transform is built once
    here, so a missing package (pydub for mp3) shows before any work."""
    if spec is None or not spec.strip():
        raise UserError(f"{context}: empty SPEC (valid deformations: {describe_kinds()})")
    if spec.strip().lower() == CLEAN:
        return ()
    try:
        steps = tuple(_parse_step(part) for part in spec.split("+"))
    except UserError as error:
        raise UserError(f"{context} {error}") from None
    for step in steps:
        step.transform()
    return steps


DRAW = "@seed"


def split_draw(spec, context="--deform"):
    """``(SPEC, K)`` of ``SPEC@seedK`` (K 0 when there is no suffix); raises UserError when
    the suffix is not ``@seed`` and a whole number."""
    text, at, draw = (spec or "").rpartition("@")
    if not at:
        return spec, 0
    number = re.fullmatch(DRAW[1:] + "([0-9]+)", draw.strip().lower())
    if number is None:
        raise UserError(f"{context} {spec}: a draw is written {DRAW}K, K a whole number "
                        f"(e.g. noise:snr=10{DRAW}1)")
    return text, int(number.group(1))


def is_random(steps):
    """Whether the audio of a chain depends on its seed (a ``random`` kind in it)."""
    return any(step.kind.random for step in steps)


def parse_draw(spec, context="--deform"):
    """``(steps, K)`` of a SPEC with or without ``@seedK``; a draw of a SPEC whose audio does
    not depend on the seed is refused (every draw would be the same audio)."""
    text, draw = split_draw(spec, context)
    steps = parse_spec(text, context)
    if draw and not is_random(steps):
        raise UserError(f"{context} {spec}: {canonical(steps)} gives the same audio whatever "
                        f"the seed (only noise is drawn at random); drop {DRAW}{draw}")
    return steps, draw


def canonical(steps, draw=0):
    """The SPEC written one way (parameters in order, defaults included, ``@seedK`` for a
    draw other than 0): seeds and names."""
    return ("+".join(step.text() for step in steps) or CLEAN) + (f"{DRAW}{draw}" if draw else "")


def seed_for(relative_path, spec_text):
    """A 32-bit seed from the stem's path below the dataset folder and the canonical SPEC,
    its draw (``@seedK``) included: draw 0 has no suffix, so its seeds are unchanged."""
    key = f"{relative_path.replace(chr(92), '/')}\n{spec_text}".encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big")


_RNG_LOCK = threading.Lock()


def apply_seeded(transforms, samples, rate, seed):
    """Apply ``transforms`` in order with both global generators seeded by ``seed``."""
    with _RNG_LOCK:
        python_state, numpy_state = random.getstate(), np.random.get_state()
        random.seed(seed)
        np.random.seed(seed)
        try:
            for transform in transforms:
                samples = transform(samples, rate)
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
    return samples


def requantise(samples, width, rate):
    """Float samples as integer PCM of ``width`` bytes (rounded, clipped to full scale)."""
    full_scale = 2.0 ** (8 * width - 1)
    ints = np.clip(np.round(samples.astype(np.float64) * full_scale), -full_scale, full_scale - 1)
    return Pcm(ints.astype(INT_TYPES[width]), width, rate)


class Deformer:
    """Deforms decoded stems by one SPEC; stems are named by their path below ``root`` (the
    dataset folder, or the folder of a manifest file)."""

    def __init__(self, spec, root, context="--deform"):
        self.steps, draw = parse_draw(spec, context)
        self.spec = canonical(self.steps, draw)
        self.root = root if os.path.isdir(root) else os.path.dirname(os.path.abspath(root))

    def relative(self, path):
        return os.path.relpath(path, self.root).replace(os.sep, "/")

    def __call__(self, decoded, path):
        """The deformed ``DecodedStem`` of the stem at ``path``; ``decoded`` is left as is."""
        if not self.steps:
            return decoded
        rate = decoded.rate
        for step in self.steps:
            if step.name == "lowpass" and step.values[0] >= rate / 2:
                raise ValueError(f"lowpass cutoff {step.values[0]:g} Hz is not below half the "
                                 f"stem's rate ({rate} Hz)")
        samples = apply_seeded([step.transform() for step in self.steps],
                               decoded.essentia_mono.astype(np.float32), rate,
                               seed_for(self.relative(path), self.spec))
        pcm = requantise(np.asarray(samples, dtype=np.float32), decoded.pcm_mono.sample_width, rate)
        return DecodedStem(essentia_mono=pcm.to_float(), pcm_mono=pcm)
