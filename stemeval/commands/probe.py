"""Train a probe on a tagger's embeddings, folds grouped by track, beside its zero-shot rows.

Reads the .npz files the evaluation writes with --embeddings (arrays embeddings [stems, dim],
paths, labels, groups, tagger) and cross-validates a probe on each: standardised embeddings,
logistic regression (or an MLP with --mlp) whose regularisation is chosen by an inner search
grouped by track on the training stems of each fold. Prints accuracy, balanced accuracy and
macro-F1 as mean ± std over the folds, recall per category and the confusion matrix; with
--zero-shot, the zero-shot rows of the same stems scored on the same folds beside the probe
(and how many of them the speech gate sent to speech, which the tagger never heard);
--probe-right lists the stems the probe names right and the zero-shot rows do not, and --json
keeps each stem's fold and answers. Several files give one table (tagger x
zero-shot/probe). Bad input gives one "error: ..." line on stderr and exit status 2.
"""

import argparse

from stemeval.analyses import probes
from stemeval.commands.options import seed
from stemeval.common.errors import ArgumentParser, UserError, shown
from stemeval.report.json_report import write_json
from stemeval.report.plots import plot_format
from stemeval.runfiles.embeddings import read_embeddings
from stemeval.runfiles.outputs import check_report_outputs


def build_parser(prog="probe.py"):
    parser = ArgumentParser(
        prog=prog,
        description=__doc__,
        epilog="examples:\n"
               "  python probe.py ast.npz --zero-shot results_moises.csv\n"
               "  python probe.py ast.npz clap.npz --zero-shot ast.csv clap.csv --plot recall.png\n"
               "  python probe.py ast.npz --mlp --folds 10 --seed 1 --json probe.json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", metavar="EMBEDDINGS", nargs="+",
                        help="embeddings .npz written by an evaluation run with --embeddings")
    parser.add_argument(
        "--zero-shot", metavar="RESULTS", nargs="+", action="extend",
        help="the results CSV of the run that wrote each embeddings file, in the same order "
             "(one per file): its proposed labels are scored on the probe's test stems, "
             "matched by path")
    parser.add_argument("--folds", type=int, default=5,
                        help="number of outer folds, grouped by track (default 5)")
    parser.add_argument("--seed", type=seed, default=0,
                        help="seed of the fold shuffle and of the MLP (default 0)")
    parser.add_argument("--mlp", action="store_true",
                        help="an MLP probe (one hidden layer of 256 units, its L2 alpha chosen "
                             "by the inner search) instead of logistic regression")
    parser.add_argument("--probe-right", action="store_true",
                        help="with --zero-shot: list the stems the probe names right and the "
                             "zero-shot rows do not (category, zero-shot label, fold, path)")
    parser.add_argument("--json", metavar="JSON_FILE",
                        help="write every fold, the mean and std of each score, the "
                             "per-category metrics and confusion matrices, and each stem's "
                             "fold and answers (per_stem) as JSON")
    parser.add_argument("--plot", metavar="IMAGE",
                        help="save the recall per category of each tagger and method as a bar "
                             "chart (PNG unless the extension names another matplotlib format)")
    return parser


def main(argv=None, prog="probe.py"):
    """``probe.py`` (``stemeval probe``); returns the exit status."""
    args = build_parser(prog).parse_args(argv)
    if args.folds < 2:
        raise UserError(f"--folds must be at least 2, not {args.folds}")
    zero_shot = args.zero_shot or []
    if zero_shot and len(zero_shot) != len(args.files):
        raise UserError(f"--zero-shot takes one results CSV per embeddings file: "
                        f"{len(zero_shot)} for {len(args.files)}")
    if args.probe_right and not zero_shot:
        raise UserError("--probe-right goes with --zero-shot (the rows the probe is set beside)")
    check_report_outputs([("plot", args.plot), ("JSON file", args.json)],
                         inputs=args.files + zero_shot, results=zero_shot)
    if args.plot is not None:
        plot_format(args.plot)

    results = []
    for number, path in enumerate(args.files):
        data = probes.without_single_stems(read_embeddings(path))
        labels = probes.zero_shot_labels(data, zero_shot[number]) if zero_shot else None
        gated = probes.zero_shot_gated(data, zero_shot[number]) if zero_shot else None
        results.append(probes.probe_embeddings(data, args.folds, args.seed, args.mlp, labels, gated))

    lines = probes.format_one(results[0]) if len(results) == 1 else probes.format_many(results)
    if args.probe_right:
        lines += probes.format_probe_right(results)
    print("\n".join(lines))
    if args.plot:
        probes.plot_recall(results, args.plot)
        print(f"Recall plot written to {shown(args.plot)}")
    if args.json:
        write_json(probes.json_data(results), args.json)
        print(f"JSON report written to {shown(args.json)}")
    return 0

