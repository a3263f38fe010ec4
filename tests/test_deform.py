"""--deform: each step is audiomentations' own transform, seeded from the stem and the SPEC."""

import random
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from audiomentations import (
    AddGaussianSNR,
    ApplyImpulseResponse,
    ClippingDistortion,
    Gain,
    LowPassFilter,
    Mp3Compression,
    PitchShift,
    TimeStretch,
)

from stemeval.audio.decode import decode
from stemeval.audio.deform import MP3_BITRATES, Deformer, parse_spec, requantise, seed_for
from stemeval.audio.reverb import SyntheticReverb
from stemeval.common.errors import UserError
from tests.helpers.cli import ROOT, run_script
from tests.helpers.signals import concat, silence, tone, write_wav

RATE = 16000

# SPEC -> audiomentations' transform with the same parameters, written out independently
TRANSFORMS = {
    "noise:snr=10": lambda: AddGaussianSNR(min_snr_db=10, max_snr_db=10, p=1.0),
    "mp3:bitrate=64": lambda: Mp3Compression(min_bitrate=64, max_bitrate=64, backend="pydub",
                                             p=1.0),
    "gain:db=-12": lambda: Gain(min_gain_db=-12, max_gain_db=-12, p=1.0),
    "lowpass:cutoff=4000": lambda: LowPassFilter(min_cutoff_freq=4000, max_cutoff_freq=4000,
                                                 min_rolloff=12, max_rolloff=12, p=1.0),
    "pitch:semitones=2": lambda: PitchShift(min_semitones=2, max_semitones=2, p=1.0),
    "stretch:rate=0.9": lambda: TimeStretch(min_rate=0.9, max_rate=0.9, p=1.0),
    "clip:percentile=10": lambda: ClippingDistortion(min_percentile_threshold=10,
                                                     max_percentile_threshold=10, p=1.0),
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tree")
    for name, freq in (("a/bass/x.wav", 110), ("b/bass/x.wav", 110)):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        write_wav(folder / name, concat(tone(0.6, RATE, freq), silence(0.2, RATE)), RATE)
    return folder


def _expected(transforms, decoded, seed):
    random.seed(seed)
    np.random.seed(seed)
    samples = decoded.essentia_mono.astype(np.float32)
    for transform in transforms:
        samples = transform(samples, decoded.rate)
    return requantise(samples, decoded.pcm_mono.sample_width, decoded.rate).samples


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("spec", sorted(TRANSFORMS))
def test_each_step_is_the_audiomentations_transform(tree, spec):
    decoded = decode(str(tree / "a/bass/x.wav"))
    deformed = Deformer(spec, str(tree))(decoded, str(tree / "a/bass/x.wav"))
    expected = _expected([TRANSFORMS[spec]()], decoded, seed_for("a/bass/x.wav", spec + (
        ",rolloff=12" if spec.startswith("lowpass") else "")))
    assert np.array_equal(deformed.pcm_mono.samples, expected)
    assert np.array_equal(deformed.essentia_mono, deformed.pcm_mono.to_float())
    assert not np.array_equal(deformed.pcm_mono.samples[:len(expected)],
                              decoded.pcm_mono.samples[:len(expected)])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_chain_applies_its_steps_in_order_under_one_seed(tree):
    decoded = decode(str(tree / "a/bass/x.wav"))
    spec = "noise:snr=10+mp3:bitrate=64"
    deformed = Deformer(spec, str(tree))(decoded, str(tree / "a/bass/x.wav"))
    expected = _expected([TRANSFORMS["noise:snr=10"](), TRANSFORMS["mp3:bitrate=64"]()],
                         decoded, seed_for("a/bass/x.wav", spec))
    assert np.array_equal(deformed.pcm_mono.samples, expected)


def test_reverb_is_apply_impulse_response_with_the_synthetic_room(tmp_path):
    """At wet=1 the convolution is audiomentations' (its peak scaled to the dry peak);
    smaller wet mixes in the dry signal."""
    samples = tone(0.5, RATE, 300)[:, 0].astype(np.float32)
    reverb = SyntheticReverb(rt60=0.3)
    soundfile.write(tmp_path / "ir.wav", reverb.impulse_response(RATE), RATE, subtype="FLOAT")
    theirs = ApplyImpulseResponse(ir_path=str(tmp_path / "ir.wav"), p=1.0)(samples, RATE)
    ours = reverb(samples, RATE)
    assert np.allclose(ours, theirs * (np.abs(samples).max() / 0.5), atol=1e-5)
    mixed = SyntheticReverb(rt60=0.3, wet=0.3)(samples, RATE)
    assert np.allclose(mixed, 0.7 * samples + 0.3 * ours, atol=1e-6)
    assert np.array_equal(SyntheticReverb(0.3).impulse_response(RATE),
                          reverb.impulse_response(RATE))


def test_same_spec_same_audio_whatever_ran_before(tree, tmp_path):
    path = str(tree / "a/bass/x.wav")
    decoded = decode(path)
    first = Deformer("noise:snr=5", str(tree))(decoded, path).pcm_mono.samples
    other = str(tree / "b/bass/x.wav")
    Deformer("noise:snr=5", str(tree))(decode(other), other)
    random.random(), np.random.random()
    again = Deformer("noise:snr=5.0", str(tree))(decoded, path).pcm_mono.samples
    assert np.array_equal(first, again)
    copy = tmp_path / "copy"
    (copy / "a/bass").mkdir(parents=True)
    (copy / "a/bass/x.wav").write_bytes((tree / "a/bass/x.wav").read_bytes())
    elsewhere = Deformer("noise:snr=5", str(copy))(decode(str(copy / "a/bass/x.wav")),
                                                   str(copy / "a/bass/x.wav"))
    assert np.array_equal(first, elsewhere.pcm_mono.samples)


def test_different_stem_different_noise(tree):
    """Both files hold the same samples; only their paths differ."""
    deformer = Deformer("noise:snr=5", str(tree))
    a, b = (deformer(decode(str(tree / path)), str(tree / path)).pcm_mono.samples
            for path in ("a/bass/x.wav", "b/bass/x.wav"))
    clean = decode(str(tree / "a/bass/x.wav")).pcm_mono.samples
    assert np.array_equal(decode(str(tree / "b/bass/x.wav")).pcm_mono.samples, clean)
    assert not np.array_equal(a.astype(int) - clean, b.astype(int) - clean)


def test_clean_leaves_the_stem_alone(tree):
    decoded = decode(str(tree / "a/bass/x.wav"))
    assert Deformer("clean", str(tree))(decoded, str(tree / "a/bass/x.wav")) is decoded
    assert parse_spec("lowpass:cutoff=4000") == parse_spec("lowpass:rolloff=12,cutoff=4e3")


@pytest.mark.parametrize("spec, fragments", [
    ("echo:delay=1", ["unknown deformation 'echo'", "noise (snr)", "reverb (rt60, wet)"]),
    ("noise:level=3", ["unknown parameter 'level' of noise", "valid: snr"]),
    ("noise", ["noise needs snr"]),
    ("noise:snr=loud", ["snr must be a number"]),
    ("mp3:bitrate=65", ["bitrate must be one of 8, 16"]),
    ("clip:percentile=150", ["percentile must be between 0 and 100"]),
    ("gain:db=-6+", ["empty", "unknown deformation ''"]),
])
def test_bad_spec_names_what_is_wrong(spec, fragments):
    with pytest.raises(UserError) as error:
        parse_spec(spec)
    assert str(error.value).startswith("--deform ")
    assert any(fragment in str(error.value) for fragment in fragments)


def test_bad_spec_on_the_command_line_is_one_line_before_any_work(tree, tmp_path):
    result = run_script("analyze_dsd100.py", tree, "--deform", "noise:snr=x", "--checkpoint",
                        tmp_path / "none.pth", "--output", tmp_path / "out.csv")
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: --deform noise:snr=x: snr must be a number, "
                                     "not 'x'")
    assert not (tmp_path / "out.csv").exists()


