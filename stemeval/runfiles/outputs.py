"""What a command may write, checked before any work, and the lock that keeps a run's output
to one writer at a time.

An evaluation run writes its results CSV, the sidecar ``<output>.json``, the lock file
``<output>.lock``, the kept scores ``<output>.scores.npz`` and their log
``<output>.scores.npz.part`` and, with ``--embeddings``, the ``.npz`` and its log
``<npz>.part``; a sweep writes the same for every cell (embeddings with ``embeddings =
true``), and its summary files. Nothing else. Before any model is loaded,
each must be a writable path that is not a folder, not a device or a pipe, not one of the
run's inputs (its stems, manifest, map, checkpoint, speech model, sweep config) and not
another of its outputs, compared by real path and by file identity, so that links and
``./x`` are seen through; a file already there must be one of its kind (a results CSV, an
``.npz`` or its log, a lock file) or empty, since the run replaces it (the sidecar is
checked by a resume, which refuses one it cannot read).

The lock is ``filelock``'s on ``<output>.lock``, which holds the holder's process id, so a
second writer of the same output stops at once with one line naming it. The holder removes
the lock file before it lets the lock go, so a finished or refused run leaves none
(``filelock`` takes no lock on a file removed meanwhile); a killed run leaves it, unlocked,
and the next run takes it over.
"""

import os
import time
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from stemeval.common.errors import UserError
from stemeval.runfiles.results import is_results_file
from stemeval.runfiles.sidecar import sidecar_path
from stemeval.weights.sources import (
    CHECKPOINT_HOME,
    CHECKPOINT_NAME,
    SPEECH_MODEL_HOME,
    SPEECH_MODEL_NAME,
)

NPZ_STARTS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive (np.savez), or an empty one
NPY_START = b"\x93NUMPY"


def check_output_path(path, what="output", inputs=(), make_folders=False):
    """Fail before any work if ``path`` cannot be written as the ``what`` (without touching
    it); ``inputs``: the paths (or ``(role, path)`` pairs) it must not be. With
    ``make_folders`` its folder may be missing (it is made later) below a writable one."""
    if not path:
        raise UserError(f"the {what} file name is empty")
    if os.path.isdir(path):
        raise UserError(f"cannot write the {what} {path}: it is a folder")
    parent = os.path.dirname(os.path.abspath(path))
    while make_folders and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UserError(f"cannot write the {what} {path}: no folder {parent}")
    clash = _clash([path], inputs)
    if clash:
        raise UserError(f"cannot write the {what} {path}: it is the {clash[1]} {clash[2]}")
    if not os.access(path if os.path.exists(path) else parent, os.W_OK):
        raise UserError(f"cannot write the {what} {path}: permission denied")


def check_outputs(outputs, inputs=(), make_folders=False):
    """``check_output_path`` for each ``(what, path)`` one command writes (a None path is
    not written), and no two of them the same file."""
    named = [(what, path) for what, path in outputs if path is not None]
    for what, path in named:
        check_output_path(path, what, make_folders=make_folders)
    clash = _clash([path for _, path in named], inputs)
    if clash:
        what = next(what for what, path in named if path == clash[0])
        raise UserError(f"cannot write the {what} {clash[0]}: it is the {clash[1]} {clash[2]}")
    for index, (what, path) in enumerate(named):
        for other_what, other in named[:index]:
            if _clash([path], [(other_what, other)]):
                raise UserError(f"cannot write the {what} {path}: it is also the {other_what} "
                                f"{other}; give them different paths")


def _file_id(path):
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def _clash(paths, inputs):
    """The first ``(path, role, input)`` where one of ``paths`` is an input file, or lies in
    an input folder (a model folder); None if there is none."""
    real = {os.path.realpath(path): path for path in paths}
    ids = {_file_id(path): path for path in paths} if any(map(os.path.exists, paths)) else {}
    ids.pop(None, None)
    for item in inputs:
        role, source = item if isinstance(item, tuple) else ("input file", item)
        if not source:
            continue
        resolved = os.path.realpath(source)
        hit = real.get(resolved) or (ids.get(_file_id(source)) if ids else None)
        if hit is None and os.path.isdir(source):
            hit = next((path for found, path in real.items()
                        if found.startswith(resolved.rstrip(os.sep) + os.sep)), None)
        if hit is not None:
            return hit, role, source
    return None


