"""List the ground-truth labels of a results CSV (or the values of another column).

Prints the sorted unique values of the label column (stripped, lower-cased), one per
line; with --counts, each value followed by its number of rows; with --column, the values
of that column instead (e.g. proposed_label; only label and proposed_label are lower-cased,
other columns are listed as written). Empty values are not listed. Bad input gives one "error: ..." line on
stderr and exit status 2.

Run from the project root as: python AST/list_labels.py results_moises.csv
"""

import argparse
import sys
from pathlib import Path

# Run as a script, this file's folder (AST/) is on sys.path, not the project root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stemeval import report  # noqa: E402
from stemeval.errors import ArgumentParser, run_main  # noqa: E402
from stemeval.results import read_results  # noqa: E402


def build_parser():
    parser = ArgumentParser(prog="list_labels.py", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", metavar="FILE",
                        help="results CSV; only the listed column is read")
    parser.add_argument("--counts", action="store_true",
                        help="print each value with the number of rows that have it")
    parser.add_argument("--column", default="label", metavar="NAME",
                        help="the column to list (default: label); e.g. prediction, "
                             "proposed_label, or error in a file written with --details")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    counts = report.value_counts(read_results(args.file, required=[args.column]), args.column)
    if args.counts:
        width = max((len(label) for label in counts), default=0)
        digits = max((len(str(count)) for count in counts.values()), default=0)
        lines = [f"{label.ljust(width)}  {str(count).rjust(digits)}" for label, count in counts.items()]
    else:
        lines = list(counts)
    if lines:
        print("\n".join(lines))
    return 0



if __name__ == "__main__":
    run_main(main)
