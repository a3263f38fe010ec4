"""``python computeaccuracy.py ...``: the same as ``stemeval score`` (``stemeval.commands.score``); see README.md."""

from stemeval.commands.score import main
from stemeval.common.errors import run_main

if __name__ == "__main__":
    run_main(main)
