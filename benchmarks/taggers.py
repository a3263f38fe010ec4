"""Stems per second of each tagger on the benchmark stem set, in one run.

The stems and the speech graph are those of ``throughput.py`` (20 s to 4 min, silent
sections, a few sent to speech by the gate). Each tagger gets random weights of its real
size saved in its released format, loaded through ``--tagger``'s own loader, and the whole
pipeline (decode, gate, trim, features, network) runs over both layouts, as a run would.
Taggers whose module (or reference package for making weights) is absent are skipped.

    .venv/bin/python benchmarks/taggers.py [--stems 16] [--taggers ast,panns-cnn14,passt,clap]
"""

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import soundfile
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from throughput import build_stem_set, calibrated_speech_graph  # noqa: E402

from stemeval import taggers  # noqa: E402
from stemeval.common.errors import UserError  # noqa: E402
from stemeval.datasets import DATASETS, category_map  # noqa: E402
from stemeval.engine.pipeline import Evaluator  # noqa: E402
from stemeval.engine.run import run_stems  # noqa: E402
from stemeval.speech.gate import speech_model_factory  # noqa: E402
from stemeval.taggers.ast_model import ASTConfig  # noqa: E402
from tests.helpers.ast_weights import random_model, save_original_checkpoint  # noqa: E402


def ast_weights(folder):
    return save_original_checkpoint(random_model(ASTConfig(), seed=0), folder / "ast.pth")


def panns_weights(folder):
    """panns_inference's CNN14 at its released size, saved as the release is."""
    home = folder / "home"
    (home / "panns_data").mkdir(parents=True)
    shutil.copy(ROOT / "AST" / "class_labels_indices.csv", home / "panns_data")
    os.environ["HOME"] = str(home)  # panns_inference downloads its labels at import otherwise
    models = importlib.import_module("panns_inference.models")
    torch.manual_seed(0)
    model = models.Cnn14(sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64,
                         fmin=50, fmax=14000, classes_num=527)
    path = folder / "Cnn14_mAP=0.431.pth"
    torch.save({"iteration": 0, "model": model.state_dict()}, path)
    return path


def passt_weights(folder):
    """hear21passt's PaSST-S (768 wide, 12 blocks) state dict, as the release is."""
    from hear21passt.models.passt import PaSST

    torch.manual_seed(0)
    net = PaSST(img_size=(128, 998), patch_size=16, stride=10, in_chans=1, num_classes=527,
                embed_dim=768, depth=12, num_heads=12, distilled=True)
    path = folder / "passt-s-f128-p16-s10-ap.476-swa.pt"
    torch.save(net.state_dict(), path)
    return path


def clap_weights(folder):
    """A ClapModel of laion/larger_clap_music's size (HTSAT-base audio, RoBERTa-base text)
    with a made-up tokenizer (the real one cannot be downloaded here)."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

    from tests.helpers.clap_models import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    config = ClapConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=768, num_hidden_layers=12,
                         num_attention_heads=12, intermediate_size=3072, projection_dim=512),
        audio_config=dict(patch_embeds_hidden_size=128, hidden_size=1024, depths=[2, 2, 12, 2],
                          num_attention_heads=[4, 8, 16, 32], projection_dim=512),
        projection_dim=512)
    torch.manual_seed(0)
    target = folder / "clap"
    ClapModel(config).save_pretrained(target)
    ClapProcessor(feature_extractor=ClapFeatureExtractor(), tokenizer=tokenizer).save_pretrained(
        target)
    return target


WEIGHTS = {"ast": ast_weights, "panns-cnn14": panns_weights, "passt": passt_weights,
           "clap": clap_weights}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stems", type=int, default=16, help="stems in all (default 16)")
    parser.add_argument("--speech-like", type=int, default=2)
    parser.add_argument("--taggers", default=",".join(WEIGHTS),
                        help="comma-separated names (default: all)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="taggers-bench-") as tmp:
        root = Path(tmp)
        folders, speech_paths = build_stem_set(root / "data", args.stems, args.speech_like)
        stems_of = {dataset: sorted(DATASETS[dataset].walk(str(folder)).stems,
                                    key=lambda stem: stem.path)
                    for dataset, folder in folders.items()}
        every_stem = [stem for stems in stems_of.values() for stem in stems]
        audio_seconds = sum(soundfile.info(stem.path).duration for stem in every_stem)
        graph = root / "speech.pb"
        calibrated_speech_graph(graph, every_stem, speech_paths)
        print(f"{len(every_stem)} stems, {audio_seconds / 60:.1f} min of audio; device "
              f"{args.device}, {args.precision}, {torch.get_num_threads()} torch threads",
              flush=True)
        results = []
        for name in args.taggers.split(","):
            try:
                weights = WEIGHTS[name](root)
                loaded = {dataset: taggers.load(name, str(weights),
                                             list(category_map(dataset).categories))
                          for dataset in stems_of}
            except (ImportError, UserError) as error:
                print(f"{name:>12}: skipped ({error})", flush=True)
                continue
            start = time.perf_counter()
            for dataset, stems in stems_of.items():
                evaluator = Evaluator(loaded[dataset], speech_model_factory(graph, "torch",
                                                                            args.device),
                                      dataset, device=args.device, precision=args.precision)
                run_stems(evaluator, stems, lambda row: None, batch_size=args.batch_size,
                    workers=args.workers)
            seconds = time.perf_counter() - start
            results.append((name, seconds))
            print(f"{name:>12}: {seconds:7.1f} s  {len(every_stem) / seconds:6.3f} stems/s  "
                  f"{audio_seconds / seconds:6.1f} audio s/s", flush=True)
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
