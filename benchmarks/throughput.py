"""Throughput: the published one-stem-at-a-time pipeline against this project's fast path.

Builds a stem set in both layouts (stems of 20 s to 4 min, a few that the speech gate sends
to speech), full-size random models (the AudioSet AST's size, and a speech graph of the
real VGGish's size), then times in one process:

- published: per stem, what the published code did: MonoLoader + Essentia's
  TensorflowPredictVGGish on the file, pydub's split_on_silence, the excerpt written to a wav
  and read back with MonoLoader, the fbank, and the AST one stem at a time with the plain
  (unfused) attention of timm 0.4.5;
- fast: this project's pipeline (decode once, the speech graph in PyTorch, worker processes,
  batched AST).

It prints stems/s, audio seconds per second, the ratio and the peak RSS, and fails (exit 1)
if the two CSVs differ or, when --min-ratio is given, if the ratio is below it (with few
stems the fixed costs weigh more and the ratio drops, so it is checked only when asked).
With --bf16 it also runs
the fast path with --precision bf16 and reports the share of rows that change.

    .venv/bin/python benchmarks/throughput.py [--stems 16] [--workers 1] [--batch-size 4]
                                              [--min-ratio R] [--bf16]
"""

import argparse
import csv
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stemeval.datasets import (
    DATASETS,  # noqa: E402
    category_map,  # noqa: E402
)
from stemeval.engine.pipeline import Evaluator  # noqa: E402
from stemeval.engine.run import run_stems  # noqa: E402
from stemeval.labels.pick import choose_label  # noqa: E402
from stemeval.runfiles.results import ResultWriter  # noqa: E402
from stemeval.speech.gate import GATE_SCORE, SPEECH_LABEL_MIN_SCORE, speech_model_factory  # noqa: E402
from stemeval.speech.graph import GraphRunner  # noqa: E402
from stemeval.taggers.ast import AstTagger  # noqa: E402
from stemeval.taggers.ast_features import fbank_features  # noqa: E402
from stemeval.taggers.ast_model import ASTConfig  # noqa: E402
from tests.helpers import published  # noqa: E402
from tests.helpers.ast_weights import random_model  # noqa: E402
from tests.helpers.speech_patches import speech_activations  # noqa: E402
from tests.helpers.tf_graphs import (  # noqa: E402
    REAL_VGGISH_CHANNELS,
    REAL_VGGISH_FC,
    SPEECH_COLUMN,
    write_vggish_graph,
)

RATE = 44100


def synthetic_stem(seconds, seed, speech_like=False):
    """Tones and noise bursts played in sections with digital silence between them, as an
    instrument's stem is silent where the instrument does not play (here 10% to 50% of the
    time). A speech-like stem is quiet stationary noise, which the benchmark's random speech
    graph is calibrated to score high."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    if speech_like:
        audio = 0.05 * rng.standard_normal(len(t))
    else:
        base = rng.uniform(60, 800)
        audio = 0.3 * np.sin(2 * np.pi * base * t * (1 + 0.01 * np.sin(2 * np.pi * 3 * t)))
        bursts = np.sin(2 * np.pi * rng.uniform(0.5, 4) * t) > 0.6
        audio += 0.1 * rng.standard_normal(len(t)) * bursts
    silent_share = (0.1, 0.25, 0.4, 0.5)[seed % 4]
    section = rng.uniform(8, 20)
    audio[(t % section) >= section * (1 - silent_share)] = 0.0
    stereo = np.stack([audio, audio * rng.uniform(0.6, 1.0)], axis=1)
    return np.clip(stereo, -1, 0.999)


def stem_durations(count):
    """20 s to 4 min, shaped like DSD100 and MoisesDB, whose stems mostly span a whole song:
    a quarter of the stems short (20-90 s), the rest 2.5-4 min."""
    short = count // 4
    return np.concatenate([np.linspace(20, 90, short), np.linspace(150, 240, count - short)])


def build_stem_set(root, count, speech_like):
    """``count`` stems, half in each layout, 20 s to 4 min, ``speech_like`` of them speech-like.

    Returns {layout: folder} and the set of speech-like paths."""
    durations = stem_durations(count)
    speech_indices = set(np.linspace(0, count - 1, speech_like + 2).round().astype(int)[1:-1])
    dsd = root / "DSD100" / "Sources" / "Dev"
    moises = root / "moisesdb" / "moisesdb_v0.1"
    speech_paths = set()
    for index, seconds in enumerate(durations):
        if index % 2 == 0:
            song = dsd / f"{index:03d} - Bench"
            name = ("bass", "drums", "vocals")[index // 2 % 3]
            path = song / f"{name}.wav"
        else:
            category = ("guitar", "piano", "bass", "drums", "vocals")[index // 2 % 5]
            path = moises / f"song{index:03d}" / category / f"stem{index:03d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        audio = synthetic_stem(seconds, index, speech_like=index in speech_indices)
        soundfile.write(path, audio, RATE, subtype="PCM_16")
        if index in speech_indices:
            speech_paths.add(str(path))
    return {"dsd100": root / "DSD100" / "Sources", "moisesdb": moises}, speech_paths


def calibrated_speech_graph(path, stems, speech_paths):
    """A full-size VGGish graph whose speech scores are high for the speech-like stems and
    lower for the others. Returns the stems' speech scores."""
    def write(bias):
        return write_vggish_graph(path, 0, channels=REAL_VGGISH_CHANNELS, fc=REAL_VGGISH_FC,
                                  head_hidden=100, speech_scale=-1.0, speech_bias=bias)

    runner = GraphRunner.from_pb(write(0.0), output_name="model/dense_1/add").eval()
    logits = [speech_activations(runner, published.monoloader_16k(stem.path))[:, SPEECH_COLUMN]
              .astype(np.float64) for stem in stems]

    def scores(bias):
        return np.array([100 * np.mean(1 / (1 + np.exp(-(z + bias)))) for z in logits])

    speech_like = np.array([stem.path in speech_paths for stem in stems])
    # the smallest bias that sends every speech-like stem through the gate with a margin
    # leaves the others as low as this graph can place them, as music stems score low
    bias = next((b for b in np.arange(-60, 60, 0.1)
                 if np.min(scores(b)[speech_like], initial=100) >= GATE_SCORE + 5), 0.0)
    write(float(bias))
    return scores(bias)


