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

Several files give a leaderboard instead (see stemeval/analyses/leaderboard.py).

Is a miss the tagger's or the map's? --map derives every row again from the run's kept
scores with another map, --labels shows where the tagger's picks land, --oracle sets the
shipped map beside the best map the data allows (see stemeval/analyses/tagger_or_map.py).
"""

import argparse
import os
import sys

from stemeval.analyses import leaderboard, tagger_or_map
from stemeval.commands.options import seed
from stemeval.common.errors import ArgumentParser, UserError, shown
from stemeval.report import json_report, plots, published, text
from stemeval.runfiles.outputs import check_report_outputs
from stemeval.runfiles.results import check_rows, count_errors, read_results, warn_repeated_paths
from stemeval.scoring import metrics, published_rows, tracks

# Imported inside the functions that use them, so that what needs none of them starts without them:
# stemeval.runfiles.kept_scores.

SCRIPT = "computeaccuracy.py"


def build_parser(prog=SCRIPT):
    parser = ArgumentParser(
        prog=prog,
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
    add_map_share_options(parser)
    return parser


def add_map_share_options(parser):
    """Is it the tagger or the map? (stemeval/analyses/tagger_or_map.py)"""
    parser.add_argument(
        "--map", metavar="MAP_FILE",
        help="score the rows derived again from the run's kept scores (FILE.scores.npz, "
             "which every evaluation run writes) with the published pick and this category "
             "map (TOML, as evaluate.py --map takes), as a run with --map MAP_FILE would have "
             "written them; every other option then reads those rows")
    parser.add_argument(
        "--labels", action="store_true",
        help="also print where the labels land: the tagger's picks (prediction) x ground "
             "truth, and for each ground-truth category the picks mapped to it, mapped to "
             "another category, or fallen to other")
    parser.add_argument(
        "--oracle", action="store_true",
        help="also print, per category, the accuracy of the oracle map (each pick mapped to "
             "the category it most often is, learned on folds grouped by track and scored on "
             "the held-out tracks) beside this map's, and its misses split into gated as "
             "speech and tagger/map; groups come from the group column (--details), the kept "
             "scores, or a DSD100 or MoisesDB path (the song)")
    parser.add_argument(
        "--embeddings", metavar="NPZ",
        help="with --oracle: the run's embeddings (evaluate.py --embeddings), whose probe's "
             "recall per category (stemeval/analyses/probes.py, folds grouped by track) is printed "
             "beside the oracle")
    parser.add_argument("--folds", type=int, default=5,
                        help="with --oracle: folds grouped by track (default 5)")
    parser.add_argument("--seed", type=seed, default=0,
                        help="with --oracle: seed of the folds (default 0)")


def main(argv=None, prog=SCRIPT):
    """``computeaccuracy.py`` (``stemeval score``); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        print(published.published_usage(prog))
        return 1
    args = build_parser(prog).parse_args(argv)
    outputs = [("plot", args.plot), ("JSON file", args.json)]
    if len(args.files) > 1:
        check_report_outputs(outputs, inputs=args.files, results=args.files)
        return print_leaderboard(args)
    args.file = args.files[0]
    if not os.path.exists(args.file):
        print(published.published_missing_file(args.file))
        return 1
    inputs = [args.file, args.map, args.embeddings]
    if args.compare == published_rows.PUBLISHED:
        inputs += map(str, published_rows.PUBLISHED_RESULTS.values())
    elif args.compare:
        inputs.append(args.compare)
    check_report_outputs(outputs, inputs=inputs, results=[args.file])
    if args.plot is not None:
        plots.plot_format(args.plot)
    check_map_share_options(args)

    rows = read_results(args.file, allow_empty=True)
    warn_repeated_paths(rows, args.file)
    kept = None
    if args.map or args.labels or args.oracle:
        from stemeval.runfiles.kept_scores import read_kept_scores  # numpy: only for these options

        kept = read_kept_scores(args.file)
    if args.map:
        rows = tagger_or_map.remap(args.file, rows, kept, args.map)
    share = map_share_sections(args, rows, kept)
    scores = intervals = None
    if args.per_class or args.plot or args.json or args.stats:
        check_rows(rows, args.file)
        scores = metrics.per_class_metrics(*metrics.category_lists(rows))
    if args.per_class or args.json or args.stats:
        found, intervals = tracks.file_intervals(rows, args.file)
    comparison = published_rows.compare(rows, args.file, args.compare) if args.compare else None
    if comparison is not None and args.map:  # FILE's rows derived again: name them by the map
        mine = "b" if args.compare == published_rows.PUBLISHED else "a"
        comparison[f"map_{mine}"] = args.map

    sections = [published.format_published(rows) if args.format == "published"
                else text.format_compact(rows)]
    if args.map:
        sections[0] = tagger_or_map.remap_heading(args.file, kept, args.map) + sections[0]
    if args.per_class:
        sections += [text.format_per_class(scores),
                     text.format_confusion(scores["labels"], scores["confusion_matrix"])]
    if intervals is not None and (args.per_class or args.stats):
        sections.append(text.format_intervals(intervals, found, count_errors(rows)))
    if comparison is not None:
        sections.append(text.format_compare(comparison))
    sections += share
    print("\n".join(text.join_sections(*sections)))
    if args.plot:
        title = (f"{os.path.basename(args.file)}\n"
                 f"{published.format_accuracy(*metrics.accuracy(rows))}")
        plots.plot_confusion(scores["labels"], scores["confusion_matrix"], args.plot, title)
        print(f"Confusion-matrix plot written to {shown(args.plot)}")
    if args.json:
        report = json_report.json_report(
            args.file, rows, scores, comparison,
            json_report.json_intervals(intervals, found, count_errors(rows)))
        if args.map:  # the rows scored are not the file's
            report["remapped"] = {"map": args.map, "kept_scores": kept.file}
        json_report.write_json(report, args.json)
        print(f"JSON report written to {shown(args.json)}")
    return 0


