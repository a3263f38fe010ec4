"""Evaluate an AudioSet tagger as an instrument recogniser on any supported stem dataset.

    python evaluate.py DATASET FOLDER [options]    # writes results_<DATASET>.csv
    python evaluate.py --help                      # lists the datasets and options

The published scripts analyze_dsd100.py and analyze_moisesdb.py call this with their
published defaults. See README.md.
"""

from commonutils import main
from stemeval.errors import run_main


def evaluate(dataset=None, default_output=None):
    """Run the command line for ``dataset`` (None: read from the arguments) and exit."""
    run_main(lambda: main(dataset, default_output))


if __name__ == "__main__":
    evaluate()
