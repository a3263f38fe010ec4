"""``python -m AST.models``: fetch the model files ahead of a run, or report on them
(``stemeval.weights.cli``).

From another folder, run this folder as a script: ``python /path/to/project/AST/models status``.
"""

import sys
from pathlib import Path

if not __package__:  # run as a path: import from the project root, not from this folder
    sys.path[0] = str(Path(__file__).resolve().parents[2])

from stemeval.errors import run_main  # noqa: E402
from stemeval.weights.cli import main  # noqa: E402

if __name__ == "__main__":
    run_main(main)
