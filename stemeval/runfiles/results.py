"""The results CSV: one row per stem, written and flushed row by row, read back with checks.

The file is written with Python's default ``csv`` dialect (comma, minimal quoting, CRLF
line ends), as the published result files are, in UTF-8; it is read as UTF-8 with or
without a byte-order mark (Excel writes one). A file name may hold bytes that are not UTF-8
(Python holds each as a surrogate escape): every field is written through ``encode_text``,
which writes such a byte as ``\\xNN``, so the file stays UTF-8, and the readers that use a
path as a path (``--resume``, ``--compare``) take it back through ``decode_text``.

One parser (``_parse``) finds the file's complete records with the ``csv`` module, so a row
a killed run left without its line end is found even when it was cut inside a quoted field.
"""

import csv
import io
import os
import re
import sys
from dataclasses import dataclass
from pathlib import PurePath

from stemeval.common.errors import DISK_FULL_ADVICE, UserError, is_disk_full, os_reason
from stemeval.datasets.selection import select

COLUMNS = ["label", "path", "prediction", "proposed_label"]
DETAIL_COLUMNS = ["score", "speech_score", "top5", "error", "group"]
ERROR = "error"
BOM = b"\xef\xbb\xbf"

# ``\xNN`` as encode_text writes a byte (NN 80-ff) or a backslash that could be read as one
# (5c); decode_text reads nothing else, so every text comes back as it was.
_ESCAPE = re.compile(r"\\x(5c|[89a-f][0-9a-f])")
_RAW_BYTE = re.compile("[\udc80-\udcff]")  # a byte that is not UTF-8, as os.fsdecode holds it


def encode_text(text):
    """``text`` as a results CSV holds it: a byte of a file name that is not UTF-8 becomes
    ``\\xNN`` (two lower-case hex digits), and a backslash that starts such an escape becomes
    ``\\x5c``; any other text is unchanged."""
    text = _ESCAPE.sub(lambda match: "\\x5c" + match.group(0)[1:], text)
    return _RAW_BYTE.sub(lambda match: f"\\x{ord(match.group(0)) - 0xDC00:02x}", text)


def decode_text(text):
    """The text ``encode_text`` wrote ``text`` from (a path as ``os.fsdecode`` gives it)."""
    return _ESCAPE.sub(lambda match: chr(int(match.group(1), 16)
                                         + (0 if match.group(1) == "5c" else 0xDC00)), text)


def _parse(data):
    """``(text, records, end)`` of a results file's bytes. ``text`` is the file without a
    byte-order mark (bytes that are not UTF-8 as surrogate escapes); ``records`` its complete
    CSV records as ``(line, fields)``, ``line`` being where the record starts; ``end`` where
    the last of them ends in ``text``. What follows ``end`` is a record a killed run left
    without its line end, possibly cut inside a quoted field. Raises csv.Error with the line."""
    text = data[len(BOM) if data.startswith(BOM) else 0:].decode("utf-8", "surrogateescape")
    consumed = 0

    def lines():
        nonlocal consumed
        for line in io.StringIO(text, newline=""):
            consumed += len(line)
            yield line

    reader = csv.reader(lines())
    records, end, line = [], 0, 1
    try:
        for fields in reader:
            if consumed == len(text) and (not text.endswith(("\n", "\r"))
                                          or _inside_quotes(text[end:])):
                break
            records.append((line, fields))
            end, line = consumed, reader.line_num + 1
    except csv.Error as error:
        raise csv.Error(f"line {reader.line_num}: {error}") from None
    return text, records, end


def _inside_quotes(record):
    """Whether a record's text ends inside a quoted field (the file was cut there)."""
    try:
        list(csv.reader(io.StringIO(record, newline=""), strict=True))
    except csv.Error as error:
        return "unexpected end of data" in str(error)
    return False


def _byte_size(data, text, end):
    """The bytes of ``data`` that hold ``text[:end]`` (its byte-order mark included)."""
    return (len(BOM) if data.startswith(BOM) else 0) + len(text[:end].encode("utf-8",
                                                                              "surrogateescape"))


def _line_not_utf8(text, end):
    """The line of the first byte in ``text[:end]`` that is not UTF-8, or None."""
    found = _RAW_BYTE.search(text, 0, end)
    return None if found is None else text.count("\n", 0, found.start()) + 1


def _read_bytes(path):
    if os.path.isdir(path):
        raise UserError(f"{path}: is a folder; give a results CSV file")
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise UserError(f"{path}: cannot read it ({error.strerror})") from None


