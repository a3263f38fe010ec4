"""Score a results CSV of the instrument-recognition evaluation, or rank several.

Reads a file written by analyze_dsd100.py or analyze_moisesdb.py (columns label, path,
prediction, proposed_label) and prints what the published computeaccuracy.py printed: a
blank line, "Accuracy: 92.00% (276/300 matches)", a blank line, then "Mismatches:" and one
block per mismatching row (its path, expected label, raw prediction and proposed label, as
written in the file), or "No mismatches found!". A row matches when label and
proposed_label, stripped and lower-cased, are equal.

Options add per-category metrics and the confusion matrix (scikit-learn), intervals by
bootstrap over tracks (scipy), a confusion-matrix image (matplotlib), a JSON report, and a
comparison with the published rows or with the results of another run; they print after
the published part. As published, a missing file prints "Error: File '...' does not
exist." on stdout with exit status 1; other bad input gives one "error: ..." line on
stderr and exit status 2.

Several files give a leaderboard instead (see stemeval/leaderboard.py).
"""

import argparse
import os
import sys

from stemeval import leaderboard, metrics, reference, tracks
from stemeval.errors import ArgumentParser, UserError, run_main
from stemeval.report import json_report, plots, published, text
from stemeval.outputs import check_outputs
from stemeval.results import check_rows, count_errors, read_results, warn_repeated_paths

SCRIPT = "computeaccuracy.py"


def build_parser():
    parser = ArgumentParser(
        prog=SCRIPT,
        description=__doc__,
        epilog="examples:\n"
               "  python computeaccuracy.py results_dsd100.csv\n"
               "  python computeaccuracy.py results_moises.csv --per-class --plot cm.png\n"
               "  python computeaccuracy.py results_dsd100.csv --compare published\n"
               "  python computeaccuracy.py new.csv --compare old.csv --json report.json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "files", metavar="FILE", nargs="+",
        help="results CSV with the columns label,path,prediction,proposed_label "
             "(extra --details columns are allowed and ignored); several files give a "
             "leaderboard: one row per run (named by its sidecar's tagger, else its file "
             "name) with accuracy, balanced accuracy, macro-F1 and recall per category, "
             "the best value per column marked; --plot then draws the recall per category "
             "of each run and --json writes the leaderboard")
    parser.add_argument(
        "--per-class", action="store_true",
        help="also print precision, recall, F1 and support per category (the union of "
             "ground-truth and proposed labels, lower-cased), macro-F1, balanced accuracy "
             "(mean recall over the ground-truth categories) and the confusion matrix as a "
             "text table (rows: ground truth, columns: proposed label); computed with "
             "scikit-learn; then what --stats prints")
    parser.add_argument(
        "--stats", action="store_true",
        help="a 95%% interval for the accuracy and the recall of each ground-truth category "
             "(percentile bootstrap over tracks: the group column, else the dataset's "
             "layout read from each path; --per-class prints them too), and the stems and "
             "error rows scored; with several files, the leaderboard adds them and, for "
             "every two runs on the same stems, McNemar's exact test and the accuracy "
             "difference with its interval")
    parser.add_argument(
        "--plot", metavar="IMAGE",
        help="save the confusion matrix as a heat map to IMAGE (PNG unless the extension "
             "names another matplotlib format, e.g. .pdf or .svg): counts in the cells, "
             "colours normalised per ground-truth row, accuracy in the title")
    parser.add_argument(
        "--json", metavar="JSON_FILE",
        help="write everything as JSON to JSON_FILE: accuracy (a fraction), matches, total, "
             "the mismatching rows, per-category precision/recall/F1/support/correct, "
             "macro-F1, balanced accuracy, the confusion matrix with its label order, and "
             "the --compare result when given; undefined values (0/0) are null")
    parser.add_argument(
        "--compare", metavar="OTHER",
        help="compare with \"published\" (the published rows of the same dataset, DSD100 or "
             "MoisesDB, recognised from the rows; shipped in reference/) or with the results "
             "CSV OTHER of another run (write ./published for a file of that name): both "
             "accuracies, rows matched, rows identical, every matched row whose prediction "
             "or proposed label differs (fixed/broke/changed/prediction), and the stems only "
             "in one file. Rows of the same dataset are matched by the path below the "
             "dataset root (what follows Sources/ or moisesdb_v0.1/), so runs on copies in "
             "other places match; rows of other files by path")
    parser.add_argument(
        "--format", choices=("published", "compact"), default="published",
        help="published (default): the published script's output; compact: the accuracy, "
             "then one line per mismatch")
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        print(published.published_usage(SCRIPT))
        return 1
    args = build_parser().parse_args(argv)
    outputs = [("plot", args.plot), ("JSON file", args.json)]
    if len(args.files) > 1:
        check_outputs(outputs, inputs=args.files)
        return print_leaderboard(args)
    args.file = args.files[0]
    if not os.path.exists(args.file):
        print(published.published_missing_file(args.file))
        return 1
    inputs = [args.file]
    if args.compare == reference.PUBLISHED:
        inputs += map(str, reference.PUBLISHED_RESULTS.values())
    elif args.compare:
        inputs.append(args.compare)
    check_outputs(outputs, inputs=inputs)
    if args.plot is not None:
        plots.plot_format(args.plot)

    rows = read_results(args.file, allow_empty=True)
    warn_repeated_paths(rows, args.file)
    scores = intervals = None
    if args.per_class or args.plot or args.json or args.stats:
        check_rows(rows, args.file)
        scores = metrics.per_class_metrics(*metrics.category_lists(rows))
    if args.per_class or args.json or args.stats:
        found, intervals = tracks.file_intervals(rows, args.file)
    comparison = reference.compare(rows, args.file, args.compare) if args.compare else None

    sections = [published.format_published(rows) if args.format == "published"
                else text.format_compact(rows)]
    if args.per_class:
        sections += [text.format_per_class(scores),
                     text.format_confusion(scores["labels"], scores["confusion_matrix"])]
    if intervals is not None and (args.per_class or args.stats):
        sections.append(text.format_intervals(intervals, found, count_errors(rows)))
    if comparison is not None:
        sections.append(text.format_compare(comparison))
    print("\n".join(text.join_sections(*sections)))
    if args.plot:
        title = (f"{os.path.basename(args.file)}\n"
                 f"{published.format_accuracy(*metrics.accuracy(rows))}")
        plots.plot_confusion(scores["labels"], scores["confusion_matrix"], args.plot, title)
        print(f"Confusion-matrix plot written to {args.plot}")
    if args.json:
        json_report.write_json(json_report.json_report(
            args.file, rows, scores, comparison,
            json_report.json_intervals(intervals, found, count_errors(rows))), args.json)
        print(f"JSON report written to {args.json}")
    return 0


def print_leaderboard(args):
    """Several files: the leaderboard (with --plot and --json as asked)."""
    for option in ("per_class", "compare"):
        if getattr(args, option):
            raise UserError(f"--{option.replace('_', '-')} takes one FILE; several files "
                            f"give a leaderboard")
    board = leaderboard.leaderboard(args.files, stats=args.stats)
    print("\n".join(leaderboard.format_leaderboard(board)))
    if args.plot:
        leaderboard.plot_leaderboard(board, args.plot)
        print(f"Leaderboard plot written to {args.plot}")
    if args.json:
        json_report.write_json(leaderboard.json_leaderboard(board), args.json)
        print(f"JSON leaderboard written to {args.json}")
    return 0


if __name__ == "__main__":
    run_main(main)