def check_map_share_options(args):
    """The options that go with --oracle, before any work."""
    if args.folds < 2:
        raise UserError(f"--folds must be at least 2, not {args.folds}")
    if not args.oracle:
        for option in ("embeddings", "folds", "seed"):
            if getattr(args, option) != build_parser().get_default(option):
                raise UserError(f"--{option} goes with --oracle")


def map_share_sections(args, rows, kept):
    """The --labels and --oracle reports of ``rows`` (computed before anything prints)."""
    if not (args.labels or args.oracle):
        return []
    from stemeval.runfiles.kept_scores import gated_flags

    check_rows(rows, args.file)
    gated = gated_flags(rows, kept)
    sections = [tagger_or_map.format_labels(rows, gated)] if args.labels else []
    if args.oracle:
        groups = tagger_or_map.groups_of(rows, kept, args.file)
        share = tagger_or_map.oracle_share(rows, gated, groups, args.folds, args.seed, args.file)
        probe = (tagger_or_map.probe_recall(args.embeddings, args.file, args.folds, args.seed)
                 if args.embeddings else None)
        sections.append(tagger_or_map.format_oracle(share, args.folds, args.seed, probe))
    return sections


def print_leaderboard(args):
    """Several files: the leaderboard (with --plot and --json as asked)."""
    for option in ("per_class", "compare", "map", "labels", "oracle"):
        if getattr(args, option):
            raise UserError(f"--{option.replace('_', '-')} takes one FILE; several files "
                            f"give a leaderboard")
    board = leaderboard.leaderboard(args.files, stats=args.stats)
    print("\n".join(leaderboard.format_leaderboard(board)))
    if args.plot:
        leaderboard.plot_leaderboard(board, args.plot)
        print(f"Leaderboard plot written to {shown(args.plot)}")
    if args.json:
        json_report.write_json(leaderboard.json_leaderboard(board), args.json)
        print(f"JSON leaderboard written to {shown(args.json)}")
    return 0

