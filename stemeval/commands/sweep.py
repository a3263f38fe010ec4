"""``stemeval sweep`` (``sweep.py``): a robustness sweep from one TOML config."""

import sys

from stemeval.common.errors import (
    ArgumentParser,
    UserError,
    needs_packages,
    os_reason,
    shown,
)

# Imported inside the functions that use them, so that what needs none of them starts without them:
# stemeval.sweep, stemeval.sweep.config, stemeval.sweep.ray_runner, stemeval.sweep.runner,
# stemeval.sweep.summary.


def parse_args(argv=None, prog="sweep.py"):
    parser = ArgumentParser(
        prog=prog,
        description="Run every dataset x tagger x condition of a sweep config (one results "
                    "CSV per cell), resuming what an earlier run left, then print and write "
                    "the summary (accuracy, macro-F1, drop from clean) and plot accuracy "
                    "against each deformation's strength.")
    parser.add_argument("config", metavar="CONFIG.toml", help="the sweep config (see "
                        "sweeps/example.toml)")
    parser.add_argument("--output", metavar="DIR",
                        help="the output folder (default: the config's output key)")
    parser.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                        help="run the shards as Ray tasks on the cluster at ADDRESS "
                             "(e.g. ray://head:10001 or auto); without ADDRESS on a local Ray")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv=None, prog="sweep.py"):
    """Run a sweep; returns the exit status."""
    args = parse_args(argv, prog)
    with needs_packages("sweep.py"):  # its conditions are audiomentations transforms
        from stemeval.sweep.config import load_config

        config = load_config(args.config, args.output)
    try:
        if args.ray is None:
            from stemeval.sweep.runner import run_local

            run_local(config, quiet=args.quiet)
        else:
            from stemeval.sweep.ray_runner import run_ray

            run_ray(config, address=args.ray or None, quiet=args.quiet)
    except KeyboardInterrupt as interrupt:
        raise type(interrupt)(f"interrupted: the rows so far are in the cell files under "
                              f"{config.output}; the same command continues the "
                              f"sweep") from None
    from stemeval.sweep.runner import summary_lock

    with summary_lock(config):
        try:
            return _summary(config)
        except OSError as error:  # a full disk, say: the cells' files are whole
            raise UserError(f"cannot write the summary in {config.output}: "
                            f"{os_reason(error)}; the cells' rows are kept: the same command "
                            f"writes it once the cause is mended") from None


def _summary(config):
    """Print and write the summary of the sweep ``config`` (under its folder's lock)."""
    from stemeval.sweep.summary import (
        format_table,
        plot_summary,
        summarise,
        write_summary,
    )

    records = summarise(config)
    print("\n".join(format_table(records)))
    extra = ()
    if config.options.embeddings:
        from stemeval.sweep import embedding_shift

        embedding_shift.add_distances(records, config)
        print("\n" + "\n".join(embedding_shift.format_distances(records)))
        extra = embedding_shift.FIELDS
    written = [*write_summary(records, config.output, extra),
               plot_summary(records, f"{config.output}/accuracy.png")]
    if config.options.embeddings:
        from stemeval.sweep.runner import DISTANCE_PLOT

        written.append(embedding_shift.plot_distances(records,
                                                f"{config.output}/{DISTANCE_PLOT}"))
    print("wrote " + ", ".join(shown(path) for path in written if path), file=sys.stderr)
    return 0
