"""The command line shared by ``analyze_dsd100.py`` and ``analyze_moisesdb.py``."""

import argparse
import os
import sys

from stemeval.errors import ArgumentParser, UserError

DEVICES = ("auto", "cpu", "cuda", "mps")
DATASET_NAMES = {"dsd100": "DSD100 (Sources)", "moisesdb": "MoisesDB"}


def parse_args(dataset, default_output, argv=None):
    parser = ArgumentParser(
        description=f"Run the AST instrument-recognition evaluation on a {DATASET_NAMES[dataset]} "
                    "tree and "
                    "write one CSV row per stem: label,path,prediction,proposed_label.")
    parser.add_argument("folder", help="the dataset folder to walk")
    parser.add_argument("--checkpoint", metavar="SPEC",
                        help="AST weights: a .pth in the authors' format, a Hugging Face model "
                             "folder, hf:<repo id>, or an http(s) URL of a .pth "
                             "(default: AST/pretrained_models/audio_mdl.pth, fetched if missing)")
    parser.add_argument("--speech-model", metavar="PATH",
                        help="the Essentia speech graph (default: AST/models/"
                             "genre_rosamerica-vggish-audioset-1.pb, fetched if missing)")
    parser.add_argument("--output", metavar="PATH", default=default_output,
                        help=f"the results CSV (default: {default_output})")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="where the networks run; auto picks cuda, then mps, then cpu")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="fp32 (default) gives the published rows (AST under fp16 autocast "
                             "on CUDA, as published); bf16 runs the AST under bfloat16 "
                             "autocast, faster on CPUs that have it, and may change a few rows")
    parser.add_argument("--batch-size", type=_positive, metavar="N",
                        help="stems per AST forward pass (default: 4 on a CPU; on a CUDA GPU "
                             "as many as its free memory allows, up to 64)")
    parser.add_argument("--workers", type=_non_negative, default=1, metavar="N",
                        help="threads that decode and gate the next stems while the AST runs; "
                             "0 does everything in one thread (default: 1)")
    parser.add_argument("--speech-backend", choices=("torch", "essentia"), default="torch",
                        help="run the speech graph in PyTorch (default; same scores, faster) "
                             "or in Essentia's TensorFlow as published")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows already in --output and analyse only the stems "
                             "not there yet")
    parser.add_argument("--details", action="store_true",
                        help="append the columns score, speech_score, top5 and error")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("--quiet", action="store_true", help="no progress bar")
    verbosity.add_argument("--verbose", action="store_true",
                           help="also print one line per stem on stderr")
    return parser.parse_args(argv)


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def check_folder(folder):
    if not os.path.exists(folder):
        raise UserError(f"{folder}: no such folder")
    if not os.path.isdir(folder):
        raise UserError(f"{folder}: not a folder")


def pick_device(name):
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps: no MPS device is available")
    return name


def main(dataset, default_output, argv=None):
    """Evaluate one dataset layout; returns the exit status."""
    from stemeval.datasets import LAYOUTS
    from stemeval.results import check_output_path

    args = parse_args(dataset, default_output, argv)
    check_folder(args.folder)
    stems = LAYOUTS[dataset](args.folder)
    if not stems:
        raise UserError(f"no .wav or .mp3 stems found under {args.folder}")
    check_output_path(args.output)
    device = pick_device(args.device)

    from AST.models import ensure_speech_model, load_ast
    from stemeval.pipeline import Evaluator, default_batch_size, run
    from stemeval.progress import Progress
    from stemeval.results import COLUMNS, DETAIL_COLUMNS, ResultWriter
    from stemeval.speech import speech_model_factory

    model = load_ast(args.checkpoint)
    graph = ensure_speech_model(args.speech_model)
    evaluator = Evaluator(model, speech_model_factory(graph, args.speech_backend, device),
                          dataset, device=device, precision=args.precision, details=args.details)
    columns = COLUMNS + DETAIL_COLUMNS if args.details else COLUMNS
    with ResultWriter(args.output, columns, resume=args.resume) as writer:
        todo = [stem for stem in stems if stem.path not in writer.done]
        with Progress(len(todo), quiet=args.quiet, verbose=args.verbose) as progress:
            def write(row):
                writer.write(row)
                progress.done(row)

            run(evaluator, todo, write, batch_size=args.batch_size or default_batch_size(device),
                workers=args.workers)
    print(f"wrote {len(todo)} rows to {args.output} ({len(writer.done)} kept from before, "
          f"{progress.errors} errors)", file=sys.stderr)
    return 0
