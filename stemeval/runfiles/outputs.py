"""What a command may write, checked before any work, and the lock that keeps a run's output
to one writer at a time.

An evaluation run writes its results CSV, the sidecar ``<output>.json``, the lock file
``<output>.lock``, the kept scores ``<output>.scores.npz`` and their log
``<output>.scores.npz.part`` and, with ``--embeddings``, the ``.npz``, its log
``<npz>.part`` and its lock file ``<npz>.lock``; a sweep writes the same for every cell (embeddings with ``embeddings =
true``), and its summary files. Nothing else. Before any model is loaded,
each must be a writable path that is not a folder, not a device or a pipe, not one of the
run's inputs (its stems, manifest, map, checkpoint, speech model, sweep config) and not
another of its outputs, compared by real path and by file identity, so that links and
``./x`` are seen through; a file already there must be one of its kind (a results CSV, an
``.npz`` or its log, a lock file) or empty, since the run replaces it (the sidecar is
checked by a resume, which refuses one it cannot read).

Files are compared by the file they name (links resolved, then device and inode), so a
symbolic or hard link to another run's file is that file. A run's own files are its own:
no run may write another run's results CSV, sidecar, kept scores or their log, lock file or
embeddings (``run_file_named``: the files named after an existing results CSV; and an
embeddings ``.npz`` whose run, named inside it, still claims it), and no report
(``check_report_outputs``: ``computeaccuracy.py``, ``probe.py``, ``setdistance.py``, a
sweep's summary) may write any of them, nor one of its own inputs.

The lock is ``filelock``'s on ``<output>.lock``, which holds the holder's process id, so a
second writer of the same output stops at once with one line naming it; where a symbolic
link leads the output (or the embeddings) elsewhere, the real file's lock is taken too, and
the results CSV itself (and the embeddings already there) are held with ``flock`` while
the run goes, so a second run through a hard link stops as well. The embeddings have their
lock ``<npz>.lock`` (two runs of different outputs cannot write one ``.npz``), and a sweep
its own on ``<folder>/summary.csv.lock`` (``locked_path``). The holder removes
the lock file before it lets the lock go, so a finished or refused run leaves none
(``filelock`` takes no lock on a file removed meanwhile); a killed run leaves it, unlocked,
and the next run takes it over.
"""

import errno
import json
import os
import time
import zipfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

try:
    import fcntl  # flock, on POSIX systems; elsewhere the lock files alone hold
except ImportError:
    fcntl = None

from stemeval.common.errors import UserError, os_reason
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
    broken = broken_link(path)
    if broken:
        raise UserError(f"cannot write the {what} {path}: {broken}; remove the link, or give "
                        f"another path")
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


def broken_link(path):
    """Why ``path`` is a symbolic link that names no file (a loop, or a link to nothing);
    None when it is not one."""
    if not os.path.islink(path):
        return None
    try:
        os.stat(path)
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "it is a symbolic link that leads back to itself (a loop)"
        if error.errno == errno.ENOENT:
            return f"it is a symbolic link to {os.readlink(path)}, which does not exist"
        return f"it is a symbolic link that cannot be followed ({os_reason(error)})"


def same_file(one, other):
    """Whether two paths name the same file: the same real path (links resolved), or the
    same device and inode (a hard link)."""
    if os.path.realpath(one) == os.path.realpath(other):
        return True
    first = _file_id(one)
    return first is not None and first == _file_id(other)


# (suffix, what the file is) of the files a run names after its results CSV
RUN_SUFFIXES = ((".scores.npz.part", "kept scores log"), (".scores.npz", "kept scores"),
                (".json", "sidecar"), (".lock", "lock file"))


