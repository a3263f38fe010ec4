"""``--embeddings PATH``: one embedding per stem, from the same forward pass as its scores
(or, with ``--embeddings-from vggish``, from the speech graph's VGGish).

The file is an ``.npz`` with ``embeddings`` float32 [N, D], ``paths``, ``labels`` and
``groups`` str [N], rows sorted by path, and what made them (str scalars): ``tagger`` (the
network: the tagger's name, or ``vggish``), ``layer`` (which layer and pooling) and
``weights`` (its weights' sha256, or their path or hub id when there is none). Where the
network reads several windows per stem (PaSST's and CLAP's 10 s windows, VGGish's 0.96 s
patches), the windows' own embeddings are kept too, as a ragged array:
``window_embeddings`` float32 [W, D], the windows of each stem in order and the stems in
row order, and ``window_counts`` int64 [N] (how many rows of it each stem has; they sum to
W). A stem's embedding is then the mean of its windows'.

While a run goes, each embedding is appended to ``PATH.part`` (two ``.npy`` records per
stem: path/label/group and what made it, then the vector as ``pack`` lays it out) before
its CSV row is written, so a killed run loses no row: the ``.npz`` is assembled from that
log at the end of every run, interrupted or not, and ``--resume`` goes on appending to it
(or, when a finished run removed it, starts it from the ``.npz``); a resume whose embeddings
would be made otherwise (another tagger, layer or weights) is refused. A stem analysed
twice keeps its latest embedding. Paths, labels and groups are written as the results CSV
writes them (``results.encode_text``), so both files name a stem alike.

The run that wrote the file is recorded too, in the zip archive's comment (not an array, so
the arrays stay those above): a JSON object with ``output``, the real path of the run's
results CSV (whose embeddings these are: no other run replaces them while its sidecar names
them, see ``stemeval.runfiles.outputs``), and ``identity``, the run's identity as its
sidecar records it (tagger, weights, dataset, map, condition), which pairs the file with a
results CSV by identity, not by name (``check_embeddings_identity``).
"""

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stemeval.common.atomic import write_atomically
from stemeval.common.errors import (
    DISK_FULL_ADVICE,
    UserError,
    is_disk_full,
    one_line,
    os_reason,
)
from stemeval.labels.matching import normalise
from stemeval.runfiles.outputs import zip_note
from stemeval.runfiles.record_log import append as _append
from stemeval.runfiles.record_log import records as _records
from stemeval.runfiles.record_log import repair, save_npz
from stemeval.runfiles.results import ERROR, encode_text, read_results
from stemeval.runfiles.sidecar import first_difference, identity_key, identity_text
from stemeval.taggers.interface import pack, unpack

ARRAYS = ("embeddings", "paths", "labels", "groups", "tagger")
STEM_COLUMNS = ("paths", "labels", "groups")  # one string per stem
MAKER = ("tagger", "layer", "weights")  # what made the embeddings, str scalars
WINDOW_ARRAYS = ("window_embeddings", "window_counts")
VGGISH = "vggish"
VGGISH_POOLING = "mean over 0.96 s patches"


def maker(source, identity, tagger=None, speech_models=None):
    """What makes a run's embeddings, as the file records it (``MAKER``): with ``source``
    ``"tagger"`` the tagger's embedding, with ``"vggish"`` the speech graph's; ``identity``:
    the run's (``sidecar.model_identity``), which names the weights."""
    if source == VGGISH:
        return {"tagger": VGGISH, "layer": f"{speech_models.embedding_node}; {VGGISH_POOLING}",
                "weights": identity_key(identity["speech_model"])}
    return {"tagger": tagger.name, "layer": tagger.embedding,
            "weights": identity_key(identity["weights"])}