def test_cli_deforms_before_the_gate(tree, tmp_path):
    """gain:db=0 gives the clean rows (the requantised 16-bit audio is the same); a
    deformation that the gate sees (-120 dB: digital silence) turns the rows into errors."""
    from tests.helpers.ast_weights import random_model, save_original_checkpoint
    from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph

    checkpoint = save_original_checkpoint(random_model(), tmp_path / "ast.pth")
    graph = write_constant_speech_graph(tmp_path / "speech.pb", logit_for_score(20.0))
    outputs = {}
    for spec in (None, "gain:db=0", "gain:db=-120"):
        output = tmp_path / f"{spec}.csv"
        result = run_script("analyze_moisesdb.py", tree, "--checkpoint", checkpoint,
                            "--speech-model", graph, "--output", output, "--quiet",
                            *(["--deform", spec] if spec else []))
        assert result.returncode == 0, result.stderr
        outputs[spec] = output.read_text()
    assert outputs["gain:db=0"] == outputs[None]
    assert outputs["gain:db=-120"].count(",error,error") == 2
    assert outputs[None].count(",error,error") == 0


def test_mp3_bitrates_are_audiomentations_own():
    """The SPEC check lists the bitrates without importing audiomentations; they must be its."""
    from audiomentations import Mp3Compression

    assert MP3_BITRATES == tuple(Mp3Compression.SUPPORTED_BITRATES)


