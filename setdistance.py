"""``python setdistance.py ...``: the same as ``stemeval distance`` (``stemeval.commands.distance``); see README.md."""

from stemeval.commands.distance import main
from stemeval.common.errors import run_main

if __name__ == "__main__":
    run_main(main)