def load_arrays(path):
    """The npz's arrays as a dict, or a one-line UserError."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:  # BadZipFile: cut short
        raise UserError(f"{path}: not a readable embeddings .npz file ({one_line(error)})") from None


NOTE_KIND = "stemeval embeddings"


def file_note(path):
    """What an embeddings file records of the run that wrote it (its zip comment: ``output``
    and ``identity``), or None when it records nothing readable."""
    note = zip_note(path)
    return note if note is not None and note.get("kind") == NOTE_KIND else None


@dataclass
class Embeddings:
    """One embeddings file: a row of ``embeddings`` per stem, with its path, label and track,
    what made it (``layer`` and ``weights`` None in files written before they were
    recorded) and, where the network reads windows, each stem's windows' embeddings."""

    file: str
    tagger: str
    embeddings: object  # float array [stems, dim]
    paths: list
    labels: list  # normalised as labels.matching.normalise does
    groups: list
    layer: str = None
    weights: str = None
    windows: list = None  # per stem, float array [windows, dim]; None if not kept
    identity: dict = None  # the identity of the run that wrote it (None: not recorded)


def read_embeddings(path):
    """The embeddings file at ``path``, checked, for the analyses on embeddings (probes,
    set distances); any problem is a one-line UserError."""
    if os.path.isdir(path):
        raise UserError(f"{path}: is a folder; give an embeddings .npz file (evaluate.py "
                        f"--embeddings writes one)")
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    arrays = load_arrays(path)
    if "groups" not in arrays:
        raise UserError(f"{path}: no groups (the track of each stem), so the folds cannot be "
                        f"grouped by track; save the embeddings of a dataset that has tracks")
    missing = [key for key in ARRAYS if key not in arrays]
    if missing:
        raise UserError(f"{path}: missing array(s) {', '.join(missing)} (an embeddings file "
                        f"holds {', '.join(ARRAYS)})")
    embeddings = arrays["embeddings"]
    if embeddings.ndim != 2 or embeddings.shape[0] == 0 or embeddings.dtype.kind != "f":
        raise UserError(f"{path}: embeddings must be floats [stems, dim], not "
                        f"{embeddings.dtype} of shape {list(embeddings.shape)}")
    if not np.isfinite(embeddings).all():
        raise UserError(f"{path}: the embeddings hold NaN or infinite values")
    columns = {}
    for key in STEM_COLUMNS:
        values = arrays[key]
        if values.ndim != 1 or len(values) != len(embeddings):
            raise UserError(f"{path}: {key} must hold one value per stem "
                            f"({len(embeddings)}), not shape {list(values.shape)}")
        columns[key] = [str(value) for value in values]
    if len(set(columns["paths"])) != len(columns["paths"]):
        raise UserError(f"{path}: a stem path appears more than once")
    return Embeddings(file=path, tagger=str(arrays["tagger"]), embeddings=embeddings,
                      paths=columns["paths"],
                      labels=[normalise(label) for label in columns["labels"]],
                      groups=[group.strip() for group in columns["groups"]],
                      layer=str(arrays["layer"]) if "layer" in arrays else None,
                      weights=str(arrays["weights"]) if "weights" in arrays else None,
                      windows=_windows(path, arrays), identity=_noted_identity(path))


def _noted_identity(path):
    identity = (file_note(path) or {}).get("identity")
    return identity if isinstance(identity, dict) else None


def _windows(path, arrays):
    """Each stem's window embeddings, checked, or None when the file keeps none."""
    found = [key for key in WINDOW_ARRAYS if key in arrays]
    if not found:
        return None
    if len(found) == 1:
        raise UserError(f"{path}: {found[0]} without {set(WINDOW_ARRAYS) - set(found)}")
    windows, counts = arrays["window_embeddings"], arrays["window_counts"]
    dim = arrays["embeddings"].shape[1]
    if windows.ndim != 2 or windows.dtype.kind != "f" or windows.shape[1] != dim:
        raise UserError(f"{path}: window_embeddings must be floats [windows, {dim}], not "
                        f"{windows.dtype} of shape {list(windows.shape)}")
    if (counts.ndim != 1 or counts.dtype.kind not in "iu" or len(counts) != len(arrays["paths"])
            or (counts < 1).any() or counts.sum() != len(windows)):
        raise UserError(f"{path}: window_counts must give each stem's number of windows (1 or "
                        f"more), {len(windows)} in all")
    if not np.isfinite(windows).all():
        raise UserError(f"{path}: the window embeddings hold NaN or infinite values")
    return np.split(windows, np.cumsum(counts)[:-1])


