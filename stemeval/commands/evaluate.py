"""``stemeval evaluate``: the one command line of every evaluation, also that of ``evaluate.py``,
``analyze_dsd100.py`` and ``analyze_moisesdb.py`` (a thin layer over ``stemeval.engine.run``)."""

import argparse

from stemeval import taggers
from stemeval.commands.options import non_negative, positive
from stemeval.common.errors import ArgumentParser, shown
from stemeval.datasets import DATASETS
from stemeval.engine.devices import DEVICES
from stemeval.report.published import format_published
from stemeval.runfiles.results import read_results

# Imported inside the function that runs it, so that --help and bad options answer without
# loading torch: stemeval.engine.run.


def _dataset_list():
    return "\n".join(f"  {name:<16} FOLDER is {dataset.folder}"
                      for name, dataset in DATASETS.items())


def build_parser(dataset=None, default_output=None, prog=None):
    """The one parser: with ``dataset`` (an analyze script) FOLDER is its only positional;
    without (``evaluate.py``) DATASET comes first and the output defaults to
    ``results_<dataset>.csv``."""
    what = DATASETS[dataset].title if dataset else "a stem dataset"
    parser = ArgumentParser(
        prog=prog,
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
    parser.add_argument("--tagger", metavar="NAME", default=taggers.DEFAULT,
                        help=f"the tagger: {taggers.help_text()}")
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
    parser.add_argument("--batch-size", type=positive, metavar="N",
                        help="stems per AST forward pass (default: 4 on a CPU; on a CUDA GPU "
                             "as many as its free memory allows, up to 64)")
    parser.add_argument("--workers", type=non_negative, metavar="N",
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
                             "reverb:rt60=S[,wet=W], or a chain joined by + (see "
                             "docs/tasks/sweeps.md)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows already in --output and analyse only the stems "
                             "not there yet (refused if its sidecar names another tagger or "
                             "weights)")
    parser.add_argument("--embeddings", metavar="PATH",
                        help="also save one embedding per stem (from the same forward pass) "
                             "in this .npz; speech-gated stems get one too")
    parser.add_argument("--embeddings-from", choices=("tagger", "vggish"), default="tagger",
                        help="where --embeddings come from: the tagger's forward pass "
                             "(default), or vggish: the speech graph's 128-d VGGish embedding "
                             "of every 0.96 s patch of the stem and their mean, the embedding "
                             "FAD was defined on")
    parser.add_argument("--details", action="store_true",
                        help="append the columns score, speech_score, top5, error and group "
                             "(the stem's track or song)")
    parser.add_argument("--map", metavar="FILE",
                        help="a category map (TOML: category = [AudioSet labels]) replacing "
                             "the dataset's own (stemeval/datasets/maps/)")
    parser.add_argument("--prompts", metavar="FILE",
                        help="a zero-shot tagger's (clap) prompts (TOML: category = \"text\") "
                             "for every category, replacing the dataset's own "
                             "(stemeval/datasets/prompts/)")
    parser.add_argument("--split", metavar="NAME",
                        help="evaluate only this split of the dataset (where it has splits)")
    parser.add_argument("--limit", type=positive, metavar="N",
                        help="evaluate only the first N stems in sorted order, for a quick look")
    parser.add_argument("--follow-links", action="store_true",
                        help="also walk symlinked folders (not followed by default, as "
                             "published)")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("--quiet", action="store_true", help="no progress bar")
    verbosity.add_argument("--verbose", action="store_true",
                           help="also print one line per stem on stderr")
    return parser


def main(argv=None, prog=None, dataset=None, default_output=None):
    """Evaluate one dataset; returns the exit status. ``dataset`` None reads it from argv."""
    args = build_parser(dataset, default_output, prog).parse_args(argv)
    dataset = DATASETS[dataset or args.dataset]
    if args.output is None:
        args.output = f"results_{dataset.name}.csv"
    from stemeval.engine.run import evaluate_dataset

    status = evaluate_dataset(dataset, args)
    print_published_ending(args.output)
    return status


def print_published_ending(output):
    """The published scripts' last words: where the results are, then their score."""
    print(f"Analysis complete. Results written to '{shown(output)}'.")
    print("\n".join(format_published(read_results(output))))
