"""Evaluate the AST as an instrument recogniser on a DSD100 tree; see README.md.

    python analyze_dsd100.py /path/to/DSD100/Sources    # writes results_dsd100.csv
"""

from commonutils import main
from stemeval.errors import run_main

if __name__ == "__main__":
    run_main(lambda: main("dsd100", default_output="results_dsd100.csv"))