def published_rows(model, graph, stems, dataset, workdir):
    """The published loop: one stem at a time, three decodes, batch 1, TensorFlow gate."""
    for stem in stems:
        row = {"label": stem.label, "path": stem.path}
        try:
            score = published.speech_score(stem.path, graph)
            if score >= GATE_SCORE:
                yield {**row, "prediction": "speech", "proposed_label": "speech"}
                continue
            wave = published.excerpt_16k(stem.path, workdir / "nosilence.wav")
            fbank = fbank_features(wave, model.config.input_tdim)
            with torch.inference_mode():
                scores = torch.sigmoid(model(fbank[None]))[0].numpy()
            label, _ = choose_label(scores, lambda: score >= SPEECH_LABEL_MIN_SCORE)
            yield {**row, "prediction": label, "proposed_label": category_map(dataset).category(label)}
        except Exception:
            yield {**row, "prediction": "error", "proposed_label": "error"}


def timed(label, stems_of, write_rows, out_dir):
    """Run ``write_rows(dataset, stems, writer)`` for both layouts; returns seconds and CSVs."""
    start = time.perf_counter()
    outputs = []
    for dataset in stems_of:
        output = out_dir / f"{label}_{dataset}.csv"
        with ResultWriter(str(output)) as writer:
            write_rows(dataset, stems_of[dataset], writer)
        outputs.append(output.read_bytes())
    return time.perf_counter() - start, outputs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stems", type=int, default=16, help="stems in all (default 16)")
    parser.add_argument("--speech-like", type=int, default=2,
                        help="stems made for the gate to send to speech (default 2)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--min-ratio", type=float, metavar="R",
                        help="fail when the pipeline is less than R times as fast as the "
                             "published loop (default: no check)")
    parser.add_argument("--bf16", action="store_true", help="also time --precision bf16")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
        root = Path(tmp)
        folders, speech_paths = build_stem_set(root / "data", args.stems, args.speech_like)
        stems_of = {dataset: sorted(DATASETS[dataset].walk(str(folder)).stems, key=lambda stem: stem.path)
                    for dataset, folder in folders.items()}
        every_stem = [stem for stems in stems_of.values() for stem in stems]
        audio_seconds = sum(soundfile.info(stem.path).duration for stem in every_stem)
        graph = root / "speech.pb"
        speech_scores = calibrated_speech_graph(graph, every_stem, speech_paths)
        model = random_model(ASTConfig(), seed=0)
        print(f"{len(every_stem)} stems, {audio_seconds / 60:.1f} min of audio, "
              f"{np.sum(speech_scores >= GATE_SCORE)} sent to speech by the gate; speech scores "
              f"{np.round(np.sort(speech_scores), 1).tolist()}; "
              f"{torch.get_num_threads()} torch threads",
              flush=True)

        slow_model = published.published_ast(model)

        def slow(dataset, stems, writer):
            for row in published_rows(slow_model, graph, stems, dataset, root):
                writer.write(row)

        def fast(precision):
            def rows(dataset, stems, writer):
                evaluator = Evaluator(AstTagger(model, "random"),
                                      speech_model_factory(graph, "torch"), dataset,
                                      precision=precision)
                run_stems(evaluator, stems, writer.write, batch_size=args.batch_size,
                    workers=args.workers)
            return rows

        slow_seconds, slow_csvs = timed("published", stems_of, slow, root)
        fast_seconds, fast_csvs = timed("fast", stems_of, fast("fp32"), root)
        for name, seconds in (("published", slow_seconds), ("fast", fast_seconds)):
            print(f"{name:>10}: {seconds:7.1f} s  {len(every_stem) / seconds:6.3f} stems/s  "
                  f"{audio_seconds / seconds:6.1f} audio s/s", flush=True)
        ratio = slow_seconds / fast_seconds
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
        print(f"ratio {ratio:.2f} (workers {args.workers}, batch {args.batch_size}); "
              f"peak RSS {peak_gb:.2f} GB")
        identical = slow_csvs == fast_csvs
        print("CSVs identical" if identical else "CSVs DIFFER")

        if args.bf16:
            bf16_seconds, bf16_csvs = timed("bf16", stems_of, fast("bf16"), root)
            rows = [list(csv.reader(text.decode().splitlines()))[1:] for text in fast_csvs]
            bf16 = [list(csv.reader(text.decode().splitlines()))[1:] for text in bf16_csvs]
            pairs = [(a, b) for x, y in zip(rows, bf16) for a, b in zip(x, y)]
            changed = sum(a != b for a, b in pairs)
            print(f"      bf16: {bf16_seconds:7.1f} s  ({fast_seconds / bf16_seconds:.2f}x fp32); "
                  f"{changed}/{len(pairs)} rows changed ({100 * changed / len(pairs):.1f}%)")
    if not identical:
        return 1
    if args.min_ratio is not None and ratio < args.min_ratio:
        print(f"ratio {ratio:.2f} is below --min-ratio {args.min_ratio}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
