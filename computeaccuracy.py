"""Score a results CSV of the AST instrument-recognition evaluation.

Reads a file written by analyze_dsd100.py or analyze_moisesdb.py (columns label, path,
prediction, proposed_label) and prints its accuracy as "Accuracy: 92.00% (276/300 matches)",
then every mismatch with its path, expected label, raw prediction and proposed label. A row
matches when label and proposed_label, stripped and lower-cased, are equal.

Options add per-category metrics and the confusion matrix (scikit-learn), a confusion-matrix
image (matplotlib), a JSON report, and a comparison with the results of another run. Bad
input gives one "error: ..." line on stderr and exit status 2.
"""

import argparse
import os

from stemeval import report
from stemeval.errors import ArgumentParser, run_main
from stemeval.results import check_output_path, read_results


def build_parser():
    parser = ArgumentParser(
        prog="computeaccuracy.py",
        description=__doc__,
        epilog="examples:\n"
               "  python computeaccuracy.py results_dsd100.csv\n"
               "  python computeaccuracy.py results_moises.csv --per-class --plot cm.png\n"
               "  python computeaccuracy.py new.csv --compare old.csv --json report.json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "file", metavar="FILE",
        help="results CSV with the columns label,path,prediction,proposed_label "
             "(extra --details columns are allowed and ignored)")
    parser.add_argument(
        "--per-class", action="store_true",
        help="also print precision, recall, F1 and support per category (the union of "
             "ground-truth and proposed labels, lower-cased), macro-F1, balanced accuracy "
             "(mean recall over the ground-truth categories) and the confusion matrix as a "
             "text table (rows: ground truth, columns: proposed label); computed with "
             "scikit-learn")
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
        help="compare with the results CSV OTHER of another run: print the accuracy of "
             "both runs, every path (present in both) whose proposed label differs, marked "
             "fixed/broke/changed from FILE to OTHER, and how many paths are only in one file")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    outputs = [(path, what) for path, what in ((args.plot, "plot"), (args.json, "JSON file"))
               if path is not None]
    inputs = [args.file] + ([args.compare] if args.compare else [])
    for path, what in outputs:
        check_output_path(path, what, inputs=inputs)
    if args.plot is not None:
        report.plot_format(args.plot)

    rows = read_results(args.file)
    report.check_rows(rows, args.file)
    other_rows = read_results(args.compare) if args.compare else None

    matches, total = report.accuracy(rows)
    lines = [report.format_accuracy(matches, total)] + report.format_mismatches(rows)

    metrics = None
    if args.per_class or args.plot or args.json:
        metrics = report.per_class_metrics(*report.category_lists(rows))
    if args.per_class:
        lines += [""] + report.format_per_class(metrics)
        lines += [""] + report.format_confusion(metrics["labels"], metrics["confusion_matrix"])

    comparison = None
    if other_rows is not None:
        comparison = report.compare_runs(rows, other_rows)
        lines += [""] + report.format_compare(comparison, args.file, args.compare)

    print("\n".join(lines))
    if args.plot:
        title = (f"{os.path.basename(args.file)}\n"
                 f"{report.format_accuracy(matches, total)}")
        report.plot_confusion(metrics["labels"], metrics["confusion_matrix"], args.plot, title)
        print(f"Confusion-matrix plot written to {args.plot}")
    if args.json:
        data = report.json_report(args.file, rows, metrics, comparison, args.compare)
        report.write_json(data, args.json)
        print(f"JSON report written to {args.json}")
    return 0



if __name__ == "__main__":
    run_main(main)
