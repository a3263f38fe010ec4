"""The tagger registry, the AST as a tagger, generic ``hf:`` taggers, and the tagger-agnostic
pipeline (AudioSet path by label name, zero-shot path), with small random models."""

import numpy as np
import pytest
import torch

from stemeval import taggers
from stemeval.audio.decode import decode
from stemeval.audio.resample import resample_16k
from stemeval.audio.silence import trim_silence
from stemeval.common.errors import UserError
from stemeval.datasets import category_map
from stemeval.engine.pipeline import Evaluator
from stemeval.engine.run import run_stems
from stemeval.labels.audioset import AUDIOSET_LABELS
from stemeval.speech.gate import speech_model_factory
from stemeval.taggers.ast import AstTagger
from stemeval.taggers.ast_features import fbank_features
from stemeval.taggers.interface import Tagger, TaggerOutput
from tests.helpers.ast_weights import random_model, save_original_checkpoint
from tests.helpers.cli import run_script
from tests.helpers.hf_models import hf_model, hf_wav2vec2
from tests.helpers.signals import concat, silence, tone, write_wav
from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph

RATE = 22050


@pytest.fixture
def stem_wav(tmp_path):
    return write_wav(tmp_path / "stem.wav",
                     concat(tone(1.5, RATE, 330), silence(0.8, RATE), tone(1.0, RATE, 500)), RATE)


def test_registry_names_and_unknown_tagger():
    assert list(taggers.TAGGERS) == ["ast", "panns-cnn14", "passt", "clap"]
    assert taggers.check_name("hf:someone/model") == "hf:someone/model"
    for bad in ("nope", "hf:", "hf: "):
        with pytest.raises(UserError, match=r"unknown tagger \(choose ast, panns-cnn14, passt, "
                                            r"clap, or hf:<repo id>"):
            taggers.check_name(bad)


