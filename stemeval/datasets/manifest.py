"""A plain manifest: FOLDER is a CSV with the columns ``path,label`` and optionally ``group``
(the track, so that splits keep a track together). Relative paths are resolved against the
CSV's folder. Without --map the proposed label is the chosen AudioSet label, lower-cased.
A file listed twice is refused (which label would be right?); a listed file that is not a
regular file (a FIFO...) is skipped with a note.
"""

import csv
import os

from stemeval.common.errors import UserError
from stemeval.datasets.walker import Dataset, Found, Stem, irregular_note


def _rows(path):
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:  # Excel writes a BOM
            reader = csv.DictReader(handle)
            missing = [name for name in ("path", "label") if name not in (reader.fieldnames or [])]
            if missing:
                raise UserError(f"{path}: a manifest needs the columns path,label (optional: "
                                f"group); missing {', '.join(missing)}")
            return [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"{path}: not a readable CSV file ({error})") from None


def walk(manifest, follow_links=False):
    """The listed stems; every listed file must exist (one error names the first missing) and
    be listed once (one error names the lines of the first listed twice)."""
    base = os.path.dirname(manifest)
    stems, missing, lines, irregular = [], [], {}, 0
    for line, row in _rows(manifest):
        path, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
        if not path or not label:
            raise UserError(f"{manifest}, line {line}: the path and the label must not be empty")
        path = os.path.join(base, path)
        same = lines.setdefault(os.path.normcase(os.path.realpath(path)), line)
        if same != line:
            raise UserError(f"{manifest}: lines {same} and {line} list the same file "
                            f"({path}); list each stem once, with its one label")
        if not os.path.exists(path):
            missing.append((line, path))
        elif not os.path.isfile(path):
            irregular += 1
            continue
        stems.append(Stem(path, label, group=(row.get("group") or "").strip()))
    if missing:
        line, path = missing[0]
        raise UserError(f"{manifest}: {len(missing)} listed file(s) not found, the first on "
                        f"line {line}: {path}")
    return Found(stems, notes=[irregular_note(irregular)] if irregular else [])


DATASET = Dataset(
    name="manifest", title="manifest", walk=walk, map_name=None, formats="listed",
    input_is_file=True,
    folder="a CSV with the columns path,label[,group] (paths relative to its folder); "
           "without --map its labels must be AudioSet instrument labels")
