"""The batching loop: per-stem errors, out-of-memory retries, precision and device defaults."""

import os
from contextlib import nullcontext

import numpy as np
import pytest
import torch

import commonutils
from stemeval.datasets import Stem
from stemeval.engine import devices
from stemeval.engine.devices import default_workers
from stemeval.engine.pipeline import Evaluator, Prepared
from stemeval.engine.precision import autocast, use_exact_fp32
from stemeval.labels.audioset import AUDIOSET_LABELS
from stemeval.taggers.ast import AstTagger
from stemeval.taggers.interface import Tagger, TaggerOutput
from tests.helpers.ast_weights import SMALL, random_model

SPEECH = AUDIOSET_LABELS.index("Speech")
DRUM = AUDIOSET_LABELS.index("Drum")


class BrokenEvidence:
    """Speech evidence whose lazy computation raises, as a failing speech graph would."""

    def at_least(self, threshold):
        raise RuntimeError("speech graph failed")

    def score(self):
        raise RuntimeError("speech graph failed")


class Evidence:
    def __init__(self, score):
        self._score = score

    def at_least(self, threshold):
        return self._score >= threshold


class FakeAST(torch.nn.Module):
    """Logits that rank one class first; raises CUDA out-of-memory above ``max_batch`` stems
    or for a stem whose features are all ``poison``."""

    config = SMALL

    def __init__(self, winner=DRUM, max_batch=64, poison=None):
        super().__init__()
        self.winner, self.max_batch, self.poison = winner, max_batch, poison
        self.batches = []

    def forward(self, fbank):
        self.batches.append(len(fbank))
        if len(fbank) > self.max_batch or (self.poison is not None
                                           and bool((fbank == self.poison).all(dim=(1, 2)).any())):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        logits = torch.zeros(len(fbank), len(AUDIOSET_LABELS))
        logits[:, self.winner] = 5.0
        return logits


class LogitsTagger(Tagger):
    """A tagger around a network that returns AudioSet logits, as the AST's does."""

    labels = AUDIOSET_LABELS

    def __init__(self, model):
        self.model = model

    def to(self, device):
        return self

    def forward(self, features, device):
        logits = self.model(torch.stack(features)).float()
        return TaggerOutput(torch.sigmoid(logits), logits)


def _prepared(count, speech=None, fill=0.0):
    return [Prepared(Stem(f"stem{i}.wav", "drums"), speech or Evidence(0.0),
                     features=torch.full((1024, 128), fill + i)) for i in range(count)]


def _evaluator(model, precision="fp32"):
    return Evaluator(LogitsTagger(model), lambda: None, "dsd100", precision=precision)


def test_failing_speech_evidence_gives_an_error_row_and_the_batch_goes_on():
    evaluator = _evaluator(FakeAST(winner=SPEECH))
    items = _prepared(1, BrokenEvidence()) + _prepared(2, Evidence(20.0))
    evaluator.classify(items)
    assert items[0].row["prediction"] == items[0].row["proposed_label"] == "error"
    assert "speech graph failed" in items[0].row["error"]
    assert [item.row["prediction"] for item in items[1:]] == ["speech", "speech"]


def test_out_of_memory_halves_the_batch_down_to_one_stem():
    model = FakeAST(max_batch=1)
    items = _prepared(4)
    _evaluator(model).classify(items)
    assert model.batches == [4, 2, 1, 1, 2, 1, 1]
    assert [item.row["prediction"] for item in items] == ["drum"] * 4


def test_a_stem_that_runs_out_of_memory_alone_gets_an_error_row():
    model = FakeAST(max_batch=2, poison=2.0)
    items = _prepared(4)
    _evaluator(model).classify(items)
    assert [item.row["prediction"] for item in items] == ["drum", "drum", "error", "drum"]
    assert "OutOfMemoryError" in items[2].row["error"]


def test_other_errors_are_not_retried():
    class Failing(FakeAST):
        def forward(self, fbank):
            self.batches.append(len(fbank))
            raise ValueError("bad input")

    model = Failing()
    items = _prepared(3)
    _evaluator(model).classify(items)
    assert model.batches == [3]
    assert {item.row["prediction"] for item in items} == {"error"}


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_fp32_never_autocasts_on_any_device():
    for device in ("cpu", "cuda", "mps"):
        assert isinstance(autocast(torch.device(device), "fp32"), nullcontext)
    assert autocast(torch.device("cuda"), "fp16").fast_dtype == torch.float16
    assert autocast(torch.device("cpu"), "bf16").fast_dtype == torch.bfloat16


def test_fp16_scores_stay_half_as_published():
    tagger = AstTagger(random_model(SMALL, seed=5), "random")
    fbank = [torch.randn(1024, 128) for _ in range(2)]
    half = Evaluator(tagger, lambda: None, "dsd100", precision="fp16").run_tagger(fbank)
    full = Evaluator(tagger, lambda: None, "dsd100", precision="fp32").run_tagger(fbank)
    half, full = half.scores.numpy(), full.scores.numpy()
    assert np.array_equal(half, half.astype(np.float16).astype(np.float32))  # fp16 values
    assert not np.array_equal(full, full.astype(np.float16).astype(np.float32))
    np.testing.assert_allclose(half, full, atol=5e-3)


def test_exact_fp32_turns_tf32_off_on_cuda_only():
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    before = matmul.fp32_precision, conv.fp32_precision
    try:
        matmul.fp32_precision, conv.fp32_precision = "tf32", "tf32"
        use_exact_fp32("cpu")
        assert (matmul.fp32_precision, conv.fp32_precision) == ("tf32", "tf32")
        use_exact_fp32(torch.device("cuda"))
        assert (matmul.fp32_precision, conv.fp32_precision) == ("ieee", "ieee")
    finally:
        matmul.fp32_precision, conv.fp32_precision = before


def test_workers_default_to_the_cpu_count_on_cuda():
    assert default_workers("cpu") == 1
    assert default_workers("cuda") == len(os.sched_getaffinity(0))
    args = commonutils.build_parser("dsd100", "out.csv").parse_args(["folder"])
    assert args.workers is None and args.precision == "fp32"


def test_auto_device_never_picks_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert devices.pick_device("auto") == "cpu"
    assert devices.pick_device("mps") == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.pick_device("auto") == "cuda"
