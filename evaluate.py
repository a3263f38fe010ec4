"""Evaluate an AudioSet tagger as an instrument recogniser on any supported stem dataset.

    python evaluate.py DATASET FOLDER [options]    # writes results_<DATASET>.csv
    python evaluate.py --help                      # lists the datasets and options

The same as ``stemeval evaluate``; the published scripts analyze_dsd100.py and
analyze_moisesdb.py call it with their published defaults. See README.md.
"""

from stemeval.commands.evaluate import main
from stemeval.common.errors import run_main


def evaluate(dataset=None, default_output=None):
    """Run the command line for ``dataset`` (None: read from the arguments) and exit."""
    run_main(lambda: main(dataset=dataset, default_output=default_output))


if __name__ == "__main__":
    evaluate()
