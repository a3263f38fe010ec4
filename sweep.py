"""Robustness sweep: datasets x taggers x deformations from one config; see README.md.

    python sweep.py sweeps/example.toml [--output DIR] [--ray [ADDRESS]]
"""

from stemeval.errors import run_main
from stemeval.sweep.cli import main

if __name__ == "__main__":
    run_main(main)