def test_unknown_tagger_is_one_line_before_any_work(tmp_path):
    (tmp_path / "tree").mkdir()
    result = run_script("analyze_dsd100.py", "tree", "--tagger", "nope", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: --tagger 'nope': unknown tagger")
    assert result.stderr.count("\n") == 1


def test_ast_tagger_scores_and_features_are_the_published_path(tmp_path, stem_wav):
    model = random_model(seed=2)
    path = save_original_checkpoint(model, tmp_path / "ast.pth")
    tagger = taggers.load("ast", str(path))
    assert isinstance(tagger, AstTagger) and tagger.weights == str(path)
    assert tagger.labels == AUDIOSET_LABELS and tagger.sample_rate == 16000
    excerpt = trim_silence(decode(str(stem_wav)).pcm_mono)
    features = tagger.features(excerpt)
    expected = fbank_features(resample_16k(excerpt.to_float(), excerpt.rate), 1024)
    assert torch.equal(features, expected)
    output = tagger.forward([features, features * 0.5], "cpu")
    with torch.no_grad():
        logits = model(torch.stack([features, features * 0.5]))
    assert torch.equal(output.scores, torch.sigmoid(logits))
    assert output.scores.dtype == output.embeddings.dtype == torch.float32
    assert output.embeddings.shape == (2, 64)


def test_ast_embedding_is_transformers_pooled_token(tmp_path):
    """The saved AST embedding is the pooled token of transformers' AST, same weights."""
    reference = hf_model(seed=4)
    reference.save_pretrained(tmp_path / "hf")
    tagger = taggers.load("ast", str(tmp_path / "hf"))
    fbank = torch.randn(2, 1024, 128)
    output = tagger.forward(list(fbank), "cpu")
    with torch.no_grad():
        hf = reference(fbank, output_hidden_states=False)
        pooled = reference.audio_spectrogram_transformer(fbank).pooler_output
    torch.testing.assert_close(output.embeddings, pooled, atol=1e-4, rtol=0)
    torch.testing.assert_close(output.scores, torch.sigmoid(hf.logits), atol=1e-5, rtol=0)


def test_hf_ast_runs_as_the_ast_tagger(tmp_path, monkeypatch):
    """--tagger hf:<an AST> is the ast tagger on the same folder: one path, not two."""
    hf_model(seed=5).save_pretrained(tmp_path / "hf")
    via_hf = taggers.load("hf:someone/ast-small", str(tmp_path / "hf"))
    via_ast = taggers.load("ast", str(tmp_path / "hf"))
    assert isinstance(via_hf, AstTagger) and via_hf.name == "hf:someone/ast-small"
    fbank = [torch.randn(1024, 128)]
    assert torch.equal(via_hf.forward(fbank, "cpu").scores, via_ast.forward(fbank, "cpu").scores)


def test_generic_hf_tagger_matches_transformers(tmp_path, stem_wav):
    reference = hf_wav2vec2(tmp_path / "w2v")
    tagger = taggers.load("hf:someone/w2v-audioset", str(tmp_path / "w2v"))
    assert tagger.name == "hf:someone/w2v-audioset" and tagger.sample_rate == 16000
    excerpt = trim_silence(decode(str(stem_wav)).pcm_mono)
    short = trim_silence(decode(str(stem_wav)).pcm_mono)
    short.samples = short.samples[: RATE]
    features = [tagger.features(excerpt), tagger.features(short)]
    assert features[0].shape != features[1].shape  # raw waveforms: run one by one
    output = tagger.forward(features, "cpu")
    for index, item in enumerate(features):
        with torch.no_grad():
            hidden = reference.wav2vec2(item[None]).last_hidden_state
            pooled = reference.projector(hidden).mean(dim=1)
            logits = reference.classifier(pooled)
        torch.testing.assert_close(output.scores[index], torch.sigmoid(logits[0]))
        torch.testing.assert_close(output.embeddings[index], pooled[0])


def test_generic_hf_tagger_with_other_labels_is_refused(tmp_path):
    labels = list(AUDIOSET_LABELS)
    labels[3] = "Gossip"
    hf_wav2vec2(tmp_path / "w2v", labels)
    with pytest.raises(UserError) as error:
        taggers.load("hf:x/y", str(tmp_path / "w2v"))
    assert str(error.value) == (
        f"Hugging Face model {tmp_path / 'w2v'} is not usable: its labels are not AudioSet's: "
        f"label 3 is 'Gossip' where AudioSet has {AUDIOSET_LABELS[3]!r}")
    with pytest.raises(UserError, match="not a Hugging Face model folder"):
        taggers.load("hf:x/y", str(tmp_path / "nowhere"))


class FakeTagger(Tagger):
    """Scores fixed per call; features: the excerpt's length."""

    sample_rate = 16000

    def __init__(self, scores, labels=None, categories=None):
        self.scores, self.labels, self.categories = torch.tensor(scores), labels, categories
        self.name, self.weights = "fake", "none"

    def to(self, device):
        return self

    def features(self, excerpt):
        return torch.tensor([float(len(excerpt.samples))])

    def forward(self, features, device):
        batch = torch.stack(features)
        return TaggerOutput(self.scores.expand(len(features), -1).clone(),
                            torch.cat([batch, batch * 2], dim=1))


def evaluate(tmp_path, tagger, speech_score, embeddings=False):
    graph = write_constant_speech_graph(tmp_path / f"g{speech_score}.pb",
                                        logit_for_score(speech_score))
    stems = []
    from stemeval.datasets import Stem

    for index in range(3):
        path = write_wav(tmp_path / f"s{index}.wav",
                         concat(tone(1.0 + index, RATE, 300), silence(0.8, RATE)), RATE)
        stems.append(Stem(str(path), "bass"))
    evaluator = Evaluator(tagger, speech_model_factory(graph), "moisesdb", details=True,
                          embeddings=embeddings)
    rows, saved = [], []
    run_stems(evaluator, stems, rows.append, batch_size=2, embed=lambda stem, e: saved.append(e))
    return rows, saved


def test_zero_shot_best_category_is_prediction_and_proposed_label(tmp_path):
    categories = list(category_map("moisesdb").categories)
    scores = np.linspace(0, 1, len(categories))[::-1].copy()
    scores[categories.index("piano")] = 2.0
    rows, saved = evaluate(tmp_path, FakeTagger(scores, categories=categories), 3.0)
    assert [(row["prediction"], row["proposed_label"]) for row in rows] == [("piano", "piano")] * 3
    assert rows[0]["top5"].startswith("piano (2.0); vocals (1.0)")
    assert saved == []


def test_audioset_labels_are_used_by_name_in_any_order(tmp_path):
    labels = list(reversed(AUDIOSET_LABELS))
    scores = np.zeros(len(labels))
    scores[labels.index("Speech")] = 0.9
    scores[labels.index("Cello")] = 0.8
    rows, _ = evaluate(tmp_path, FakeTagger(scores, labels=labels), 3.0)  # Speech passed over
    assert {(row["prediction"], row["proposed_label"]) for row in rows} == {
        ("cello", "bowed_strings")}
    rows, _ = evaluate(tmp_path, FakeTagger(scores, labels=labels), 30.0)  # Speech allowed
    assert {(row["prediction"], row["proposed_label"]) for row in rows} == {("speech", "other")}


def test_embeddings_for_every_stem_speech_gated_too(tmp_path):
    scores = np.zeros(len(AUDIOSET_LABELS))
    scores[AUDIOSET_LABELS.index("Piano")] = 1.0
    tagger = FakeTagger(scores, labels=AUDIOSET_LABELS)
    plain, none = evaluate(tmp_path, tagger, 3.0)
    rows, saved = evaluate(tmp_path, tagger, 3.0, embeddings=True)
    assert rows == plain and none == []
    assert len(saved) == 3 and all(vector.shape == (2,) for vector in saved)
    gated, saved = evaluate(tmp_path, tagger, 90.0, embeddings=True)
    assert {row["prediction"] for row in gated} == {"speech"} and len(saved) == 3