def log_path(path):
    """The log a run appends each embedding to before it assembles the ``.npz`` at ``path``."""
    return f"{path}.part"


def check_covers_kept_rows(path, tagger, rows, output, layer=None, weights=None):
    """UserError, before anything is written, when a resume with ``--embeddings path``
    would give an ``.npz`` lacking some of the resumed file's ``rows`` (error rows have
    none), as when the file was begun without ``--embeddings``, or with another path, or
    mixing embeddings made otherwise (``tagger``, ``layer``, ``weights``: see ``maker``).
    A resume's check, made by ``stemeval.runfiles.lifecycle``."""
    log = Path(log_path(path))
    made = {"tagger": tagger, "layer": layer, "weights": weights}
    if log.exists():
        with open(log, "rb") as handle:
            records = _records(handle)[0]
        for names, _ in records:
            _check_maker(dict(zip(MAKER, names[len(STEM_COLUMNS):])), path, made)
        saved = {str(names[0]) for names, _ in records}
    elif Path(path).exists():
        arrays = load_arrays(path)
        _check_maker(arrays, path, made)
        saved = {str(name) for name in arrays.get("paths", [])}
    else:
        saved = set()
    missing = [row["path"] for row in rows if row["prediction"] != ERROR
               and row["path"] not in saved]
    if missing:
        raise UserError(f"cannot resume {output} with --embeddings {path}: {len(missing)} of its "
                        f"{len(rows)} rows have no embedding there (e.g. {missing[0]}), as when "
                        f"it was begun without --embeddings; drop --embeddings, or drop "
                        f"--resume to start anew")


def _check_maker(saved, path, made):
    """UserError when what made the ``saved`` embeddings (a record or the npz's arrays) is
    not what makes this run's (``made``); a value either lacks is not compared."""
    for key in MAKER:
        old, new = (str(value) if value is not None else "" for value in (saved.get(key),
                                                                           made.get(key)))
        if old and new and old != new:
            raise UserError(f"cannot resume the embeddings {path}: they are of {key} {old}, "
                            f"this run uses {new}")


