"""Evaluate the AST as an instrument recogniser on a MoisesDB tree; see README.md.

    python analyze_moisesdb.py /path/to/moisesdb/moisesdb_v0.1    # writes results_moises.csv
"""

from evaluate import evaluate

if __name__ == "__main__":
    evaluate("moisesdb", default_output="results_moises.csv")