def is_results_file(path):
    """Whether the file at ``path`` starts as a results CSV does: a header holding the
    published columns, or the start of one that a killed run cut short."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    first, newline, _ = head.decode("utf-8", "replace").lstrip("\ufeff").partition("\n")
    try:
        header = next(csv.reader([first.rstrip("\r")]), [])
    except csv.Error:  # a carriage return inside the line, as in binary files: not a CSV
        return False
    return set(COLUMNS) <= set(header) or (not newline and ",".join(COLUMNS).startswith(first))


def read_results(path, required=COLUMNS, allow_empty=False, scored=True):
    """Return the rows of a results CSV as dicts, or raise UserError saying what is wrong.

    A last row without a line end was cut by a killed run (every row is written whole, line
    end included): it is skipped with a warning on stderr, as ``--resume`` repairs it. Rows
    to be ``scored`` leave out those with neither label nor proposed label (``,,,``), which
    would count as matches, with one warning. With ``allow_empty`` an empty file (no header)
    has no rows, as the published scripts read it.
    """
    data = _read_bytes(path)
    try:
        text, records, end = _parse(data)
        if not records:  # no complete line: the text is a header, maybe cut short
            records, end = [(1, next(csv.reader(io.StringIO(text, newline="")), []))], len(text)
    except csv.Error as error:
        raise UserError(f"{path}: not a readable CSV file ({error})") from None
    bad = _line_not_utf8(text, end)
    if bad is not None:
        raise UserError(f"{path}: not a readable CSV file (line {bad} holds bytes that are not "
                        f"UTF-8)")
    header = records[0][1]
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
    if end < len(text):
        line = text.count("\n", 0, end) + 1
        print(f"warning: {path}: line {line} ({text[end:]!r}) is cut short, as a killed run "
              f"leaves it; it is skipped (--resume would write it again)", file=sys.stderr)
    rows, blank = [], []
    for line, fields in records[1:]:
        if not fields:
            continue
        row = dict(zip(header, fields))
        row.update((name, None) for name in header[len(fields):])
        if len(fields) > len(header):
            row[None] = fields[len(header):]
        if scored and (row.get("label") or "").strip() == (row.get("proposed_label")
                                                           or "").strip() == "":
            blank.append(line)
        else:
            rows.append(row)
    if blank:
        print(f"warning: {path}: {len(blank)} row(s) have neither a label nor a proposed "
              f"label (the first at line {blank[0]}); they are not scored", file=sys.stderr)
    return rows


@dataclass
class KeptRows:
    """What ``--resume`` keeps of a results file, read without changing it: its complete
    rows (dicts, fields as written) and its size up to the end of the last of them; ``cut``
    is the half-written row a killed run left after them ("" if none)."""

    rows: list
    size: int
    cut: str


def read_kept(path, columns):
    """What ``--resume`` keeps of the results file ``path``: None when there is no complete
    header yet (the run starts the file anew). A header other than ``columns``, a row with
    another number of fields, or bytes that are not UTF-8 are refused with their line;
    nothing is written."""
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return None
    data = _read_bytes(path)
    try:
        text, records, end = _parse(data)
    except csv.Error as error:
        raise UserError(f"cannot resume {path}: it is not a readable CSV file ({error})") from None
    if not records:
        return None
    header = records[0][1]
    if header != list(columns):
        raise UserError(f"cannot resume {path}: its header is {','.join(header)}, "
                        f"this run writes {','.join(columns)}")
    bad = _line_not_utf8(text, end)
    if bad is not None:
        raise UserError(f"cannot resume {path}: line {bad} holds bytes that are not UTF-8 "
                        f"(a results CSV is UTF-8); repair that line, or drop --resume to "
                        f"start anew")
    rows = []
    for line, fields in records[1:]:
        if not fields:
            continue
        if len(fields) != len(columns):
            raise UserError(f"cannot resume {path}: line {line} has {len(fields)} field(s) where "
                            f"its header has {len(columns)} (a damaged row); repair or remove "
                            f"that line, or drop --resume to start anew")
        rows.append(dict(zip(columns, fields)))
    return KeptRows(rows, _byte_size(data, text, end), text[end:])


def stems_to_do(kept, stems, folder, output, left_out=None):
    """The stems (in order) without a row among ``kept`` ``(path, label)`` of a resumed file.

    A row is matched by the stem's path below the dataset folder (a manifest's folder), so
    the folder may be typed another way (``./synth`` for ``synth``, absolute for relative) or
    have moved; a stem listed outside it is matched by its whole path. A file with a row that
    is not among this run's stems, labelled otherwise than this run labels it, or rows below
    two folders was made for another folder or dataset: resuming it is refused. The reason
    is told apart when the row's stem is one ``left_out()`` names (``(stem, reason)`` of the
    stems ``--split`` or ``--limit`` leave out; called only then) or no longer exists.
    """
    below = _below(stems, _base(folder))
    depth = max(map(len, below), default=0)
    done, prefixes = set(), set()
    for path, label in kept:
        path, label = decode_text(path), decode_text(label)
        parts = _parts(path)
        size = _matched(parts, below, depth)
        if not size:
            _refuse_outside(output, kept, path, folder, left_out)
        stem, inside = below[parts[-size:]]
        if label != stem.label:
            _refuse(output, kept, f"it labels {encode_text(path)} {encode_text(label)!r} where "
                                  f"this run labels it {encode_text(stem.label)!r}")
        if inside:
            prefixes.add(os.path.realpath(os.path.join(*parts[:-size]) if len(parts) > size
                                          else "."))
        done.add(parts[-size:])
    if len(prefixes) > 1:
        _refuse(output, kept, f"its rows lie below {len(prefixes)} different folders")
    return [stem for key, (stem, _) in below.items() if key not in done]


def left_out_stems(dataset, folder, category_map, split=None, limit=None, follow_links=False):
    """For ``stems_to_do``: a function giving ``(stem, reason)`` for each stem of ``folder``
    that ``--split`` or ``--limit`` leave out of a run (it walks the folder again)."""
    def left_out():
        every = select(dataset, folder, category_map, None, follow_links).stems
        chosen = [stem for stem in every if split is None or stem.split == split]
        found = [(stem, f"a stem of split {stem.split}, which --split {split} leaves out")
                 for stem in every if split is not None and stem.split != split]
        if limit:
            found += [(stem, f"stem {number} of {len(chosen)}, beyond --limit {limit}")
                      for number, stem in enumerate(chosen[limit:], limit + 1)]
        return found
    return left_out


def _base(folder):
    return os.path.dirname(folder) or "." if os.path.isfile(folder) else folder


def _below(stems, base):
    """``{parts of the path below base (or whole, outside it): (stem, inside)}``."""
    below = {}
    for stem in stems:
        relative = _parts(os.path.relpath(stem.path, base))
        inside = relative[:1] != (os.pardir,)
        below[relative if inside else _parts(stem.path)] = stem, inside
    return below


def _matched(parts, below, depth):
    """How many trailing parts of ``parts`` (at most ``depth``) name a key of ``below``."""
    return next((n for n in range(min(depth, len(parts)), 0, -1) if parts[-n:] in below), 0)


def _parts(path):
    return PurePath(os.path.normpath(path)).parts


def _refuse_outside(output, kept, path, folder, left_out):
    """Stop a resume on a row whose stem is not among this run's, saying why."""
    if left_out is not None:
        reasons = {}
        for stem, reason in left_out():
            reasons[stem.path] = stem, reason
        others = _below([stem for stem, _ in reasons.values()], _base(folder))
        size = _matched(_parts(path), others, max(map(len, others), default=0))
        if size:
            stem, _ = others[_parts(path)[-size:]]
            raise UserError(f"cannot resume {output}: it has a row for {encode_text(path)}, "
                            f"{reasons[stem.path][1]}; resume with the options it was made "
                            f"with, or give another --output")
    real, root = os.path.realpath(path), os.path.realpath(_base(folder))
    if (not os.path.exists(path) and os.path.isdir(root)
            and os.path.commonpath([real, root]) == root):
        raise UserError(f"cannot resume {output}: it has a row for {encode_text(path)}, a stem "
                        f"that is no longer in {folder} (deleted or renamed); put it back, or "
                        f"remove its row from {output}")
    _refuse(output, kept, f"{encode_text(path)} is not among this run's stems of {folder}")


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

    With ``kept`` (``read_kept``'s answer), the rows already in the file are kept and a
    half-written row after them is cut off; otherwise the file starts anew.
    """

    def __init__(self, path, columns=COLUMNS, kept=None):
        self.path = path
        self.columns = list(columns)
        try:
            if kept is not None:
                if kept.cut:
                    os.truncate(path, kept.size)
                self._handle = open(path, "a", newline="", encoding="utf-8")
            else:
                self._handle = open(path, "w", newline="", encoding="utf-8")
        except OSError as error:
            raise UserError(f"cannot write the output {path}: {os_reason(error)}") from None
        self._writer = csv.writer(self._handle)
        if kept is None:
            self._write(self.columns)

    def _write(self, values):
        try:
            self._writer.writerow(values)
            self._handle.flush()
        except OSError as error:
            raise UserError(f"cannot write the output {self.path}: {os_reason(error)}"
                            f"{DISK_FULL_ADVICE if is_disk_full(error) else ''}") from None

    def write(self, row):
        """Write one row (a dict with at least the published columns)."""
        values = (row.get(name) for name in self.columns)
        self._write(["" if value is None else encode_text(value) if isinstance(value, str)
                     else value for value in values])

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


def count_errors(rows):
    """The error rows among ``rows``: stems that failed, scored as misses."""
    return sum(1 for row in rows if row.get("prediction") == ERROR)


def warn_repeated_paths(rows, path):
    """Warn on stderr when paths repeat (each stem should have one row; every row is scored)."""
    repeated = len(rows) - len({row.get("path") for row in rows})
    if repeated:
        print(f"warning: {path}: {repeated} row(s) repeat the path of an earlier row "
              f"(each stem should have one row); every row is scored", file=sys.stderr)
