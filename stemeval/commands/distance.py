"""How far apart two sets of stems are, on the embeddings their runs saved (--embeddings).

Fréchet distance (FAD: over the windows' embeddings where the files keep them, else the
stems'), kernel distance (KID: unbiased MMD^2, cubic polynomial kernel) and precision,
recall, density and coverage (PRDC, k nearest neighbours; A is the real set), overall and,
with --by category, per category, each with a bootstrap interval over tracks. Two files of
different taggers, layers or weights, or sets too small for a metric, give one
"error: ..." line on stderr and exit status 2.
"""

import argparse

from stemeval.commands.options import seed
from stemeval.common.errors import ArgumentParser, UserError, shown
from stemeval.distances import embedding_files
from stemeval.report.json_report import write_json
from stemeval.runfiles.embeddings import read_embeddings
from stemeval.runfiles.outputs import check_report_outputs


def build_parser(prog="setdistance.py"):
    parser = ArgumentParser(
        prog=prog,
        description=__doc__,
        epilog="examples:\n"
               "  python setdistance.py clean.npz noisy.npz --by category\n"
               "  python setdistance.py a.npz b.npz --metrics fad,prdc --k 3 --json d.json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", metavar="A.npz", help="the reference set (PRDC's real set)")
    parser.add_argument("b", metavar="B.npz", help="the set measured against it")
    parser.add_argument("--by", choices=("category",),
                        help="also measure each category (the stems' labels) apart")
    parser.add_argument("--metrics", default=",".join(embedding_files.METRICS),
                        help="which of fad, kd, prdc, comma-separated (default: all)")
    parser.add_argument("--k", type=int, default=5,
                        help="PRDC's nearest neighbours (default 5, as Naeem et al.); each set "
                             "needs k + 1 stems")
    parser.add_argument("--boot", type=int, default=200,
                        help="bootstrap resamples of the tracks for the intervals (default "
                             "200; 0: none)")
    parser.add_argument("--level", type=float, default=0.95,
                        help="the intervals' level (default 0.95)")
    parser.add_argument("--seed", type=seed, default=0, help="the bootstrap's seed (default 0)")
    parser.add_argument("--json", metavar="JSON_FILE",
                        help="write every number (and the sets' sizes) as JSON")
    return parser


def main(argv=None, prog="setdistance.py"):
    """``setdistance.py`` (``stemeval distance``); returns the exit status."""
    args = build_parser(prog).parse_args(argv)
    metrics = embedding_files.parse_metrics(args.metrics)
    if args.k < 1:
        raise UserError(f"--k must be at least 1, not {args.k}")
    if args.boot < 0:
        raise UserError(f"--boot must be 0 or more, not {args.boot}")
    if not 0 < args.level < 1:
        raise UserError(f"--level must lie between 0 and 1, not {args.level}")
    check_report_outputs([("JSON file", args.json)], inputs=[args.a, args.b])
    a, b = read_embeddings(args.a), read_embeddings(args.b)
    embedding_files.check_pair(a, b)
    report = embedding_files.compare(a, b, metrics, by_category=args.by == "category", k=args.k,
                               boot=args.boot, level=args.level, seed=args.seed)
    print("\n".join(embedding_files.format_report(report)))
    if args.json:
        write_json(report, args.json)
        print(f"JSON report written to {shown(args.json)}")
    return 0

