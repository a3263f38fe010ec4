"""The command ``stemeval weights``: fetch the model files ahead of a run, or report on
them, for the two published files and every tagger's weights (``registry``)."""

import argparse
import sys
from pathlib import Path

from stemeval.common.errors import ArgumentParser, UserError, single_line
from stemeval.taggers import weight_files
from stemeval.weights import speech_model, status
from stemeval.weights.sources import (
    AST_HUB_ID,
    FETCH_COMMAND,
    HF_PREFIX,
    SPEECH_MODEL_URL_ENV,
    URL_PREFIXES,
    speech_model_url,
)

# Imported inside the functions that use them, so that what needs none of them starts without them:
# stemeval.taggers.ast_checkpoint, stemeval.taggers.published_files (torch and timm: --help).

WHICH = ("checkpoint", "speech-model")

DESCRIPTION = """\
Prepare or inspect the model files runs need.

  AST weights   AST/pretrained_models/audio_mdl.pth (the authors' format); when missing,
                fetched from the Hugging Face hub (%(hub)s)
                and converted.
  speech model  AST/models/genre_rosamerica-vggish-audioset-1.pb; when missing, downloaded
                from %(url)s

  other taggers' weights (%(taggers)s): fetched by name into torch hub's
                checkpoint folder (URL downloads) or the Hugging Face cache (hub models)

A run fetches a missing file by itself; "fetch" does it ahead of time (e.g. before going
offline), "status" reports each file: present or missing, size, origin, checks passed or why not.
"""

EPILOG = """\
environment:
  %(env)s  download address of the speech model
  HF_ENDPOINT, HF_HUB_CACHE, HF_HUB_OFFLINE  huggingface_hub's hub address, cache folder,
                             and offline switch (read at each call)

licences: the AST weights are BSD-3-Clause; the speech model is CC BY-NC-ND 4.0
(non-commercial use only); Essentia is AGPL-3.0.
"""


def build_parser(prog="stemeval weights"):
    formatted = dict(hub=AST_HUB_ID, url=speech_model_url(), env=SPEECH_MODEL_URL_ENV,
                     taggers=", ".join(weight_files.tagger_files()))
    parser = ArgumentParser(prog=prog, description=DESCRIPTION % formatted,
                            epilog=EPILOG % formatted,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fetch = commands.add_parser(
        "fetch", help="download and check the model files now",
        description="Download (where missing) and check the model files; a file already "
                    "present is checked, not downloaded again.")
    fetch.add_argument("which", nargs="*", metavar="WHICH",
                       help="checkpoint, speech-model and/or a tagger's name (default: "
                            "checkpoint and speech-model, the files a default run needs)")
    fetch.add_argument("--checkpoint", metavar="SPEC",
                       help="AST weights to prepare instead of the default: a path to an "
                            "authors' .pth or a Hugging Face folder, hf:<repo id>, or an "
                            "http(s) URL of an authors' .pth")
    fetch.add_argument("--speech-model", metavar="PATH",
                       help="check this speech model file instead of the default")
    report = commands.add_parser(
        "status", help="report on the model files",
        description="For each model file: present or missing, size, where it comes from, and "
                    "whether it passes the checks a run applies. Exit status 1 if any is "
                    "missing or fails.")
    report.add_argument("which", nargs="*", metavar="WHICH",
                        help="checkpoint, speech-model and/or a tagger's name (default: "
                             "checkpoint and speech-model)")
    report.add_argument("--all", action="store_true",
                        help="report on every tagger's weights too")
    report.add_argument("--checkpoint", metavar="PATH",
                        help="report on this .pth or Hugging Face folder instead of the default")
    report.add_argument("--speech-model", metavar="PATH",
                        help="report on this speech model file instead of the default")
    return parser


def main(argv=None, prog="stemeval weights"):
    """Fetch or report on the model files; returns the exit status."""
    args = build_parser(prog).parse_args(argv)
    return fetch_files(args) if args.command == "fetch" else report_files(args)


def _chosen(which, command, files):
    """The names asked for (default: the two published files), or a UserError."""
    names = WHICH + tuple(files)
    unknown = [name for name in which if name not in names]
    if unknown:
        raise UserError(f"{command}: unknown file {unknown[0]!r} (choose from "
                        f"{', '.join(names)})")
    return [name for name in names if name in (which or WHICH)]


def fetch_files(args):
    """Prepare each chosen file; each failure is one line, and the others are still tried."""
    files = weight_files.tagger_files()
    steps = {"checkpoint": lambda: _fetch_checkpoint(args.checkpoint),
             "speech-model": lambda: _fetch_speech_model(args.speech_model),
             **{name: (lambda file=file: weight_files.fetch(file)) for name, file in files.items()}}
    failed = False
    for name in _chosen(args.which, "fetch", files):
        try:
            print(steps[name](), flush=True)
        except UserError as error:
            print(f"error: {single_line(error)}", file=sys.stderr, flush=True)
            failed = True
    return 2 if failed else 0


def _fetch_checkpoint(spec):
    from stemeval.taggers import ast_checkpoint, published_files

    path = ast_checkpoint.resolve_checkpoint(spec, published_files.DEFAULT_CHECKPOINT)
    ast_checkpoint.load_local(path)
    return f"AST weights ready: {path}"


def _fetch_speech_model(spec):
    from stemeval.taggers import published_files

    path = speech_model.ensure_speech_model(spec, published_files.DEFAULT_SPEECH_MODEL)
    return f"speech model ready: {path}"


def report_files(args):
    """Print the status of the chosen files; 1 if any is missing or fails its check."""
    if args.checkpoint and args.checkpoint.startswith((HF_PREFIX, *URL_PREFIXES)):
        raise UserError("status takes a local path for --checkpoint; use fetch for hf: or URLs")
    from stemeval.taggers import ast_checkpoint, published_files

    files = weight_files.tagger_files()
    chosen = _chosen(args.which or (WHICH + tuple(files) if args.all else ()), "status", files)
    reports = {
        "checkpoint": lambda: ast_checkpoint.checkpoint_status(
            Path(args.checkpoint) if args.checkpoint else
            ast_checkpoint.present_default(published_files.DEFAULT_CHECKPOINT)
            or published_files.DEFAULT_CHECKPOINT,
            "given with --checkpoint" if args.checkpoint else
            f"Hugging Face hub {AST_HUB_ID}, converted to the authors' format",
            "" if args.checkpoint else f"{FETCH_COMMAND} checkpoint"),
        "speech-model": lambda: status.speech_model_status(
            Path(args.speech_model) if args.speech_model else published_files.DEFAULT_SPEECH_MODEL,
            "given with --speech-model" if args.speech_model else speech_model_url(),
            "" if args.speech_model else f"{FETCH_COMMAND} speech-model"),
        **{name: (lambda file=file: weight_files.status(file)) for name, file in files.items()},
    }
    results = [reports[name]() for name in chosen]
    for report in results:
        print("\n".join(status.format_status(report)))
    return 0 if all(report.ok for report in results) else 1
