"""The life cycle of one run's files, the one owner of resume and identity: an evaluation
run (``stemeval.engine.run``) and every sweep cell (``stemeval.sweep.runner``, local or on
Ray) go through the same ``RunLifecycle`` steps, in this order:

1. ``plan`` (under the output's lock, before any model is loaded; nothing is written):
   with resume, the rows already in the CSV (refused if damaged), its sidecar (refused if
   unreadable, or of another condition: dataset, map, ``--deform``, precision, speech
   backend, device) and the stems still to do (refused if its rows are not this run's
   stems); without, the file starts anew and every stem is to do.
2. ``check_identity`` once the models are loaded: the sidecar's whole identity (the model
   files' sha256 too) against this run's; then ``check_kept_files``: what made the
   embeddings already there (tagger, layer, weights) and that they cover the kept rows, and
   the kept scores' header (identity, classes) and that they cover the kept rows.
3. ``open``: the sidecar's new session is written, then the CSV opened (cut after its last
   whole row, or started anew), then the embeddings' log and the kept scores' log; so a
   refused or failed start leaves the CSV as it was.
4. ``embed``, ``keep`` and ``write`` for each stem (its embedding and kept scores logged
   before its row).
5. ``close(complete)``: the ``.npz`` files assembled from their logs (a complete run removes
   the logs) and the CSV closed, whether the run ended or was interrupted; ``finish``: the
   sidecar's session ends with the file's rows.

Every file a run writes, and its lock, are ``outputs.RunFiles``'s; each file's own format
is its module's (``results``, ``sidecar``, ``embeddings``, ``kept_scores``), whose checks of
a resumed file are called from here only.
"""

import sys
from dataclasses import dataclass

from stemeval.common.errors import UserError
from stemeval.runfiles import embeddings as embedding_files
from stemeval.runfiles import kept_scores
from stemeval.runfiles.outputs import RunFiles
from stemeval.runfiles.results import (
    COLUMNS,
    ERROR,
    ResultWriter,
    left_out_stems,
    read_kept,
    read_results,
    stems_to_do,
)
from stemeval.runfiles.sidecar import (
    Sidecar,
    check_same_identity,
    condition_identity,
    model_identity,
    read_previous,
    sidecar_path,
)


@dataclass
class Resume:
    """What a run goes on from: the kept rows (``results.KeptRows``, None for a new file), the
    sidecar record they were made under (None if none), and the stems still to do."""

    kept: object
    previous: dict
    todo: list