class EmbeddingStore:
    """Collects embeddings of one run into ``path`` (see the module docstring); ``tagger``,
    ``layer`` and ``weights``: what makes them (``maker``)."""

    def __init__(self, path, tagger, resume=False, layer=None, weights=None, identity=None,
                 output=None):
        self.path = Path(path)
        self.log = Path(log_path(path))
        self.made = {"tagger": tagger, "layer": layer, "weights": weights}
        self.note = ({"output": os.path.realpath(output), "identity": identity}
                     if output is not None else None)
        seeding = False
        try:
            if not resume:
                self.log.unlink(missing_ok=True)
            elif not self.log.exists() and self.path.exists():
                saved = load_arrays(self.path)
                seeding = True
                self._seed_from(saved)
                seeding = False
            self._repair()
            self._handle = open(self.log, "ab", buffering=0)  # each entry written at once
        except OSError as error:
            if seeding:  # a log half begun from the .npz would hide its other embeddings
                self.log.unlink(missing_ok=True)
            raise UserError(f"cannot write the embeddings {self.log}: {os_reason(error)}"
                            f"{DISK_FULL_ADVICE if is_disk_full(error) else ''}") from None

    def _seed_from(self, saved):
        _check_maker(saved, self.path, self.made)
        counts = saved.get("window_counts")
        windows = (np.split(saved["window_embeddings"], np.cumsum(counts)[:-1])
                   if counts is not None else [None] * len(saved["embeddings"]))
        with open(self.log, "wb") as handle:
            for vector, stem_windows, *names in zip(saved["embeddings"], windows,
                                                    *(saved[c] for c in STEM_COLUMNS)):
                _append(handle, self._names(names), pack(vector, stem_windows))

    def _repair(self):
        """Cut a half-written last record (a killed run) off the log."""
        if self.log.exists():
            repair(self.log)

    def _names(self, names):
        """A log record's names: the stem's, then what made its embedding."""
        return [*names, *("" if value is None else value for value in self.made.values())]

    def add(self, stem, embedding):
        """Log one stem's embedding (a vector, or ``pack``-ed with its windows')."""
        try:
            _append(self._handle, self._names(encode_text(str(name)) for name in (
                stem.path, stem.label, stem.group)), embedding)
            self._handle.flush()
        except OSError as error:
            raise UserError(f"cannot write the embeddings log {self.log}: {os_reason(error)}"
                            f"{DISK_FULL_ADVICE if is_disk_full(error) else ''}") from None

    def close(self, complete):
        """Write the npz from the log; a complete run removes the log."""
        self._handle.close()
        with open(self.log, "rb") as handle:
            records, _ = _records(handle)
        latest = {}
        for names, vector in records:
            latest[names[0]] = (names, vector)
        ordered = [latest[key] for key in sorted(latest)]
        arrays = {name: np.array([names[index] for names, _ in ordered], dtype=str)
                  for index, name in enumerate(STEM_COLUMNS)}
        stems = [unpack(packed) for _, packed in ordered]
        arrays["embeddings"] = (np.stack([vector for vector, _ in stems]) if stems
                                else np.zeros((0, 0), np.float32)).astype(np.float32)
        if stems and all(windows is not None for _, windows in stems):
            arrays["window_embeddings"] = np.concatenate([windows for _, windows in stems])
            arrays["window_counts"] = np.array([len(windows) for _, windows in stems], np.int64)
        arrays.update({key: np.array(value) for key, value in self.made.items()
                       if value is not None})
        try:
            note = {"kind": NOTE_KIND, **self.note} if self.note else None
            write_atomically(self.path, lambda handle: save_npz(handle, arrays, note),
                             binary=True)
        except OSError as error:
            raise UserError(f"cannot write the embeddings {self.path}: {os_reason(error)}"
                            f"{DISK_FULL_ADVICE if is_disk_full(error) else ''}") from None
        if complete:
            self.log.unlink()
        return len(ordered)


# --- Pairing with a results CSV, by identity -----------------------------------------


def check_embeddings_identity(data, results, identity):
    """UserError when the embeddings ``data`` (``embeddings.Embeddings``) were made by a run
    of another identity than ``identity`` (that of the results CSV ``results``)."""
    advice = f"give the embeddings of the run that wrote {results}"
    if data.identity is not None:
        differs = first_difference(data.identity, identity)
        if differs:
            name, theirs, ours = differs
            raise UserError(f"{data.file} are not the embeddings of {results}: they were made "
                            f"with {name} {identity_text(theirs)}, {results} with "
                            f"{identity_text(ours)}; {advice}")
        return
    if data.tagger == VGGISH:
        field, name = "speech_model", "speech model"
    else:
        field, name = "weights", "weights"
    if data.weights and field in identity and \
            str(identity_key(identity[field])) != data.weights:
        raise UserError(f"{data.file} are not the embeddings of {results}: they were made "
                        f"with {name} {data.weights[:12]}, {results} with "
                        f"{identity_text(identity[field])}; {advice}")


def check_embeddings_stems(data, results, rows=None):
    """UserError when a stem of the embeddings ``data`` is not a row of the results CSV
    ``results`` (``rows``: its rows, read if None), or is labelled otherwise there."""
    rows = read_results(results) if rows is None else rows
    by_path = {row.get("path") or "": row for row in rows}
    absent = [path for path in data.paths if path not in by_path]
    if absent:
        raise UserError(f"{data.file} are not the embeddings of {results}: {len(absent)} of "
                        f"their {len(data.paths)} stems are not rows of it (e.g. {absent[0]}), "
                        f"so they are of another dataset or other stems; give the embeddings "
                        f"of the run that wrote {results}")
    for path, label in zip(data.paths, data.labels):
        other = normalise(by_path[path].get("label"))
        if other != label:
            raise UserError(f"{results}: {path} is labelled {other!r} there and {label!r} "
                            f"in {data.file}")
