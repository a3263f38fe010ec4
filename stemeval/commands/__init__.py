"""The command line: one module per command, each with its parser and a
``main(argv, prog)`` that returns the exit status; ``stemeval COMMAND`` dispatches to them.

The published scripts (``analyze_dsd100.py``, ``computeaccuracy.py``, ...) call the same
``main`` under their own names, so they print what they always printed.
"""

import importlib
import sys

from stemeval.common.errors import run_main

# name -> (module under stemeval.commands, what it does, its published script)
COMMANDS = {
    "evaluate": ("evaluate", "evaluate a tagger on a stem dataset: one CSV row per stem",
                 "evaluate.py"),
    "score": ("score", "score a results CSV, compare it, or rank several runs",
              "computeaccuracy.py"),
    "labels": ("labels", "list the labels (or another column's values) of a results CSV",
               "AST/list_labels.py"),
    "sweep": ("sweep", "a robustness sweep: datasets x taggers x deformations", "sweep.py"),
    "probe": ("probe", "probes on saved embeddings: how well they name the stems", "probe.py"),
    "distance": ("distance", "how far apart two sets of stems are (FAD, KD, PRDC)",
                 "setdistance.py"),
    "weights": ("weights", "fetch the model files ahead of a run, or report on them", None),
    "demo": ("demo", "generated stems through both published evaluations", "./run.sh demo"),
}


def usage():
    """The command list ``stemeval`` and ``stemeval --help`` print."""
    width = max(map(len, COMMANDS))
    lines = ["usage: stemeval COMMAND [options]   (stemeval COMMAND --help for its options)",
             "", "Evaluate audio taggers as instrument recognisers on multitrack stems.", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary, _) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None):
    """``stemeval COMMAND ...``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"{usage()}\n\nerror: unknown command {name!r}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"stemeval.commands.{COMMANDS[name][0]}")
    return module.main(rest, prog=f"stemeval {name}")


def console():
    """The ``stemeval`` console script."""
    run_main(main)
