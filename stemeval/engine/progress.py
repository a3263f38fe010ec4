"""What a run shows on stderr: a progress bar, a warning per failed stem, and per-stem lines
on request. A failed stem is a warning, not an ``error:``: the run goes on."""

import os
import sys

from tqdm import tqdm

from stemeval.runfiles.results import ERROR


class Progress:
    """Counts finished rows; shows done/total, stems/s, ETA and the current file."""

    def __init__(self, total, quiet=False, verbose=False):
        self.errors = 0
        self.verbose = verbose
        self._bar = tqdm(total=total, unit="stem", file=sys.stderr, disable=quiet,
                         dynamic_ncols=True)

    def _say(self, line):
        self._bar.write(line, file=sys.stderr)

    def done(self, row):
        if row["prediction"] == ERROR:
            self.errors += 1
            self._say(f"warning: stem failed: {row['path']}: {row.get('error', '')}")
        elif self.verbose:
            self._say(f"{row['path']}: {row['label']} -> {row['prediction']} "
                      f"({row['proposed_label']})")
        self._bar.set_postfix_str(os.path.basename(row["path"]), refresh=False)
        self._bar.update(1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._bar.close()