class RunLifecycle:
    """The files of one run (or sweep cell) writing ``output`` with ``columns``, and, with
    ``embeddings``, its stems' embeddings there (see the module docstring for the steps).
    ``files``: what it writes (``outputs.RunFiles``: the guard and the lock)."""

    def __init__(self, output, columns=COLUMNS, embeddings=None):
        self.output = output
        self.columns = list(columns)
        self.embeddings = embeddings
        self.files = RunFiles(output, embeddings, keep_scores=True)
        self.condition = self.resume = self.identity = None
        self.made = self.scores_header = None  # what makes the embeddings; the kept scores'
        self.sidecar = self.writer = self.store = self.keeper = None
        self.written = 0  # rows written by this session
        self._groups = {}

    @property
    def kept_rows(self):
        """The rows a resumed file already holds (none for a new file)."""
        return self.resume.kept.rows if self.resume.kept else []

    def plan(self, dataset, folder, stems, category_map, deform, precision, speech_backend,
             device, split=None, limit=None, follow_links=False, resume=True):
        """Step 1: this run's condition identity (``dataset``: a ``walker.Dataset``; ``deform``:
        the canonical SPEC, ``clean`` for none) and its ``Resume``, read and checked without
        writing; ``split``, ``limit``, ``follow_links``: how ``stems`` were chosen from
        ``folder``, to say why a kept row is not among them."""
        self.condition = condition_identity(dataset.name, category_map, deform, precision,
                                            speech_backend, device)
        self._groups = {stem.path: stem.group for stem in stems}
        if not resume:
            self.resume = Resume(None, None, list(stems))
        else:
            self.resume = _plan_resume(self.output, self.columns, self.condition, stems, folder,
                                       left_out_stems(dataset, folder, category_map, split,
                                                      limit, follow_links))
        return self.resume

    def check_identity(self, tagger, speech_model, hashed=None):
        """Step 2, first half: this run's whole identity (its loaded ``tagger``'s and the
        ``speech_model`` file's, with the condition), refused when a resumed file's sidecar
        names another; returns it. ``hashed``: a dict shared by several runs of one process
        (a sweep's cells), so each model file is hashed once."""
        self.identity = {**model_identity(tagger, speech_model, hashed), **self.condition}
        check_same_identity(self.resume.previous, self.identity, self.output)
        return self.identity

    def check_kept_files(self, tagger, embeddings_from="tagger", speech_models=None):
        """Step 2, second half: what makes this run's embeddings (``embeddings.maker``: the
        ``tagger``'s, or with ``embeddings_from`` ``"vggish"`` the ``speech_models``') and its
        kept scores' header, each refused when the resumed file's would be made otherwise or
        lack some of the kept rows."""
        rows = self.kept_rows
        if self.embeddings:
            self.made = embedding_files.maker(embeddings_from, self.identity, tagger,
                                              speech_models)
            if rows:
                embedding_files.check_covers_kept_rows(self.embeddings, self.made["tagger"],
                                                       rows, self.output, self.made["layer"],
                                                       self.made["weights"])
        self.scores_header = kept_scores.header_of(tagger, self.identity)
        if rows:
            kept_scores.check_covers_kept_rows(self.output, self.scores_header, rows)

    def open(self, options, device):
        """Step 3: the sidecar's new session (``options``: what the sidecar records of the
        run's options; ``device`` the one it runs on), then the CSV, then the embeddings' and
        the kept scores' logs. When a log cannot be opened the CSV is closed again (``close``
        closes what else was opened)."""
        resumed = self.resume.kept is not None
        self.sidecar = Sidecar(self.output, self.identity, options, device, self.resume.previous,
                               scores=kept_scores.scores_path(self.output))
        self.sidecar.start()
        self.writer = ResultWriter(self.output, self.columns, self.resume.kept)
        try:
            self.files.hold(self.output)  # a new file: held from now on, as one there was
            if self.embeddings:
                self.store = embedding_files.EmbeddingStore(self.embeddings, resume=resumed,
                                                            identity=self.identity,
                                                            output=self.output, **self.made)
            self.keeper = kept_scores.KeptScoresStore(self.output, self.scores_header,
                                                      resume=resumed,
                                                      kept_rows=len(self.kept_rows))
        except BaseException:
            self.writer.close()
            self.writer = None
            raise

    def embed(self, stem, embedding):
        """Step 4: log a stem's embedding (before its row); nothing without ``embeddings``."""
        if self.store is not None:
            self.store.add(stem, embedding)

    def keep(self, stem, kept):
        """Step 4: log a stem's kept scores (``kept_scores.StemScores``, before its row)."""
        self.keeper.add(stem, kept)

    def write(self, row):
        """Step 4: write a stem's row (its ``group``, the stem's track, as the stem has it)."""
        self.writer.write({**row, "group": self._groups[row["path"]]})
        self.written += 1

    def close(self, complete, failing=False):
        """Step 5: assemble the ``.npz`` files from their logs (``complete``: the run ended,
        so the logs go) and close the CSV; closes only what is open, once. ``failing``: the
        run is ending on an error (a full disk, say), which an ``.npz`` that cannot be
        assembled now must not hide: its log stays, and the next ``--resume`` assembles it."""
        store, keeper, writer = self.store, self.keeper, self.writer
        self.store = self.keeper = self.writer = None
        first = None
        try:
            for files in (store, keeper):  # each tried, whichever fails first
                if files is None:
                    continue
                try:
                    files.close(complete)
                except UserError as error:
                    first = first or error
        finally:
            if writer is not None:
                writer.close()
        if first is not None and not failing:
            raise first

    def finish(self):
        """Step 5, once every row is written: close as complete, then end the sidecar's
        session with the rows of the whole file and those this session wrote."""
        self.close(True)
        rows = read_results(self.output)
        self.sidecar.finish(stems=len(rows), errors=sum(row["prediction"] == ERROR for row in rows),
                            stems_this_run=self.written)


def _plan_resume(output, columns, condition, stems, folder, left_out=None):
    """The ``Resume`` of a results file with resume, read and checked without writing: its
    rows (refused if damaged), its sidecar (refused if unreadable or of another
    ``condition``; the model files are checked once loaded, by ``check_identity``) and the
    stems it lacks (refused if its rows are not of these stems)."""
    kept = read_kept(output, columns)
    if kept is None or not kept.rows:
        return Resume(kept, None, list(stems))
    previous = read_previous(output)
    check_same_identity(previous, condition, output)
    todo = stems_to_do([(row["path"], row["label"]) for row in kept.rows], stems, folder,
                       output, left_out)
    if previous is None:
        print(f"warning: {output} has no sidecar {sidecar_path(output)}: its "
              f"{len(kept.rows)} rows are kept without checking what made them",
              file=sys.stderr)
    return Resume(kept, previous, todo)
