"""The command line shared by ``evaluate.py``, ``analyze_dsd100.py`` and ``analyze_moisesdb.py``."""

import argparse
import os
import sys

from stemeval.errors import ArgumentParser, UserError

DEVICES = ("auto", "cpu", "cuda", "mps")


def _dataset_list():
    from stemeval.datasets import DATASETS

    return "\n".join(f"  {name:<16} FOLDER is {dataset.folder}"
                      for name, dataset in DATASETS.items())


def build_parser(dataset=None, default_output=None):
    """The one parser: with ``dataset`` (an analyze script) FOLDER is its only positional;
    without (``evaluate.py``) DATASET comes first and the output defaults to
    ``results_<dataset>.csv``."""
    from stemeval.datasets import DATASETS

    what = DATASETS[dataset].title if dataset else "a stem dataset"
    parser = ArgumentParser(
        description=f"Run the instrument-recognition evaluation (a tagger, the AST by "
                    f"default) on {what}\nand write one "
                    "CSV row per stem: label,path,prediction,proposed_label.",
        epilog=None if dataset else "datasets:\n" + _dataset_list(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    if dataset is None:
        parser.add_argument("dataset", metavar="DATASET", choices=list(DATASETS),
                            help=f"one of {', '.join(DATASETS)} (listed below)")
    parser.add_argument("folder", metavar="FOLDER",
                        help="the dataset folder to walk (for manifest: the CSV file)")
    parser.add_argument("--tagger", metavar="NAME", default="ast",
                        help="the tagger: ast (default, the published pipeline), panns-cnn14, "
                             "passt, clap, or hf:<repo id> (a Hugging Face audio classifier "
                             "with AudioSet's labels)")
    parser.add_argument("--checkpoint", metavar="SPEC",
                        help="the tagger's weights in its released format; for ast: a .pth in "
                             "the authors' format, a Hugging Face model folder, hf:<repo id>, "
                             "or an http(s) URL of a .pth (default: AST/pretrained_models/"
                             "audio_mdl.pth, fetched if missing)")
    parser.add_argument("--speech-model", metavar="PATH",
                        help="the Essentia speech graph (default: AST/models/"
                             "genre_rosamerica-vggish-audioset-1.pb, fetched if missing)")
    parser.add_argument("--output", metavar="PATH", default=default_output,
                        help=f"the results CSV (default: {default_output or 'results_<DATASET>.csv'})")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="where the networks run; auto picks cuda if there is one, else "
                             "cpu (mps only when named)")
    parser.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default="fp32",
                        help="fp32 (default) gives the published rows, on every device (they "
                             "were made on CPU in float32; TF32 is off on CUDA); fp16 runs the "
                             "AST under float16 autocast as the published code did on CUDA; "
                             "bf16 under bfloat16 autocast. fp16 and bf16 are faster and may "
                             "change a few rows")
    parser.add_argument("--batch-size", type=_positive, metavar="N",
                        help="stems per AST forward pass (default: 4 on a CPU; on a CUDA GPU "
                             "as many as its free memory allows, up to 64)")
    parser.add_argument("--workers", type=_non_negative, metavar="N",
                        help="threads that decode and gate the next stems while the AST runs; "
                             "0 does everything in one thread (default: 1 on a CPU, the number "
                             "of CPU cores on CUDA)")
    parser.add_argument("--speech-backend", choices=("torch", "essentia"), default="torch",
                        help="run the speech graph in PyTorch (default; same scores, faster) "
                             "or in Essentia's TensorFlow as published")
    parser.add_argument("--deform", metavar="SPEC",
                        help="deform each decoded stem before the speech gate: noise:snr=DB, "
                             "mp3:bitrate=KBPS, gain:db=DB, lowpass:cutoff=HZ, "
                             "pitch:semitones=N, stretch:rate=R, clip:percentile=P, "
                             "reverb:rt60=S[,wet=W], or a chain joined by + (see README.md)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows already in --output and analyse only the stems "
                             "not there yet (refused if its sidecar names another tagger or "
                             "weights)")
    parser.add_argument("--embeddings", metavar="PATH",
                        help="also save one embedding per stem (from the same forward pass) "
                             "in this .npz; speech-gated stems get one too")
    parser.add_argument("--details", action="store_true",
                        help="append the columns score, speech_score, top5, error and group "
                             "(the stem's track or song)")
    parser.add_argument("--map", metavar="FILE",
                        help="a category map (TOML: category = [AudioSet labels]) replacing "
                             "the dataset's own (stemeval/datasets/maps/)")
    parser.add_argument("--split", metavar="NAME",
                        help="evaluate only this split of the dataset (where it has splits)")
    parser.add_argument("--limit", type=_positive, metavar="N",
                        help="evaluate only the first N stems in sorted order, for a quick look")
    parser.add_argument("--follow-links", action="store_true",
                        help="also walk symlinked folders (not followed by default, as "
                             "published)")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("--quiet", action="store_true", help="no progress bar")
    verbosity.add_argument("--verbose", action="store_true",
                           help="also print one line per stem on stderr")
    return parser


def _positive(text):
    return _whole_number(text, minimum=1)


def _non_negative(text):
    return _whole_number(text, minimum=0)


