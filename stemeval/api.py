"""The Python API, for a notebook: evaluate a dataset with a tagger, score a results file,
compare runs. Each function checks its inputs as its command does (the same parser, the
same output guard) and raises ``UserError`` with the command's one-line message; each
returns plain data: paths, lists of row dicts, and the dicts the commands write with
``--json``.
"""

from dataclasses import dataclass
from pathlib import Path

from stemeval.analyses.leaderboard import json_leaderboard, leaderboard
from stemeval.commands.evaluate import build_parser
from stemeval.common.errors import UserError
from stemeval.datasets import DATASETS
from stemeval.report.json_report import json_intervals, json_report
from stemeval.runfiles.results import check_rows, count_errors, read_results
from stemeval.scoring.metrics import category_lists, per_class_metrics, value_counts
from stemeval.scoring.published_rows import compare as compare_rows
from stemeval.scoring.tracks import file_intervals

# Imported inside the function that runs it, so that scoring from Python does not load torch:
# stemeval.engine.run.


@dataclass(frozen=True)
class Run:
    """What ``evaluate`` wrote: the results CSV and its rows (dicts, as ``read_results``
    reads them back)."""

    output: Path
    rows: list


def evaluate(dataset, folder, output=None, *, progress=False, **options):
    """Evaluate a tagger on the stems of ``folder`` (a ``dataset`` layout: ``dsd100``,
    ``moisesdb``, ``musdb18hq``, ...) and return the ``Run``.

    ``output``: the results CSV (default ``results_<dataset>.csv``, as the command).
    ``options`` are the command's options with underscores, e.g. ``tagger="panns-cnn14"``,
    ``checkpoint="AST/pretrained_models/audio_mdl.pth"``, ``workers=0``, ``resume=True``,
    ``embeddings="e.npz"``, ``limit=10``; ``progress``: show the progress bar.
    """
    if dataset not in DATASETS:
        raise UserError(f"unknown dataset {dataset!r} (choose from {', '.join(DATASETS)})")
    argv = [dataset, str(folder)] + _options_argv(
        {"output": output, "quiet": not progress, **options})
    args = build_parser(prog="stemeval.evaluate").parse_args(argv)
    if args.output is None:
        args.output = f"results_{dataset}.csv"
    from stemeval.engine.run import evaluate_dataset

    evaluate_dataset(DATASETS[dataset], args)
    return Run(Path(args.output), read_results(args.output))


def score(path, compare=None, stats=True):
    """The scores of the results CSV ``path``, as ``stemeval score PATH --json`` writes them
    (fractions, not percents): accuracy, per-category precision, recall and F1, macro-F1,
    the confusion matrix, the mismatches; with ``stats``, intervals by bootstrap over
    tracks; with ``compare`` (another results CSV, or ``"published"``), the comparison."""
    rows = read_results(str(path))
    check_rows(rows, str(path))
    scores = per_class_metrics(*category_lists(rows))
    intervals = None
    if stats:
        found, by_track = file_intervals(rows, str(path))
        intervals = json_intervals(by_track, found, count_errors(rows))
    comparison = compare_rows(rows, str(path), str(compare)) if compare else None
    return json_report(str(path), rows, scores, comparison, intervals)


def compare(paths, stats=False):
    """Several results CSVs side by side, as ``stemeval score A.csv B.csv ... --json``
    writes them: accuracy, balanced accuracy, macro-F1 and recall per category of each run,
    ranked among runs on the same stems; with ``stats``, intervals and paired tests."""
    return json_leaderboard(leaderboard([str(path) for path in paths], stats=stats))


def label_counts(path, column="label"):
    """``{value: number of rows}`` of a column of a results CSV (labels lower-cased), as
    ``stemeval labels PATH --counts`` lists them."""
    rows = read_results(str(path), required=[column], allow_empty=True, scored=False)
    return value_counts(rows, column)


def _options_argv(options):
    """Command-line arguments of keyword options: ``True`` is a flag, ``None`` and ``False``
    are left out; an unknown name is a UserError, as an unknown option is."""
    known = {action.dest for action in build_parser()._actions if action.option_strings}
    argv = []
    for name, value in options.items():
        if name not in known:
            raise UserError(f"unknown option {name!r} of evaluate (see stemeval evaluate "
                            f"--help)")
        if value is None or value is False:
            continue
        argv.append(f"--{name.replace('_', '-')}")
        if value is not True:
            argv.append(str(value))
    return argv
