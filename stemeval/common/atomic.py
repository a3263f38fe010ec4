"""Write a file beside its target and rename it into place only when it is complete (and
checked): model files, sidecars, embeddings, reports.

Readers (and the next run) therefore see either no file or a whole one; an error or an
interruption removes the temporary ``.part`` file.
"""

import contextlib
import os
import tempfile
from pathlib import Path

from stemeval.common.errors import os_reason

MODE = 0o644  # mkstemp makes 0600 files; model files are for every user of the checkout


@contextlib.contextmanager
def part_file(target):
    """Yield a fresh ``<target name>.<random>.part`` path in the target's folder; always removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, part = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".part")
    os.close(handle)
    part = Path(part)
    try:
        yield part
    finally:
        part.unlink(missing_ok=True)


def publish(part, target):
    """Move the finished ``part`` onto ``target`` in one step."""
    os.chmod(part, MODE)
    os.replace(part, target)
    return Path(target)


def write_atomically(target, write, binary=False):
    """Write ``target`` whole or not at all: ``write(handle)`` fills a part file beside it,
    which then replaces ``target`` in one step. A target that exists and is not a regular
    file (a device, a pipe) is written in place: replacing it would destroy it. OSError when
    it cannot be written."""
    mode, encoding = ("wb", {}) if binary else ("w", {"encoding": "utf-8"})
    if os.path.exists(target) and not os.path.isfile(target):
        with open(target, mode, **encoding) as handle:
            write(handle)
        return Path(target)
    with part_file(target) as part:
        with open(part, mode, **encoding) as handle:
            write(handle)
        return publish(part, target)


def write_failure(target, error):
    """Why ``write_atomically`` could not write ``target``, as one short reason: the
    ``error``'s (a full disk named so), or, when the part file beside it could not be made,
    that its folder takes no new file (``/proc``, a read-only mount)."""
    made = getattr(error, "filename", None)
    if made and os.path.basename(str(made)) != os.path.basename(str(target)):
        folder = os.path.dirname(os.path.abspath(target))
        return f"no new file can be made in its folder {folder} ({os_reason(error)})"
    return os_reason(error)
