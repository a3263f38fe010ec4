"""``python -m stemeval COMMAND ...``: the ``stemeval`` command."""

from stemeval.commands import console

console()
