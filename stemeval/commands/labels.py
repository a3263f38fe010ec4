"""List the ground-truth labels of a results CSV (or the values of another column).

Prints what the published list_labels.py printed: "Unique labels found:" and then the Python
list of the sorted unique labels (stripped, lower-cased), e.g. ['bass', 'drums', 'vocals'].
--counts adds each value's number of rows after it; --column lists another column's values
(only label and proposed_label are lower-cased, other columns are listed as written);
--format compact prints one value per line instead. Empty values are not listed. As
published, a missing file prints "Error: File '...' does not exist." on stdout with exit
status 1; other bad input gives one "error: ..." line on stderr and exit status 2.

Run from the project root as: python AST/list_labels.py results_moises.csv
"""

import argparse
import os
import sys

from stemeval.common.errors import ArgumentParser
from stemeval.report.published import (
    format_published_values,
    published_missing_file,
    published_usage,
)
from stemeval.report.text import format_counts, join_sections
from stemeval.runfiles.results import read_results
from stemeval.scoring.metrics import value_counts

SCRIPT = "list_labels.py"


def build_parser(prog=SCRIPT):
    parser = ArgumentParser(prog=prog, description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", metavar="FILE",
                        help="results CSV; only the listed column is read")
    parser.add_argument("--counts", action="store_true",
                        help="print each value with the number of rows that have it")
    parser.add_argument("--column", default="label", metavar="NAME",
                        help="the column to list (default: label); e.g. prediction, "
                             "proposed_label, or error in a file written with --details")
    parser.add_argument("--format", choices=("published", "compact"), default="published",
                        help="published (default): a heading and the Python list of values; "
                             "compact: one value per line (with --counts, only the counts)")
    return parser


def main(argv=None, prog=SCRIPT):
    """``AST/list_labels.py`` (``stemeval labels``); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        print(published_usage(prog))
        return 1
    args = build_parser(prog).parse_args(argv)
    if not os.path.exists(args.file):
        print(published_missing_file(args.file))
        return 1
    rows = read_results(args.file, required=[args.column], allow_empty=True, scored=False)
    counts = value_counts(rows, args.column)
    sections = []
    if args.format == "published":
        sections.append(format_published_values(counts, args.column))
    if args.counts:
        sections.append(format_counts(counts))
    elif args.format == "compact":
        sections.append(list(counts))
    lines = join_sections(*sections)
    if lines:
        print("\n".join(lines))
    return 0