def run_file_named(path, own=()):
    """``(what, file)`` when ``path`` is named as a file of an existing results CSV (its
    sidecar, kept scores, their log, its lock file), or as the log or lock file of an
    existing embeddings ``.npz``, other than those of the files ``own``; None otherwise."""
    own = [file for file in own if file]
    for suffix, what in RUN_SUFFIXES:
        if path.endswith(suffix) and len(path) > len(suffix):
            results = path[:-len(suffix)]
            if (os.path.isfile(results) and _is_results(results)
                    and not any(same_file(results, file) for file in own)):
                return what, results
    for suffix, what in ((".part", "embeddings log"), (".lock", "embeddings lock file")):
        if path.endswith(".npz" + suffix):
            npz = path[:-len(suffix)]
            if (os.path.isfile(npz) and npz_kind(npz) == EMBEDDINGS_NPZ
                    and not any(same_file(npz, file) for file in own)):
                return what, npz
    return None


def _is_results(path):
    try:
        return is_results_file(path)
    except OSError:
        return False


EMBEDDINGS_NPZ, KEPT_SCORES_NPZ = "an embeddings .npz", "a kept scores .npz"


def npz_kind(path):
    """What an ``.npz`` file is, by the arrays it holds: ``EMBEDDINGS_NPZ``,
    ``KEPT_SCORES_NPZ``, "an empty .npz", or "a .npz of other arrays"; None when it is no
    zip archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    if "scores.npy" in names and "identity.npy" in names:
        return KEPT_SCORES_NPZ
    if "embeddings.npy" in names:
        return EMBEDDINGS_NPZ
    return "an empty .npz" if not names else "a .npz of other arrays"


def _is_npz(kind):
    def check(path):
        found = npz_kind(path)
        return found in (kind, "an empty .npz") or (found is None and
                                                    _starts_with(NPZ_STARTS)(path))
    return check


def run_file_kind(path):
    """What run file the existing file ``path`` holds, by its content: a results CSV, a kept
    scores or embeddings ``.npz`` (any ``.npz``), a run's log, a lock file, or a sidecar;
    None when it is none of them (a report, an image, a note...)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError:
        return None
    if head.startswith(NPZ_STARTS):
        return npz_kind(path) or "a .npz"
    if head.startswith(NPY_START):
        return "the log of a run's kept scores or embeddings"
    if head.strip().isdigit():
        return "a lock file"
    if _is_results(path):
        return "a results CSV"
    if head.lstrip().startswith(b"{") and os.path.getsize(path) < (1 << 24):
        try:
            with open(path, encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            return None
        if isinstance(record, dict) and "identity" in record and "sessions" in record:
            return "a run's sidecar"
    return None


def run_files_of(results):
    """``(what, path)`` of the files a run names after its results CSV ``results``."""
    return [(f"{what} of {results}", results + suffix) for suffix, what in RUN_SUFFIXES]


def check_report_outputs(outputs, inputs=(), results=(), make_folders=False):
    """``check_outputs`` for a command that writes reports (JSON, images, tables): besides,
    no output may be one of the files of the results CSVs it reads (``results``: their
    sidecars, kept scores, logs and locks are inputs too), nor any run's own file, named so
    (``run_file_named``) or holding one (``run_file_kind``): a report never replaces them."""
    check_outputs(outputs, inputs, make_folders)
    for what, path in outputs:
        if path is None:
            continue
        for results_file in filter(None, results):
            clash = _clash([path], [(what_, file) for what_, file in run_files_of(results_file)])
            if clash:
                raise UserError(f"cannot write the {what} {path}: it is the {clash[1]}, which "
                                f"this command reads; give another path")
        named = run_file_named(path)
        if named:
            raise UserError(f"cannot write the {what} {path}: it is the {named[0]} of "
                            f"{named[1]}, a run's own file; give another path")
        kind = run_file_kind(path) if os.path.isfile(path) else None
        if kind:
            raise UserError(f"cannot write the {what} {path}: it exists and is {kind}, a "
                            f"run's own file, which a report never replaces; give another "
                            f"path")


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
        self.output = output
        self.sidecar = sidecar_path(output)
        self.lock_file = f"{output}.lock"
        self.embeddings = embeddings
        # (what, path, what a file already there must be, its check)
        self._files = [("output", output, "a results CSV", is_results_file),
                       ("sidecar", self.sidecar, "", None),
                       ("lock file", self.lock_file, "a lock file (a process id)", _is_lock_file)]
        self.embeddings_lock = None if embeddings is None else f"{embeddings}.lock"
        if embeddings is not None:
            self._files += [("embeddings", embeddings, EMBEDDINGS_NPZ,
                             _is_npz(EMBEDDINGS_NPZ)),
                            ("embeddings log", f"{embeddings}.part", "an embeddings log",
                             _starts_with(NPY_START)),
                            ("embeddings lock file", self.embeddings_lock,
                             "a lock file (a process id)", _is_lock_file)]
        self._held, self._held_paths = [], set()  # files held with flock (``hold``)
        self._locking = False  # inside ``locked``
        if keep_scores:
            self._files += [("kept scores", f"{output}.scores.npz",
                             KEPT_SCORES_NPZ, _is_npz(KEPT_SCORES_NPZ)),
                            ("kept scores log", f"{output}.scores.npz.part",
                             "a kept scores log", _starts_with(NPY_START))]

    def check(self, inputs=(), make_folders=False):
        """UserError unless every file of the run may be written (see the module docstring);
        ``inputs``: ``(role, path)`` of the run's inputs. Touches nothing."""
        check_outputs([(what, path) for what, path, _, _ in self._files], inputs, make_folders)
        for what, path, kind, is_kind in self._files:
            named = run_file_named(path, own=(self.output, self.embeddings))
            if named:
                raise UserError(f"cannot write the {what} {path}: it is the {named[0]} of "
                                f"{named[1]}, another run's own file; give another path")
            if not os.path.lexists(path):
                continue
            if not os.path.isfile(path):
                raise UserError(f"cannot write the {what} {path}: it is not a regular file (a "
                                f"device or a pipe), and a run writes a whole file there; give "
                                f"a file path")
            if is_kind and os.path.getsize(path) and not is_kind(path):
                found = run_file_kind(path)
                raise UserError(f"cannot write the {what} {path}: it exists and is not "
                                f"{kind}{f' (it is {found})' if found else ''}, so the run "
                                f"will not replace it; move it away, or give another path")
        if self.embeddings is not None and os.path.isfile(self.embeddings):
            owner = _embeddings_owner(self.embeddings)
            if owner is not None and not same_file(owner, self.output):
                raise UserError(f"cannot write the embeddings {self.embeddings}: they are the "
                                f"embeddings of the run {owner} (its sidecar names them), "
                                f"another run's own file; give another --embeddings path, or "
                                f"remove that run's files first")

    @contextmanager
    def locked(self):
        """Hold the output's lock (the lock file names this process), and the embeddings'
        lock, while the block runs; see the module docstring. A lock held by another process
        is a UserError naming it."""
        with ExitStack() as stack:
            for path, lock_file in self._lock_files():
                stack.enter_context(_holding(path, lock_file, advice="output" if path ==
                                             self.output else "--embeddings path"))
            stack.callback(self._let_go)
            self._locking = True
            for path in (self.output, self.embeddings):
                if path is not None and os.path.isfile(path):
                    self.hold(path)
            yield

    def _lock_files(self):
        """``(file, lock file)`` of every lock this run takes: the output's and the
        embeddings', each also under its real path when a link leads elsewhere."""
        locks = []
        for path, lock_file in ((self.output, self.lock_file),
                                (self.embeddings, self.embeddings_lock)):
            if path is None:
                continue
            locks.append((path, lock_file))
            real = f"{os.path.realpath(path)}.lock"
            if real != os.path.realpath(lock_file):
                locks.append((path, real))
        return locks

    def hold(self, path):
        """Hold ``path``'s file (it exists) with flock until the lock is let go: a second run
        writing the same file under another name (a hard link) stops at once."""
        if fcntl is None or not self._locking or path in self._held_paths:
            return
        try:
            handle = open(path, "rb")
        except OSError as error:
            raise UserError(f"cannot read {path}: {os_reason(error)}") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            handle.close()
            if error.errno not in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                return  # a file system without flock: the lock files still hold
            raise UserError(f"cannot write {path}: another run is writing the same file "
                            f"under another name (a hard or symbolic link to it); wait for "
                            f"it to end, or give another path") from None
        self._held.append(handle)
        self._held_paths.add(path)

    def _let_go(self):
        for handle in self._held:
            handle.close()
        self._held, self._held_paths, self._locking = [], set(), False


@contextmanager
def _holding(path, lock_file, what="run", advice="output"):
    """Hold ``lock_file`` (it then names this process) while the block runs; a lock held by
    another process is a UserError naming it, one that cannot be made names why."""
    lock = FileLock(lock_file, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        if not os.path.exists(lock_file):  # filelock retries what it cannot make: say why
            raise UserError(f"cannot write {path}: its lock file {lock_file} cannot be made "
                            f"({_why_not_made(lock_file)}); give a path in a folder where "
                            f"files can be written") from None
        raise UserError(f"cannot write {path}: another {what} (PID "
                        f"{_holder(lock_file)}) is writing it (lock file "
                        f"{lock_file}); wait for it to end, or give another "
                        f"{advice}") from None
    except OSError as error:
        raise UserError(f"cannot write the lock file {lock_file}: "
                        f"{os_reason(error)}") from None
    try:
        try:
            with open(lock_file, "w", encoding="ascii") as handle:
                handle.write(f"{os.getpid()}\n")
        except OSError as error:
            raise UserError(f"cannot write the lock file {lock_file}: {os_reason(error)}; "
                            f"nothing else was written: free some space, then run the same "
                            f"command again") from None
        yield
    finally:
        Path(lock_file).unlink(missing_ok=True)
        lock.release()


@contextmanager
def locked_path(path, what):
    """One writer of ``path`` at a time (a sweep's summary): its lock file ``<path>.lock``
    (and the real file's, where a link leads elsewhere) held while the block runs, naming
    this process; a second ``what`` writing it stops at once, naming the first."""
    with ExitStack() as stack:
        advice = "folder" if what == "sweep" else "path"
        stack.enter_context(_holding(path, f"{path}.lock", what, advice))
        real = f"{os.path.realpath(path)}.lock"
        if real != os.path.realpath(f"{path}.lock"):
            stack.enter_context(_holding(path, real, what, advice))
        yield


def _why_not_made(lock_file):
    """Why a lock file cannot be made (the error of making it), as one short reason."""
    try:
        handle = os.open(lock_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as error:
        return os_reason(error)
    os.close(handle)
    Path(lock_file).unlink(missing_ok=True)
    return "it was in use"


def zip_note(path):
    """The JSON object an ``.npz`` holds as its zip archive's comment (what an embeddings
    file records of its run: ``stemeval.runfiles.embeddings``), or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            comment = archive.comment
        note = json.loads(comment.decode("utf-8")) if comment else None
    except (OSError, ValueError, zipfile.BadZipFile):
        return None
    return note if isinstance(note, dict) else None


def _embeddings_owner(path):
    """The results CSV of the run whose embeddings ``path`` are, when that run still claims
    them (the ``output`` the file records is a results CSV whose sidecar names them as its
    embeddings); None otherwise."""
    output = (zip_note(path) or {}).get("output")
    if not isinstance(output, str) or not os.path.isfile(output) or not _is_results(output):
        return None
    try:
        with open(sidecar_path(output), encoding="utf-8") as handle:
            named = (json.load(handle).get("options") or {}).get("embeddings")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(named, str):
        return None
    candidates = [named] if os.path.isabs(named) else [named, os.path.join(
        os.path.dirname(output), os.path.basename(named))]
    return output if any(os.path.exists(c) and same_file(c, path) for c in candidates) else None


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
