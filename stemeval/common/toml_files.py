"""TOML files as people save them: a UTF-8 byte-order mark (Notepad, Excel's "UTF-8" text)
is not part of the document, so it is dropped before ``tomllib`` reads the text."""

import tomllib

from stemeval.common.errors import UserError


def load_toml(path):
    """The table of the TOML file at ``path``; raises OSError, or ValueError for a file that
    is not UTF-8 TOML (``tomllib.TOMLDecodeError`` and ``UnicodeDecodeError`` are both)."""
    with open(path, "rb") as handle:
        return tomllib.loads(handle.read().decode("utf-8-sig"))


def read_toml(path, kind=""):
    """``load_toml``, a file that cannot be read or parsed being one UserError line naming it
    (``kind``, e.g. ``"map "``, goes before the path)."""
    try:
        return load_toml(path)
    except OSError as error:
        raise UserError(f"{kind}{path}: cannot read it ({error.strerror})") from None
    except ValueError as error:
        raise UserError(f"{kind}{path}: not valid TOML ({error})") from None
