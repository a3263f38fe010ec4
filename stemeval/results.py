"""The results CSV: one row per stem, written and flushed row by row, read back with checks.

The file is written with Python's default ``csv`` dialect (comma, minimal quoting, CRLF
line ends), as the published result files are.
"""

import csv
import io
import os
import sys
from pathlib import PurePath

from stemeval.errors import UserError

COLUMNS = ["label", "path", "prediction", "proposed_label"]
DETAIL_COLUMNS = ["score", "speech_score", "top5", "error", "group"]
ERROR = "error"


def check_output_path(path, what="output", inputs=()):
    """Fail before any work if ``path`` cannot be written as the ``what`` (without touching it)."""
    if not path:
        raise UserError(f"the {what} file name is empty")
    if os.path.isdir(path):
        raise UserError(f"cannot write the {what} {path}: it is a folder")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UserError(f"cannot write the {what} {path}: no folder {parent}")
    for source in inputs:
        if os.path.exists(path) and os.path.exists(source) and os.path.samefile(path, source):
            raise UserError(f"cannot write the {what} {path}: it is the input file {source}")
    if not os.access(path if os.path.exists(path) else parent, os.W_OK):
        raise UserError(f"cannot write the {what} {path}: permission denied")


def read_results(path, required=COLUMNS, allow_empty=False):
    """Return the rows of a results CSV as dicts, or raise UserError saying what is wrong.

    A last line without a line end was cut by a killed run (every row is written whole,
    line end included): it is skipped with a warning on stderr, as ``--resume`` repairs it.
    With ``allow_empty`` an empty file (no header) has no rows, as the published scripts read it.
    """
    if os.path.isdir(path):
        raise UserError(f"{path}: is a folder; give a results CSV file")
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            text = handle.read()
        reader = csv.DictReader(io.StringIO(text))
        header = reader.fieldnames
        if not header:
            if allow_empty:
                return []
            raise UserError(f"{path}: the file is empty (expected a header {','.join(COLUMNS)})")
        missing = [name for name in required if name not in header]
        if missing:
            hint = ("; the analyze scripts write it only with --details"
                    if set(missing) <= set(DETAIL_COLUMNS) else "")
            raise UserError(
                f"{path}: missing column(s) {', '.join(missing)} "
                f"(header is {','.join(header)}){hint}")
        rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"{path}: not a readable CSV file ({error})") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read it ({error.strerror})") from None
    if rows and not text.endswith(("\n", "\r")):
        cut = text[text.rfind("\n") + 1:]
        print(f"warning: {path}: line {reader.line_num} ({cut!r}) is cut short, as a killed "
              f"run leaves it; it is skipped (--resume would write it again)", file=sys.stderr)
        rows.pop()
    return rows


def stems_to_do(kept, stems, folder, output):
    """The stems (in order) without a row among ``kept`` ``(path, label)`` of a resumed file.

    A row is matched by the stem's path below the dataset folder (a manifest's folder), so
    the folder may be typed another way (``./synth`` for ``synth``, absolute for relative) or
    have moved; a stem listed outside it is matched by its whole path. A file with a row that
    is not among this run's stems, labelled otherwise than this run labels it, or rows below
    two folders was made for another folder or dataset: resuming it is refused.
    """
    base = os.path.dirname(folder) or "." if os.path.isfile(folder) else folder
    below = {}
    for stem in stems:
        relative = _parts(os.path.relpath(stem.path, base))
        inside = relative[:1] != (os.pardir,)
        below[relative if inside else _parts(stem.path)] = stem, inside
    depth = max(map(len, below), default=0)
    done, prefixes = set(), set()
    for path, label in kept:
        parts = _parts(path)
        size = next((n for n in range(min(depth, len(parts)), 0, -1) if parts[-n:] in below), 0)
        if not size:
            _refuse(output, kept, f"{path} is not among this run's stems of {folder}")
        stem, inside = below[parts[-size:]]
        if label != stem.label:
            _refuse(output, kept, f"it labels {path} {label!r} where this run labels it "
                                  f"{stem.label!r}")
        if inside:
            prefixes.add(os.path.realpath(os.path.join(*parts[:-size]) if len(parts) > size
                                          else "."))
        done.add(parts[-size:])
    if len(prefixes) > 1:
        _refuse(output, kept, f"its rows lie below {len(prefixes)} different folders")
    return [stem for key, (stem, _) in below.items() if key not in done]


def _parts(path):
    return PurePath(os.path.normpath(path)).parts


def _refuse(output, kept, reason):
    """Stop a resume with what the file was made for: its stems' folder and their labels."""
    try:
        where = os.path.commonpath([os.path.dirname(path) for path, _ in kept]) or "."
    except ValueError:  # absolute and relative paths mixed
        where = "several folders"
    labels = sorted({label for _, label in kept})
    shown = ", ".join(labels[:8]) + (", ..." if len(labels) > 8 else "")
    raise UserError(f"cannot resume {output}: it was made for another folder or dataset "
                    f"({reason}; its {len(kept)} rows are stems under {where} labelled {shown}); "
                    f"pass another --output, or drop --resume to start it anew")


class ResultWriter:
    """Append rows to a results CSV, flushing each one so an interrupted run keeps its rows.

    With ``resume``, the rows already in the file are kept (their ``(path, label)`` are in
    ``kept``) and a half-written last line left by a killed run is cut off; otherwise the
    file starts anew.
    """

    def __init__(self, path, columns=COLUMNS, resume=False):
        self.path = path
        self.columns = list(columns)
        self.kept = []
        try:
            keep = resume and os.path.isfile(path) and self._cut_partial_line(path) > 0
            if keep:
                self.kept = self._read_kept(path)
                self._handle = open(path, "a", newline="", encoding="utf-8")
            else:
                self._handle = open(path, "w", newline="", encoding="utf-8")
        except OSError as error:
            raise UserError(f"cannot write the output {path}: {error.strerror}") from None
        self._writer = csv.writer(self._handle)
        if not keep:
            self._write(self.columns)

    @staticmethod
    def _cut_partial_line(path):
        """Cut the half-written last line a killed run may leave; returns the size left."""
        with open(path, "r+b") as handle:
            data = handle.read()
            size = data.rfind(b"\n") + 1
            if size != len(data):
                handle.truncate(size)
        return size

    def _read_kept(self, path):
        """Check the header and return the ``(path, label)`` of the rows already written."""
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header != self.columns:
                raise UserError(
                    f"cannot resume {path}: its header is {','.join(header or [])}, "
                    f"this run writes {','.join(self.columns)}")
            return [(row[1], row[0]) for row in reader if len(row) == len(self.columns)]

    def _write(self, values):
        try:
            self._writer.writerow(values)
            self._handle.flush()
        except OSError as error:
            raise UserError(f"cannot write the output {self.path}: {error.strerror}") from None

    def write(self, row):
        """Write one row (a dict with at least the published columns)."""
        self._write([row.get(name, "") for name in self.columns])

    def close(self):
        self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check_rows(rows, path):
    """Raise a UserError when a results file has no rows (no metrics to compute)."""
    if not rows:
        raise UserError(f"{path}: the file has no rows, so there is nothing to score")


def warn_repeated_paths(rows, path):
    """Warn on stderr when paths repeat (each stem should have one row; every row is scored)."""
    repeated = len(rows) - len({row.get("path") for row in rows})
    if repeated:
        print(f"warning: {path}: {repeated} row(s) repeat the path of an earlier row "
              f"(each stem should have one row); every row is scored", file=sys.stderr)