def _whole_number(text, minimum):
    """argparse names the option before this message: "argument --batch-size: takes ..."."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise argparse.ArgumentTypeError(f"takes a whole number of {minimum} or more, "
                                         f"not {text!r}")
    return value


def check_input(folder, is_file=False):
    """FOLDER must be a folder (a file for the manifest)."""
    if not os.path.exists(folder):
        raise UserError(f"{folder}: no such {'file' if is_file else 'folder'}")
    if is_file and not os.path.isfile(folder):
        raise UserError(f"{folder}: not a file (the manifest is a CSV file)")
    if not is_file and not os.path.isdir(folder):
        raise UserError(f"{folder}: not a folder")


def pick_device(name):
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps: no MPS device is available")
    return name


def find_stems(dataset, args):
    """The stems to evaluate and the category map, or a UserError before any work."""
    from stemeval.datasets.categories import dataset_map, read_map
    from stemeval.datasets.selection import check_labels, no_stems_message, select

    check_input(args.folder, dataset.input_is_file)
    category_map = read_map(args.map) if args.map else dataset_map(dataset.map_name)
    found = select(dataset, args.folder, category_map, args.split, args.follow_links)
    for note in found.notes:
        print(note, file=sys.stderr)
    if not found.stems:
        raise UserError(no_stems_message(dataset, args.folder, found, args.split))
    if found.skipped_links:
        print(f"warning: {found.skipped_links} symlinked folder(s) under {args.folder} were not "
              f"followed (pass --follow-links to include them)", file=sys.stderr)
    warning = check_labels(dataset, args.folder, found.stems, category_map, args.follow_links)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return found.stems[:args.limit], category_map


def main(dataset=None, default_output=None, argv=None):
    """Evaluate one dataset; returns the exit status. ``dataset`` None reads it from argv."""
    from stemeval.datasets import DATASETS
    from stemeval.deform import Deformer
    from stemeval.results import check_output_path
    from stemeval.taggers import check_name

    args = build_parser(dataset, default_output).parse_args(argv)
    check_name(args.tagger)
    deform = Deformer(args.deform, args.folder) if args.deform is not None else None
    dataset = DATASETS[dataset or args.dataset]
    if args.output is None:
        args.output = f"results_{dataset.name}.csv"
    stems, category_map = find_stems(dataset, args)
    check_output_path(args.output)
    if args.embeddings is not None:
        check_output_path(args.embeddings, "embeddings")
    device = pick_device(args.device)

    from AST.models import load_model_files
    from stemeval import taggers
    from stemeval.embeddings import EmbeddingStore
    from stemeval.pipeline import Evaluator, default_batch_size, default_workers, run
    from stemeval.precision import use_exact_fp32
    from stemeval.progress import Progress
    from stemeval.results import (COLUMNS, DETAIL_COLUMNS, ERROR, ResultWriter, read_results,
                                  stems_to_do)
    from stemeval.sidecar import Sidecar
    from stemeval.speech import speech_model_factory

    use_exact_fp32(device)
    tagger, graph = load_model_files(
        args.checkpoint, args.speech_model,
        load_weights=lambda spec: taggers.load(args.tagger, spec, list(category_map.categories)))
    sidecar = Sidecar(args.output, tagger, graph, vars(args), device, args.precision)
    if args.resume:
        sidecar.check_resume(args.output)
    store = (EmbeddingStore(args.embeddings, tagger.name, resume=args.resume)
             if args.embeddings else None)
    evaluator = Evaluator(tagger, speech_model_factory(graph, args.speech_backend, device),
                          category_map, device=device, precision=args.precision,
                          details=args.details, deform=deform, embeddings=store is not None)
    columns = COLUMNS + DETAIL_COLUMNS if args.details else COLUMNS
    groups = {stem.path: stem.group for stem in stems}
    with ResultWriter(args.output, columns, resume=args.resume) as writer:
        todo = stems_to_do(writer.kept, stems, args.folder, args.output)
        sidecar.start()
        complete = False
        try:
            with Progress(len(todo), quiet=args.quiet, verbose=args.verbose) as progress:
                def write(row):
                    writer.write({**row, "group": groups[row["path"]]})
                    progress.done(row)

                run(evaluator, todo, write,
                    batch_size=args.batch_size or default_batch_size(device),
                    workers=default_workers(device) if args.workers is None else args.workers,
                    embed=store.add if store else None)
            complete = True
        except KeyboardInterrupt:
            raise KeyboardInterrupt(
                f"interrupted: the rows so far are in {args.output}; the same command with "
                f"--resume continues the run") from None
        finally:
            if store is not None:
                store.close(complete)
    rows = read_results(args.output)
    sidecar.finish(stems=len(rows), errors=sum(row["prediction"] == ERROR for row in rows),
                   stems_this_run=len(todo))
    print(f"wrote {len(todo)} rows to {args.output} ({len(writer.kept)} kept from before, "
          f"{progress.errors} errors)", file=sys.stderr)
    print_published_ending(args.output)
    return 0


def print_published_ending(output):
    """The published scripts' last words: where the results are, then their score."""
    from stemeval.report import format_published
    from stemeval.results import read_results

    print(f"Analysis complete. Results written to '{output}'.")
    print("\n".join(format_published(read_results(output))))
