"""``python AST/list_labels.py FILE``: the published script, the same as ``stemeval labels``
(``stemeval.commands.labels``); see README.md."""

import sys
from pathlib import Path

# Run as a script, this file's folder (AST/) is on sys.path, not the project root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stemeval.commands.labels import main  # noqa: E402
from stemeval.common.errors import run_main  # noqa: E402

if __name__ == "__main__":
    run_main(main)
