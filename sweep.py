"""``python sweep.py ...``: the same as ``stemeval sweep`` (``stemeval.commands.sweep``); see README.md."""

from stemeval.commands.sweep import main
from stemeval.common.errors import run_main

if __name__ == "__main__":
    run_main(main)
