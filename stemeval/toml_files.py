"""TOML files as people save them: a UTF-8 byte-order mark (Notepad, Excel's "UTF-8" text)
is not part of the document, so it is dropped before ``tomllib`` reads the text."""

import tomllib


def load_toml(path):
    """The table of the TOML file at ``path``; raises OSError, or ValueError for a file that
    is not UTF-8 TOML (``tomllib.TOMLDecodeError`` and ``UnicodeDecodeError`` are both)."""
    with open(path, "rb") as handle:
        return tomllib.loads(handle.read().decode("utf-8-sig"))
