"""Evaluate the AST as an instrument recogniser on a DSD100 tree; see README.md.

    python analyze_dsd100.py /path/to/DSD100/Sources    # writes results_dsd100.csv
"""

from evaluate import evaluate

if __name__ == "__main__":
    evaluate("dsd100", default_output="results_dsd100.csv")