def test_a_run_without_deform_needs_no_audiomentations(tmp_path):
    """Only --deform needs audiomentations (and scipy): without them a plain run still runs."""
    from tests.helpers.ast_weights import random_model, save_original_checkpoint
    from tests.helpers.python_hooks import hooked_env
    from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph

    (tmp_path / "Sources" / "Dev" / "a").mkdir(parents=True)
    write_wav(tmp_path / "Sources" / "Dev" / "a" / "bass.wav", tone(1.5, RATE, 110), RATE)
    save_original_checkpoint(random_model(seed=1), tmp_path / "ast.pth")
    write_constant_speech_graph(tmp_path / "speech.pb", logit_for_score(3.0))
    result = subprocess.run(
        [sys.executable, str(ROOT / "analyze_dsd100.py"), "Sources", "--checkpoint", "ast.pth",
         "--speech-model", "speech.pb", "--quiet"], cwd=tmp_path, capture_output=True,
        text=True, timeout=300,
        env=hooked_env(tmp_path / "hooks", block=("audiomentations", "scipy")))
    assert result.returncode == 0, result.stderr


# --- Draws (@seedK), for a sweep's repeats ---------------------------------------------------

def test_the_first_draw_keeps_the_seeds_made_before_draws(tree):
    """seed_for written out again: the first 4 bytes of sha256 of the path and the SPEC."""
    import hashlib

    assert seed_for("a/bass/x.wav", "noise:snr=5") == int.from_bytes(
        hashlib.sha256(b"a/bass/x.wav\nnoise:snr=5").digest()[:4], "big")
    path = str(tree / "a/bass/x.wav")
    decoded = decode(path)
    first = Deformer("noise:snr=5", str(tree))(decoded, path).pcm_mono.samples
    assert np.array_equal(Deformer("noise:snr=5@seed0", str(tree))(decoded, path)
                          .pcm_mono.samples, first)
    drawn = Deformer("noise:snr=5@seed1", str(tree))
    assert drawn.spec == "noise:snr=5@seed1"
    expected = _expected([AddGaussianSNR(min_snr_db=5, max_snr_db=5, p=1.0)], decoded,
                         seed_for("a/bass/x.wav", "noise:snr=5@seed1"))
    assert np.array_equal(drawn(decoded, path).pcm_mono.samples, expected)
    assert not np.array_equal(expected, first)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("spec", sorted(TRANSFORMS) + ["reverb:rt60=0.3,wet=0.5"])
def test_only_noise_depends_on_the_seed(tree, spec):
    """Why a sweep draws only noise again: every other step gives the same audio under
    another seed, and a draw of it is refused."""
    from stemeval.audio.deform import apply_seeded

    path = str(tree / "a/bass/x.wav")
    decoded = decode(path)
    deformer = Deformer(spec, str(tree))
    other = apply_seeded([step.transform() for step in deformer.steps],
                         decoded.essentia_mono.astype(np.float32), decoded.rate, 12345)
    same = np.array_equal(deformer(decoded, path).pcm_mono.samples,
                          requantise(np.asarray(other, dtype=np.float32),
                                     decoded.pcm_mono.sample_width, decoded.rate).samples)
    assert same == (not spec.startswith("noise"))
    if not same:
        return
    with pytest.raises(UserError) as error:
        Deformer(spec + "@seed1", str(tree))
    assert str(error.value).endswith("gives the same audio whatever the seed (only noise is "
                                     "drawn at random); drop @seed1")


@pytest.mark.parametrize("spec", ["noise:snr=5@seed", "noise:snr=5@1", "noise:snr=5@seed-1",
                                  "noise:snr=5@seedx"])
def test_a_bad_draw_names_how_it_is_written(spec):
    with pytest.raises(UserError) as error:
        Deformer(spec, ".")
    assert str(error.value) == (f"--deform {spec}: a draw is written @seedK, K a whole number "
                                f"(e.g. noise:snr=10@seed1)")
