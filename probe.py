"""``python probe.py ...``: the same as ``stemeval probe`` (``stemeval.commands.probe``); see README.md."""

from stemeval.commands.probe import main
from stemeval.common.errors import run_main

if __name__ == "__main__":
    run_main(main)