def _starts_with(starts):
    def check(path):
        with open(path, "rb") as handle:
            return handle.read(8).startswith(starts)
    return check


def _is_lock_file(path):
    with open(path, "rb") as handle:
        return handle.read(64).strip().isdigit()


class RunFiles:
    """The files one run (or one sweep cell) writes: see the module docstring;
    ``keep_scores``: its kept scores (``stemeval.runfiles.kept_scores``)."""

    def __init__(self, output, embeddings=None, keep_scores=False):
        # imported here, not with the module: kept_scores and embeddings load numpy, which
        # the scoring commands (that guard their outputs with this module) do without
        from stemeval.runfiles import kept_scores
        from stemeval.runfiles.embeddings import log_path

        self.output = output
        self.sidecar = sidecar_path(output)
        self.lock_file = f"{output}.lock"
        self.embeddings = embeddings
        # (what, path, what a file already there must be, its check)
        self._files = [("output", output, "a results CSV", is_results_file),
                       ("sidecar", self.sidecar, "", None),
                       ("lock file", self.lock_file, "a lock file (a process id)", _is_lock_file)]
        if embeddings is not None:
            self._files += [("embeddings", embeddings, "an embeddings .npz",
                             _starts_with(NPZ_STARTS)),
                            ("embeddings log", log_path(embeddings), "an embeddings log",
                             _starts_with(NPY_START))]
        if keep_scores:
            self._files += [("kept scores", kept_scores.scores_path(output),
                             "a kept scores .npz", _starts_with(NPZ_STARTS)),
                            ("kept scores log", kept_scores.log_path(output),
                             "a kept scores log", _starts_with(NPY_START))]

    def check(self, inputs=(), make_folders=False):
        """UserError unless every file of the run may be written (see the module docstring);
        ``inputs``: ``(role, path)`` of the run's inputs. Touches nothing."""
        check_outputs([(what, path) for what, path, _, _ in self._files], inputs, make_folders)
        for what, path, kind, is_kind in self._files:
            if not os.path.lexists(path):
                continue
            if not os.path.isfile(path):
                raise UserError(f"cannot write the {what} {path}: it is not a regular file (a "
                                f"device or a pipe), and a run writes a whole file there; give "
                                f"a file path")
            if is_kind and os.path.getsize(path) and not is_kind(path):
                raise UserError(f"cannot write the {what} {path}: it exists and is not {kind}, "
                                f"so the run will not replace it; move it away, or give "
                                f"another path")

    @contextmanager
    def locked(self):
        """Hold the output's lock (the lock file names this process) while the block runs; a
        lock held by another process is a UserError naming it."""
        lock = FileLock(self.lock_file, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise UserError(f"cannot write {self.output}: another run (PID "
                            f"{_holder(self.lock_file)}) is writing it (lock file "
                            f"{self.lock_file}); wait for it to end, or give another "
                            f"output") from None
        except OSError as error:
            raise UserError(f"cannot write the lock file {self.lock_file}: "
                            f"{error.strerror}") from None
        try:
            with open(self.lock_file, "w", encoding="ascii") as handle:
                handle.write(f"{os.getpid()}\n")
            yield
        finally:
            Path(self.lock_file).unlink(missing_ok=True)
            lock.release()


def _holder(lock_file, wait=1.0):
    """The process id in a held lock file (its holder may be a moment from writing it)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            with open(lock_file, encoding="ascii", errors="replace") as handle:
                text = handle.read().strip()
        except OSError:
            text = ""
        if text or time.monotonic() > deadline:
            return text or "unknown"
        time.sleep(0.05)


def run_inputs(stems, tagger, manifest=None, map_file=None, checkpoint=None,
               speech_model=None):
    """``(role, path)`` of what an evaluation run reads: its stems, manifest, map, and the
    model files it will load (the published homes when none is given)."""
    if checkpoint is None and tagger == "ast":
        checkpoint = str(CHECKPOINT_HOME / CHECKPOINT_NAME)
    inputs = [("stem", stem.path) for stem in stems]
    inputs += [(role, path) for role, path in (
        ("manifest", manifest), ("--map", map_file), ("--checkpoint", checkpoint),
        ("--speech-model", speech_model or str(SPEECH_MODEL_HOME / SPEECH_MODEL_NAME)))
        if path and os.path.exists(path)]
    return inputs
